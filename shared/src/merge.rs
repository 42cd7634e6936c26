//! The merge rules: operations on a record, and the record every replica
//! derives from the set of operations it holds.
//!
//! A record is the set of its operations ([`RecordDoc`]). Every operation
//! names the *heads* its author had seen (its `base`), so causality comes from
//! what people saw, never from device clocks. For each field (and for the
//! record's lifecycle) the heads are the operations touching it that no other
//! operation touching it has in its base. One head, or several heads with the
//! same value: the field is settled. Several values: the field is in conflict;
//! every replica shows the same value (a clock-independent tie-break) and keeps
//! all of them, with who made each and when, until a supervisor resolves it
//! with an operation whose base covers them all.
//!
//! An edit that a delete did not see keeps the delete from settling: the
//! record is in conflict until someone decides to delete it or keep it.
//!
//! Duplicates are decided with operations too. A **merge** makes one record
//! a tombstone pointing at the family that survives ([`Change::Merge`], a
//! lifecycle change like a delete, whose base covers every head), and carries
//! each of its values that differ onto the survivor ([`Change::MergedValues`],
//! with an empty base): each becomes a conflict on the survivor, which keeps
//! showing its own value, until a supervisor decides. An **unmerge** keeps the
//! merged record again (a `Restore`) and replaces the carried values it left
//! on the survivor ([`plan_unmerge`]). A **dismissal** ([`Change::Dismiss`])
//! says two records are not the same family; it changes no value.
//!
//! [`RecordDoc::view`] depends only on the set of operations, not on the order
//! they arrived in, so replicas that hold the same operations agree.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::family::{DeviceId, ExtraFields, Family, FamilyFields, OpId, RecordId};
use crate::validate::{FieldName, FieldValue};

/// What an operation does.
///
/// On the wire: an object whose `kind` names the variant, beside the
/// variant's fields (`{"kind": "edit", "values": [...]}`). Read by
/// [`change_json`], which takes the same JSON as serde's tagged derive but
/// reads it without buffering when `kind` comes first.
#[allow(clippy::large_enum_variant)] // creations are the common case; boxing gains nothing
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A new family: sets every field and makes the record active.
    Create {
        fields: FamilyFields,
        /// Who first recorded the family, when it came from another store
        /// (an import of an export); otherwise the operation's own device.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// New values for some fields.
    Edit {
        values: Vec<FieldValue>,
        /// Values of fields this release does not know (a later release's
        /// edit), kept as they came: the view's [`FamilyFields::extra`]
        /// follows them by the same head rule as every field
        /// (PROTOCOL.md, "Versions"). Stored under this key, never sent:
        /// a laptop pushes only its own operations.
        #[serde(default, skip_serializing_if = "ExtraFields::is_empty")]
        #[schema(ignore)]
        unknown: ExtraFields,
    },
    /// The record is deleted (kept as a tombstone).
    Delete,
    /// The record is kept (a decision on a delete or merge conflict, or an unmerge).
    Restore,
    /// The record is a duplicate of `into`, which survives: this one no
    /// longer counts (a supervisor's decision; the base covers every head).
    Merge { into: RecordId },
    /// Values of the duplicate `from`, merged into this record, that differ
    /// from this record's: each competes with this record's own value (the
    /// base is empty) and is never the value shown, until someone decides.
    MergedValues {
        from: RecordId,
        values: Vec<FieldValue>,
    },
    /// This record and `other` are not the same family: the pair is never
    /// suggested again. Recorded on the lower id of the two; changes no value.
    Dismiss { other: RecordId },
    /// The family's personal data is erased on every replica (a
    /// supervisor's or admin's decision, for `reason`): every operation of
    /// the record loses the values of [`FieldName::ERASED`], and any that
    /// arrive later are dropped ([`erasure`]). The family still counts.
    Erase { reason: String },
    /// An operation of a kind a later release added (or carried values of
    /// fields this release does not know): kept and passed on as it came,
    /// written back with the same `kind` and keys. It changes nothing this
    /// release shows; a server refuses it (`bad_request`: upgrade).
    // Not in the published description (this server refuses it); the
    // derive of `Deserialize` is not used (`change_json`).
    #[serde(untagged, skip_deserializing)]
    Other(OpaqueChange),
}

