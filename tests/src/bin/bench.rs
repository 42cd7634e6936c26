//! The sync benchmark: a real server on 127.0.0.1:0 behind a byte-counting
//! TCP proxy, real device stores, the real client code. Prints one JSON line
//! per phase and run, then one line per phase with the medians.
//!
//! `cargo run --release -p returnee-tests --bin bench -- --families 100000 --runs 3`
//! (`--phases reports`: reports in every format, laptop and server, and the
//! server's export, after the push that fills the server)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use returnee_cli::sync::{SyncProgress, push_all, sync};
use returnee_shared::wire::Role;
use returnee_shared::{FamilyFields, FieldValue, RecordId};
use returnee_store::laptop::Upsert;
use returnee_tests::Rng;
use returnee_tests::cluster::{Device, FaultProxy, TestServer, enrolled, family};
use serde_json::{Value, json};

// As in the real binaries (server and client run in this process here),
// transparent huge pages off included.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    families: usize,
    /// With `--rss-families N`: push and pull N families between the real
    /// binaries and report their peak resident memory.
    rss_families: Option<usize>,
    runs: usize,
    phases: Vec<String>,
    batch: usize,
    devices: usize,
    per_device: usize,
}

fn args() -> Args {
    let mut a = Args {
        families: 100_000,
        rss_families: None,
        runs: 3,
        phases: ["push", "pull", "incremental", "conflicts", "many-devices"]
            .map(String::from)
            .to_vec(),
        batch: 5000,
        devices: 50,
        per_device: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--families" => a.families = value().parse().expect("--families N"),
            "--rss-families" => {
                a.rss_families = Some(value().parse().expect("--rss-families N"));
            }
            "--runs" => a.runs = value().parse().expect("--runs N"),
            "--batch" => a.batch = value().parse().expect("--batch N"),
            "--devices" => a.devices = value().parse().expect("--devices N"),
            "--per-device" => a.per_device = value().parse().expect("--per-device N"),
            "--phases" => a.phases = value().split(',').map(String::from).collect(),
            other => panic!(
                "unknown flag {other}; use --families N --runs N --batch N --devices N --per-device N --phases push,pull,incremental,conflicts,many-devices,reports"
            ),
        }
    }
    a
}

/// Fills a store with `n` families in large atomic batches (not timed).
fn fill(device: &Device, n: usize, seed: u64) -> Vec<(RecordId, FamilyFields)> {
    let mut rng = Rng::new(seed);
    let all: Vec<(RecordId, FamilyFields)> = (0..n)
        .map(|_| (returnee_store::ids::new_record_id(), family(&mut rng)))
        .collect();
    for chunk in all.chunks(10_000) {
        device
            .store
            .upsert_many(
                chunk
                    .iter()
                    .map(|(id, f)| Upsert {
                        id: *id,
                        fields: f.clone(),
                        origin: None,
                    })
                    .collect(),
                Utc::now(),
            )
            .expect("fill");
    }
    all
}

/// Runs `f` and measures it on the proxy's counters.
fn measure<T>(proxy: &FaultProxy, phase: &str, n: usize, f: impl FnOnce() -> T) -> (T, Value) {
    let (u0, d0, r0) = proxy.traffic.snapshot();
    perf_control(phase, "enable");
    let start = Instant::now();
    let out = f();
    let seconds = start.elapsed().as_secs_f64();
    perf_control(phase, "disable");
    // Let the proxy threads account for the last bytes.
    std::thread::sleep(Duration::from_millis(50));
    let (u1, d1, r1) = proxy.traffic.snapshot();
    let line = json!({
        "system": "returnee",
        "phase": phase,
        "n": n,
        "seconds": round(seconds),
        "bytes_up": u1 - u0,
        "bytes_down": d1 - d0,
        "requests": r1 - r0,
        "docs_per_s": (n as f64 / seconds).round(),
        "bytes_per_doc": if n > 0 { round((u1 - u0 + d1 - d0) as f64 / n as f64) } else { 0.0 },
    });
    (out, line)
}

