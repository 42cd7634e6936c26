//! Changes the server refused, as a worker handles them: listed with the
//! server's reason, sent again once an admin fixed the cause, or dropped
//! with a line in the laptop's log of what was dropped. The real binaries
//! and a real server.

use returnee_tests::Store;
use returnee_tests::cluster::TestServer;
use serde_json::Value;

fn add_named(store: &Store, crossing: &str, name: &str, doc: &str) -> String {
    returnee_tests::add_named(store, crossing, "2026-12-01", name, doc)
}

fn refused(store: &Store) -> Vec<Value> {
    store
        .json(&["refused", "--json"])
        .as_array()
        .expect("an array")
        .clone()
}

#[test]
fn refused_changes_are_listed_retried_once_the_site_is_given_and_discarded_with_a_log_line() {
    let server = TestServer::start();
    let admin = Store::init();
    let url = server.url();
    admin.ok(&["enroll", "--server", &url, "--code", &server.admin_code]);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);

    // Recorded before enrolling (any site then), sent after: chaman and
    // badini are not this laptop's site.
    let laptop = Store::init();
    let chaman = add_named(&laptop, "chaman", "Zarmina Haidari", "TZ-40417");
    let badini = add_named(&laptop, "badini", "Gulalai Sherzad", "TZ-51822");
    let torkham = add_named(&laptop, "torkham", "Mariam Noori", "TZ-62233");
    laptop.ok(&["enroll", "--server", &url, "--code", code.trim()]);
    laptop.run(&["sync"]).expect_code(1);

    let list = refused(&laptop);
    assert_eq!(list.len(), 2, "{list:?}");
    let of = |family: &str| -> Value {
        refused(&laptop)
            .into_iter()
            .find(|r| r["family"] == family)
            .unwrap_or_else(|| panic!("{family} is not refused"))
    };
    let chaman_op = of(&chaman)["id"].as_str().unwrap().to_string();
    let badini_op = of(&badini)["id"].as_str().unwrap().to_string();
    assert_eq!(of(&chaman)["error"], "forbidden");
    assert_eq!(of(&chaman)["change"], "create");
    assert!(
        of(&chaman)["reason"].as_str().unwrap().contains("torkham"),
        "{list:?}"
    );
    let table = laptop
        .command(&["refused"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");
    assert!(
        table.contains("forbidden") && table.contains("create"),
        "{table}"
    );

    // Sent again before the cause is fixed, by its id: refused again, kept.
    let out = laptop.ok(&["refused", "retry", &chaman_op]);
    assert!(out.contains("1 refused change back in the outbox"), "{out}");
    assert_eq!(refused(&laptop).len(), 1);
    laptop.run(&["sync"]).expect_code(1);
    assert_eq!(refused(&laptop).len(), 2);

    // The admin gives the laptop chaman; everything is sent again.
    let device = laptop.json(&["status", "--json"])["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = admin.ok(&[
        "admin", "sites", &device, "--site", "torkham", "--site", "chaman",
    ]);
    assert!(out.contains("torkham, chaman"), "{out}");
    let out = laptop.ok(&["refused", "retry", "--all"]);
    assert!(
        out.contains("2 refused changes back in the outbox"),
        "{out}"
    );
    let run = laptop.run(&["sync"]).expect_code(1);
    assert!(run.stderr.contains("refused 1 change"), "{}", run.stderr);
    let left = refused(&laptop);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["family"], badini.as_str());
    // The laptop learnt its sites at that sync.
    let sites = laptop.json(&["status", "--json"])["sites"].clone();
    assert_eq!(sites, serde_json::json!(["torkham", "chaman"]));

    // The server has the chaman family now, once.
    admin.ok(&["sync"]);
    assert_eq!(
        admin.json(&["show", &chaman, "--json"])["id"],
        chaman.as_str()
    );
    assert!(admin.run(&["show", &badini, "--json"]).code != 0);
    let report = admin.json(&["report", "--json"]);
    assert_eq!(report["families"], 2, "{report}");

    // Dropping one: a wrong id is refused with what to do; the right one goes.
    let run = laptop
        .run(&["refused", "discard", "ffffffff"])
        .expect_code(2);
    assert!(run.stderr.contains("returnee refused"), "{}", run.stderr);
    let out = laptop.ok(&["refused", "discard", &badini_op, "--yes"]);
    assert!(out.contains("dropped the refused create"), "{out}");
    assert!(refused(&laptop).is_empty());
    assert!(laptop.run(&["show", &badini]).code != 0);
    let log = std::fs::read_to_string(laptop.path().join("discarded.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains(&badini)
            && lines[0].contains(&badini_op)
            && lines[0].contains("forbidden"),
        "{log}"
    );
    for personal in ["Gulalai", "Sherzad", "TZ-51822"] {
        assert!(!log.contains(personal), "{log}");
    }
    // Nothing is left to send or refused: the next sync is clean, and the
    // torkham family was never touched.
    laptop.ok(&["sync"]);
    assert_eq!(laptop.json(&["status", "--json"])["refused"], 0);
    assert_eq!(laptop.json(&["show", &torkham, "--json"])["sync"], "sent");
}
