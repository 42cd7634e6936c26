//! Pushing operations that come decoded (each encoded here for the log),
//! and settling merge cycles after a push (the rule is
//! `returnee_shared::merge::cycles`): the `Restore` of each ring's lowest
//! id is pushed as the rule's own device, logged and audited like any
//! operation, and pulled by every device.

use super::*;
use returnee_shared::merge::cycles::{RULE_DEVICE, settle_cycles};
use returnee_shared::wire::Role;

impl Device {
    /// The device the merge-cycle rule's operations are pushed as.
    fn merge_cycle_rule(now: DateTime<Utc>) -> Device {
        Device {
            id: RULE_DEVICE,
            name: "merge-cycle rule".into(),
            role: Role::Admin,
            sites: Vec::new(),
            enrolled_at: now,
            revoked_at: None,
            credential: Default::default(),
        }
    }
}

impl ServerStore {
    /// [`ServerStore::push`], then `committed` with what the push changed of
    /// each record and the last log position it took (or the last before
    /// it, if it logged nothing), called before the next push can commit
    /// (so that calls come in commit order).
    pub fn push_then(
        &self,
        device: &Device,
        ops: Vec<Op>,
        now: DateTime<Utc>,
        committed: impl FnOnce(Vec<ChangedRecord>, u64),
    ) -> Result<PushResponse> {
        self.push_received_then(device, encode_all(ops), now, committed)
    }

    /// [`ServerStore::push_then`], then, if the push changed a record's
    /// lifecycle, the operations that settle any ring of merges it closed,
    /// pushed the same way (`committed` hears of each push). The answer is
    /// the first push's.
    pub fn push_settled(
        &self,
        device: &Device,
        ops: Vec<Op>,
        now: DateTime<Utc>,
        committed: impl FnMut(Vec<ChangedRecord>, u64),
    ) -> Result<PushResponse> {
        self.push_received_settled(device, encode_all(ops), now, committed)
    }

    /// [`ServerStore::push_settled`] of operations with the JSON each came
    /// in ([`ServerStore::push_received_then`]).
    pub fn push_received_settled(
        &self,
        device: &Device,
        ops: Vec<(Op, Vec<u8>)>,
        now: DateTime<Utc>,
        mut committed: impl FnMut(Vec<ChangedRecord>, u64),
    ) -> Result<PushResponse> {
        let mut lifecycles: Vec<RecordId> = ops
            .iter()
            .map(|(o, _)| o)
            .filter(|o| o.lifecycle().is_some() && !matches!(o.change, Change::Create { .. }))
            .map(|o| o.record)
            .collect();
        lifecycles.sort_unstable();
        lifecycles.dedup();
        let out = self.push_received_then(device, ops, now, &mut committed)?;
        if lifecycles.is_empty() {
            return Ok(out);
        }
        let mut failed = None;
        let restores = settle_cycles(lifecycles, |id| match self.record_doc(id) {
            Ok(doc) => doc,
            Err(e) => {
                failed = Some(e);
                None
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if !restores.is_empty() {
            self.push_then(&Device::merge_cycle_rule(now), restores, now, committed)?;
        }
        Ok(out)
    }
}

/// Each operation with its JSON, encoded on all cores: before taking the
/// writer, so that other pushes' encoding runs beside a commit.
pub(super) fn encode_all(ops: Vec<Op>) -> Vec<(Op, Vec<u8>)> {
    ops.into_par_iter()
        .with_min_len(500)
        .map(|op| {
            let json = encode(&op);
            (op, json)
        })
        .collect()
}
