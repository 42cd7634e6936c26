//! A test cluster: a real server on `127.0.0.1:0` (in-process, or the real
//! binary as a child process that can be killed; plain HTTP or HTTPS), several
//! devices whose stores and sync run through the real client library over
//! real HTTP(S), and a fault-injecting TCP proxy that cuts connections part-way.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use returnee_cli::client::ServerClient;
use returnee_cli::sync::{SyncSummary, sync};
use returnee_server::{RunningServer, ServerConfig, Tls, prepare, spawn};
use returnee_shared::wire::{CodeRequest, Role};
use returnee_shared::{FamilyFields, Members, Report, ReportBuilder, ReportFilter, ReturnType};
use returnee_store::laptop::{Enrollment, LocalStore, StoredView};

use crate::Rng;

/// A server running in this process on its own thread.
pub struct TestServer {
    pub running: RunningServer,
    /// The code the first admin enrolls with.
    pub admin_code: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Plain HTTP.
    pub fn start() -> TestServer {
        Self::start_with(None)
    }

    /// Plain HTTP, reading the time from `clock` (tests move it).
    pub fn start_with_clock(
        clock: std::sync::Arc<dyn returnee_server::clock::Clock>,
    ) -> TestServer {
        Self::start_configured(None, Some(clock))
    }

    /// HTTPS with the PEM certificate chain `cert` and its private key `key`.
    pub fn start_tls(cert: &Path, key: &Path) -> TestServer {
        Self::start_with(Some(
            Tls::load(cert, key).expect("a usable certificate and key"),
        ))
    }

    fn start_with(tls: Option<Tls>) -> TestServer {
        Self::start_configured(tls, None)
    }

