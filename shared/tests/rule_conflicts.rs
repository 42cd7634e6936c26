//! Records that concurrent edits leave breaking a rule across fields
//! (`returnee_shared::merge::rules`): a `rule` conflict naming the rule,
//! personal fields hidden while consent is withdrawn, and the supervisor's
//! decisions through `plan_resolve`.

use chrono::{NaiveDate, TimeZone, Utc};
use returnee_shared::merge::resolve::plan_resolve;
use returnee_shared::merge::rules::RULE_CONFLICT_FIELD;
use returnee_shared::merge::{Change, Conflict, Op, RecordDoc, RecordView};
use returnee_shared::{
    DeviceId, DocType, FamilyFields, FieldValue, Members, OpId, RecordId, ReturnType, Sex,
    Vulnerability,
};
use uuid::Uuid;

const R: RecordId = RecordId(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0042));
const NAME: &str = "Bibi Gul Khan";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

fn fields() -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
        return_type: ReturnType::Spontaneous,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [0, 1, 0, 1, 0],
            females: [0, 0, 0, 1, 0],
        },
        head_name: None,
        head_sex: None,
        doc_type: DocType::None,
        doc_number: None,
        consent: true,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    }
}

fn op(n: u128, device: u128, base: Vec<OpId>, change: Change) -> Op {
    Op {
        id: OpId(Uuid::from_u128(n)),
        record: R,
        device: DeviceId(Uuid::from_u128(device)),
        at: Utc.with_ymd_and_hms(2026, 6, 2, 9, 0, 0).unwrap(),
        base,
        resolution: false,
        change,
    }
}

fn edit(n: u128, device: u128, values: Vec<FieldValue>) -> Op {
    op(
        n,
        device,
        vec![OpId(Uuid::from_u128(1))],
        Change::edit(values),
    )
}

fn doc(ops: Vec<Op>) -> RecordDoc {
    let mut d = RecordDoc::default();
    let create = op(
        1,
        0xa,
        vec![],
        Change::Create {
            fields: fields(),
            origin: None,
        },
    );
    for o in std::iter::once(create).chain(ops) {
        d.insert(o);
    }
    d
}

fn rule_conflict<'a>(v: &'a RecordView, rule: &str) -> &'a Conflict {
    v.conflicts
        .iter()
        .find(|c| c.field == RULE_CONFLICT_FIELD && c.rule.as_deref() == Some(rule))
        .unwrap_or_else(|| panic!("no {rule} rule conflict in {:#?}", v.conflicts))
}

/// Decides `c` with `value`; the record's operations afterwards.
fn decide(d: &RecordDoc, c: &Conflict, value: &str) -> Result<RecordDoc, String> {
    let mut n = 0x900;
    let ops = plan_resolve(c, d, value, None, today(), |record, base, change| {
        n += 1;
        Op {
            record,
            ..op(n, 0x5, base, change)
        }
    })
    .map_err(|e| e.to_string())?;
    let mut d = d.clone();
    for o in ops {
        d.insert(o);
    }
    Ok(d)
}

/// Consent withdrawn on one laptop (the name cleared with it) while
/// another adds the head's name.
fn withdrawn_beside_a_name() -> RecordDoc {
    doc(vec![
        edit(
            0x10,
            0xa,
            vec![FieldValue::Consent(false), FieldValue::HeadName(None)],
        ),
        edit(0x11, 0xb, vec![FieldValue::HeadName(Some(NAME.into()))]),
    ])
}

#[test]
fn withdrawn_consent_hides_a_name_added_concurrently_and_the_family_still_counts() {
    let d = withdrawn_beside_a_name();
    let v = d.view(R);
    let family = v.active().expect("the family still counts");
    assert_eq!(family.fields.head_name, None);
    assert!(!family.fields.consent);
    let c = rule_conflict(&v, "consent");
    assert!(
        c.values
            .iter()
            .any(|x| x.op == OpId(Uuid::from_u128(0x11)) && !x.shown),
        "the conflict names the operation that holds the name: {c:#?}"
    );
    // No conflict of the view (the head_name one included) shows the name.
    let all = serde_json::to_string(&v.conflicts).unwrap();
    assert!(!all.contains("Bibi"), "{all}");
}

#[test]
fn a_supervisor_decides_withdrawal_or_consent() {
    let d = withdrawn_beside_a_name();
    let c = rule_conflict(&d.view(R), "consent").clone();
    let withdrawn = decide(&d, &c, "withdrawn").unwrap();
    let v = withdrawn.view(R);
    assert_eq!(v.conflicts, vec![], "decided");
    assert_eq!(v.family.unwrap().fields.head_name, None);

    let consented = decide(&d, &c, "consent=yes").unwrap();
    let v = consented.view(R);
    assert!(v.conflicts.iter().all(|c| c.field != RULE_CONFLICT_FIELD));
    assert!(v.family.unwrap().fields.consent);

    let err = decide(&d, &c, "notes=hello").unwrap_err();
    assert!(err.contains("withdrawn"), "{err}");
}

#[test]
fn female_headed_beside_a_male_head_is_a_rule_conflict_shown_as_it_is() {
    let d = doc(vec![
        edit(
            0x10,
            0xa,
            vec![FieldValue::Vulnerabilities(
                [Vulnerability::FemaleHeaded].into_iter().collect(),
            )],
        ),
        edit(0x11, 0xb, vec![FieldValue::HeadSex(Some(Sex::Male))]),
    ]);
    let v = d.view(R);
    let c = rule_conflict(&v, "female-headed");
    assert!(
        c.values.iter().all(|x| x.shown),
        "nothing is hidden: {c:#?}"
    );
    assert!(c.values.iter().any(|x| x.value == "head_sex: m"), "{c:#?}");
    let c = c.clone();
    assert_eq!(v.family.unwrap().fields.head_sex, Some(Sex::Male));
    let err = decide(&d, &c, "head_sex=m").unwrap_err();
    assert!(err.contains("still break"), "{err}");
    let mended = decide(&d, &c, "head_sex=f").unwrap();
    assert_eq!(mended.view(R).conflicts, vec![]);
}

#[test]
fn a_valid_record_has_no_rule_conflict() {
    let d = doc(vec![edit(
        0x10,
        0xa,
        vec![FieldValue::HeadName(Some(NAME.into()))],
    )]);
    let v = d.view(R);
    assert_eq!(v.conflicts, vec![]);
    assert_eq!(v.family.unwrap().fields.head_name.as_deref(), Some(NAME));
}
