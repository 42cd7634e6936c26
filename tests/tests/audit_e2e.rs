//! The audit trail and log hygiene, with the real `returnee-server` and
//! `returnee` binaries: every change, merge, resolution, enrollment and
//! revocation is in a hash chain that `audit-verify` checks and that one
//! altered entry breaks; trace-level server logs and every CLI message carry
//! no name and no document number.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use returnee_tests::cluster::{ServerProcess, binary};
use returnee_tests::{Store, add_args};

const NAMES: [&str; 3] = [
    "Zarmina Qaderyar",
    "Gulbadin Sherzaiwal",
    "Nazdana Pashtunyar",
];
const DOCS: [&str; 3] = ["TZ-4471-90023", "PX88120456", "ACC-77341-QQ"];

fn add_named(store: &Store, i: usize) -> String {
    let mut args = add_args("torkham", "2026-10-02", "1,0,0,1,0", "0,1,0,1,0");
    args.extend(
        [
            "--head-name",
            NAMES[i],
            "--head-sex",
            "f",
            "--doc-type",
            "tazkira",
            "--doc-number",
            DOCS[i],
            "--consent",
            "--notes",
            &format!("{} said the family waits for relatives", NAMES[i]),
        ]
        .map(String::from),
    );
    store.ok(&args).trim().to_string()
}

fn audit_verify(dir: &Path) -> (i32, String) {
    let out = Command::new(binary("returnee-server"))
        .args(["audit-verify", "--data-dir"])
        .arg(dir)
        .output()
        .expect("returnee-server runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The audit entries in the server's sled store, by key.
fn audit_entries(db: &sled::Db) -> Vec<(sled::IVec, serde_json::Value)> {
    db.scan_prefix(b"a/")
        .map(|i| {
            let (k, v) = i.unwrap();
            (k, serde_json::from_slice(&v).unwrap())
        })
        .collect()
}

fn kinds(entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["event"]["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_audit_trail_records_every_change_and_detects_one_altered_entry() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let admin = Store::init();
    admin.ok(&[
        "enroll",
        "--server",
        &server.url,
        "--code",
        server.admin_code.as_deref().unwrap(),
    ]);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &server.url, "--code", code.trim()]);
    let ids: Vec<String> = (0..2).map(|i| add_named(&laptop, i)).collect();
    laptop.ok(&["sync"]);
    admin.ok(&["sync"]);
    // The same field edited on both sides: a conflict, resolved by the admin.
    laptop.ok(&["edit", &ids[0], "--notes", "first version"]);
    admin.ok(&["edit", &ids[0], "--notes", "second version"]);
    laptop.ok(&["sync"]);
    admin.ok(&["sync"]);
    let conflicts = admin.json(&["conflicts", "--json"]);
    let conflict = conflicts[0]["id"].as_str().expect("a conflict").to_string();
    // People see who made each value by the device's name.
    let table = admin.ok(&["conflicts"]);
    for store in [&laptop, &admin] {
        let name = store.json(&["status", "--json"])["device_name"].clone();
        let name = name.as_str().unwrap();
        assert!(table.contains(name), "{name} in {table}");
    }
    admin.ok(&[
        "conflicts",
        "resolve",
        &conflict,
        "--value",
        "second version",
    ]);
    admin.ok(&["delete", &ids[1]]);
    admin.ok(&["sync"]);
    let devices = admin.json(&["admin", "devices", "--json"]);
    let field_id = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["role"] == "field")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin.ok(&["admin", "revoke", &field_id]);

    // What the admin sees: every kind of event, in a chain it checks.
    let trail = admin.json(&["admin", "audit", "--json"]);
    let trail = trail.as_array().unwrap().clone();
    assert_eq!(
        kinds(&trail),
        [
            "code_minted", // the first admin code, by the server itself
            "enrolled",
            "code_minted",
            "enrolled",
            "push", // two families
            "push", // the laptop's edit
            "push", // the admin's edit
            "push", // the resolution and the deletion
            "revoked",
        ]
    );
    assert!(trail[0]["device"].is_null());
    let creates = &trail[4]["event"]["applied"];
    assert_eq!(creates.as_array().unwrap().len(), 2);
    assert!(
        creates
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["change"] == "create")
    );
    assert_eq!(trail[5]["event"]["applied"][0]["fields"][0], "notes");
    let last_push = trail[7]["event"]["applied"].as_array().unwrap();
    assert!(last_push.iter().any(|o| o["resolution"] == true));
    assert!(last_push.iter().any(|o| o["change"] == "delete"));
    assert_eq!(trail[8]["event"]["device"], field_id.as_str());
    let text = serde_json::to_string(&trail).unwrap();
    for secret in NAMES.iter().chain(DOCS.iter()) {
        assert!(
            !text.contains(secret),
            "the audit trail holds personal data"
        );
    }
    let human = admin.run(&["admin", "audit"]).expect_code(0);
    assert!(
        human.stderr.contains("hash chain intact"),
        "{}",
        human.stderr
    );
    assert!(human.stdout.contains("revoked"), "{}", human.stdout);
    // A page further on is checked from its own first entry.
    let page = admin.json(&["admin", "audit", "--after", "4", "--limit", "2", "--json"]);
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["seq"], 5);
    // Without --after: the newest entries.
    let newest = admin.json(&["admin", "audit", "--limit", "3", "--json"]);
    let seqs: Vec<u64> = newest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [7, 8, 9]);

    // Offline, on the server's data folder.
    server.kill9();
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 9 entries"), "{out}");

    // One altered entry: the edit becomes a deletion.
    let db = sled::open(data.path()).unwrap();
    let entries = audit_entries(&db);
    let (key, mut altered) = entries[5].clone();
    let original = db.get(&key).unwrap().unwrap();
    altered["event"]["applied"][0]["change"] = "delete".into();
    db.insert(&key, serde_json::to_vec(&altered).unwrap())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken at entry 6"), "{out}");

    // The same, with its hash recomputed by the tamperer: the next link breaks.
    let db = sled::open(data.path()).unwrap();
    let mut entry: returnee_shared::audit::AuditEntry = serde_json::from_value(altered).unwrap();
    entry.hash = entry.expected_hash();
    db.insert(&key, serde_json::to_vec(&entry).unwrap())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken at entry 7"), "{out}");

    // Restored, then the last entry removed: the store's head says so.
    let db = sled::open(data.path()).unwrap();
    db.insert(&key, original).unwrap();
    assert_eq!(audit_verify_in_process(&db), None);
    let last = audit_entries(&db).last().unwrap().0.clone();
    db.remove(&last).unwrap();
    db.flush().unwrap();
    drop(db);
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("removed"), "{out}");
}

