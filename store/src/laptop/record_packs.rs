//! The laptop's per-record values in packs, in the order records arrived
//! ([`crate::placed`]): each record's operations under `D/<lower place>`,
//! the report rows of the families that count under `S/<lower place>`, and
//! the duplicate index's features under `F/<lower place>`, placed through
//! the index `I/`. A pack is sealed as one value under its own key, like
//! every value ([`super::sealing`]); its key holds only a place or a record
//! id.
//!
//! A pull or an import writes a pack per few dozen families instead of a
//! key per family and kind (sled's cost is per key, and its page table
//! grows with them), and appends them whatever the order of their ids.
//! Writes are gathered in [`Writes`] and turned into packs at commit, under
//! the store's commit lock, so that two commits cannot both rewrite one
//! pack from the same old value.

use std::collections::BTreeMap;

use returnee_shared::RecordId;
use returnee_shared::packs::DamagedPack;

use super::keys::NEXT_PLACE_KEY;
use super::recent::WithRecent;
use super::{Kind, LocalStore, Result, StoreError, WriteLock, Writes};
use crate::packs::{Packs, Seal};
use crate::placed::{self, Placement};

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

/// A batch asks the filter of placed records once it holds at least
/// 1/`KNOWN_IDS_SHARE` of the records here: a pull or an import into a
/// new store, not an `add` or a pull of edits to a large one.
const KNOWN_IDS_SHARE: u64 = 16;

/// A store's filter of placed records ([`LocalStore::placement_locked`]).
pub(super) fn known_ids() -> std::sync::Arc<placed::KnownIds> {
    std::sync::Arc::new(placed::KnownIds::for_batches_over(KNOWN_IDS_SHARE))
}