/// Reports of every family by date × crossing × return type in every
/// format, on the laptop (its report rows) and from the server
/// (`GET /v1/reports`), and the server's CSV export of the families.
fn reports_phase(
    proxy: &FaultProxy,
    client: &returnee_cli::client::ServerClient,
    laptop: &Device,
    n: usize,
    run: usize,
    results: &mut BTreeMap<String, Vec<Value>>,
) {
    use returnee_shared::report::{RenderOptions, ReportFormat, render};
    use returnee_shared::{GroupBy, ReportBuilder};
    let by = vec![GroupBy::Date, GroupBy::Crossing, GroupBy::ReturnType];
    for format in ["json", "csv", "xlsx", "hxl", "hxl-long"] {
        let f = ReportFormat::parse(format).expect("a format");
        let (bytes, mut line) = measure(proxy, &format!("report-laptop-{format}"), n, || {
            let mut b = ReportBuilder::grouped(Default::default(), by.clone());
            if f == ReportFormat::Xlsx {
                b = b.with_breakdowns(&by);
            }
            for row in laptop.store.report_rows() {
                b.add_row(&row.expect("report row"));
            }
            render(&b.finish(), f, &RenderOptions::default())
                .expect("render")
                .len()
        });
        line["output_bytes"] = json!(bytes);
        emit(&line, run, results);
        let (bytes, mut line) = measure(proxy, &format!("report-server-{format}"), n, || {
            let mut out = Vec::new();
            client
                .download(
                    "/v1/reports",
                    &[
                        ("by", "date,crossing,return-type".into()),
                        ("format", format.into()),
                    ],
                    &mut out,
                )
                .expect("server report");
            out.len()
        });
        line["output_bytes"] = json!(bytes);
        emit(&line, run, results);
    }
    let (bytes, mut line) = measure(proxy, "export-server-csv", n, || {
        let mut out = Vec::new();
        client
            .download("/v1/export", &[("format", "csv".into())], &mut out)
            .expect("server export");
        out.len()
    });
    line["output_bytes"] = json!(bytes);
    emit(&line, run, results);
}

