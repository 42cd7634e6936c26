//! The server's per-record values in packs ([`crate::packs`]): the record
//! entries (`p/<lower bound>`, in the store's tree; the first pack is
//! written when the store is made) and the duplicate index's features of
//! each family (`F/<lower bound>`, in the index's tree).
//!
//! Only the push path writes record packs, under the store's writer lock,
//! and only the index's writer writes feature packs, under its lock, so a
//! pack's read, merge and rewrite cannot interleave with another's. sled
//! applies a batch atomically to readers as well (a batch takes its global
//! write lock), so a reader never sees half of a split.

use returnee_shared::RecordId;

use super::{IndexKind, Kind, Result, StoreError};
use crate::packs::{Packs, Plain};

static PLAIN: Plain<StoreError> = Plain::new();

/// The records' entries, in the store's tree.
fn records(db: &sled::Db) -> Packs<'_, Plain<StoreError>> {
    Packs {
        tree: db,
        prefix: Kind::Records.prefix(),
        first_always_exists: true,
        seal: &PLAIN,
    }
}

/// The duplicate index's features of each family it holds, in the index's
/// own tree.
fn features(tree: &sled::Tree) -> Packs<'_, Plain<StoreError>> {
    Packs {
        tree,
        prefix: IndexKind::Features.prefix(),
        first_always_exists: false,
        seal: &PLAIN,
    }
}

/// The key of the records' first pack, which every store has.
pub(super) fn first_pack_key(db: &sled::Db) -> Vec<u8> {
    records(db).first_key()
}

/// The stored entry of record `id`, if the store holds it.
pub(super) fn get(db: &sled::Db, id: RecordId) -> Result<Option<Vec<u8>>> {
    records(db).get(id)
}

/// The stored entries of `ids` (sorted, each once), in their order.
pub(super) fn get_many(db: &sled::Db, ids: &[RecordId]) -> Result<Vec<Option<Vec<u8>>>> {
    records(db).get_many(ids)
}

/// Every stored entry, in record id order.
pub(super) fn scan(db: &sled::Db) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + '_ {
    records(db).scan()
}

/// Stages new or changed entries (`updates`, sorted by id, each id once)
/// into `batch`.
pub(super) fn stage(
    db: &sled::Db,
    batch: &mut sled::Batch,
    updates: &[(RecordId, Option<Vec<u8>>)],
) -> Result<()> {
    records(db).stage(batch, updates).map(drop)
}

/// The duplicate index's stored features of `ids` (sorted, each once), in
/// their order, from the index's tree.
pub(crate) fn features_get_many(
    tree: &sled::Tree,
    ids: &[RecordId],
) -> Result<Vec<Option<Vec<u8>>>> {
    features(tree).get_many(ids)
}

/// Stages new, changed or removed features (`updates`, sorted by id, each
/// id once) of the duplicate index in `tree` into `batch`.
pub(crate) fn features_stage(
    tree: &sled::Tree,
    batch: &mut sled::Batch,
    updates: &[(RecordId, Option<Vec<u8>>)],
) -> Result<()> {
    features(tree).stage(batch, updates).map(drop)
}
