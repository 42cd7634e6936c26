//! The server's duplicate index: candidate pairs of records that may be the
//! same family, found as batches arrive, for supervisors to decide.
//!
//! Detection is `returnee_shared::duplicates` (the same code the laptops
//! run); this module keeps its index in a sled tree of its own
//! (`duplicates`, next to the store's main tree) so that it never touches the
//! push and pull paths:
//!
//! - `b/<block hash><date><record id>`: the blocking index
//!   (`returnee_shared::duplicates::index_keys`), valued with the record's
//!   `Features` (`Features::to_bytes`, a few dozen bytes), so a lookup
//!   reads no other key;
//! - `F/<lower place>`: the same `Features`, for every family that counts
//!   (its index keys are derived from them, to remove them when it
//!   changes), packed a few dozen to a key at the places of the store's
//!   records (sled's memory grows with keys);
//! - `p/<pair id>`: an open candidate (`Candidate` as JSON);
//! - `r/<record id><pair id>`: the pairs a record is in;
//! - `x/<lower id><higher id>`: a dismissed pair, never suggested again;
//! - `state`: the index version; `through`: the last position of the
//!   store's log the index has taken in, written in the same batch as the
//!   index writes that bring it there.
//!
//! The index is a projection of the log. As a push commits, `routes` hands
//! what it changed of each record (its features, its dismissals) and the
//! last position it logged to [`DuplicateIndex::after_push`], which updates
//! the index on a blocking thread without reading the records again, once
//! pushes pause (`QUIET`; at once past `HIGH_WATER` waiting records), and
//! moves `through` past a push once all its records are in.
//! [`DuplicateIndex::candidates`] first finishes any update still waiting,
//! so a listing always reflects every acknowledged push. After a crash (or
//! any stop with updates waiting) the next start re-checks the records the
//! log names after `through`; an index of another version, or through a
//! position the log lost in the crash, is rebuilt from the records.
//!
//! Log lines carry counts only, never a name or a document number.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use returnee_shared::RecordId;
use returnee_shared::duplicates::{
    BlockIndex, Candidate, Features, find_candidates, index_keys, sort_candidates,
};
use returnee_shared::merge::{Change, Op, RecordDoc};
use serde::{Deserialize, Serialize};

use super::record_packs::{features_get_many, features_stage};
use super::{ChangedRecord, Device, IndexKind, Result, ServerStore, StoreError};

/// Work that brings the index up to date with what pushes queued: run it
/// on a thread that may block.
pub type DrainTask = Box<dyn FnOnce() + Send + 'static>;

/// Records re-checked per index batch after pushes.
const DRAIN_CHUNK: usize = 2000;
/// The background update waits until pushes have paused this long, so
/// that a burst of batches (a laptop syncing a day's work, fifty laptops at
/// once) is not slowed by the index competing for the same cores and store;
/// the work is the same, done right after.
const QUIET: Duration = Duration::from_millis(250);
/// ... unless this many records wait (about 110 bytes each in memory).
const HIGH_WATER: usize = 100_000;
/// Bumped when the index's layout or the detection rules change: the index
/// is then rebuilt at start.
const VERSION: u32 = 1;
const INDEX: &[u8] = IndexKind::Blocks.prefix();
const STATE: &[u8] = IndexKind::State.prefix();
/// How far through the store's log the index is (8 bytes): written in the
/// same batch as the index writes that bring it there.
const THROUGH: &[u8] = IndexKind::Through.prefix();
/// Records updated per batch during a rebuild.
const REBUILD_CHUNK: usize = 2000;

fn pair_key(pair: &str) -> Vec<u8> {
    IndexKind::Pairs.key(&[pair.as_bytes()])
}
fn member_key(id: RecordId, pair: &str) -> Vec<u8> {
    IndexKind::Members.key(&[id.0.as_bytes(), pair.as_bytes()])
}
fn dismissed_key(a: RecordId, b: RecordId) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    IndexKind::Dismissed.key(&[lo.0.as_bytes(), hi.0.as_bytes()])
}

