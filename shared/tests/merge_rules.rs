//! The merge rules of `returnee_shared::merge`, one behaviour per test.
//!
//! Ids are deterministic (`Uuid::from_u128`), so which of several concurrent
//! values is *shown* is known in advance: the tie-break reads the low 64 bits
//! of the id first, so for small numbers a larger number is shown.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use returnee_shared::merge::{
    Change, Conflict, DECIDE_DELETED, DECIDE_KEPT, Lifecycle, Op, RECORD_CONFLICT_FIELD, RecordDoc,
    RecordView, Slot, conflict_id,
};
use returnee_shared::{
    DeviceId, FamilyFields, FieldName, FieldValue, Members, OpId, RecordId, ReturnType,
};
use uuid::Uuid;

const R: RecordId = RecordId(Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001));

fn device(n: u128) -> DeviceId {
    DeviceId(Uuid::from_u128(
        0xde71_ce00_0000_0000_0000_0000_0000_0000 | n,
    ))
}

/// A device id as a field device (A, B) or a supervisor (S).
fn dev_a() -> DeviceId {
    device(0xa)
}
fn dev_b() -> DeviceId {
    device(0xb)
}
fn dev_s() -> DeviceId {
    device(0x5)
}

fn id(n: u128) -> OpId {
    OpId(Uuid::from_u128(n))
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 30, 0).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

/// A family that passes `FamilyFields::check`.
fn fields() -> FamilyFields {
    let f = FamilyFields {
        crossing: "torkham".into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        return_type: ReturnType::Spontaneous,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [0, 1, 0, 1, 0],
            females: [0, 0, 0, 1, 0],
        },
        head_name: None,
        head_sex: None,
        doc_type: returnee_shared::DocType::None,
        doc_number: None,
        consent: false,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    };
    f.check(today()).expect("the test family is valid");
    f
}

fn op(n: u128, dev: DeviceId, when: DateTime<Utc>, base: Vec<OpId>, change: Change) -> Op {
    Op {
        id: id(n),
        record: R,
        device: dev,
        at: when,
        base,
        resolution: false,
        change,
    }
}

fn create(n: u128) -> Op {
    op(
        n,
        dev_a(),
        at(2026, 1, 1),
        vec![],
        Change::Create {
            fields: fields(),
            origin: None,
        },
    )
}

fn notes(s: &str) -> FieldValue {
    FieldValue::Notes(Some(s.to_string()))
}

fn edit(n: u128, dev: DeviceId, when: DateTime<Utc>, base: Vec<OpId>, v: FieldValue) -> Op {
    op(n, dev, when, base, Change::edit(vec![v]))
}

fn doc_of(ops: &[Op]) -> RecordDoc {
    let mut doc = RecordDoc::default();
    for o in ops {
        assert!(doc.insert(o.clone()), "op {} inserted twice", o.id);
    }
    doc
}

