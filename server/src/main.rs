//! The `returnee-server` binary: parse, configure, run, map errors to exit
//! codes (2 for usage errors, unusable TLS files and data folders that hold
//! no store, 1 for anything else).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use returnee_server::config::{
    DEFAULT_BIND, DEFAULT_DATA_DIR, DEFAULT_SESSION_HOURS, DEFAULT_TOKEN_DAYS,
};
use returnee_server::logging::LogFormat;
use returnee_server::{ServerConfig, ServerStore, Tls, TlsError, prepare};

// sled copies and frees many small buffers per write; mimalloc serves that
// markedly faster than the system allocator. Without transparent huge pages:
// mimalloc asks for them, and then every first touch of a region zeroes
// 2 MB: a quarter of the CPU while 50 laptops pushed at once, and about
// 50 MB more resident memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The returnee central sync server.
#[derive(Debug, Parser)]
#[command(name = "returnee-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on standard error are written: text, or one JSON object a line.
    #[arg(
        long,
        global = true,
        env = "RETURNEE_SERVER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the sync API (SIGINT or SIGTERM stops it gracefully).
    Serve {
        /// The data folder [default: ./returnee-data].
        #[arg(long, env = "RETURNEE_SERVER_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The address to listen on; port 0 picks a free one.
        #[arg(long, env = "RETURNEE_SERVER_BIND", default_value = DEFAULT_BIND)]
        bind: String,
        /// Serve HTTPS with this PEM certificate chain (the server's certificate first; needs --tls-key).
        #[arg(
            long,
            env = "RETURNEE_SERVER_TLS_CERT",
            value_name = "FILE",
            requires = "tls_key"
        )]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of the --tls-cert certificate.
        #[arg(
            long,
            env = "RETURNEE_SERVER_TLS_KEY",
            value_name = "FILE",
            requires = "tls_cert"
        )]
        tls_key: Option<PathBuf>,
        /// How long a dashboard sign-in lasts, in hours (1 to 720).
        #[arg(
            long,
            env = "RETURNEE_SERVER_SESSION_HOURS",
            value_name = "HOURS",
            default_value_t = DEFAULT_SESSION_HOURS,
            value_parser = clap::value_parser!(i64).range(1..=720)
        )]
        session_hours: i64,
        /// How long a device token lasts, in days (1 to 3650); devices
        /// rotate theirs at a sync when less than a third is left.
        #[arg(
            long,
            env = "RETURNEE_SERVER_TOKEN_DAYS",
            value_name = "DAYS",
            default_value_t = DEFAULT_TOKEN_DAYS,
            value_parser = clap::value_parser!(i64).range(1..=3650)
        )]
        token_days: i64,
        /// Serve GET /metrics (Prometheus text format) on this address, apart
        /// from the sync API; port 0 picks a free one [default: off].
        #[arg(long, env = "RETURNEE_SERVER_METRICS_BIND", value_name = "ADDR")]
        metrics_bind: Option<String>,
    },
    /// Check the audit trail's hash chain (run it while the server is
    /// stopped); exits 1 and names the first broken entry if it was altered.
    AuditVerify {
        /// The data folder of an existing server [default: ./returnee-data].
        #[arg(long, env = "RETURNEE_SERVER_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print the API's OpenAPI 3.1 description (as GET /v1/openapi.json
    /// serves it; docs/openapi.json is a copy).
    Openapi,
    /// Print a fresh admin enrollment code (run it while the server is stopped).
    AdminCode {
        /// The data folder of an existing server [default: ./returnee-data].
        #[arg(long, env = "RETURNEE_SERVER_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check the store and, when its index does not open or a check fails,
    /// rebuild the index from the journal (run it while the server is stopped).
    Repair {
        /// The data folder of an existing server [default: ./returnee-data].
        #[arg(long, env = "RETURNEE_SERVER_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Write a consistent, compressed backup of the store (the server may be running).
    Backup {
        /// The data folder of an existing server [default: ./returnee-data].
        #[arg(long, env = "RETURNEE_SERVER_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The backup file to write (must not exist yet).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Make a new data folder from a backup; devices sync with it without enrolling again.
    Restore {
        /// The backup file `returnee-server backup` wrote.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The data folder to make (new, or empty).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Certificates for HTTPS.
    Tls {
        #[command(subcommand)]
        action: TlsAction,
    },
}

#[derive(Debug, Subcommand)]
enum TlsAction {
    /// Make a private certificate authority and a server certificate issued
    /// by it (ca.pem, ca-key.pem, server.pem, server-key.pem), and print the
    /// `serve` and `enroll` lines that use them.
    Init {
        /// The folder to write the four files to (made if needed; existing files are never overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The host name laptops use in the server's address (https://NAME:PORT).
        #[arg(long, value_name = "HOSTNAME")]
        name: String,
        /// An IP address laptops may use instead of the name; repeat for several.
        #[arg(long = "ip", value_name = "ADDR")]
        ips: Vec<std::net::IpAddr>,
    },
}

/// A command line or folder that cannot be used: exit 2, as clap's errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// Refuses a data folder that does not exist or holds no server store
/// (every command but `serve`, which makes one at first start).
fn existing_store(dir: &Path) -> Result<(), Usage> {
    if !dir.is_dir() {
        return Err(Usage(format!(
            "the data folder {} does not exist; give the folder `returnee-server serve` uses (--data-dir or RETURNEE_SERVER_DATA_DIR)",
            dir.display()
        )));
    }
    // The journal is the store; the index beside it can be rebuilt.
    if !dir.join("journal").is_dir() {
        return Err(Usage(format!(
            "{} holds no server store; give the folder `returnee-server serve` uses (--data-dir or RETURNEE_SERVER_DATA_DIR)",
            dir.display()
        )));
    }
    Ok(())
}

/// Binds `bind`, telling a malformed address from a busy or forbidden one.
fn listen(bind: &str) -> anyhow::Result<TcpListener> {
    listen_for("--bind", bind)
}

/// [`listen`] for the address of the flag `flag`.
fn listen_for(flag: &str, bind: &str) -> anyhow::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = bind
        .to_socket_addrs()
        .map_err(|e| {
            Usage(format!(
                "{flag} '{bind}' is not an address to listen on ({e}); write HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:8080 or 0.0.0.0:8443"
            ))
        })?
        .collect();
    TcpListener::bind(&addrs[..]).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the port is in use: is another server running? stop it or choose another port"
                    .to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "not allowed: ports below 1024 need extra rights; choose a port from 1024 up"
                    .to_string()
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "this machine has no such address; use 0.0.0.0 for all of them, or one of its own"
                    .to_string()
            }
            _ => e.to_string(),
        };
        anyhow::Error::new(Usage(format!(
            "cannot listen on {bind}: {why}. Nothing was created or changed"
        )))
    })
}

