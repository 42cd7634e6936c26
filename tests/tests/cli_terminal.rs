//! What a person at a terminal sees: questions before something is
//! removed, and progress with true totals. The real `returnee` binary in a
//! pseudo-terminal (rexpect).
#![cfg(unix)]

use std::process::Command;

use returnee_tests::{Store, add_args, returnee_bin};
use rexpect::process::wait::WaitStatus;
use rexpect::session::spawn_command;

/// `returnee ARGS` on `store`, in a pseudo-terminal 80 columns wide.
fn at_terminal(store: &Store, args: &[&str]) -> rexpect::session::PtySession {
    let mut c = Command::new(returnee_bin());
    c.arg("--data-dir")
        .arg(store.path())
        .args(args)
        .env_remove("RETURNEE_PASSPHRASE")
        .env("COLUMNS", "80")
        .env("TERM", "xterm");
    spawn_command(c, Some(20_000)).expect("returnee runs in a pseudo-terminal")
}

/// Answers a one-key question once it is asked (the terminal is in raw
/// mode only once the prompt is drawn).
fn answer(p: &mut rexpect::session::PtySession, key: &str) {
    p.exp_string("[y/N]").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send(key).unwrap();
    p.flush().unwrap();
}

fn exit_code(p: &mut rexpect::session::PtySession) -> i32 {
    match p.process.wait().expect("the process ends") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("ended by {other:?}"),
    }
}

#[test]
fn delete_asks_first_on_a_terminal_and_no_keeps_the_family() {
    let store = Store::init();
    let mut args = add_args("torkham", "2026-12-01", "1,0,0,1,0", "0,0,0,1,0");
    args.extend(["--head-name", "Wali", "--consent"].map(String::from));
    let id = store.ok(&args).trim().to_string();

    let mut p = at_terminal(&store, &["delete", &id]);
    p.exp_string("Delete the family of Wali").unwrap();
    answer(&mut p, "n");
    p.exp_string("not deleted").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(store.json(&["show", &id, "--json"])["deleted"], false);

    let mut p = at_terminal(&store, &["delete", &id]);
    p.exp_string("Delete the family of Wali").unwrap();
    answer(&mut p, "y");
    p.exp_string("deleted (`returnee restore").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(store.json(&["show", &id, "--json"])["deleted"], true);
}

/// A CSV file of 300 families (three rows exported, each 100 times), in
/// the folder of the store that wrote it.
fn three_hundred_rows() -> (Store, std::path::PathBuf) {
    let source = Store::init();
    for day in 1..=3 {
        source.ok(&add_args(
            "torkham",
            &format!("2026-11-0{day}"),
            "1,0,0,1,0",
            "0,0,0,1,0",
        ));
    }
    let csv = source.ok(&["export", "--format", "csv"]);
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut text = format!("{header}\n");
    for _ in 0..100 {
        for r in &rows {
            text.push_str(r);
            text.push('\n');
        }
    }
    let file = source.path().join("rows.csv");
    std::fs::write(&file, text).unwrap();
    (source, file)
}

#[test]
fn import_progress_counts_the_rows_of_the_file() {
    let (_source, file) = three_hundred_rows();
    let target = Store::init();
    let mut p = at_terminal(&target, &["import", file.to_str().unwrap()]);
    let shown = p.exp_string("imported 300 rows").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert!(
        shown.contains("/300"),
        "the bar's total is the file's rows: {shown:?}"
    );
    // Whole-number rates: "12,345/s", not "12345.6789/s".
    let rate = rates_shown(&shown);
    assert!(
        rate.iter()
            .all(|r| r.chars().all(|c| c.is_ascii_digit() || c == ',')),
        "{rate:?}"
    );
    assert!(!rate.is_empty(), "{shown:?}");
}

/// The rates a progress bar showed (the words before "/s").
fn rates_shown(shown: &str) -> Vec<String> {
    shown
        .split_whitespace()
        .filter_map(|w| w.strip_suffix("/s"))
        .map(String::from)
        .collect()
}