fn decode_features(bytes: &[u8]) -> Result<Features> {
    Features::from_bytes(bytes).ok_or_else(|| {
        StoreError::Decode(serde::de::Error::custom(
            "a duplicate index entry is damaged; restart the server to rebuild the index",
        ))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    version: u32,
}

/// A record waiting to be re-checked, with what the push that changed it
/// computed of it; `None`: read it from the store (a rebuild, a test).
type Waiting = Option<WaitingRecord>;

/// A [`ChangedRecord`] as it waits: its features encoded as the index
/// stores them (a few dozen bytes rather than a kilobyte of strings and
/// map nodes: up to [`HIGH_WATER`] of them wait during a burst of pushes).
struct WaitingRecord {
    features: Option<Box<[u8]>>,
    dismissed: Box<[RecordId]>,
}

impl From<ChangedRecord> for WaitingRecord {
    fn from(c: ChangedRecord) -> Self {
        WaitingRecord {
            features: c.features.map(|f| f.to_bytes().into_boxed_slice()),
            dismissed: c.dismissed.into_iter().collect(),
        }
    }
}

#[derive(Default)]
struct Pending {
    /// In commit order ([`ServerStore::push_then`]); a record changed by
    /// several pushes is in it once per push, the later the newer (each
    /// chunk taken keeps a record's newest entry, and older ones are never
    /// behind newer ones). A queue rather than a map keyed by record: up to
    /// [`HIGH_WATER`] of them wait, and a map's nodes took twice the memory.
    records: VecDeque<(RecordId, Waiting)>,
    /// Records ever queued and ever taken from `records`.
    queued: u64,
    taken: u64,
    /// Per push, in commit order: how many records had been queued once
    /// its records were, and the last log position it took. Once that many
    /// are taken, the index is through that position.
    pushes: VecDeque<(u64, u64)>,
    /// Whether a blocking task is on its way to process `records`.
    scheduled: bool,
    /// When the last push was queued.
    last_push: Option<Instant>,
}

struct Inner {
    store: ServerStore,
    /// Replaced, under `lock`, when an erasure rewrites the store's index.
    tree: std::sync::RwLock<sled::Tree>,
    /// Held while the index is written.
    lock: Mutex<()>,
    pending: Mutex<Pending>,
    /// An update failed: the index no longer moves its position, and is
    /// stale until the next start catches up from there.
    failed: AtomicBool,
}

/// The duplicate index of one server store. Cheap to clone.
#[derive(Clone)]
pub struct DuplicateIndex {
    inner: Arc<Inner>,
}

/// The tree as a [`BlockIndex`].
struct TreeIndex<'a>(&'a sled::Tree);

impl BlockIndex for TreeIndex<'_> {
    type Error = StoreError;
    type Entry = sled::IVec;
    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(RecordId, sled::IVec)>> {
        self.0
            .range(from..to)
            .map(|item| {
                let (k, v) = item?;
                let id = returnee_shared::duplicates::record_of_key(&k)
                    .expect("index keys end with a record id");
                Ok((id, v))
            })
            .collect()
    }
    fn features(&self, entry: sled::IVec) -> Result<Features> {
        decode_features(&entry)
    }
}

impl DuplicateIndex {
    /// Opens the index of `store`: rebuilt when it is missing or of
    /// another version; otherwise brought up to date with what the log
    /// holds after the position it was through (pushes a crash kept it
    /// from indexing). An index through a position the log no longer
    /// holds (the crash lost the log's unflushed tail) is rebuilt.
    pub fn open(store: &ServerStore) -> Result<Self> {
        let tree = store.db().open_tree("duplicates")?;
        let index = DuplicateIndex {
            inner: Arc::new(Inner {
                store: store.clone(),
                tree: std::sync::RwLock::new(tree),
                lock: Mutex::new(()),
                pending: Mutex::new(Pending::default()),
                failed: AtomicBool::new(false),
            }),
        };
        let state: Option<State> = index
            .tree()
            .get(STATE)?
            .map(|b| serde_json::from_slice(&b))
            .transpose()?;
        let last = store.last_seq()?;
        match (state, index.through()?) {
            (Some(State { version: VERSION }), Some(through)) if through <= last => {
                if through < last {
                    index.catch_up(through, last)?;
                }
            }
            _ => index.rebuild()?,
        }
        Ok(index)
    }

