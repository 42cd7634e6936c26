//! The validation rules of `returnee_shared::validate`, one test per rule,
//! each checking both that the rule holds and what the message says.
//!
//! Every entry path (flags, form, CSV, JSONL, edits) goes through
//! `FamilyDraft::build` or `FamilyFields::check`, so these are the rules a
//! family obeys everywhere.

use chrono::NaiveDate;
use returnee_shared::validate::{MAX_DOC_NUMBER, MAX_NAME, MAX_NOTES};
use returnee_shared::{
    DocType, Documentation, FamilyDraft, FamilyFields, FieldName, FieldValue, Members, Problem,
    Referral, ReturnType, Sex, ValidationError, Vulnerability,
};

/// The device's date in these tests; the rules never read the clock.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

/// A valid family with only the required fields.
fn draft() -> FamilyDraft {
    FamilyDraft {
        crossing: Some("torkham".into()),
        crossed_on: Some("2025-11-02".into()),
        return_type: Some("deported".into()),
        departure_province: Some("PK-KP".into()),
        destination_province: Some("AF-NAN".into()),
        males: Some("1,2,0,1,0".into()),
        females: Some("0,1,1,1,0".into()),
        ..FamilyDraft::default()
    }
}

fn build(d: &FamilyDraft) -> FamilyFields {
    match d.build(today()) {
        Ok(f) => f,
        Err(e) => panic!("expected {d:?} to be valid, got: {e}"),
    }
}

fn problems(d: &FamilyDraft) -> Vec<Problem> {
    match d.build(today()) {
        Ok(f) => panic!("expected {d:?} to be refused, it built {f:?}"),
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error with no problems");
            e.problems
        }
    }
}

/// The single problem of a draft that breaks exactly one rule.
fn only_problem(d: &FamilyDraft) -> Problem {
    let p = problems(d);
    assert_eq!(p.len(), 1, "expected exactly one problem, got {p:#?}");
    p.into_iter().next().unwrap()
}

fn assert_problem(p: &Problem, field: &str, fragments: &[&str]) {
    assert_eq!(p.field, field, "wrong field in {p:?}");
    for f in fragments {
        assert!(
            p.message.contains(f),
            "message of {field} should contain {f:?}: {:?}",
            p.message
        );
    }
}

fn with(f: impl FnOnce(&mut FamilyDraft)) -> FamilyDraft {
    let mut d = draft();
    f(&mut d);
    d
}

// ---------------------------------------------------------------- baseline

#[test]
fn the_baseline_draft_is_valid_and_parsed() {
    let f = build(&draft());
    assert_eq!(f.crossing, "torkham");
    assert_eq!(f.crossed_on, NaiveDate::from_ymd_opt(2025, 11, 2).unwrap());
    assert_eq!(f.return_type, ReturnType::Deported);
    assert_eq!(f.departure_province, "PK-KP");
    assert_eq!(f.destination_province, "AF-NAN");
    assert_eq!(f.members.males, [1, 2, 0, 1, 0]);
    assert_eq!(f.members.females, [0, 1, 1, 1, 0]);
    assert_eq!(f.head_name, None);
    assert_eq!(f.head_sex, None);
    assert_eq!(f.doc_type, DocType::None);
    assert_eq!(f.doc_number, None);
    assert!(!f.consent);
    assert!(f.vulnerabilities.is_empty());
    assert!(f.documentation.is_empty());
    assert_eq!(f.protection_referral, None);
    assert_eq!(f.notes, None);
    assert!(f.check(today()).is_ok());
}

// ---------------------------------------------------------------- required

#[test]
fn each_required_field_is_reported_with_its_flag() {
    type Clear = fn(&mut FamilyDraft);
    let cases: [(&str, &str, Clear); 7] = [
        ("crossing", "--crossing", |d| d.crossing = None),
        ("crossed_on", "--date", |d| d.crossed_on = None),
        ("return_type", "--return-type", |d| d.return_type = None),
        ("departure_province", "--departure", |d| {
            d.departure_province = None
        }),
        ("destination_province", "--destination", |d| {
            d.destination_province = None
        }),
        ("males", "--males", |d| d.males = None),
        ("females", "--females", |d| d.females = None),
    ];
    for (field, flag, clear) in cases {
        let p = only_problem(&with(clear));
        assert_problem(&p, field, &["is required", flag]);
    }
}

