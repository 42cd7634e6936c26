//! The server's journal under faults, through the real binary: SIGKILL at
//! random moments while five laptops push and pull; `repair`, `backup` and
//! `restore` as an operator runs them.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use returnee_cli::client::ServerClient;
use returnee_shared::merge::{Change, Op};
use returnee_shared::wire::{Role, SyncCursor};
use returnee_shared::{DeviceId, OpId, RecordId, ReportFilter};
use returnee_tests::Rng;
use returnee_tests::cluster::{Device, ServerProcess, binary, family};

/// A new family's create operation by `device`.
fn create(device: DeviceId, rng: &mut Rng) -> Op {
    Op {
        id: OpId(uuid::Uuid::new_v4()),
        record: RecordId(uuid::Uuid::now_v7()),
        device,
        at: Utc::now(),
        base: vec![],
        resolution: false,
        change: Change::Create {
            fields: family(rng),
            origin: None,
        },
    }
}

/// Every operation the server hands `client` from the start of its log.
fn pull_everything(client: &ServerClient) -> Vec<OpId> {
    let mut cursor = SyncCursor(0);
    let mut out = Vec::new();
    loop {
        let page = client.pull(cursor, 1000).expect("pull");
        out.extend(page.ops.iter().map(|op| op.id));
        cursor = page.cursor;
        if !page.more {
            return out;
        }
    }
}

fn enroll_admin(server: &ServerProcess) -> Device {
    let mut admin = Device::new("admin");
    admin.enroll(
        &server.url,
        server
            .admin_code
            .as_deref()
            .expect("first start prints a code"),
    );
    admin
}

#[test]
fn a_server_killed_at_100_random_moments_keeps_every_acknowledged_operation_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let mut server = ServerProcess::start(&data, "127.0.0.1:0");
    let bind = server.addr.to_string();
    let admin = enroll_admin(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<OpId>>> = Arc::default();
    let devices: Vec<Device> = (0..5)
        .map(|i| {
            let mut d = Device::new(&format!("laptop-{i}"));
            d.enroll(&server.url, &admin.mint(Role::Field, &[]));
            d
        })
        .collect();
    let laptops: Vec<_> = (0..5u64)
        .zip(&devices)
        .map(|(i, d)| {
            let id = d.store.enrollment().unwrap().unwrap().device_id;
            let client = d.client().clone();
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(100 + i);
                let mut cursor = SyncCursor(0);
                let mut pushes = 0;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<Op> = (0..1 + rng.below(6))
                        .map(|_| create(id, &mut rng))
                        .collect();
                    // Re-sent until acknowledged: the server may have applied
                    // a batch whose answer the kill lost.
                    while !stop.load(Ordering::Relaxed) {
                        match client.push(&batch) {
                            Ok(r) => {
                                assert!(r.rejected.is_empty(), "{:?}", r.rejected);
                                assert_eq!(r.applied + r.already_held, batch.len() as u64);
                                acked.lock().unwrap().extend(batch.iter().map(|op| op.id));
                                pushes += 1;
                                break;
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                    if let Ok(page) = client.pull(cursor, 200) {
                        cursor = page.cursor;
                    }
                    // A laptop's pace, not a flood: the kills are the load.
                    std::thread::sleep(Duration::from_millis(5 + rng.below(20)));
                }
                pushes
            })
        })
        .collect();
    let mut rng = Rng::new(7);
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(5 + rng.below(40)));
        server.kill9();
        server = ServerProcess::start(&data, &bind);
    }
    stop.store(true, Ordering::Relaxed);
    let pushes: u64 = laptops.into_iter().map(|t| t.join().unwrap()).sum();
    let acked = acked.lock().unwrap().clone();
    // Killed once more, at rest, and started: what was acknowledged is there, once.
    server.kill9();
    let server = ServerProcess::start(&data, &bind);
    let logged = pull_everything(admin.client());
    let distinct: HashSet<OpId> = logged.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        logged.len(),
        "an operation was logged twice"
    );
    let missing: Vec<&OpId> = acked.iter().filter(|id| !distinct.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged operations lost",
        missing.len()
    );
    let families = admin
        .client()
        .report(&ReportFilter::default(), None)
        .unwrap()
        .totals
        .families;
    assert_eq!(
        families as usize,
        distinct.len(),
        "every family counted once"
    );
    eprintln!(
        "100 kills: {pushes} pushes acknowledged, {} operations acknowledged, {} on the server",
        acked.len(),
        distinct.len()
    );
    assert!(pushes >= 100, "pushes ran between the kills ({pushes})");
    server.stop();
}

fn run(args: &[&str], data: &Path) -> (bool, String) {
    let out = Command::new(binary("returnee-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_operator_backs_up_a_running_server_restores_it_and_repairs_a_lost_index() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = ServerProcess::start(&data, "127.0.0.1:0");
    let bind = server.addr.to_string();
    let admin = enroll_admin(&server);
    let mut laptop = Device::new("laptop");
    laptop.enroll(&server.url, &admin.mint(Role::Field, &[]));
    let mut rng = Rng::new(3);
    for _ in 0..30 {
        laptop.add(family(&mut rng));
    }
    laptop.sync();
    // Backed up while it runs.
    let file = dir.path().join("nightly.backup");
    let (ok, text) = run(&["backup", "--out", file.to_str().unwrap()], &data);
    assert!(ok, "{text}");
    assert!(text.contains("journal frames up to position"), "{text}");
    let (ok, text) = run(&["backup", "--out", file.to_str().unwrap()], &data);
    assert!(!ok && text.contains("already exists"), "{text}");
    server.stop();
    // Restored elsewhere: the laptop syncs with it on its old credential.
    let restored = dir.path().join("restored");
    let out = Command::new(binary("returnee-server"))
        .args(["restore", "--from"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("audit trail intact"),
        "{text}"
    );
    let server = ServerProcess::start(&restored, &bind);
    for _ in 0..5 {
        laptop.add(family(&mut rng));
    }
    laptop.sync();
    admin.sync();
    assert_eq!(admin.report().totals.families, 35);
    server.stop();
    // The index lost: repair rebuilds it from the journal.
    std::fs::remove_dir_all(restored.join("index")).unwrap();
    let (ok, text) = run(&["repair"], &restored);
    assert!(
        ok && text.contains("rebuilt the index from the journal: 35 records"),
        "{text}"
    );
    let (ok, text) = run(&["repair"], &restored);
    assert!(ok && text.contains("nothing to rebuild"), "{text}");
    let server = ServerProcess::start(&restored, &bind);
    laptop.sync();
    let ids: BTreeSet<_> = admin.views().into_iter().map(|v| v.family.id).collect();
    assert_eq!(ids.len(), 35);
    assert_eq!(
        admin
            .client()
            .report(&ReportFilter::default(), None)
            .unwrap()
            .totals
            .families,
        35
    );
    server.stop();
    // A journal damaged before its tail: repair names where, exits 1.
    let seg = std::fs::read_dir(restored.join("journal"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let out = Command::new(binary("returnee-server"))
        .args(["repair", "--data-dir"])
        .arg(&restored)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&seg.display().to_string()) && err.contains("at byte"),
        "{err}"
    );
}
