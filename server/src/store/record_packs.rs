//! Record entries packed many to a sled key (`p/<lower bound>`), sorted by
//! record id.
//!
//! sled pays about 10 µs for every key a batch writes, whatever its size
//! (a leaf holds at most 16 keys, so new keys mean page splits), and its
//! page table grows with the number of keys. One key per record made the
//! record entries the largest cost of a push and of the server's memory.
//! Packs of up to [`PACK_RECORDS`] entries cut both about fiftyfold.
//!
//! Layout: the pack keyed `p/<id>` holds every record whose id is at least
//! `<id>` and below the next pack's key; the first pack is keyed by the nil
//! id, so every id has exactly one pack, found with one reverse range
//! lookup. A pack is its entries in id order, each the record id (16
//! bytes), the entry's length (4 bytes, big-endian), then the entry.
//!
//! Only the push path writes packs, under the store's writer lock, so a
//! pack's read, merge and rewrite cannot interleave with another's. sled
//! applies a batch atomically to readers as well (a batch takes its global
//! write lock), so a reader never sees half of a split.

use std::ops::Bound;

use returnee_shared::RecordId;

use super::{Result, damaged};

/// Most record entries in one pack (an entry is about 50 bytes, so a pack
/// is about 4 KB). Records ids are time-ordered (UUID v7), so new records
/// mostly land in the last pack and fill it before it is cut.
pub(super) const PACK_RECORDS: usize = 64;
const PREFIX: &[u8] = b"p/";

fn pack_key(lower: &[u8; 16]) -> Vec<u8> {
    [PREFIX, lower].concat()
}

/// The key of the first pack, which every store has.
pub(super) fn first_pack_key() -> Vec<u8> {
    pack_key(&[0; 16])
}

/// The entries of a pack, in order: (record id, start, length) of each.
fn entries(pack: &[u8]) -> Option<Vec<(RecordId, usize, usize)>> {
    let mut out = Vec::with_capacity(PACK_RECORDS);
    let mut at = 0;
    while at < pack.len() {
        let id: [u8; 16] = pack.get(at..at + 16)?.try_into().ok()?;
        let len = u32::from_be_bytes(pack.get(at + 16..at + 20)?.try_into().ok()?) as usize;
        pack.get(at + 20..at + 20 + len)?;
        out.push((RecordId(uuid::Uuid::from_bytes(id)), at + 20, len));
        at += 20 + len;
    }
    Some(out)
}

fn encode_pack<'a>(entries: impl Iterator<Item = (RecordId, &'a [u8])>) -> Vec<u8> {
    let mut v = Vec::new();
    for (id, entry) in entries {
        v.extend_from_slice(id.0.as_bytes());
        v.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        v.extend_from_slice(entry);
    }
    v
}

/// The pack that holds (or would hold) `id`: its key and value.
fn pack_of(db: &sled::Db, id: RecordId) -> Result<(sled::IVec, sled::IVec)> {
    match db
        .range(first_pack_key()..=pack_key(id.0.as_bytes()))
        .next_back()
    {
        Some(item) => Ok(item?),
        None => Err(damaged("the first record pack is missing")),
    }
}

/// The key of the pack after the one keyed `key`, if any.
fn next_pack_key(db: &sled::Db, key: &[u8]) -> Result<Option<sled::IVec>> {
    let end = pack_key(&[0xff; 16]);
    match db
        .range::<&[u8], _>((Bound::Excluded(key), Bound::Included(&end[..])))
        .next()
    {
        Some(item) => Ok(Some(item?.0)),
        None => Ok(None),
    }
}

/// The stored entry of record `id`, if the store holds it.
pub(super) fn get(db: &sled::Db, id: RecordId) -> Result<Option<sled::IVec>> {
    let (_, pack) = pack_of(db, id)?;
    let entries = entries(&pack).ok_or_else(|| damaged("a record pack"))?;
    Ok(entries
        .binary_search_by_key(&id, |e| e.0)
        .ok()
        .map(|i| pack.subslice(entries[i].1, entries[i].2)))
}

/// The stored entries of `ids` (sorted, each once), in their order: one
/// lookup per pack they fall in rather than per record (a push's new
/// records mostly fall in the last pack).
pub(super) fn get_many(db: &sled::Db, ids: &[RecordId]) -> Result<Vec<Option<sled::IVec>>> {
    debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let mut out = Vec::with_capacity(ids.len());
    let mut rest = ids;
    while let Some(first) = rest.first() {
        let (key, pack) = pack_of(db, *first)?;
        let (mine, later) = rest.split_at(in_pack(db, &key, rest, |id| *id)?);
        rest = later;
        let entries = entries(&pack).ok_or_else(|| damaged("a record pack"))?;
        out.extend(mine.iter().map(|id| {
            entries
                .binary_search_by_key(id, |e| e.0)
                .ok()
                .map(|i| pack.subslice(entries[i].1, entries[i].2))
        }));
    }
    Ok(out)
}