#[test]
fn blank_required_fields_count_as_missing() {
    let p = only_problem(&with(|d| d.crossing = Some("   ".into())));
    assert_problem(&p, "crossing", &["is required"]);
}

#[test]
fn an_empty_draft_reports_all_seven_required_fields() {
    let p = problems(&FamilyDraft::default());
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "crossing",
            "crossed_on",
            "return_type",
            "departure_province",
            "destination_province",
            "males",
            "females"
        ]
    );
    assert!(p.iter().all(|p| p.message.contains("is required")));
}

// ---------------------------------------------------------------- crossing

#[test]
fn crossings_are_accepted_by_code_or_name_in_any_case() {
    let cases = [
        ("torkham", "torkham"),
        ("TORKHAM", "torkham"),
        ("Torkham", "torkham"),
        ("chaman", "chaman"),
        ("Chaman / Spin Boldak", "chaman"),
        ("spin boldak", "chaman"),
        ("SPIN BOLDAK", "chaman"),
        ("angoor-adda", "angoor-adda"),
        ("Angoor Adda", "angoor-adda"),
        ("ANGOOR_ADDA", "angoor-adda"),
        ("Ghulam Khan", "ghulam-khan"),
        ("kharlachi", "kharlachi"),
        ("Badini", "badini"),
        ("BAHRAMCHA", "bahramcha"),
        ("  torkham  ", "torkham"),
    ];
    for (typed, code) in cases {
        let f = build(&with(|d| d.crossing = Some(typed.into())));
        assert_eq!(f.crossing, code, "crossing typed as {typed:?}");
    }
}

#[test]
fn an_unknown_crossing_is_refused_listing_the_codes() {
    let p = only_problem(&with(|d| d.crossing = Some("Wagah".into())));
    assert_problem(
        &p,
        "crossing",
        &[
            "'Wagah' is not a known crossing",
            "torkham",
            "chaman",
            "angoor-adda",
            "ghulam-khan",
            "kharlachi",
            "badini",
            "bahramcha",
        ],
    );
}

#[test]
fn check_refuses_a_crossing_that_is_not_the_canonical_code() {
    // JSONL import checks stored fields directly: only canonical codes pass.
    let mut f = build(&draft());
    f.crossing = "Torkham".into();
    let e = f.check(today()).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert_problem(&e.problems[0], "crossing", &["not a known crossing"]);
}

// ---------------------------------------------------------------- dates

#[test]
fn a_date_not_written_yyyy_mm_dd_is_refused() {
    for typed in [
        "02/11/2025",
        "2025-13-01",
        "2025-02-30",
        "yesterday",
        "20251102",
    ] {
        let p = only_problem(&with(|d| d.crossed_on = Some(typed.into())));
        assert_problem(
            &p,
            "crossed_on",
            &[&format!("'{typed}' is not a date"), "YYYY-MM-DD"],
        );
    }
}

#[test]
fn a_date_after_today_is_refused_and_today_is_accepted() {
    let p = only_problem(&with(|d| d.crossed_on = Some("2026-06-16".into())));
    assert_problem(
        &p,
        "crossed_on",
        &[
            "2026-06-16 is in the future",
            "today is 2026-06-15",
            "clock",
        ],
    );
    let f = build(&with(|d| d.crossed_on = Some("2026-06-15".into())));
    assert_eq!(f.crossed_on, today());
}