/// Every order of `ops`, to show the view does not depend on arrival order.
fn permutations(ops: &[Op]) -> Vec<Vec<Op>> {
    if ops.len() <= 1 {
        return vec![ops.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..ops.len() {
        let mut rest = ops.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

/// The view of `ops`, checked to be the same for every arrival order.
fn view_any_order(ops: &[Op]) -> RecordView {
    let views: Vec<RecordView> = permutations(ops)
        .iter()
        .map(|p| doc_of(p).view(R))
        .collect();
    for v in &views[1..] {
        assert_eq!(*v, views[0], "the view depends on arrival order");
    }
    views.into_iter().next().unwrap()
}

fn shown_notes(v: &RecordView) -> Option<String> {
    v.family.as_ref().unwrap().fields.notes.clone()
}

fn conflict<'a>(v: &'a RecordView, field: &str) -> &'a Conflict {
    let found: Vec<&Conflict> = v.conflicts.iter().filter(|c| c.field == field).collect();
    assert_eq!(found.len(), 1, "expected one {field} conflict in {v:#?}");
    found[0]
}

#[test]
fn concurrent_edits_of_different_fields_merge_without_conflict() {
    let c = create(1);
    let e1 = edit(
        10,
        dev_a(),
        at(2026, 2, 1),
        vec![c.id],
        notes("seen at gate"),
    );
    let e2 = edit(
        11,
        dev_b(),
        at(2026, 2, 1),
        vec![c.id],
        FieldValue::Crossing("chaman".into()),
    );
    let v = view_any_order(&[c, e1, e2]);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    let f = v.family.unwrap();
    assert_eq!(f.fields.notes.as_deref(), Some("seen at gate"));
    assert_eq!(f.fields.crossing, "chaman");
    assert_eq!(v.lifecycle, Lifecycle::Active);
}

#[test]
fn concurrent_edits_of_one_field_give_one_conflict_with_both_values() {
    let c = create(1);
    let e1 = edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("from A"));
    let e2 = edit(11, dev_b(), at(2026, 2, 2), vec![c.id], notes("from B"));
    let v = view_any_order(&[c, e1.clone(), e2.clone()]);
    assert_eq!(v.conflicts.len(), 1, "{:?}", v.conflicts);
    let k = conflict(&v, "notes");
    assert_eq!(k.id, conflict_id(R, "notes"));
    assert_eq!(k.record_id, R);
    assert_eq!(k.values.len(), 2);
    let a = k.values.iter().find(|x| x.op == e1.id).unwrap();
    let b = k.values.iter().find(|x| x.op == e2.id).unwrap();
    assert_eq!(
        (a.value.as_str(), a.device, a.at),
        ("from A", dev_a(), e1.at)
    );
    assert_eq!(
        (b.value.as_str(), b.device, b.at),
        ("from B", dev_b(), e2.at)
    );
    // Exactly one value is shown, and it is the one the family shows.
    let shown: Vec<_> = k.values.iter().filter(|x| x.shown).collect();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown_notes(&v).as_deref(), Some(shown[0].value.as_str()));
}

#[test]
fn the_shown_value_is_chosen_by_id_not_by_clock() {
    // The same pair of values with the clocks swapped shows the same value.
    let c = create(1);
    let late_clock = edit(10, dev_a(), at(2027, 1, 1), vec![c.id], notes("x"));
    let early_clock = edit(11, dev_b(), at(2025, 1, 1), vec![c.id], notes("y"));
    let v1 = view_any_order(&[c.clone(), late_clock.clone(), early_clock.clone()]);
    let mut late2 = late_clock;
    let mut early2 = early_clock;
    std::mem::swap(&mut late2.at, &mut early2.at);
    let v2 = view_any_order(&[c, late2, early2]);
    assert_eq!(shown_notes(&v1), shown_notes(&v2));
    assert_eq!(conflict(&v1, "notes").id, conflict(&v2, "notes").id);
}

#[test]
fn three_concurrent_values_are_one_conflict_in_every_order() {
    let c = create(1);
    let ops = vec![
        c.clone(),
        edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("a")),
        edit(11, dev_b(), at(2026, 2, 1), vec![c.id], notes("b")),
        edit(12, dev_s(), at(2026, 2, 1), vec![c.id], notes("c")),
    ];
    let v = view_any_order(&ops);
    let k = conflict(&v, "notes");
    assert_eq!(k.values.len(), 3);
    assert_eq!(k.values.iter().filter(|x| x.shown).count(), 1);
}

#[test]
fn identical_concurrent_values_are_not_a_conflict() {
    let c = create(1);
    let e1 = edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("same"));
    let e2 = edit(11, dev_b(), at(2026, 2, 3), vec![c.id], notes("same"));
    let v = view_any_order(&[c.clone(), e1.clone(), e2.clone()]);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(shown_notes(&v).as_deref(), Some("same"));
    // A later edit sees both heads, so nothing is left behind.
    let doc = doc_of(&[c, e1.clone(), e2.clone()]);
    let mut base = doc.base_for_edit(FieldName::Notes, false);
    base.sort();
    assert_eq!(base, vec![e1.id, e2.id]);
}

