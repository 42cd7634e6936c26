//! Issue 20, point 5, end to end: `returnee erase` on the real binaries.
//!
//! A supervisor erases a family's personal data; after everyone syncs, no
//! byte of the server's data folder and of any laptop's store folder holds
//! the head's name, document number or notes (a worker's unsent edit
//! naming the family included), every report is unchanged, the audit
//! trail says who erased and why (not what), and the family still counts.

use std::path::Path;

use chrono::Utc;
use returnee_shared::wire::Role;
use returnee_tests::cluster::{Device, ServerProcess};
use returnee_tests::{Store, add_named_with};

const NAME: &str = "Zarghona Wardak";
const DOC: &str = "TZ5550123";
const NOTE: &str = "lives by the Kama bridge";
const LATE_NOTE: &str = "met Zarghona's brother";
const OTHER: &str = "Malalai Kakar";

/// Every byte of every file under `dir`.
fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(raw_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    out
}

/// Whether `bytes` hold `text`, in any case (the duplicate index keeps
/// names as lower-case tokens).
/// Files under `dir` that others than the owner may read.
fn readable_by_others(dir: &Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(readable_by_others(&path));
        } else if std::fs::metadata(&path).unwrap().permissions().mode() & 0o077 != 0 {
            out.push(path);
        }
    }
    out
}

fn holds(bytes: &[u8], text: &str) -> bool {
    let text = text.to_lowercase();
    bytes
        .windows(text.len())
        .any(|w| w.to_ascii_lowercase() == text.as_bytes())
}

fn laptop(server: &ServerProcess, admin: &Device, role: Role) -> Store {
    let s = Store::init();
    let code = admin.mint(role, &[]);
    s.ok(&["enroll", "--server", &server.url, "--code", &code]);
    s
}

const PASS: &str = "long enough passphrase for tests";