#[test]
fn a_date_before_2000_is_refused_and_2000_01_01_is_accepted() {
    let p = only_problem(&with(|d| d.crossed_on = Some("1999-12-31".into())));
    assert_problem(
        &p,
        "crossed_on",
        &["1999-12-31 is before 2000-01-01", "check the year"],
    );
    let f = build(&with(|d| d.crossed_on = Some("2000-01-01".into())));
    assert_eq!(f.crossed_on, NaiveDate::from_ymd_opt(2000, 1, 1).unwrap());
}

// ---------------------------------------------------------------- return type

#[test]
fn return_types_are_accepted_in_any_case() {
    for (typed, t) in [
        ("spontaneous", ReturnType::Spontaneous),
        ("Deported", ReturnType::Deported),
        ("ASSISTED", ReturnType::Assisted),
    ] {
        assert_eq!(
            build(&with(|d| d.return_type = Some(typed.into()))).return_type,
            t
        );
    }
}

#[test]
fn an_unknown_return_type_is_refused_listing_the_allowed_ones() {
    let p = only_problem(&with(|d| d.return_type = Some("voluntary".into())));
    assert_problem(
        &p,
        "return_type",
        &[
            "'voluntary' is not a return type",
            "spontaneous, deported, assisted",
        ],
    );
}

// ---------------------------------------------------------------- departure

#[test]
fn departure_takes_a_pakistani_code_or_name_or_unknown() {
    let cases = [
        ("PK-KP", "PK-KP"),
        ("pk-kp", "PK-KP"),
        ("KP", "PK-KP"),
        ("Khyber Pakhtunkhwa", "PK-KP"),
        ("khyber pakhtunkhwa", "PK-KP"),
        ("Punjab", "PK-PB"),
        ("SINDH", "PK-SD"),
        ("Balochistan", "PK-BA"),
        ("Islamabad", "PK-IS"),
        ("unknown", "unknown"),
        ("Unknown", "unknown"),
    ];
    for (typed, code) in cases {
        let f = build(&with(|d| d.departure_province = Some(typed.into())));
        assert_eq!(f.departure_province, code, "departure typed as {typed:?}");
    }
}

#[test]
fn departure_refuses_an_afghan_province_or_an_unknown_name() {
    for typed in ["Kabul", "AF-KAB", "Lahore", "undecided"] {
        let p = only_problem(&with(|d| d.departure_province = Some(typed.into())));
        assert_problem(
            &p,
            "departure_province",
            &[
                &format!("'{typed}' is not a province of Pakistan"),
                "PK-KP",
                "'unknown'",
            ],
        );
    }
}

// ---------------------------------------------------------------- destination

#[test]
fn destination_takes_an_afghan_code_or_name_or_undecided() {
    let cases = [
        ("AF-NAN", "AF-NAN"),
        ("af-nan", "AF-NAN"),
        ("NAN", "AF-NAN"),
        ("Nangarhar", "AF-NAN"),
        ("kabul", "AF-KAB"),
        ("Sar-e Pul", "AF-SAR"),
        ("sare pul", "AF-SAR"),
        ("undecided", "undecided"),
        ("UNDECIDED", "undecided"),
    ];
    for (typed, code) in cases {
        let f = build(&with(|d| d.destination_province = Some(typed.into())));
        assert_eq!(
            f.destination_province, code,
            "destination typed as {typed:?}"
        );
    }
}

#[test]
fn destination_refuses_a_pakistani_province_or_an_unknown_name() {
    for typed in ["Punjab", "PK-PB", "Peshawar", "unknown"] {
        let p = only_problem(&with(|d| d.destination_province = Some(typed.into())));
        assert_problem(
            &p,
            "destination_province",
            &[
                &format!("'{typed}' is not a province of Afghanistan"),
                "AF-NAN",
                "'undecided'",
            ],
        );
    }
}

// ---------------------------------------------------------------- counts

