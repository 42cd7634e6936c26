//! Entries stored many to a key ("packs"), sorted by a 16-byte key: the
//! layout both stores use for what they keep per record.
//!
//! sled pays about 10 µs for every key a batch writes, whatever its size (a
//! leaf holds at most 16 keys, so new keys mean page splits), and its page
//! table grows with the number of keys. One key per record made per-record
//! data the largest cost of a push, of a pull and of memory at a million
//! families. Packs of up to [`PACK_RECORDS`] entries cut that about fiftyfold.
//!
//! A pack is named by its lower bound, a key: it holds every entry whose key
//! is at least that bound and below the next pack's. The first pack's bound
//! is [`PackKey::FIRST`], so every key has exactly one pack. A pack is its
//! entries in key order, each the key (16 bytes), the entry's length (4
//! bytes, big-endian), then the entry.
//!
//! The keys are either record ids (an index from a record to where it lives)
//! or [`Place`]s, the order in which records arrived in a store: a store that
//! keeps its records' values in place order appends new records to its last
//! pack whatever their ids, where packs in id order would rewrite a pack for
//! nearly every record of a file that is not sorted by date.
//!
//! This module is pure: a store implements [`PackStore`] (find the pack that
//! holds a key, and the one after it) and writes what [`plan`] returns.

use std::ops::Range;

use crate::RecordId;

/// What packs are sorted by: 16 bytes whose order is the key's order.
pub trait PackKey: Copy + Ord + Send + Sync + std::fmt::Debug {
    /// The lower bound of the first pack: no key is below it.
    const FIRST: Self;
    /// No key is above it.
    const LAST: Self;
    fn to_bytes(self) -> [u8; 16];
    fn from_bytes(bytes: [u8; 16]) -> Self;
}

impl PackKey for RecordId {
    const FIRST: Self = RecordId(uuid::Uuid::nil());
    const LAST: Self = RecordId(uuid::Uuid::max());
    fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }
    fn from_bytes(bytes: [u8; 16]) -> Self {
        RecordId(uuid::Uuid::from_bytes(bytes))
    }
}

/// Where a record's values lie in a store that keeps them in the order
/// records arrived: the store's count of records placed before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place(pub u64);

impl PackKey for Place {
    const FIRST: Self = Place(0);
    const LAST: Self = Place(u64::MAX);
    fn to_bytes(self) -> [u8; 16] {
        (self.0 as u128).to_be_bytes()
    }
    fn from_bytes(bytes: [u8; 16]) -> Self {
        Place(u128::from_be_bytes(bytes) as u64)
    }
}

/// Most entries in one pack.
pub const PACK_RECORDS: usize = 64;

/// Most bytes in one pack, give or take one entry (a single entry larger
/// than this gets a pack of its own). sled writes a page of more than
/// 128 KB (its default segment size over 4) to a file of its own at every
/// rewrite, and a page holds up to 16 keys: packs of up to 6 KB keep pages
/// below that.
pub const PACK_BYTES: usize = 6 * 1024;

/// The lower bound of the first pack of record ids.
pub const FIRST: RecordId = <RecordId as PackKey>::FIRST;

/// A pack whose bytes do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a pack of record entries is damaged")]
pub struct DamagedPack;

/// A store's side of reading packs.
pub trait PackStore {
    type Key: PackKey;
    type Error: From<DamagedPack>;
    type Pack: AsRef<[u8]>;
    /// The pack that holds (or would hold) `key`: its lower bound and bytes.
    fn pack_holding(&self, key: Self::Key) -> Result<(Self::Key, Self::Pack), Self::Error>;
    /// The lower bound of the pack after the one bounded by `lower`.
    fn pack_after(&self, lower: Self::Key) -> Result<Option<Self::Key>, Self::Error>;
}

/// The entries of a pack, in key order: each key and where its entry lies.
pub fn entries<K: PackKey>(pack: &[u8]) -> Result<Vec<(K, Range<usize>)>, DamagedPack> {
    let mut out = Vec::with_capacity(PACK_RECORDS);
    let mut at = 0;
    while at < pack.len() {
        let id: [u8; 16] = pack
            .get(at..at + 16)
            .and_then(|b| b.try_into().ok())
            .ok_or(DamagedPack)?;
        let len = pack
            .get(at + 16..at + 20)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or(DamagedPack)? as usize;
        let entry = at + 20..at + 20 + len;
        if entry.end > pack.len() {
            return Err(DamagedPack);
        }
        out.push((K::from_bytes(id), entry.clone()));
        at = entry.end;
    }
    Ok(out)
}