/// How many of `items` (sorted by id, the first in the pack keyed `key`)
/// fall in that pack.
fn in_pack<T>(
    db: &sled::Db,
    key: &[u8],
    items: &[T],
    id_of: impl Fn(&T) -> RecordId,
) -> Result<usize> {
    Ok(match next_pack_key(db, key)? {
        Some(upper) => items.partition_point(|t| id_of(t).0.as_bytes()[..] < upper[PREFIX.len()..]),
        None => items.len(),
    })
}

/// Every stored entry, in record id order.
pub(super) fn scan(db: &sled::Db) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + '_ {
    db.scan_prefix(PREFIX).flat_map(|item| match item {
        Err(e) => vec![Err(e.into())],
        Ok((_, pack)) => match entries(&pack) {
            Some(entries) => entries
                .into_iter()
                .map(|(id, at, len)| Ok((id, pack.subslice(at, len))))
                .collect(),
            None => vec![Err(damaged("a record pack"))],
        },
    })
}

/// Stages new or changed entries (`updates`, sorted by id, each id once)
/// into `batch`: every pack they fall in is read, merged and written back,
/// cut in several when it grows past [`PACK_RECORDS`].
pub(super) fn stage(
    db: &sled::Db,
    batch: &mut sled::Batch,
    updates: &[(RecordId, Vec<u8>)],
) -> Result<()> {
    debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
    let mut rest = updates;
    while let Some((first, _)) = rest.first() {
        let (key, pack) = pack_of(db, *first)?;
        let (mine, later) = rest.split_at(in_pack(db, &key, rest, |u| u.0)?);
        rest = later;
        let old = entries(&pack).ok_or_else(|| damaged("a record pack"))?;
        let appended = old.last().is_none_or(|last| last.0 < mine[0].0);
        let merged = merge(
            old.iter().map(|&(id, at, len)| (id, &pack[at..at + len])),
            mine.iter().map(|(id, v)| (*id, &v[..])),
        );
        for (i, piece) in cut(&merged, appended).into_iter().enumerate() {
            let piece_key = if i == 0 {
                key.to_vec()
            } else {
                pack_key(piece[0].0.0.as_bytes())
            };
            batch.insert(piece_key, encode_pack(piece.iter().copied()));
        }
    }
    Ok(())
}

/// Two id-sorted entry lists merged; an id in both takes the update's entry.
fn merge<'a>(
    old: impl Iterator<Item = (RecordId, &'a [u8])>,
    updates: impl Iterator<Item = (RecordId, &'a [u8])>,
) -> Vec<(RecordId, &'a [u8])> {
    let mut out = Vec::new();
    let mut old = old.peekable();
    let mut updates = updates.peekable();
    loop {
        match (old.peek(), updates.peek()) {
            (Some(o), Some(u)) if o.0 < u.0 => out.push(old.next().expect("peeked")),
            (Some(o), Some(u)) if o.0 == u.0 => {
                old.next();
                out.push(updates.next().expect("peeked"));
            }
            (_, Some(_)) => out.push(updates.next().expect("peeked")),
            (Some(_), None) => out.push(old.next().expect("peeked")),
            (None, None) => return out,
        }
    }
}

/// A pack's entries cut into packs of at most [`PACK_RECORDS`]: full ones
/// from the left when records were only added at its end (the next ones
/// will come after them too), else even ones, leaving room on both sides.
fn cut<'e, 'a>(
    entries: &'e [(RecordId, &'a [u8])],
    appended: bool,
) -> Vec<&'e [(RecordId, &'a [u8])]> {
    if entries.len() <= PACK_RECORDS {
        return vec![entries];
    }
    if appended {
        return entries.chunks(PACK_RECORDS).collect();
    }
    let pieces = entries.len().div_ceil(PACK_RECORDS);
    let size = entries.len().div_ceil(pieces);
    entries.chunks(size).collect()
}

