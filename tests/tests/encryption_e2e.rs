//! Encryption at rest, through the real `returnee` binary: an encrypted
//! store's files never show a name, a document number or a note; a wrong or
//! missing passphrase is refused before anything changes; an encrypted store
//! syncs; no sled key of any store holds a name or a document number; and
//! human tables mask document numbers.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{NaiveDate, Utc};
use returnee_shared::duplicates::{name_key, name_tokens, normalize_doc};
use returnee_shared::wire::Role;
use returnee_shared::{DocType, FamilyFields, Members, ReturnType, Sex};
use returnee_tests::cluster::{Device, TestServer};
use returnee_tests::{Run, Store, add_args};
use serde_json::Value;

const PASS: &str = "seven tired camels at dawn";

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A distinctive, deterministic word for `i` (letters only).
fn word(i: usize, salt: usize) -> String {
    const SYL: [&str; 16] = [
        "zar", "khp", "wal", "gho", "rin", "taq", "bez", "dun", "mol", "yas", "qir", "fek", "lux",
        "sot", "vah", "nij",
    ];
    let mut n = i * 7919 + salt * 104_729 + 12_345;
    let mut w = String::new();
    for _ in 0..4 {
        w.push_str(SYL[n % 16]);
        n /= 16;
    }
    let mut c = w.chars();
    let first = c.next().unwrap().to_ascii_uppercase();
    format!("{first}{}", c.as_str())
}

/// One family's sensitive values.
#[derive(Debug, Clone)]
struct Secret {
    name: String,
    doc: String,
    note: String,
}

impl Secret {
    fn new(i: usize, salt: usize) -> Secret {
        Secret {
            name: format!("{} {}", word(i, salt), word(i, salt + 1)),
            doc: format!("TZ-{:04}-{:06}", i + salt * 1000, 400_000 + i * 37),
            note: format!("hidden-note {} {}", word(i, salt + 2), i),
        }
    }

    /// Every spelling of a value that must not show in an encrypted store's files.
    fn needles(&self) -> Vec<String> {
        let tokens = name_tokens(&self.name);
        let mut v = vec![
            self.name.clone(),
            self.name.to_lowercase(),
            self.name.to_uppercase(),
            self.doc.clone(),
            self.doc.to_lowercase(),
            normalize_doc(&self.doc).unwrap(),
            self.note.clone(),
            tokens.join(" "),
        ];
        v.extend(tokens.iter().filter(|t| t.len() >= 8).cloned());
        v.extend(name_key(&tokens));
        v
    }

    fn add_args(&self, day: &str) -> Vec<String> {
        let mut args = add_args("torkham", day, "1,0,1,1,0", "0,1,0,1,0");
        args.extend(
            [
                "--head-name",
                &self.name,
                "--head-sex",
                "m",
                "--doc-type",
                "tazkira",
                "--doc-number",
                &self.doc,
                "--consent",
                "--notes",
                &self.note,
            ]
            .map(str::to_string),
        );
        args
    }

    fn fields(&self) -> FamilyFields {
        FamilyFields {
            crossing: "chaman".into(),
            crossed_on: today() - chrono::Days::new(3),
            return_type: ReturnType::Spontaneous,
            departure_province: "PK-BA".into(),
            destination_province: "AF-KAN".into(),
            members: Members {
                males: [0, 1, 0, 1, 0],
                females: [1, 0, 0, 1, 0],
            },
            head_name: Some(self.name.clone()),
            head_sex: Some(Sex::Female),
            doc_type: DocType::Tazkira,
            doc_number: Some(self.doc.clone()),
            consent: true,
            vulnerabilities: Default::default(),
            documentation: Default::default(),
            protection_referral: None,
            notes: Some(self.note.clone()),
            extra: Default::default(),
        }
    }
}