/// The entries of a pack, in key order, each as `slice` makes it from its
/// range (a sub-slice sharing the pack's buffer, say), or `Err` items for a
/// damaged pack: what a scan over packs yields for one of them.
pub fn split<K: PackKey, T, E: From<DamagedPack>>(
    pack: &[u8],
    slice: impl Fn(Range<usize>) -> T,
) -> Vec<Result<(K, T), E>> {
    match entries(pack) {
        Ok(entries) => entries
            .into_iter()
            .map(|(id, at)| Ok((id, slice(at))))
            .collect(),
        Err(e) => vec![Err(e.into())],
    }
}

/// A pack of these entries (in key order).
pub fn encode<'a, K: PackKey>(entries: impl IntoIterator<Item = (K, &'a [u8])>) -> Vec<u8> {
    let mut v = Vec::new();
    for (key, entry) in entries {
        v.extend_from_slice(&key.to_bytes());
        v.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        v.extend_from_slice(entry);
    }
    v
}

/// The entries of `ids` (sorted, each once), in their order: one pack
/// lookup per pack they fall in rather than per record.
pub fn get_many<S: PackStore>(store: &S, ids: &[S::Key]) -> Result<Vec<Option<Vec<u8>>>, S::Error> {
    debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let mut out = Vec::with_capacity(ids.len());
    let mut rest = ids;
    while let Some(first) = rest.first() {
        let (lower, pack) = store.pack_holding(*first)?;
        let (mine, later) = rest.split_at(in_pack(store, lower, rest, |id| *id)?);
        rest = later;
        let pack = pack.as_ref();
        let entries = entries::<S::Key>(pack)?;
        out.extend(mine.iter().map(|id| {
            entries
                .binary_search_by_key(id, |e| e.0)
                .ok()
                .map(|i| pack[entries[i].1.clone()].to_vec())
        }));
    }
    Ok(out)
}

/// The entry of one record.
pub fn get<S: PackStore>(store: &S, id: S::Key) -> Result<Option<Vec<u8>>, S::Error> {
    Ok(get_many(store, &[id])?.pop().flatten())
}

/// How many of `items` (sorted by id, the first in the pack bounded by
/// `lower`) fall in that pack.
fn in_pack<S: PackStore, T>(
    store: &S,
    lower: S::Key,
    items: &[T],
    id_of: impl Fn(&T) -> S::Key,
) -> Result<usize, S::Error> {
    Ok(match store.pack_after(lower)? {
        Some(upper) => items.partition_point(|t| id_of(t) < upper),
        None => items.len(),
    })
}

/// A pack to write: its lower bound and its new bytes, or `None` to remove
/// it (it was left empty).
pub type PackWrite<K = RecordId> = (K, Option<Vec<u8>>);

/// The pack writes that set or remove (`None`) these entries (`updates`,
/// sorted by id, each id once): every pack they fall in is read, merged and
/// written back, cut in several when it grows past [`PACK_RECORDS`].
pub fn plan<S: PackStore>(
    store: &S,
    updates: &[(S::Key, Option<Vec<u8>>)],
) -> Result<Vec<PackWrite<S::Key>>, S::Error> {
    debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
    let mut out = Vec::new();
    let mut rest = updates;
    while let Some((first, _)) = rest.first() {
        let (lower, pack) = store.pack_holding(*first)?;
        let (mine, later) = rest.split_at(in_pack(store, lower, rest, |u| u.0)?);
        rest = later;
        let pack = pack.as_ref();
        let old = entries::<S::Key>(pack)?;
        let appended = old.last().is_none_or(|last| last.0 < mine[0].0);
        let merged = merge(
            old.iter().map(|(id, at)| (*id, &pack[at.clone()])),
            mine.iter().map(|(id, v)| (*id, v.as_deref())),
        );
        if merged.is_empty() {
            out.push((lower, (lower == S::Key::FIRST).then(Vec::new)));
            continue;
        }
        for (i, piece) in cut(&merged, appended).into_iter().enumerate() {
            let bound = if i == 0 { lower } else { piece[0].0 };
            out.push((bound, Some(encode(piece.iter().copied()))));
        }
    }
    Ok(out)
}