#[test]
fn counts_are_five_numbers_per_sex() {
    let f = build(&with(|d| {
        d.males = Some(" 1, 2 ,0,1 ,0 ".into());
        d.females = Some("0,0,0,0,3".into());
    }));
    assert_eq!(f.members.males, [1, 2, 0, 1, 0]);
    assert_eq!(f.members.females, [0, 0, 0, 0, 3]);

    for bad in [
        "1,2,3,4",
        "1,2,3,4,5,6",
        "1,a,0,0,0",
        "-1,0,0,0,0",
        "1.5,0,0,0,0",
        "1;2;0;1;0",
        "",
    ] {
        if bad.is_empty() {
            continue; // blank is "required", tested above
        }
        for field in ["males", "females"] {
            let d = with(|d| {
                if field == "males" {
                    d.males = Some(bad.into());
                } else {
                    d.females = Some(bad.into());
                }
            });
            let p = only_problem(&d);
            assert_problem(
                &p,
                field,
                &[
                    &format!("'{bad}' is not five counts"),
                    "0-4, 5-11, 12-17, 18-59 and 60+",
                ],
            );
        }
    }
}

#[test]
fn household_size_must_be_from_1_to_60() {
    let p = only_problem(&with(|d| {
        d.males = Some("0,0,0,0,0".into());
        d.females = Some("0,0,0,0,0".into());
    }));
    assert_problem(&p, "members", &["household size is 0", "from 1 to 60"]);

    let p = only_problem(&with(|d| {
        d.males = Some("10,10,10,1,0".into());
        d.females = Some("10,10,10,0,0".into());
    }));
    assert_problem(&p, "members", &["household size is 61", "from 1 to 60"]);

    let f = build(&with(|d| {
        d.males = Some("10,10,10,0,0".into());
        d.females = Some("10,10,10,0,0".into());
    }));
    assert_eq!(f.members.individuals(), 60);
    let f = build(&with(|d| {
        d.males = Some("0,0,0,0,0".into());
        d.females = Some("0,0,0,0,1".into());
    }));
    assert_eq!(f.members.individuals(), 1);
}

// ---------------------------------------------------------------- head_sex

#[test]
fn head_sex_is_m_or_f() {
    for (typed, sex) in [
        ("m", Sex::Male),
        ("M", Sex::Male),
        ("male", Sex::Male),
        ("f", Sex::Female),
        ("Female", Sex::Female),
    ] {
        assert_eq!(
            build(&with(|d| d.head_sex = Some(typed.into()))).head_sex,
            Some(sex)
        );
    }
    let p = only_problem(&with(|d| d.head_sex = Some("x".into())));
    assert_problem(&p, "head_sex", &["'x' is not allowed", "use m or f"]);
}

// ---------------------------------------------------------------- doc_type

#[test]
fn doc_type_takes_the_closed_set() {
    for (typed, t) in [
        ("por-card", DocType::PorCard),
        ("POR card", DocType::PorCard),
        ("por_card", DocType::PorCard),
        ("acc", DocType::Acc),
        ("Tazkira", DocType::Tazkira),
        ("passport", DocType::Passport),
        ("none", DocType::None),
    ] {
        assert_eq!(
            build(&with(|d| d.doc_type = Some(typed.into()))).doc_type,
            t
        );
    }
    let p = only_problem(&with(|d| d.doc_type = Some("licence".into())));
    assert_problem(
        &p,
        "doc_type",
        &[
            "'licence' is not a document type",
            "por-card, acc, tazkira, passport, none",
        ],
    );
}

// ---------------------------------------------------------------- doc_number

fn consenting(f: impl FnOnce(&mut FamilyDraft)) -> FamilyDraft {
    with(|d| {
        d.consent = Some("yes".into());
        f(d);
    })
}

#[test]
fn a_document_number_needs_a_document_type() {
    let p = only_problem(&consenting(|d| d.doc_number = Some("AB1234".into())));
    assert_problem(
        &p,
        "doc_number",
        &[
            "needs a document type",
            "--doc-type",
            "por-card, acc, tazkira, passport",
        ],
    );
    let p = only_problem(&consenting(|d| {
        d.doc_type = Some("none".into());
        d.doc_number = Some("AB1234".into());
    }));
    assert_problem(&p, "doc_number", &["needs a document type"]);

    let f = build(&consenting(|d| {
        d.doc_type = Some("tazkira".into());
        d.doc_number = Some("AB1234".into());
    }));
    assert_eq!(f.doc_number.as_deref(), Some("AB1234"));
    assert_eq!(f.doc_type, DocType::Tazkira);
}

