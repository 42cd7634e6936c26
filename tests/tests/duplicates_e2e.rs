//! Duplicate families end to end: a real server on 127.0.0.1:0, devices
//! that record offline and sync through the client library over real HTTP,
//! and the real `returnee` binary for the command line.

use std::collections::BTreeSet;

use chrono::{NaiveDate, Utc};
use returnee_shared::duplicates::{Candidate, THRESHOLD};
use returnee_shared::merge::{DECIDE_KEPT, DECIDE_MERGED, Lifecycle, RECORD_CONFLICT_FIELD};
use returnee_shared::wire::Role;
use returnee_shared::{
    DocType, FamilyFields, FieldValue, Members, RecordId, ReportFilter, ReturnType, Sex,
};
use returnee_store::laptop::StoredView;
use returnee_tests::Store;
use returnee_tests::cluster::{Device, ServerProcess, TestServer, enrolled};

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A family crossing at Torkham a few days ago: a man, a woman, three children.
fn family(name: &str, doc: Option<&str>, days_ago: u64) -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: today() - chrono::Days::new(days_ago),
        return_type: ReturnType::Deported,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [1, 1, 0, 1, 0],
            females: [0, 1, 0, 1, 0],
        },
        head_name: Some(name.into()),
        head_sex: Some(Sex::Male),
        doc_type: if doc.is_some() {
            DocType::PorCard
        } else {
            DocType::None
        },
        doc_number: doc.map(str::to_string),
        consent: true,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    }
}

/// Another family the same days, nothing like the first.
fn other_family(days_ago: u64) -> FamilyFields {
    let mut f = family("Jalal Wardak", Some("ZX-9988776"), days_ago);
    f.members = Members {
        males: [2, 0, 1, 2, 1],
        females: [1, 1, 0, 1, 0],
    };
    f.destination_province = "AF-KAB".into();
    f
}

fn server_families(admin: &Device) -> u64 {
    admin
        .client()
        .report(&ReportFilter::default(), None)
        .expect("server report")
        .totals
        .families
}

fn sync_all(devices: &[&Device]) {
    // Twice round, so everyone holds everyone's operations.
    for _ in 0..2 {
        for d in devices {
            d.sync();
        }
    }
}

/// The pair ids and records a list of candidates names.
fn pairs(list: &[Candidate]) -> BTreeSet<(String, [RecordId; 2])> {
    list.iter().map(|c| (c.id.clone(), c.records)).collect()
}

/// The server and every device suggest exactly `expected`, with the same scores.
#[track_caller]
fn assert_suggested_everywhere(admin: &Device, devices: &[&Device], expected: &[[RecordId; 2]]) {
    let server = admin.client().duplicates().expect("server duplicates");
    let mut want: Vec<[RecordId; 2]> = expected
        .iter()
        .map(|[a, b]| if a < b { [*a, *b] } else { [*b, *a] })
        .collect();
    want.sort();
    let mut got: Vec<[RecordId; 2]> = server.iter().map(|c| c.records).collect();
    got.sort();
    assert_eq!(got, want, "the server suggests {server:#?}");
    for d in devices.iter().chain([&admin]) {
        let local = d.store.duplicates().expect("local duplicates");
        assert_eq!(
            pairs(&local),
            pairs(&server),
            "{} differs from the server",
            d.name
        );
        assert_eq!(local, server, "{}: scores and reasons differ", d.name);
    }
}

#[track_caller]
fn assert_families_everywhere(admin: &Device, devices: &[&Device], n: u64) {
    assert_eq!(server_families(admin), n, "the server's report");
    for d in devices.iter().chain([&admin]) {
        assert_eq!(d.report().totals.families, n, "{}'s report", d.name);
    }
}

