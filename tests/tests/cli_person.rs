//! The CLI as a person uses it: tables that fit the terminal, finding a
//! family by name or document number, words that fit, refused families,
//! safety nets. The real `returnee` binary, as a subprocess.

use returnee_tests::cluster::TestServer;
use returnee_tests::{Run, Store, add_args, add_named};
use serde_json::Value;

/// `returnee` on `store` with `COLUMNS` set, as a terminal of that width would.
fn at_width(store: &Store, columns: u16, args: &[&str]) -> String {
    let out = store
        .command(args)
        .env("COLUMNS", columns.to_string())
        .output()
        .expect("the returnee binary runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_fits_80_columns_and_shows_names_and_short_ids_that_work() {
    let store = Store::init();
    let gul = add_named(
        &store,
        "ghulam-khan",
        "2026-12-03",
        "Haji Gul Mohammad Abdulrahman Khan Wardak",
        "1401-0123-45678",
    );
    // --from and --to, the older names of --departure and --destination, still work on add.
    let mut args = add_args("angoor-adda", "2026-12-04", "0,0,0,1,0", "0,0,0,1,0");
    let at = args.iter().position(|a| a == "--departure").unwrap();
    args.drain(at..at + 4);
    args.extend(["--from", "Punjab", "--to", "Kabul"].map(String::from));
    let anon = store.ok(&args).trim().to_string();

    let table = at_width(&store, 80, &["list"]);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80: {line:?}\n{table}"
        );
    }
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "header, two families, total:\n{table}");
    assert!(
        rows[0].contains("name") && rows[0].contains("sync"),
        "{table}"
    );
    let gul_row = rows.iter().find(|r| r.contains("ghulam-khan")).unwrap();
    assert!(gul_row.contains("Haji Gul Moham"), "{table}");
    assert!(gul_row.contains("…"), "a long name is cut to fit: {table}");
    assert!(
        gul_row.contains("2026-12-03") && gul_row.contains("1/1/3"),
        "{table}"
    );
    assert!(gul_row.contains("here only"), "{table}");
    assert!(
        rows.iter()
            .any(|r| r.contains("angoor-adda") && r.contains("—"))
    );
    assert_eq!(rows[3], "2 families");

    // The short id shown is taken by show.
    let short = gul_row.split_whitespace().next().unwrap();
    assert!(short.len() >= 8 && short.len() < 32, "{short}");
    let shown = store.json(&["show", short, "--json"]);
    assert_eq!(shown["id"], gul.as_str());
    assert_eq!(shown["sync"], "saved-here-only");
    assert!(store.ok(&["show", short]).contains("saved here only"));

    // Wider terminals get more columns; --wide gets every one and full ids.
    let wide = at_width(&store, 140, &["list"]);
    assert!(
        wide.contains("PK-PB→AF-KAB") && wide.contains("…5678"),
        "{wide}"
    );
    let all = at_width(&store, 80, &["list", "--wide"]);
    assert!(
        all.contains(&anon) && all.contains("Abdulrahman Khan Wardak"),
        "{all}"
    );

    // --departure/--destination are the names on add and edit; --from/--to
    // still work there.
    let listed = store.json(&["list", "--json"]);
    let anon_rec = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == anon.as_str())
        .unwrap();
    assert_eq!(anon_rec["departure_province"], "PK-PB");
    assert_eq!(anon_rec["destination_province"], "AF-KAB");
    store.ok(&["edit", &anon, "--departure", "Sindh", "--to", "Herat"]);
    let shown = store.json(&["show", &anon, "--json"]);
    assert_eq!(shown["departure_province"], "PK-SD");
    assert_eq!(shown["destination_province"], "AF-HER");
}

