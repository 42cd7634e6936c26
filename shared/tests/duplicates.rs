//! Duplicate detection (`returnee_shared::duplicates`): name and document
//! normalisation, the score and its parts, blocking, and the merge-model
//! decisions on duplicates (`plan_merge`, `plan_unmerge`, `plan_dismiss`).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use returnee_shared::duplicates::{
    Candidate, Features, MemoryIndex, Part, THRESHOLD, compare, name_key, name_similarity,
    name_tokens, normalize_doc, pair_id, score,
};
use returnee_shared::merge::{
    Change, DECIDE_KEPT, DECIDE_MERGED, Lifecycle, Op, RECORD_CONFLICT_FIELD, RecordDoc,
    plan_dismiss, plan_merge, plan_unmerge,
};
use returnee_shared::{
    DeviceId, DocType, FamilyFields, FieldValue, Members, OpId, RecordId, ReturnType, Sex,
};
use uuid::Uuid;

fn tokens(name: &str) -> Vec<String> {
    name_tokens(name)
}

#[track_caller]
fn same_name(a: &str, b: &str) {
    assert_eq!(
        tokens(a),
        tokens(b),
        "{a:?} and {b:?} normalise differently"
    );
    assert_eq!(
        name_similarity(&tokens(a), &tokens(b)),
        Some(1.0),
        "{a:?} / {b:?}"
    );
}

#[test]
fn document_numbers_are_compared_without_case_spaces_dashes_or_slashes() {
    assert_eq!(normalize_doc("ab-123 45/6").as_deref(), Some("AB123456"));
    assert_eq!(normalize_doc("AB123456"), normalize_doc(" ab 12-34/56 "));
    assert_eq!(normalize_doc(" - / "), None);
}

#[test]
fn spellings_of_mohammad_are_one_name() {
    for spelling in [
        "Muhammad", "Mohammed", "Mohamed", "Mohd", "Muhammed", "Mohamad", "MOHAMMAD", "mohammad",
    ] {
        same_name("Mohammad", spelling);
    }
    same_name("Mohammad Gul", "Muhammad Gull");
    same_name("Mohd. Gul", "Mohammad Gol");
}

#[test]
fn abdul_names_written_together_apart_or_assimilated_are_one_name() {
    for spelling in [
        "Abdulrahman",
        "Abdur Rahman",
        "Abdurrahman",
        "Abdurahman",
        "Abd al Rahman",
        "Abdel Rahman",
        "Abdul-Rahman",
    ] {
        same_name("Abdul Rahman", spelling);
    }
    same_name("Abdullah", "Abdulla");
    same_name("Abdullah", "Abdallah");
}

#[test]
fn common_letter_variants_spaces_inside_names_and_khan_do_not_matter() {
    same_name("Gul", "Gull");
    same_name("Ahmad", "Ahmed");
    same_name("Noor Ahmad", "Nur Ahmed");
    same_name("Nour", "Noor");
    same_name("Zareen", "Zarin");
    same_name("Rahmatullah", "Rahmat Ullah");
    same_name("Rahmatullah", "Rahmatulla");
    same_name("Rahmatullah", "Rahmatollah");
    same_name("Nasiruddin", "Nasir Uddin");
    same_name("Gul Khan", "Gul");
    same_name("Haji Gul Ahmad", "Gul Ahmad");
    same_name("Sayed Karim", "Syed Kareem");
    same_name("Shafiq", "Shafik");
    same_name("Karimi", "Karimy");
    // Accents and Arabic-script letter forms are folded too.
    same_name("Jalāl", "Jalal");
    same_name("علي", "على");
    // But a name is never emptied by the rules.
    assert_eq!(tokens("Khan"), vec!["khan".to_string()]);
    assert_eq!(tokens("Haji"), vec!["haji".to_string()]);
    assert!(tokens("  - ").is_empty());
}

#[test]
fn different_names_sharing_a_common_word_are_not_alike() {
    let s = |a: &str, b: &str| name_similarity(&tokens(a), &tokens(b)).unwrap();
    assert!(s("Mohammad Gul", "Mohammad Ali") < 0.8);
    assert!(s("Abdul Karim", "Abdul Rahman") < 0.8);
    assert!(s("Gul Hamid", "Gul Ahmad") < 0.8);
    // The same words in another order are alike, but less than the same name.
    let swapped = s("Gul Mohammad", "Mohammad Gul");
    assert!((0.8..1.0).contains(&swapped), "{swapped}");
    // A typo keeps names alike; vowel-only differences count as nearly the same.
    assert!(s("Rahimullah Karimi", "Rahimulah Karimy") >= 0.95);
    assert!(s("Haidari", "Haideri") >= 0.96);
    // A word more on one side costs a little.
    let longer = s("Gul Ahmad", "Gul Ahmad Safi");
    assert!((0.8..0.95).contains(&longer), "{longer}");
    assert_eq!(name_similarity(&[], &tokens("Gul")), None);
}