fn data_dir(d: Option<PathBuf>) -> PathBuf {
    d.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

fn serve(
    data_dir: PathBuf,
    bind: &str,
    tls: Option<(PathBuf, PathBuf)>,
    session_hours: i64,
    token_days: i64,
    metrics_bind: Option<String>,
) -> anyhow::Result<()> {
    let mut config = ServerConfig::new(data_dir);
    config.session_ttl = chrono::Duration::hours(session_hours);
    config.token_lifetime = chrono::Duration::days(token_days);
    config.metrics_bind = metrics_bind;
    // Read the certificate and key before anything else: a bad file stops
    // the start before the store is opened.
    if let Some((cert, key)) = tls {
        config.tls = Some(Tls::load(&cert, &key)?);
    }
    let scheme = config.scheme();
    let plain = config.tls.is_none();
    // Listen before the store is made: a busy port changes nothing, and the
    // first admin code is shown by the start that made the store.
    let listener = listen(bind)?;
    let metrics_listener = match &config.metrics_bind {
        Some(at) => Some(listen_for("--metrics-bind", at)?),
        None => None,
    };
    let data_dir = config.data_dir.clone();
    returnee_store::private::make_dir(&data_dir)
        .with_context(|| format!("cannot make the data folder {}", data_dir.display()))?;
    let prepared = prepare(config)?;
    returnee_store::private::tighten(&data_dir)
        .with_context(|| format!("cannot make the files in {} private", data_dir.display()))?;
    if let Some(mode) = returnee_store::private::wider_than_private(&data_dir) {
        eprintln!(
            "WARNING: the data folder {} can be read by other users of this machine (mode {mode:o}); close it with: chmod 700 '{}'",
            data_dir.display(),
            data_dir.display()
        );
    }
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {scheme}://{addr}")?;
    if let Some(code) = &prepared.initial_admin_code {
        writeln!(out, "admin enrollment code: {code}")?;
    }
    if let Some(l) = &metrics_listener {
        writeln!(out, "metrics on http://{}/metrics", l.local_addr()?)?;
    }
    out.flush()?;
    drop(out);
    if plain && !addr.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on {addr}, which is not loopback: anyone on the network can read the traffic; serve TLS with --tls-cert and --tls-key"
        );
        eprintln!(
            "WARNING: plain HTTP on {addr} (not loopback): traffic can be read on the network; serve TLS with --tls-cert FILE --tls-key FILE"
        );
    }
    let store = prepared.store.clone();
    actix_web::rt::System::new().block_on(async {
        let api = returnee_server::http_server(&prepared, listener)?;
        let metrics = match metrics_listener {
            Some(l) => {
                let server = returnee_server::metrics::http_server(&prepared, l)?;
                let handle = server.handle();
                actix_web::rt::spawn(server);
                Some(handle)
            }
            None => None,
        };
        let served = api.await;
        if let Some(handle) = metrics {
            handle.stop(true).await;
        }
        served
    })?;
    prepared.duplicates.close()?;
    store.flush()?;
    tracing::info!("stopped; store flushed");
    Ok(())
}