#[test]
fn the_same_document_on_two_devices_is_suggested_merged_once_and_unmerged() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    // Two desks, offline, record the same family: the number typed two ways.
    let mut fa = family("Gul Ahmad Khan", Some("AB-123 4567"), 3);
    fa.notes = Some("desk 1".into());
    let mut fb = family("Gul Ahmad", Some("ab1234567"), 2);
    fb.notes = Some("desk 2".into());
    let ida = a.add(fa);
    let idb = b.add(fb);
    a.add(other_family(3));
    sync_all(&[a, b, &admin]);
    assert_families_everywhere(&admin, &[a, b], 3);
    assert_suggested_everywhere(&admin, &[a, b], &[[ida, idb]]);
    let pair = admin.store.duplicates().unwrap().remove(0);
    assert!(pair.score >= 0.9, "{pair:#?}");
    assert!(
        pair.reasons
            .iter()
            .any(|r| r.detail == "same document number")
    );

    // The admin merges: the older record (a's) survives.
    let (keep, lose) = admin.store.merge_pair(&pair.id, None, Utc::now()).unwrap();
    assert_eq!((keep, lose), (ida.min(idb), ida.max(idb)));
    sync_all(&[&admin, a, b]);
    assert_families_everywhere(&admin, &[a, b], 2);
    assert_suggested_everywhere(&admin, &[a, b], &[]);
    for d in [&admin, a, b] {
        let lost = d.store.get(lose).unwrap().unwrap();
        assert_eq!(
            lost.lifecycle,
            Lifecycle::Merged { into: keep },
            "{}",
            d.name
        );
        // What differed is kept on the survivor for review, its own value shown.
        let kept = d.store.get(keep).unwrap().unwrap();
        let fields: BTreeSet<&str> = kept.conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["crossed_on", "doc_number", "head_name", "notes"]),
            "{}",
            d.name
        );
        let notes = kept.conflicts.iter().find(|c| c.field == "notes").unwrap();
        let values: BTreeSet<(&str, bool)> = notes
            .values
            .iter()
            .map(|v| (v.value.as_str(), v.shown))
            .collect();
        let (mine, theirs) = if keep == ida {
            ("desk 1", "desk 2")
        } else {
            ("desk 2", "desk 1")
        };
        assert_eq!(values, BTreeSet::from([(mine, true), (theirs, false)]));
    }
    assert_eq!(admin.client().conflicts().unwrap().len(), 4);

    // Unmerge: both count again, and the survivor's review items go away.
    admin.store.unmerge(lose, Utc::now()).unwrap();
    sync_all(&[&admin, a, b]);
    assert_families_everywhere(&admin, &[a, b], 3);
    for d in [&admin, a, b] {
        assert_eq!(
            d.store.get(lose).unwrap().unwrap().lifecycle,
            Lifecycle::Active
        );
        assert!(d.store.conflicts().unwrap().is_empty(), "{}", d.name);
    }
    assert!(admin.client().conflicts().unwrap().is_empty());
    // Still the same family: suggested again, for a decision.
    assert_suggested_everywhere(&admin, &[a, b], &[[ida, idb]]);
}

#[test]
fn a_name_spelled_differently_without_documents_is_suggested_everywhere() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    let ida = a.add(family("Mohammad Gul", None, 2));
    let idb = b.add(family("Muhammad Gull", None, 1));
    b.add(other_family(1));
    sync_all(&[a, b, &admin]);
    assert_suggested_everywhere(&admin, &[a, b], &[[ida, idb]]);
    let c = &admin.client().duplicates().unwrap()[0];
    assert!(c.reasons.iter().all(|r| r.part.as_str() != "doc_number"));
    let name = c
        .reasons
        .iter()
        .find(|r| r.part.as_str() == "name")
        .unwrap();
    assert!(name.points > 0.3, "{name:?}");

    // Merging into the newer record (--keep) counts the family once everywhere.
    let (keep, _) = admin
        .store
        .merge_pair(&c.id, Some(&idb.to_string()), Utc::now())
        .unwrap();
    assert_eq!(keep, idb);
    sync_all(&[&admin, a, b]);
    assert_families_everywhere(&admin, &[a, b], 2);
    let individuals = admin
        .client()
        .report(&ReportFilter::default(), None)
        .unwrap()
        .totals
        .individuals;
    assert_eq!(individuals, 5 + 9, "one household of five, one of nine");
    for d in [&admin, a, b] {
        assert_eq!(d.report().totals.individuals, individuals, "{}", d.name);
    }
}

