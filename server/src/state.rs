//! What every request handler shares.

use crate::config::ServerConfig;
use crate::store::ServerStore;

/// Shared by every worker: the store (one sled handle) and the configuration.
pub struct AppState {
    pub store: ServerStore,
    pub config: ServerConfig,
}