fn admin_code(data_dir: PathBuf) -> anyhow::Result<()> {
    existing_store(&data_dir)?;
    let store = ServerStore::open(&data_dir)?;
    let code = store.mint_code(
        returnee_shared::wire::Role::Admin,
        Vec::new(),
        1,
        None,
        chrono::Utc::now(),
    )?;
    println!("admin enrollment code: {code}");
    Ok(())
}

fn tls_init(out: &Path, name: &str, ips: &[std::net::IpAddr]) -> anyhow::Result<()> {
    let files = returnee_server::tls_init::init(out, name, ips)?;
    let port = 8443;
    println!(
        "wrote {}, {}, {} and {}",
        files.ca_cert.display(),
        files.ca_key.display(),
        files.cert.display(),
        files.key.display()
    );
    println!(
        "keep {} offline: it issues certificates every laptop trusts",
        files.ca_key.display()
    );
    println!();
    println!("serve with:");
    println!(
        "  returnee-server serve --bind 0.0.0.0:{port} --tls-cert {} --tls-key {}",
        files.cert.display(),
        files.key.display()
    );
    println!(
        "enroll each laptop with (copy {} to it):",
        files.ca_cert.display()
    );
    println!(
        "  returnee enroll --server https://{name}:{port} --ca {} --code CODE",
        files.ca_cert.display()
    );
    for ip in ips {
        println!(
            "  (or --server https://{}:{port})",
            std::net::SocketAddr::new(*ip, port).ip()
        );
    }
    Ok(())
}

fn audit_verify(data_dir: PathBuf) -> anyhow::Result<()> {
    existing_store(&data_dir)?;
    let store = ServerStore::open(&data_dir)?;
    let entries = store.verify_audit()??;
    println!("audit trail intact: {entries} entries, every link checked");
    Ok(())
}

fn repair(data_dir: PathBuf) -> anyhow::Result<()> {
    existing_store(&data_dir)?;
    let done = returnee_store::server::repair(&data_dir)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "journal: {} frames checked, every one intact",
        done.frames
    )?;
    if let Some(cut) = &done.cut {
        writeln!(out, "journal: {cut} (work that was never acknowledged)")?;
    }
    for (check, ok) in &done.checks {
        writeln!(out, "index: {check}: {}", if *ok { "ok" } else { "FAILED" })?;
    }
    match &done.rebuilt {
        Some(aside) => writeln!(
            out,
            "rebuilt the index from the journal: {} records (the old index is in {}; delete it once the server runs)",
            done.records,
            aside.display()
        )?,
        None => writeln!(out, "nothing to rebuild: {} records", done.records)?,
    }
    writeln!(out, "took {} ms", done.millis)?;
    Ok(())
}

fn backup(data_dir: PathBuf, out: &Path) -> anyhow::Result<()> {
    existing_store(&data_dir)?;
    let m = returnee_store::server::Backup::take(&data_dir, out, chrono::Utc::now())?;
    println!(
        "wrote {}: {} journal frames up to position {} (log position {}), sha256 {}",
        out.display(),
        m.frames,
        m.end,
        m.last_seq,
        m.sha256
    );
    Ok(())
}

fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let (m, store) = returnee_store::server::Backup::restore(from, data_dir)?;
    let audit = store.verify_audit()??;
    store.flush()?;
    println!(
        "restored {} into {}: {} journal frames (log position {}, taken {}); audit trail intact: {audit} entries",
        from.display(),
        data_dir.display(),
        m.frames,
        m.last_seq,
        m.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    Ok(())
}

fn main() -> ExitCode {
    // Best effort: a kernel without the setting keeps them.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    returnee_server::logging::init(
        cli.log_format,
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    );
    let result = match cli.command {
        Command::Serve {
            data_dir: d,
            bind,
            tls_cert,
            tls_key,
            session_hours,
            token_days,
            metrics_bind,
        } => serve(
            data_dir(d),
            &bind,
            tls_cert.zip(tls_key),
            session_hours,
            token_days,
            metrics_bind,
        ),
        Command::Openapi => std::io::stdout()
            .lock()
            .write_all(returnee_server::openapi::document_json().as_bytes())
            .context("cannot write the description"),
        Command::AdminCode { data_dir: d } => admin_code(data_dir(d)),
        Command::AuditVerify { data_dir: d } => audit_verify(data_dir(d)),
        Command::Repair { data_dir: d } => repair(data_dir(d)),
        Command::Backup { data_dir: d, out } => backup(data_dir(d), &out),
        Command::Restore { from, data_dir } => restore(&from, &data_dir),
        Command::Tls {
            action: TlsAction::Init { out, name, ips },
        } => tls_init(&out, &name, &ips),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A certificate or key file that cannot be served is a usage
            // error, as a wrong flag is (clap exits 2 for those).
            if e.downcast_ref::<TlsError>().is_some()
                || e.downcast_ref::<Usage>().is_some()
                || e.downcast_ref::<returnee_server::tls_init::TlsInitError>()
                    .is_some_and(|e| {
                        !matches!(e, returnee_server::tls_init::TlsInitError::Write { .. })
                    })
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