/// With `PERF_CTL_FIFO` set (to the control fifo of
/// `perf record --control=fifo:FIFO -D -1`), profiles only the timed phases
/// (only `PERF_PHASE` if set).
fn perf_control(phase: &str, command: &str) {
    if std::env::var("PERF_PHASE").is_ok_and(|p| p != phase) {
        return;
    }
    if let Some(fifo) = std::env::var_os("PERF_CTL_FIFO") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(fifo) {
            let _ = writeln!(f, "{command}");
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn emit(line: &Value, run: usize, results: &mut BTreeMap<String, Vec<Value>>) {
    let mut line = line.clone();
    line["run"] = json!(run);
    println!("{line}");
    results
        .entry(line["phase"].as_str().unwrap().to_string())
        .or_default()
        .push(line);
}

/// Edits the notes of these families in one atomic batch.
fn edit_notes(device: &Device, families: &[(RecordId, FamilyFields)], text: &str) {
    device
        .store
        .upsert_many(
            families
                .iter()
                .map(|(id, f)| {
                    let mut f = f.clone();
                    f.set(FieldValue::Notes(Some(format!("{text} {id}"))));
                    Upsert {
                        id: *id,
                        fields: f,
                        origin: None,
                    }
                })
                .collect(),
            Utc::now(),
        )
        .expect("edit");
}

fn main_phases(a: &Args, run: usize, results: &mut BTreeMap<String, Vec<Value>>) {
    let want = |p: &str| a.phases.iter().any(|x| x == p);
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.running.addr());
    let (_admin, devices) = enrolled(&server, Role::Supervisor, 2);
    let (pusher, puller) = (&devices[0], &devices[1]);
    let all = fill(pusher, a.families, 1000 + run as u64);
    let via = |d: &Device| d.client_via(&proxy.url());

    let (summary, line) = measure(&proxy, "push", a.families, || {
        sync(&pusher.store, &via(pusher), a.batch, &()).expect("push")
    });
    assert_eq!(summary.pushed as usize, a.families);
    if want("push") {
        emit(&line, run, results);
    }
    // The server checks pushed families for duplicates once pushes pause;
    // the time that takes after the push is its own line, and the phases
    // after it start on a server with nothing left to do.
    let (listed, mut line) = measure(&proxy, "duplicate-check", a.families, || {
        via(pusher).duplicates().expect("duplicates")
    });
    line["pairs"] = json!(listed.len());
    if want("push") {
        emit(&line, run, results);
    }
    if want("reports") {
        reports_phase(&proxy, &via(pusher), pusher, a.families, run, results);
    }
    if !(want("pull") || want("incremental") || want("conflicts")) {
        return;
    }
    let (summary, line) = measure(&proxy, "pull", a.families, || {
        sync(&puller.store, &via(puller), a.batch, &()).expect("pull")
    });
    assert_eq!(summary.pulled as usize, a.families);
    if want("pull") {
        emit(&line, run, results);
    }
    // The laptop indexes pulled families for duplicates when it next looks
    // for them: that catch-up, timed on its own.
    let (listed, mut line) = measure(&proxy, "pull-duplicate-check", a.families, || {
        puller.store.duplicates().expect("local duplicates")
    });
    line["pairs"] = json!(listed.len());
    if want("pull") {
        emit(&line, run, results);
    }
    if want("incremental") {
        let edits = (a.families / 100).max(1);
        edit_notes(pusher, &all[..edits], "incremental");
        let (summary, line) = measure(&proxy, "incremental", edits, || {
            sync(&pusher.store, &via(pusher), a.batch, &()).expect("incremental")
        });
        assert_eq!(summary.pushed as usize, edits);
        emit(&line, run, results);
    }
    if want("conflicts") {
        let same = &all[a.families / 2..a.families / 2 + 100.min(a.families / 2)];
        puller_catch_up(puller, &via(puller), a.batch);
        edit_notes(pusher, same, "from pusher");
        edit_notes(puller, same, "from puller");
        let (conflicts, line) = measure(&proxy, "conflicts", same.len(), || {
            sync(&pusher.store, &via(pusher), a.batch, &()).expect("conflicts a");
            sync(&puller.store, &via(puller), a.batch, &()).expect("conflicts b");
            sync(&pusher.store, &via(pusher), a.batch, &())
                .expect("conflicts c")
                .conflicts
        });
        assert_eq!(conflicts, same.len());
        let mut line = line;
        line["conflicts"] = json!(conflicts);
        emit(&line, run, results);
    }
}

fn puller_catch_up(d: &Device, client: &returnee_cli::client::ServerClient, batch: usize) {
    sync(&d.store, client, batch, &()).expect("catch up");
}

/// Records the time between batch acknowledgements.
struct Latencies {
    last: Mutex<Instant>,
    all: Arc<Mutex<Vec<f64>>>,
}

impl SyncProgress for Latencies {
    fn pushed(&self, _done: u64, _total: u64) {
        let mut last = self.last.lock().unwrap();
        self.all
            .lock()
            .unwrap()
            .push(last.elapsed().as_secs_f64() * 1000.0);
        *last = Instant::now();
    }
}

fn many_devices(a: &Args, run: usize, results: &mut BTreeMap<String, Vec<Value>>) {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.running.addr());
    let (admin, devices) = enrolled(&server, Role::Field, a.devices);
    for (i, d) in devices.iter().enumerate() {
        fill(d, a.per_device, 5000 + (run * 1000 + i) as u64);
    }
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0u64));
    let n = a.devices * a.per_device;
    // Each laptop as `returnee sync` runs it: the default largest batch,
    // sized down by the server's advice while all push at once.
    let batch = returnee_cli::sync::DEFAULT_BATCH_SIZE;
    let ((), mut line) = measure(&proxy, "many-devices", n, || {
        std::thread::scope(|s| {
            for d in &devices {
                let client = d.client_via(&proxy.url());
                let latencies = latencies.clone();
                let errors = errors.clone();
                s.spawn(move || {
                    let progress = Latencies {
                        last: Mutex::new(Instant::now()),
                        all: latencies,
                    };
                    // Every device pushes at once; what each then pulls is
                    // the pull phase's business.
                    if push_all(&d.store, &client, batch, &progress).is_err() {
                        *errors.lock().unwrap() += 1;
                    }
                });
            }
        });
    });
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let pct = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let landed = admin
        .client()
        .report(&Default::default(), None)
        .expect("report")
        .totals
        .families;
    line["devices"] = json!(a.devices);
    line["batches"] = json!(l.len());
    line["p50_batch_ms"] = json!(round(pct(0.5)));
    line["p99_batch_ms"] = json!(round(pct(0.99)));
    line["errors"] = json!(*errors.lock().unwrap());
    line["landed"] = json!(landed);
    emit(&line, run, results);
}

/// Peak resident memory of a process so far, in MB (Linux: VmHWM).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