#[test]
fn the_name_key_is_shared_by_spellings_and_has_no_vowels() {
    assert_eq!(
        name_key(&tokens("Mohammad Gul")),
        name_key(&tokens("Muhammad Gull"))
    );
    assert_eq!(name_key(&tokens("Haidari")), name_key(&tokens("Haideri")));
    assert_ne!(
        name_key(&tokens("Gul Hamid")),
        name_key(&tokens("Gul Ahmad"))
    );
    assert_eq!(name_key(&[]), None);
}

fn family(name: Option<&str>, doc: Option<&str>) -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
        return_type: ReturnType::Deported,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [1, 2, 0, 1, 0],
            females: [0, 1, 0, 1, 0],
        },
        head_name: name.map(str::to_string),
        head_sex: Some(Sex::Male),
        doc_type: if doc.is_some() {
            DocType::PorCard
        } else {
            DocType::None
        },
        doc_number: doc.map(str::to_string),
        consent: name.is_some() || doc.is_some(),
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    }
}

fn points(s: &returnee_shared::duplicates::Score, part: Part) -> Option<f64> {
    s.reasons.iter().find(|r| r.part == part).map(|r| r.points)
}

#[test]
fn the_score_is_the_sum_of_its_parts_and_each_part_explains_itself() {
    let a = Features::of(&family(Some("Mohammad Gul"), Some("AB-1234567")));
    let mut bf = family(Some("Muhammad Gull"), Some("ab 1234567"));
    bf.crossed_on = bf.crossed_on.succ_opt().unwrap();
    let b = Features::of(&bf);
    let s = score(&a, &b);
    assert_eq!(points(&s, Part::DocNumber), Some(0.5));
    assert_eq!(points(&s, Part::Name), Some(0.35));
    assert_eq!(points(&s, Part::Members), Some(0.25));
    assert_eq!(points(&s, Part::Destination), Some(0.1));
    assert_eq!(points(&s, Part::Date), Some(0.03));
    assert_eq!(s.score, 1.0, "clamped");
    for r in &s.reasons {
        assert!(!r.detail.is_empty());
        for secret in ["1234567", "Mohammad", "Gul", "muhamad", "gul"] {
            assert!(
                !r.detail.contains(secret),
                "a reason shows personal data: {r:?}"
            );
        }
    }

    // No document, the name spelled differently, one count mistyped.
    let mut cf = family(Some("Muhammad Gull"), None);
    cf.members.males[1] = 3;
    let c = Features::of(&cf);
    let a2 = Features::of(&family(Some("Mohammad Gul"), None));
    let s = score(&a2, &c);
    assert_eq!(points(&s, Part::DocNumber), None, "no document: no part");
    assert_eq!(points(&s, Part::Members), Some(0.18));
    let sum: f64 = s.reasons.iter().map(|r| r.points).sum();
    assert!((s.score - sum.clamp(0.0, 1.0)).abs() < 1e-9, "{s:?}");
    assert!(s.score >= THRESHOLD, "{s:?}");
}

#[test]
fn evidence_against_a_match_takes_points_away() {
    let a = Features::of(&family(Some("Mohammad Gul"), Some("AB1234567")));
    let other_doc = Features::of(&family(Some("Mohammad Gul"), Some("XY7654321")));
    let s = score(&a, &other_doc);
    assert_eq!(points(&s, Part::DocNumber), Some(-0.45));
    assert!(s.score < THRESHOLD, "{s:?}");

    let mut g = family(Some("Mohammad Ali"), None);
    g.members = Members {
        males: [0, 0, 3, 2, 1],
        females: [2, 0, 0, 1, 0],
    };
    g.destination_province = "AF-KAB".into();
    g.head_sex = Some(Sex::Female);
    let s = score(
        &Features::of(&family(Some("Mohammad Gul"), None)),
        &Features::of(&g),
    );
    assert!(points(&s, Part::Name).unwrap() < 0.0);
    assert_eq!(points(&s, Part::Members), Some(-0.3));
    assert_eq!(points(&s, Part::Destination), Some(-0.1));
    assert_eq!(points(&s, Part::HeadSex), Some(-0.3));
    assert_eq!(s.score, 0.0);

    // An undecided destination is no evidence either way.
    let mut u = family(Some("Mohammad Gul"), None);
    u.destination_province = "undecided".into();
    let s = score(
        &Features::of(&family(Some("Mohammad Gul"), None)),
        &Features::of(&u),
    );
    assert_eq!(points(&s, Part::Destination), None);
}