    /// The index's tree in the store's index in use.
    fn tree(&self) -> sled::Tree {
        self.inner.tree.read().expect("tree lock").clone()
    }

    /// After a push that erased a family: finishes waiting updates (so the
    /// erased family's features lose its name and document), then has the
    /// store rewrite its index into a fresh database, leaving no old bytes
    /// (PROTOCOL.md, "Erasure"). Nothing to do when no erasure waits for it.
    pub fn rewrite_after_erasure(&self) -> Result<bool> {
        if !self.inner.store.erasure_pending() {
            return Ok(false);
        }
        let _guard = self.inner.lock.lock().expect("index lock");
        self.process_all_locked()?;
        self.inner.store.rewrite_index(|db| {
            *self.inner.tree.write().expect("tree lock") = db.open_tree("duplicates")?;
            Ok(())
        })?;
        Ok(true)
    }

    /// How far through the log the index is.
    fn through(&self) -> Result<Option<u64>> {
        self.tree()
            .get(THROUGH)?
            .map(|b| {
                <[u8; 8]>::try_from(b.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| super::damaged("the duplicate index's position"))
            })
            .transpose()
    }

    /// Re-checks every record the log names after `through`, up to `last`.
    fn catch_up(&self, through: u64, last: u64) -> Result<()> {
        let _guard = self.inner.lock.lock().expect("index lock");
        let started = std::time::Instant::now();
        let ids: Vec<RecordId> = self
            .inner
            .store
            .records_logged_after(through)?
            .into_iter()
            .collect();
        self.update_all_locked(&ids, last)?;
        tracing::info!(
            records = ids.len(),
            from = through,
            to = last,
            ms = started.elapsed().as_millis() as u64,
            "duplicate index caught up"
        );
        Ok(())
    }

    /// Updates the index for `ids` from the store, a chunk at a time, and
    /// records it as through `last` with the final chunk.
    fn update_all_locked(&self, ids: &[RecordId], last: u64) -> Result<()> {
        let chunks: Vec<&[RecordId]> = ids.chunks(REBUILD_CHUNK).collect();
        if chunks.is_empty() {
            return self.update_locked(&[], Some(last));
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let chunk: Vec<(RecordId, Waiting)> = chunk.iter().map(|id| (*id, None)).collect();
            let through = (i + 1 == chunks.len()).then_some(last);
            self.update_locked(&chunk, through)?;
        }
        Ok(())
    }

    /// How far the index is behind the log (positions logged and not yet
    /// taken in), and how many changed records wait in its queue: for
    /// `GET /metrics`.
    pub fn lag(&self) -> Result<(u64, usize)> {
        let waiting = self
            .inner
            .pending
            .lock()
            .expect("pending lock")
            .records
            .len();
        let last = self.inner.store.last_seq()?;
        let through = self.through()?.unwrap_or(0);
        Ok((last.saturating_sub(through), waiting))
    }

    /// Finishes waiting updates and flushes the index.
    pub fn close(&self) -> Result<()> {
        let _guard = self.inner.lock.lock().expect("index lock");
        self.process_all_locked()?;
        self.tree().flush()?;
        Ok(())
    }

    /// Rebuilds the whole index from the store's records.
    pub fn rebuild(&self) -> Result<()> {
        let _guard = self.inner.lock.lock().expect("index lock");
        let started = std::time::Instant::now();
        self.tree().clear()?;
        self.tree().insert(
            STATE,
            serde_json::to_vec(&State { version: VERSION }).expect("state serializes"),
        )?;
        // Pushes wait for the store's writer, not for this lock: take the
        // position first, so that anything logged meanwhile is caught up.
        let last = self.inner.store.last_seq()?;
        let ids: Vec<RecordId> = self.inner.store.record_ids().collect::<Result<_>>()?;
        self.update_all_locked(&ids, last)?;
        self.tree().flush()?;
        self.inner.failed.store(false, Ordering::Relaxed);
        tracing::info!(
            records = ids.len(),
            ms = started.elapsed().as_millis() as u64,
            "duplicate index rebuilt"
        );
        Ok(())
    }

