//! Crossings as data: an admin adds one while a laptop is offline; the
//! laptop records a family there before it learns it (kept, provisional),
//! learns it at its next sync, records more there, and the families count
//! once. A code the server does not list is refused, kept, and sent again
//! once an admin adds it. The real binaries and a real server.

use returnee_tests::cluster::TestServer;
use returnee_tests::{Store, add_args};

/// `add` at `crossing` from an Iranian province.
fn add_from_iran(store: &Store, crossing: &str, extra: &[&str]) -> returnee_tests::Run {
    let mut args = add_args(crossing, "2026-12-01", "1,0,0,1,0", "0,0,1,1,0");
    let at = args.iter().position(|a| a == "--departure").unwrap();
    args[at + 1] = "Razavi Khorasan".into();
    let at = args.iter().position(|a| a == "--destination").unwrap();
    args[at + 1] = "Herat".into();
    args.extend(extra.iter().map(|s| s.to_string()));
    store.run(&args)
}

fn families(store: &Store, crossing: &str) -> u64 {
    store.json(&["report", "--crossing", crossing, "--json"])["families"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_crossing_added_while_a_laptop_is_offline_is_learnt_and_its_families_count_once() {
    let server = TestServer::start();
    let url = server.url();
    let admin = Store::init();
    admin.ok(&["enroll", "--server", &url, "--code", &server.admin_code]);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &url, "--code", code.trim()]);
    laptop.ok(&["sync"]);
    let device = laptop.json(&["status", "--json"])["device_id"]
        .as_str()
        .unwrap()
        .to_string();

    // The admin adds Islam Qala (the Iranian border) and gives it to the
    // laptop, which is offline. Bad input is refused with what to fix.
    let run = admin
        .run(&[
            "admin",
            "crossing",
            "add",
            "islam-qala",
            "--name",
            "Islam Qala",
            "--country-side",
            "XX-01",
            "--af-province",
            "AF-HER",
        ])
        .expect_code(2);
    assert!(run.stderr.contains("--country-side"), "{}", run.stderr);
    let out = admin.ok(&[
        "admin",
        "crossing",
        "add",
        "islam-qala",
        "--name",
        "Islam Qala",
        "--country-side",
        "IR-09",
        "--af-province",
        "herat",
    ]);
    assert!(out.contains("next sync"), "{out}");
    admin.ok(&[
        "admin",
        "sites",
        &device,
        "--site",
        "torkham",
        "--site",
        "islam-qala",
    ]);

    // Offline, the laptop does not know it: refused unless the worker says
    // it is new; then kept, with a warning, and not yet in its reports.
    let run = add_from_iran(&laptop, "islam-qala", &[]).expect_code(2);
    assert!(
        run.stderr.contains("not a known crossing"),
        "{}",
        run.stderr
    );
    let run = add_from_iran(&laptop, "islam-qala", &["--new-crossing"]).expect_code(0);
    assert!(
        run.stderr.contains("not a crossing this laptop has learnt"),
        "{}",
        run.stderr
    );
    let offline = run.stdout.trim().to_string();
    assert_eq!(
        laptop.json(&["show", &offline, "--json"])["crossing"],
        "islam-qala"
    );
    assert_eq!(laptop.json(&["report", "--json"])["families"], 0);

    // The next sync learns the crossing and sends the family; the laptop
    // records there like anywhere, and the departure list has Iran's provinces.
    let run = laptop.run(&["sync"]).expect_code(0);
    assert!(run.stderr.contains("islam-qala"), "{}", run.stderr);
    assert_eq!(families(&laptop, "islam-qala"), 1);
    let second = add_from_iran(&laptop, "Islam Qala", &[]).expect_code(0);
    let second = second.stdout.trim().to_string();
    assert_eq!(
        laptop.json(&["show", &second, "--json"])["departure_province"],
        "IR-09"
    );
    laptop.ok(&["sync"]);

    // On the server (and so on the admin's laptop), each counts once.
    admin.ok(&["sync"]);
    assert_eq!(families(&admin, "islam-qala"), 2);
    assert_eq!(admin.json(&["report", "--json"])["families"], 2);
    // Enrollment codes name it once the admin's laptop learnt it.
    admin.ok(&["admin", "code", "--role", "field", "--site", "islam-qala"]);

    // A code the server does not list either: refused, kept, and sent
    // again once an admin adds it.
    let stray = add_from_iran(&laptop, "dogharoun", &["--new-crossing"]).expect_code(0);
    let stray = stray.stdout.trim().to_string();
    laptop.run(&["sync"]).expect_code(1);
    let refused = laptop.json(&["refused", "--json"]);
    assert_eq!(refused[0]["family"], stray.as_str(), "{refused}");
    admin.ok(&[
        "admin",
        "crossing",
        "add",
        "dogharoun",
        "--name",
        "Dogharoun",
        "--country-side",
        "IR-09",
        "--af-province",
        "AF-HER",
    ]);
    admin.ok(&[
        "admin",
        "sites",
        &device,
        "--site",
        "torkham",
        "--site",
        "islam-qala",
        "--site",
        "dogharoun",
    ]);
    laptop.ok(&["sync"]);
    laptop.ok(&["refused", "retry", "--all"]);
    laptop.ok(&["sync"]);
    admin.ok(&["sync"]);
    assert_eq!(families(&admin, "dogharoun"), 1);
    assert_eq!(admin.json(&["report", "--json"])["families"], 3);

    // Deactivated: listed as such, its families stay.
    admin.ok(&["admin", "crossing", "deactivate", "islam-qala"]);
    let list = admin.json(&["admin", "crossing", "list", "--json"]);
    assert_eq!(list["version"], 3, "{list}");
    assert_eq!(list["crossings"][0]["active"], false, "{list}");
    admin.ok(&["sync"]);
    assert_eq!(families(&admin, "islam-qala"), 2);
}
