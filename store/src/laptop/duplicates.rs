//! Duplicate families in the local store: the candidate pairs, and a
//! supervisor's decisions (merge, dismiss, unmerge).
//!
//! Keys (in the store's one tree):
//! - `F/<place>`: each counting family's `Features`, packed a few dozen to a
//!   key like the records ([`super::record_packs::FEATURES`]), written in
//!   the same batch as the record by every write, a pull's included
//!   (`DocWrites`): nothing is left for a later command to catch up;
//! - `x/<lower id><higher id>`: a pair dismissed as not the same family.
//!
//! The laptop keeps no blocking index on disk: candidates are found in
//! memory ([`returnee_shared::duplicates::Blocks`], the same blocks and
//! window as the server's index) from one scan of the features, which costs
//! less than keeping a sled key per block and family at every write. No key
//! in the store holds a name or a document number.
//!
//! Decisions are operations built by `returnee_shared::merge::plan_merge`,
//! `plan_unmerge` and `plan_dismiss`; they join the push queue like edits.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use returnee_shared::duplicates::{Blocks, Candidate, Features};
use returnee_shared::merge::{Change, Op, RecordDoc, plan_dismiss, plan_merge, plan_unmerge};
use returnee_shared::{DeviceId, OpId, RecordId};

use super::record_packs::FEATURES;
use super::{Kind, LocalStore, Result, StoreError, WriteLock, decode, meta_key};

pub(super) const META_DUP_INDEX: &str = "dup_index";
/// Bumped when the detection rules change what the features hold: they are
/// derived data, rewritten from the records when the store is opened.
const DUP_INDEX_VERSION: u32 = 2;
/// Records per batch when the features are rewritten.
const REBUILD_CHUNK: usize = 2000;

/// The families already here, filed by block, for the duplicate check of
/// a bulk import ([`LocalStore::block_counts`]): each imported family is
/// compared with those it shares a block with, then filed in turn.
#[derive(Debug, Default)]
pub struct BlockCounts {
    blocks: Blocks,
    dismissed: HashSet<(RecordId, RecordId)>,
}

pub(super) fn decode_features(bytes: &[u8]) -> Result<Features> {
    Features::from_bytes(bytes)
        .ok_or_else(|| super::damaged("the duplicate features of a family do not read back"))
}