impl LocalStore {
    pub(super) fn placement(&self) -> Placement<'_, LocalStore> {
        Placement::new(&self.db, self, Kind::Places.prefix(), false, NEXT_PLACE_KEY)
            .with_runs(Kind::PlaceRuns.prefix(), placed::RUN_LIMIT)
    }

    /// [`LocalStore::placement`], which skips looking up in the index the
    /// records its filter has never seen placed. Only under the commit lock
    /// (`_lock`), which every write that places records holds: reads without
    /// it would build the filter while a batch is being placed.
    pub(super) fn placement_locked(&self, _lock: &WriteLock<'_>) -> Placement<'_, LocalStore> {
        self.placement().with_known_ids(&self.known)
    }

    fn kind(&self, prefix: &'static [u8]) -> placed::Kind<'_, LocalStore> {
        Packs::new(&self.db, prefix, false, self)
    }

    /// The value of record `id` in the packs under `prefix`, or the one
    /// waiting beside them ([`super::recent`]).
    pub(super) fn packed(&self, prefix: &'static [u8], id: RecordId) -> Result<Option<Vec<u8>>> {
        if let Some(waiting) = self.recent()?.get(prefix, id) {
            return Ok(waiting.map(<[u8]>::to_vec));
        }
        self.placement().get(self.kind(prefix), id)
    }

    /// The values of `ids` (sorted, each once) in the packs under `prefix`
    /// or waiting beside them, in their order: each pack read and opened
    /// once.
    pub(super) fn packed_many(
        &self,
        prefix: &'static [u8],
        ids: &[RecordId],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.packed_many_with(self.placement(), prefix, ids)
    }

    /// The values under `prefix` of `ids` (any order, repeats allowed), by
    /// id: each pack read once, as [`LocalStore::packed_many`] does.
    pub(super) fn packed_by_id(
        &self,
        prefix: &'static [u8],
        ids: &[RecordId],
    ) -> Result<std::collections::HashMap<RecordId, Vec<u8>>> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let values = self.packed_many(prefix, &sorted)?;
        Ok(sorted
            .into_iter()
            .zip(values)
            .filter_map(|(id, v)| Some((id, v?)))
            .collect())
    }

    /// [`LocalStore::packed_many`] under the commit lock, through the
    /// filter of placed records ([`LocalStore::placement_locked`]).
    pub(super) fn packed_many_locked(
        &self,
        lock: &WriteLock<'_>,
        prefix: &'static [u8],
        ids: &[RecordId],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.packed_many_with(self.placement_locked(lock), prefix, ids)
    }

    fn packed_many_with(
        &self,
        placement: Placement<'_, LocalStore>,
        prefix: &'static [u8],
        ids: &[RecordId],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let recent = self.recent()?;
        if recent.is_empty() {
            return placement.get_many(self.kind(prefix), ids);
        }
        let waiting: Vec<Option<Option<&[u8]>>> =
            ids.iter().map(|id| recent.get(prefix, *id)).collect();
        let packed_ids: Vec<RecordId> = ids
            .iter()
            .zip(&waiting)
            .filter(|(_, w)| w.is_none())
            .map(|(id, _)| *id)
            .collect();
        let mut packed = placement
            .get_many(self.kind(prefix), &packed_ids)?
            .into_iter();
        Ok(waiting
            .into_iter()
            .map(|w| match w {
                Some(w) => w.map(<[u8]>::to_vec),
                None => packed.next().flatten(),
            })
            .collect())
    }

    /// Every value in the packs under `prefix` (or waiting beside them), in
    /// the order records arrived on this laptop; a record whose only value
    /// of this kind waits beside the packs comes last.
    pub(super) fn scan_packed(
        &self,
        prefix: &'static [u8],
    ) -> Box<dyn Iterator<Item = Result<(RecordId, sled::IVec)>> + '_> {
        match self.recent() {
            Ok(recent) => Box::new(WithRecent::new(
                Placement::scan(self.kind(prefix)),
                recent,
                prefix,
            )),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    /// Turns the docs, rows and features gathered in `w` into writes:
    /// those of records already here wait beside the packs
    /// ([`super::recent`]), the others go into the packs. What waits goes
    /// into the packs first, in batches of its own, if too much would wait,
    /// when a record's operations are removed (a purge; it leaves the index)
    /// or when `w.fold_recent`; the batch's values then go into the packs
    /// too. The caller holds the commit lock until the batch is applied.
    /// Returns the keys written.
    pub(super) fn stage_packs(&self, lock: &WriteLock<'_>, w: &mut Writes) -> Result<Vec<Vec<u8>>> {
        if w.docs.is_empty() && w.rows.is_empty() && w.features.is_empty() && !w.fold_recent {
            return Ok(Vec::new());
        }
        let mut recent = self.recent()?;
        let forgets = w.docs.values().any(Option::is_none);
        if (forgets || w.fold_recent) && !recent.is_empty() {
            self.fold_in_pieces(lock, &recent)?;
            recent = self.recent()?;
        }
        if !forgets && !w.fold_recent {
            let fresh = |values: &mut PackedValues| -> PackedValues {
                let (new, old) = std::mem::take(values)
                    .into_iter()
                    .partition(|(id, _)| w.fresh.contains(id));
                *values = old;
                new
            };
            let (docs, rows, features) = (
                fresh(&mut w.docs),
                fresh(&mut w.rows),
                fresh(&mut w.features),
            );
            let mut staged =
                self.stage_recent(&mut w.batch, &recent, [&w.docs, &w.rows, &w.features])?;
            if staged.is_none() && !recent.is_empty() {
                // Too much would wait: what waits goes into the packs first.
                self.fold_in_pieces(lock, &recent)?;
                recent = self.recent()?;
                staged =
                    self.stage_recent(&mut w.batch, &recent, [&w.docs, &w.rows, &w.features])?;
            }
            if let Some(mut keys) = staged {
                w.docs = docs;
                w.rows = rows;
                w.features = features;
                keys.extend(self.stage_into_packs(lock, w)?);
                return Ok(keys);
            }
            w.docs.extend(docs);
            w.rows.extend(rows);
            w.features.extend(features);
        }
        // Nothing waits now: the batch's values go into the packs.
        debug_assert!(recent.is_empty());
        self.stage_into_packs(lock, w)
    }

    /// Stages the docs, rows and features gathered in `w` into the packs;
    /// a record whose operations are removed leaves the index.
    pub(super) fn stage_into_packs(
        &self,
        lock: &WriteLock<'_>,
        w: &mut Writes,
    ) -> Result<Vec<Vec<u8>>> {
        let docs: Vec<(RecordId, Option<Vec<u8>>)> =
            std::mem::take(&mut w.docs).into_iter().collect();
        let rows: Vec<(RecordId, Option<Vec<u8>>)> =
            std::mem::take(&mut w.rows).into_iter().collect();
        let features: Vec<(RecordId, Option<Vec<u8>>)> =
            std::mem::take(&mut w.features).into_iter().collect();
        if docs.is_empty() && rows.is_empty() && features.is_empty() {
            return Ok(Vec::new());
        }
        let forget: Vec<RecordId> = docs.iter().filter(|d| d.1.is_none()).map(|d| d.0).collect();
        self.placement_locked(lock).stage(
            &mut w.batch,
            &[
                (self.kind(DOCS), &docs),
                (self.kind(ROWS), &rows),
                (self.kind(FEATURES), &features),
            ],
            &forget,
        )
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