/// A [`Change::Other`]: its `kind` and its other keys, as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueChange {
    pub kind: String,
    pub body: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for OpaqueChange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.body.len() + 1))?;
        map.serialize_entry("kind", &self.kind)?;
        for (k, v) in &self.body {
            if k != "kind" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl Change {
    /// An edit of fields this release knows.
    pub fn edit(values: Vec<FieldValue>) -> Change {
        Change::Edit {
            values,
            unknown: ExtraFields::new(),
        }
    }
}

mod change_json;
pub mod cycles;
pub mod erasure;
pub mod resolve;
pub mod rules;
mod unknown;

/// Who first recorded a family, and when, by that device's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Origin {
    pub recorded_by: DeviceId,
    pub recorded_at: DateTime<Utc>,
}

/// One change to one record, made on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Op {
    pub id: OpId,
    pub record: RecordId,
    pub device: DeviceId,
    /// The device's clock when the change was made: shown to people, never used to order.
    pub at: DateTime<Utc>,
    /// The heads the author had seen of what this operation touches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base: Vec<OpId>,
    /// A supervisor's decision on a conflict (refused from field devices).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolution: bool,
    pub change: Change,
}

/// What an operation can touch: one field, or the record's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    Field(FieldName),
    Lifecycle,
}

/// Whether a record counts: only an active one does.
///
/// Stored and sent as `"active"`, `"deleted"` or `{"merged": {"into": ID}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Active,
    Deleted,
    /// A duplicate, merged into the record that counts instead.
    Merged {
        into: RecordId,
    },
}

impl Lifecycle {
    /// The surviving record, for a merged duplicate.
    pub fn merged_into(self) -> Option<RecordId> {
        match self {
            Lifecycle::Merged { into } => Some(into),
            _ => None,
        }
    }
}

impl Op {
    /// Whether this operation sets the value of `slot`.
    pub fn touches(&self, slot: Slot) -> bool {
        match (&self.change, slot) {
            (Change::Create { .. }, _) => true,
            (Change::Edit { values, .. } | Change::MergedValues { values, .. }, Slot::Field(f)) => {
                values.iter().any(|v| v.name() == f)
            }
            (Change::Delete | Change::Restore | Change::Merge { .. }, Slot::Lifecycle) => true,
            _ => false,
        }
    }

    /// The lifecycle this operation sets, if it sets one.
    pub fn lifecycle(&self) -> Option<Lifecycle> {
        match self.change {
            Change::Create { .. } | Change::Restore => Some(Lifecycle::Active),
            Change::Delete => Some(Lifecycle::Deleted),
            Change::Merge { into } => Some(Lifecycle::Merged { into }),
            Change::Edit { .. }
            | Change::MergedValues { .. }
            | Change::Dismiss { .. }
            | Change::Erase { .. }
            | Change::Other(_) => None,
        }
    }

    /// The value this operation gives `field`, if it sets it.
    pub fn value(&self, field: FieldName) -> Option<FieldValue> {
        match &self.change {
            Change::Create { fields, .. } => Some(fields.get(field)),
            Change::Edit { values, .. } | Change::MergedValues { values, .. } => {
                values.iter().find(|v| v.name() == field).cloned()
            }
            _ => None,
        }
    }

    /// The duplicate whose value this operation carries (a merge's carried values).
    pub fn merged_from(&self) -> Option<RecordId> {
        match self.change {
            Change::MergedValues { from, .. } => Some(from),
            _ => None,
        }
    }

    /// Whether this operation is a decision on duplicates (merge, carried
    /// values, dismissal): supervisors' and admins' only.
    pub fn decides_duplicates(&self) -> bool {
        matches!(
            self.change,
            Change::Merge { .. } | Change::MergedValues { .. } | Change::Dismiss { .. }
        )
    }

