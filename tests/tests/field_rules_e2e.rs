//! Issue 20, points 2 and 3, end to end: the real `returnee-server` binary
//! and real `returnee` processes on plain laptop stores.
//!
//! - Consent wins: consent withdrawn on one laptop while another adds the
//!   head's name; after everyone syncs no laptop shows the name (`show`,
//!   `list`, `export`), no materialised view of a plain laptop store holds
//!   it, the family counts, and a supervisor decides the `rule` conflict.
//! - Another rule across fields (female-headed with a male head) shows as
//!   a `rule` conflict naming it, and is decided the same way.

use std::path::Path;

use chrono::Utc;
use returnee_shared::wire::Role;
use returnee_tests::cluster::{Device, ServerProcess};
use returnee_tests::{Store, add_args};

const NAME: &str = "Bibi Gul Khanzada";

/// The server binary on a fresh folder, and an admin enrolled with it.
fn start() -> (tempfile::TempDir, ServerProcess, Device) {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("server"), "127.0.0.1:0");
    let mut admin = Device::new("admin");
    let code = server.admin_code.clone().expect("a first start");
    admin.enroll(&server.url, &code);
    (dir, server, admin)
}

/// A laptop enrolled with `role`, synced once.
fn laptop(server: &ServerProcess, admin: &Device, role: Role) -> Store {
    let s = Store::init();
    let code = admin.mint(role, &[]);
    s.ok(&["enroll", "--server", &server.url, "--code", &code]);
    s.ok(&["sync"]);
    s
}

/// The entries of a plain store's materialised views (everything but the
/// operations themselves, `D/`, and the operations kept to push or held
/// as refused, `q/`, `qd/`, `h/`) whose value holds `needle`, by key
/// prefix. Read with sled after the binary has let go of the store.
fn views_holding(dir: &Path, needle: &str) -> Vec<String> {
    let db = sled::open(dir).expect("open the store's files");
    let mut found = Vec::new();
    let holds = |v: &[u8]| v.windows(needle.len()).any(|w| w == needle.as_bytes());
    for item in db.iter() {
        let (k, v) = item.unwrap();
        let operations = [&b"D/"[..], b"q/", b"qd/", b"h/"]
            .iter()
            .any(|p| k.starts_with(p));
        let views = if k.starts_with(b"r/") {
            waiting_views(&v)
        } else {
            vec![v.to_vec()]
        };
        if !operations && views.iter().any(|v| holds(v)) {
            found.push(String::from_utf8_lossy(&k[..2.min(k.len())]).into_owned());
        }
    }
    found
}

/// The report rows and duplicate features in an `r/` key of a plain
/// laptop store (values waiting beside their packs: entries of a kind byte,
/// 0 for operations, a record id, a presence byte, a 4-byte length and the
/// value).
fn waiting_views(mut v: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while v.len() >= 22 {
        let len = u32::from_be_bytes(v[18..22].try_into().unwrap()) as usize;
        if v[0] != 0 {
            out.push(v[22..22 + len].to_vec());
        }
        v = &v[22 + len..];
    }
    assert!(v.is_empty(), "an r/ key that does not parse");
    out
}

