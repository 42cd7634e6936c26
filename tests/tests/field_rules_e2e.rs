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
    for item in db.iter() {
        let (k, v) = item.unwrap();
        let operations = [&b"D/"[..], b"q/", b"qd/", b"h/"]
            .iter()
            .any(|p| k.starts_with(p));
        if !operations && v.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(String::from_utf8_lossy(&k[..2.min(k.len())]).into_owned());
        }
    }
    found
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
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("server"), "127.0.0.1:0");
    let mut admin = Device::new("admin");
    admin.enroll(
        &server.url,
        server.admin_code.as_deref().expect("a first start"),
    );
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
