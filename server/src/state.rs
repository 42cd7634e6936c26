//! What every request handler shares.

use crate::config::ServerConfig;
use returnee_store::server::DuplicateIndex;
use returnee_store::server::ServerStore;

/// Shared by every worker: the store (one sled handle), its duplicate
/// index, and the configuration.
pub struct AppState {
    pub store: ServerStore,
    pub config: ServerConfig,
    pub duplicates: DuplicateIndex,
}