fn rid(n: u128) -> RecordId {
    RecordId(Uuid::from_u128(n))
}

#[test]
fn pair_ids_are_stable_and_do_not_depend_on_order() {
    let (a, b) = (rid(1), rid(2));
    assert_eq!(pair_id(a, b), pair_id(b, a));
    assert_eq!(pair_id(a, b).len(), 16);
    assert!(pair_id(a, b).chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(pair_id(a, b), pair_id(a, rid(3)));
    let c: Candidate = compare(
        (b, &Features::of(&family(Some("Gul"), Some("A1")))),
        (a, &Features::of(&family(Some("Gull"), Some("A-1")))),
    )
    .unwrap();
    assert_eq!(c.records, [a, b], "lower id first");
    assert_eq!(c.id, pair_id(a, b));
    assert_eq!(c.other(a), b);
}

#[test]
fn only_the_same_crossing_within_two_days_is_compared() {
    let a = Features::of(&family(Some("Gul Ahmad"), Some("A1")));
    let mut f = family(Some("Gul Ahmad"), Some("A1"));
    f.crossed_on = f.crossed_on + chrono::Days::new(2);
    assert!(compare((rid(1), &a), (rid(2), &Features::of(&f))).is_some());
    f.crossed_on = f.crossed_on + chrono::Days::new(1);
    assert!(compare((rid(1), &a), (rid(2), &Features::of(&f))).is_none());
    let mut g = family(Some("Gul Ahmad"), Some("A1"));
    g.crossing = "chaman".into();
    assert!(compare((rid(1), &a), (rid(2), &Features::of(&g))).is_none());
}

#[test]
fn features_survive_their_compact_encoding() {
    for f in [
        family(Some("Mohammad Gul"), Some("AB-123")),
        family(None, None),
        family(Some("محمد گل"), None),
    ] {
        let features = Features::of(&f);
        assert_eq!(Features::from_bytes(&features.to_bytes()), Some(features));
    }
    assert_eq!(Features::from_bytes(b"\x02junk"), None);
    assert_eq!(Features::from_bytes(&[]), None);
}

#[test]
fn the_blocking_index_finds_spelled_differently_duplicates_and_skips_the_rest() {
    let mut index = MemoryIndex::new();
    let mut records = Vec::new();
    // 300 different families on the same day at the same crossing.
    let given = [
        "Nasir", "Jalal", "Zahir", "Rafiq", "Bashir", "Qadir", "Tariq", "Yaqub", "Idris", "Farid",
        "Wahid", "Majid", "Latif", "Haroon", "Ismail", "Kamal", "Nabi", "Sharif", "Hazrat",
        "Shams",
    ];
    let family_names = [
        "Safi",
        "Popal",
        "Wardak",
        "Mangal",
        "Niazi",
        "Sadat",
        "Mohmand",
        "Afridi",
        "Stanikzai",
        "Achakzai",
        "Hotak",
        "Durrani",
        "Barakzai",
        "Tokhi",
        "Zazai",
    ];
    for i in 0..300usize {
        let name = format!("{} {}", given[i % 20], family_names[i / 20]);
        let mut f = family(Some(&name), None);
        f.members.males[0] = (i % 4) as u32;
        f.members.females[0] = (i % 3) as u32;
        records.push((rid(1000 + i as u128), Features::of(&f)));
    }
    // One family registered twice: no document, the name spelled differently.
    let mut twice = family(Some("Muhammad Gull"), None);
    twice.crossed_on = twice.crossed_on.succ_opt().unwrap();
    records.push((rid(1), Features::of(&family(Some("Mohammad Gul"), None))));
    records.push((rid(2), Features::of(&twice)));
    for (id, f) in &records {
        index.insert(*id, f);
    }
    let all = index.all_candidates(&records);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].records, [rid(1), rid(2)]);
    // The lookup of one record reads only its blocks, not the whole day.
    use returnee_shared::duplicates::{BlockIndex, MEMORY_PREFIX, index_ranges};
    let read: usize = index_ranges(MEMORY_PREFIX, &records[300].1)
        .iter()
        .map(|(from, to)| index.range(from, to).unwrap().len())
        .sum();
    assert!(read < 20, "read {read} entries for one lookup");
    // Removing a record removes its entries.
    index.remove(rid(2), &records[301].1);
    assert!(index.candidates_of(rid(1), &records[300].1).is_empty());
}

