//! Erasing a family's personal data (`returnee erase`; PROTOCOL.md,
//! "Erasure").
//!
//! A [`Change::Erase`] on a record says: no replica keeps the values of
//! [`FieldName::ERASED`] of this record, in any operation it holds (the
//! record's own, and values carried onto it by a merge) or receives later.
//! Stores strip what they hold ([`Op::erased`], [`erased_json`]) and
//! rewrite their files so that no old bytes remain; the view hides
//! anything that arrives after ([`apply`]). What a report counts is never
//! among those fields, so counts do not change, and the record's ids,
//! lifecycle and decisions stay: the family is counted exactly once, as
//! before.

use super::{Change, Op, RecordDoc, RecordView};
use crate::validate::FieldName;

/// The longest reason an erasure takes (it goes to the audit trail).
pub const MAX_REASON: usize = 500;

impl Op {
    /// This operation without the values an erasure removes; `None` when
    /// it holds none. An operation of a later release's kind is kept as it
    /// came (this release cannot tell its values apart).
    pub fn erased(&self) -> Option<Op> {
        let mut op = self.clone();
        let changed = match &mut op.change {
            Change::Create { fields, .. } => {
                let had = fields.head_name.is_some()
                    || fields.doc_number.is_some()
                    || fields.notes.is_some()
                    || !fields.vulnerabilities.is_empty()
                    || fields.protection_referral.is_some();
                fields.head_name = None;
                fields.doc_number = None;
                fields.notes = None;
                fields.vulnerabilities.clear();
                fields.protection_referral = None;
                had
            }
            Change::Edit { values, .. } | Change::MergedValues { values, .. } => {
                let before = values.len();
                values.retain(|v| !FieldName::ERASED.contains(&v.name()));
                values.len() != before
            }
            Change::Delete
            | Change::Restore
            | Change::Merge { .. }
            | Change::Dismiss { .. }
            | Change::Erase { .. }
            | Change::Other(_) => false,
        };
        changed.then_some(op)
    }
}

/// `json`, an operation as a store wrote it, without the values an erasure
/// removes, never longer than it was (so that it can be written over the
/// old bytes in place); `None` when it holds none, or is not an operation.
/// The erased fields of a creation are left out (they read back empty).
pub fn erased_json(json: &[u8]) -> Option<Vec<u8>> {
    let op: Op = serde_json::from_slice(json).ok()?;
    let erased = op.erased()?;
    let mut value = serde_json::to_value(&erased).ok()?;
    if let Some(fields) = value
        .get_mut("change")
        .and_then(|c| c.get_mut("fields"))
        .and_then(|f| f.as_object_mut())
    {
        for f in FieldName::ERASED {
            fields.remove(f.as_str());
        }
    }
    let out = serde_json::to_vec(&value).ok()?;
    (out.len() <= json.len()).then_some(out)
}

impl RecordDoc {
    /// The record's erasure, if any: the first by id (every replica takes
    /// the same one).
    pub fn erasure(&self) -> Option<&Op> {
        self.ops
            .iter()
            .find(|o| matches!(o.change, Change::Erase { .. }))
    }

    /// Strips every operation of the values an erasure removes; whether
    /// any held one.
    pub fn erase_personal(&mut self) -> bool {
        let mut changed = false;
        for op in &mut self.ops {
            if let Some(erased) = op.erased() {
                *op = erased;
                changed = true;
            }
        }
        changed
    }
}