#[test]
fn a_document_number_has_only_allowed_characters_and_length() {
    let ok = "Ab-12/34 5";
    let f = build(&consenting(|d| {
        d.doc_type = Some("passport".into());
        d.doc_number = Some(ok.into());
    }));
    assert_eq!(f.doc_number.as_deref(), Some(ok));
    let longest = "9".repeat(MAX_DOC_NUMBER);
    build(&consenting(|d| {
        d.doc_type = Some("passport".into());
        d.doc_number = Some(longest.clone());
    }));

    let too_long = "9".repeat(MAX_DOC_NUMBER + 1);
    for bad in ["AB#1234", "AB_1234", "AB.1234", "ΑΒ1234", too_long.as_str()] {
        let p = only_problem(&consenting(|d| {
            d.doc_type = Some("passport".into());
            d.doc_number = Some(bad.into());
        }));
        assert_problem(
            &p,
            "doc_number",
            &["at most 40 letters, digits, spaces, '-' or '/'"],
        );
    }
}

// ---------------------------------------------------------------- consent

#[test]
fn no_name_without_consent() {
    let p = only_problem(&with(|d| d.head_name = Some("Gul Bibi".into())));
    assert_problem(
        &p,
        "head_name",
        &["cannot be stored without consent", "--consent"],
    );
    let p = only_problem(&with(|d| {
        d.head_name = Some("Gul Bibi".into());
        d.consent = Some("no".into());
    }));
    assert_problem(&p, "head_name", &["cannot be stored without consent"]);
    let f = build(&consenting(|d| d.head_name = Some("Gul Bibi".into())));
    assert_eq!(f.head_name.as_deref(), Some("Gul Bibi"));
    assert!(f.consent);
}

#[test]
fn no_document_number_without_consent() {
    let p = only_problem(&with(|d| {
        d.doc_type = Some("tazkira".into());
        d.doc_number = Some("AB1234".into());
    }));
    assert_problem(
        &p,
        "doc_number",
        &["cannot be stored without consent", "--consent"],
    );
    // A document type alone is not personal and needs no consent.
    let f = build(&with(|d| d.doc_type = Some("tazkira".into())));
    assert_eq!(f.doc_type, DocType::Tazkira);
}

#[test]
fn consent_is_yes_or_no() {
    for (typed, v) in [
        ("yes", true),
        ("Y", true),
        ("true", true),
        ("1", true),
        ("no", false),
        ("N", false),
        ("false", false),
        ("0", false),
    ] {
        assert_eq!(build(&with(|d| d.consent = Some(typed.into()))).consent, v);
    }
    let p = only_problem(&with(|d| d.consent = Some("maybe".into())));
    assert_problem(&p, "consent", &["'maybe' is not yes or no"]);
}

#[test]
fn head_name_length_and_control_characters() {
    let longest = "a".repeat(MAX_NAME);
    build(&consenting(|d| d.head_name = Some(longest.clone())));
    let p = only_problem(&consenting(|d| {
        d.head_name = Some("a".repeat(MAX_NAME + 1))
    }));
    assert_problem(&p, "head_name", &["longer than 100 characters"]);
    let p = only_problem(&consenting(|d| d.head_name = Some("Gul\tBibi".into())));
    assert_problem(&p, "head_name", &["control characters"]);
    // Non-Latin names are fine.
    let f = build(&consenting(|d| d.head_name = Some("ګل بي بي".into())));
    assert_eq!(f.head_name.as_deref(), Some("ګل بي بي"));
}

// ---------------------------------------------------------------- documentation