#[test]
fn a_causally_later_edit_wins_even_with_a_clock_a_year_behind() {
    let c = create(1);
    // The earlier edit has the larger id, so the tie-break alone would pick it.
    let first = edit(20, dev_a(), at(2026, 6, 1), vec![c.id], notes("first"));
    let doc = doc_of(&[c.clone(), first.clone()]);
    let base = doc.base_for_edit(FieldName::Notes, false);
    assert_eq!(base, vec![first.id]);
    let later = edit(10, dev_b(), at(2025, 6, 1), base, notes("second"));
    let v = view_any_order(&[c, first, later]);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(shown_notes(&v).as_deref(), Some("second"));
}

#[test]
fn an_edit_from_a_clock_a_year_ahead_does_not_override_a_later_edit_that_saw_it() {
    let c = create(1);
    let ahead = edit(20, dev_a(), at(2027, 6, 1), vec![c.id], notes("fast clock"));
    let doc = doc_of(&[c.clone(), ahead.clone()]);
    let later = edit(
        10,
        dev_b(),
        at(2026, 6, 1),
        doc.base_for_edit(FieldName::Notes, false),
        notes("correct"),
    );
    let v = view_any_order(&[c, ahead, later]);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(shown_notes(&v).as_deref(), Some("correct"));
}

/// A record with `notes` in conflict between A (id 10) and B (id 11); B's is shown.
fn notes_conflict() -> (Vec<Op>, Op, Op) {
    let c = create(1);
    let e1 = edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("from A"));
    let e2 = edit(11, dev_b(), at(2026, 2, 2), vec![c.id], notes("from B"));
    (vec![c, e1.clone(), e2.clone()], e1, e2)
}

#[test]
fn a_resolution_covering_every_head_closes_the_conflict() {
    let (ops, e1, e2) = notes_conflict();
    let doc = doc_of(&ops);
    let mut base = doc.base_for_edit(FieldName::Notes, true);
    base.sort();
    assert_eq!(base, vec![e1.id, e2.id]);
    let mut r = edit(5, dev_s(), at(2026, 3, 1), base, notes("decided"));
    r.resolution = true;
    let mut all = ops;
    all.push(r);
    let v = view_any_order(&all);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(shown_notes(&v).as_deref(), Some("decided"));
}

#[test]
fn a_resolution_choosing_one_of_the_competing_values_closes_the_conflict() {
    let (ops, _, _) = notes_conflict();
    let doc = doc_of(&ops);
    let mut r = edit(
        5,
        dev_s(),
        at(2026, 3, 1),
        doc.base_for_edit(FieldName::Notes, true),
        notes("from A"),
    );
    r.resolution = true;
    let mut all = ops;
    all.push(r);
    let v = view_any_order(&all);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(shown_notes(&v).as_deref(), Some("from A"));
}

#[test]
fn a_field_device_edit_of_a_conflicted_field_keeps_the_conflict_open() {
    // Both arrangements: the shown value is B's (id 11 > 10), then A's.
    for swap in [false, true] {
        let c = create(1);
        let (na, nb) = if swap { (11, 10) } else { (10, 11) };
        let e1 = edit(na, dev_a(), at(2026, 2, 1), vec![c.id], notes("from A"));
        let e2 = edit(nb, dev_b(), at(2026, 2, 2), vec![c.id], notes("from B"));
        let doc = doc_of(&[c.clone(), e1.clone(), e2.clone()]);
        let before = doc.view(R);
        let shown = conflict(&before, "notes")
            .values
            .iter()
            .find(|x| x.shown)
            .unwrap()
            .op;
        let other = if shown == e1.id { e2.id } else { e1.id };

        let base = doc.base_for_edit(FieldName::Notes, false);
        assert_eq!(
            base,
            vec![shown],
            "a field edit replaces only the shown value"
        );
        let fe = edit(30, dev_a(), at(2026, 3, 1), base, notes("field edit"));
        let v = view_any_order(&[c, e1, e2, fe.clone()]);
        let k = conflict(&v, "notes");
        assert_eq!(k.id, conflict_id(R, "notes"));
        let ops: Vec<OpId> = k.values.iter().map(|x| x.op).collect();
        assert!(ops.contains(&other) && ops.contains(&fe.id), "{k:#?}");
        assert!(
            !ops.contains(&shown),
            "the replaced value left the conflict"
        );
    }
}

