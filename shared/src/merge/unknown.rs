//! Fields this release does not know, set by a later release's edits.
//!
//! A later release may add a field; its edits reach an older laptop as
//! [`Change::Edit`]s whose `unknown` map holds the values. The view keeps
//! them in [`FamilyFields::extra`](crate::family::FamilyFields::extra) by
//! the rule every field follows (the heads; among several, the one
//! [`RecordDoc::shown`] picks), so an export from that laptop carries the
//! value every up-to-date replica shows. A conflict on such a field is not
//! listed here: a release that knows the field lists it.

use std::collections::BTreeSet;

use super::{Change, Op, RecordDoc};
use crate::family::{ExtraFields, OpId};

impl RecordDoc {
    /// Sets in `extra` the shown value of every unknown field an edit sets.
    pub(super) fn apply_unknown_edits(&self, extra: &mut ExtraFields) {
        let names: BTreeSet<&str> = self
            .ops
            .iter()
            .filter_map(|o| match &o.change {
                Change::Edit { unknown, .. } => Some(unknown.keys().map(String::as_str)),
                _ => None,
            })
            .flatten()
            .collect();
        for name in names {
            let touching: Vec<&Op> = self
                .ops
                .iter()
                .filter(|o| unknown_value(o, name).is_some())
                .collect();
            let seen: BTreeSet<OpId> = touching
                .iter()
                .flat_map(|o| o.base.iter().copied())
                .collect();
            let heads: Vec<&Op> = touching
                .into_iter()
                .filter(|o| !seen.contains(&o.id))
                .collect();
            if let Some(value) = Self::shown(&heads).and_then(|o| unknown_value(o, name)) {
                extra.insert(name.to_owned(), value.clone());
            }
        }
    }
}

/// The value `op` gives the unknown field `name`, if it sets it.
fn unknown_value<'a>(op: &'a Op, name: &str) -> Option<&'a serde_json::Value> {
    match &op.change {
        Change::Create { fields, .. } => fields.extra.get(name),
        Change::Edit { unknown, .. } => unknown.get(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::family::{DeviceId, FamilyFields, RecordId};
    use crate::merge::Lifecycle;
    use crate::validate::FieldValue;

    fn op(n: u128, base: Vec<OpId>, change: Change) -> Op {
        Op {
            id: OpId(Uuid::from_u128(n)),
            record: RecordId(Uuid::from_u128(1)),
            device: DeviceId(Uuid::from_u128(2)),
            at: chrono::DateTime::UNIX_EPOCH,
            base,
            resolution: false,
            change,
        }
    }

    fn later(value: serde_json::Value) -> Change {
        Change::Edit {
            values: Vec::new(),
            unknown: [("phone_contact".to_string(), value)].into(),
        }
    }

    #[test]
    fn the_view_follows_the_edits_of_an_unknown_field_by_their_heads() {
        let fields: FamilyFields = serde_json::from_value(serde_json::json!({
            "crossing": "torkham",
            "crossed_on": "2025-10-01",
            "return_type": "deported",
            "departure_province": "PK-KP",
            "destination_province": "AF-NAN",
            "members": {"males": [1, 0, 0, 1, 0], "females": [0, 0, 0, 1, 0]},
        }))
        .unwrap();
        let create = op(
            10,
            vec![],
            Change::Create {
                fields,
                origin: None,
            },
        );
        let first = op(11, vec![create.id], later(1.into()));
        let second = op(12, vec![first.id], later(2.into()));
        let notes = op(
            13,
            vec![create.id],
            Change::edit(vec![FieldValue::Notes(None)]),
        );
        let opaque: Change = serde_json::from_str(r#"{"kind":"verify","by":"phone"}"#).unwrap();
        let other = op(14, vec![create.id], opaque);
        let mut doc = RecordDoc::default();
        for o in [other, notes, second, first, create] {
            doc.insert(o);
        }
        let view = doc.view(RecordId(Uuid::from_u128(1)));
        let family = view.family.unwrap();
        assert_eq!(
            family.fields.extra["phone_contact"], 2,
            "the later edit wins"
        );
        assert_eq!(view.lifecycle, Lifecycle::Active);
        assert!(view.conflicts.is_empty(), "{:?}", view.conflicts);
    }
}