/// Moves the record entries of a store of format 3 (one key each, under
/// `old_prefix`) into packs, a few thousand per batch. Each batch removes
/// the keys it packs, so an interrupted move resumes where it stopped.
/// Returns how many entries moved.
pub(super) fn pack_loose_entries(db: &sled::Db, old_prefix: &[u8]) -> Result<u64> {
    const PER_BATCH: usize = 64 * PACK_RECORDS;
    let mut moved = 0;
    loop {
        let loose = db
            .scan_prefix(old_prefix)
            .take(PER_BATCH)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut batch = sled::Batch::default();
        if loose.is_empty() {
            if db.get(first_pack_key())?.is_none() {
                batch.insert(first_pack_key(), Vec::new());
                db.apply_batch(batch)?;
            }
            return Ok(moved);
        }
        let mut parsed = Vec::with_capacity(loose.len());
        for (k, v) in &loose {
            let id: [u8; 16] = k
                .get(old_prefix.len()..)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| damaged("a record key"))?;
            parsed.push((RecordId(uuid::Uuid::from_bytes(id)), &v[..]));
            batch.remove(k);
        }
        let mut first_exists = db.get(first_pack_key())?.is_some();
        for piece in parsed.chunks(PACK_RECORDS) {
            let key = if first_exists {
                pack_key(piece[0].0.0.as_bytes())
            } else {
                first_exists = true;
                first_pack_key()
            };
            batch.insert(key, encode_pack(piece.iter().copied()));
        }
        db.apply_batch(batch)?;
        moved += loose.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn store() -> sled::Db {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(first_pack_key(), Vec::<u8>::new()).unwrap();
        db
    }

    fn id(n: u128) -> RecordId {
        RecordId(uuid::Uuid::from_u128(n))
    }

    /// Every pack: within its bounds, sorted, not over-full, and the first
    /// keyed by the nil id.
    fn check_packs(db: &sled::Db) {
        let packs: Vec<(sled::IVec, sled::IVec)> =
            db.scan_prefix(PREFIX).map(|i| i.unwrap()).collect();
        assert_eq!(packs[0].0.to_vec(), first_pack_key());
        for (i, (key, pack)) in packs.iter().enumerate() {
            let ids: Vec<RecordId> = entries(pack).unwrap().iter().map(|e| e.0).collect();
            assert!(ids.len() <= PACK_RECORDS, "pack {i} holds {}", ids.len());
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            if let Some(first) = ids.first() {
                assert!(first.0.as_bytes()[..] >= key[2..]);
            }
            if let (Some(last), Some((next, _))) = (ids.last(), packs.get(i + 1)) {
                assert!(last.0.as_bytes()[..] < next[2..]);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any sequence of batches, of new records and of changes to
        /// stored ones in any order, reads back as the last write of each.
        #[test]
        fn every_entry_reads_back_its_last_write(
            batches in prop::collection::vec(
                prop::collection::btree_map(0u128..2_000, 0u8..255, 1..300),
                1..8,
            )
        ) {
            let db = store();
            let mut expected = std::collections::BTreeMap::new();
            for writes in &batches {
                let updates: Vec<(RecordId, Vec<u8>)> = writes
                    .iter()
                    .map(|(&n, &b)| (id(n << 64), vec![b; (b % 7) as usize]))
                    .collect();
                let mut batch = sled::Batch::default();
                stage(&db, &mut batch, &updates).unwrap();
                db.apply_batch(batch).unwrap();
                expected.extend(updates);
            }
            check_packs(&db);
            for (rid, v) in &expected {
                prop_assert_eq!(get(&db, *rid).unwrap().map(|e| e.to_vec()), Some(v.clone()));
            }
            prop_assert_eq!(get(&db, id(5_000 << 64)).unwrap(), None);
            // Looked up together, with ids it does not hold among them.
            let asked: Vec<RecordId> = (0u128..2_100).step_by(3).map(|n| id(n << 64)).collect();
            let many = get_many(&db, &asked).unwrap();
            for (rid, got) in asked.iter().zip(many) {
                prop_assert_eq!(got.map(|e| e.to_vec()), expected.get(rid).cloned());
            }
            let scanned: Vec<(RecordId, Vec<u8>)> =
                scan(&db).map(|r| r.map(|(i, e)| (i, e.to_vec())).unwrap()).collect();
            prop_assert_eq!(scanned, expected.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn records_added_in_id_order_fill_their_packs() {
        let db = store();
        for round in 0..10u128 {
            let updates: Vec<(RecordId, Vec<u8>)> = (0..100u128)
                .map(|i| (id(round * 100 + i + 1), vec![1; 40]))
                .collect();
            let mut batch = sled::Batch::default();
            stage(&db, &mut batch, &updates).unwrap();
            db.apply_batch(batch).unwrap();
        }
        check_packs(&db);
        // 1,000 records: 15 full packs and one of 40.
        assert_eq!(
            db.scan_prefix(PREFIX).count(),
            1000usize.div_ceil(PACK_RECORDS)
        );
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
        let n = 64 * PACK_RECORDS as u128 + 10;
        loose(0, n / 2);
        assert_eq!(pack_loose_entries(&db, b"r/").unwrap(), (n / 2) as u64);
        // What a move stopped part way leaves: the lower ids packed, the
        // higher ones still loose. Running it again finishes it.
        loose(n / 2, n);
        assert_eq!(pack_loose_entries(&db, b"r/").unwrap(), (n - n / 2) as u64);
        assert_eq!(db.scan_prefix(b"r/").count(), 0);
        check_packs(&db);
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