// ---------------------------------------------------------------------------
// Decisions on duplicates in the merge model

const KEEP: RecordId = RecordId(Uuid::from_u128(0x0100));
const LOSE: RecordId = RecordId(Uuid::from_u128(0x0200));

fn device(n: u128) -> DeviceId {
    DeviceId(Uuid::from_u128(
        0xde00_0000_0000_0000_0000_0000_0000_0000 | n,
    ))
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 3, 9, 0, 0).unwrap()
}

/// Builds operations with ids counting up from `next`.
struct Maker {
    next: u128,
    device: DeviceId,
}

impl Maker {
    fn op(&mut self, record: RecordId, base: Vec<OpId>, change: Change) -> Op {
        self.next += 1;
        Op {
            id: OpId(Uuid::from_u128(self.next)),
            record,
            device: self.device,
            at: at(),
            base,
            resolution: self.device == device(0x5),
            change,
        }
    }
}

fn create(m: &mut Maker, record: RecordId, fields: FamilyFields) -> Op {
    m.op(
        record,
        vec![],
        Change::Create {
            fields,
            origin: None,
        },
    )
}

fn doc(ops: &[&Op]) -> RecordDoc {
    let mut d = RecordDoc::default();
    for o in ops {
        d.insert((*o).clone());
    }
    d
}

/// Two records of one family: the same people, the name spelled two ways
/// and different notes.
fn two_records() -> (Op, Op) {
    let mut field = Maker {
        next: 0x10,
        device: device(0xa),
    };
    let mut keep = family(Some("Mohammad Gul"), None);
    keep.notes = Some("desk 1".into());
    let mut lose = family(Some("Muhammad Gull"), None);
    lose.notes = Some("desk 2".into());
    (
        create(&mut field, KEEP, keep),
        create(&mut field, LOSE, lose),
    )
}

fn supervisor(next: u128) -> Maker {
    Maker {
        next,
        device: device(0x5),
    }
}

#[test]
fn a_merge_keeps_the_survivor_shown_and_the_differences_open() {
    let (ck, cl) = two_records();
    let mut s = supervisor(0x100);
    let ops = plan_merge((KEEP, &doc(&[&ck])), (LOSE, &doc(&[&cl])), |r, b, c| {
        s.op(r, b, c)
    });
    assert_eq!(ops.len(), 2);
    assert!(matches!(ops[0].change, Change::Merge { into } if into == KEEP));
    assert_eq!(ops[0].record, LOSE);
    assert_eq!(ops[0].base, vec![cl.id], "the merge covers every head");
    let Change::MergedValues { from, values } = &ops[1].change else {
        panic!("{:?}", ops[1].change)
    };
    assert_eq!(*from, LOSE);
    let carried: Vec<&str> = values.iter().map(|v| v.name().as_str()).collect();
    assert_eq!(carried, vec!["head_name", "notes"]);
    assert!(ops[1].base.is_empty());

    let lose_view = doc(&[&cl, &ops[0]]).view(LOSE);
    assert_eq!(lose_view.lifecycle, Lifecycle::Merged { into: KEEP });
    assert!(
        lose_view.active().is_none(),
        "a merged record does not count"
    );
    assert!(lose_view.conflicts.is_empty());

    // The survivor shows its own values, whatever the ids' tie-break says,
    // and lists each difference as a conflict whatever the arrival order.
    let keep_view = doc(&[&ops[1], &ck]).view(KEEP);
    assert_eq!(keep_view, doc(&[&ck, &ops[1]]).view(KEEP));
    let family = keep_view.active().unwrap();
    assert_eq!(family.fields.notes.as_deref(), Some("desk 1"));
    assert_eq!(family.fields.head_name.as_deref(), Some("Mohammad Gul"));
    let fields: Vec<&str> = keep_view
        .conflicts
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, vec!["head_name", "notes"]);
    for c in &keep_view.conflicts {
        let carried = c.values.iter().find(|v| !v.shown).unwrap();
        assert_eq!(carried.merged_from, Some(LOSE));
        assert_eq!(carried.op, ops[1].id);
    }

    // Merging again carries nothing twice.
    let again = plan_merge(
        (KEEP, &doc(&[&ck, &ops[1]])),
        (LOSE, &doc(&[&cl, &ops[0]])),
        |r, b, c| s.op(r, b, c),
    );
    assert_eq!(again.len(), 1, "{again:?}");
}

