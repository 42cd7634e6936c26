//! The blocking index: the byte keys of an ordered index whose short key
//! ranges hold every record that could be a candidate of another, and the
//! lookup over any such index.

use super::*;

/// How a block (a crossing and a block key) becomes the bytes of an index
/// key, so that no name or document number appears in a key. The server
/// uses [`Unkeyed`]; the laptop a keyed hash under a key of its own, so
/// that its keys cannot be matched against a dictionary of hashed names.
pub trait BlockHasher {
    /// Appends the block's hash to `key`.
    fn append_block_hash(&self, key: &mut Vec<u8>, crossing: &str, block: &str);
}

/// 8 bytes of the SHA-256 of the crossing and the block key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unkeyed;

impl BlockHasher for Unkeyed {
    fn append_block_hash(&self, key: &mut Vec<u8>, crossing: &str, block: &str) {
        let mut h = Sha256::new();
        h.update(crossing.as_bytes());
        h.update([0]);
        h.update(block.as_bytes());
        key.extend_from_slice(&h.finalize()[..8]);
    }
}

/// An ordered key-value index of records by block key, as both stores keep
/// one: `prefix`, the block's hash ([`BlockHasher`]), the crossing date (4
/// bytes, days, ordered), the record id (16 bytes).
fn block_prefix(h: &impl BlockHasher, prefix: &[u8], crossing: &str, block: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 32 + 4 + 16);
    k.extend_from_slice(prefix);
    h.append_block_hash(&mut k, crossing, block);
    k
}

/// A date as 4 bytes that sort like the dates.
fn date_bytes(d: NaiveDate) -> [u8; 4] {
    ((d.to_epoch_days() as i64 + (1 << 31)) as u32).to_be_bytes()
}

/// The index keys of a record (one per block key), block keys hashed with [`Unkeyed`].
pub fn index_keys(prefix: &[u8], id: RecordId, f: &Features) -> Vec<Vec<u8>> {
    index_keys_with(&Unkeyed, prefix, id, f)
}

/// The index keys of a record (one per block key), block keys hashed with `h`.
pub fn index_keys_with(
    h: &impl BlockHasher,
    prefix: &[u8],
    id: RecordId,
    f: &Features,
) -> Vec<Vec<u8>> {
    f.block_keys()
        .iter()
        .map(|b| {
            let mut k = block_prefix(h, prefix, &f.crossing, b);
            k.extend_from_slice(&date_bytes(f.crossed_on));
            k.extend_from_slice(id.0.as_bytes());
            k
        })
        .collect()
}

/// The key ranges `[from, to)` that hold the records a record is compared with.
pub fn index_ranges(prefix: &[u8], f: &Features) -> Vec<(Vec<u8>, Vec<u8>)> {
    index_ranges_with(&Unkeyed, prefix, f)
}

/// [`index_ranges`] of an index whose block keys are hashed with `h`.
pub fn index_ranges_with(
    h: &impl BlockHasher,
    prefix: &[u8],
    f: &Features,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let first = f
        .crossed_on
        .checked_sub_days(Days::new(WINDOW_DAYS))
        .unwrap_or(NaiveDate::MIN);
    let after = f
        .crossed_on
        .checked_add_days(Days::new(WINDOW_DAYS + 1))
        .unwrap_or(NaiveDate::MAX);
    f.block_keys()
        .iter()
        .map(|b| {
            let p = block_prefix(h, prefix, &f.crossing, b);
            let mut from = p.clone();
            from.extend_from_slice(&date_bytes(first));
            let mut to = p;
            to.extend_from_slice(&date_bytes(after));
            (from, to)
        })
        .collect()
}

/// The record an index key belongs to.
pub fn record_of_key(key: &[u8]) -> Option<RecordId> {
    let tail = key.len().checked_sub(16).map(|at| &key[at..])?;
    uuid::Uuid::from_slice(tail).ok().map(RecordId)
}

