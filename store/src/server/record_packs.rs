//! The server's per-record values in packs, in the order records arrived
//! ([`crate::placed`]): the record entries (`p/<lower place>`, in the store's
//! tree, placed through the index `i/`) and the duplicate index's features
//! of each family (`F/<lower place>`, in the index's tree, at the places the
//! store's index gives).
//!
//! Only the push path writes record packs and the index, under the store's
//! writer lock, and only the index's writer writes feature packs, under its
//! lock, so a pack's read, merge and rewrite cannot interleave with
//! another's. sled applies a batch atomically to readers as well (a batch
//! takes its global write lock), so a reader never sees half of a split.

use returnee_shared::RecordId;

use super::keys::NEXT_PLACE_KEY;
use super::{IndexKind, Kind, Result, StoreError};
use crate::packs::{Packs, Plain};
use crate::placed::{self, Known, KnownIds, Placement, Updates};
use returnee_shared::packs::Place;

static PLAIN: Plain<StoreError> = Plain::new();

/// New records' places wait in runs (`j/`) until [`placed::RUN_LIMIT`] of
/// them are merged into the index's packs (`i/`): a push's records have
/// ids all over the id space.
fn placement(db: &sled::Db) -> Placement<'_, Plain<StoreError>> {
    Placement::new(db, &PLAIN, Kind::Places.prefix(), true, NEXT_PLACE_KEY)
        .with_runs(Kind::PlaceRuns.prefix(), placed::RUN_LIMIT)
}

/// [`placement`], which looks up in the index only the records `known`
/// says may be there, and notes there the records it places: for the push
/// path, under the store's writer lock.
fn placement_knowing<'a>(
    db: &'a sled::Db,
    known: &'a KnownIds,
) -> Placement<'a, Plain<StoreError>> {
    placement(db).with_known_ids(known)
}

/// The key of the records' index's first pack, which every store has.
pub(super) fn first_pack_key(db: &sled::Db) -> Vec<u8> {
    placement(db).first_index_key()
}

/// The records' entries, in the store's tree.
fn records(db: &sled::Db) -> placed::Kind<'_, Plain<StoreError>> {
    Packs::new(db, Kind::Records.prefix(), false, &PLAIN)
}

/// The duplicate index's features of each family it holds, in the index's
/// own tree.
fn features(tree: &sled::Tree) -> placed::Kind<'_, Plain<StoreError>> {
    Packs::new(tree, IndexKind::Features.prefix(), false, &PLAIN)
}

/// The stored entry of record `id`, if the store holds it.
pub(super) fn get(db: &sled::Db, id: RecordId) -> Result<Option<Vec<u8>>> {
    placement(db).get(records(db), id)
}

/// The stored entries of `ids` (sorted, each once), in their order.
pub(super) fn get_many(db: &sled::Db, ids: &[RecordId]) -> Result<placed::Values> {
    placement(db).get_many(records(db), ids)
}

/// The stored entries of `ids` (sorted, each once), in their order, and
/// the places read, for [`stage_knowing`] under the same writer lock
/// (`known`: the store's filter of placed records).
pub(super) fn get_many_placed(
    db: &sled::Db,
    known: &KnownIds,
    ids: &[RecordId],
) -> Result<(Known, placed::Values)> {
    placement_knowing(db, known).get_many_placed(records(db), ids)
}

/// Every stored entry, in the order records arrived.
pub(super) fn scan(db: &sled::Db) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + '_ {
    Placement::scan(records(db))
}

/// [`scan`] of `db`, holding it: the iterator may outlive the index's
/// replacement by an erasure's rewrite (it reads the index it began with).
pub(super) fn scan_held(
    db: std::sync::Arc<sled::Db>,
) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + 'static {
    let iter = db.scan_prefix(Kind::Records.prefix());
    iter.inspect(move |item| {
        // As `crate::db::weighed`: keeps the page cache to its size.
        if let Ok((key, _)) = item {
            let _ = db.get(key);
        }
    })
    .flat_map(|item| match item.map_err(StoreError::from) {
        Err(e) => vec![Err(e)],
        Ok((_, pack)) => returnee_shared::packs::split::<Place, _, StoreError>(&pack, |at| {
            pack.subslice(at.start, at.len())
        }),
    })
    .map(|item| {
        let (_, v) = item?;
        let id = v
            .get(..16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(|b| RecordId(uuid::Uuid::from_bytes(b)))
            .ok_or_else(|| super::damaged("a record pack"))?;
        Ok((id, v.subslice(16, v.len() - 16)))
    })
}

/// Stages new or changed entries (`updates`, sorted by id, each id once)
/// into `batch`; a new record gets the next place. The places of records
/// read by [`get_many_placed`] (`known`) are not read again.
pub(super) fn stage_knowing(
    db: &sled::Db,
    known_ids: &KnownIds,
    batch: &mut sled::Batch,
    updates: &Updates,
    known: &Known,
) -> Result<()> {
    placement_knowing(db, known_ids)
        .stage_knowing(batch, &[(records(db), updates)], &[], known)
        .map(drop)
}

/// The duplicate index's stored features of `ids` (sorted, each once), in
/// their order, from the index's tree.
pub(crate) fn features_get_many(
    db: &sled::Db,
    tree: &sled::Tree,
    ids: &[RecordId],
) -> Result<Vec<Option<Vec<u8>>>> {
    placement(db).get_many(features(tree), ids)
}

/// Stages new, changed or removed features (`updates`, sorted by id, each
/// id once) of the duplicate index in `tree` into `batch`, at the places of
/// records the store already holds.
pub(crate) fn features_stage(
    db: &sled::Db,
    tree: &sled::Tree,
    batch: &mut sled::Batch,
    updates: &Updates,
) -> Result<()> {
    placement(db)
        .stage_placed(batch, features(tree), updates)
        .map(drop)
}
