//! A laptop whose sled files are overwritten with random bytes, or
//! deleted: `returnee repair` rebuilds it from its outbox journal and the
//! next `returnee sync` brings back what it held, with real `returnee`
//! processes against a real server. Nothing unsent is lost; reports,
//! conflicts and duplicate lists are as before.

use std::path::Path;

use returnee_shared::wire::Role;
use returnee_tests::cluster::{Device, TestServer};
use returnee_tests::{Run, Store, add_args};
use serde_json::Value;

const PASS: &str = "a long passphrase for the repair test";

fn run(store: &Store, args: &[&str]) -> Run {
    let out = store
        .command(args)
        .env("RETURNEE_PASSPHRASE", PASS)
        .output()
        .expect("the returnee binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn ok(store: &Store, args: &[&str]) -> String {
    run(store, args).expect_code(0).stdout
}

fn add(store: &Store, day: u32, name: &str, doc: Option<&str>) -> String {
    let date = format!("2026-10-{day:02}");
    let mut args = add_args("torkham", &date, "1,0,1,0,0", "0,1,0,0,0");
    args.extend(["--head-name", name, "--consent", "--json"].map(String::from));
    if let Some(doc) = doc {
        args.extend(["--doc-type", "tazkira", "--doc-number", doc].map(String::from));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(store, &args).expect_code(0).json();
    out["id"].as_str().expect("the new family's id").to_string()
}

/// What the laptop shows: its families, report, conflicts and duplicates.
fn state(store: &Store) -> [Value; 4] {
    let json = |args: &[&str]| run(store, args).expect_code(0).json();
    let mut families = json(&["list", "--json"]);
    families
        .as_array_mut()
        .expect("a list")
        .sort_by_key(|f| f["id"].as_str().unwrap_or_default().to_string());
    [
        families,
        json(&["report", "--json"]),
        json(&["conflicts", "--json"]),
        json(&["duplicates", "--json"]),
    ]
}

fn pending(store: &Store) -> u64 {
    run(store, &["status", "--json"]).expect_code(0).json()["pending"]
        .as_u64()
        .unwrap()
}

/// sled's files of a store (not its outbox).
fn sled_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n == "conf" || n == "db" || n.starts_with("snap.")
        })
        .collect()
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = returnee_tests::Rng::new(seed);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn a_damaged_encrypted_laptop_is_repaired_and_sync_brings_back_everything() {
    let server = TestServer::start();
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);
    let enroll = |store: &Store| {
        let code = admin.mint(Role::Supervisor, &["torkham"]);
        ok(
            store,
            &["enroll", "--server", &server.url(), "--code", &code],
        );
    };
    let laptop = Store::empty();
    ok(&laptop, &["init", "--encrypt", "--device-name", "field"]);
    enroll(&laptop);
    let other = Store::init();
    enroll(&other);

    // Families of both laptops, one edited on both (a conflict), two
    // alike (a duplicate pair).
    let mine: Vec<String> = (1..=4)
        .map(|i| add(&laptop, i, &format!("Mirwais Laptopzai {i}"), None))
        .collect();
    add(&other, 9, "Gulalai Otherkhel", None);
    add(&other, 10, "Gulalai Otherkhel", None);
    ok(&laptop, &["sync"]);
    ok(&other, &["sync"]);
    ok(
        &other,
        &["edit", &mine[0], "--notes", "from the other laptop"],
    );
    ok(&laptop, &["edit", &mine[0], "--notes", "from this laptop"]);
    ok(&other, &["sync"]);
    ok(&laptop, &["sync"]);

    // Unsent work, one family with a document number.
    let secret_name = "Spozhmai Unsentzai";
    let secret_doc = "1400-0101-77441";
    add(&laptop, 20, secret_name, Some(secret_doc));
    ok(&laptop, &["edit", &mine[1], "--notes", "unsent edit"]);
    assert_eq!(pending(&laptop), 2);
    // The outbox is sealed like the rest of an encrypted store.
    let outbox = laptop.path().join("outbox");
    let mut raw = Vec::new();
    for f in std::fs::read_dir(&outbox).unwrap() {
        raw.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.len() > 100);
    for needle in [secret_name, secret_doc, "Mirwais", "unsent edit"] {
        assert!(!raw.contains(needle), "{needle} in the outbox");
    }
    let before = state(&laptop);
    assert_eq!(before[2].as_array().unwrap().len(), 1, "one conflict");
    assert!(
        !before[3].as_array().unwrap().is_empty(),
        "a duplicate pair"
    );

    // 1: sled's files overwritten with random bytes.
    for (i, f) in sled_files(laptop.path()).iter().enumerate() {
        let len = std::fs::metadata(f).unwrap().len().max(64) as usize;
        std::fs::write(f, random_bytes(len, i as u64)).unwrap();
    }
    let failed = run(&laptop, &["list"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("returnee repair"),
        "{}",
        failed.stderr
    );
    let repaired = ok(&laptop, &["repair"]);
    assert!(
        repaired.contains("rebuilt  the store from its outbox: 2 unsent changes"),
        "{repaired}"
    );
    assert!(repaired.contains("took"), "{repaired}");
    assert_eq!(pending(&laptop), 2);
    let synced = ok(&laptop, &["sync"]);
    assert!(synced.contains("pushed 2 changes"), "{synced}");
    assert_eq!(pending(&laptop), 0);
    assert_eq!(state(&laptop), before);
    // The unsent work reached the server.
    admin.sync();
    let views = admin.views();
    assert_eq!(views.len(), 7);
    assert!(
        views
            .iter()
            .any(|v| v.family.fields.head_name.as_deref() == Some(secret_name))
    );
    assert!(
        views
            .iter()
            .any(|v| v.family.fields.notes.as_deref() == Some("unsent edit"))
    );

    // 2: more unsent work, then sled's files deleted.
    ok(
        &laptop,
        &["edit", &mine[2], "--notes", "second unsent edit"],
    );
    let after_edit = state(&laptop);
    for f in sled_files(laptop.path()) {
        std::fs::remove_file(f).unwrap();
    }
    let repaired = ok(&laptop, &["repair", "--json"]);
    let report: Value = serde_json::from_str(&repaired).unwrap();
    assert_eq!(report["rebuilt"], true, "{report}");
    assert_eq!(report["unsent"], 1, "{report}");
    ok(&laptop, &["sync"]);
    assert_eq!(state(&laptop), after_edit);
    assert_eq!(pending(&laptop), 0);

    // A sound store: checked, nothing rebuilt.
    let sound = ok(&laptop, &["repair"]);
    assert!(
        sound.contains("the store is sound; nothing rebuilt"),
        "{sound}"
    );
}

#[test]
fn an_outbox_damaged_before_its_tail_is_named_by_segment_and_offset() {
    let none = Store::empty().run(&["repair"]).expect_code(1);
    assert!(none.stderr.contains("returnee init"), "{}", none.stderr);
    let laptop = Store::init();
    for day in 1..=3 {
        let date = format!("2026-10-{day:02}");
        let args = add_args("torkham", &date, "1,0,0,0,0", "0,1,0,0,0");
        laptop.run(&args).expect_code(0);
    }
    let segment = std::fs::read_dir(laptop.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    // A byte inside the second frame's payload: frames after it are whole.
    bytes[16 + 8 + 40] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    for f in sled_files(laptop.path()) {
        std::fs::remove_file(f).unwrap();
    }
    let run = laptop.run(&["repair"]).expect_code(1);
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(run.stderr.contains(&name), "{}", run.stderr);
    assert!(run.stderr.contains("at byte"), "{}", run.stderr);
    assert!(run.stderr.contains("damaged"), "{}", run.stderr);
}
