//! The server's configuration, resolved once at start-up (flags, then the
//! environment, then defaults) and passed down.

use std::path::PathBuf;

/// Where the server keeps its data and how much it accepts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The sled store's folder.
    pub data_dir: PathBuf,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        ServerConfig {
            data_dir,
            max_body: 64 * 1024 * 1024,
            workers: 0,
        }
    }
}

/// The default data folder when neither `--data-dir` nor `RETURNEE_SERVER_DATA_DIR` is given.
pub const DEFAULT_DATA_DIR: &str = "./returnee-data";
/// The default address to listen on.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
