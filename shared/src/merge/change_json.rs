//! Reading a [`Change`] from its tagged form (`{"kind": …, …fields}`).
//!
//! serde's derive for an internally tagged enum first buffers the whole
//! object (every key and value of a family's fields) to find the tag, then
//! reads the variant from the buffer: on a server taking a push of 5,000
//! new families that was most of the time spent decoding operations. This
//! crate writes `kind` first, so the reader here takes it from the first
//! key and reads the variant's fields straight from the input. When `kind`
//! comes later (JSON from elsewhere) the object is read into a JSON value
//! first, as the derive would have: the same input is accepted either way,
//! with the same errors for a missing or unknown `kind`.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{Change, OpaqueChange, Origin};
use crate::family::{ExtraFields, FamilyFields, RecordId};
use crate::validate::{FieldName, FieldValue};

/// The variants, as their `kind` names them.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Create,
    Edit,
    Delete,
    Restore,
    Merge,
    MergedValues,
    Dismiss,
    Erase,
}

#[derive(Deserialize)]
struct CreateFields {
    fields: FamilyFields,
    #[serde(default)]
    origin: Option<Origin>,
}

#[derive(Deserialize)]
struct EditFields {
    values: Vec<EditValue>,
    /// Where a store keeps the unknown fields of an edit it read.
    #[serde(default)]
    unknown: ExtraFields,
}

/// One `{"field", "value"}` of an edit: of a field this release knows, or
/// of one a later release added (kept as it came).
enum EditValue {
    Known(FieldValue),
    Unknown(String, serde_json::Value),
}

impl<'de> Deserialize<'de> for EditValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            field: String,
            #[serde(default)]
            value: serde_json::Value,
        }
        let raw = Raw::deserialize(d)?;
        if FieldName::ALL.iter().any(|f| f.as_str() == raw.field) {
            let tagged = serde_json::json!({"field": raw.field, "value": raw.value});
            FieldValue::deserialize(tagged)
                .map(EditValue::Known)
                .map_err(de::Error::custom)
        } else {
            Ok(EditValue::Unknown(raw.field, raw.value))
        }
    }
}

/// The known values, and the unknown ones by field.
fn split(values: Vec<EditValue>, mut unknown: ExtraFields) -> (Vec<FieldValue>, ExtraFields) {
    let mut known = Vec::with_capacity(values.len());
    for v in values {
        match v {
            EditValue::Known(v) => known.push(v),
            EditValue::Unknown(field, value) => {
                unknown.insert(field, value);
            }
        }
    }
    (known, unknown)
}

#[derive(Deserialize)]
struct NoFields {}

#[derive(Deserialize)]
struct MergeFields {
    into: RecordId,
}

#[derive(Deserialize)]
struct MergedValuesFields {
    from: RecordId,
    values: Vec<EditValue>,
}

#[derive(Deserialize)]
struct DismissFields {
    other: RecordId,
}

#[derive(Deserialize)]
struct EraseFields {
    reason: String,
}

/// Carried values of fields this release does not know, kept whole.
fn opaque_merged_values(from: RecordId, values: Vec<FieldValue>, unknown: ExtraFields) -> Change {
    let mut entries: Vec<serde_json::Value> = values
        .iter()
        .map(|v| serde_json::to_value(v).expect("field values serialize"))
        .collect();
    entries.extend(
        unknown
            .into_iter()
            .map(|(field, value)| serde_json::json!({"field": field, "value": value})),
    );
    let mut body = serde_json::Map::new();
    body.insert(
        "from".into(),
        serde_json::to_value(from).expect("ids serialize"),
    );
    body.insert("values".into(), entries.into());
    Change::Other(OpaqueChange {
        kind: "merged_values".into(),
        body,
    })
}

impl Kind {
    /// The variant a `kind` names; `None` for a kind of a later release.
    fn named(name: &str) -> Option<Kind> {
        Kind::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name)).ok()
    }

    /// The variant `self` names, its fields read from `d`.
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Change, D::Error> {
        Ok(match self {
            Kind::Create => {
                let f = CreateFields::deserialize(d)?;
                Change::Create {
                    fields: f.fields,
                    origin: f.origin,
                }
            }
            Kind::Edit => {
                let f = EditFields::deserialize(d)?;
                let (values, unknown) = split(f.values, f.unknown);
                Change::Edit { values, unknown }
            }
            Kind::Delete => {
                NoFields::deserialize(d)?;
                Change::Delete
            }
            Kind::Restore => {
                NoFields::deserialize(d)?;
                Change::Restore
            }
            Kind::Merge => Change::Merge {
                into: MergeFields::deserialize(d)?.into,
            },
            Kind::MergedValues => {
                let f = MergedValuesFields::deserialize(d)?;
                let (values, unknown) = split(f.values, ExtraFields::new());
                if !unknown.is_empty() {
                    // Carried values compete and are never shown: an older
                    // release keeps the whole decision as it came.
                    return Ok(opaque_merged_values(f.from, values, unknown));
                }
                Change::MergedValues {
                    from: f.from,
                    values,
                }
            }
            Kind::Dismiss => Change::Dismiss {
                other: DismissFields::deserialize(d)?.other,
            },
            Kind::Erase => Change::Erase {
                reason: EraseFields::deserialize(d)?.reason,
            },
        })
    }
}

