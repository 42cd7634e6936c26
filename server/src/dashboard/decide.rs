//! A supervisor's decisions made in the browser, as the same operations a
//! laptop writes for `returnee conflicts resolve` and `returnee duplicates
//! merge|dismiss|unmerge` (planned by `returnee_shared::merge`), pushed as
//! the session's device through the push path every laptop uses: the same
//! admission (the access policy), the same log, audit and duplicate index.

use chrono::Utc;
use returnee_shared::access::{Action, Decision};
use returnee_shared::duplicates::Candidate;
use returnee_shared::merge::resolve::{merge_involved, plan_resolve};
use returnee_shared::merge::{Change, Op, plan_dismiss, plan_merge, plan_unmerge};
use returnee_shared::{OpId, RecordId};
use returnee_store::server::{Device, DuplicateIndex, ServerStore};

use super::DashError;
use super::session::Signed;

/// The store and index a decision writes to.
pub struct Decider {
    pub store: ServerStore,
    pub duplicates: DuplicateIndex,
    pub device: Device,
}

impl Decider {
    /// A decision of `action` by the signed-in session (refused unless the
    /// policy allows it).
    pub fn new(state: &super::State, who: &Signed, action: Action) -> Result<Decider, DashError> {
        let device = who.authorize(action)?.clone();
        Ok(Decider {
            store: state.store.clone(),
            duplicates: state.duplicates.clone(),
            device,
        })
    }

    /// Builds each operation of a decision, made now by this device.
    fn maker(&self) -> impl FnMut(RecordId, Vec<OpId>, Change) -> Op + use<> {
        let (device, now) = (self.device.id, Utc::now());
        move |record, base, change| Op {
            id: returnee_store::ids::new_op_id(),
            record,
            device,
            at: now,
            base,
            resolution: true,
            change,
        }
    }

    /// Pushes `ops` as this device; a refused operation refuses the decision.
    fn push(&self, ops: Vec<Op>) -> Result<(), DashError> {
        let duplicates = self.duplicates.clone();
        let ack = self
            .store
            .push_settled(&self.device, ops, Utc::now(), |changed, through| {
                duplicates.after_push(changed, through, |task| {
                    actix_web::rt::task::spawn_blocking(task);
                })
            })?;
        self.duplicates.rewrite_after_erasure()?;
        match ack.rejected.first() {
            None => Ok(()),
            Some(r) => Err(DashError::Refused(r.message.clone())),
        }
    }

    fn visible(&self, id: RecordId) -> Result<bool, DashError> {
        Ok(self.store.visible_to(&self.device, id)?)
    }

    /// Decides the open conflict `conflict_id` with `value`.
    pub fn resolve(&self, conflict_id: &str, value: &str) -> Result<(), DashError> {
        let conflict = self
            .store
            .conflicts(&self.device)?
            .into_iter()
            .find(|c| c.id == conflict_id.trim())
            .ok_or_else(|| {
                DashError::NotFound(
                    "this conflict is no longer open (someone may have decided it); reload the page".into(),
                )
            })?;
        let id = conflict.record_id;
        let doc = self
            .store
            .record_doc(id)?
            .ok_or_else(|| DashError::NotFound("the family is not on the server".into()))?;
        let into = merge_involved(&conflict, &doc)
            .map(|into| Ok::<_, DashError>((into, self.store.record_doc(into)?)))
            .transpose()?;
        let ops = plan_resolve(
            &conflict,
            &doc,
            value,
            into.as_ref().map(|(i, d)| (*i, d.as_ref())),
            Utc::now().date_naive(),
            self.maker(),
        )
        .map_err(|e| DashError::BadInput(e.to_string()))?;
        self.push(ops)
    }

    /// The open candidate pair `pair_id`, if this session may see it.
    pub fn pair(&self, pair_id: &str) -> Result<Candidate, DashError> {
        let gone = || {
            DashError::NotFound(
                "this pair is no longer suggested (someone may have decided it); reload the page"
                    .into(),
            )
        };
        let pair = self
            .duplicates
            .candidates()?
            .into_iter()
            .find(|c| c.id == pair_id.trim())
            .ok_or_else(gone)?;
        if self.visible(pair.records[0])? || self.visible(pair.records[1])? {
            Ok(pair)
        } else {
            Err(gone())
        }
    }

    /// Merges pair `pair_id`, keeping `keep` (one of its two families).
    pub fn merge(&self, pair_id: &str, keep: RecordId) -> Result<RecordId, DashError> {
        let pair = self.pair(pair_id)?;
        if !pair.records.contains(&keep) {
            return Err(DashError::BadInput(
                "the family to keep is not one of the pair's; choose one of the two".into(),
            ));
        }
        let lose = pair.other(keep);
        let keep_doc = self.store.record_doc(keep)?.unwrap_or_default();
        let lose_doc = self.store.record_doc(lose)?.unwrap_or_default();
        self.push(plan_merge(
            (keep, &keep_doc),
            (lose, &lose_doc),
            self.maker(),
        ))?;
        Ok(lose)
    }

    /// Dismisses pair `pair_id`: its two families are not one.
    pub fn dismiss(&self, pair_id: &str) -> Result<(), DashError> {
        let pair = self.pair(pair_id)?;
        let op = plan_dismiss(pair.records[0], pair.records[1], self.maker());
        self.push(vec![op])
    }

    /// Undoes the merge of `id` (a family merged into another).
    pub fn unmerge(&self, id: RecordId) -> Result<RecordId, DashError> {
        let not_merged = || {
            DashError::NotFound(
                "this family is not merged into another (any more); reload the page".into(),
            )
        };
        if !self.visible(id)? {
            return Err(not_merged());
        }
        let doc = self.store.record_doc(id)?.ok_or_else(not_merged)?;
        let into = doc
            .view(id)
            .lifecycle
            .merged_into()
            .ok_or_else(not_merged)?;
        let keep = self.store.record_doc(into)?;
        self.push(plan_unmerge(
            (id, &doc),
            keep.as_ref().map(|d| (into, d)),
            self.maker(),
        ))?;
        Ok(into)
    }
}

/// The action a duplicate decision needs.
pub fn on_duplicates(decision: Decision) -> Action<'static> {
    Action::DecideDuplicates(decision)
}
