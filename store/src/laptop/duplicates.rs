//! Duplicate families in the local store: the blocking index, the candidate
//! pairs, and a supervisor's decisions (merge, dismiss, unmerge).
//!
//! Keys (in the store's one tree):
//! - `b/<block hash><date><record id>`: the blocking index
//!   (`returnee_shared::duplicates::index_keys_with`), an empty value, for
//!   every family that counts. The block hash is HMAC-SHA256 under the
//!   store's own index key ([`super::sealing::IndexKey`]), 16 bytes: a key
//!   never shows a name or a document number, and the hashes of a list of
//!   names do not find them without the key;
//! - `F/<record id>`: the same features (the record's index keys are
//!   derived from them, to remove them when it changes; candidates are
//!   compared on them), packed a few dozen to a key like the records
//!   ([`super::record_packs::FEATURES`]);
//! - `x/<lower id><higher id>`: a pair dismissed as not the same family.
//!
//! `stage_doc` notes each record it stages ([`Staged::note`]) and `commit`
//! turns the notes into index writes in the *same* batch as the record
//! ([`LocalStore::stage_duplicates`]), so the index never drifts from the
//! records. Candidates are found with `returnee_shared::duplicates` (the
//! server runs the same code), reading only each record's block ranges.
//!
//! Decisions are operations built by `returnee_shared::merge::plan_merge`,
//! `plan_unmerge` and `plan_dismiss`; they join the push queue like edits.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use returnee_shared::duplicates::{
    BlockIndex, Candidate, Features, find_candidates_with, index_keys_with, record_of_key,
    sort_candidates,
};
use returnee_shared::merge::{
    Change, Op, RecordDoc, RecordView, plan_dismiss, plan_merge, plan_unmerge,
};
use returnee_shared::wire::SyncCursor;
use returnee_shared::{DeviceId, OpId, RecordId};

use super::record_packs::FEATURES;
use super::{Kind, LocalStore, Result, StoreError, WriteLock, Writes, decode, meta_key};

/// The prefix of the blocking index.
const INDEX_PREFIX: &[u8] = Kind::Blocks.prefix();
pub(super) const META_DUP_INDEX: &str = "dup_index";
/// Bumped when the detection rules change what the index holds: the index
/// is derived data, rebuilt from the records when the store is opened.
const DUP_INDEX_VERSION: u32 = 1;
/// Records per batch when the index is rebuilt.
const REBUILD_CHUNK: usize = 2000;

/// Families per block of the index (see [`LocalStore::block_counts`]).
#[derive(Debug, Default)]
pub struct BlockCounts(HashMap<Vec<u8>, u32>);

/// The block part of an index key: without the date (4 bytes) and the
/// record id (16) that end it.
fn block_of(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(20)]
}

/// The most family ids one pulled-page mark holds (16 bytes each).
const PULLED_MARK_IDS: usize = 256;

/// Stages the marks of the families a pulled page changed
/// ([`Writes::pulled`]): a few keys per page, named by the page's cursor,
/// rather than one per family (each key costs a pull about as much as a
/// family's own record).
pub(super) fn stage_pulled_marks(w: &mut Writes, cursor: SyncCursor) {
    let pulled = std::mem::take(&mut w.pulled);
    for (part, ids) in pulled.chunks(PULLED_MARK_IDS).enumerate() {
        let key = [
            Kind::PulledMarks.prefix(),
            &cursor.0.to_be_bytes(),
            &(part as u32).to_be_bytes(),
        ]
        .concat();
        w.put_bytes(key, ids.iter().flat_map(|id| *id.0.as_bytes()).collect());
    }
}

pub(super) fn decode_features(bytes: &[u8]) -> Result<Features> {
    Features::from_bytes(bytes)
        .ok_or_else(|| super::damaged("an entry of the duplicate index does not read back"))
}

pub(super) fn dismissed_key(a: RecordId, b: RecordId) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Kind::Dismissed.key(&[lo.0.as_bytes(), hi.0.as_bytes()])
}

/// What a batch changes of the duplicate index: the records it stages, with
/// their features if they count and the records they were dismissed against.
#[derive(Default)]
pub(super) struct Staged {
    records: HashMap<RecordId, (Option<Features>, Vec<RecordId>)>,
}

impl Staged {
    /// Notes a record staged with these operations and this view (the last
    /// note of a record in a batch wins).
    pub(super) fn note(&mut self, id: RecordId, doc: &RecordDoc, view: &RecordView) {
        let (features, dismissed) = noted(doc, view);
        self.records.insert(id, (features, dismissed));
    }
}

/// What the index needs of a record: its features while it counts, and the
/// records it was dismissed against.
fn noted(doc: &RecordDoc, view: &RecordView) -> (Option<Features>, Vec<RecordId>) {
    let features = view.active().map(|f| Features::of(&f.fields));
    (features, doc.dismissed().into_iter().collect())
}