/// Waits for `prompt`, then types `keys` once the prompt reads keys (a
/// text prompt is waited for to its end).
fn step(p: &mut rexpect::session::PtySession, prompt: &str, keys: &str) {
    p.exp_string(prompt)
        .unwrap_or_else(|e| panic!("waiting for {prompt:?}: {e}"));
    let text = ["Date of", "Males", "Females", "Notes"]
        .iter()
        .any(|t| prompt.starts_with(t));
    if text {
        p.exp_string(": ").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send(keys).unwrap();
    p.flush().unwrap();
}

const ENTER: &str = "\r";

#[test]
fn the_form_defaults_to_the_crossing_s_provinces_filters_and_asks_again_only_what_was_wrong() {
    let store = Store::init();
    let mut p = at_terminal(&store, &["add"]);
    step(&mut p, "Crossing", ENTER); // torkham, the first
    step(&mut p, "Date of crossing", ENTER); // today
    step(&mut p, "Return type", ENTER);
    // The names on papers find their province: NWFP is Khyber
    // Pakhtunkhwa's old name, Hilmand a spelling of Helmand.
    step(&mut p, "Province of departure", "nwfp");
    step(&mut p, "filter) nwfp|", ENTER);
    step(&mut p, "Province of destination", "hilmand");
    step(&mut p, "filter) hilmand|", ENTER);
    // Nobody in the household: the only fields asked again are these two.
    step(&mut p, "Males aged", ENTER);
    step(&mut p, "Females aged", ENTER);
    step(&mut p, "Sex of the head", ENTER);
    step(&mut p, "consent", "n");
    step(&mut p, "Document shown", ENTER);
    step(&mut p, "Vulnerabilities", ENTER);
    step(&mut p, "Documentation held", ENTER);
    step(&mut p, "Protection referral", ENTER);
    step(&mut p, "Notes", ENTER);
    let between = p.exp_string("Males aged").unwrap();
    assert!(between.contains("Please correct it"), "{between:?}");
    for asked in ["Crossing", "Return type", "Province of"] {
        assert!(!between.contains(asked), "{asked} asked again: {between:?}");
    }
    p.exp_string(": ").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send("1,0,0,1,0\r").unwrap();
    p.flush().unwrap();
    step(&mut p, "Females aged", ENTER);
    let rest = p.exp_eof().unwrap();
    for asked in ["Return type", "Sex of the head", "Notes"] {
        assert!(!rest.contains(asked), "{asked} asked again: {rest:?}");
    }
    let list = store.json(&["list", "--json"]);
    let f = &list.as_array().unwrap()[0];
    assert_eq!(f["crossing"], "torkham");
    assert_eq!(f["departure_province"], "PK-KP");
    assert_eq!(f["destination_province"], "AF-HEL");
    assert_eq!(f["members"]["males"], serde_json::json!([1, 0, 0, 1, 0]));
}

#[test]
fn ctrl_c_in_the_form_shows_the_cursor_again_and_saves_nothing() {
    let store = Store::init();
    let mut p = at_terminal(&store, &["add"]);
    step(&mut p, "Crossing", "\x03");
    let rest = p.exp_eof().unwrap();
    assert!(
        rest.contains("\x1b[?25h"),
        "the cursor is shown again: {rest:?}"
    );
    assert!(rest.contains("nothing was saved"), "{rest:?}");
    assert_eq!(exit_code(&mut p), 130);
    assert_eq!(store.json(&["list", "--json"]), serde_json::json!([]));
}

#[test]
fn a_laptop_of_one_site_is_not_asked_its_crossing() {
    let server = returnee_tests::cluster::TestServer::start();
    let admin = returnee_tests::enrolled_admin(&server);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "chaman"]);
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &server.url(), "--code", code.trim()]);

    let mut p = at_terminal(&laptop, &["add"]);
    let first = p.exp_string("Date of crossing").unwrap();
    assert!(
        first.contains("Crossing: chaman (this laptop's site)"),
        "{first:?}"
    );
    p.exp_string(": ").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send(ENTER).unwrap();
    p.flush().unwrap();
    step(&mut p, "Return type", ENTER);
    step(&mut p, "Province of departure", ENTER); // chaman's: PK-BA
    step(&mut p, "Province of destination", ENTER); // chaman's: AF-KAN
    step(&mut p, "Males aged", "0,0,0,1,0\r");
    step(&mut p, "Females aged", ENTER);
    step(&mut p, "Sex of the head", ENTER);
    step(&mut p, "consent", "n");
    step(&mut p, "Document shown", ENTER);
    step(&mut p, "Vulnerabilities", ENTER);
    step(&mut p, "Documentation held", ENTER);
    step(&mut p, "Protection referral", ENTER);
    step(&mut p, "Notes", ENTER);
    p.exp_eof().unwrap();
    let list = laptop.json(&["list", "--json"]);
    let f = &list.as_array().unwrap()[0];
    assert_eq!(f["crossing"], "chaman");
    assert_eq!(f["departure_province"], "PK-BA");
    assert_eq!(f["destination_province"], "AF-KAN");
}