    /// The fields this operation sets.
    pub fn fields(&self) -> Vec<FieldName> {
        FieldName::ALL
            .into_iter()
            .filter(|f| self.touches(Slot::Field(*f)))
            .collect()
    }
}

/// The name under which record-level (delete/keep) conflicts are listed.
pub const RECORD_CONFLICT_FIELD: &str = "record";
/// The value that decides a record conflict for deletion.
pub const DECIDE_DELETED: &str = "deleted";
/// The value that decides a record conflict for keeping the family.
pub const DECIDE_KEPT: &str = "kept";
/// How a merge shows in a record conflict (followed by ` into ID`); also
/// the value that decides one for merging again.
pub const DECIDE_MERGED: &str = "merged";

/// One of the competing values of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConflictValue {
    /// The value as a person types it.
    pub value: String,
    /// The operation that set it.
    pub op: OpId,
    /// The device that made it.
    pub device: DeviceId,
    /// That device's clock when it was made.
    pub at: DateTime<Utc>,
    /// Whether this is the value every replica shows while the conflict is open.
    pub shown: bool,
    /// For a value carried over by a merge: the duplicate it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<RecordId>,
}

/// Concurrent values of one field of one record, kept until someone decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conflict {
    /// Stable for a record and field on every replica.
    pub id: String,
    pub record_id: RecordId,
    /// A field name, `record` for delete-versus-edit, or `rule` for a
    /// record that breaks a rule across fields ([`rules`]).
    pub field: String,
    /// For a `rule` conflict: the rule's name (`consent`, `female-headed` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub values: Vec<ConflictValue>,
}

/// The id of the conflict on `field` of `record`: the same on every replica.
pub fn conflict_id(record: RecordId, field: &str) -> String {
    let mut h = Sha256::new();
    h.update(record.0.as_bytes());
    h.update(field.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// A record as the set of its operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDoc {
    /// Sorted by id, without repeats.
    pub ops: Vec<Op>,
}

/// What a replica shows of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    /// The shown value of every field; `None` until the record's creation arrives.
    pub family: Option<Family>,
    pub lifecycle: Lifecycle,
    pub conflicts: Vec<Conflict>,
}

impl RecordView {
    /// The family if it counts (created, not deleted, not merged into another).
    pub fn active(&self) -> Option<&Family> {
        match self.lifecycle {
            Lifecycle::Active => self.family.as_ref(),
            Lifecycle::Deleted | Lifecycle::Merged { .. } => None,
        }
    }
}

impl RecordDoc {
    /// Adds an operation; false if it was already there (re-sends change nothing).
    pub fn insert(&mut self, op: Op) -> bool {
        match self.ops.binary_search_by(|o| o.id.cmp(&op.id)) {
            Ok(_) => false,
            Err(at) => {
                self.ops.insert(at, op);
                true
            }
        }
    }

    /// Whether the record holds this operation.
    pub fn contains(&self, id: OpId) -> bool {
        self.ops.binary_search_by(|o| o.id.cmp(&id)).is_ok()
    }

    /// The operations that set `slot` and that no later operation setting it has seen.
    pub fn heads(&self, slot: Slot) -> Vec<&Op> {
        let touching: Vec<&Op> = self.ops.iter().filter(|o| o.touches(slot)).collect();
        let seen: BTreeSet<OpId> = touching
            .iter()
            .flat_map(|o| o.base.iter().copied())
            .collect();
        touching
            .into_iter()
            .filter(|o| !seen.contains(&o.id))
            .collect()
    }