/// The store's blocking index as a [`BlockIndex`].
struct LocalIndex<'a>(&'a LocalStore);

impl BlockIndex for LocalIndex<'_> {
    type Error = StoreError;
    type Entry = RecordId;
    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(RecordId, RecordId)>> {
        self.0
            .db
            .range(from..to)
            .map(|item| {
                let (k, _) = item?;
                let id = record_of_key(&k).expect("index keys end with a record id");
                Ok((id, id))
            })
            .collect()
    }
    fn features(&self, id: RecordId) -> Result<Features> {
        match self.0.packed(FEATURES, id)? {
            Some(b) => decode_features(&b),
            None => Err(super::damaged(
                "the duplicate index names a family it has no features of",
            )),
        }
    }
}

/// Builds a supervisor's decision operation made on `device` at `now`.
pub(super) fn decision(
    device: DeviceId,
    now: DateTime<Utc>,
) -> impl FnMut(RecordId, Vec<OpId>, Change) -> Op {
    move |record, base, change| Op {
        id: crate::ids::new_op_id(),
        record,
        device,
        at: now,
        base,
        resolution: true,
        change,
    }
}

impl LocalStore {
    /// Turns the batch's notes into index writes in the same batch.
    pub(super) fn stage_duplicates(&self, w: &mut Writes) -> Result<()> {
        let staged = std::mem::take(&mut w.dup.records);
        // What each record was indexed with: none for a new one, and the
        // others' read one pack at a time.
        let known: Vec<RecordId> = staged
            .keys()
            .filter(|id| !w.fresh.contains(id))
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut indexed: HashMap<RecordId, Features> = HashMap::new();
        for (id, stored) in known.iter().zip(self.packed_many(FEATURES, &known)?) {
            if let Some(b) = stored {
                indexed.insert(*id, decode_features(&b)?);
            }
        }
        for (id, (features, dismissed)) in staged {
            let old = indexed.remove(&id);
            if old != features {
                let new = features
                    .as_ref()
                    .map(|f| self.index_keys(id, f))
                    .unwrap_or_default();
                for k in old.map(|f| self.index_keys(id, &f)).unwrap_or_default() {
                    if !new.contains(&k) {
                        w.remove(k);
                    }
                }
                match &features {
                    Some(f) => {
                        for k in new {
                            w.mark(k);
                        }
                        w.features.insert(id, Some(f.to_bytes()));
                    }
                    None => {
                        w.features.insert(id, None);
                    }
                }
            }
            for other in dismissed {
                w.mark(dismissed_key(id, other));
            }
        }
        Ok(())
    }

    /// A record's index keys under this store's index key.
    pub(super) fn index_keys(&self, id: RecordId, f: &Features) -> Vec<Vec<u8>> {
        index_keys_with(&self.index, INDEX_PREFIX, id, f)
    }

    /// The features a record is indexed with, if it is.
    pub(super) fn features_of(&self, id: RecordId) -> Result<Option<Features>> {
        self.packed(FEATURES, id)?
            .map(|b| decode_features(&b))
            .transpose()
    }

    /// Builds the duplicate index of a store made before it existed (or
    /// under another version of the rules), once.
    pub(super) fn ensure_duplicate_index(&self) -> Result<()> {
        let lock = self.write_lock();
        if self.meta::<u32>(META_DUP_INDEX)? == Some(DUP_INDEX_VERSION) {
            return Ok(());
        }
        let mut w = self.writes();
        for prefix in [
            INDEX_PREFIX,
            FEATURES,
            Kind::Dismissed.prefix(),
            Kind::PulledMarks.prefix(),
        ] {
            for item in self.db.scan_prefix(prefix) {
                w.remove(item?.0.to_vec());
            }
        }
        self.commit(&lock, w)?;
        let mut w = self.writes();
        let mut n = 0;
        for item in self.scan_packed(super::DOCS) {
            let (id, v) = item?;
            let doc: RecordDoc = decode(&v)?;
            w.dup.note(id, &doc, &doc.view(id));
            n += 1;
            if n % REBUILD_CHUNK == 0 {
                self.commit(&lock, std::mem::replace(&mut w, self.writes()))?;
            }
        }
        w.put(meta_key(META_DUP_INDEX), &DUP_INDEX_VERSION);
        self.commit(&lock, w)
    }

    /// Indexes the families pulls changed since the index last caught up
    /// (their `bp/` marks), a chunk at a time. Every reader of the index
    /// calls it first.
    ///
    /// A family may be named by several marks (pulled twice) or no longer be
    /// here (purged, or gone from this device's sites): it is indexed as it
    /// is now, once, or skipped.
    /// [`Self::index_pulled`] when a pull left families to index; a lookup
    /// with none waiting takes no lock, so that it does not wait behind a
    /// write (an import checks each chunk while the next one is written).
    fn catch_up_pulled(&self) -> Result<()> {
        if self
            .db
            .scan_prefix(Kind::PulledMarks.prefix())
            .next()
            .is_none()
        {
            return Ok(());
        }
        self.index_pulled(&self.write_lock())
    }

