//! The server's per-record values in packs, over sled (see
//! `returnee_shared::packs` for the layout and why): the record entries
//! (`p/<lower bound>`, in the store's tree) and the duplicate index's
//! features of each family (`F/<lower bound>`, in the index's tree).
//!
//! Only the push path writes packs, under the store's writer lock, so a
//! pack's read, merge and rewrite cannot interleave with another's. sled
//! applies a batch atomically to readers as well (a batch takes its global
//! write lock), so a reader never sees half of a split.

use std::ops::Bound;

use returnee_shared::RecordId;
use returnee_shared::packs::{self, FIRST, PackStore};

use super::{Result, StoreError, damaged};

/// One set of packs: where it lives and what its absence means.
#[derive(Clone, Copy)]
struct Kind {
    prefix: &'static [u8],
    /// The records' first pack is written when the store is made: its
    /// absence is damage. The duplicate index's features have none until
    /// the first family is indexed.
    first_always_exists: bool,
}

/// The records' entries, in the store's tree.
const RECORDS: Kind = Kind {
    prefix: b"p/",
    first_always_exists: true,
};

/// The duplicate index's features of each family it holds, in the index's
/// own tree ([`features_get_many`], [`features_stage`]).
const FEATURES: Kind = Kind {
    prefix: b"F/",
    first_always_exists: false,
};

fn pack_key(kind: Kind, lower: RecordId) -> Vec<u8> {
    [kind.prefix, lower.0.as_bytes()].concat()
}

fn bound_of(kind: Kind, key: &[u8]) -> Result<RecordId> {
    key.get(kind.prefix.len()..)
        .and_then(|b| uuid::Uuid::from_slice(b).ok())
        .map(RecordId)
        .ok_or_else(|| damaged("a pack key"))
}

/// The key of the records' first pack, which every store has.
pub(super) fn first_pack_key() -> Vec<u8> {
    pack_key(RECORDS, FIRST)
}

struct Packs<'a> {
    tree: &'a sled::Tree,
    kind: Kind,
}

impl PackStore for Packs<'_> {
    type Error = StoreError;
    type Pack = sled::IVec;

    fn pack_holding(&self, id: RecordId) -> Result<(RecordId, sled::IVec)> {
        let range = pack_key(self.kind, FIRST)..=pack_key(self.kind, id);
        match self.tree.range(range).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok((bound_of(self.kind, &k)?, v))
            }
            None if self.kind.first_always_exists => {
                Err(damaged("the first record pack is missing"))
            }
            // None yet: the first, empty.
            None => Ok((FIRST, sled::IVec::default())),
        }
    }

    fn pack_after(&self, lower: RecordId) -> Result<Option<RecordId>> {
        let from = pack_key(self.kind, lower);
        let end = pack_key(self.kind, RecordId(uuid::Uuid::max()));
        match self
            .tree
            .range::<&[u8], _>((Bound::Excluded(&from[..]), Bound::Included(&end[..])))
            .next()
        {
            Some(item) => Ok(Some(bound_of(self.kind, &item?.0)?)),
            None => Ok(None),
        }
    }
}

fn records(db: &sled::Db) -> Packs<'_> {
    Packs {
        tree: db,
        kind: RECORDS,
    }
}

/// Stages `updates` (sorted by id, each id once) of the packs `packs`.
fn stage_in(
    packs: &Packs<'_>,
    batch: &mut sled::Batch,
    updates: &[(RecordId, Option<Vec<u8>>)],
) -> Result<()> {
    for (lower, pack) in packs::plan(packs, updates)? {
        match pack {
            Some(pack) => batch.insert(pack_key(packs.kind, lower), pack),
            None => batch.remove(pack_key(packs.kind, lower)),
        }
    }
    Ok(())
}

/// The stored entry of record `id`, if the store holds it.
pub(super) fn get(db: &sled::Db, id: RecordId) -> Result<Option<Vec<u8>>> {
    packs::get(&records(db), id)
}

/// The stored entries of `ids` (sorted, each once), in their order: one
/// lookup per pack they fall in (a push's new records mostly fall in the
/// last pack).
pub(super) fn get_many(db: &sled::Db, ids: &[RecordId]) -> Result<Vec<Option<Vec<u8>>>> {
    packs::get_many(&records(db), ids)
}

/// Every stored entry, in record id order.
pub(super) fn scan(db: &sled::Db) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + '_ {
    super::page_cache::weighed(db, db.scan_prefix(RECORDS.prefix)).flat_map(|item| match item {
        Err(e) => vec![Err(e.into())],
        Ok((_, pack)) => packs::split(&pack, |at| pack.subslice(at.start, at.len())),
    })
}