/// `returnee` on an encrypted store, the passphrase in the environment.
#[track_caller]
fn sealed_ok(s: &Store, args: &[&str]) -> String {
    let out = s
        .command(args)
        .env("RETURNEE_PASSPHRASE", PASS)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn named(s: &Store, day: &str, name: &str, doc: &str, note: &str) -> String {
    let more = ["--vulnerability", "serious-medical", "--notes", note];
    add_named_with(s, "torkham", day, name, doc, &more)
}

#[test]
fn an_erased_family_leaves_no_trace_in_any_store_and_every_count_stays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = ServerProcess::start(&data, "127.0.0.1:0");
    let mut admin = Device::new("admin");
    admin.enroll(
        &server.url,
        server.admin_code.as_deref().expect("first start"),
    );
    let (w1, w2, sup) = (
        laptop(&server, &admin, Role::Field),
        laptop(&server, &admin, Role::Field),
        laptop(&server, &admin, Role::Supervisor),
    );
    // An encrypted laptop: its copy of the family is erased too (its
    // files, sealed, would not show the name anyway).
    let sealed = Store::empty();
    sealed_ok(&sealed, &["init", "--encrypt", "--device-name", "sealed"]);
    let code = admin.mint(Role::Field, &[]);
    sealed_ok(
        &sealed,
        &["enroll", "--server", &server.url, "--code", &code],
    );
    let day = (Utc::now().date_naive() - chrono::Days::new(3)).to_string();
    let family = named(&w1, &day, NAME, DOC, NOTE);
    named(&w1, &day, OTHER, "TZ1110001", "a neighbour");
    for s in [&w1, &w2, &sup] {
        s.ok(&["sync"]);
    }
    sealed_ok(&sealed, &["sync"]);
    assert!(sealed_ok(&sealed, &["show", &family]).contains(NAME));
    // A laptop that purged the family (it stays on the server): what the
    // purge left in its files goes too when the erasure arrives.
    let purged = laptop(&server, &admin, Role::Field);
    purged.ok(&["sync"]);
    let tomorrow = (Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    purged.ok(&["purge", "--synced-before", &tomorrow, "--yes"]);
    assert!(purged.run(&["show", &family]).code != 0, "purged");
    // Offline, a worker adds a note naming the family: unsent when the
    // erasure is made.
    w2.ok(&["edit", &family, "--notes", LATE_NOTE]);
    let report = |s: &Store| s.json(&["report", "--json", "--by", "crossing"]);
    let before = (report(&sup), report(&w1));
    assert_eq!(before.0["families"], serde_json::json!(2));
    assert!(holds(&raw_bytes(&data), NAME), "the server held the name");
    assert!(holds(&raw_bytes(sup.path()), NAME), "so did the laptops");
    assert!(holds(&raw_bytes(w2.path()), LATE_NOTE));

    // Only a supervisor or admin erases, with a reason, and a script says --yes.
    let refused = w1
        .run(&["erase", &family, "--reason", "asked by the family", "--yes"])
        .expect_code(2);
    assert!(refused.stderr.contains("supervisor"), "{}", refused.stderr);
    let no_yes = sup
        .run(&["erase", &family, "--reason", "asked by the family"])
        .expect_code(2);
    assert!(no_yes.stderr.contains("--yes"), "{}", no_yes.stderr);
    sup.run(&["erase", &family, "--reason", " ", "--yes"])
        .expect_code(2);
    let out = sup.ok(&["erase", &family, "--reason", "asked by the family", "--yes"]);
    assert!(out.contains("erased"), "{out}");
    assert!(
        !holds(&raw_bytes(sup.path()), NAME),
        "erased on the laptop at once"
    );

    for s in [&sup, &w1, &w2, &sup] {
        s.ok(&["sync"]);
    }
    sealed_ok(&sealed, &["sync"]);
    let shown = sealed_ok(&sealed, &["show", &family]);
    assert!(
        shown.contains("ERASED") && !shown.contains("Zarghona"),
        "{shown}"
    );

    purged.ok(&["sync"]);
    let bytes = raw_bytes(purged.path());
    for gone in ["Zarghona", "Wardak", DOC, NOTE] {
        assert!(
            !holds(&bytes, gone),
            "the purged laptop's store holds {gone}"
        );
    }
    for (who, s) in [("w1", &w1), ("w2", &w2), ("supervisor", &sup)] {
        let shown = s.json(&["show", &family, "--json"]);
        for field in ["head_name", "doc_number", "notes", "protection_referral"] {
            assert!(shown[field].is_null(), "{who} shows {field}: {shown}");
        }
        assert_eq!(shown["vulnerabilities"], serde_json::json!([]), "{who}");
        assert!(
            s.ok(&["show", &family]).contains("ERASED"),
            "{who}: show says the data was erased"
        );
        // A name cannot be typed in again; other fields still change.
        let again = s
            .run(&["edit", &family, "--head-name", "Zarghona"])
            .expect_code(2);
        assert!(again.stderr.contains("erased"), "{}", again.stderr);
        let bytes = raw_bytes(s.path());
        for gone in ["Zarghona", "Wardak", DOC, NOTE, "Kama bridge"] {
            assert!(!holds(&bytes, gone), "{who}'s store holds {gone}");
        }
        assert!(holds(&bytes, OTHER), "{who}: other families are untouched");
        let open = readable_by_others(s.path());
        assert!(
            open.is_empty(),
            "{who}'s rewritten files are not private: {open:?}"
        );
    }
    assert_eq!(
        (report(&sup), report(&w1)),
        before,
        "every count is unchanged"
    );
    let bytes = raw_bytes(&data);
    for gone in ["Zarghona", "Wardak", DOC, NOTE, "Kama bridge"] {
        assert!(
            !holds(&bytes, gone),
            "the server's data folder holds {gone}"
        );
    }
    assert!(holds(&bytes, OTHER));
    let open = readable_by_others(&data);
    assert!(
        open.is_empty(),
        "the server's rewritten files are not private: {open:?}"
    );

    // The audit trail: who erased, and why; never what.
    let page = admin.client().audit(0, 1000).unwrap();
    let trail = serde_json::to_string(&page).unwrap();
    assert!(trail.contains("\"erase\"") && trail.contains("asked by the family"));
    assert!(!trail.contains("Zarghona"));
}
