//! The server's configuration, resolved once at start-up (flags, then the
//! environment, then defaults) and passed down.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::tls::Tls;

/// Where the server keeps its data, how much it accepts, and how it is reached.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The sled store's folder.
    pub data_dir: PathBuf,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// The certificate and key to serve HTTPS with (`--tls-cert`/`--tls-key`);
    /// `None` serves plain HTTP.
    pub tls: Option<Tls>,
    /// How long a dashboard sign-in lasts.
    pub session_ttl: chrono::Duration,
    /// How long a device token lasts from when it was issued
    /// (`--token-days`); a device rotates it when less than a third is left.
    pub token_lifetime: chrono::Duration,
    /// Where the time comes from (the machine's clock; tests move it).
    pub clock: Arc<dyn Clock>,
    /// Where `GET /metrics` is served (`--metrics-bind`), apart from the
    /// sync API; `None`: not at all.
    pub metrics_bind: Option<String>,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        ServerConfig {
            data_dir,
            max_body: 64 * 1024 * 1024,
            workers: 0,
            tls: None,
            session_ttl: chrono::Duration::hours(DEFAULT_SESSION_HOURS),
            token_lifetime: chrono::Duration::days(DEFAULT_TOKEN_DAYS),
            clock: Arc::new(SystemClock),
            metrics_bind: None,
        }
    }

    /// `https` when TLS is on, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// The default data folder when neither `--data-dir` nor `RETURNEE_SERVER_DATA_DIR` is given.
pub const DEFAULT_DATA_DIR: &str = "./returnee-data";
/// The default address to listen on.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// How long a dashboard sign-in lasts unless `--session-hours` says otherwise.
pub const DEFAULT_SESSION_HOURS: i64 = 12;
/// How long a device token lasts unless `--token-days` says otherwise.
pub const DEFAULT_TOKEN_DAYS: i64 = 90;
