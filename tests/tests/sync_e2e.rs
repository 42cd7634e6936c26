//! End-to-end sync: a real server on 127.0.0.1:0, several device stores, the
//! real client code over real HTTP, and faults (cut connections, lost
//! responses, a server killed mid-sync).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use returnee_cli::client::{ClientError, ServerClient};
use returnee_shared::merge::{DECIDE_DELETED, DECIDE_KEPT, Lifecycle, RECORD_CONFLICT_FIELD};
use returnee_shared::wire::Role;
use returnee_shared::{FieldValue, ReportFilter};
use returnee_store::laptop::StoredView;
use returnee_tests::Rng;
use returnee_tests::cluster::{
    Device, FaultProxy, Faults, ServerProcess, TestServer, days_later, enrolled, family,
};

fn today() -> chrono::NaiveDate {
    Utc::now().date_naive()
}

/// Every device shows the same records, and the same report as the server.
fn assert_converged(admin: &Device, devices: &[&Device]) {
    let reference: Vec<StoredView> = admin.views();
    for d in devices {
        assert_eq!(
            d.views(),
            reference,
            "{} differs from {}",
            d.name,
            admin.name
        );
        assert_eq!(d.report(), admin.report());
    }
    let server = admin
        .client()
        .report(&ReportFilter::default(), None)
        .expect("server report");
    assert_eq!(server, admin.report(), "the server's report differs");
}

#[test]
fn two_devices_record_offline_and_converge_in_every_order() {
    for order in [[0usize, 1, 0], [1, 0, 1]] {
        let server = TestServer::start();
        let (admin, devices) = enrolled(&server, Role::Field, 2);
        let mut rng = Rng::new(7);
        for _ in 0..25 {
            devices[0].add(family(&mut rng));
        }
        for _ in 0..17 {
            devices[1].add(family(&mut rng));
        }
        for i in order {
            devices[i].sync();
        }
        admin.sync();
        assert_eq!(devices[0].report().totals.families, 42);
        assert_converged(&admin, &[&devices[0], &devices[1]]);
        // A second sync moves nothing.
        let again = devices[0].sync();
        assert_eq!((again.pushed, again.pulled), (0, 0));
    }
}