/// Hides the erased fields of an erased record, and their conflicts,
/// whatever operations arrived after the erasure.
pub(crate) fn apply(doc: &RecordDoc, view: &mut RecordView) {
    if doc.erasure().is_none() {
        return;
    }
    if let Some(family) = &mut view.family {
        let f = &mut family.fields;
        f.head_name = None;
        f.doc_number = None;
        f.notes = None;
        f.vulnerabilities.clear();
        f.protection_referral = None;
    }
    view.conflicts
        .retain(|c| !FieldName::ERASED.iter().any(|f| f.as_str() == c.field));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::{
        DeviceId, DocType, FamilyFields, Members, OpId, RecordId, Referral, ReturnType,
        Vulnerability,
    };
    use crate::validate::FieldValue;

    fn fields() -> FamilyFields {
        FamilyFields {
            crossing: "torkham".into(),
            crossed_on: "2026-09-17".parse().unwrap(),
            return_type: ReturnType::Spontaneous,
            departure_province: "PK-KP".into(),
            destination_province: "AF-NAN".into(),
            members: Members {
                males: [1, 0, 0, 1, 0],
                females: [0, 1, 0, 1, 0],
            },
            head_name: Some("Gul Bibi Zadran".into()),
            head_sex: None,
            doc_type: DocType::PorCard,
            doc_number: Some("PK-7781234".into()),
            consent: true,
            vulnerabilities: [Vulnerability::FemaleHeaded].into(),
            documentation: Default::default(),
            protection_referral: Some(Referral::Medical),
            notes: Some("lives with her brother's family".into()),
            extra: Default::default(),
        }
    }

    fn op(n: u128, change: Change) -> Op {
        Op {
            id: OpId(uuid::Uuid::from_u128(n)),
            record: RecordId(uuid::Uuid::from_u128(1)),
            device: DeviceId(uuid::Uuid::from_u128(2)),
            at: "2026-09-17T08:00:00Z".parse().unwrap(),
            base: Vec::new(),
            resolution: false,
            change,
        }
    }

    #[test]
    fn an_erased_creation_keeps_what_counts_and_nothing_personal() {
        let create = op(
            1,
            Change::Create {
                fields: fields(),
                origin: None,
            },
        );
        let json = serde_json::to_vec(&create).unwrap();
        let erased = erased_json(&json).expect("a creation with a name is erased");
        assert!(erased.len() < json.len());
        let text = String::from_utf8(erased.clone()).unwrap();
        for gone in ["Gul Bibi", "7781234", "brother", "female-headed", "medical"] {
            assert!(!text.contains(gone), "{gone} left in {text}");
        }
        let back: Op = serde_json::from_slice(&erased).unwrap();
        let Change::Create { fields: f, .. } = back.change else {
            panic!("still a creation")
        };
        assert_eq!(f.members, fields().members);
        assert_eq!(f.crossing, "torkham");
        assert_eq!(f.head_name, None);
        assert!(f.vulnerabilities.is_empty());
        assert_eq!(erased_json(&erased), None, "nothing left to erase");
    }

    #[test]
    fn an_edit_loses_only_its_personal_values() {
        let edit = op(
            2,
            Change::edit(vec![
                FieldValue::HeadName(Some("A".into())),
                FieldValue::Crossing("chaman".into()),
            ]),
        );
        let erased = edit.erased().unwrap();
        assert_eq!(
            erased.change,
            Change::edit(vec![FieldValue::Crossing("chaman".into())])
        );
        let json = serde_json::to_vec(&edit).unwrap();
        assert!(erased_json(&json).unwrap().len() <= json.len());
        assert_eq!(op(3, Change::Delete).erased(), None);
    }

    #[test]
    fn an_erased_record_hides_values_that_arrive_later() {
        let mut doc = RecordDoc::default();
        doc.insert(op(
            1,
            Change::Create {
                fields: fields(),
                origin: None,
            },
        ));
        doc.insert(op(
            5,
            Change::Erase {
                reason: "asked".into(),
            },
        ));
        let mut late = op(9, Change::edit(vec![FieldValue::Notes(Some("x".into()))]));
        late.base = vec![OpId(uuid::Uuid::from_u128(1))];
        doc.insert(late);
        let view = doc.view(RecordId(uuid::Uuid::from_u128(1)));
        let family = view.active().expect("still counts");
        assert_eq!(family.fields.head_name, None);
        assert_eq!(family.fields.notes, None);
        assert_eq!(family.fields.members, fields().members);
        assert!(doc.erase_personal());
        assert!(!doc.erase_personal());
    }
}