    /// Among heads, the one every replica shows: a clock-independent
    /// tie-break; a value carried over by a merge is shown only when nothing
    /// else is left (the surviving record keeps its own values).
    fn shown<'a>(heads: &[&'a Op]) -> Option<&'a Op> {
        heads
            .iter()
            .copied()
            .max_by_key(|o| (o.merged_from().is_none(), o.id.tiebreak_key()))
    }

    /// The crossings this record belongs to: every value its crossing field
    /// holds (more than one while the field is in conflict). Empty until the
    /// record's creation arrives. Sync is scoped to sites by this set.
    pub fn sites(&self) -> BTreeSet<String> {
        self.heads(Slot::Field(FieldName::Crossing))
            .into_iter()
            .filter_map(|o| match o.value(FieldName::Crossing) {
                Some(FieldValue::Crossing(c)) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// Every head of every field and of the lifecycle.
    pub fn all_heads(&self) -> BTreeSet<OpId> {
        FieldName::ALL
            .into_iter()
            .map(Slot::Field)
            .chain([Slot::Lifecycle])
            .flat_map(|s| self.heads(s).into_iter().map(|o| o.id))
            .collect()
    }

    /// The base of a new edit of one field. A field device's edit of a field
    /// in conflict replaces only the shown value, so the conflict stays open
    /// for a supervisor; a resolution (`resolving`) covers every competing value.
    pub fn base_for_edit(&self, field: FieldName, resolving: bool) -> Vec<OpId> {
        self.field_base(field, resolving).0.into_iter().collect()
    }

    /// The base of an edit of `field`, and the competing values it leaves open.
    fn field_base(&self, field: FieldName, resolving: bool) -> (BTreeSet<OpId>, BTreeSet<OpId>) {
        let heads = self.heads(Slot::Field(field));
        let values: BTreeSet<String> = heads
            .iter()
            .filter_map(|o| o.value(field).map(|v| v.display()))
            .collect();
        let all: BTreeSet<OpId> = heads.iter().map(|o| o.id).collect();
        if resolving || values.len() <= 1 {
            (all, BTreeSet::new())
        } else {
            let shown: BTreeSet<OpId> = Self::shown(&heads).map(|o| o.id).into_iter().collect();
            let left_open = all.difference(&shown).copied().collect();
            (shown, left_open)
        }
    }

    /// How to write an edit of `fields` as operations: the fields each
    /// operation sets and its base. Usually one operation; but one base
    /// cannot say "seen for this field, not for that one", so when an edit
    /// would put a competing value of one field's open conflict into its base
    /// (because it heads another edited field), each field gets its own
    /// operation and the conflict stays open.
    pub fn plan_edit(
        &self,
        fields: &[FieldName],
        resolving: bool,
    ) -> Vec<(Vec<FieldName>, Vec<OpId>)> {
        let per_field: Vec<(FieldName, BTreeSet<OpId>, BTreeSet<OpId>)> = fields
            .iter()
            .map(|f| {
                let (base, left_open) = self.field_base(*f, resolving);
                (*f, base, left_open)
            })
            .collect();
        let base: BTreeSet<OpId> = per_field
            .iter()
            .flat_map(|(_, b, _)| b.iter().copied())
            .collect();
        let clash = per_field
            .iter()
            .any(|(_, _, open)| open.iter().any(|o| base.contains(o)));
        if clash {
            per_field
                .into_iter()
                .map(|(f, b, _)| (vec![f], b.into_iter().collect()))
                .collect()
        } else {
            vec![(fields.to_vec(), base.into_iter().collect())]
        }
    }

    /// The base of a delete or a keep: everything the author sees.
    pub fn base_for_lifecycle(&self) -> Vec<OpId> {
        self.all_heads().into_iter().collect()
    }

    /// The records this one was dismissed against: pairs decided not to be
    /// the same family (recorded on the lower id of each pair).
    pub fn dismissed(&self) -> BTreeSet<RecordId> {
        self.ops
            .iter()
            .filter_map(|o| match o.change {
                Change::Dismiss { other } => Some(other),
                _ => None,
            })
            .collect()
    }

    /// What every replica holding these operations shows.
    pub fn view(&self, record: RecordId) -> RecordView {
        let mut view = self.view_of_heads(record);
        erasure::apply(self, &mut view);
        rules::apply(self, record, &mut view);
        view
    }

    /// [`RecordDoc::view`] before the rules across fields.
    pub(crate) fn view_of_heads(&self, record: RecordId) -> RecordView {
        // Most records are one creation and nothing else (every family a
        // push or a pull brings in the first time): what it shows needs no
        // heads (two dozen small collections per record, most of a pull's
        // allocations). `view_by_heads` gives the same (property-tested).
        if let [only] = self.ops.as_slice()
            && only.base.is_empty()
            && let Change::Create { fields, origin } = &only.change
        {
            return RecordView {
                family: Some(Family {
                    id: record,
                    fields: fields.clone(),
                    recorded_by: origin.map_or(only.device, |o| o.recorded_by),
                    recorded_at: origin.map_or(only.at, |o| o.recorded_at),
                }),
                lifecycle: Lifecycle::Active,
                conflicts: Vec::new(),
            };
        }
        self.view_by_heads(record)
    }

    /// [`RecordDoc::view`] worked out from the heads of every field and of
    /// the lifecycle, whatever the operations.
    fn view_by_heads(&self, record: RecordId) -> RecordView {
        let mut conflicts = Vec::new();
        let creates: Vec<&Op> = self
            .ops
            .iter()
            .filter(|o| matches!(o.change, Change::Create { .. }))
            .collect();
        let first_create = creates.iter().min_by_key(|o| o.id);

        let family = first_create.map(|first| {
            let Change::Create { fields, origin } = &first.change else {
                unreachable!("filtered on Create")
            };
            let mut fields = fields.clone();
            for f in FieldName::ALL {
                let heads = self.heads(Slot::Field(f));
                let Some(shown) = Self::shown(&heads) else {
                    continue;
                };
                if shown.id != first.id
                    && let Some(v) = shown.value(f)
                {
                    fields.set(v);
                }
                if heads.len() < 2 {
                    continue;
                }
                let mut values: Vec<(&Op, FieldValue)> = heads
                    .iter()
                    .filter_map(|o| o.value(f).map(|v| (*o, v)))
                    .collect();
                let distinct: BTreeSet<String> = values.iter().map(|(_, v)| v.display()).collect();
                if distinct.len() > 1 {
                    values.sort_by_key(|(o, _)| o.id);
                    conflicts.push(Conflict {
                        id: conflict_id(record, f.as_str()),
                        record_id: record,
                        field: f.as_str().to_string(),
                        rule: None,
                        values: values
                            .into_iter()
                            .map(|(o, v)| ConflictValue {
                                value: v.display(),
                                op: o.id,
                                device: o.device,
                                at: o.at,
                                shown: o.id == shown.id,
                                merged_from: o.merged_from(),
                            })
                            .collect(),
                    });
                }
            }
            self.apply_unknown_edits(&mut fields.extra);
            Family {
                id: record,
                fields,
                recorded_by: origin.map_or(first.device, |o| o.recorded_by),
                recorded_at: origin.map_or(first.at, |o| o.recorded_at),
            }
        });

        let life_heads = self.heads(Slot::Lifecycle);
        let lifecycle = Self::shown(&life_heads)
            .and_then(|o| o.lifecycle())
            .unwrap_or(Lifecycle::Active);
        match self.record_conflict(record, &life_heads, lifecycle) {
            Some(c) => conflicts.push(c),
            // A settled deletion (or merge) makes its field conflicts moot;
            // they come back if the family is ever kept again.
            None if lifecycle != Lifecycle::Active => conflicts.clear(),
            None => {}
        }
        RecordView {
            family,
            lifecycle,
            conflicts,
        }
    }

    /// Delete (or merge) versus keep: lifecycle heads that disagree, or a
    /// delete or merge that did not see an edit.
    fn record_conflict(
        &self,
        record: RecordId,
        life_heads: &[&Op],
        lifecycle: Lifecycle,
    ) -> Option<Conflict> {
        let shown = Self::shown(life_heads)?;
        let describe = |l: Option<Lifecycle>| match l {
            Some(Lifecycle::Deleted) => DECIDE_DELETED.to_string(),
            Some(Lifecycle::Merged { into }) => format!("{DECIDE_MERGED} into {into}"),
            _ => DECIDE_KEPT.to_string(),
        };
        let mut values: Vec<ConflictValue> = life_heads
            .iter()
            .map(|o| ConflictValue {
                value: describe(o.lifecycle()),
                op: o.id,
                device: o.device,
                at: o.at,
                shown: o.id == shown.id,
                merged_from: None,
            })
            .collect();
        let mut disagree = values
            .iter()
            .map(|v| &v.value)
            .collect::<BTreeSet<_>>()
            .len()
            > 1;
        if lifecycle != Lifecycle::Active {
            let covered: BTreeSet<OpId> = life_heads
                .iter()
                .filter(|o| o.lifecycle().is_some_and(|l| l != Lifecycle::Active))
                .flat_map(|o| o.base.iter().copied())
                .collect();
            let mut unseen: BTreeMap<OpId, &Op> = BTreeMap::new();
            for f in FieldName::ALL {
                for o in self.heads(Slot::Field(f)) {
                    if !covered.contains(&o.id)
                        && matches!(o.change, Change::Edit { .. } | Change::MergedValues { .. })
                    {
                        unseen.insert(o.id, o);
                    }
                }
            }
            for o in unseen.values() {
                disagree = true;
                let fields: Vec<&str> = o.fields().iter().map(|f| f.as_str()).collect();
                values.push(ConflictValue {
                    value: format!("{DECIDE_KEPT} (edited {})", fields.join(", ")),
                    op: o.id,
                    device: o.device,
                    at: o.at,
                    shown: false,
                    merged_from: o.merged_from(),
                });
            }
        }
        disagree.then(|| {
            values.sort_by_key(|v| v.op);
            Conflict {
                id: conflict_id(record, RECORD_CONFLICT_FIELD),
                record_id: record,
                field: RECORD_CONFLICT_FIELD.to_string(),
                rule: None,
                values,
            }
        })
    }
}

/// The operations of merging the duplicate `lose` into `keep`, which survives.
///
/// `make(record, base, change)` builds each operation (fresh id, device,
/// time, `resolution: true`). The result:
///
/// - on `lose`: a [`Change::Merge`] whose base covers every head, like a
///   delete (an edit it did not see puts the record in a `record` conflict);
/// - on `keep`, if some values differ: one [`Change::MergedValues`] with
///   `lose`'s values of those fields and an empty base, so each competes
///   with `keep`'s own value as a field conflict. A value already carried
///   from `lose` before (a merge decided again) is not carried twice.
///
/// The caller checks that both records exist and are active.
pub fn plan_merge(
    keep: (RecordId, &RecordDoc),
    lose: (RecordId, &RecordDoc),
    mut make: impl FnMut(RecordId, Vec<OpId>, Change) -> Op,
) -> Vec<Op> {
    let ((keep_id, keep_doc), (lose_id, lose_doc)) = (keep, lose);
    let mut ops = vec![make(
        lose_id,
        lose_doc.base_for_lifecycle(),
        Change::Merge { into: keep_id },
    )];
    let (Some(kept), Some(lost)) = (keep_doc.view(keep_id).family, lose_doc.view(lose_id).family)
    else {
        return ops;
    };
    let carried_before = |v: &FieldValue| {
        keep_doc
            .ops
            .iter()
            .filter(|o| o.merged_from() == Some(lose_id))
            .any(|o| o.value(v.name()).as_ref() == Some(v))
    };
    let values: Vec<FieldValue> = kept
        .fields
        .changes_to(&lost.fields)
        .into_iter()
        .filter(|v| !carried_before(v))
        .collect();
    if !values.is_empty() {
        ops.push(make(
            keep_id,
            Vec::new(),
            Change::MergedValues {
                from: lose_id,
                values,
            },
        ));
    }
    ops
}

/// The operations of undoing the merge of `lose`: a `Restore` of `lose`
/// whose base covers every head, and on the survivor `keep` (if held), for
/// each field where a value carried from `lose` still competes, an edit
/// that keeps the survivor's own shown value and covers the carried one
/// (one operation per field; other competing values stay open).
pub fn plan_unmerge(
    lose: (RecordId, &RecordDoc),
    keep: Option<(RecordId, &RecordDoc)>,
    mut make: impl FnMut(RecordId, Vec<OpId>, Change) -> Op,
) -> Vec<Op> {
    let (lose_id, lose_doc) = lose;
    let mut ops = vec![make(
        lose_id,
        lose_doc.base_for_lifecycle(),
        Change::Restore,
    )];
    let Some((keep_id, keep_doc)) = keep else {
        return ops;
    };
    for f in FieldName::ALL {
        let heads = keep_doc.heads(Slot::Field(f));
        let (carried, own): (Vec<&Op>, Vec<&Op>) = heads
            .into_iter()
            .partition(|o| o.merged_from() == Some(lose_id));
        if carried.is_empty() {
            continue;
        }
        let Some(shown) = RecordDoc::shown(&own) else {
            continue;
        };
        let Some(value) = shown.value(f) else {
            continue;
        };
        let mut base: Vec<OpId> = carried.iter().map(|o| o.id).collect();
        base.push(shown.id);
        base.sort();
        ops.push(make(keep_id, base, Change::edit(vec![value])));
    }
    ops
}

/// The operation that dismisses the pair of `a` and `b` (not the same
/// family): a [`Change::Dismiss`] on the lower id, naming the other.
pub fn plan_dismiss(
    a: RecordId,
    b: RecordId,
    make: impl FnOnce(RecordId, Vec<OpId>, Change) -> Op,
) -> Op {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    make(lo, Vec::new(), Change::Dismiss { other: hi })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::{DocType, Members, ReturnType};
    use proptest::prelude::*;

    /// What the property varies of a family: the crossing (an index), the
    /// head's name, the document number, the notes, the men and the women.
    type Varied = (
        usize,
        Option<String>,
        Option<String>,
        Option<String>,
        [u8; 5],
        [u8; 5],
    );

    fn fields((crossing, name, doc, notes, males, females): Varied) -> FamilyFields {
        FamilyFields {
            crossing: ["torkham", "chaman", "kharlachi"][crossing].into(),
            crossed_on: "2026-09-17".parse().unwrap(),
            return_type: ReturnType::Spontaneous,
            departure_province: "PK-KP".into(),
            destination_province: "AF-NAN".into(),
            members: Members {
                males: males.map(u32::from),
                females: females.map(u32::from),
            },
            head_name: name,
            head_sex: None,
            doc_type: if doc.is_some() {
                DocType::PorCard
            } else {
                DocType::None
            },
            doc_number: doc,
            consent: true,
            vulnerabilities: Default::default(),
            documentation: Default::default(),
            protection_referral: None,
            notes,
            extra: Default::default(),
        }
    }

    proptest! {
        /// The shortcut for a record that is one creation shows exactly what
        /// the heads show.
        #[test]
        fn a_lone_creation_shows_what_its_heads_show(
            f in (
                0usize..3,
                proptest::option::of("[A-Za-z ]{0,12}"),
                proptest::option::of("[A-Z0-9-]{1,10}"),
                proptest::option::of(".{0,20}"),
                any::<[u8; 5]>(),
                any::<[u8; 5]>(),
            ),
            origin in proptest::option::of((any::<u128>(), 0i64..2_000_000_000)),
            ids in (any::<u128>(), any::<u128>(), any::<u128>()),
        ) {
            let record = RecordId(uuid::Uuid::from_u128(ids.0));
            let doc = RecordDoc {
                ops: vec![Op {
                    id: OpId(uuid::Uuid::from_u128(ids.1)),
                    record,
                    device: DeviceId(uuid::Uuid::from_u128(ids.2)),
                    at: "2026-09-17T08:00:00Z".parse().unwrap(),
                    base: vec![],
                    resolution: false,
                    change: Change::Create {
                        fields: fields(f),
                        origin: origin.map(|(by, at)| Origin {
                            recorded_by: DeviceId(uuid::Uuid::from_u128(by)),
                            recorded_at: chrono::DateTime::from_timestamp(at, 0).unwrap(),
                        }),
                    },
                }],
            };
            prop_assert_eq!(doc.view_of_heads(record), doc.view_by_heads(record));
        }
    }
}