    pub(super) fn index_pulled(&self, lock: &WriteLock<'_>) -> Result<()> {
        loop {
            let (marks, ids) = self.pulled_marks(REBUILD_CHUNK)?;
            if marks.is_empty() {
                return Ok(());
            }
            let mut w = self.writes();
            // Written in one batch.
            // Read one pack at a time, decoded and computed on all cores.
            let ids: Vec<RecordId> = ids.into_iter().collect();
            let stored = self.packed_many(super::DOCS, &ids)?;
            let noted: Vec<_> = ids
                .into_par_iter()
                .zip(stored)
                .with_min_len(250)
                .map(|(id, stored)| {
                    Ok(match stored {
                        Some(b) => {
                            let doc: RecordDoc = decode(&b)?;
                            Some((id, noted(&doc, &doc.view(id))))
                        }
                        None => None,
                    })
                })
                .collect::<Result<_>>()?;
            w.dup.records.extend(noted.into_iter().flatten());
            for key in marks {
                w.remove(key);
            }
            self.commit(lock, w)?;
        }
    }

    /// The first pulled-family marks, up to about `limit` families: the
    /// marks' keys and the families they name.
    fn pulled_marks(&self, limit: usize) -> Result<(Vec<Vec<u8>>, BTreeSet<RecordId>)> {
        let mut marks = Vec::new();
        let mut ids = BTreeSet::new();
        let id_of = |b: &[u8]| RecordId(uuid::Uuid::from_slice(b).expect("16-byte record id"));
        for item in self.db.scan_prefix(Kind::PulledMarks.prefix()) {
            let (k, v) = item?;
            let v = self.open_value(&k, v)?;
            ids.extend(v.chunks_exact(16).map(id_of));
            marks.push(k.to_vec());
            if ids.len() >= limit {
                break;
            }
        }
        Ok((marks, ids))
    }

    /// Families pulled and not yet indexed for duplicates.
    #[cfg(test)]
    pub(super) fn pulled_not_indexed(&self) -> Result<BTreeSet<RecordId>> {
        Ok(self.pulled_marks(usize::MAX)?.1)
    }

    /// Records a new store's index as built (it has no records yet).
    pub(super) fn mark_duplicate_index_built(&self, w: &mut Writes) {
        w.put(meta_key(META_DUP_INDEX), &DUP_INDEX_VERSION);
    }

    fn find_candidates(&self, id: RecordId, f: &Features) -> Result<Vec<Candidate>> {
        find_candidates_with(
            &self.index,
            &LocalIndex(self),
            INDEX_PREFIX,
            id,
            f,
            |a, b| Ok(self.db.contains_key(dismissed_key(a, b))?),
        )
    }

    /// How many indexed families share each block of the index, or `None`
    /// if the index has more than `cap` keys (counting them would cost more
    /// than it saves). A bulk import starts from these counts and scans a
    /// block only once a second family is in it ([`BlockCounts`]).
    pub fn block_counts(&self, cap: usize) -> Result<Option<BlockCounts>> {
        self.catch_up_pulled()?;
        let mut counts = BlockCounts::default();
        for (n, item) in self.db.scan_prefix(INDEX_PREFIX).keys().enumerate() {
            if n >= cap {
                return Ok(None);
            }
            *counts.0.entry(block_of(&item?).to_vec()).or_default() += 1;
        }
        Ok(Some(counts))
    }

    /// The duplicate candidates of a family just imported, counted into
    /// `counts`: a family alone in all its blocks has none, and its blocks
    /// are not scanned. The result is that of [`Self::candidates_of`] when a
    /// family that shares a block with it was counted before it.
    /// `counts` come from [`Self::block_counts`], which brought the index up
    /// to date: nothing to catch up here, once per imported row.
    pub fn candidates_counted(
        &self,
        id: RecordId,
        counts: &mut BlockCounts,
    ) -> Result<Vec<Candidate>> {
        let Some(f) = self.features_of(id)? else {
            return Ok(Vec::new());
        };
        let mut shared = false;
        for key in self.index_keys(id, &f) {
            let n = counts.0.entry(block_of(&key).to_vec()).or_default();
            *n += 1;
            shared |= *n > 1;
        }
        if shared {
            self.find_candidates(id, &f)
        } else {
            Ok(Vec::new())
        }
    }

    /// The duplicate candidates of one family (none if it does not count).
    pub fn candidates_of(&self, id: RecordId) -> Result<Vec<Candidate>> {
        self.catch_up_pulled()?;
        match self.features_of(id)? {
            Some(f) => self.find_candidates(id, &f),
            None => Ok(Vec::new()),
        }
    }

