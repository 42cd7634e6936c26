//! Device tokens under a simulated clock: they expire, a laptop that syncs
//! rotates its own in time without the worker doing anything, a rotation
//! cut off midway locks nobody out, an admin can force one, and an expired
//! laptop is told to enroll again and loses nothing. The real `returnee`
//! binary against a server whose clock the test moves.

use std::sync::Arc;

use chrono::Duration;
use returnee_cli::client::ServerClient;
use returnee_server::clock::OffsetClock;
use returnee_shared::wire::ErrorCode;
use returnee_store::laptop::LocalStore;
use returnee_tests::cluster::TestServer;
use returnee_tests::{Store, add_args};

/// The token a laptop's store holds (no `returnee` process runs meanwhile).
fn token(store: &Store) -> String {
    let s = LocalStore::open(store.path()).expect("the store opens");
    let token = s.enrollment().unwrap().expect("enrolled").token;
    drop(s);
    token
}

/// The server's answer to `token`: `Ok` if it still works.
fn works(url: &str, token: &str) -> Result<(), ErrorCode> {
    let client = ServerClient::new(url, Some(token.to_string()), None).unwrap();
    match client.device_token() {
        Ok(_) => Ok(()),
        Err(returnee_cli::client::ClientError::Refused { code, .. }) => Err(code),
        Err(e) => panic!("{e}"),
    }
}

fn add(store: &Store, crossing: &str) -> String {
    store
        .ok(&add_args(crossing, "2026-12-01", "1,0,0,1,0", "0,0,0,1,0"))
        .trim()
        .to_string()
}

#[test]
fn tokens_expire_rotate_at_sync_survive_a_cut_rotation_and_an_expired_laptop_enrolls_again() {
    let clock = OffsetClock::default();
    let server = TestServer::start_with_clock(Arc::new(clock.clone()));
    let url = server.url();
    let admin = Store::init();
    admin.ok(&["enroll", "--server", &url, "--code", &server.admin_code]);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &url, "--code", code.trim()]);
    let device = laptop.json(&["status", "--json"])["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    add(&laptop, "torkham");
    laptop.ok(&["sync"]);
    let first = token(&laptop);
    let status = laptop.ok(&["status"]);
    assert!(status.contains("credential  valid until"), "{status}");

    // Day 30: two thirds of 90 days left, nothing rotates.
    clock.advance(Duration::days(30));
    laptop.ok(&["sync"]);
    assert_eq!(token(&laptop), first);

    // Day 61: less than a third left: the sync rotates it, by itself.
    clock.advance(Duration::days(31));
    laptop.ok(&["sync"]);
    admin.ok(&["sync"]);
    let second = token(&laptop);
    assert_ne!(second, first);
    assert_eq!(works(&url, &first), Err(ErrorCode::Unauthorized));
    assert_eq!(works(&url, &second), Ok(()));

    // Day 122: due again. A rotation whose answer never reached the
    // laptop: the server issued a token the laptop never kept...
    clock.advance(Duration::days(61));
    let lost = ServerClient::new(&url, Some(second.clone()), None)
        .unwrap()
        .device_token()
        .unwrap()
        .token
        .expect("rotation was due");
    // ...and the laptop's token still works: the next sync rotates again.
    laptop.ok(&["sync"]);
    admin.ok(&["sync"]);
    let third = token(&laptop);
    assert!(third != second && third != lost);
    for old in [&first, &second, &lost] {
        assert_eq!(works(&url, old), Err(ErrorCode::Unauthorized));
    }
    assert_eq!(works(&url, &third), Ok(()));

    // An admin forces a rotation that was not due.
    let out = admin.ok(&["admin", "rotate", &device]);
    assert!(out.contains("new token at its next sync"), "{out}");
    laptop.ok(&["sync"]);
    let fourth = token(&laptop);
    assert_ne!(fourth, third);
    assert_eq!(works(&url, &third), Err(ErrorCode::Unauthorized));
    let audit = admin.ok(&["admin", "audit", "--json"]);
    for kind in ["\"rotation_requested\"", "\"token_rotated\""] {
        assert!(audit.contains(kind), "{kind} missing: {audit}");
    }

    // Day 183: the admin syncs (and rotates); the laptop does not, for 91
    // days, and records a family meanwhile.
    clock.advance(Duration::days(61));
    admin.ok(&["sync"]);
    clock.advance(Duration::days(30));
    let offline = add(&laptop, "torkham");
    let run = laptop.run(&["sync"]).expect_code(1);
    assert!(
        run.stderr.contains("expired") && run.stderr.contains("returnee enroll"),
        "{}",
        run.stderr
    );
    assert_eq!(works(&url, &fourth), Err(ErrorCode::TokenExpired));
    // Enrolling again with a new code keeps the store and sends what waited.
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    laptop.ok(&["enroll", "--server", &url, "--code", code.trim()]);
    laptop.ok(&["sync"]);
    admin.ok(&["sync"]);
    assert_eq!(
        admin.json(&["show", &offline, "--json"])["id"],
        offline.as_str()
    );
    assert_eq!(admin.json(&["report", "--json"])["families"], 2);
    // A laptop whose token still works cannot enroll again.
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    let run = laptop
        .run(&["enroll", "--server", &url, "--code", code.trim()])
        .expect_code(2);
    assert!(run.stderr.contains("still works"), "{}", run.stderr);
}