/// A record deleted on B while A edited `notes`, neither having seen the other.
fn delete_vs_edit() -> (Vec<Op>, Op, Op) {
    let c = create(1);
    let e = edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("still here"));
    let before = doc_of(std::slice::from_ref(&c));
    let mut d = op(
        11,
        dev_b(),
        at(2026, 2, 1),
        before.base_for_lifecycle(),
        Change::Delete,
    );
    d.base.sort();
    assert_eq!(d.base, vec![c.id]);
    (vec![c, e.clone(), d.clone()], e, d)
}

#[test]
fn a_delete_concurrent_with_an_edit_is_a_record_conflict() {
    let (ops, e, d) = delete_vs_edit();
    let v = view_any_order(&ops);
    assert_eq!(v.lifecycle, Lifecycle::Deleted);
    assert!(v.active().is_none());
    assert_eq!(v.conflicts.len(), 1, "{:?}", v.conflicts);
    let k = conflict(&v, RECORD_CONFLICT_FIELD);
    assert_eq!(k.id, conflict_id(R, RECORD_CONFLICT_FIELD));
    let del = k.values.iter().find(|x| x.op == d.id).expect("the delete");
    let kept = k.values.iter().find(|x| x.op == e.id).expect("the edit");
    assert_eq!(del.value, DECIDE_DELETED);
    assert_eq!(kept.value, format!("{DECIDE_KEPT} (edited notes)"));
    assert_eq!((kept.device, kept.at), (dev_a(), e.at));
    assert_eq!((del.device, del.at), (dev_b(), d.at));
    // The edited value is still there to be kept.
    assert_eq!(shown_notes(&v).as_deref(), Some("still here"));
}

#[test]
fn a_delete_that_saw_every_edit_is_not_a_conflict() {
    let c = create(1);
    let e = edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("seen"));
    let doc = doc_of(&[c.clone(), e.clone()]);
    let d = op(
        11,
        dev_b(),
        at(2026, 2, 2),
        doc.base_for_lifecycle(),
        Change::Delete,
    );
    let v = view_any_order(&[c, e, d]);
    assert_eq!(v.lifecycle, Lifecycle::Deleted);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
}

#[test]
fn deciding_a_record_conflict_for_deletion_closes_it() {
    let (ops, _, _) = delete_vs_edit();
    let doc = doc_of(&ops);
    let mut r = op(
        5,
        dev_s(),
        at(2026, 3, 1),
        doc.base_for_lifecycle(),
        Change::Delete,
    );
    r.resolution = true;
    let mut all = ops;
    all.push(r);
    let v = view_any_order(&all);
    assert_eq!(v.lifecycle, Lifecycle::Deleted);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
}

#[test]
fn deciding_a_record_conflict_to_keep_the_family_closes_it() {
    let (ops, _, _) = delete_vs_edit();
    let doc = doc_of(&ops);
    let mut r = op(
        5,
        dev_s(),
        at(2026, 3, 1),
        doc.base_for_lifecycle(),
        Change::Restore,
    );
    r.resolution = true;
    let mut all = ops;
    all.push(r);
    let v = view_any_order(&all);
    assert_eq!(v.lifecycle, Lifecycle::Active);
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(
        v.active().unwrap().fields.notes.as_deref(),
        Some("still here")
    );
}

#[test]
fn inserting_the_same_op_twice_changes_nothing() {
    let c = create(1);
    let e = edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("once"));
    let mut doc = RecordDoc::default();
    assert!(doc.insert(c.clone()));
    assert!(doc.insert(e.clone()));
    let snapshot = doc.clone();
    let view = doc.view(R);
    assert!(!doc.insert(e.clone()));
    assert!(!doc.insert(c));
    assert_eq!(doc, snapshot);
    assert_eq!(doc.view(R), view);
    assert_eq!(doc.ops.len(), 2);
    assert!(doc.contains(e.id));
}

