//! Reading [`FamilyFields`]: every known field by name, with the defaults
//! the type's `#[serde(default)]` attributes give, and every other key
//! into [`FamilyFields::extra`] (a field added by a later release, kept as
//! it came). serde's `flatten` would do the same but buffers the whole
//! object first, which doubled the time to decode a creation.
//!
//! The keys of a [`super::Family`] itself (`id`, `recorded_by`,
//! `recorded_at`), which an exported line carries beside the fields, are
//! skipped: they are never a field.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, de::DeserializeOwned};

use super::{DocType, ExtraFields, FamilyFields};

impl<'de> Deserialize<'de> for FamilyFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

/// A key of the object: a known field's name (borrowed from the
/// declaration, so reading it allocates nothing), or another.
enum Key {
    Known(&'static str),
    Own,
    Other(String),
}

const KNOWN: [&str; 15] = [
    "crossing",
    "crossed_on",
    "return_type",
    "departure_province",
    "destination_province",
    "members",
    "head_name",
    "head_sex",
    "doc_type",
    "doc_number",
    "consent",
    "vulnerabilities",
    "documentation",
    "protection_referral",
    "notes",
];

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match KNOWN.iter().find(|k| **k == v) {
                    Some(k) => Key::Known(k),
                    None if matches!(v, "id" | "recorded_by" | "recorded_at") => Key::Own,
                    None => Key::Other(v.to_string()),
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Sets a field once; a second occurrence is an error, as with the derive.
fn once<'de, A: MapAccess<'de>, T: DeserializeOwned>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

fn required<T, E: de::Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(name))
}

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = FamilyFields;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the fields of a family record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FamilyFields, A::Error> {
        let mut crossing = None;
        let mut crossed_on = None;
        let mut return_type = None;
        let mut departure_province = None;
        let mut destination_province = None;
        let mut members = None;
        let mut head_name = None;
        let mut head_sex = None;
        let mut doc_type = None;
        let mut doc_number = None;
        let mut consent = None;
        let mut vulnerabilities: Option<BTreeSet<_>> = None;
        let mut documentation: Option<BTreeSet<_>> = None;
        let mut protection_referral = None;
        let mut notes = None;
        let mut extra = ExtraFields::new();
        while let Some(key) = map.next_key::<Key>()? {
            let m = &mut map;
            let name = match key {
                Key::Known(name) => name,
                Key::Own => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Key::Other(other) => {
                    let value = map.next_value()?;
                    if extra.contains_key(&other) {
                        return Err(de::Error::custom(format_args!("duplicate field `{other}`")));
                    }
                    extra.insert(other, value);
                    continue;
                }
            };
            match name {
                "crossing" => once(&mut crossing, m, "crossing")?,
                "crossed_on" => once(&mut crossed_on, m, "crossed_on")?,
                "return_type" => once(&mut return_type, m, "return_type")?,
                "departure_province" => once(&mut departure_province, m, "departure_province")?,
                "destination_province" => {
                    once(&mut destination_province, m, "destination_province")?
                }
                "members" => once(&mut members, m, "members")?,
                "head_name" => once(&mut head_name, m, "head_name")?,
                "head_sex" => once(&mut head_sex, m, "head_sex")?,
                "doc_type" => once(&mut doc_type, m, "doc_type")?,
                "doc_number" => once(&mut doc_number, m, "doc_number")?,
                "consent" => once(&mut consent, m, "consent")?,
                "vulnerabilities" => once(&mut vulnerabilities, m, "vulnerabilities")?,
                "documentation" => once(&mut documentation, m, "documentation")?,
                "protection_referral" => once(&mut protection_referral, m, "protection_referral")?,
                "notes" => once(&mut notes, m, "notes")?,
                _ => unreachable!("every name of KNOWN has its arm"),
            }
        }
        Ok(FamilyFields {
            crossing: required(crossing, "crossing")?,
            crossed_on: required(crossed_on, "crossed_on")?,
            return_type: required(return_type, "return_type")?,
            departure_province: required(departure_province, "departure_province")?,
            destination_province: required(destination_province, "destination_province")?,
            members: required(members, "members")?,
            head_name: head_name.flatten(),
            head_sex: head_sex.flatten(),
            doc_type: doc_type.unwrap_or(DocType::None),
            doc_number: doc_number.flatten(),
            consent: consent.unwrap_or_default(),
            vulnerabilities: vulnerabilities.unwrap_or_default(),
            documentation: documentation.unwrap_or_default(),
            protection_referral: protection_referral.flatten(),
            notes: notes.flatten(),
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::family::{Family, Members, ReturnType};

    fn known() -> serde_json::Value {
        json!({
            "crossing": "torkham",
            "crossed_on": "2025-10-01",
            "return_type": "deported",
            "departure_province": "PK-KP",
            "destination_province": "AF-NAN",
            "members": {"males": [1, 0, 0, 1, 0], "females": [0, 0, 0, 1, 0]},
        })
    }

    #[test]
    fn the_defaults_are_the_attributes_and_unknown_keys_are_kept_as_they_came() {
        let fields: FamilyFields = serde_json::from_value(known()).unwrap();
        assert_eq!(fields.doc_type, DocType::None);
        assert_eq!(fields.head_name, None);
        assert!(!fields.consent && fields.extra.is_empty());
        assert_eq!(fields.return_type, ReturnType::Deported);
        assert_eq!(fields.members.individuals(), 3);
        // Written back exactly as before: nothing added for the empty map.
        assert_eq!(serde_json::to_value(&fields).unwrap()["notes"], json!(null));
        assert!(serde_json::to_value(&fields).unwrap().get("id").is_none());

        let mut newer = known();
        newer["phone_contact"] = json!({"kind": "mobile", "digits": "0700"});
        newer["head_name"] = json!(null);
        let fields: FamilyFields = serde_json::to_string(&newer)
            .and_then(|s| serde_json::from_str(&s))
            .unwrap();
        assert_eq!(
            fields.extra.get("phone_contact"),
            Some(&json!({"kind": "mobile", "digits": "0700"}))
        );
        let again = serde_json::to_value(&fields).unwrap();
        assert_eq!(again["phone_contact"], newer["phone_contact"]);
        let back: FamilyFields = serde_json::from_value(again).unwrap();
        assert_eq!(back, fields);
    }

    #[test]
    fn a_missing_wrong_or_repeated_field_is_named() {
        let mut missing = known();
        missing.as_object_mut().unwrap().remove("members");
        let e = serde_json::from_value::<FamilyFields>(missing).unwrap_err();
        assert!(e.to_string().contains("members"), "{e}");
        let mut wrong = known();
        wrong["consent"] = json!("yes please");
        assert!(serde_json::from_value::<FamilyFields>(wrong).is_err());
        let repeated = r#"{"crossing":"a","crossing":"b"}"#;
        let e = serde_json::from_str::<FamilyFields>(repeated).unwrap_err();
        assert!(e.to_string().contains("duplicate field `crossing`"), "{e}");
    }

    #[test]
    fn a_familys_own_keys_are_never_taken_for_unknown_fields() {
        let mut line = known();
        line["id"] = json!("0192f5a4-0000-7000-8000-000000000002");
        line["recorded_by"] = json!("0192f5a4-0000-7000-8000-000000000003");
        line["recorded_at"] = json!("2026-01-01T00:00:00Z");
        line["later_field"] = json!(7);
        let fields: FamilyFields = serde_json::from_value(line.clone()).unwrap();
        assert_eq!(fields.extra.keys().collect::<Vec<_>>(), ["later_field"]);
        let family: Family = serde_json::from_value(line.clone()).unwrap();
        assert_eq!(family.fields, fields);
        assert_eq!(serde_json::to_value(&family).unwrap(), {
            let mut full = serde_json::to_value(&fields).unwrap();
            for k in ["id", "recorded_by", "recorded_at"] {
                full[k] = line[k].clone();
            }
            full
        });
        assert_eq!(
            family.fields.members,
            Members {
                males: [1, 0, 0, 1, 0],
                females: [0, 0, 0, 1, 0]
            }
        );
    }
}