#[test]
fn find_matches_other_spellings_and_document_numbers_best_first() {
    let store = Store::init();
    let gul = add_named(
        &store,
        "torkham",
        "2026-12-03",
        "Gul Mohammad Khan",
        "1401-0123-45678",
    );
    let only_gul = add_named(&store, "torkham", "2026-12-02", "Gul", "AB 998877");
    let other = add_named(&store, "chaman", "2026-12-01", "Abdul Karim", "PK-555-111");

    // "Muhammad" is how another worker spells it; the whole name ranks first.
    let found = store.json(&["find", "Gul Muhammad", "--json"]);
    assert_eq!(ids(&found)[0], gul, "{found}");
    assert!(!ids(&found).contains(&other), "{found}");
    assert_eq!(found[0]["matched"], "name");
    assert_eq!(found[0]["sync"], "saved-here-only");

    let found = store.json(&["find", "gul khan", "--json"]);
    assert_eq!(ids(&found), vec![only_gul.clone(), gul.clone()], "{found}");

    // A document number, typed with other spaces and dashes.
    let found = store.json(&["find", "140101234 5678", "--json"]);
    assert_eq!(ids(&found), vec![gul.clone()], "{found}");
    assert_eq!(found[0]["matched"], "document");
    let found = store.json(&["find", "pk555111", "--json"]);
    assert_eq!(ids(&found), vec![other.clone()], "{found}");

    // The table, and list --search, say the same.
    let table = at_width(&store, 80, &["find", "abdel kareem"]);
    assert!(
        table.contains("Abdul Karim") && table.ends_with("1 family\n"),
        "{table}"
    );
    let list = store.json(&["list", "--search", "Abdul Karim", "--json"]);
    assert_eq!(ids(&list), vec![other.clone()]);
    let none = store.run(&["find", "Zarghuna"]).expect_code(0);
    assert!(none.stdout.contains("no family matches"), "{}", none.stdout);

    // A deleted family is not found.
    store.ok(&["delete", &other, "--yes"]);
    assert_eq!(
        store.json(&["find", "pk555111", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn filter_errors_speak_of_filters_and_an_empty_range_is_refused() {
    let store = Store::init();
    let run = store.run(&["list", "--from", "Punjab"]).expect_code(2);
    assert!(run.stderr.contains("the filter is wrong"), "{}", run.stderr);
    assert!(!run.stderr.contains("not saved"), "{}", run.stderr);
    assert!(run.stderr.contains("--departure"), "{}", run.stderr);
    assert!(run.stderr.contains("  - from: "), "{}", run.stderr);
    let run = store
        .run(&["list", "--from", "2026-12-04", "--to", "2026-12-01"])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("ends (2026-12-01) before it starts (2026-12-04)"),
        "{}",
        run.stderr
    );
}

fn stderr_of(run: &Run) -> &str {
    &run.stderr
}

#[test]
fn a_refused_family_makes_sync_exit_1_and_status_says_what_to_do() {
    let server = TestServer::start();
    let admin = returnee_tests::enrolled_admin(&server);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);

    // Recorded before enrolling (any site then), sent after: chaman is not
    // this laptop's site.
    let laptop = Store::init();
    let stray = add_named(&laptop, "chaman", "2026-12-01", "Zaman", "X-1");
    let kept = add_named(&laptop, "torkham", "2026-12-01", "Wali", "X-2");
    laptop.ok(&["enroll", "--server", &server.url(), "--code", code.trim()]);
    let pending = laptop.json(&["list", "--pending", "--json"]);
    assert_eq!(ids(&pending).len(), 2);

    let run = laptop.run(&["sync"]).expect_code(1);
    let err = stderr_of(&run);
    assert!(err.contains("refused 1 change"), "{err}");
    assert!(err.contains("returnee status"), "{err}");

    let status = laptop.ok(&["status"]);
    assert!(status.contains("1 family"), "{status}");
    assert!(status.contains("what to do"), "{status}");
    assert!(status.contains("torkham"), "{status}");
    let status = laptop.json(&["status", "--json"]);
    assert_eq!(status["refused_families"][0]["id"], stray.as_str());

    assert_eq!(laptop.json(&["show", &stray, "--json"])["sync"], "refused");
    assert_eq!(laptop.json(&["show", &kept, "--json"])["sync"], "sent");

    // The laptop's report counts what the server counts, and says so.
    let report = laptop.run(&["report", "--json"]).expect_code(0);
    let counted: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(counted["families"], 1, "{counted}");
    assert!(
        stderr_of(&report).contains("1 family the server refused is left out"),
        "{}",
        stderr_of(&report)
    );
    admin.ok(&["sync"]);
    let on_server = admin.json(&["report", "--json"]);
    assert_eq!(on_server["families"], counted["families"]);
    let pending = laptop.json(&["list", "--pending", "--json"]);
    assert_eq!(ids(&pending), vec![stray.clone()]);
    let table = at_width(&laptop, 80, &["list"]);
    assert!(
        table.contains("REFUSED") && table.contains("sent"),
        "{table}"
    );

    // A dry run lists what a purge would remove (the sent family, not the
    // refused one) and removes nothing.
    let tomorrow = (chrono::Local::now().date_naive() + chrono::Days::new(1)).to_string();
    let plan = laptop.json(&["purge", "--synced-before", &tomorrow, "--dry-run", "--json"]);
    assert_eq!(
        plan["would_remove"],
        serde_json::json!([kept.clone()]),
        "{plan}"
    );
    assert_eq!(ids(&laptop.json(&["list", "--json"])).len(), 2);

    // A supervisor's (here the admin's) laptop restores a deleted family.
    let gone = add_named(&admin, "torkham", "2026-12-02", "Nabi", "X-4");
    admin.ok(&["delete", &gone, "--yes"]);
    assert!(
        admin
            .json(&["find", "X-4", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    admin.ok(&["restore", &gone]);
    assert_eq!(
        ids(&admin.json(&["find", "X-4", "--json"])),
        vec![gone.clone()]
    );
    admin.ok(&["sync"]);
    assert_eq!(admin.json(&["show", &gone, "--json"])["deleted"], false);

    // A field worker undoes their own delete, and the server takes it; a
    // family deleted on another device is a supervisor's to keep.
    laptop.ok(&["delete", &kept, "--yes"]);
    laptop.ok(&["sync"]);
    laptop.ok(&["restore", &kept]);
    let run = laptop.run(&["sync"]).expect_code(0);
    assert!(run.stdout.contains("pushed 1 change"), "{}", run.stdout);
    admin.ok(&["sync"]);
    assert_eq!(admin.json(&["show", &kept, "--json"])["deleted"], false);
    admin.ok(&["delete", &gone, "--yes"]);
    admin.ok(&["sync"]);
    laptop.ok(&["sync"]);
    let refused = laptop.run(&["restore", &gone]).expect_code(2);
    assert!(refused.stderr.contains("supervisor"), "{}", refused.stderr);

    // The audit names devices; revoke takes an id prefix (a name shared by
    // two devices is refused as ambiguous).
    let audit = admin.ok(&["admin", "audit"]);
    assert!(audit.contains("enrolled test-laptop ("), "{audit}");
    let ambiguous = admin
        .run(&["admin", "revoke", "test-laptop"])
        .expect_code(2);
    assert!(
        ambiguous.stderr.contains("2 devices"),
        "{}",
        ambiguous.stderr
    );
    let devices = admin.json(&["admin", "devices", "--json"]);
    let field = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["role"] == "field")
        .unwrap();
    let prefix = &field["id"].as_str().unwrap()[..8];
    let out = admin.ok(&["admin", "revoke", prefix]);
    assert!(out.contains("revoked"), "{out}");
    let run = laptop.run(&["sync"]);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
}

#[test]
fn delete_says_what_happened_and_restore_and_purge_are_safe() {
    let store = Store::init();
    let id = add_named(&store, "torkham", "2026-12-01", "Wali", "X-3");
    let short = &id.replace('-', "")[..10];
    let out = store.ok(&["delete", short, "--yes"]);
    assert!(out.contains("returnee restore"), "{out}");
    let again = store.run(&["delete", short]).expect_code(2);
    assert!(again.stderr.contains("deleted already"), "{}", again.stderr);
    assert!(!again.stderr.contains("edited"), "{}", again.stderr);
    // A worker undoes their own delete.
    let out = store.ok(&["restore", short]);
    assert!(out.contains("restored"), "{out}");
    assert_eq!(store.json(&["show", &id, "--json"])["deleted"], false);

    let future = store
        .run(&["purge", "--synced-before", "2999-01-01"])
        .expect_code(2);
    assert!(future.stderr.contains("in the future"), "{}", future.stderr);
}

#[cfg(unix)]
#[test]
fn a_new_store_is_private_to_its_user_and_a_shared_one_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let run = |args: &[&str]| {
        std::process::Command::new(returnee_tests::returnee_bin())
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .env_remove("RETURNEE_PASSPHRASE")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    assert!(run(&["init"]).status.success());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            files += 1;
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    assert!(files > 0);
    let quiet = run(&["list"]);
    assert!(String::from_utf8_lossy(&quiet.stderr).is_empty());

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let warned = run(&["list"]);
    assert!(warned.status.success());
    let err = String::from_utf8_lossy(&warned.stderr);
    assert!(
        err.contains("other users") && err.contains("chmod 700"),
        "{err}"
    );
}

#[test]
fn import_errors_name_the_csv_column_and_every_missing_jsonl_field() {
    let source = Store::init();
    source.ok(&add_args("torkham", "2026-11-01", "1,0,0,1,0", "0,0,0,1,0"));
    let csv = source.ok(&["export", "--format", "csv"]);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "m_60_plus")
        .expect("an m_60_plus column");
    let mut row: Vec<String> = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    row[col] = "many".into();
    let file = source.path().join("bad.csv");
    std::fs::write(&file, format!("{}\n{}\n", header.join(","), row.join(","))).unwrap();
    let target = Store::init();
    let run = target
        .run(&["import", file.to_str().unwrap()])
        .expect_code(2);
    assert!(
        run.stdout.contains("m_60_plus") || run.stderr.contains("m_60_plus"),
        "{run:?}"
    );

    let file = source.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"crossing\": \"torkham\", \"return_type\": \"deported\"}\n",
    )
    .unwrap();
    let run = target
        .run(&["import", file.to_str().unwrap()])
        .expect_code(2);
    let all = format!("{}{}", run.stdout, run.stderr);
    for f in [
        "crossed_on",
        "departure_province",
        "destination_province",
        "members",
    ] {
        assert!(all.contains(f), "{f} not named: {all}");
    }
}

#[test]
fn duplicates_show_both_families_side_by_side() {
    let store = Store::init();
    let a = add_named(
        &store,
        "torkham",
        "2026-12-03",
        "Gul Mohammad Khan",
        "1401-0123-45678",
    );
    let b = add_named(
        &store,
        "torkham",
        "2026-12-04",
        "Gul Muhammad",
        "1401 0123 45678",
    );
    let list = at_width(&store, 80, &["duplicates"]);
    assert!(
        list.contains("Gul Mohammad Khan") && list.contains("Gul Muhammad"),
        "{list}"
    );
    assert!(
        list.contains("2026-12-03") && list.contains("2026-12-04"),
        "{list}"
    );
    assert!(list.contains("…5678") && !list.contains("45678"), "{list}");
    assert!(list.contains("1 possible duplicate pair;"), "{list}");
    let pairs = store.json(&["duplicates", "--json"]);
    let pair = pairs[0]["id"].as_str().unwrap();
    let shown = at_width(&store, 100, &["duplicates", "show", &pair[..6]]);
    assert!(
        shown.contains("1401-0123-45678") && shown.contains("1401 0123 45678"),
        "{shown}"
    );
    assert!(shown.contains("same document number"), "{shown}");
    assert!(shown.contains(&a.replace('-', "")[..12]) && shown.contains(&b.replace('-', "")[..12]));
}