#[test]
fn an_edit_the_merge_did_not_see_puts_the_merged_record_in_conflict() {
    let (ck, cl) = two_records();
    let mut field = Maker {
        next: 0x50,
        device: device(0xb),
    };
    let late = field.op(
        LOSE,
        vec![cl.id],
        Change::edit(vec![FieldValue::Notes(Some(
            "seen again at the gate".into(),
        ))]),
    );
    let mut s = supervisor(0x100);
    let ops = plan_merge((KEEP, &doc(&[&ck])), (LOSE, &doc(&[&cl])), |r, b, c| {
        s.op(r, b, c)
    });
    let merge = &ops[0];
    let view = doc(&[&cl, &late, merge]).view(LOSE);
    assert_eq!(view, doc(&[merge, &late, &cl]).view(LOSE));
    assert_eq!(view.lifecycle, Lifecycle::Merged { into: KEEP });
    assert_eq!(
        view.family.as_ref().unwrap().fields.notes.as_deref(),
        Some("seen again at the gate"),
        "the edit is still the record's value"
    );
    assert_eq!(view.conflicts.len(), 1, "{:#?}", view.conflicts);
    let c = &view.conflicts[0];
    assert_eq!(c.field, RECORD_CONFLICT_FIELD);
    let values: Vec<&str> = c.values.iter().map(|v| v.value.as_str()).collect();
    assert!(
        values.contains(&format!("{DECIDE_MERGED} into {KEEP}").as_str()),
        "{values:?}"
    );
    assert!(
        values.contains(&format!("{DECIDE_KEPT} (edited notes)").as_str()),
        "{values:?}"
    );

    // Deciding "merged" again covers the edit and carries its value over.
    let again = plan_merge(
        (KEEP, &doc(&[&ck, &ops[1]])),
        (LOSE, &doc(&[&cl, &late, merge])),
        |r, b, c| s.op(r, b, c),
    );
    assert!(again[0].base.contains(&late.id));
    let after = doc(&[&cl, &late, merge, &again[0]]).view(LOSE);
    assert!(after.conflicts.is_empty(), "{:#?}", after.conflicts);
    let Change::MergedValues { values, .. } = &again[1].change else {
        panic!("{:?}", again[1].change)
    };
    assert_eq!(
        values,
        &vec![FieldValue::Notes(Some("seen again at the gate".into()))]
    );
}

#[test]
fn an_unmerge_restores_the_record_and_withdraws_what_it_carried() {
    let (ck, cl) = two_records();
    let mut s = supervisor(0x100);
    let merged = plan_merge((KEEP, &doc(&[&ck])), (LOSE, &doc(&[&cl])), |r, b, c| {
        s.op(r, b, c)
    });
    let keep_doc = doc(&[&ck, &merged[1]]);
    let lose_doc = doc(&[&cl, &merged[0]]);
    let undo = plan_unmerge((LOSE, &lose_doc), Some((KEEP, &keep_doc)), |r, b, c| {
        s.op(r, b, c)
    });
    assert!(matches!(undo[0].change, Change::Restore));
    assert!(undo[0].resolution);
    assert_eq!(undo.len(), 3, "a restore and one edit per carried field");

    let mut lose_after = lose_doc.clone();
    lose_after.insert(undo[0].clone());
    let v = lose_after.view(LOSE);
    assert_eq!(v.lifecycle, Lifecycle::Active);
    assert!(v.conflicts.is_empty());
    assert_eq!(
        v.active().unwrap().fields.notes.as_deref(),
        Some("desk 2"),
        "the unmerged record keeps its own values"
    );

    let mut keep_after = keep_doc.clone();
    for o in &undo[1..] {
        assert_eq!(o.record, KEEP);
        keep_after.insert(o.clone());
    }
    let v = keep_after.view(KEEP);
    assert!(v.conflicts.is_empty(), "{:#?}", v.conflicts);
    assert_eq!(v.active().unwrap().fields.notes.as_deref(), Some("desk 1"));
}

#[test]
fn a_dismissal_is_recorded_on_the_lower_id_and_changes_nothing_shown() {
    let (ck, cl) = two_records();
    let mut s = supervisor(0x100);
    let d = plan_dismiss(LOSE, KEEP, |r, b, c| s.op(r, b, c));
    assert_eq!(d.record, KEEP, "the lower id");
    assert!(matches!(d.change, Change::Dismiss { other } if other == LOSE));
    let before = doc(&[&ck]).view(KEEP);
    let with = doc(&[&ck, &d]);
    assert_eq!(with.view(KEEP), before);
    assert_eq!(with.dismissed().into_iter().collect::<Vec<_>>(), vec![LOSE]);
    assert!(doc(&[&cl]).dismissed().is_empty());
}