/// The `rule` conflict of `family` naming `rule`, as `show --json` lists it.
fn rule_conflict(s: &Store, family: &str, rule: &str) -> Option<serde_json::Value> {
    let shown = s.json(&["show", family, "--json"]);
    shown["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "rule" && c["rule"] == rule)
        .cloned()
}

#[test]
fn withdrawn_consent_wins_and_a_broken_rule_is_a_conflict_a_supervisor_decides() {
    let (_dir, server, admin) = start();
    let (w1, w2) = (
        laptop(&server, &admin, Role::Field),
        laptop(&server, &admin, Role::Field),
    );
    let day = (Utc::now().date_naive() - chrono::Days::new(2)).to_string();
    let mut args = add_args("torkham", &day, "1,1,0,1,0", "0,1,0,1,0");
    args.push("--consent".into());
    let consent = w1.ok(&args).trim().to_string();
    let mut args = add_args("torkham", &day, "0,1,0,2,0", "0,1,1,1,0");
    args.extend(["--head-sex", "f"].map(String::from));
    let headed = w1.ok(&args).trim().to_string();
    w1.ok(&["sync"]);
    w2.ok(&["sync"]);

    // Offline: consent withdrawn on one laptop, the name added on the other;
    // and female-headed on one, a male head on the other.
    w1.ok(&["edit", &consent, "--no-consent"]);
    w2.ok(&["edit", &consent, "--head-name", NAME]);
    assert!(
        w2.ok(&["show", &consent]).contains(NAME),
        "the name was recorded"
    );
    w1.ok(&["edit", &headed, "--vulnerability", "female-headed"]);
    w2.ok(&["edit", &headed, "--head-sex", "m"]);
    let sup = laptop(&server, &admin, Role::Supervisor);
    for s in [&w1, &w2, &w1, &sup] {
        s.ok(&["sync"]);
    }

    for (who, s) in [("w1", &w1), ("w2", &w2), ("supervisor", &sup)] {
        let shown = s.ok(&["show", &consent]) + &s.ok(&["show", &consent, "--json"]);
        assert!(!shown.contains(NAME), "{who} shows the name: {shown}");
        let list = s.ok(&["list", "--json"]) + &s.ok(&["list"]);
        assert!(!list.contains(NAME), "{who} lists the name");
        let export = s.ok(&["export"]);
        assert!(!export.contains(NAME), "{who} exports the name");
        assert_eq!(
            s.json(&["report", "--json"])["families"],
            serde_json::json!(2),
            "{who}: both families count"
        );
        let c = rule_conflict(s, &consent, "consent").expect("a consent rule conflict");
        assert!(!c.to_string().contains(NAME), "{c}");
        let c = rule_conflict(s, &headed, "female-headed").expect("a female-headed conflict");
        assert!(c.to_string().contains("head_sex: m"), "{c}");
    }
    // Every command above has exited: the stores can be read.
    for (who, s) in [("w1", &w1), ("w2", &w2), ("supervisor", &sup)] {
        assert_eq!(
            views_holding(s.path(), NAME),
            Vec::<String>::new(),
            "{who}: a materialised view holds the name"
        );
    }

    // The supervisor decides both: the withdrawal stands, the head is a woman.
    for (family, rule, value) in [
        (&consent, "consent", "withdrawn"),
        (&headed, "female-headed", "head_sex=f"),
    ] {
        let c = rule_conflict(&sup, family, rule).unwrap();
        let id = c["id"].as_str().unwrap();
        // A field the rule does not read decides nothing (bad input: 2).
        let refused = sup
            .run(&["conflicts", "resolve", id, "--value", "notes=x"])
            .expect_code(2);
        assert!(refused.stderr.contains(rule), "{}", refused.stderr);
        sup.ok(&["conflicts", "resolve", id, "--value", value]);
    }
    for s in [&sup, &w2, &w1] {
        s.ok(&["sync"]);
    }
    for s in [&w1, &w2, &sup] {
        assert_eq!(rule_conflict(s, &consent, "consent"), None);
        assert_eq!(rule_conflict(s, &headed, "female-headed"), None);
        let f = s.json(&["show", &consent, "--json"]);
        assert_eq!(f["head_name"], serde_json::Value::Null, "{f}");
        assert_eq!(f["consent"], serde_json::json!(false), "{f}");
        let h = s.json(&["show", &headed, "--json"]);
        assert_eq!(h["head_sex"], serde_json::json!("f"), "{h}");
    }
}

/// Issue 20, point 3: a supervisor sends a family back, the worker sees it
/// after a sync, fixes it and resubmits it, and the supervisor sees that;
/// reports (the laptop's and the server's) filter on the state.
#[test]
fn a_family_sent_back_reaches_the_worker_and_comes_back_resubmitted() {
    let (dir, server, admin) = start();
    let worker = laptop(&server, &admin, Role::Field);
    let day = (Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    let family = worker
        .ok(&add_args("torkham", &day, "1,1,0,1,0", "0,1,0,1,0"))
        .trim()
        .to_string();
    worker.ok(&add_args("torkham", &day, "0,1,0,0,0", "0,1,0,0,0"));
    worker.ok(&["sync"]);
    let sup = laptop(&server, &admin, Role::Supervisor);

    // Only a supervisor or admin sends back or approves.
    let refused = worker
        .run(&["review", &family, "--state", "approved"])
        .expect_code(2);
    assert!(refused.stderr.contains("supervisor"), "{}", refused.stderr);
    // A note says what to fix.
    sup.run(&["review", &family, "--state", "sent-back"])
        .expect_code(2);
    sup.run(&["review", &family, "--state", "done"])
        .expect_code(2);
    let note = "count the children again";
    sup.ok(&["review", &family, "--state", "sent-back", "--note", note]);
    sup.ok(&["sync"]);

    worker.ok(&["sync"]);
    let status = worker.ok(&["status"]);
    assert!(
        status.contains("sent back") && status.contains(note),
        "{status}"
    );
    let st = worker.json(&["status", "--json"]);
    assert_eq!(st["sent_back"][0]["id"], serde_json::json!(family), "{st}");
    let listed = worker.json(&["list", "--review", "sent-back", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], serde_json::json!(family));
    assert_eq!(listed[0]["review"]["state"], "sent-back");
    assert_eq!(listed[0]["review"]["note"], note);
    assert_eq!(
        worker.json(&["list", "--review", "approved", "--json"]),
        serde_json::json!([])
    );
    worker.run(&["list", "--review", "later"]).expect_code(2);

    worker.ok(&["edit", &family, "--males", "1,1,1,1,0"]);
    worker.ok(&[
        "review",
        &family,
        "--state",
        "resubmitted",
        "--note",
        "fixed",
    ]);
    worker.ok(&["sync"]);
    sup.ok(&["sync"]);
    let shown = sup.json(&["show", &family, "--json"]);
    assert_eq!(shown["review"]["state"], "resubmitted", "{shown}");
    assert!(sup.ok(&["show", &family]).contains("resubmitted: fixed"));
    let count = |s: &Store, state: &str| {
        s.json(&["report", "--review", state, "--json"])["families"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count(&sup, "resubmitted"), 1);
    assert_eq!(count(&sup, "sent-back"), 0);
    assert_eq!(
        sup.json(&["report", "--json"])["families"],
        serde_json::json!(2)
    );
    // The server's report filters the same way.
    let filter = returnee_shared::ReportFilter {
        review: Some(returnee_shared::ReviewState::Resubmitted),
        ..Default::default()
    };
    let resubmitted_on_server = || {
        let report = admin.client().report(&filter, None).unwrap();
        report.totals.families
    };
    assert_eq!(resubmitted_on_server(), 1);
    // A field device that approves anyway (not through the CLI) is refused
    // by the server, by the same policy.
    let mut rogue = Device::new("rogue");
    rogue.enroll(&server.url, &admin.mint(Role::Field, &[]));
    rogue.sync();
    let id: returnee_shared::RecordId = family.parse().unwrap();
    let approved = returnee_shared::Review {
        state: returnee_shared::ReviewState::Approved,
        note: None,
    };
    rogue
        .store
        .edit(
            id,
            vec![returnee_shared::FieldValue::Review(Some(approved))],
            Utc::now().date_naive(),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(rogue.sync().rejected, 1);
    assert_eq!(resubmitted_on_server(), 1);

    sup.ok(&["review", &family, "--state", "approved"]);
    sup.ok(&["sync"]);
    assert_eq!(resubmitted_on_server(), 0);
    // A CSV (which has no review column) imported again leaves it alone.
    let csv = dir.path().join("families.csv");
    sup.ok(&["export", "--out", csv.to_str().unwrap()]);
    sup.ok(&["import", csv.to_str().unwrap()]);
    let shown = sup.json(&["show", &family, "--json"]);
    assert_eq!(shown["review"]["state"], "approved", "{shown}");
}
