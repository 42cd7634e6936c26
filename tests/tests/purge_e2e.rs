//! `returnee purge`, through the real binary against a real server: synced
//! families leave the laptop, unsynced ones never do, the server keeps
//! everything, and a purged family is not rebuilt by a later pull.

use std::collections::BTreeSet;

use chrono::{NaiveDate, Utc};
use returnee_shared::wire::Role;
use returnee_shared::{FieldValue, ReportFilter};
use returnee_tests::cluster::{Device, TestServer};
use returnee_tests::{Store, add_args};
use serde_json::Value;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn add(store: &Store, i: u32) -> String {
    let day = (today() - chrono::Days::new(1 + u64::from(i % 5))).to_string();
    let mut args = add_args("torkham", &day, &format!("{},0,0,1,0", i % 4), "0,1,0,1,0");
    args.extend([
        "--head-name".to_string(),
        format!("Purgeable Head {i}"),
        "--head-sex".into(),
        "m".into(),
        "--doc-type".into(),
        "tazkira".into(),
        "--doc-number".into(),
        format!("PG-{i:05}"),
        "--consent".into(),
    ]);
    store.ok(&args).trim().to_string()
}

fn ids(store: &Store) -> BTreeSet<String> {
    store
        .json(&["list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn families(store: &Store) -> u64 {
    store.json(&["report", "--json"])["families"]
        .as_u64()
        .unwrap()
}

fn purge(store: &Store, date: &str) -> Value {
    store.json(&["purge", "--synced-before", date, "--json"])
}

#[test]
fn purge_removes_synced_families_keeps_unsynced_ones_and_is_not_undone_by_a_pull() {
    const N: u32 = 7;
    const M: u32 = 4;
    let server = TestServer::start();
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);
    let store = Store::init();

    // Never synced: nothing is known to be on the server.
    let early = add(&store, 100);
    let tomorrow = (today() + chrono::Duration::days(1)).to_string();
    let out = purge(&store, &tomorrow);
    assert_eq!(out["removed"], 0, "{out}");
    assert_eq!(out["never_synced"], true, "{out}");
    let text = store.ok(&["purge", "--synced-before", &tomorrow]);
    assert!(text.contains("never synced"), "{text}");
    assert_eq!(ids(&store), BTreeSet::from([early.clone()]));

    store.ok(&[
        "enroll",
        "--server",
        &server.url(),
        "--code",
        &admin.mint(Role::Field, &[]),
    ]);
    let mut synced: BTreeSet<String> = (0..N - 1).map(|i| add(&store, i)).collect();
    synced.insert(early);
    store.ok(&["sync"]);
    let unsynced: BTreeSet<String> = (N..N + M).map(|i| add(&store, i)).collect();
    assert_eq!(families(&store), u64::from(N + M));

    // Today's date: every family changed today, so none is old enough.
    let out = purge(&store, &today().to_string());
    assert_eq!(
        (out["removed"].as_u64(), out["kept_recent"].as_u64()),
        (Some(0), Some(u64::from(N))),
        "{out}"
    );
    assert_eq!(families(&store), u64::from(N + M));

    // Tomorrow: the synced ones go, the unsynced ones stay.
    let tomorrow = (today() + chrono::Days::new(1)).to_string();
    let out = purge(&store, &tomorrow);
    assert_eq!(out["removed"], N, "{out}");
    assert_eq!(out["kept_unsynced"], M, "{out}");
    assert_eq!(out["never_synced"], false, "{out}");
    assert_eq!(ids(&store), unsynced);
    assert_eq!(families(&store), u64::from(M));
    let gone = synced.iter().next().unwrap().clone();
    store.run(&["show", &gone]).expect_code(2);
    let status = store.json(&["status", "--json"]);
    assert_eq!(status["families"], M, "{status}");
    assert_eq!(status["pending"], M, "{status}");
    // The duplicate index forgot them too: nothing pairs with a purged family.
    assert_eq!(store.json(&["duplicates", "--json"]), Value::Array(vec![]));

    // Purging again removes nothing more.
    let again = purge(&store, &tomorrow);
    assert_eq!(again["removed"], 0, "{again}");

    // The device syncs its new families; the server has all of them.
    let summary = store.json(&["sync", "--json"]);
    assert_eq!(summary["pushed"], M, "{summary}");
    admin.sync();
    let on_server = admin
        .client()
        .report(&ReportFilter::default(), None)
        .expect("server report");
    assert_eq!(on_server.totals.families, u64::from(N + M));
    assert_eq!(admin.report().totals.families, u64::from(N + M));

    // An edit of a purged family made elsewhere does not bring it back.
    let gone_id = gone.parse().unwrap();
    admin
        .store
        .edit(
            gone_id,
            vec![FieldValue::Notes(Some("seen again at the gate".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    admin.sync();
    store.ok(&["sync"]);
    assert_eq!(ids(&store), unsynced);
    assert_eq!(families(&store), u64::from(M));
    store.run(&["show", &gone]).expect_code(2);

    // Now synced, the rest goes too.
    let out = purge(&store, &tomorrow);
    assert_eq!(out["removed"], M, "{out}");
    assert_eq!(families(&store), 0);
    // The server still has every family.
    let on_server = admin
        .client()
        .report(&ReportFilter::default(), None)
        .expect("server report");
    assert_eq!(on_server.totals.families, u64::from(N + M));
}

#[test]
fn a_bad_date_is_a_usage_error_naming_the_format() {
    let store = Store::init();
    add(&store, 1);
    for bad in ["2026-13-01", "01/02/2026", "tomorrow", ""] {
        let run = store.run(&["purge", "--synced-before", bad]).expect_code(2);
        assert!(run.stderr.contains("YYYY-MM-DD"), "{bad}: {}", run.stderr);
    }
    assert_eq!(families(&store), 1);
}
