//! The laptop store as the sync engine sees it
//! ([`returnee_shared::sync::SyncStore`]): its push queue, its cursor and
//! the application of pulled pages, each one durable step.

use returnee_shared::sync::SyncStore;
use returnee_shared::wire::{PullResponse, PushResponse};

use super::*;

impl SyncStore for LocalStore {
    /// Each queued operation with its JSON as queued: pushed as it is.
    type Queued = QueuedOp;
    type Error = StoreError;

    fn pending(&self, limit: usize) -> Result<Vec<QueuedOp>> {
        LocalStore::pending(self, limit)
    }

    fn pending_after(&self, sent: &[&[QueuedOp]], limit: usize) -> Result<Vec<QueuedOp>> {
        let last = sent.iter().rev().find_map(|b| b.last()).map(|q| q.at);
        LocalStore::pending_after(self, last, limit)
    }

    fn acknowledge(&self, sent: &[QueuedOp], ack: &PushResponse) -> Result<()> {
        self.acknowledge_logged(sent, &ack.rejected, ack.logged)
    }

    fn cursor(&self) -> Result<SyncCursor> {
        LocalStore::cursor(self)
    }

    fn apply_pull(&self, page: PullResponse) -> Result<u64> {
        Ok(self.apply_remote(page.ops, &page.forget, page.cursor)? as u64)
    }
}