    fn start_configured(
        tls: Option<Tls>,
        clock: Option<std::sync::Arc<dyn returnee_server::clock::Clock>>,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::new(dir.path().join("server"));
        config.tls = tls;
        if let Some(clock) = clock {
            config.clock = clock;
        }
        let prepared = prepare(config).expect("server store");
        let admin_code = prepared
            .initial_admin_code
            .clone()
            .expect("an empty store mints the first admin code");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let running = spawn(prepared, listener).expect("server starts");
        // sled 0.34 flushes a store when its last handle drops, holding its
        // process-wide read lock, and that flush can wait on the store's
        // flusher thread, itself queued behind another store's batch: with
        // every test's stores in one process, the suite deadlocked now and
        // then (a server's duplicate index task dropping the last handle
        // while a laptop committed). Test servers' stores are flushed when
        // the server stops and never dropped, so that flush never runs.
        std::mem::forget(running.duplicates().clone());
        std::mem::forget(running.store().clone());
        TestServer {
            running,
            admin_code,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        self.running.url()
    }
}

/// A laptop: a local store in a temp folder and, once enrolled, a client.
pub struct Device {
    pub store: LocalStore,
    pub name: String,
    client: Option<ServerClient>,
    /// The CA file its clients trust (`--ca`), for a server with a private CA.
    ca: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Device {
    pub fn new(name: &str) -> Device {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = LocalStore::init(&dir.path().join("store"), name).expect("store");
        Device {
            store,
            name: name.to_string(),
            client: None,
            ca: None,
            _dir: dir,
        }
    }

    /// Trusts the certificate authorities in the PEM file `ca` (as `--ca` does)
    /// for every client made from now on.
    pub fn trusting(mut self, ca: &Path) -> Device {
        self.ca = Some(ca.to_path_buf());
        self
    }

    /// Enrolls with `url` using `code`.
    pub fn enroll(&mut self, url: &str, code: &str) {
        let device = self.store.device().expect("device");
        let resp = ServerClient::new(url, None, self.ca.as_deref())
            .expect("client")
            .enroll(device.id, code, &self.name)
            .expect("enrollment");
        self.store
            .set_enrollment(&Enrollment {
                server: url.to_string(),
                device_id: resp.device_id,
                token: resp.token.clone(),
                role: resp.role,
                sites: resp.sites,
                ca_pem: None,
                token_expires_at: None,
            })
            .expect("save enrollment");
        self.client =
            Some(ServerClient::new(url, Some(resp.token), self.ca.as_deref()).expect("client"));
    }

    /// The enrolled client (to the server's own address).
    pub fn client(&self) -> &ServerClient {
        self.client.as_ref().expect("device is enrolled")
    }

    /// The same credential, sent to another address (a proxy).
    pub fn client_via(&self, url: &str) -> ServerClient {
        let token = self.store.enrollment().unwrap().expect("enrolled").token;
        ServerClient::new(url, Some(token), self.ca.as_deref()).expect("client")
    }

    /// A full sync with the server.
    pub fn sync(&self) -> SyncSummary {
        self.try_sync(self.client(), 200).expect("sync succeeds")
    }

    pub fn try_sync(
        &self,
        client: &ServerClient,
        batch: usize,
    ) -> Result<SyncSummary, returnee_cli::CliError> {
        sync(&self.store, client, batch, &())
    }

    /// Mints an enrollment code (this device must be an admin). A field
    /// code without sites is given every crossing (field codes need sites).
    pub fn mint(&self, role: Role, sites: &[&str]) -> String {
        let sites: Vec<String> = if role == Role::Field && sites.is_empty() {
            returnee_shared::reference::crossings()
                .iter()
                .map(|c| c.entry.code.to_string())
                .collect()
        } else {
            sites.iter().map(|s| s.to_string()).collect()
        };
        self.client()
            .mint_code(&CodeRequest {
                role,
                sites,
                uses: 1,
            })
            .expect("mint code")
            .code
    }

    /// Every record this device holds, deleted ones included, as it shows them.
    /// Every record the device holds, in id order (a store keeps them in
    /// the order they arrived, which differs between devices).
    pub fn views(&self) -> Vec<StoredView> {
        let mut views: Vec<StoredView> = self.store.views().map(|v| v.expect("view")).collect();
        views.sort_by_key(|v| v.family.id);
        views
    }

    /// The report over the families this device holds.
    pub fn report(&self) -> Report {
        let mut b = ReportBuilder::new(ReportFilter::default(), None);
        for f in self.store.families() {
            b.add(&f.expect("family").fields);
        }
        b.finish()
    }

    pub fn add(&self, fields: FamilyFields) -> returnee_shared::RecordId {
        self.store.add(fields, Utc::now()).expect("add")
    }
}

/// An admin device enrolled with `server`, plus `n` devices of `role` enrolled by it.
pub fn enrolled(server: &TestServer, role: Role, n: usize) -> (Device, Vec<Device>) {
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);
    let devices = (0..n)
        .map(|i| {
            let mut d = Device::new(&format!("laptop-{i}"));
            let code = admin.mint(role, &[]);
            d.enroll(&server.url(), &code);
            d
        })
        .collect();
    (admin, devices)
}

/// A valid family, varied by `rng`.
pub fn family(rng: &mut Rng) -> FamilyFields {
    let crossings = ["torkham", "chaman", "angoor-adda", "ghulam-khan"];
    let mut members = Members::default();
    for i in 0..5 {
        members.males[i] = rng.below(3) as u32;
        members.females[i] = rng.below(3) as u32;
    }
    members.females[3] += 1;
    FamilyFields {
        crossing: rng.pick(&crossings).to_string(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 9, 17).unwrap()
            + chrono::Days::new(rng.below(40)),
        return_type: *rng.pick(ReturnType::ALL),
        departure_province: "PK-KP".into(),
        destination_province: rng.pick(&["AF-NAN", "AF-KAB", "AF-KAN"]).to_string(),
        members,
        head_name: None,
        head_sex: None,
        doc_type: returnee_shared::DocType::None,
        doc_number: None,
        consent: false,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: Some(format!("note {}", rng.next_u64())),
        extra: Default::default(),
    }
}

/// `at` shifted by whole days (for skewed clocks).
pub fn days_later(at: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    at + chrono::Duration::days(days)
}

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Cut every connection once this many bytes went client → server.
    pub cut_up_after: Option<usize>,
    /// Cut every connection once this many bytes went server → client.
    pub cut_down_after: Option<usize>,
    /// After the first cut the link is down: every later connection is
    /// closed as soon as it opens (a laptop's one resend of a request cut
    /// on its way fails too).
    pub down_after_cut: bool,
}

/// A TCP proxy in front of the server that can cut connections part-way.
pub struct FaultProxy {
    addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
    /// Connections cut so far.
    pub cuts: Arc<AtomicUsize>,
    /// Traffic seen so far, HTTP headers included.
    pub traffic: Arc<Traffic>,
}

/// Bytes and requests through a proxy, as on the socket.
#[derive(Debug, Default)]
pub struct Traffic {
    pub up: std::sync::atomic::AtomicU64,
    pub down: std::sync::atomic::AtomicU64,
    pub requests: std::sync::atomic::AtomicU64,
}