    /// Every open duplicate candidate pair on this device, highest score first.
    pub fn duplicates(&self) -> Result<Vec<Candidate>> {
        self.duplicates_locked(&self.write_lock())
    }

    fn duplicates_locked(&self, lock: &WriteLock<'_>) -> Result<Vec<Candidate>> {
        self.index_pulled(lock)?;
        let mut by_id: BTreeMap<String, Candidate> = BTreeMap::new();
        // Every family that counts has its features indexed.
        for item in self.scan_packed(FEATURES) {
            let (id, v) = item?;
            let features = decode_features(&v)?;
            for c in self.find_candidates(id, &features)? {
                by_id.entry(c.id.clone()).or_insert(c);
            }
        }
        let mut out: Vec<Candidate> = by_id.into_values().collect();
        sort_candidates(&mut out);
        Ok(out)
    }

    fn pair(&self, lock: &WriteLock<'_>, pair_id: &str) -> Result<Candidate> {
        let wanted = pair_id.trim().to_ascii_lowercase();
        self.duplicates_locked(lock)?
            .into_iter()
            .find(|c| c.id == wanted)
            .ok_or_else(|| StoreError::NoSuchPair(pair_id.trim().to_string()))
    }

    /// Saves operations on several records: one atomic, flushed batch.
    pub(super) fn commit_ops(&self, lock: &WriteLock<'_>, ops: Vec<Op>) -> Result<()> {
        let mut w = self.writes();
        let mut docs: BTreeMap<RecordId, RecordDoc> = BTreeMap::new();
        for op in ops {
            let id = op.record;
            if let std::collections::btree_map::Entry::Vacant(e) = docs.entry(id) {
                e.insert(self.load_doc(id)?.unwrap_or_default());
            }
            let doc = docs.get_mut(&id).expect("just inserted");
            Self::stage_local(&mut w, doc, op);
        }
        for (id, doc) in &docs {
            Self::stage_doc(&mut w, *id, doc);
        }
        self.commit(lock, w)
    }

    /// Merges a candidate pair: `keep` (a unique prefix of one of its two
    /// ids; by default the older record, whose id is the lower) survives,
    /// the other becomes a merged tombstone pointing at it, and every value
    /// where they differ becomes a conflict on the survivor. Returns
    /// (survivor, merged).
    pub fn merge_pair(
        &self,
        pair_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(RecordId, RecordId)> {
        let lock = self.write_lock();
        let pair = self.pair(&lock, pair_id)?;
        let keep = match keep {
            None => pair.records[0],
            Some(text) => {
                let wanted = text.trim().to_ascii_lowercase();
                let matching: Vec<RecordId> = pair
                    .records
                    .into_iter()
                    .filter(|r| {
                        wanted.len() >= 4
                            && (r.to_string().starts_with(&wanted)
                                || r.0.simple().to_string().starts_with(&wanted))
                    })
                    .collect();
                match matching.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(StoreError::NotInPair {
                            keep: text.trim().to_string(),
                            pair: pair.id.clone(),
                        });
                    }
                    _ => return Err(StoreError::Ambiguous(text.trim().to_string())),
                }
            }
        };
        let lose = pair.other(keep);
        let device = self.device()?.id;
        let keep_doc = self.load_doc(keep)?.unwrap_or_default();
        let lose_doc = self.load_doc(lose)?.unwrap_or_default();
        let ops = plan_merge((keep, &keep_doc), (lose, &lose_doc), decision(device, now));
        self.commit_ops(&lock, ops)?;
        Ok((keep, lose))
    }

    /// Dismisses a candidate pair: not the same family, never suggested again.
    pub fn dismiss_pair(&self, pair_id: &str, now: DateTime<Utc>) -> Result<Candidate> {
        let lock = self.write_lock();
        let pair = self.pair(&lock, pair_id)?;
        let device = self.device()?.id;
        let op = plan_dismiss(pair.records[0], pair.records[1], decision(device, now));
        self.commit_ops(&lock, vec![op])?;
        Ok(pair)
    }

    /// Undoes the merge of `id`: it counts again, and the values it carried
    /// onto the survivor stop competing there. Returns the survivor.
    pub fn unmerge(&self, id: RecordId, now: DateTime<Utc>) -> Result<RecordId> {
        let lock = self.write_lock();
        let doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let Some(into) = doc.view(id).lifecycle.merged_into() else {
            return Err(StoreError::NotMerged(id));
        };
        let device = self.device()?.id;
        let keep = self.load_doc(into)?;
        let ops = plan_unmerge(
            (id, &doc),
            keep.as_ref().map(|d| (into, d)),
            decision(device, now),
        );
        self.commit_ops(&lock, ops)?;
        Ok(into)
    }
}