/// An ordered index of records under [`index_keys`].
pub trait BlockIndex {
    type Error;
    /// What an entry holds (features, encoded or not).
    type Entry;
    /// Every record with an entry in `[from, to)`, with the entry.
    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(RecordId, Self::Entry)>, Self::Error>;
    /// The features an entry holds (called once per record compared).
    fn features(&self, entry: Self::Entry) -> Result<Features, Self::Error>;
}

/// The candidates of record `id` (with features `f`) among the records in
/// `index`, leaving out pairs `dismissed` says were decided not to be the
/// same family. Reads only `f`'s block ranges.
pub fn find_candidates<I: BlockIndex>(
    index: &I,
    prefix: &[u8],
    id: RecordId,
    f: &Features,
    dismissed: impl Fn(RecordId, RecordId) -> Result<bool, I::Error>,
) -> Result<Vec<Candidate>, I::Error> {
    find_candidates_with(&Unkeyed, index, prefix, id, f, dismissed)
}

/// [`find_candidates`] in an index whose block keys are hashed with `h`.
pub fn find_candidates_with<I: BlockIndex>(
    h: &impl BlockHasher,
    index: &I,
    prefix: &[u8],
    id: RecordId,
    f: &Features,
    dismissed: impl Fn(RecordId, RecordId) -> Result<bool, I::Error>,
) -> Result<Vec<Candidate>, I::Error> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (from, to) in index_ranges_with(h, prefix, f) {
        for (other, entry) in index.range(&from, &to)? {
            if other == id || !seen.insert(other) {
                continue;
            }
            let g = index.features(entry)?;
            if let Some(c) = compare((id, f), (other, &g))
                && !dismissed(c.records[0], c.records[1])?
            {
                out.push(c);
            }
        }
    }
    sort_candidates(&mut out);
    Ok(out)
}

/// A [`BlockIndex`] in memory, for tests and tools: the same keys and
/// ranges as the stores' indexes.
#[derive(Debug, Clone, Default)]
pub struct MemoryIndex {
    entries: BTreeMap<Vec<u8>, (RecordId, Features)>,
}

/// The prefix [`MemoryIndex`] uses.
pub const MEMORY_PREFIX: &[u8] = b"b/";

impl MemoryIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record (a record is added once; re-adding after a change
    /// needs [`MemoryIndex::remove`] with its old features first).
    pub fn insert(&mut self, id: RecordId, f: &Features) {
        for k in index_keys(MEMORY_PREFIX, id, f) {
            self.entries.insert(k, (id, f.clone()));
        }
    }

    pub fn remove(&mut self, id: RecordId, f: &Features) {
        for k in index_keys(MEMORY_PREFIX, id, f) {
            self.entries.remove(&k);
        }
    }

    /// The candidates of one record already in the index.
    pub fn candidates_of(&self, id: RecordId, f: &Features) -> Vec<Candidate> {
        match find_candidates(self, MEMORY_PREFIX, id, f, |_, _| Ok(false)) {
            Ok(c) => c,
            Err(never) => match never {},
        }
    }

    /// Every candidate pair among the records in the index, once each.
    pub fn all_candidates(&self, records: &[(RecordId, Features)]) -> Vec<Candidate> {
        let mut by_id: BTreeMap<String, Candidate> = BTreeMap::new();
        for (id, f) in records {
            for c in self.candidates_of(*id, f) {
                by_id.entry(c.id.clone()).or_insert(c);
            }
        }
        let mut out: Vec<Candidate> = by_id.into_values().collect();
        sort_candidates(&mut out);
        out
    }
}

impl BlockIndex for MemoryIndex {
    type Error = std::convert::Infallible;
    type Entry = Features;
    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(RecordId, Features)>, Self::Error> {
        Ok(self
            .entries
            .range(from.to_vec()..to.to_vec())
            .map(|(_, v)| v.clone())
            .collect())
    }
    fn features(&self, entry: Features) -> Result<Features, Self::Error> {
        Ok(entry)
    }
}