/// Two id-sorted entry lists merged: an id in both takes the update's entry,
/// or leaves if the update is a removal.
fn merge<'a, K: PackKey>(
    old: impl Iterator<Item = (K, &'a [u8])>,
    updates: impl Iterator<Item = (K, Option<&'a [u8]>)>,
) -> Vec<(K, &'a [u8])> {
    let mut out = Vec::new();
    let mut old = old.peekable();
    let mut updates = updates.peekable();
    loop {
        let order = match (old.peek(), updates.peek()) {
            (None, None) => return out,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(o), Some(u)) => o.0.cmp(&u.0),
        };
        if order.is_lt() {
            out.push(old.next().expect("peeked"));
            continue;
        }
        if order.is_eq() {
            old.next();
        }
        if let (id, Some(entry)) = updates.next().expect("peeked") {
            out.push((id, entry));
        }
    }
}

/// A pack's entries cut into packs of at most [`PACK_RECORDS`] entries and
/// about [`PACK_BYTES`]: full ones from the left when records were only
/// added at its end (the next ones will come after them too), else even
/// ones, leaving room on both sides.
fn cut<'e, 'a, K: PackKey>(
    entries: &'e [(K, &'a [u8])],
    appended: bool,
) -> Vec<&'e [(K, &'a [u8])]> {
    let size = |piece: &[(K, &[u8])]| piece.iter().map(|e| 20 + e.1.len()).sum::<usize>();
    if entries.len() <= PACK_RECORDS && size(entries) <= PACK_BYTES {
        return vec![entries];
    }
    if appended {
        return fill(entries, PACK_RECORDS, PACK_BYTES);
    }
    let total = size(entries);
    let pieces = entries
        .len()
        .div_ceil(PACK_RECORDS)
        .max(total.div_ceil(PACK_BYTES));
    fill(
        entries,
        entries.len().div_ceil(pieces),
        total.div_ceil(pieces),
    )
}