pub(super) fn dismissed_key(a: RecordId, b: RecordId) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Kind::Dismissed.key(&[lo.0.as_bytes(), hi.0.as_bytes()])
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
    /// The features a family is compared with, while it counts.
    pub(super) fn features_of(&self, id: RecordId) -> Result<Option<Features>> {
        self.packed(FEATURES, id)?
            .map(|b| decode_features(&b))
            .transpose()
    }

    /// Every counting family's features, in the order they arrived.
    fn all_features(&self) -> impl Iterator<Item = Result<(RecordId, Features)>> + '_ {
        self.scan_packed(FEATURES)
            .map(|item| item.and_then(|(id, v)| Ok((id, decode_features(&v)?))))
    }

    /// The pairs dismissed here, lower id first.
    fn dismissed_pairs(&self) -> Result<HashSet<(RecordId, RecordId)>> {
        let id_of = |b: &[u8]| RecordId(uuid::Uuid::from_slice(b).expect("16-byte record ids"));
        self.db
            .scan_prefix(Kind::Dismissed.prefix())
            .keys()
            .map(|k| {
                let k = k?;
                let at = Kind::Dismissed.prefix().len();
                Ok((id_of(&k[at..at + 16]), id_of(&k[at + 16..at + 32])))
            })
            .collect()
    }

    /// Rewrites the features of a store whose were made under another
    /// version of the rules, once.
    pub(super) fn ensure_duplicate_index(&self) -> Result<()> {
        let lock = self.write_lock();
        if self.meta::<u32>(META_DUP_INDEX)? == Some(DUP_INDEX_VERSION) {
            return Ok(());
        }
        let mut w = self.writes();
        let mut n = 0;
        for item in self.scan_packed(super::DOCS) {
            let (id, v) = item?;
            let doc: RecordDoc = decode(&v)?;
            let features = doc.view(id).active().map(|f| Features::of(&f.fields));
            w.features.insert(id, features.map(|f| f.to_bytes()));
            for other in doc.dismissed() {
                w.mark(dismissed_key(id, other));
            }
            n += 1;
            if n % REBUILD_CHUNK == 0 {
                self.commit(&lock, std::mem::replace(&mut w, self.writes()))?;
            }
        }
        w.put(meta_key(META_DUP_INDEX), &DUP_INDEX_VERSION);
        self.commit(&lock, w)
    }

    /// Records a new store's features as made under the current rules.
    pub(super) fn mark_duplicate_index_built(&self, w: &mut super::Writes) {
        w.put(meta_key(META_DUP_INDEX), &DUP_INDEX_VERSION);
    }

    /// The families here filed by block for a bulk import's duplicate
    /// check, or `None` when more than `cap` families count (filing them
    /// would take more memory than the check is worth: each imported family
    /// is then compared by [`Self::candidates_of`]).
    pub fn block_counts(&self, cap: usize) -> Result<Option<BlockCounts>> {
        let mut counts = BlockCounts {
            blocks: Blocks::new(),
            dismissed: self.dismissed_pairs()?,
        };
        for item in self.all_features() {
            if counts.blocks.len() >= cap {
                return Ok(None);
            }
            let (id, f) = item?;
            counts.blocks.add(id, f);
        }
        Ok(Some(counts))
    }

    /// The duplicate candidates of each family of `ids` (just imported, in
    /// the order given) among the families filed in `counts`, which it then
    /// joins: a family that shares no block with them has none. Each result
    /// is that of [`Self::candidates_of`] for the families filed so far.
    /// Their features are read together (one read of the index of places).
    pub fn candidates_counted(
        &self,
        ids: &[RecordId],
        counts: &mut BlockCounts,
    ) -> Result<Vec<Vec<Candidate>>> {
        let mut features = self.packed_by_id(FEATURES, ids)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(f) = features
                .remove(id)
                .map(|b| decode_features(&b))
                .transpose()?
            else {
                out.push(Vec::new());
                continue;
            };
            let found = if counts.blocks.shares_a_block(&f) {
                let dismissed = &counts.dismissed;
                counts
                    .blocks
                    .candidates_of(*id, &f, |a, b| dismissed.contains(&(a, b)))
            } else {
                Vec::new()
            };
            counts.blocks.add(*id, f);
            out.push(found);
        }
        Ok(out)
    }

    /// The duplicate candidates of one family (none if it does not count):
    /// one scan of the features of the families here.
    pub fn candidates_of(&self, id: RecordId) -> Result<Vec<Candidate>> {
        let Some(f) = self.features_of(id)? else {
            return Ok(Vec::new());
        };
        let mut one = Blocks::new();
        one.add(id, f);
        let dismissed = self.dismissed_pairs()?;
        let mut found = Vec::new();
        for item in self.all_features() {
            let (other, g) = item?;
            if other != id {
                found.extend(one.candidates_of(other, &g, |a, b| dismissed.contains(&(a, b))));
            }
        }
        returnee_shared::duplicates::sort_candidates(&mut found);
        Ok(found)
    }

    /// Every open duplicate candidate pair on this device, highest score
    /// first: every counting family filed by block in memory.
    pub fn duplicates(&self) -> Result<Vec<Candidate>> {
        let mut blocks = Blocks::new();
        for item in self.all_features() {
            let (id, f) = item?;
            blocks.add(id, f);
        }
        let dismissed = self.dismissed_pairs()?;
        Ok(blocks.all_candidates(|a, b| dismissed.contains(&(a, b))))
    }

    fn pair(&self, _lock: &WriteLock<'_>, pair_id: &str) -> Result<Candidate> {
        self.find_pair(pair_id)
    }

    /// The open pair whose id is `pair_id`, or starts with it (at least 4
    /// characters, as `returnee duplicates` shows ids).
    pub fn find_pair(&self, pair_id: &str) -> Result<Candidate> {
        let wanted = pair_id.trim().to_ascii_lowercase();
        let mut found: Vec<Candidate> = self
            .duplicates()?
            .into_iter()
            .filter(|c| c.id == wanted || (wanted.len() >= 4 && c.id.starts_with(&wanted)))
            .collect();
        if let Some(exact) = found.iter().position(|c| c.id == wanted) {
            return Ok(found.swap_remove(exact));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(StoreError::NoSuchPair(pair_id.trim().to_string())),
            _ => Err(StoreError::AmbiguousPair(pair_id.trim().to_string())),
        }
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
