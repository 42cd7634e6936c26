//! What every request handler shares.

use crate::config::ServerConfig;
use crate::duplicates::DuplicateIndex;
use crate::store::ServerStore;

/// Shared by every worker: the store (one sled handle), its duplicate
/// index, and the configuration.
pub struct AppState {
    pub store: ServerStore,
    pub config: ServerConfig,
    pub duplicates: DuplicateIndex,
}