/// Entries cut left to right into packs of at most `records` entries and
/// `bytes` (an entry larger than that alone).
fn fill<'e, 'a, K: PackKey>(
    entries: &'e [(K, &'a [u8])],
    records: usize,
    bytes: usize,
) -> Vec<&'e [(K, &'a [u8])]> {
    let mut out = Vec::new();
    let (mut start, mut filled) = (0, 0);
    for (i, e) in entries.iter().enumerate() {
        let len = 20 + e.1.len();
        if i > start && (i - start == records || filled + len > bytes) {
            out.push(&entries[start..i]);
            (start, filled) = (i, 0);
        }
        filled += len;
    }
    out.push(&entries[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Packs in memory, by lower bound.
    #[derive(Default)]
    struct Memory(BTreeMap<RecordId, Vec<u8>>);

    impl PackStore for Memory {
        type Key = RecordId;
        type Error = DamagedPack;
        type Pack = Vec<u8>;
        fn pack_holding(&self, id: RecordId) -> Result<(RecordId, Vec<u8>), DamagedPack> {
            let (lower, pack) = self.0.range(..=id).next_back().ok_or(DamagedPack)?;
            Ok((*lower, pack.clone()))
        }
        fn pack_after(&self, lower: RecordId) -> Result<Option<RecordId>, DamagedPack> {
            use std::ops::Bound::{Excluded, Unbounded};
            Ok(self
                .0
                .range((Excluded(lower), Unbounded))
                .next()
                .map(|e| *e.0))
        }
    }

    impl Memory {
        fn new() -> Self {
            Memory(BTreeMap::from([(FIRST, Vec::new())]))
        }
        fn write(&mut self, writes: Vec<PackWrite>) {
            for (lower, pack) in writes {
                match pack {
                    Some(p) => self.0.insert(lower, p),
                    None => self.0.remove(&lower),
                };
            }
        }
        fn all(&self) -> Vec<(RecordId, Vec<u8>)> {
            self.0
                .values()
                .flat_map(|p| {
                    entries(p)
                        .unwrap()
                        .into_iter()
                        .map(|(id, at)| (id, p[at].to_vec()))
                        .collect::<Vec<_>>()
                })
                .collect()
        }
        /// Every pack within its bounds, sorted, not over-full.
        fn check(&self) {
            assert!(self.0.contains_key(&FIRST));
            let bounds: Vec<RecordId> = self.0.keys().copied().collect();
            for (i, (lower, pack)) in self.0.iter().enumerate() {
                let ids: Vec<RecordId> = entries::<RecordId>(pack)
                    .unwrap()
                    .iter()
                    .map(|e| e.0)
                    .collect();
                assert!(ids.len() <= PACK_RECORDS, "pack {i} holds {}", ids.len());
                assert!(
                    ids.len() == 1 || pack.len() <= PACK_BYTES,
                    "pack {i} is {} bytes",
                    pack.len()
                );
                assert!(ids.windows(2).all(|w| w[0] < w[1]));
                assert!(ids.iter().all(|id| id >= lower));
                if let Some(next) = bounds.get(i + 1) {
                    assert!(ids.iter().all(|id| id < next));
                    assert!(
                        *lower == FIRST || !ids.is_empty(),
                        "an empty pack is removed"
                    );
                }
            }
        }
    }

    fn id(n: u128) -> RecordId {
        RecordId(uuid::Uuid::from_u128(n << 64))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any sequence of batches of new, changed and removed entries, in
        /// any order, reads back as the last write of each.
        #[test]
        fn every_entry_reads_back_its_last_write(
            batches in prop::collection::vec(
                prop::collection::btree_map(0u128..2_000, prop::option::weighted(0.8, 0u8..255), 1..300),
                1..8,
            )
        ) {
            let mut store = Memory::new();
            let mut expected = BTreeMap::new();
            for writes in &batches {
                let updates: Vec<(RecordId, Option<Vec<u8>>)> = writes
                    .iter()
                    .map(|(&n, b)| (id(n), b.map(|b| vec![b; (b as usize % 7) * (b as usize % 5) * 40])))
                    .collect();
                let plan = plan(&store, &updates).unwrap();
                store.write(plan);
                for (rid, v) in updates {
                    match v {
                        Some(v) => expected.insert(rid, v),
                        None => expected.remove(&rid),
                    };
                }
            }
            store.check();
            prop_assert_eq!(store.all(), expected.clone().into_iter().collect::<Vec<_>>());
            let asked: Vec<RecordId> = (0u128..2_100).step_by(3).map(id).collect();
            for (rid, got) in asked.iter().zip(get_many(&store, &asked).unwrap()) {
                prop_assert_eq!(got, expected.get(rid).cloned());
            }
            prop_assert_eq!(get(&store, id(5_000)).unwrap(), None);
        }
    }

    #[test]
    fn records_added_in_id_order_fill_their_packs() {
        let mut store = Memory::new();
        for round in 0..10u128 {
            let updates: Vec<(RecordId, Option<Vec<u8>>)> = (0..100u128)
                .map(|i| (id(round * 100 + i + 1), Some(vec![1; 40])))
                .collect();
            let plan = plan(&store, &updates).unwrap();
            store.write(plan);
        }
        store.check();
        // 1,000 records: 15 full packs and one of 40.
        assert_eq!(store.0.len(), 1000usize.div_ceil(PACK_RECORDS));
    }

    #[test]
    fn large_entries_make_smaller_packs_and_a_huge_one_its_own() {
        let mut store = Memory::new();
        let mut updates: Vec<(RecordId, Option<Vec<u8>>)> =
            (1..=100u128).map(|i| (id(i), Some(vec![7; 400]))).collect();
        updates[50].1 = Some(vec![9; 3 * PACK_BYTES]);
        let plan = plan(&store, &updates).unwrap();
        store.write(plan);
        store.check();
        let sizes: Vec<usize> = store
            .0
            .values()
            .map(|p| entries::<RecordId>(p).unwrap().len())
            .collect();
        assert!(sizes.contains(&1), "{sizes:?}");
        assert!(
            sizes.iter().all(|&n| n <= PACK_BYTES / 420 + 1),
            "{sizes:?}"
        );
        assert_eq!(store.all().len(), 100);
    }

    #[test]
    fn a_damaged_pack_is_refused() {
        let pack = encode([(id(1), &b"abc"[..])]);
        assert!(entries::<RecordId>(&pack).is_ok());
        assert_eq!(
            entries::<RecordId>(&pack[..pack.len() - 1]),
            Err(DamagedPack)
        );
        assert_eq!(entries::<RecordId>(&pack[..10]), Err(DamagedPack));
    }
}
