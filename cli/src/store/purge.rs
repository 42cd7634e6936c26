//! Purging synced families from the laptop (`returnee purge`), so that a lost
//! laptop holds only what the worker still needs.
//!
//! A family is *synced* when none of its operations waits in the push queue
//! (`p/`) or is held after the server refused it (`h/`), on a device that has
//! synced at least once: everything it holds of the family is then on the
//! server. A synced family whose newest operation is dated before the cut-off
//! loses its doc, report row, conflicts, duplicate index entries and
//! dismissed pairs, and gets a purged marker (`g/<record id>`, valued with
//! when) so that operations for it pulled later are dropped
//! ([`LocalStore::apply_remote`]) instead of rebuilding a partial record,
//! and an import of it leaves it alone. All in one atomic, flushed batch.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use returnee_shared::RecordId;
use returnee_shared::merge::{Op, RecordDoc};
use returnee_shared::wire::RejectedOp;
use serde::Serialize;

use super::duplicates::{dismissed_key, features_key};
use super::{LocalStore, Result, StoreError, conflicts_key, decode, doc_key, purged_key, row_key};

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeOutcome {
    /// Families removed from this laptop.
    pub removed: u64,
    /// Families old enough, kept because some of their changes are not on
    /// the server yet (pending, or refused by it).
    pub kept_unsynced: u64,
    /// Synced families kept because they changed on or after the cut-off.
    pub kept_recent: u64,
    /// The device never synced: nothing is known to be on the server, so
    /// nothing was removed.
    pub never_synced: bool,
}

impl LocalStore {
    /// Removes every synced family whose newest operation is dated before
    /// `before`, and marks it purged (see the module docs).
    pub fn purge_synced_before(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PurgeOutcome> {
        let mut out = PurgeOutcome::default();
        if self.enrollment()?.is_none() || self.last_sync()?.is_none() {
            out.never_synced = true;
            out.kept_unsynced = self.db.scan_prefix(b"d/").count() as u64;
            return Ok(out);
        }
        let mut unsynced: HashSet<RecordId> = HashSet::new();
        for item in self.scan_values(b"p/") {
            let (_, v) = item?;
            let record = v.get(..16).and_then(|b| uuid::Uuid::from_slice(b).ok());
            let record = record.ok_or_else(|| {
                StoreError::BadValue("an entry of the push queue is damaged".into())
            })?;
            unsynced.insert(RecordId(record));
        }
        for item in self.scan_values(b"h/") {
            let (op, _): (Op, RejectedOp) = decode(&item?.1)?;
            unsynced.insert(op.record);
        }

        let mut w = self.writes();
        let mut purged: HashSet<RecordId> = HashSet::new();
        for item in self.scan_values(b"d/") {
            let (k, v) = item?;
            let id = super::record_id_of(&k);
            let doc: RecordDoc = decode(&v)?;
            let Some(newest) = doc.ops.iter().map(|o| o.at).max() else {
                continue;
            };
            if newest >= before {
                if !unsynced.contains(&id) {
                    out.kept_recent += 1;
                }
                continue;
            }
            if unsynced.contains(&id) {
                out.kept_unsynced += 1;
                continue;
            }
            if let Some(f) = self.features_of(id)? {
                for key in self.index_keys(id, &f) {
                    w.remove(key);
                }
            }
            w.remove(doc_key(id));
            w.remove(row_key(id));
            w.remove(conflicts_key(id));
            w.remove(features_key(id));
            w.put(purged_key(id), &now);
            purged.insert(id);
        }
        if !purged.is_empty() {
            for item in self.db.scan_prefix(b"x/") {
                let (k, _) = item?;
                let ids = [&k[2..18], &k[18..34]]
                    .map(|b| RecordId(uuid::Uuid::from_slice(b).expect("16-byte record ids")));
                if ids.iter().any(|id| purged.contains(id)) {
                    debug_assert_eq!(&k[..], &dismissed_key(ids[0], ids[1])[..]);
                    w.remove(k.to_vec());
                }
            }
        }
        out.removed = purged.len() as u64;
        self.commit(w)?;
        Ok(out)
    }
}