/// Runs `returnee` on `store` with the passphrase in the environment.
fn run_with(store: &Store, pass: &str, args: &[&str]) -> Run {
    let out = store
        .command(args)
        .env("RETURNEE_PASSPHRASE", pass)
        .output()
        .expect("returnee runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn ok(store: &Store, args: &[&str]) -> String {
    run_with(store, PASS, args).expect_code(0).stdout
}

#[track_caller]
fn json(store: &Store, args: &[&str]) -> Value {
    run_with(store, PASS, args).expect_code(0).json()
}

fn encrypted_store() -> Store {
    let s = Store::empty();
    let out = ok(&s, &["init", "--encrypt", "--device-name", "crypt-laptop"]);
    assert!(out.contains("encrypted"), "{out}");
    s
}

/// Every run of 4 or more printable ASCII bytes in the files under `dir`,
/// one per line: every name, number and note of these tests is printable
/// ASCII, and the scan stays fast (a sealed store has few such runs).
fn raw_text(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<u8>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.extend(std::fs::read(&p).unwrap());
                out.push(0);
            }
        }
    }
    let mut bytes = Vec::new();
    walk(dir, &mut bytes);
    assert!(bytes.len() > 1000, "the store has files");
    let mut text = String::new();
    for run in bytes.split(|b| !(0x20..0x7f).contains(b)) {
        if run.len() >= 4 {
            text.push_str(std::str::from_utf8(run).expect("ASCII"));
            text.push('\n');
        }
    }
    text
}

/// The needles of `secrets` found in the store's files.
fn leaks(dir: &Path, secrets: &[Secret]) -> Vec<String> {
    let text = raw_text(dir);
    secrets
        .iter()
        .flat_map(Secret::needles)
        .filter(|n| text.contains(n.as_str()))
        .collect()
}

const CSV_HEADER: &str = "crossing,crossed_on,return_type,departure_province,destination_province,head_name,head_sex,doc_type,doc_number,consent,m_0_4,m_5_11,m_12_17,m_18_59,m_60_plus,f_0_4,f_5_11,f_12_17,f_18_59,f_60_plus,vulnerabilities,documentation,protection_referral,notes";