/// Stages new or changed entries (`updates`, sorted by id, each id once)
/// into `batch`.
pub(super) fn stage(
    db: &sled::Db,
    batch: &mut sled::Batch,
    updates: &[(RecordId, Option<Vec<u8>>)],
) -> Result<()> {
    stage_in(&records(db), batch, updates)
}

/// The duplicate index's stored features of `ids` (sorted, each once), in
/// their order, from the index's tree: one lookup per pack.
pub(crate) fn features_get_many(
    tree: &sled::Tree,
    ids: &[RecordId],
) -> Result<Vec<Option<Vec<u8>>>> {
    let packs = Packs {
        tree,
        kind: FEATURES,
    };
    packs::get_many(&packs, ids)
}

/// Stages new, changed or removed features (`updates`, sorted by id, each
/// id once) of the duplicate index in `tree` into `batch`. The index's
/// writer holds its lock, so no other write rewrites these packs meanwhile.
pub(crate) fn features_stage(
    tree: &sled::Tree,
    batch: &mut sled::Batch,
    updates: &[(RecordId, Option<Vec<u8>>)],
) -> Result<()> {
    let packs = Packs {
        tree,
        kind: FEATURES,
    };
    stage_in(&packs, batch, updates)
}

/// Moves the record entries of a store of format 3 (one key each, under
/// `old_prefix`) into packs, a few thousand per batch. Each batch removes
/// the keys it packs, so an interrupted move resumes where it stopped.
/// Returns how many entries moved.
pub(super) fn pack_loose_entries(db: &sled::Db, old_prefix: &[u8]) -> Result<u64> {
    const PER_BATCH: usize = 64 * packs::PACK_RECORDS;
    let mut moved = 0;
    loop {
        let loose = db
            .scan_prefix(old_prefix)
            .take(PER_BATCH)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut batch = sled::Batch::default();
        let first_exists = db.get(first_pack_key())?.is_some();
        if loose.is_empty() {
            if !first_exists {
                batch.insert(first_pack_key(), Vec::new());
                db.apply_batch(batch)?;
            }
            return Ok(moved);
        }
        let mut parsed = Vec::with_capacity(loose.len());
        for (k, v) in &loose {
            let id = k
                .get(old_prefix.len()..)
                .and_then(|b| uuid::Uuid::from_slice(b).ok())
                .ok_or_else(|| damaged("a record key"))?;
            parsed.push((RecordId(id), &v[..]));
            batch.remove(k);
        }
        for (lower, pack) in packs::pack_loose(&parsed, first_exists) {
            batch.insert(
                pack_key(RECORDS, lower),
                pack.expect("a loose entry's pack"),
            );
        }
        db.apply_batch(batch)?;
        moved += loose.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> RecordId {
        RecordId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn loose_entries_of_an_older_store_move_into_packs_and_resume_after_a_stop() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let loose = |from: u128, to: u128| {
            for i in from..to {
                db.insert(
                    [&b"r/"[..], id(i * 3).0.as_bytes()].concat(),
                    vec![i as u8; 5],
                )
                .unwrap();
            }
        };
        let n = 64 * packs::PACK_RECORDS as u128 + 10;
        loose(0, n / 2);
        assert_eq!(pack_loose_entries(&db, b"r/").unwrap(), (n / 2) as u64);
        // What a move stopped part way leaves: the lower ids packed, the
        // higher ones still loose. Running it again finishes it.
        loose(n / 2, n);
        assert_eq!(pack_loose_entries(&db, b"r/").unwrap(), (n - n / 2) as u64);
        assert_eq!(db.scan_prefix(b"r/").count(), 0);
        assert_eq!(
            db.scan_prefix(RECORDS.prefix).count(),
            (n as usize).div_ceil(packs::PACK_RECORDS) + 1,
            "full packs, the second move's starting after the first's"
        );
        let scanned: Vec<RecordId> = scan(&db).map(|r| r.unwrap().0).collect();
        assert_eq!(scanned, (0..n).map(|i| id(i * 3)).collect::<Vec<_>>());
        for i in 0..n {
            assert_eq!(
                get(&db, id(i * 3)).unwrap().unwrap().to_vec(),
                vec![i as u8; 5]
            );
        }
        assert_eq!(pack_loose_entries(&db, b"r/").unwrap(), 0);
        let empty = sled::Config::new().temporary(true).open().unwrap();
        assert_eq!(pack_loose_entries(&empty, b"r/").unwrap(), 0);
        assert_eq!(get(&empty, id(1)).unwrap(), None);
    }
}
