//! Rules across fields, applied to the record every replica shows.
//!
//! Concurrent edits, each valid, can merge into a record that breaks a rule
//! across fields ([`Rule`]): consent withdrawn on one laptop while another
//! adds the head's name. Such a record is never shown silently: its view
//! carries a `rule` conflict naming the rule, listing the operations that
//! set each field the rule reads. A rule that protects people (consent)
//! wins meanwhile: the fields it protects are hidden from the view (so
//! from every list, export, report and duplicate index), and the conflict
//! names them without their values; the values stay in the operations
//! until a supervisor decides (`withdrawn` drops them, `consent=yes` shows
//! them again, or any `FIELD=VALUE` that mends the rule). The family still
//! counts.

use super::{Conflict, ConflictValue, Lifecycle, RecordDoc, RecordView, Slot, conflict_id};
use crate::family::RecordId;
use crate::validate::rules::{Rule, broken_rules};
use crate::validate::{FieldName, FieldValue};

/// The name under which conflicts with a rule across fields are listed.
pub const RULE_CONFLICT_FIELD: &str = "rule";
/// The decision on a `consent` conflict that drops the hidden values.
pub const DECIDE_WITHDRAWN: &str = "withdrawn";

/// What a conflict value says of a field a rule hides.
fn hidden(field: FieldName) -> String {
    format!("{field}: hidden (no consent)")
}

/// Applies the rules across fields to `view`, a view of `doc`.
pub(super) fn apply(doc: &RecordDoc, record: RecordId, view: &mut RecordView) {
    let Some(family) = view.family.as_mut() else {
        return;
    };
    let mut broken = broken_rules(&family.fields);
    if !broken.contains(&Rule::Consent) && consent_withdrawn_beside_a_value(doc) {
        broken.insert(0, Rule::Consent);
    }
    if broken.is_empty() {
        return;
    }
    for rule in &broken {
        for v in rule.cleared() {
            family.fields.set(v);
        }
        if *rule == Rule::Consent {
            family.fields.consent = false;
        }
    }
    let hides = |f: FieldName| broken.iter().any(|r| r.hides().contains(&f));
    // Other conflicts name hidden fields' values too.
    for c in &mut view.conflicts {
        if let Some(f) = FieldName::parse(&c.field)
            && hides(f)
        {
            for v in &mut c.values {
                v.value = hidden(f);
            }
        }
    }
    if view.lifecycle != Lifecycle::Active {
        return;
    }
    for rule in &broken {
        let mut values = Vec::new();
        for f in rule.fields() {
            for o in doc.heads(Slot::Field(*f)) {
                let Some(v) = o.value(*f) else { continue };
                values.push(ConflictValue {
                    value: if hides(*f) {
                        hidden(*f)
                    } else {
                        format!("{f}: {}", v.display())
                    },
                    op: o.id,
                    device: o.device,
                    at: o.at,
                    shown: !hides(*f),
                    merged_from: o.merged_from(),
                });
            }
        }
        view.conflicts.push(Conflict {
            id: conflict_id(record, &format!("{RULE_CONFLICT_FIELD}:{}", rule.name())),
            record_id: record,
            field: RULE_CONFLICT_FIELD.to_string(),
            rule: Some(rule.name().to_string()),
            values,
        });
    }
}

/// Withdrawal wins: whether some competing value of consent is `no`
/// while some competing value of the name or document number is set
/// (the values shown may not say so, nor hold the name: a field conflict
/// would still list it).
fn consent_withdrawn_beside_a_value(doc: &RecordDoc) -> bool {
    if doc.ops.len() < 2 {
        return false;
    }
    let any = |f: FieldName, pred: &dyn Fn(&FieldValue) -> bool| {
        doc.heads(Slot::Field(f))
            .iter()
            .any(|o| o.value(f).is_some_and(|v| pred(&v)))
    };
    any(FieldName::Consent, &|v| *v == FieldValue::Consent(false))
        && [FieldName::HeadName, FieldName::DocNumber]
            .into_iter()
            .any(|f| {
                any(f, &|v| {
                    matches!(
                        v,
                        FieldValue::HeadName(Some(_)) | FieldValue::DocNumber(Some(_))
                    )
                })
            })
}

/// The rule a `rule` conflict names.
pub fn rule_of(conflict: &Conflict) -> Option<Rule> {
    (conflict.field == RULE_CONFLICT_FIELD)
        .then(|| conflict.rule.as_deref().and_then(Rule::parse))
        .flatten()
}

impl Conflict {
    /// What the conflict is on, as people read it: the field, `record`,
    /// or `rule consent` (the rule a `rule` conflict names).
    pub fn label(&self) -> String {
        match &self.rule {
            Some(rule) => format!("{} {rule}", self.field),
            None => self.field.clone(),
        }
    }
}