fn write_csv(path: &Path, secrets: &[Secret]) {
    let day = (today() - chrono::Days::new(5)).to_string();
    let mut text = format!("{CSV_HEADER}\n");
    for (i, s) in secrets.iter().enumerate() {
        let dest = ["AF-NAN", "AF-KAB", "AF-KAN"][i % 3];
        text.push_str(&format!(
            "torkham,{day},spontaneous,PK-KP,{dest},{},f,passport,{},yes,{},0,0,1,0,0,1,0,1,0,,,,{}\n",
            s.name,
            s.doc,
            i % 3,
            s.note
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// A store (plain or encrypted) with `added` families from `add` and
/// `imported` from a CSV; returns their secrets.
fn populate(store: &Store, salt: usize, added: usize, imported: usize) -> Vec<Secret> {
    let day = (today() - chrono::Days::new(2)).to_string();
    let mut secrets = Vec::new();
    for i in 0..added {
        let s = Secret::new(i, salt);
        let args = s.add_args(&day);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(store, &args);
        secrets.push(s);
    }
    let csv_secrets: Vec<Secret> = (added..added + imported)
        .map(|i| Secret::new(i, salt))
        .collect();
    let csv = store.path().with_extension("csv");
    write_csv(&csv, &csv_secrets);
    let summary = json(store, &["import", "--json", csv.to_str().unwrap()]);
    assert_eq!(summary["added"], imported as u64, "{summary}");
    std::fs::remove_file(&csv).unwrap();
    secrets.extend(csv_secrets);
    secrets
}

/// Families listed as JSON, sorted by id, as text.
fn list_json(store: &Store) -> Value {
    json(store, &["list", "--json"])
}

#[test]
fn an_encrypted_store_shows_no_name_document_or_note_and_a_plain_one_does() {
    let enc = encrypted_store();
    let secrets = populate(&enc, 1, 5, 300);
    // Edits, a delete and a duplicate check go through the sealed paths too.
    let list = list_json(&enc);
    let id_of = |s: &Secret| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["head_name"] == s.name.as_str())
            .map(|r| r["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let first = id_of(&secrets[0]);
    ok(&enc, &["edit", &first, "--notes", &secrets[1].note]);
    ok(&enc, &["delete", &id_of(&secrets[2])]);
    ok(&enc, &["duplicates"]);
    ok(&enc, &["status"]);
    assert_eq!(leaks(enc.path(), &secrets), Vec::<String>::new());

    // The same check finds them in a plain store: it can fail.
    let plain = Store::init();
    let plain_secrets = populate(&plain, 1, 5, 300);
    let found = leaks(plain.path(), &plain_secrets);
    assert!(
        plain_secrets
            .iter()
            .all(|s| found.contains(&s.name) && found.contains(&s.doc)),
        "the plain store's files should show every name and document number"
    );

    // With the passphrase, the encrypted store reads like the plain one.
    let records = list_json(&enc);
    assert_eq!(records.as_array().unwrap().len(), 304);
    let report = json(&enc, &["report", "--json"]);
    assert_eq!(report["families"], 304, "{report}");
    let imported = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["head_name"] == secrets[200].name.as_str())
        .expect("an imported family");
    assert_eq!(imported["doc_number"], secrets[200].doc.as_str());
    assert_eq!(imported["notes"], secrets[200].note.as_str());
    let shown = ok(&enc, &["show", &first]);
    assert!(shown.contains(&secrets[0].doc), "{shown}");
    assert!(shown.contains(&secrets[0].name), "{shown}");
    let shown = json(&enc, &["show", &first, "--json"]);
    assert_eq!(shown["notes"], secrets[1].note.as_str());
}

#[test]
fn a_wrong_or_missing_passphrase_is_refused_and_changes_nothing() {
    let store = encrypted_store();
    populate(&store, 2, 3, 20);
    let before = list_json(&store);
    let status_before = json(&store, &["status", "--json"]);

    for args in [
        &["list"][..],
        &["add", "--crossing", "torkham"][..],
        &["report", "--json"][..],
        &["init"][..],
        &["purge", "--synced-before", "2020-01-01"][..],
    ] {
        let run = run_with(&store, "not the passphrase", args).expect_code(2);
        assert!(
            run.stderr.contains("wrong passphrase"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        let run = store.run(args).expect_code(2);
        assert!(
            run.stderr.contains("RETURNEE_PASSPHRASE") && run.stderr.contains("terminal"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // A wrong passphrase does not re-encrypt either.
    run_with(&store, "not the passphrase", &["init", "--encrypt"]).expect_code(2);
    assert_eq!(list_json(&store), before);
    assert_eq!(json(&store, &["status", "--json"]), status_before);

    // Encryption is chosen when the store is made.
    let plain = Store::init();
    let run = run_with(&plain, PASS, &["init", "--encrypt"]).expect_code(2);
    assert!(run.stderr.contains("not encrypted"), "{}", run.stderr);
    // A plain store ignores a passphrase.
    assert_eq!(json(&plain, &["report", "--json"])["families"], 0);
    // Without a passphrase, `init --encrypt` says where to give one.
    let fresh = Store::empty();
    let run = fresh.run(&["init", "--encrypt"]).expect_code(2);
    assert!(run.stderr.contains("RETURNEE_PASSPHRASE"), "{}", run.stderr);
    let run = run_with(&fresh, "short", &["init", "--encrypt"]).expect_code(2);
    assert!(run.stderr.contains("too short"), "{}", run.stderr);
}

#[test]
fn an_encrypted_store_syncs_and_pulls_other_devices_families() {
    let server = TestServer::start();
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);

    let store = encrypted_store();
    let code = admin.mint(Role::Field, &[]);
    ok(
        &store,
        &["enroll", "--server", &server.url(), "--code", &code],
    );
    let mine = populate(&store, 3, 4, 40);
    let summary = json(&store, &["sync", "--json"]);
    assert_eq!(summary["pushed"], 44, "{summary}");

    // Another device's families, with names and numbers of their own.
    let mut other = Device::new("other");
    other.enroll(&server.url(), &admin.mint(Role::Field, &[]));
    let theirs: Vec<Secret> = (0..6).map(|i| Secret::new(i, 4)).collect();
    for s in &theirs {
        other.add(s.fields());
    }
    other.sync();

    let summary = json(&store, &["sync", "--json"]);
    assert_eq!(summary["pulled"], 6, "{summary}");
    let records = list_json(&store);
    let names: BTreeSet<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["head_name"].as_str().unwrap())
        .collect();
    let wanted: BTreeSet<&str> = mine
        .iter()
        .chain(&theirs)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, wanted);
    assert_eq!(json(&store, &["report", "--json"])["families"], 50);

    let all: Vec<Secret> = mine.into_iter().chain(theirs).collect();
    assert_eq!(leaks(store.path(), &all), Vec::<String>::new());
    // The enrollment credential is sealed too.
    let token = admin.store.enrollment().unwrap().unwrap().token;
    assert!(!raw_text(store.path()).contains(&token));
}

/// Every key of a store that the binary has let go of.
fn raw_keys(dir: &Path) -> Vec<Vec<u8>> {
    let db = sled::open(dir).expect("open the store's files");
    db.iter().keys().map(|k| k.unwrap().to_vec()).collect()
}

#[test]
fn no_key_of_a_plain_store_holds_or_is_derived_from_a_name_or_document() {
    let a = Store::init();
    let secrets = populate(&a, 5, 3, 60);
    let b = Store::init();
    // The same families in a second store, imported.
    let csv = b.path().with_extension("csv");
    write_csv(&csv, &secrets[3..]);
    b.ok(&["import", csv.to_str().unwrap()]);
    // Duplicates are looked for from the values alone.
    assert!(json(&a, &["duplicates", "--json"]).is_array());

    for key in raw_keys(a.path()).iter().chain(&raw_keys(b.path())) {
        // Every key is metadata, or a prefix then ids, slots or sequence
        // numbers: packs (16 bytes), queue entries, values waiting beside
        // the packs and runs of places (8), dismissed pairs (32).
        let shape_known = key.starts_with(b"m/")
            || ([&b"D/"[..], b"S/", b"F/", b"I/", b"c/", b"g/", b"h/"]
                .iter()
                .any(|p| key.starts_with(p))
                && key.len() == 2 + 16)
            || ((key.starts_with(b"q/") && key.len() == 2 + 8)
                || (key.starts_with(b"r/") && key.len() == 2 + 8)
                || (key.starts_with(b"J/") && key.len() == 2 + 8)
                || (key.starts_with(b"qd/") && key.len() == 3 + 8))
            || (key.starts_with(b"x/") && key.len() == 2 + 32);
        assert!(shape_known, "a key of unknown shape: {key:?}");
        let text = String::from_utf8_lossy(key);
        for s in &secrets {
            for n in s.needles() {
                assert!(!text.contains(&n), "a key holds a name or document number");
            }
        }
    }
    // The values of a plain store do hold them (the scan sees the store).
    assert!(raw_text(a.path()).contains(&secrets[0].name));
}

#[test]
fn tables_mask_document_numbers_and_json_and_show_keep_them() {
    let store = encrypted_store();
    let s = Secret::new(1, 6);
    let day = (today() - chrono::Days::new(1)).to_string();
    let args = s.add_args(&day);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = ok(&store, &args).trim().to_string();
    let last4 = &s.doc[s.doc.len() - 4..];

    let table = ok(&store, &["list"]);
    assert!(table.contains(&format!("…{last4}")), "{table}");
    assert!(!table.contains(&s.doc), "{table}");
    assert!(!table.contains(&s.doc[..s.doc.len() - 4]), "{table}");
    assert_eq!(list_json(&store)[0]["doc_number"], s.doc.as_str());
    assert!(ok(&store, &["show", &id]).contains(&s.doc));
    assert_eq!(
        json(&store, &["show", &id, "--json"])["doc_number"],
        s.doc.as_str()
    );
}

#[test]
fn a_passphrase_change_rewraps_the_key_the_old_one_is_refused_and_the_data_stays() {
    let store = encrypted_store();
    let secrets = populate(&store, 7, 3, 2);
    let before = list_json(&store);
    let sealed_before = raw_text(store.path());
    const NEW: &str = "four quiet rivers by night";

    // Without a terminal and without RETURNEE_PASSPHRASE_NEW: says how.
    let run = run_with(&store, PASS, &["passphrase", "change"]).expect_code(2);
    assert!(
        run.stderr.contains("RETURNEE_PASSPHRASE_NEW"),
        "{}",
        run.stderr
    );
    // A wrong current passphrase changes nothing.
    let change = |old: &str| {
        let out = store
            .command(&["passphrase", "change"])
            .env("RETURNEE_PASSPHRASE", old)
            .env("RETURNEE_PASSPHRASE_NEW", NEW)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = change("not the passphrase");
    assert_eq!(code, Some(2));
    assert!(err.contains("wrong passphrase"), "{err}");
    assert_eq!(list_json(&store), before);

    let (code, out, err) = change(PASS);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("passphrase changed"), "{out}");
    // The old passphrase is refused; the new one opens the same families.
    let run = run_with(&store, PASS, &["list", "--json"]).expect_code(2);
    assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
    let after = run_with(&store, NEW, &["list", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(after, before);
    // Still sealed: no name, document or note on disk.
    assert!(leaks(store.path(), &secrets).is_empty());
    // The values were not re-encrypted: the sealed bytes of the families
    // are the ones written before (only the header changed).
    let sealed_after = raw_text(store.path());
    let kept = sealed_before
        .lines()
        .filter(|l| l.len() >= 16 && sealed_after.contains(*l))
        .count();
    assert!(kept > 0, "the sealed values were rewritten");

    // A plain store has no passphrase to change.
    let plain = Store::init();
    let run = plain.run(&["passphrase", "change"]).expect_code(2);
    assert!(run.stderr.contains("not encrypted"), "{}", run.stderr);
}