#[test]
fn passphrases_are_checked_as_typed_asked_again_and_unlock_keeps_the_key_for_a_while() {
    let store = Store::empty();
    let mut p = at_terminal(&store, &["init", "--encrypt"]);
    step(&mut p, "Passphrase for the new store", "short\r");
    // Refused at once, not after typing it twice.
    let said = p.exp_string("Passphrase for the new store").unwrap();
    assert!(said.contains("too short"), "{said:?}");
    assert!(!said.contains("Repeat it"), "{said:?}");
    step(&mut p, ": ", "field worker of torkham\r");
    step(&mut p, "Repeat it", "field worker of torkham\r");
    p.exp_string("created an encrypted store").unwrap();
    assert_eq!(exit_code(&mut p), 0);

    // A wrong passphrase is asked again.
    let mut p = at_terminal(&store, &["report"]);
    step(&mut p, "Passphrase of this store", "not it\r");
    p.exp_string("wrong passphrase; try again (2 left)")
        .unwrap();
    step(
        &mut p,
        "Passphrase of this store",
        "field worker of torkham\r",
    );
    p.exp_string("families").unwrap();
    assert_eq!(exit_code(&mut p), 0);

    // Unlocked, commands need no passphrase (not even without a terminal)...
    let run = store
        .command(&["unlock", "--for", "10m"])
        .env("RETURNEE_PASSPHRASE", "field worker of torkham")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stdout).contains("unlocked until"));
    store.ok(&["report", "--json"]);
    // ...until it is locked again.
    assert!(store.ok(&["lock"]).contains("locked"));
    let run = store.run(&["report", "--json"]).expect_code(2);
    assert!(run.stderr.contains("passphrase"), "{}", run.stderr);
    let run = store.run(&["unlock", "--for", "2 days"]).expect_code(2);
    assert!(run.stderr.contains("not a duration"), "{}", run.stderr);
}

#[test]
fn pull_progress_has_the_total_the_server_says_is_left() {
    use returnee_tests::cluster::{Device, TestServer, family};
    let server = TestServer::start();
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);
    let mut rng = returnee_tests::Rng::new(3);
    for _ in 0..300 {
        admin.add(family(&mut rng));
    }
    admin.sync();
    let code = admin.mint(returnee_shared::wire::Role::Supervisor, &[]);
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &server.url(), "--code", code.trim()]);
    let mut p = at_terminal(&laptop, &["sync", "--pull-page", "50"]);
    let shown = p.exp_string("pulled 300 changes").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert!(shown.contains("pulling ["), "a bar, not a count: {shown:?}");
    assert!(shown.contains("/300"), "the server's total: {shown:?}");
}