#[test]
fn undocumented_stands_alone() {
    let p = only_problem(&with(|d| {
        d.documentation = vec!["undocumented".into(), "tazkira".into()]
    }));
    assert_problem(&p, "documentation", &["undocumented stands alone"]);
    let p = only_problem(&with(|d| {
        d.documentation = vec!["undocumented;por-card".into()]
    }));
    assert_problem(&p, "documentation", &["undocumented stands alone"]);

    let f = build(&with(|d| d.documentation = vec!["undocumented".into()]));
    assert_eq!(
        f.documentation.into_iter().collect::<Vec<_>>(),
        [Documentation::Undocumented]
    );
    let f = build(&with(|d| {
        d.documentation = vec!["tazkira".into(), "por-card".into()]
    }));
    assert_eq!(f.documentation.len(), 2);
}

// ---------------------------------------------------------------- female-headed

#[test]
fn female_headed_does_not_fit_a_male_head() {
    let p = only_problem(&with(|d| {
        d.head_sex = Some("m".into());
        d.vulnerabilities = vec!["female-headed".into()];
    }));
    assert_problem(
        &p,
        "vulnerabilities",
        &["female-headed does not fit a male head of household"],
    );
    for sex in [Some("f"), None] {
        let f = build(&with(|d| {
            d.head_sex = sex.map(Into::into);
            d.vulnerabilities = vec!["female-headed".into()];
        }));
        assert!(f.vulnerabilities.contains(&Vulnerability::FemaleHeaded));
    }
}

// ---------------------------------------------------------------- notes

#[test]
fn notes_are_at_most_500_characters_not_bytes() {
    // 500 two-byte characters are 1000 bytes and still allowed.
    let longest = "ب".repeat(MAX_NOTES);
    let f = build(&with(|d| d.notes = Some(longest.clone())));
    assert_eq!(f.notes.as_deref(), Some(longest.as_str()));
    let p = only_problem(&with(|d| d.notes = Some("ب".repeat(MAX_NOTES + 1))));
    assert_problem(
        &p,
        "notes",
        &["is 501 characters long", "at most 500 are allowed"],
    );
}

// ---------------------------------------------------------------- value sets

#[test]
fn every_vulnerability_is_accepted_and_others_refused() {
    let all: Vec<String> = Vulnerability::ALL.iter().map(|v| v.to_string()).collect();
    let f = build(&with(|d| d.vulnerabilities = all.clone()));
    assert_eq!(f.vulnerabilities.len(), Vulnerability::ALL.len());
    // Several in one value, separated by ';' or ',', in any case.
    let f = build(&with(|d| {
        d.vulnerabilities = vec!["Disability; WIDOW,serious medical".into()]
    }));
    assert_eq!(
        f.vulnerabilities.into_iter().collect::<Vec<_>>(),
        [
            Vulnerability::Disability,
            Vulnerability::SeriousMedical,
            Vulnerability::Widow
        ]
    );
    let p = only_problem(&with(|d| {
        d.vulnerabilities = vec!["disability".into(), "hungry".into()]
    }));
    assert_problem(
        &p,
        "vulnerabilities",
        &[
            "'hungry' is not a vulnerability",
            "female-headed",
            "pregnant-or-lactating",
        ],
    );
}

#[test]
fn every_documentation_kind_is_accepted_and_others_refused() {
    for d in Documentation::ALL {
        let f = build(&with(|x| x.documentation = vec![d.to_string()]));
        assert_eq!(f.documentation.into_iter().collect::<Vec<_>>(), [*d]);
    }
    let p = only_problem(&with(|d| d.documentation = vec!["visa".into()]));
    assert_problem(
        &p,
        "documentation",
        &[
            "'visa' is not a kind of documentation",
            "por-card, acc, tazkira, passport-visa, undocumented",
        ],
    );
}

#[test]
fn every_referral_is_accepted_and_others_refused() {
    for r in Referral::ALL {
        let f = build(&with(|d| d.protection_referral = Some(r.to_string())));
        assert_eq!(f.protection_referral, Some(*r));
    }
    let p = only_problem(&with(|d| d.protection_referral = Some("legal".into())));
    assert_problem(
        &p,
        "protection_referral",
        &[
            "'legal' is not a referral reason",
            "resettlement-case-pending, medical, child-protection, gbv, other",
        ],
    );
}