#[test]
fn a_dismissal_holds_across_syncs_edits_and_new_devices() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    let ida = a.add(family("Noor Ahmad", None, 2));
    let idb = b.add(family("Nur Ahmed", None, 2));
    sync_all(&[a, b, &admin]);
    assert_suggested_everywhere(&admin, &[a, b], &[[ida, idb]]);
    let pair = admin.store.duplicates().unwrap().remove(0);
    admin.store.dismiss_pair(&pair.id, Utc::now()).unwrap();
    assert!(
        admin.store.duplicates().unwrap().is_empty(),
        "gone at once here"
    );
    sync_all(&[&admin, a, b]);
    assert_suggested_everywhere(&admin, &[a, b], &[]);
    assert_families_everywhere(&admin, &[a, b], 2);

    // Edits of either family re-check it; the pair stays dismissed.
    a.store
        .edit(
            ida,
            vec![FieldValue::Notes(Some("checked twice".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    b.store
        .edit(
            idb,
            vec![FieldValue::HeadName(Some("Noor Ahmad".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    sync_all(&[a, b, &admin]);
    assert_suggested_everywhere(&admin, &[a, b], &[]);

    // A device enrolled later learns the dismissal with everything else.
    let mut late = Device::new("late");
    late.enroll(&server.url(), &admin.mint(Role::Supervisor, &[]));
    late.sync();
    assert!(late.store.duplicates().unwrap().is_empty());
    assert_eq!(late.report().totals.families, 2);

    // A third registration of the same family is still suggested with each.
    let idc = late.add(family("Nour Ahmad", None, 1));
    sync_all(&[&late, a, b, &admin]);
    assert_suggested_everywhere(&admin, &[a, b, &late], &[[ida, idc], [idb, idc]]);
}

#[test]
fn an_edit_made_offline_to_the_merged_record_is_not_lost() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    let ida = a.add(family("Rahmatullah Safi", Some("PK-555 0001"), 2));
    let idb = b.add(family("Rahmat Ullah Safi", Some("PK5550001"), 2));
    sync_all(&[a, b, &admin]);
    let pair = admin.store.duplicates().unwrap().remove(0);
    let (keep, lose) = (ida.min(idb), ida.max(idb));
    let editor = if lose == ida { a } else { b };

    // The editor, offline, edits the record that is about to lose …
    editor
        .store
        .edit(
            lose,
            vec![FieldValue::Notes(Some("needs shelter".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    // … while the admin merges without having seen that edit.
    admin.store.merge_pair(&pair.id, None, Utc::now()).unwrap();
    admin.sync();
    sync_all(&[editor, a, b, &admin]);

    // Still counted once, and the edit is there for a decision on every replica.
    assert_families_everywhere(&admin, &[a, b], 1);
    let server_conflicts = admin.client().conflicts().unwrap();
    for d in [&admin, a, b] {
        let v: StoredView = d.store.get(lose).unwrap().unwrap();
        assert_eq!(v.lifecycle, Lifecycle::Merged { into: keep }, "{}", d.name);
        assert_eq!(v.family.fields.notes.as_deref(), Some("needs shelter"));
        let c = v
            .conflicts
            .iter()
            .find(|c| c.field == RECORD_CONFLICT_FIELD)
            .unwrap_or_else(|| panic!("{}: no record conflict: {:#?}", d.name, v.conflicts));
        let values: BTreeSet<&str> = c.values.iter().map(|x| x.value.as_str()).collect();
        assert_eq!(
            values,
            BTreeSet::from([
                format!("{DECIDE_MERGED} into {keep}").as_str(),
                format!("{DECIDE_KEPT} (edited notes)").as_str(),
            ]),
            "{}",
            d.name
        );
        assert!(server_conflicts.iter().any(|s| s.id == c.id));
    }

    // The supervisor confirms the merge: the edit travels to the survivor,
    // where it waits for review beside the survivor's own value.
    let c = admin
        .store
        .conflicts()
        .unwrap()
        .into_iter()
        .find(|c| c.record_id == lose)
        .unwrap();
    admin
        .store
        .resolve(&c.id, "merged", today(), Utc::now())
        .unwrap();
    sync_all(&[&admin, a, b]);
    assert_families_everywhere(&admin, &[a, b], 1);
    for d in [&admin, a, b] {
        assert!(
            d.store.get(lose).unwrap().unwrap().conflicts.is_empty(),
            "{}",
            d.name
        );
        let kept = d.store.get(keep).unwrap().unwrap();
        let notes = kept
            .conflicts
            .iter()
            .find(|c| c.field == "notes")
            .unwrap_or_else(|| panic!("{}: {:#?}", d.name, kept.conflicts));
        let carried = notes
            .values
            .iter()
            .find(|v| v.value == "needs shelter")
            .expect("the edit reached the survivor");
        assert_eq!(carried.merged_from, Some(lose));
        assert!(!carried.shown);
    }
}

#[test]
fn field_devices_cannot_decide_duplicates() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    a.add(family("Zahir Popal", Some("QQ-1"), 1));
    b.add(family("Zaheer Popal", Some("QQ1"), 1));
    sync_all(&[a, b, &admin]);
    let pair = b.store.duplicates().unwrap().remove(0);
    // The store does not check roles (the command and the server do): a
    // tampered client that merges anyway is refused by the server, and the
    // refused operations are kept on the device.
    b.store.merge_pair(&pair.id, None, Utc::now()).unwrap();
    let summary = b.sync();
    assert_eq!(summary.rejected, 2, "the merge and the carried values");
    let held = b.store.held().unwrap();
    assert!(held.iter().all(|(_, r)| r.error == "forbidden"), "{held:?}");
    // So is a dismissal.
    a.store.dismiss_pair(&pair.id, Utc::now()).unwrap();
    assert_eq!(a.sync().rejected, 1);
    admin.sync();
    assert_eq!(server_families(&admin), 2, "nothing merged on the server");
    assert_eq!(admin.client().duplicates().unwrap().len(), 1);
    // A field device may not list the server's candidates either.
    let err = a.client().duplicates().unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

#[test]
fn the_server_finds_its_candidates_again_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let first = ServerProcess::start(&data, "127.0.0.1:0");
    let (url, bind) = (first.url.clone(), first.addr.to_string());
    let mut admin = Device::new("admin");
    admin.enroll(&url, first.admin_code.as_deref().expect("a first start"));
    let mut a = Device::new("a");
    a.enroll(&url, &admin.mint(Role::Field, &[]));
    let ida = a.add(family("Ghulam Nabi", Some("GN-42"), 1));
    let idb = a.add(family("Gholam Nabi", Some("gn42"), 1));
    a.sync();
    assert_eq!(admin.client().duplicates().unwrap().len(), 1);
    // Killed with no chance to flush the index: it catches up at start.
    first.kill9();
    let _second = ServerProcess::start(&data, &bind);
    let list = admin.client().duplicates().unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0].records, [ida.min(idb), ida.max(idb)]);
    // And it keeps up with new pushes.
    let idc = a.add(family("Ghulam Nabee", None, 0));
    a.sync();
    assert_eq!(admin.client().duplicates().unwrap().len(), 3, "{idc}");
}

// ---------------------------------------------------------------------------
// Through the real binary

fn add_args<'a>(name: &'a str, doc: Option<&'a str>, date: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "add",
        "--crossing",
        "torkham",
        "--date",
        date,
        "--return-type",
        "deported",
        "--from",
        "PK-KP",
        "--to",
        "nangarhar",
        "--males",
        "1,1,0,1,0",
        "--females",
        "0,1,0,1,0",
        "--head-sex",
        "m",
        "--consent",
        "--head-name",
        name,
    ];
    if let Some(d) = doc {
        args.extend(["--doc-type", "por-card", "--doc-number", d]);
    }
    args
}

#[test]
fn add_warns_about_a_likely_duplicate_and_duplicates_json_lists_it() {
    let store = Store::init();
    let day = (today() - chrono::Days::new(2)).to_string();
    let next = (today() - chrono::Days::new(1)).to_string();
    let first = store.run(&add_args("Mohammad Gul", Some("AB-778899"), &day));
    let first = first.expect_code(0);
    assert!(
        !first.stderr.contains("warning"),
        "nothing to warn about yet: {}",
        first.stderr
    );
    let ida = first.stdout.trim().to_string();

    // The same family again, the next day, spelled another way: saved, with a warning.
    let second = store
        .run(&add_args("Muhammad Gull", None, &next))
        .expect_code(0);
    let idb = second.stdout.trim().to_string();
    assert!(idb.parse::<uuid::Uuid>().is_ok(), "{}", second.stdout);
    assert!(
        second
            .stderr
            .contains(&format!("family {idb} may be a duplicate of family {ida}")),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("score 0."), "{}", second.stderr);
    for secret in ["Muhammad", "Gull", "Mohammad", "778899"] {
        assert!(!second.stderr.contains(secret), "{}", second.stderr);
    }
    // An unrelated family: no warning.
    let third = store
        .run(&add_args("Jalal Wardak", Some("ZZ-1"), &day))
        .expect_code(0);
    assert!(!third.stderr.contains("warning"), "{}", third.stderr);

    let list = store.json(&["duplicates", "--json"]);
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 1, "{list:#?}");
    let c = &list[0];
    let id = c["id"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    let mut want = vec![ida.clone(), idb.clone()];
    want.sort();
    assert_eq!(c["records"], serde_json::json!(want));
    let score = c["score"].as_f64().unwrap();
    assert!((THRESHOLD..=1.0).contains(&score), "{score}");
    let reasons = c["reasons"].as_array().unwrap();
    let sum: f64 = reasons.iter().map(|r| r["points"].as_f64().unwrap()).sum();
    assert!((sum.clamp(0.0, 1.0) - score).abs() < 1e-6, "{c:#}");
    assert!(reasons.iter().any(|r| r["part"] == "name"));
    assert!(reasons.iter().all(|r| r["detail"].is_string()));

    // The human table names the pair and both families (by short ids).
    let table = store.ok(&["duplicates"]);
    let short = |id: &str| id.replace('-', "")[..12].to_string();
    assert!(table.contains(id) && table.contains(&short(&ida)) && table.contains(&short(&idb)));
    assert!(table.contains("1 possible duplicate pair;"), "{table}");

    // Deciding needs a supervisor or admin device.
    let refused = store.run(&["duplicates", "merge", id]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("only a supervisor or admin device may merge duplicates"),
        "{}",
        refused.stderr
    );
    store.run(&["duplicates", "dismiss", id]).expect_code(2);
    store.run(&["duplicates", "unmerge", &idb]).expect_code(2);
    assert_eq!(
        store
            .json(&["duplicates", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn import_warns_about_likely_duplicates_among_new_rows() {
    let store = Store::init();
    let day = (today() - chrono::Days::new(3)).to_string();
    let next = (today() - chrono::Days::new(2)).to_string();
    let ida = store.ok(&add_args("Abdul Wali Safi", None, &day));
    let ida = ida.trim();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    let header = "crossing,crossed_on,return_type,departure_province,destination_province,\
head_name,head_sex,consent,m_0_4,m_5_11,m_12_17,m_18_59,m_60_plus,f_0_4,f_5_11,f_12_17,f_18_59,f_60_plus";
    let row = |name: &str, date: &str| {
        format!("torkham,{date},deported,PK-KP,AF-NAN,{name},m,yes,1,1,0,1,0,0,1,0,1,0")
    };
    std::fs::write(
        &csv,
        [
            header.to_string(),
            row("Abdulwali Safi", &next),
            row("Jalal Wardak", &next).replace(",1,1,0,1,0,", ",0,0,2,1,1,"),
        ]
        .join("\n"),
    )
    .unwrap();
    let run = store
        .run(&["import", "--json", csv.to_str().unwrap()])
        .expect_code(0);
    assert_eq!(run.json()["added"], 2);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains(&format!("may be a duplicate of family {ida}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Wali") && !run.stderr.contains("Safi"));
    // Importing the same file again adds nothing and warns about nothing.
    let again = store
        .run(&["import", "--json", csv.to_str().unwrap()])
        .expect_code(0);
    assert!(!again.stderr.contains("warning:"), "{}", again.stderr);
}

#[test]
fn a_supervisor_merges_and_unmerges_with_the_binary() {
    let server = TestServer::start();
    let (admin, _) = enrolled(&server, Role::Field, 0);
    let store = Store::init();
    store
        .run(&[
            "enroll",
            "--server",
            &server.url(),
            "--code",
            &admin.mint(Role::Supervisor, &[]),
        ])
        .expect_code(0);
    let day = (today() - chrono::Days::new(1)).to_string();
    let ida = store.ok(&add_args("Abdul Rahman", Some("X-1"), &day));
    let idb = store.ok(&add_args("Abdurrahman", Some("x1"), &day));
    let (ida, idb) = (ida.trim().to_string(), idb.trim().to_string());
    let pair = store.json(&["duplicates", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let report = |s: &Store| s.json(&["report", "--json"])["families"].as_u64().unwrap();
    assert_eq!(report(&store), 2);

    // --keep must name one of the pair.
    store
        .run(&["duplicates", "merge", &pair, "--keep", "ffffffff"])
        .expect_code(2);
    // A pair is named by the start of its id, as lists show it.
    let out = store.ok(&["duplicates", "merge", &pair[..8], "--keep", &idb]);
    assert!(out.contains(&format!("merged {ida} into {idb}")), "{out}");
    assert_eq!(report(&store), 1);
    assert!(
        store
            .json(&["duplicates", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let shown = store.json(&["show", &ida, "--json"]);
    assert_eq!(shown["merged_into"], serde_json::json!(idb));
    // A merged family is not edited; the message says where to go.
    let edit = store.run(&["edit", &ida, "--notes", "x"]).expect_code(2);
    assert!(
        edit.stderr.contains(&format!("merged into {idb}")),
        "{}",
        edit.stderr
    );
    store.ok(&["sync"]);
    assert_eq!(server_families(&admin), 1);

    store.ok(&["duplicates", "unmerge", &ida]);
    assert_eq!(report(&store), 2);
    store.ok(&["sync"]);
    assert_eq!(server_families(&admin), 2);
    store.run(&["duplicates", "unmerge", &ida]).expect_code(2);
}

/// Issue 20's case: two supervisors merge the same pair in opposite
/// directions while offline. After everyone syncs, the lower id counts
/// (the merge-cycle rule), the other is merged into it, and every report,
/// the server's and each laptop's, counts every family once.
#[test]
fn opposite_merges_made_offline_leave_every_family_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("server"), "127.0.0.1:0");
    let mut admin = Device::new("admin");
    admin.enroll(
        &server.url,
        server.admin_code.as_deref().expect("a first start"),
    );
    let mut field = Device::new("field");
    field.enroll(&server.url, &admin.mint(Role::Field, &[]));
    for i in 0..19u32 {
        let mut f = other_family(1 + u64::from(i % 5));
        f.head_name = Some(format!("Family {i}"));
        f.doc_number = Some(format!("ZX-{i:07}"));
        f.members.males[0] = i;
        field.add(f);
    }
    let ida = field.add(family("Ghulam Nabi", Some("GN-42"), 1));
    let idb = field.add(family("Gholam Nabi", Some("gn42"), 1));
    field.sync();
    assert_eq!(server_families(&admin), 21);

    let supervisors: Vec<Store> = (0..2)
        .map(|_| {
            let s = Store::init();
            let code = admin.mint(Role::Supervisor, &[]);
            s.ok(&["enroll", "--server", &server.url, "--code", &code]);
            s.ok(&["sync"]);
            s
        })
        .collect();
    let report = |s: &Store| s.json(&["report", "--json"])["families"].as_u64().unwrap();
    // Offline, each keeps a different one of the pair.
    for (s, keep) in supervisors.iter().zip([ida, idb]) {
        let pair = s.json(&["duplicates", "--json"])[0]["id"]
            .as_str()
            .expect("the pair is suggested")
            .to_string();
        s.ok(&["duplicates", "merge", &pair, "--keep", &keep.to_string()]);
        assert_eq!(report(s), 20);
    }
    for s in supervisors.iter().chain(&supervisors) {
        s.ok(&["sync"]);
    }
    field.sync();
    let (low, high) = (ida.min(idb).to_string(), ida.max(idb).to_string());
    assert_eq!(server_families(&admin), 20, "the server's report");
    assert_eq!(
        field.report().totals.families,
        20,
        "the field laptop's report"
    );
    for s in &supervisors {
        assert_eq!(report(s), 20, "a supervisor's report");
        let survivor = s.json(&["show", &low, "--json"]);
        assert!(survivor.get("merged_into").is_none(), "{survivor}");
        let merged = s.json(&["show", &high, "--json"]);
        assert_eq!(merged["merged_into"], serde_json::json!(low), "{merged}");
    }
}