#[test]
fn passphrase_change_asks_the_old_one_then_the_new_one_twice() {
    let store = Store::empty();
    let old = "field worker of chaman";
    let new = "supervisor of chaman now";
    let run = store
        .command(&["init", "--encrypt"])
        .env("RETURNEE_PASSPHRASE", old)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let with = |pass: &str, args: &[&str]| {
        store
            .command(args)
            .env("RETURNEE_PASSPHRASE", pass)
            .output()
            .unwrap()
    };
    let mut args = add_args("chaman", "2026-12-01", "1,0,0,1,0", "0,0,0,1,0");
    args.extend(["--head-name", "Wali", "--consent"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(with(old, &args).status.success());

    let mut p = at_terminal(&store, &["passphrase", "change"]);
    step(&mut p, "Passphrase of this store", &format!("{old}\r"));
    step(&mut p, "New passphrase", &format!("{new}\r"));
    step(&mut p, "Repeat it", "something else\r");
    p.exp_string("differ").unwrap();
    step(&mut p, "New passphrase", &format!("{new}\r"));
    step(&mut p, "Repeat it", &format!("{new}\r"));
    p.exp_string("passphrase changed").unwrap();
    assert_eq!(exit_code(&mut p), 0);

    let refused = with(old, &["list", "--json"]);
    assert_eq!(refused.status.code(), Some(2));
    let listed = with(new, &["list", "--json"]);
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("Wali"));
}

#[test]
fn discarding_a_refused_change_asks_first_and_no_keeps_it() {
    let server = returnee_tests::cluster::TestServer::start();
    let admin = Store::init();
    let url = server.url();
    admin.ok(&["enroll", "--server", &url, "--code", &server.admin_code]);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    // Recorded before enrolling, at a crossing that is not the laptop's.
    let laptop = Store::init();
    let id = laptop
        .ok(&add_args("chaman", "2026-12-01", "1,0,0,1,0", "0,0,0,1,0"))
        .trim()
        .to_string();
    laptop.ok(&["enroll", "--server", &url, "--code", code.trim()]);
    laptop.run(&["sync"]).expect_code(1);

    let mut p = at_terminal(&laptop, &["refused", "discard", &id]);
    p.exp_string("Drop the refused create").unwrap();
    answer(&mut p, "n");
    p.exp_string("nothing dropped").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(
        laptop
            .json(&["refused", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let mut p = at_terminal(&laptop, &["refused", "discard", &id]);
    p.exp_string("Drop the refused create").unwrap();
    answer(&mut p, "y");
    p.exp_string("dropped the refused create").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert!(
        laptop
            .json(&["refused", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let log = std::fs::read_to_string(laptop.path().join("discarded.log")).unwrap();
    assert!(log.contains(&id), "{log}");
}

#[test]
fn erasing_asks_first_and_no_keeps_the_family_s_data() {
    let server = returnee_tests::cluster::TestServer::start();
    let admin = returnee_tests::enrolled_admin(&server);
    let id = returnee_tests::add_named(
        &admin,
        "torkham",
        "2026-12-01",
        "Wali Shinwari",
        "1401-0203-45678",
    );

    let mut p = at_terminal(&admin, &["erase", &id, "--reason", "asked by the family"]);
    p.exp_string("Erase the name, document number").unwrap();
    answer(&mut p, "n");
    p.exp_string("not erased").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert!(admin.ok(&["show", &id]).contains("Wali Shinwari"));

    let mut p = at_terminal(&admin, &["erase", &id, "--reason", "asked by the family"]);
    p.exp_string("cannot be undone").unwrap();
    answer(&mut p, "y");
    p.exp_string("personal data erased on this laptop").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    let shown = admin.ok(&["show", &id]);
    assert!(
        !shown.contains("Wali") && shown.contains("ERASED"),
        "{shown}"
    );
}
