//! The laptop's per-record values in packs ([`crate::packs`]: many records
//! to a sled key, in id order): each record's operations under
//! `D/<lower bound>`, the report rows of the families that count under
//! `S/<lower bound>`, and the duplicate index's features under
//! `F/<lower bound>`. A pack is sealed as one value under its own key, like
//! every value ([`super::sealing`]); its key holds only a record id.
//!
//! A pull or an import writes a pack per few dozen families instead of a
//! key per family and kind (sled's cost is per key, and its page table
//! grows with them). Writes are gathered in [`Writes`] and turned into
//! packs at commit, under the store's commit lock, so that two commits
//! cannot both rewrite one pack from the same old value.

use std::collections::BTreeMap;

use returnee_shared::RecordId;
use returnee_shared::packs::DamagedPack;

use super::{Kind, LocalStore, Result, StoreError, Writes};
use crate::packs::{Packs, Seal};

/// Each record's operations (`RecordDoc` as JSON).
pub(super) const DOCS: &[u8] = Kind::Docs.prefix();
/// The report row of each family that counts (`ReportRow`, 19 bytes).
pub(super) const ROWS: &[u8] = Kind::Rows.prefix();
/// The duplicate index's features of each family that counts
/// (`Features::to_bytes`, about 50 bytes).
pub(super) const FEATURES: &[u8] = Kind::Features.prefix();

impl From<DamagedPack> for StoreError {
    fn from(e: DamagedPack) -> Self {
        super::damaged(e.to_string())
    }
}

impl Seal for LocalStore {
    type Error = StoreError;
    fn open(&self, key: &[u8], value: sled::IVec) -> Result<sled::IVec> {
        self.open_value(key, value)
    }
    fn seal(&self, key: &[u8], plain: Vec<u8>) -> Vec<u8> {
        self.cipher.seal(key, plain)
    }
}

impl LocalStore {
    fn packs(&self, prefix: &'static [u8]) -> Packs<'_, LocalStore> {
        Packs {
            tree: &self.db,
            prefix,
            first_always_exists: false,
            seal: self,
        }
    }

    /// The value of record `id` in the packs under `prefix`.
    pub(super) fn packed(&self, prefix: &'static [u8], id: RecordId) -> Result<Option<Vec<u8>>> {
        self.packs(prefix).get(id)
    }

    /// The values of `ids` (sorted, each once) in the packs under `prefix`,
    /// in their order: each pack read and opened once.
    pub(super) fn packed_many(
        &self,
        prefix: &'static [u8],
        ids: &[RecordId],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.packs(prefix).get_many(ids)
    }

    /// Every value in the packs under `prefix`, in record id order.
    pub(super) fn scan_packed(
        &self,
        prefix: &'static [u8],
    ) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + '_ {
        self.packs(prefix).scan()
    }

    /// Turns the docs, rows and features gathered in `w` into pack writes.
    /// The caller holds the commit lock until the batch is applied. Returns
    /// the keys of the packs written.
    pub(super) fn stage_packs(&self, w: &mut Writes) -> Result<Vec<Vec<u8>>> {
        let mut written = Vec::new();
        for (prefix, values) in [
            (DOCS, std::mem::take(&mut w.docs)),
            (ROWS, std::mem::take(&mut w.rows)),
            (FEATURES, std::mem::take(&mut w.features)),
        ] {
            if values.is_empty() {
                continue;
            }
            let updates: Vec<(RecordId, Option<Vec<u8>>)> = values.into_iter().collect();
            written.extend(self.packs(prefix).stage(&mut w.batch, &updates)?);
        }
        Ok(written)
    }
}

/// Per-record values a batch of changes sets (`Some`) or removes (`None`),
/// by record, for [`LocalStore::stage_packs`].
pub(super) type PackedValues = BTreeMap<RecordId, Option<Vec<u8>>>;

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::tests::fields;
    use super::*;

    #[test]
    fn every_commit_rewrites_packs_from_what_the_last_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        // Commits from several threads at once: none may undo another's.
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let store = store.clone();
                s.spawn(move || {
                    for n in 0..50 {
                        store.add(fields(t * 100 + n), Utc::now()).unwrap();
                    }
                });
            }
        });
        assert_eq!(store.views().count(), 200);
        assert_eq!(store.report_rows().count(), 200);
    }
}
