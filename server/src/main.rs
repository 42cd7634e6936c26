//! The `returnee-server` binary: parse, configure, run, map errors to exit codes.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use returnee_server::config::{DEFAULT_BIND, DEFAULT_DATA_DIR};
use returnee_server::{ServerConfig, ServerStore, prepare};

// sled copies and frees many small buffers per write; mimalloc serves that
// markedly faster than the system allocator.
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

fn serve(data_dir: PathBuf, bind: &str) -> anyhow::Result<()> {
    let prepared = prepare(ServerConfig::new(data_dir))?;
    let listener = TcpListener::bind(bind)
        .with_context(|| format!("cannot listen on {bind}; is another server using it?"))?;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}")?;
    if let Some(code) = &prepared.initial_admin_code {
        writeln!(out, "admin enrollment code: {code}")?;
    }
    out.flush()?;
    drop(out);
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on {addr}, which is not loopback: anyone on the network can read the traffic; put TLS in front"
        );
        eprintln!(
            "WARNING: plain HTTP on {addr} (not loopback): traffic can be read on the network"
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { data_dir: d, bind } => serve(data_dir(d), &bind),
        Command::AdminCode { data_dir: d } => admin_code(data_dir(d)),
        Command::AuditVerify { data_dir: d } => audit_verify(data_dir(d)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