/// The chain of entries read straight from the store (no head check).
fn audit_verify_in_process(db: &sled::Db) -> Option<u64> {
    let entries: Vec<returnee_shared::audit::AuditEntry> = audit_entries(db)
        .into_iter()
        .map(|(_, v)| serde_json::from_value(v).unwrap())
        .collect();
    returnee_shared::audit::verify_chain(entries, 0, returnee_shared::audit::GENESIS)
        .err()
        .map(|b| b.seq)
}

/// `returnee-server serve` with trace-level logs going to `log`.
fn server_with_trace_logs(data: &Path, log: &Path) -> (Child, String, String) {
    let mut child = Command::new(binary("returnee-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("server binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let url = url
        .strip_prefix("listening on ")
        .unwrap()
        .trim()
        .to_string();
    let code = lines.next().unwrap().unwrap();
    let code = code
        .strip_prefix("admin enrollment code: ")
        .unwrap()
        .trim()
        .to_string();
    (child, url, code)
}

#[test]
fn no_name_or_document_number_reaches_a_log_line_or_an_error_message() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("server.log");
    let (mut server, url, code) = server_with_trace_logs(&data.path().join("store"), &log);
    let mut messages = String::new();
    let mut run = |store: &Store, args: &[&str]| {
        let r = store.run(args);
        messages.push_str(&r.stderr);
        r
    };
    let admin = Store::init();
    run(&admin, &["enroll", "--server", &url, "--code", &code]).expect_code(0);
    let laptop = Store::init();
    let field_code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    run(
        &laptop,
        &["enroll", "--server", &url, "--code", field_code.trim()],
    )
    .expect_code(0);
    for i in 0..3 {
        add_named(&laptop, i);
    }
    // The same family twice: a duplicate warning names ids, not people.
    add_named(&laptop, 0);
    // Refused input that carries personal data.
    let refused = |name: &str, doc: &str, consent: bool| {
        let mut args = add_args("torkham", "2026-10-02", "0,0,0,1,0", "0,0,0,0,0");
        args.extend(
            [
                "--head-name",
                name,
                "--doc-type",
                "tazkira",
                "--doc-number",
                doc,
            ]
            .map(String::from),
        );
        if consent {
            args.push("--consent".into());
        }
        args
    };
    // Without consent; and with a number that is not one.
    let bad = [
        refused(NAMES[1], DOCS[1], false),
        refused(NAMES[2], "QQ#77341!", true),
    ];
    for args in &bad {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(run(&laptop, &args).code, 2);
    }
    let csv = data.path().join("bad.csv");
    std::fs::write(
        &csv,
        format!(
            "id,crossing,crossed_on,return_type,departure_province,destination_province,head_name,head_sex,doc_type,doc_number,consent,m_0_4,m_5_11,m_12_17,m_18_59,m_60_plus,f_0_4,f_5_11,f_12_17,f_18_59,f_60_plus,vulnerabilities,documentation,protection_referral,notes\n\
             ,torkham,2026-10-02,deported,PK-KP,AF-NAN,{},m,tazkira,{},no,0,0,0,1,0,0,0,0,0,0,,,,\n\
             ,torkham,2026-10-02,deported,PK-KP,AF-NAN,{},m,tazkira,{},yes,0,0,0,x,0,0,0,0,0,0,,,,\n",
            NAMES[1], DOCS[1], NAMES[2], DOCS[2]
        ),
    )
    .unwrap();
    assert_eq!(run(&laptop, &["import", csv.to_str().unwrap()]).code, 2);
    run(&laptop, &["sync"]).expect_code(0);
    run(&admin, &["sync"]).expect_code(0);
    run(&admin, &["duplicates"]).expect_code(0);
    run(&admin, &["report", "--by", "destination"]).expect_code(0);
    // The server refuses a field device's view of conflicts (a 403 logged at trace).
    assert_eq!(run(&laptop, &["admin", "devices"]).code, 1);

    std::thread::sleep(Duration::from_millis(300));
    let _ = server.kill();
    let _ = server.wait();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.lines().count() > 50 && logs.contains("TRACE"),
        "the server logged at trace level:\n{logs}"
    );
    for secret in NAMES.iter().chain(DOCS.iter()).chain(["QQ#77341!"].iter()) {
        assert!(
            !logs.contains(secret),
            "a server log line holds personal data"
        );
        assert!(
            !messages.contains(secret),
            "a CLI message holds personal data:\n{messages}"
        );
    }
    // The names did reach the server (this test could fail).
    admin
        .ok(&["list", "--json"])
        .contains(NAMES[0])
        .then_some(())
        .expect("synced");
}
