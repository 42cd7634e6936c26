//! A supervisor's decision on an open conflict, as operations: what
//! `returnee conflicts resolve` writes on a laptop and the dashboard writes
//! on the server, planned here once.

use chrono::NaiveDate;

use super::rules::DECIDE_WITHDRAWN;
use super::{
    Change, Conflict, DECIDE_DELETED, DECIDE_KEPT, DECIDE_MERGED, Op, RECORD_CONFLICT_FIELD,
    RecordDoc, Slot, plan_merge, plan_unmerge,
};
use crate::family::{OpId, RecordId};
use crate::validate::rules::Rule;
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
    if let Some(rule) = super::rules::rule_of(conflict) {
        return plan_rule(rule, doc, id, value, today, resolution);
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

/// The operations that decide a `rule` conflict: `withdrawn` (for a rule
/// that hides fields: clears them), or `FIELD=VALUE`, an edit of one field
/// the rule reads. Refused unless the record then keeps the rule.
fn plan_rule(
    rule: Rule,
    doc: &RecordDoc,
    id: RecordId,
    value: &str,
    today: NaiveDate,
    mut resolution: impl FnMut(RecordId, Vec<OpId>, Change) -> Op,
) -> Result<Vec<Op>, ResolveError> {
    let usage = || {
        ResolveError::NotADecision(format!(
            "'{}' does not decide a {} rule conflict; {}",
            value.trim(),
            rule.name(),
            rule.message()
        ))
    };
    let values: Vec<FieldValue> = if value.trim().eq_ignore_ascii_case(DECIDE_WITHDRAWN) {
        if rule.hides().is_empty() {
            return Err(usage());
        }
        let mut cleared = rule.cleared();
        if rule == Rule::Consent {
            cleared.push(FieldValue::Consent(false));
        }
        cleared
    } else {
        let (name, text) = value.split_once('=').ok_or_else(usage)?;
        let field = FieldName::parse(name)
            .filter(|f| rule.fields().contains(f))
            .ok_or_else(usage)?;
        vec![FieldValue::parse(field, text).map_err(|p| ValidationError { problems: vec![p] })?]
    };
    // The rule is checked on the values the operations hold, hidden ones
    // included: the view hides them.
    let mut fields = doc.view_of_heads(id).family.ok_or_else(usage)?.fields;
    for v in &values {
        fields.set(v.clone());
    }
    if rule.broken_by(&fields) {
        return Err(ResolveError::NotADecision(format!(
            "the family would still break the {} rule: {}",
            rule.name(),
            rule.message()
        )));
    }
    fields.check(today)?;
    let names: Vec<FieldName> = values.iter().map(|v| v.name()).collect();
    let mut base: Vec<OpId> = names
        .iter()
        .flat_map(|f| doc.base_for_edit(*f, true))
        .collect();
    base.sort();
    base.dedup();
    Ok(vec![resolution(id, base, Change::edit(values))])
}

/// Whether `restore` undoes deletions its own device made and nothing
/// else: every lifecycle head it had seen (the lifecycle operations of its
/// base that no other one of them covers) is a delete by that device, and
/// there is one. Any device may undo its own delete; keeping a family
/// someone else deleted is a supervisor's decision. A delete the author
/// had not seen stays a competing value (a `record` conflict).
pub fn undoes_own_delete(doc: &RecordDoc, restore: &Op) -> bool {
    if !matches!(restore.change, Change::Restore) {
        return false;
    }
    let lifecycle: Vec<&Op> = restore
        .base
        .iter()
        .filter_map(|id| doc.ops.iter().find(|o| o.id == *id))
        .filter(|o| o.touches(Slot::Lifecycle))
        .collect();
    let covered: std::collections::BTreeSet<OpId> = lifecycle
        .iter()
        .flat_map(|o| o.base.iter().copied())
        .collect();
    let mut heads = lifecycle
        .iter()
        .filter(|o| !covered.contains(&o.id))
        .peekable();
    heads.peek().is_some()
        && heads.all(|o| matches!(o.change, Change::Delete) && o.device == restore.device)
}