#[test]
fn a_doc_with_only_an_edit_has_no_family_until_the_create_arrives() {
    let c = create(1);
    let e = edit(10, dev_a(), at(2026, 2, 1), vec![c.id], notes("early"));
    let mut doc = doc_of(std::slice::from_ref(&e));
    let v = doc.view(R);
    assert_eq!(v.family, None);
    assert_eq!(v.lifecycle, Lifecycle::Active);
    assert!(v.active().is_none());
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert!(doc.insert(c));
    let v = doc.view(R);
    assert_eq!(shown_notes(&v).as_deref(), Some("early"));
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
}

#[test]
fn heads_follow_bases_not_clocks() {
    let c = create(1);
    let e1 = edit(10, dev_a(), at(2030, 1, 1), vec![c.id], notes("one"));
    let e2 = edit(9, dev_b(), at(2020, 1, 1), vec![e1.id], notes("two"));
    let doc = doc_of(&[c.clone(), e1, e2.clone()]);
    let heads: Vec<OpId> = doc
        .heads(Slot::Field(FieldName::Notes))
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(heads, vec![e2.id]);
    let crossing: Vec<OpId> = doc
        .heads(Slot::Field(FieldName::Crossing))
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(crossing, vec![c.id]);
}

/// A field device edits a conflicted field together with another field
/// whose only head is the *non-shown* competing value. One base cannot say
/// "seen for crossing, not for notes", so the edit is planned as one
/// operation per field and the notes conflict stays open.
#[test]
fn a_field_device_edit_of_two_fields_keeps_a_conflict_on_one_of_them_open() {
    let c = create(1);
    // A edits notes; B edits notes and crossing at once, concurrently.
    let a = edit(11, dev_a(), at(2026, 2, 1), vec![c.id], notes("from A"));
    let b = op(
        10,
        dev_b(),
        at(2026, 2, 1),
        vec![c.id],
        Change::edit(vec![notes("from B"), FieldValue::Crossing("chaman".into())]),
    );
    let doc = doc_of(&[c.clone(), a.clone(), b.clone()]);
    let before = doc.view(R);
    let k = conflict(&before, "notes");
    assert!(k.values.iter().any(|x| x.op == a.id && x.shown));
    assert!(k.values.iter().any(|x| x.op == b.id && !x.shown));

    // A field device edits notes and crossing in one edit (e.g. `returnee edit
    // --notes … --crossing …`): it replaces the shown notes value (A's) and the
    // crossing (B's), but not B's competing notes value.
    let names = [FieldName::Notes, FieldName::Crossing];
    let plan = doc.plan_edit(&names, false);
    assert_eq!(plan.len(), 2, "one operation per field: {plan:?}");
    let mut ops = Vec::new();
    for (n, (fields, base)) in plan.into_iter().enumerate() {
        let values = fields
            .iter()
            .map(|f| match f {
                FieldName::Notes => notes("field edit"),
                _ => FieldValue::Crossing("ghulam-khan".into()),
            })
            .collect();
        ops.push(op(
            30 + n as u128,
            device(0xc),
            at(2026, 3, 1),
            base,
            Change::edit(values),
        ));
    }
    let fe = ops
        .iter()
        .find(|o| o.touches(Slot::Field(FieldName::Notes)))
        .unwrap()
        .clone();
    let mut all = vec![c.clone(), a.clone(), b.clone()];
    all.extend(ops.iter().cloned());
    let crossing_view = view_any_order(&all);
    assert_eq!(
        crossing_view.family.as_ref().unwrap().fields.crossing,
        "ghulam-khan",
        "the crossing edit replaced B's crossing"
    );
    let v = view_any_order(&all);
    let open: Vec<&Conflict> = v.conflicts.iter().filter(|k| k.field == "notes").collect();
    assert_eq!(
        open.len(),
        1,
        "a field device's edit closed the notes conflict between B's value and its own; \
         only a resolution may close it. base of the edit: {:?}",
        fe.base
    );
    let ops: Vec<OpId> = open[0].values.iter().map(|x| x.op).collect();
    assert!(
        ops.contains(&b.id) && ops.contains(&fe.id),
        "{:#?}",
        open[0]
    );
}