/// A memory figure of a process's /proc status (`VmHWM:`, `VmRSS:`), in MB.
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs `returnee` to completion, sampling its peak memory; returns (seconds, peak MB).
fn run_client(args: &[&str]) -> (f64, f64) {
    let start = Instant::now();
    let mut child = std::process::Command::new(returnee_tests::returnee_bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("returnee runs");
    let mut peak: f64 = 0.0;
    loop {
        if let Some(mb) = peak_rss_mb(child.id()) {
            peak = peak.max(mb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "returnee {args:?} failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (start.elapsed().as_secs_f64(), peak)
}

/// Pushes and pulls `n` families between the real `returnee-server` and
/// `returnee` binaries, reporting each one's peak resident memory.
fn rss(n: usize) {
    use returnee_tests::cluster::ServerProcess;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(&dir.path().join("server"), "127.0.0.1:0");
    let mut admin = Device::new("admin");
    admin.enroll(
        &server.url,
        server.admin_code.as_deref().expect("admin code"),
    );
    let store_dir = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (pusher, puller) = (store_dir("pusher"), store_dir("puller"));
    for d in [&pusher, &puller] {
        let code = admin.mint(Role::Supervisor, &[]);
        run_client(&["--data-dir", d, "init"]);
        run_client(&[
            "--data-dir",
            d,
            "enroll",
            "--server",
            &server.url,
            "--code",
            &code,
        ]);
    }
    {
        let (store, _) = returnee_store::laptop::LocalStore::open(std::path::Path::new(&pusher))
            .map(|s| (s, ()))
            .expect("pusher store");
        let mut rng = Rng::new(42);
        let mut left = n;
        while left > 0 {
            let k = left.min(20_000);
            let items = (0..k)
                .map(|_| Upsert {
                    id: returnee_store::ids::new_record_id(),
                    fields: family(&mut rng),
                    origin: None,
                })
                .collect();
            store.upsert_many(items, Utc::now()).expect("fill");
            left -= k;
        }
    }
    // Let sled release the store's lock before the client opens it.
    std::thread::sleep(Duration::from_millis(500));
    // The server's resident memory as each phase starts: what it kept of
    // the phases before (allocators and sled's cache do not give it back).
    let at_start = std::cell::Cell::new(status_mb(server.pid(), "VmRSS:"));
    let print = |phase: &str, seconds: f64, client_mb: Option<f64>| {
        println!(
            "{}",
            json!({
                "system": "returnee",
                "phase": phase,
                "n": n,
                "seconds": round(seconds),
                "docs_per_s": (n as f64 / seconds).round(),
                "client_peak_rss_mb": client_mb.map(round),
                "server_peak_rss_mb": peak_rss_mb(server.pid()).map(round),
                "server_rss_at_start_mb": at_start.get().map(round),
            })
        );
        // Each phase's own peak: the next starts from the memory in use now.
        reset_peak_rss(server.pid());
        at_start.set(status_mb(server.pid(), "VmRSS:"));
    };
    let (seconds, client_mb) = run_client(&["--data-dir", &pusher, "sync", "--json"]);
    print("rss-push", seconds, Some(client_mb));
    // The server's duplicate check of what arrived (a listing waits for it).
    let start = Instant::now();
    let pairs = admin.client().duplicates().expect("duplicates").len();
    eprintln!("duplicate check: {pairs} candidate pairs");
    print("rss-duplicate-check", start.elapsed().as_secs_f64(), None);
    let (seconds, client_mb) = run_client(&["--data-dir", &puller, "sync", "--json"]);
    print("rss-pull", seconds, Some(client_mb));
    // The same pull from a server just restarted on that store (as after a
    // deployment), not carrying what the push and the check left behind.
    let (data, bind) = (dir.path().join("server"), server.addr.to_string());
    server.stop();
    let server = ServerProcess::start(&data, &bind);
    let fresh = store_dir("fresh-puller");
    run_client(&["--data-dir", &fresh, "init"]);
    let code = admin.mint(Role::Supervisor, &[]);
    run_client(&[
        "--data-dir",
        &fresh,
        "enroll",
        "--server",
        &server.url,
        "--code",
        &code,
    ]);
    let at_start = status_mb(server.pid(), "VmRSS:");
    let (seconds, client_mb) = run_client(&["--data-dir", &fresh, "sync", "--json"]);
    println!(
        "{}",
        json!({
            "system": "returnee",
            "phase": "rss-pull-restarted-server",
            "n": n,
            "seconds": round(seconds),
            "docs_per_s": (n as f64 / seconds).round(),
            "client_peak_rss_mb": round(client_mb),
            "server_peak_rss_mb": peak_rss_mb(server.pid()).map(round),
            "server_rss_at_start_mb": at_start.map(round),
        })
    );
}

/// Starts a new peak-memory measurement of a process (Linux: writing 5 to
/// clear_refs resets VmHWM to the current resident size).
fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn main() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let a = args();
    if let Some(n) = a.rss_families {
        rss(n);
        return;
    }
    let mut results: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for run in 0..a.runs {
        if a.phases.iter().any(|p| p != "many-devices") {
            main_phases(&a, run, &mut results);
        }
        if a.phases.iter().any(|p| p == "many-devices") {
            many_devices(&a, run, &mut results);
        }
    }
    for (phase, lines) in &results {
        let mut out =
            json!({"system": "returnee", "phase": phase, "run": "median", "runs": lines.len()});
        for key in [
            "n",
            "seconds",
            "bytes_up",
            "bytes_down",
            "requests",
            "docs_per_s",
            "bytes_per_doc",
            "p50_batch_ms",
            "p99_batch_ms",
            "errors",
            "landed",
        ] {
            let mut v: Vec<f64> = lines.iter().filter_map(|l| l[key].as_f64()).collect();
            if !v.is_empty() {
                out[key] = json!(round(median(&mut v)));
            }
        }
        println!("{out}");
    }
}