/// A key of the object: `kind`, or another (kept for the slow path).
enum Key {
    Kind,
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(if v == "kind" {
                    Key::Kind
                } else {
                    Key::Other(v.to_owned())
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

struct ChangeVisitor;

impl<'de> Visitor<'de> for ChangeVisitor {
    type Value = Change;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change: an object with its `kind`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Change, A::Error> {
        let first = match map.next_key::<Key>()? {
            None => return Err(de::Error::missing_field("kind")),
            Some(Key::Kind) => {
                let name: String = map.next_value()?;
                let Some(kind) = Kind::named(&name) else {
                    let mut body = serde_json::Map::new();
                    while let Some(key) = map.next_key::<String>()? {
                        body.insert(key, map.next_value()?);
                    }
                    return Ok(Change::Other(OpaqueChange { kind: name, body }));
                };
                // The rest of the object is the variant's fields.
                return kind.read(MapAccessDeserializer::new(map));
            }
            Some(Key::Other(name)) => name,
        };
        // `kind` comes later: read the whole object, then the variant.
        let mut rest = serde_json::Map::new();
        rest.insert(first, map.next_value()?);
        while let Some(key) = map.next_key::<Key>()? {
            let name = match key {
                Key::Kind => "kind".to_owned(),
                Key::Other(name) => name,
            };
            rest.insert(name, map.next_value()?);
        }
        let kind = rest
            .remove("kind")
            .ok_or_else(|| de::Error::missing_field("kind"))?;
        let kind = match kind {
            serde_json::Value::String(name) => match Kind::named(&name) {
                Some(kind) => kind,
                None => {
                    return Ok(Change::Other(OpaqueChange {
                        kind: name,
                        body: rest,
                    }));
                }
            },
            other => Kind::deserialize(other).map_err(de::Error::custom)?,
        };
        let fields: serde_json::Value = rest.into();
        kind.read(fields.into_deserializer())
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ChangeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::FieldValue;
    use proptest::prelude::*;

    /// What serde's derive reads: the reference the reader here must match.
    #[allow(clippy::large_enum_variant)] // as `Change`
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Derived {
        Create {
            fields: FamilyFields,
            #[serde(default)]
            origin: Option<Origin>,
        },
        Edit {
            values: Vec<FieldValue>,
        },
        Delete,
        Restore,
        Merge {
            into: RecordId,
        },
        MergedValues {
            from: RecordId,
            values: Vec<FieldValue>,
        },
        Dismiss {
            other: RecordId,
        },
        Erase {
            reason: String,
        },
    }

    fn same(derived: Derived, change: &Change) -> bool {
        let back = serde_json::to_value(change).unwrap();
        let derived_back = match derived {
            Derived::Create { fields, origin } => Change::Create { fields, origin },
            Derived::Edit { values } => Change::edit(values),
            Derived::Delete => Change::Delete,
            Derived::Restore => Change::Restore,
            Derived::Merge { into } => Change::Merge { into },
            Derived::MergedValues { from, values } => Change::MergedValues { from, values },
            Derived::Dismiss { other } => Change::Dismiss { other },
            Derived::Erase { reason } => Change::Erase { reason },
        };
        serde_json::to_value(&derived_back).unwrap() == back
    }

    fn id(n: u128) -> RecordId {
        RecordId(uuid::Uuid::from_u128(n))
    }

    fn samples() -> Vec<Change> {
        let fields = FamilyFields {
            crossing: "torkham".into(),
            crossed_on: "2026-09-17".parse().unwrap(),
            return_type: crate::family::ReturnType::Spontaneous,
            departure_province: "PK-KP".into(),
            destination_province: "AF-NAN".into(),
            members: crate::family::Members {
                males: [1, 2, 0, 1, 0],
                females: [0, 1, 1, 1, 0],
            },
            head_name: Some("Name \u{e9}".into()),
            head_sex: None,
            doc_type: crate::family::DocType::None,
            doc_number: None,
            consent: true,
            vulnerabilities: Default::default(),
            documentation: Default::default(),
            protection_referral: None,
            notes: Some("note".into()),
            extra: Default::default(),
        };
        vec![
            Change::Create {
                fields: fields.clone(),
                origin: None,
            },
            Change::Create {
                fields,
                origin: Some(Origin {
                    recorded_by: crate::family::DeviceId(uuid::Uuid::from_u128(9)),
                    recorded_at: "2026-09-17T08:00:00Z".parse().unwrap(),
                }),
            },
            Change::edit(vec![FieldValue::Notes(Some("a \"quoted\" note".into()))]),
            Change::Delete,
            Change::Restore,
            Change::Merge { into: id(3) },
            Change::MergedValues {
                from: id(4),
                values: vec![FieldValue::Crossing("chaman".into())],
            },
            Change::Dismiss { other: id(5) },
            Change::Erase {
                reason: "asked by the family".into(),
            },
        ]
    }

    #[test]
    fn every_change_reads_back_as_written() {
        for change in samples() {
            let json = serde_json::to_string(&change).unwrap();
            assert!(json.starts_with(r#"{"kind":"#), "{json}");
            let back: Change = serde_json::from_str(&json).unwrap();
            assert_eq!(back, change);
            let derived: Derived = serde_json::from_str(&json).unwrap();
            assert!(same(derived, &change));
        }
    }

    proptest! {
        /// Whatever the order of the keys (and unknown keys beside them),
        /// the reader takes what serde's derive takes, and refuses what it
        /// refuses.
        #[test]
        fn any_key_order_reads_as_the_derive_reads_it(
            which in 0usize..8,
            rotate in 0usize..4,
            extra in proptest::option::of("[a-z]{1,6}"),
            drop_kind in any::<bool>(),
        ) {
            let change = &samples()[which];
            let serde_json::Value::Object(map) = serde_json::to_value(change).unwrap() else {
                panic!("a change is an object");
            };
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            if drop_kind {
                entries.retain(|(k, _)| k != "kind");
            }
            if let Some(extra) = extra {
                entries.push((extra, serde_json::json!([1, {"x": null}])));
            }
            if !entries.is_empty() {
                let n = rotate % entries.len();
                entries.rotate_left(n);
            }
            // Written by hand, so the order above is the order on the wire.
            let json = format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let ours = serde_json::from_str::<Change>(&json);
            let theirs = serde_json::from_str::<Derived>(&json);
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => prop_assert!(same(theirs, &ours), "{json}"),
                (Err(_), Err(_)) => {}
                (ours, theirs) => prop_assert!(false, "{json}: ours {ours:?}, derive {theirs:?}"),
            }
        }
    }

    #[test]
    fn a_missing_kind_is_named() {
        let missing = serde_json::from_str::<Change>(r#"{"values":[]}"#).unwrap_err();
        assert!(
            missing.to_string().contains("missing field `kind`"),
            "{missing}"
        );
        let empty = serde_json::from_str::<Change>("{}").unwrap_err();
        assert!(
            empty.to_string().contains("missing field `kind`"),
            "{empty}"
        );
        let number = serde_json::from_str::<Change>(r#"{"kind":7}"#).unwrap_err();
        assert!(number.to_string().contains("invalid type"), "{number}");
        assert!(serde_json::from_str::<Change>("[]").is_err());
    }

    /// A kind of a later release is kept whole, whatever the order of its
    /// keys, and written back with `kind` first and the same keys.
    #[test]
    fn a_kind_of_a_later_release_is_kept_as_it_came() {
        for json in [
            r#"{"kind":"verify","by":"phone","checks":[1,{"x":null}]}"#,
            r#"{"by":"phone","checks":[1,{"x":null}],"kind":"verify"}"#,
        ] {
            let change: Change = serde_json::from_str(json).unwrap();
            let Change::Other(o) = &change else {
                panic!("{change:?}")
            };
            assert_eq!(o.kind, "verify");
            let back = serde_json::to_string(&change).unwrap();
            assert!(back.starts_with(r#"{"kind":"verify""#), "{back}");
            let again: serde_json::Value = serde_json::from_str(&back).unwrap();
            let first: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(again, first);
            assert_eq!(serde_json::from_str::<Change>(&back).unwrap(), change);
        }
    }

    /// An edit of a field of a later release: the known values apply, the
    /// unknown ones are kept and read back from where a store writes them.
    #[test]
    fn an_edit_keeps_the_values_of_fields_it_does_not_know() {
        let json = r#"{"kind":"edit","values":[{"field":"phone_contact","value":{"d":"0700"}},{"field":"notes","value":"n"}]}"#;
        let change: Change = serde_json::from_str(json).unwrap();
        let Change::Edit { values, unknown } = &change else {
            panic!("{change:?}")
        };
        assert_eq!(values, &vec![FieldValue::Notes(Some("n".into()))]);
        assert_eq!(unknown["phone_contact"], serde_json::json!({"d": "0700"}));
        let stored = serde_json::to_string(&change).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&stored).unwrap(), change);
        // A known field's bad value is still an error.
        let bad = r#"{"kind":"edit","values":[{"field":"consent","value":"maybe"}]}"#;
        assert!(serde_json::from_str::<Change>(bad).is_err());
    }

    /// Carried values of a field this release does not know: the decision
    /// is kept whole (it would only compete, never be shown).
    #[test]
    fn carried_values_of_an_unknown_field_keep_the_decision_whole() {
        let json = r#"{"kind":"merged_values","from":"00000000-0000-0000-0000-000000000004","values":[{"field":"phone_contact","value":1}]}"#;
        let change: Change = serde_json::from_str(json).unwrap();
        let Change::Other(o) = &change else {
            panic!("{change:?}")
        };
        assert_eq!(o.kind, "merged_values");
        let back: serde_json::Value = serde_json::to_value(&change).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
    }
}
