//! Settling merge cycles after a push (the rule is
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
    /// [`ServerStore::push_then`], then, if the push changed a record's
    /// lifecycle, the operations that settle any ring of merges it closed,
    /// pushed the same way (`committed` hears of each push). The answer is
    /// the first push's.
    pub fn push_settled(
        &self,
        device: &Device,
        ops: Vec<Op>,
        now: DateTime<Utc>,
        mut committed: impl FnMut(Vec<ChangedRecord>, u64),
    ) -> Result<PushResponse> {
        let mut lifecycles: Vec<RecordId> = ops
            .iter()
            .filter(|o| o.lifecycle().is_some() && !matches!(o.change, Change::Create { .. }))
            .map(|o| o.record)
            .collect();
        lifecycles.sort_unstable();
        lifecycles.dedup();
        let out = self.push_then(device, ops, now, &mut committed)?;
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
