//! The `returnee-server` binary: parse, configure, run, map errors to exit
//! codes (2 for usage errors and unusable TLS files, 1 for anything else).

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use returnee_server::config::{DEFAULT_BIND, DEFAULT_DATA_DIR, DEFAULT_SESSION_HOURS};
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
    },
    /// Check the audit trail's hash chain (run it while the server is
    /// stopped); exits 1 and names the first broken entry if it was altered.
    AuditVerify {
        #[arg(long, env = "RETURNEE_SERVER_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print a fresh admin enrollment code (run it while the server is stopped).
    AdminCode {
        #[arg(long, env = "RETURNEE_SERVER_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn data_dir(d: Option<PathBuf>) -> PathBuf {
    d.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

fn serve(
    data_dir: PathBuf,
    bind: &str,
    tls: Option<(PathBuf, PathBuf)>,
    session_hours: i64,
) -> anyhow::Result<()> {
    let mut config = ServerConfig::new(data_dir);
    config.session_ttl = chrono::Duration::hours(session_hours);
    // Read the certificate and key before anything else: a bad file stops
    // the start before the store is opened.
    if let Some((cert, key)) = tls {
        config.tls = Some(Tls::load(&cert, &key)?);
    }
    let scheme = config.scheme();
    let plain = config.tls.is_none();
    let prepared = prepare(config)?;
    let listener = TcpListener::bind(bind)
        .with_context(|| format!("cannot listen on {bind}; is another server using it?"))?;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {scheme}://{addr}")?;
    if let Some(code) = &prepared.initial_admin_code {
        writeln!(out, "admin enrollment code: {code}")?;
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
    actix_web::rt::System::new().block_on(returnee_server::http_server(&prepared, listener)?)?;
    prepared.duplicates.close()?;
    store.flush()?;
    tracing::info!("stopped; store flushed");
    Ok(())
}

fn admin_code(data_dir: PathBuf) -> anyhow::Result<()> {
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

fn audit_verify(data_dir: PathBuf) -> anyhow::Result<()> {
    let store = ServerStore::open(&data_dir)?;
    let entries = store.verify_audit()??;
    println!("audit trail intact: {entries} entries, every link checked");
    Ok(())
}

fn main() -> ExitCode {
    // Best effort: a kernel without the setting keeps them.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            data_dir: d,
            bind,
            tls_cert,
            tls_key,
            session_hours,
        } => serve(data_dir(d), &bind, tls_cert.zip(tls_key), session_hours),
        Command::AdminCode { data_dir: d } => admin_code(data_dir(d)),
        Command::AuditVerify { data_dir: d } => audit_verify(data_dir(d)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A certificate or key file that cannot be served is a usage
            // error, as a wrong flag is (clap exits 2 for those).
            if e.downcast_ref::<TlsError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