    /// Called as a push commits ([`ServerStore::push_then`]) with what it
    /// changed: those records are (re)checked by a task that `spawn` runs
    /// on a blocking thread, started only when none is on its way already;
    /// the push's answer does not wait for it.
    pub fn after_push(
        &self,
        changed: Vec<ChangedRecord>,
        through: u64,
        spawn: impl FnOnce(DrainTask),
    ) {
        if self.enqueue_changed(changed, through) {
            // The task does not keep a stopped server's index (and store)
            // open: it holds them only while it works.
            let weak = Arc::downgrade(&self.inner);
            spawn(Box::new(move || Self::drain(&weak)));
        }
    }

    /// Queues records as a push that took the log through `through`
    /// changed them (without starting a task). Whether no task was on its
    /// way to process them yet (the caller then starts one).
    pub fn enqueue_changed(&self, changed: Vec<ChangedRecord>, through: u64) -> bool {
        let mut p = self.inner.pending.lock().expect("pending lock");
        p.last_push = Some(Instant::now());
        let n = changed.len() as u64;
        p.records.extend(
            changed
                .into_iter()
                .map(|c| (c.id, Some(WaitingRecord::from(c)))),
        );
        p.queued += n;
        let end = p.queued;
        p.pushes.push_back((end, through));
        !std::mem::replace(&mut p.scheduled, true)
    }

    /// Waits while pushes keep arriving ([`QUIET`], [`HIGH_WATER`]).
    fn wait_for_quiet(&self) {
        loop {
            let wait = {
                let p = self.inner.pending.lock().expect("pending lock");
                let since = p.last_push.map_or(QUIET, |t| t.elapsed());
                if since >= QUIET || p.records.len() >= HIGH_WATER {
                    return;
                }
                QUIET - since
            };
            std::thread::sleep(wait);
        }
    }

    /// Processes waiting records until none are left, [`DRAIN_CHUNK`] at a
    /// time, taking the lock for each chunk (a listing may come in between).
    fn drain(weak: &std::sync::Weak<Inner>) {
        loop {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let index = DuplicateIndex { inner };
            index.wait_for_quiet();
            let _guard = index.inner.lock.lock().expect("index lock");
            // As in `process_all_locked`; taken after the wait, so that
            // pushes arriving meanwhile run with the allocator's own delay.
            let _purge = returnee_memory::EagerPurge::after(0);
            {
                let mut p = index.inner.pending.lock().expect("pending lock");
                if p.records.is_empty() && p.pushes.is_empty() {
                    p.scheduled = false;
                    return;
                }
            }
            if let Err(e) = index.process_locked() {
                tracing::error!(error = %e, "duplicate index update failed; it catches up at the next start");
                let mut p = index.inner.pending.lock().expect("pending lock");
                p.scheduled = false;
                return;
            }
        }
    }

    /// Updates the index for every waiting record; the caller holds the lock.
    fn process_all_locked(&self) -> Result<()> {
        // Indexing a burst churns through sled's nodes: memory freed is
        // handed back at once rather than kept a second, or the server's
        // resident memory runs past its budget at a million families
        // (`returnee_memory`; PERFORMANCE.md).
        let _purge = returnee_memory::EagerPurge::after(0);
        while self.process_locked()? {}
        Ok(())
    }

