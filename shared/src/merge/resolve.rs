//! A supervisor's decision on an open conflict, as operations: what
//! `returnee conflicts resolve` writes on a laptop and the dashboard writes
//! on the server, planned here once.

use chrono::NaiveDate;

use super::{
    Change, Conflict, DECIDE_DELETED, DECIDE_KEPT, DECIDE_MERGED, Op, RECORD_CONFLICT_FIELD,
    RecordDoc, Slot, plan_merge, plan_unmerge,
};
use crate::family::{OpId, RecordId};
use crate::validate::{FieldName, FieldValue, ValidationError};

/// Why a value does not decide a conflict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    /// The value is not one of the words that decide a `record` conflict.
    #[error("{0}")]
    NotADecision(String),
    /// The value is not valid for the field, or leaves the family invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// The record a `record` conflict's merge points to, when a merge is
/// involved (its survivor's operations are needed to plan the decision).
pub fn merge_involved(conflict: &Conflict, doc: &RecordDoc) -> Option<RecordId> {
    if conflict.field != RECORD_CONFLICT_FIELD {
        return None;
    }
    doc.heads(Slot::Lifecycle)
        .iter()
        .find_map(|o| o.lifecycle().and_then(|l| l.merged_into()))
}

/// The operations that decide `conflict` of the record `doc` with `value`
/// (a value of the field, or for a `record` conflict `deleted`/`kept`, and
/// `merged` when a merge is involved). `into` is the merge's survivor with
/// its operations when [`merge_involved`] named one. `make` builds each
/// operation (its id, device and time) from its record, base and change;
/// every one it builds is marked as a resolution.
pub fn plan_resolve(
    conflict: &Conflict,
    doc: &RecordDoc,
    value: &str,
    into: Option<(RecordId, Option<&RecordDoc>)>,
    today: NaiveDate,
    mut make: impl FnMut(RecordId, Vec<OpId>, Change) -> Op,
) -> Result<Vec<Op>, ResolveError> {
    let id = conflict.record_id;
    let mut resolution = |record, base, change| {
        let mut op = make(record, base, change);
        op.resolution = true;
        op
    };
    let word = value.trim().to_ascii_lowercase();
    if let Some((into, keep)) = into {
        let empty = RecordDoc::default();
        return if word.starts_with(DECIDE_MERGED) || word == "merge" {
            Ok(plan_merge(
                (into, keep.unwrap_or(&empty)),
                (id, doc),
                resolution,
            ))
        } else if word == DECIDE_KEPT || word == "keep" {
            Ok(plan_unmerge((id, doc), keep.map(|d| (into, d)), resolution))
        } else if word == DECIDE_DELETED || word == "delete" {
            Ok(vec![resolution(
                id,
                doc.base_for_lifecycle(),
                Change::Delete,
            )])
        } else {
            Err(ResolveError::NotADecision(format!(
                "'{word}' does not decide this conflict; use --value merged, --value kept or --value deleted"
            )))
        };
    }
    if conflict.field == RECORD_CONFLICT_FIELD {
        let change = match word.as_str() {
            DECIDE_DELETED | "delete" => Change::Delete,
            DECIDE_KEPT | "keep" => Change::Restore,
            other => {
                return Err(ResolveError::NotADecision(format!(
                    "'{other}' does not decide a delete conflict; use --value deleted or --value kept"
                )));
            }
        };
        return Ok(vec![resolution(id, doc.base_for_lifecycle(), change)]);
    }
    let field = FieldName::parse(&conflict.field)
        .ok_or_else(|| ResolveError::NotADecision(format!("unknown field {}", conflict.field)))?;
    let parsed =
        FieldValue::parse(field, value).map_err(|p| ValidationError { problems: vec![p] })?;
    if let Some(f) = doc.view(id).family {
        let mut fields = f.fields.clone();
        fields.set(parsed.clone());
        fields.check(today)?;
    }
    Ok(vec![resolution(
        id,
        doc.base_for_edit(field, true),
        Change::edit(vec![parsed]),
    )])
}