#[test]
fn edits_merge_by_field_and_same_field_conflicts_until_resolved() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    let mut rng = Rng::new(1);
    let id = a.add(family(&mut rng));
    a.sync();
    b.sync();

    // Different fields: both survive, no conflict.
    a.store
        .edit(
            id,
            vec![FieldValue::Notes(Some("seen at the gate".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    b.store
        .edit(
            id,
            vec![FieldValue::DestinationProvince("AF-BAL".into())],
            today(),
            Utc::now(),
        )
        .unwrap();
    a.sync();
    b.sync();
    a.sync();
    admin.sync();
    let f = a.store.get(id).unwrap().unwrap();
    assert!(f.conflicts.is_empty(), "{:?}", f.conflicts);
    assert_eq!(f.family.fields.notes.as_deref(), Some("seen at the gate"));
    assert_eq!(f.family.fields.destination_province, "AF-BAL");
    assert_converged(&admin, &[a, b]);

    // The same field: exactly one conflict, on every replica.
    a.store
        .edit(
            id,
            vec![FieldValue::Notes(Some("from a".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    b.store
        .edit(
            id,
            vec![FieldValue::Notes(Some("from b".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    a.sync();
    b.sync();
    a.sync();
    admin.sync();
    for d in [&admin, a, b] {
        let c = d.store.conflicts().unwrap();
        assert_eq!(c.len(), 1, "{}: {c:?}", d.name);
        assert_eq!(c[0].field, "notes");
        let values: BTreeSet<&str> = c[0].values.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(values, BTreeSet::from(["from a", "from b"]));
    }
    assert_eq!(admin.client().conflicts().unwrap().len(), 1);
    assert_converged(&admin, &[a, b]);

    // A field device may not resolve; the admin does, and it holds everywhere.
    let conflict = a.store.conflicts().unwrap().remove(0);
    admin
        .store
        .resolve(&conflict.id, "agreed note", today(), Utc::now())
        .unwrap();
    admin.sync();
    a.sync();
    b.sync();
    for d in [&admin, a, b] {
        assert!(d.store.conflicts().unwrap().is_empty(), "{}", d.name);
        let f = d.store.get(id).unwrap().unwrap();
        assert_eq!(f.family.fields.notes.as_deref(), Some("agreed note"));
    }
    assert!(admin.client().conflicts().unwrap().is_empty());
    assert_converged(&admin, &[a, b]);
}

#[test]
fn a_field_device_resolution_is_refused_by_the_server() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    let id = a.add(family(&mut Rng::new(3)));
    a.sync();
    b.sync();
    a.store
        .edit(
            id,
            vec![FieldValue::Notes(Some("x".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    b.store
        .edit(
            id,
            vec![FieldValue::Notes(Some("y".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    a.sync();
    b.sync();
    let conflict = b.store.conflicts().unwrap().remove(0);
    // The store itself does not check roles (the CLI and the server do): a
    // tampered client that resolves anyway is refused by the server, and the
    // refused operation is kept on the device, not lost.
    b.store
        .resolve(&conflict.id, "z", today(), Utc::now())
        .unwrap();
    let summary = b.sync();
    assert_eq!(summary.rejected, 1);
    assert_eq!(b.store.held().unwrap().len(), 1);
    admin.sync();
    assert_eq!(
        admin.store.conflicts().unwrap().len(),
        1,
        "the conflict stays open"
    );
}

#[test]
fn a_clock_a_year_ahead_does_not_override_a_later_edit() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (fast, normal) = (&devices[0], &devices[1]);
    let id = normal.add(family(&mut Rng::new(5)));
    normal.sync();
    fast.sync();
    // The fast laptop edits first, with its clock a year ahead …
    let future = days_later(Utc::now(), 365);
    fast.store
        .edit(
            id,
            vec![FieldValue::Notes(Some("fast clock".into()))],
            today(),
            future,
        )
        .unwrap();
    fast.sync();
    // … the other laptop sees it and edits after it, with a correct clock.
    normal.sync();
    normal
        .store
        .edit(
            id,
            vec![FieldValue::Notes(Some("later edit".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    normal.sync();
    fast.sync();
    admin.sync();
    for d in [&admin, fast, normal] {
        let v = d.store.get(id).unwrap().unwrap();
        assert_eq!(
            v.family.fields.notes.as_deref(),
            Some("later edit"),
            "{}",
            d.name
        );
        assert!(v.conflicts.is_empty());
    }
}

#[test]
fn a_delete_concurrent_with_an_edit_is_a_conflict() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    let id = a.add(family(&mut Rng::new(9)));
    a.sync();
    b.sync();
    a.store.delete(id, Utc::now()).unwrap();
    b.store
        .edit(
            id,
            vec![FieldValue::Notes(Some("still here".into()))],
            today(),
            Utc::now(),
        )
        .unwrap();
    a.sync();
    b.sync();
    a.sync();
    admin.sync();
    for d in [&admin, a, b] {
        let c = d.store.conflicts().unwrap();
        assert_eq!(c.len(), 1, "{}", d.name);
        assert_eq!(c[0].field, RECORD_CONFLICT_FIELD);
        assert!(c[0].values.iter().any(|v| v.value == DECIDE_DELETED));
        assert!(c[0].values.iter().any(|v| v.value.starts_with(DECIDE_KEPT)));
    }
    // The supervisor keeps the family: it counts again everywhere, with the edit.
    let c = admin.store.conflicts().unwrap().remove(0);
    admin
        .store
        .resolve(&c.id, "kept", today(), Utc::now())
        .unwrap();
    admin.sync();
    a.sync();
    b.sync();
    for d in [&admin, a, b] {
        let v = d.store.get(id).unwrap().unwrap();
        assert_eq!(v.lifecycle, Lifecycle::Active, "{}", d.name);
        assert_eq!(v.family.fields.notes.as_deref(), Some("still here"));
        assert!(v.conflicts.is_empty());
    }
    assert_converged(&admin, &[a, b]);
}

/// Families on the server, counted by the admin's server report.
fn server_families(admin: &Device) -> u64 {
    admin
        .client()
        .report(&ReportFilter::default(), None)
        .unwrap()
        .totals
        .families
}

#[test]
fn a_push_cut_mid_way_resumes_without_loss_or_duplicates() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 1);
    let a = &devices[0];
    let mut rng = Rng::new(11);
    for _ in 0..600 {
        a.add(family(&mut rng));
    }
    let proxy = FaultProxy::start(server.running.addr());
    // Requests are cut after ~12 kB (batches are zstd-compressed): the first batches land, then the link drops.
    proxy.set(Faults {
        cut_up_after: Some(12_000),
        cut_down_after: None,
        down_after_cut: true,
    });
    let err = a.try_sync(&a.client_via(&proxy.url()), 100).unwrap_err();
    assert!(err.to_string().contains("cannot reach the server"), "{err}");
    let left = a.store.pending_count().unwrap();
    assert!(
        left > 0 && left < 600,
        "some batches were acknowledged: {left} left"
    );
    assert!(server_families(&admin) < 600);
    // The link comes back: the next sync finishes the work.
    proxy.set(Faults::default());
    a.try_sync(&a.client_via(&proxy.url()), 100).unwrap();
    assert_eq!(a.store.pending_count().unwrap(), 0);
    assert_eq!(server_families(&admin), 600);
    admin.sync();
    assert_converged(&admin, &[a]);
}

/// Saves `n` new families on `device` in one local write (as an import chunk).
fn write_at_once(device: &Device, n: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let items = (0..n)
        .map(|_| returnee_store::laptop::Upsert {
            id: returnee_store::ids::new_record_id(),
            fields: family(&mut rng),
            origin: None,
        })
        .collect();
    device.store.upsert_many(items, Utc::now()).unwrap();
}

/// The size of each pushed batch, from the progress callbacks.
#[derive(Default)]
struct BatchSizes(std::sync::Mutex<Vec<u64>>);

impl returnee_cli::sync::SyncProgress for BatchSizes {
    fn pushed(&self, done: u64, _total: u64) {
        let mut all = self.0.lock().unwrap();
        let before: u64 = all.iter().sum();
        all.push(done - before);
    }
}

#[test]
fn a_push_starts_small_then_follows_the_servers_advice_within_the_laptops_limit() {
    use returnee_shared::wire::FIRST_PUSH_BATCH;
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 1);
    let a = &devices[0];
    write_at_once(a, 1500, 17);
    // The server's advice comes with every acknowledgement.
    let one = a.store.pending(1).unwrap();
    let ack = a.client().push_json(&[one[0].json.as_slice()]).unwrap();
    let advised = ack.next_batch.expect("the server advises a batch size") as usize;
    assert!(
        (returnee_server::pacing::MIN_BATCH..=returnee_shared::wire::MAX_PUSH_OPS)
            .contains(&advised),
        "{advised}"
    );
    let sizes = BatchSizes::default();
    returnee_cli::sync::push_all(&a.store, a.client(), 1000, &sizes).unwrap();
    let sizes = sizes.0.into_inner().unwrap();
    assert_eq!(sizes[0], FIRST_PUSH_BATCH as u64, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s > 0 && s <= 1000), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<u64>(), 1500, "{sizes:?}");
    assert_eq!(a.store.pending_count().unwrap(), 0);
    assert_eq!(server_families(&admin), 1500);
}

#[test]
fn a_familys_operations_in_successive_batches_reach_the_server_in_order() {
    // Batches of one: a family's creation and two edits, other families
    // between. Two batches may be on their way at once, never two of one
    // family: an edit that overtook its creation would be refused.
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 1);
    let a = &devices[0];
    let mut rng = Rng::new(5);
    let id = a.add(family(&mut rng));
    let note = |text: &str| vec![FieldValue::Notes(Some(text.into()))];
    a.store
        .edit(id, note("first"), today(), Utc::now())
        .unwrap();
    a.add(family(&mut rng));
    a.add(family(&mut rng));
    a.store
        .edit(id, note("second"), today(), Utc::now())
        .unwrap();
    a.add(family(&mut rng));
    let pushed = returnee_cli::sync::push_all(&a.store, a.client(), 1, &()).unwrap();
    assert_eq!((pushed.pushed, pushed.rejected), (6, 0));
    assert_eq!(a.store.pending_count().unwrap(), 0);
    assert!(a.store.held().unwrap().is_empty());
    admin.sync();
    assert_eq!(server_families(&admin), 4);
    let f = admin.store.get(id).unwrap().unwrap();
    assert_eq!(f.family.fields.notes.as_deref(), Some("second"));
    assert!(f.conflicts.is_empty(), "{:?}", f.conflicts);
    assert_converged(&admin, &[a]);
}

#[test]
fn a_push_moves_the_cursor_over_its_own_operations_but_never_over_anothers() {
    use returnee_cli::sync::{pull_all, push_all};
    use returnee_shared::wire::SyncCursor;
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    // Alone on the server: a's own operations take positions 1..=30, and
    // its cursor passes them without a pull.
    write_at_once(a, 30, 1);
    push_all(&a.store, a.client(), 1000, &()).unwrap();
    assert_eq!(a.store.cursor().unwrap(), SyncCursor(30));
    // b's operations come next (31..=35); a's next push is logged after
    // them, so a's cursor must stay where it is: it has not read b's yet.
    write_at_once(b, 5, 2);
    push_all(&b.store, b.client(), 1000, &()).unwrap();
    assert_eq!(
        b.store.cursor().unwrap(),
        SyncCursor(0),
        "a's 30 lie before b's"
    );
    write_at_once(a, 7, 3);
    push_all(&a.store, a.client(), 1000, &()).unwrap();
    assert_eq!(a.store.cursor().unwrap(), SyncCursor(30));
    assert_eq!(pull_all(&a.store, a.client(), 1000, &()).unwrap(), 5);
    assert_eq!(a.store.cursor().unwrap(), SyncCursor(42));
    assert_eq!(pull_all(&b.store, b.client(), 1000, &()).unwrap(), 37);
    admin.sync();
    assert_eq!(admin.report().totals.families, 42);
    assert_converged(&admin, &[a, b]);
}

#[test]
fn a_batch_with_one_malformed_operation_is_refused_whole_and_names_it() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 1);
    let a = &devices[0];
    // Large enough to be decoded on several cores.
    write_at_once(a, 1200, 23);
    let queued = a.store.pending(1200).unwrap();
    let mut json: Vec<&[u8]> = queued.iter().map(|q| q.json.as_slice()).collect();
    json.insert(700, br#"{"id":"not an operation"}"#);
    match a.client().push_json(&json) {
        Err(ClientError::Refused {
            status, message, ..
        }) => {
            assert_eq!(status, 400);
            assert!(
                message.contains("operation 701 of the batch is not a valid operation"),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(server_families(&admin), 0, "nothing of the batch applied");
    // The laptop's queue is untouched: the next sync sends it all.
    assert_eq!(a.store.pending_count().unwrap(), 1200);
    a.sync();
    assert_eq!(server_families(&admin), 1200);
}

#[test]
fn an_import_sized_write_is_pushed_in_batches_across_its_queue_entries_and_a_cut_resumes() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 1);
    let a = &devices[0];
    // One local write of 600 families (as an import chunk): queue entries
    // of up to 64 operations, which batches of 70 do not line up with.
    write_at_once(a, 600, 21);
    assert_eq!(a.store.pending_count().unwrap(), 600);
    let proxy = FaultProxy::start(server.running.addr());
    proxy.set(Faults {
        cut_up_after: Some(12_000),
        cut_down_after: None,
        down_after_cut: true,
    });
    // Batches of 70: entries are acknowledged part by part.
    assert!(a.try_sync(&a.client_via(&proxy.url()), 70).is_err());
    let left = a.store.pending_count().unwrap();
    assert!(left > 0 && left < 600, "{left} left");
    // Nothing lost: what is not acknowledged is still queued (the batch
    // cut mid-way may or may not have landed; a re-send is recognised).
    let landed = server_families(&admin) as usize;
    assert!(
        landed < 600 && landed + left >= 600,
        "{landed} landed, {left} left"
    );
    proxy.set(Faults::default());
    let s = a.try_sync(&a.client_via(&proxy.url()), 70).unwrap();
    assert_eq!(s.pushed as usize, left);
    assert_eq!(a.store.pending_count().unwrap(), 0);
    assert_eq!(server_families(&admin), 600);
    admin.sync();
    assert_converged(&admin, &[a]);
}

#[test]
fn a_lost_push_response_is_resent_and_recognised() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 1);
    let a = &devices[0];
    let mut rng = Rng::new(12);
    for _ in 0..50 {
        a.add(family(&mut rng));
    }
    let proxy = FaultProxy::start(server.running.addr());
    // The server applies the batch, but its answer never arrives.
    proxy.set(Faults {
        cut_up_after: None,
        cut_down_after: Some(0),
        down_after_cut: false,
    });
    assert!(a.try_sync(&a.client_via(&proxy.url()), 100).is_err());
    assert_eq!(
        a.store.pending_count().unwrap(),
        50,
        "nothing acknowledged, nothing dropped"
    );
    assert_eq!(server_families(&admin), 50, "the server applied it");
    proxy.set(Faults::default());
    let s = a.try_sync(&a.client_via(&proxy.url()), 100).unwrap();
    assert_eq!(s.pushed, 50);
    assert_eq!(a.store.pending_count().unwrap(), 0);
    assert_eq!(server_families(&admin), 50, "the re-send added nothing");
}

#[test]
fn a_pull_cut_mid_way_resumes_without_loss_or_duplicates() {
    let server = TestServer::start();
    let (admin, devices) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&devices[0], &devices[1]);
    let mut rng = Rng::new(13);
    for _ in 0..600 {
        a.add(family(&mut rng));
    }
    a.sync();
    let proxy = FaultProxy::start(server.running.addr());
    proxy.set(Faults {
        cut_up_after: None,
        cut_down_after: Some(12_000),
        down_after_cut: true,
    });
    assert!(b.try_sync(&b.client_via(&proxy.url()), 100).is_err());
    let got = b.report().totals.families;
    assert!(got > 0 && got < 600, "checkpointed per batch: {got}");
    proxy.set(Faults::default());
    b.try_sync(&b.client_via(&proxy.url()), 100).unwrap();
    assert_eq!(b.report().totals.families, 600);
    admin.sync();
    assert_converged(&admin, &[a, b]);
}

#[test]
fn a_server_killed_during_sync_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let first = ServerProcess::start(&data, "127.0.0.1:0");
    let url = first.url.clone();
    let bind = first.addr.to_string();
    let mut admin = Device::new("admin");
    admin.enroll(
        &url,
        first
            .admin_code
            .as_deref()
            .expect("first start prints a code"),
    );
    let mut a = Device::new("a");
    let code = admin.mint(Role::Field, &[]);
    a.enroll(&url, &code);
    let mut rng = Rng::new(21);
    for _ in 0..3000 {
        a.add(family(&mut rng));
    }
    // Sync in small batches on another thread and kill -9 the server mid-way.
    let store = a.store.clone();
    let client = a.client().clone();
    let syncing = std::thread::spawn(move || returnee_cli::sync::sync(&store, &client, 50, &()));
    while a.store.pending_count().unwrap() > 2000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill9();
    assert!(
        syncing.join().unwrap().is_err(),
        "the sync saw the server go"
    );
    let acknowledged = 3000 - a.store.pending_count().unwrap();
    assert!(acknowledged >= 1000);

    let _second = ServerProcess::start(&data, &bind);
    // Every acknowledged batch survived the kill.
    assert!(server_families(&admin) as usize >= acknowledged);
    a.sync();
    admin.sync();
    assert_eq!(server_families(&admin), 3000);
    assert_eq!(admin.report().totals.families, 3000);
    assert_converged(&admin, &[&a]);
}

#[test]
fn unenrolled_devices_used_codes_and_wrong_credentials_are_refused() {
    let server = TestServer::start();
    let (admin, _) = enrolled(&server, Role::Field, 0);

    // No credential.
    let anon = ServerClient::new(&server.url(), None, None).unwrap();
    let err = anon.pull(Default::default(), 10).unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 401, code, message } if code == "unauthorized" && message.contains("enroll")),
        "{err}"
    );
    // A wrong credential.
    let forged = ServerClient::new(&server.url(), Some("rt_0000".into()), None).unwrap();
    let err = forged.push(&[]).unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not valid"), "{err}");
    // A used code (the admin code was spent by the admin).
    let d = Device::new("late");
    let err = ServerClient::new(&server.url(), None, None)
        .unwrap()
        .enroll(d.store.device().unwrap().id, &server.admin_code, "late")
        .unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
    // A field device may not mint codes, read reports or list server conflicts.
    let mut field = Device::new("field");
    field.enroll(&server.url(), &admin.mint(Role::Field, &["torkham"]));
    for err in [
        field
            .client()
            .mint_code(&returnee_shared::wire::CodeRequest {
                role: Role::Admin,
                sites: vec![],
                uses: 1,
            })
            .unwrap_err(),
        field
            .client()
            .report(&ReportFilter::default(), None)
            .unwrap_err(),
        field.client().conflicts().unwrap_err(),
    ] {
        assert!(
            matches!(&err, ClientError::Refused { status: 403, .. }),
            "{err}"
        );
    }
}