    /// Updates the index for a chunk of the waiting records; the caller
    /// holds the lock. Whether there were any.
    fn process_locked(&self) -> Result<bool> {
        // A bounded chunk at a time: a burst of pushes must not become one
        // huge batch held in memory (the rest stays queued as ids).
        let (records, through) = {
            let mut p = self.inner.pending.lock().expect("pending lock");
            let n = DRAIN_CHUNK.min(p.records.len());
            // A record's newest entry of the chunk replaces its older ones.
            let newest: BTreeMap<RecordId, Waiting> = p.records.drain(..n).collect();
            p.taken += n as u64;
            // The last push all of whose records are taken now.
            let mut through = None;
            while let Some(&(end, seq)) = p.pushes.front()
                && end <= p.taken
            {
                through = Some(seq);
                p.pushes.pop_front();
            }
            // After a failed update the index stays at the position before
            // it, so that the next start re-checks what the failure missed.
            if self.inner.failed.load(Ordering::Relaxed) {
                through = None;
            }
            (newest.into_iter().collect::<Vec<_>>(), through)
        };
        if records.is_empty() && through.is_none() {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let result = self.update_locked(&records, through);
        if result.is_err() {
            self.inner.failed.store(true, Ordering::Relaxed);
        }
        tracing::debug!(
            records = records.len(),
            ms = started.elapsed().as_millis() as u64,
            "duplicate index updated"
        );
        result.map(|()| true)
    }

    /// Updates the index for `records` now (their current operations in the
    /// store), then their candidate pairs. Used after pushes, by rebuilds,
    /// and by the benchmark.
    pub fn update(&self, records: &[RecordId]) -> Result<()> {
        let _guard = self.inner.lock.lock().expect("index lock");
        let records: Vec<(RecordId, Waiting)> = records.iter().map(|id| (*id, None)).collect();
        self.update_locked(&records, None)
    }

    /// Updates the index for `records`; with `through`, records the index
    /// as through that log position in the same batch as the pairs.
    fn update_locked(&self, records: &[(RecordId, Waiting)], through: Option<u64>) -> Result<()> {
        let tree = &self.tree();
        // 1. The records' index entries and dismissals.
        let mut batch = sled::Batch::default();
        let mut active: Vec<(RecordId, Features)> = Vec::with_capacity(records.len());
        // Records that were in the index before: only they can be in pairs.
        let mut indexed: Vec<RecordId> = Vec::new();
        // What each record was indexed with, read one pack at a time.
        let ids: Vec<RecordId> = records
            .iter()
            .map(|(id, _)| *id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut stored: HashMap<RecordId, Features> = HashMap::new();
        for (id, bytes) in ids
            .iter()
            .zip(features_get_many(&self.inner.store.db(), tree, &ids)?)
        {
            if let Some(b) = bytes {
                stored.insert(*id, decode_features(&b)?);
            }
        }
        // The operations of records that bring no features (a catch-up or a
        // rebuild), read together: one read of the index of places.
        let unread: Vec<RecordId> = records
            .iter()
            .filter(|(_, w)| w.is_none())
            .map(|(id, _)| *id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let docs: HashMap<RecordId, RecordDoc> = unread
            .iter()
            .copied()
            .zip(self.inner.store.record_docs_of(&unread)?)
            .filter_map(|(id, doc)| Some((id, doc?)))
            .collect();
        let mut features_written: BTreeMap<RecordId, Option<Vec<u8>>> = BTreeMap::new();
        for (id, waiting) in records {
            let id = *id;
            // The features, and their encoding as the index stores them
            // (a waiting record brings it, so it is not encoded twice).
            let (features, encoded, dismissed): (
                Option<Features>,
                Option<sled::IVec>,
                Vec<RecordId>,
            ) = match waiting {
                Some(w) => (
                    w.features.as_deref().map(decode_features).transpose()?,
                    w.features.as_deref().map(sled::IVec::from),
                    w.dismissed.to_vec(),
                ),
                None => {
                    let c = ChangedRecord::of(id, docs.get(&id).unwrap_or(&RecordDoc::default()));
                    let encoded = c.features.as_ref().map(|f| sled::IVec::from(f.to_bytes()));
                    (c.features, encoded, c.dismissed.into_iter().collect())
                }
            };
            let old = stored.get(&id).cloned();
            if old.is_some() {
                indexed.push(id);
            }
            if old != features {
                let new = features
                    .as_ref()
                    .map(|f| index_keys(INDEX, id, f))
                    .unwrap_or_default();
                for k in old.map(|f| index_keys(INDEX, id, &f)).unwrap_or_default() {
                    if !new.contains(&k) {
                        batch.remove(k);
                    }
                }
                match encoded {
                    Some(value) => {
                        for k in new {
                            batch.insert(k, value.clone());
                        }
                        features_written.insert(id, Some(value.to_vec()));
                    }
                    None => {
                        features_written.insert(id, None);
                    }
                }
            }
            for other in dismissed {
                batch.insert(dismissed_key(id, other), Vec::new());
            }
            if let Some(f) = features {
                active.push((id, f));
            }
        }
        let features_written: Vec<(RecordId, Option<Vec<u8>>)> =
            features_written.into_iter().collect();
        features_stage(&self.inner.store.db(), tree, &mut batch, &features_written)?;
        tree.apply_batch(batch)?;

        // 2. Their pairs: forget the old ones, find the current ones.
        let mut batch = sled::Batch::default();
        for id in indexed {
            for item in tree.scan_prefix(IndexKind::Members.key(&[id.0.as_bytes()])) {
                let (k, _) = item?;
                let pair = String::from_utf8_lossy(&k[2 + 16..]).into_owned();
                if let Some(b) = tree.get(pair_key(&pair))? {
                    let c: Candidate = serde_json::from_slice(&b)?;
                    for r in c.records {
                        batch.remove(member_key(r, &pair));
                    }
                }
                batch.remove(pair_key(&pair));
                batch.remove(k);
            }
        }
        for (id, f) in &active {
            let found = find_candidates(&TreeIndex(tree), INDEX, *id, f, |a, b| {
                Ok(tree.contains_key(dismissed_key(a, b))?)
            })?;
            for c in found {
                for r in c.records {
                    batch.insert(member_key(r, &c.id), Vec::new());
                }
                batch.insert(
                    pair_key(&c.id),
                    serde_json::to_vec(&c).expect("candidate serializes"),
                );
            }
        }
        if let Some(through) = through {
            batch.insert(THROUGH, through.to_be_bytes().to_vec());
        }
        // Not flushed here: the index is derived data, flushed with the
        // store's next flush or at `close`; after a crash it catches up
        // from the position it is through.
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Every open candidate pair, highest score first (after finishing any
    /// update still waiting).
    pub fn candidates(&self) -> Result<Vec<Candidate>> {
        {
            let _guard = self.inner.lock.lock().expect("index lock");
            self.process_all_locked()?;
        }
        let mut out: Vec<Candidate> = self
            .tree()
            .scan_prefix(IndexKind::Pairs.prefix())
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect::<Result<_>>()?;
        sort_candidates(&mut out);
        Ok(out)
    }
}

/// Whether `device` may send `op`, as far as duplicates go: merges,
/// carried values and dismissals are supervisors' and admins' decisions
/// (`returnee_shared::access`). The error code and message if not (see
/// `store::admit`).
pub(crate) fn admit_decision(
    device: &Device,
    op: &Op,
) -> std::result::Result<(), (returnee_shared::wire::ErrorCode, String)> {
    use returnee_shared::access::{Action, Decision, authorize};
    use returnee_shared::wire::ErrorCode;
    if op.decides_duplicates() {
        // Values carried from a merged family are part of the merge.
        let decision = match op.change {
            Change::Dismiss { .. } => Decision::Dismiss,
            _ => Decision::Merge,
        };
        authorize(&device.principal(), &Action::DecideDuplicates(decision))
            .map_err(|denial| (ErrorCode::Forbidden, denial.message))?;
    }
    let names_itself = match op.change {
        Change::Merge { into } => into == op.record,
        Change::MergedValues { from, .. } => from == op.record,
        Change::Dismiss { other } => other == op.record,
        _ => false,
    };
    if names_itself {
        return Err((
            ErrorCode::BadRequest,
            "a duplicate decision names the family itself as its other record".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