impl Traffic {
    /// (bytes up, bytes down, requests) so far.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
        )
    }
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let traffic = Arc::new(Traffic::default());
        let (f, s, c, t) = (faults.clone(), stop.clone(), cuts.clone(), traffic.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let faults = *f.lock().unwrap();
                        if faults.down_after_cut && c.load(Ordering::Relaxed) > 0 {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        }
                        let Ok(server) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let cut = Arc::new(AtomicBool::new(false));
                        pipe(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            faults.cut_up_after,
                            cut.clone(),
                            c.clone(),
                            (t.clone(), true),
                        );
                        pipe(
                            server,
                            client,
                            faults.cut_down_after,
                            cut,
                            c.clone(),
                            (t.clone(), false),
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            addr,
            faults,
            stop,
            cuts,
            traffic,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies to connections opened from now on.
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` → `to` until EOF, or until `limit` bytes, then cuts both.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<usize>,
    cut: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    (traffic, upstream): (Arc<Traffic>, bool),
) {
    std::thread::spawn(move || {
        let mut sent = 0usize;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if cut.load(Ordering::Relaxed) {
                break;
            }
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let allowed = limit.map_or(n, |l| n.min(l.saturating_sub(sent)));
            if allowed > 0 && to.write_all(&buf[..allowed]).is_err() {
                break;
            }
            sent += allowed;
            if upstream {
                traffic.up.fetch_add(allowed as u64, Ordering::Relaxed);
                let requests = buf[..allowed]
                    .windows(11)
                    .filter(|w| w == b" HTTP/1.1\r\n")
                    .count();
                traffic
                    .requests
                    .fetch_add(requests as u64, Ordering::Relaxed);
            } else {
                traffic.down.fetch_add(allowed as u64, Ordering::Relaxed);
            }
            if allowed < n {
                cut.store(true, Ordering::Relaxed);
                cuts.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// A binary of this build (`target/<profile>/NAME`), next to the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let mut dir = exe.parent().expect("folder");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("profile folder");
    }
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing; build it with `cargo build --workspace` (`cargo test --workspace` does)",
        bin.display()
    );
    bin
}

/// The real `returnee-server` binary as a child process.
pub struct ServerProcess {
    child: Child,
    pub url: String,
    pub addr: SocketAddr,
    /// Printed on the first start with an empty data folder.
    pub admin_code: Option<String>,
    /// `http://HOST:PORT/metrics` when started with `--metrics-bind`.
    pub metrics_url: Option<String>,
}

impl ServerProcess {
    /// Starts `returnee-server serve` on `bind` (use port 0 the first time).
    pub fn start(data_dir: &Path, bind: &str) -> ServerProcess {
        Self::start_with(data_dir, bind, &[])
    }

    /// The same, serving HTTPS with the PEM certificate chain `cert` and its key `key`.
    pub fn start_tls(data_dir: &Path, bind: &str, cert: &Path, key: &Path) -> ServerProcess {
        Self::start_with(
            data_dir,
            bind,
            &[
                OsStr::new("--tls-cert"),
                cert.as_os_str(),
                OsStr::new("--tls-key"),
                key.as_os_str(),
            ],
        )
    }

    fn start_with(data_dir: &Path, bind: &str, extra: &[&OsStr]) -> ServerProcess {
        Self::start_logging(data_dir, bind, extra, "warn", None)
    }

    /// Starts `returnee-server serve` with `extra` arguments, `RUST_LOG`
    /// set to `log_filter`, and its standard error written to `log` (else
    /// dropped).
    pub fn start_logging(
        data_dir: &Path,
        bind: &str,
        extra: &[&OsStr],
        log_filter: &str,
        log: Option<&Path>,
    ) -> ServerProcess {
        let with_metrics = extra.iter().any(|a| *a == "--metrics-bind");
        // Only the start that makes the store prints an admin code: waiting
        // for one from a later start would cost every restart a timeout.
        let first_start = std::fs::read_dir(data_dir).map_or(true, |mut d| d.next().is_none());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new(binary("returnee-server"))
                .args(["serve", "--bind", bind, "--data-dir"])
                .arg(data_dir)
                .args(extra)
                .env_remove("RETURNEE_SERVER_TLS_CERT")
                .env_remove("RETURNEE_SERVER_TLS_KEY")
                .env("RUST_LOG", log_filter)
                .env_remove("RETURNEE_SERVER_LOG_FORMAT")
                .stdout(Stdio::piped())
                .stderr(match log {
                    Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
                    None => Stdio::null(),
                })
                .spawn()
                .expect("server binary runs");
            // Read stdout on a thread of its own (and keep draining it, so the
            // server never blocks on a full pipe).
            let (tx, rx) = std::sync::mpsc::channel();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            let first = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
            if let Some(url) = first.strip_prefix("listening on ") {
                let url = url.trim().to_string();
                let addr: SocketAddr = url
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .parse()
                    .unwrap();
                // Printed right after the first line, on a first start only;
                // then the metrics address when asked for.
                let mut admin_code = None;
                let mut metrics_url = None;
                let lines = usize::from(first_start) + usize::from(with_metrics);
                for _ in 0..lines {
                    let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) else {
                        break;
                    };
                    if let Some(c) = line.strip_prefix("admin enrollment code: ") {
                        admin_code = Some(c.trim().to_string());
                    } else if let Some(m) = line.strip_prefix("metrics on ") {
                        metrics_url = Some(m.trim().to_string());
                        break;
                    }
                }
                return ServerProcess {
                    child,
                    url,
                    addr,
                    admin_code,
                    metrics_url,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            // The store lock of a just-killed server can linger for a moment.
            assert!(
                Instant::now() < deadline,
                "the server did not start: {first}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and waits until the server has stopped gracefully (its
    /// store flushed, its duplicate index marked clean).
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed: {status}");
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "the server stopped with {exit}");
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