// ---------------------------------------------------------------- all at once

#[test]
fn every_problem_is_reported_at_once_each_naming_its_field() {
    let d = FamilyDraft {
        crossing: Some("wagah".into()),
        crossed_on: Some("2030-01-01".into()),
        return_type: Some("voluntary".into()),
        departure_province: Some("Kabul".into()),
        destination_province: Some("Punjab".into()),
        males: Some("1,2,3".into()),
        females: Some("0,0,0,1,0".into()),
        head_name: Some("Gul Bibi".into()),
        head_sex: Some("x".into()),
        doc_type: Some("licence".into()),
        doc_number: None,
        consent: None,
        vulnerabilities: vec!["hungry".into()],
        documentation: vec!["undocumented".into(), "acc".into()],
        protection_referral: Some("legal".into()),
        notes: Some("n".repeat(501)),
    };
    let e = d.build(today()).unwrap_err();
    let fields: std::collections::BTreeSet<&str> =
        e.problems.iter().map(|p| p.field.as_str()).collect();
    let expected: std::collections::BTreeSet<&str> = [
        "crossing",
        "crossed_on",
        "return_type",
        "departure_province",
        "destination_province",
        "males",
        "head_name",
        "head_sex",
        "doc_type",
        "vulnerabilities",
        "documentation",
        "protection_referral",
        "notes",
    ]
    .into_iter()
    .collect();
    assert_eq!(fields, expected, "problems: {:#?}", e.problems);
    assert_eq!(e.problems.len(), expected.len(), "{:#?}", e.problems);

    // The printed form names the count and every field on its own line.
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "the family was not saved: {} problems",
            expected.len()
        )),
        "{text}"
    );
    for p in &e.problems {
        assert!(text.contains(&format!("\n  - {}: {}", p.field, p.message)));
    }
    let line = e.one_line();
    assert!(!line.contains('\n'));
    let joined: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(line, joined.join("; "));
}

#[test]
fn a_future_date_is_reported_beside_parse_problems() {
    // The record-wide rules still run when other fields fail to parse.
    let p = problems(&with(|d| {
        d.crossed_on = Some("2027-01-01".into());
        d.crossing = Some("nowhere".into());
        d.notes = Some("x".repeat(600));
        d.head_name = Some("Someone".into());
    }));
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    for f in ["crossing", "crossed_on", "notes", "head_name"] {
        assert!(fields.contains(&f), "{f} missing from {p:#?}");
    }
}

// ---------------------------------------------------------------- privacy

#[test]
fn messages_never_repeat_the_name_or_document_number() {
    let name = "Zarmina Gul Khan";
    let number = "ZX-99 1234";
    let drafts = [
        // No consent.
        with(|d| {
            d.head_name = Some(name.into());
            d.doc_type = Some("tazkira".into());
            d.doc_number = Some(number.into());
        }),
        // No document type.
        consenting(|d| {
            d.head_name = Some(name.into());
            d.doc_number = Some(number.into());
        }),
        // A bad character in the number, a control character in the name.
        consenting(|d| {
            d.head_name = Some(format!("{name}\n"));
            d.doc_type = Some("passport".into());
            d.doc_number = Some(format!("{number}#"));
        }),
        // Too long.
        consenting(|d| {
            d.head_name = Some(name.repeat(7));
            d.doc_type = Some("passport".into());
            d.doc_number = Some(number.repeat(5));
        }),
        // Everything else wrong too.
        FamilyDraft {
            head_name: Some(name.into()),
            doc_number: Some(number.into()),
            doc_type: Some("bogus".into()),
            consent: Some("perhaps".into()),
            ..FamilyDraft::default()
        },
    ];
    for d in &drafts {
        let e: ValidationError = d.build(today()).unwrap_err();
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert!(
            fields.contains(&"head_name") || fields.contains(&"doc_number"),
            "{e}"
        );
        for text in [e.to_string(), e.one_line(), format!("{e:?}")] {
            assert!(!text.contains(name), "the name leaked: {text}");
            assert!(!text.contains("ZX-99"), "the number leaked: {text}");
        }
    }
}

