//! The server's record entries in packs (`p/<lower bound>`, see
//! `returnee_shared::packs` for the layout and why), over sled.
//!
//! Only the push path writes packs, under the store's writer lock, so a
//! pack's read, merge and rewrite cannot interleave with another's. sled
//! applies a batch atomically to readers as well (a batch takes its global
//! write lock), so a reader never sees half of a split.

use std::ops::Bound;

use returnee_shared::RecordId;
use returnee_shared::packs::{self, FIRST, PackStore};

use super::{Result, StoreError, damaged};

const PREFIX: &[u8] = b"p/";

fn pack_key(lower: RecordId) -> Vec<u8> {
    [PREFIX, lower.0.as_bytes()].concat()
}

fn bound_of(key: &[u8]) -> Result<RecordId> {
    key.get(PREFIX.len()..)
        .and_then(|b| uuid::Uuid::from_slice(b).ok())
        .map(RecordId)
        .ok_or_else(|| damaged("a record pack key"))
}

/// The key of the first pack, which every store has.
pub(super) fn first_pack_key() -> Vec<u8> {
    pack_key(FIRST)
}

struct Packs<'a>(&'a sled::Db);

impl PackStore for Packs<'_> {
    type Error = StoreError;
    type Pack = sled::IVec;

    fn pack_holding(&self, id: RecordId) -> Result<(RecordId, sled::IVec)> {
        match self.0.range(first_pack_key()..=pack_key(id)).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok((bound_of(&k)?, v))
            }
            None => Err(damaged("the first record pack is missing")),
        }
    }

    fn pack_after(&self, lower: RecordId) -> Result<Option<RecordId>> {
        let (from, end) = (pack_key(lower), pack_key(RecordId(uuid::Uuid::max())));
        match self
            .0
            .range::<&[u8], _>((Bound::Excluded(&from[..]), Bound::Included(&end[..])))
            .next()
        {
            Some(item) => Ok(Some(bound_of(&item?.0)?)),
            None => Ok(None),
        }
    }
}

/// The stored entry of record `id`, if the store holds it.
pub(super) fn get(db: &sled::Db, id: RecordId) -> Result<Option<Vec<u8>>> {
    packs::get(&Packs(db), id)
}

/// The stored entries of `ids` (sorted, each once), in their order: one
/// lookup per pack they fall in (a push's new records mostly fall in the
/// last pack).
pub(super) fn get_many(db: &sled::Db, ids: &[RecordId]) -> Result<Vec<Option<Vec<u8>>>> {
    packs::get_many(&Packs(db), ids)
}

/// Every stored entry, in record id order.
pub(super) fn scan(db: &sled::Db) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + '_ {
    super::page_cache::weighed(db, db.scan_prefix(PREFIX)).flat_map(|item| match item {
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
    for (lower, pack) in packs::plan(&Packs(db), updates)? {
        match pack {
            Some(pack) => batch.insert(pack_key(lower), pack),
            None => batch.remove(pack_key(lower)),
        }
    }
    Ok(())
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
            batch.insert(pack_key(lower), pack.expect("a loose entry's pack"));
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
            db.scan_prefix(PREFIX).count(),
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
