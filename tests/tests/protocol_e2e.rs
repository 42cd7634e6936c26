//! Protocol versions end to end: a family carrying a field this release
//! does not know (added by a later one) passes through a laptop running
//! the real `returnee` binary untouched: pulled, edited on another field,
//! exported and imported, and pulled back from the server, it keeps it.
//! And a laptop behind the server is told that an update is available.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, web};
use returnee_shared::merge::{Change, Op};
use returnee_shared::wire::{
    EnrollRequest, EnrollResponse, Health, PROTOCOL_VERSION, PushResponse, RawPushRequest, Role,
};
use returnee_store::ids::{new_op_id, new_record_id};
use returnee_tests::cluster::{Device, TestServer, family};
use returnee_tests::{Store, add_args};
use serde_json::{Value, json};

/// What a later release records that this one does not know.
fn later_field() -> Value {
    json!({"kind": "mobile", "digits": ["0700", "123456"], "verified": true})
}

#[test]
fn a_field_from_a_later_release_passes_through_a_laptop_untouched() {
    let server = TestServer::start();
    // An admin laptop (the in-process client), which also plays the later
    // release: it sends a family with a field this release does not know.
    let mut newer = Device::new("newer-release");
    newer.enroll(&server.url(), &server.admin_code);
    let code = newer.mint(Role::Field, &["torkham"]);
    let mut fields = family(&mut returnee_tests::Rng::new(7));
    fields.crossing = "torkham".into();
    fields.extra.insert("phone_contact".into(), later_field());
    let record = new_record_id();
    let device = newer.store.device().unwrap().id;
    let create = Op {
        id: new_op_id(),
        record,
        device,
        at: chrono::Utc::now(),
        base: vec![],
        resolution: false,
        change: Change::Create {
            fields,
            origin: None,
        },
    };
    let ack = newer.client().push(std::slice::from_ref(&create)).unwrap();
    assert_eq!(ack.applied, 1, "{ack:?}");

    // The laptop on this release, through its real binary.
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &server.url(), "--code", code.trim()]);
    laptop.ok(&["sync"]);
    let id = record.to_string();
    let shown = laptop.json(&["show", "--json", &id]);
    assert_eq!(shown["phone_contact"], later_field(), "a pull keeps it");

    // Editing another field keeps it, here and on the server.
    laptop.ok(&["edit", &id, "--notes", "seen again at the gate"]);
    let shown = laptop.json(&["show", "--json", &id]);
    assert_eq!(shown["notes"], "seen again at the gate");
    assert_eq!(shown["phone_contact"], later_field(), "an edit keeps it");
    laptop.ok(&["sync"]);
    let page = newer
        .client()
        .pull(returnee_shared::wire::SyncCursor(0), 100)
        .unwrap();
    let ops: Vec<&Op> = page.ops.iter().filter(|o| o.record == record).collect();
    assert_eq!(
        ops.len(),
        1,
        "the laptop's edit; the creation is the newer device's own"
    );
    assert!(matches!(&ops[0].change, Change::Edit { values } if values.len() == 1));
    // Another device pulls both: the family as the later release sent it,
    // with the laptop's edit.
    let mut reader = Device::new("reader");
    reader.enroll(&server.url(), &newer.mint(Role::Supervisor, &["torkham"]));
    reader.sync();
    let family = reader
        .views()
        .into_iter()
        .find(|v| v.family.id == record)
        .unwrap()
        .family;
    assert_eq!(
        family.fields.notes.as_deref(),
        Some("seen again at the gate")
    );
    assert_eq!(
        family.fields.extra.get("phone_contact"),
        Some(&later_field())
    );

    // Export and import elsewhere: the line carries it, the import keeps it.
    let jsonl = laptop.ok(&["export", "--format", "jsonl"]);
    let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(line["phone_contact"], later_field());
    let file = laptop.path().join("families.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let other = Store::init();
    other.ok(&["import", file.to_str().unwrap()]);
    let shown = other.json(&["show", "--json", &id]);
    assert_eq!(shown["phone_contact"], later_field(), "an import keeps it");
    assert_eq!(shown["recorded_by"], device.to_string());
    // The same file again into the laptop it came from changes nothing.
    let again = laptop.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        (again["added"].clone(), again["updated"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(again["unchanged"], 1);
}

/// A server of the next release, as a laptop of this one sees it: it
/// speaks the protocol after this one and still accepts this one (the
/// rule of PROTOCOL.md). It enrolls anyone, takes every push, and has
/// nothing to pull.
fn next_release_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(|| {
                App::new()
                    .route(
                        "/v1/health",
                        web::get().to(|| async {
                            HttpResponse::Ok().json(Health {
                                status: "ok".into(),
                                protocol: PROTOCOL_VERSION + 1,
                                accepts: vec![PROTOCOL_VERSION, PROTOCOL_VERSION + 1],
                            })
                        }),
                    )
                    .route(
                        "/v1/enroll",
                        web::post().to(|req: web::Json<EnrollRequest>| async move {
                            HttpResponse::Ok().json(EnrollResponse {
                                device_id: req.device_id,
                                token: "rt_next".into(),
                                role: Role::Field,
                                sites: vec!["torkham".into()],
                            })
                        }),
                    )
                    .route(
                        "/v1/sync/push",
                        web::post().to(|req: web::Json<RawPushRequest>| async move {
                            HttpResponse::Ok().json(PushResponse {
                                applied: req.ops.len() as u64,
                                ..PushResponse::default()
                            })
                        }),
                    )
                    .route(
                        "/v1/sync/pull",
                        web::get().to(|| async {
                            HttpResponse::Ok()
                                .content_type("application/json")
                                .body(r#"{"ops":[],"cursor":0,"more":false}"#)
                        }),
                    )
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    url
}

#[test]
fn a_laptop_behind_the_server_is_told_an_update_is_available_and_keeps_syncing() {
    let url = next_release_server();
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &url, "--code", "AAAA-BBBB-CCCC-DDDD"]);
    assert!(
        !laptop.ok(&["status"]).contains("update"),
        "not before a sync"
    );
    laptop.ok(&add_args("torkham", "2026-11-02", "0,1,0,1,0", "1,0,0,1,0"));
    let run = laptop.run(&["sync"]).expect_code(0);
    assert!(run.stdout.contains("pushed 1"), "{}", run.stdout);
    let notice = format!(
        "an update of returnee is available: the server speaks sync protocol {}, this laptop {PROTOCOL_VERSION}",
        PROTOCOL_VERSION + 1
    );
    assert!(run.stderr.contains(&notice), "{}", run.stderr);
    // status says it too, offline, from what the sync saw.
    let status = laptop.ok(&["status"]);
    assert!(
        status.contains(&format!("update      {notice}")),
        "{status}"
    );
    let json = laptop.json(&["status", "--json"]);
    assert!(
        json["update"].as_str().unwrap().starts_with(&notice),
        "{json}"
    );
    assert_eq!(json["pending"], 0, "the push went through");
}