#[test]
fn personal_fields_are_redacted_for_display() {
    assert!(FieldName::HeadName.is_personal());
    assert!(FieldName::DocNumber.is_personal());
    assert!(!FieldName::Notes.is_personal());
    let v = FieldValue::parse(FieldName::HeadName, "Zarmina").unwrap();
    assert_eq!(v.display(), "Zarmina");
    assert!(!v.display_redacted().contains("Zarmina"));
    let v = FieldValue::parse(FieldName::DocNumber, "ZX991234").unwrap();
    assert!(!v.display_redacted().contains("ZX99"));
}

// ---------------------------------------------------------------- edit path

#[test]
fn edit_values_parse_with_the_same_rules() {
    assert_eq!(
        FieldValue::parse(FieldName::Crossing, "Spin Boldak").unwrap(),
        FieldValue::Crossing("chaman".into())
    );
    assert_eq!(
        FieldValue::parse(FieldName::Crossing, "wagah")
            .unwrap_err()
            .field,
        "crossing"
    );
    assert_eq!(
        FieldValue::parse(FieldName::DestinationProvince, "kabul").unwrap(),
        FieldValue::DestinationProvince("AF-KAB".into())
    );
    assert_eq!(
        FieldValue::parse(FieldName::CrossedOn, "17/09/2025")
            .unwrap_err()
            .field,
        "crossed_on"
    );
    // A future date parses but the record check refuses it.
    let mut f = build(&draft());
    f.set(FieldValue::parse(FieldName::CrossedOn, "2026-06-16").unwrap());
    let e = f.check(today()).unwrap_err();
    assert_problem(&e.problems[0], "crossed_on", &["in the future"]);
}

// ---------------------------------------------------------------- derived figures

#[test]
fn derived_figures_follow_the_age_bands() {
    let m = Members {
        males: [1, 2, 3, 4, 5],
        females: [6, 7, 8, 9, 10],
    };
    assert_eq!(m.men(), 4 + 5, "men are males 18-59 and 60+");
    assert_eq!(m.women(), 9 + 10, "women are females 18-59 and 60+");
    assert_eq!(m.children(), 1 + 2 + 3 + 6 + 7 + 8, "children are under 18");
    assert_eq!(m.individuals(), (1..=10).sum::<u64>());

    let boys_only = Members {
        males: [0, 0, 5, 0, 0],
        females: [0; 5],
    };
    assert_eq!(
        (
            boys_only.men(),
            boys_only.women(),
            boys_only.children(),
            boys_only.individuals()
        ),
        (0, 0, 5, 5)
    );
    let elderly_woman = Members {
        males: [0; 5],
        females: [0, 0, 0, 0, 1],
    };
    assert_eq!(
        (
            elderly_woman.men(),
            elderly_woman.women(),
            elderly_woman.children(),
            elderly_woman.individuals()
        ),
        (0, 1, 0, 1)
    );
}

#[test]
fn individuals_are_men_plus_women_plus_children_for_every_small_household() {
    // Exhaustive over a grid of small households (a deterministic sweep).
    let mut seen = 0;
    for a in 0..3u32 {
        for b in 0..3u32 {
            for c in 0..3u32 {
                for d in 0..3u32 {
                    let m = Members {
                        males: [a, b, c, d, a],
                        females: [d, c, b, a, b],
                    };
                    let males: u64 = m.males.iter().map(|&n| n as u64).sum();
                    let females: u64 = m.females.iter().map(|&n| n as u64).sum();
                    assert_eq!(m.individuals(), males + females);
                    assert_eq!(m.individuals(), m.men() + m.women() + m.children());
                    assert_eq!(m.men(), (d + a) as u64);
                    assert_eq!(m.women(), (a + b) as u64);
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, 81);
}
