//! Merge cycles: concurrent merges that point back at each other.
//!
//! Two supervisors who, before they sync, merge A into B and B into A
//! leave two records that each say "merged into the other": without a rule
//! the family would count nowhere. The same holds for longer rings (A into
//! B, B into C, C into A). The rule, the same wherever it runs: in every
//! ring of records whose shown lifecycle is "merged into the next", the
//! record with the lowest id survives. It is kept by a `Restore` whose
//! base covers the merges of the ring on that record (so a concurrent
//! delete still competes with it as a `record` conflict), made by
//! [`RULE_DEVICE`], with an id and a time derived from the ring's merges:
//! every replica that settles the same ring makes the same operation, and
//! re-sends of it change nothing. The other records stay merged along the
//! ring, so they all reach the survivor; the values the merges carried
//! onto it compete with its own as conflicts, as for any merge.
//!
//! The server settles rings after each push that changed a lifecycle
//! (`ServerStore::push_settled`), so a ring exists only between the push
//! that closed it and that push's answer; every device pulls the `Restore`.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Change, Lifecycle, Op, RecordDoc, Slot};
use crate::family::{DeviceId, OpId, RecordId};

/// The device named on the operations the merge-cycle rule makes: no
/// enrolled device has this id.
pub const RULE_DEVICE: DeviceId = DeviceId(Uuid::from_u128(0x0000_0000_0000_8000_8000_7275_6c65));

/// Longest chain of merges followed from one record.
const MAX_CHAIN: usize = 256;

/// The operations that settle every ring of merges reachable from
/// `touched` (records a push changed): one `Restore` of each ring's lowest
/// id. `doc_of` gives a record's operations (`None`: not held here).
///
/// A survivor that was also merged elsewhere concurrently (two merge
/// heads) may still show a merge after its `Restore`, and so close another
/// ring: rings are settled again from the survivors until none is left.
/// Each round covers at least one merge head for good, so this ends.
pub fn settle_cycles(
    touched: impl IntoIterator<Item = RecordId>,
    mut doc_of: impl FnMut(RecordId) -> Option<RecordDoc>,
) -> Vec<Op> {
    let mut docs: BTreeMap<RecordId, Option<RecordDoc>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut touched: Vec<RecordId> = touched.into_iter().collect();
    for _ in 0..MAX_ROUNDS {
        let round = settle_round(&touched, &mut docs, &mut doc_of);
        if round.is_empty() {
            break;
        }
        touched = round.iter().map(|o| o.record).collect();
        for op in &round {
            if let Some(Some(doc)) = docs.get_mut(&op.record) {
                doc.insert(op.clone());
            }
        }
        out.extend(round);
    }
    out
}

/// Rounds of [`settle_cycles`] at the most.
const MAX_ROUNDS: usize = 64;

/// One round of [`settle_cycles`] over the records held in `docs` (read
/// through `doc_of` the first time).
fn settle_round(
    touched: &[RecordId],
    docs: &mut BTreeMap<RecordId, Option<RecordDoc>>,
    doc_of: &mut impl FnMut(RecordId) -> Option<RecordDoc>,
) -> Vec<Op> {
    let mut doc = |id: RecordId| -> Option<RecordDoc> {
        docs.entry(id).or_insert_with(|| doc_of(id)).clone()
    };
    let mut settled: BTreeSet<RecordId> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in touched {
        let mut path: Vec<(RecordId, RecordDoc)> = Vec::new();
        let mut current = start;
        while !settled.contains(&current) && path.len() < MAX_CHAIN {
            let Some(d) = doc(current) else { break };
            let Lifecycle::Merged { into } = d.view(current).lifecycle else {
                break;
            };
            path.push((current, d));
            if let Some(pos) = path.iter().position(|(id, _)| *id == into) {
                let ring = &path[pos..];
                settled.extend(ring.iter().map(|(id, _)| *id));
                out.extend(settle_ring(ring));
                break;
            }
            current = into;
        }
        settled.extend(path.iter().map(|(id, _)| *id));
    }
    out
}

/// The `Restore` of a ring's lowest id; the ring is given in merge order
/// (each record merged into the next, the last into the first).
fn settle_ring(ring: &[(RecordId, RecordDoc)]) -> Option<Op> {
    let merges_of = |i: usize| -> Vec<&Op> {
        let doc = &ring[i].1;
        let next = ring[(i + 1) % ring.len()].0;
        doc.heads(Slot::Lifecycle)
            .into_iter()
            .filter(|o| matches!(o.change, Change::Merge { into } if into == next))
            .collect()
    };
    let all: Vec<&Op> = (0..ring.len()).flat_map(merges_of).collect();
    let (survivor_at, _) = ring.iter().enumerate().min_by_key(|(_, (id, _))| *id)?;
    let base: Vec<OpId> = merges_of(survivor_at).iter().map(|o| o.id).collect();
    if base.is_empty() {
        return None;
    }
    let mut ids: Vec<OpId> = all.iter().map(|o| o.id).collect();
    ids.sort();
    let mut h = Sha256::new();
    h.update(b"returnee merge cycle");
    for id in &ids {
        h.update(id.0.as_bytes());
    }
    let digest: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    let id = OpId(uuid::Builder::from_custom_bytes(digest).into_uuid());
    let mut base = base;
    base.sort();
    Some(Op {
        id,
        record: ring[survivor_at].0,
        device: RULE_DEVICE,
        at: all.iter().map(|o| o.at).max()?,
        base,
        resolution: true,
        change: Change::Restore,
    })
}
