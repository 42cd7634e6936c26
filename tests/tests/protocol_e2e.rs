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
    assert!(matches!(&ops[0].change, Change::Edit { values, .. } if values.len() == 1));
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
/// rule of PROTOCOL.md). It enrolls anyone, takes every push, and hands
/// out `pull` (JSON operations) on every pull.
fn next_release_server(pull: Vec<Value>) -> String {
    let pull_body = json!({"ops": pull, "cursor": 1, "more": false}).to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                let pull_body = pull_body.clone();
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
                        web::get().to(move || {
                            let body = pull_body.clone();
                            async move {
                                HttpResponse::Ok()
                                    .content_type("application/json")
                                    .body(body)
                            }
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
    let url = next_release_server(Vec::new());
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

/// What a later release sends that this one does not know, as it would
/// come in a pull: an edit of a field added later, and a kind of
/// operation added later, among edits this release knows.
#[test]
fn operations_of_a_later_release_pass_through_an_older_laptop() {
    let record = new_record_id();
    let device = uuid::Uuid::from_u128(0xfeed).to_string();
    let mut fields = family(&mut returnee_tests::Rng::new(11));
    fields.crossing = "torkham".into();
    fields.notes = Some("first note".into());
    let (create, edit_later, verify, edit_notes) =
        (new_op_id(), new_op_id(), new_op_id(), new_op_id());
    let op = |id, base: Vec<_>, change: Value| {
        let mut op = json!({"id": id, "record": record, "device": device,
            "at": "2026-11-02T08:00:00Z", "change": change});
        if !base.is_empty() {
            op["base"] = json!(base);
        }
        op
    };
    let pull = vec![
        op(
            create,
            vec![],
            serde_json::to_value(Change::Create {
                fields,
                origin: None,
            })
            .unwrap(),
        ),
        op(
            edit_later,
            vec![create],
            json!({"kind": "edit", "values": [{"field": "phone_contact", "value": later_field()}]}),
        ),
        op(
            verify,
            vec![create],
            json!({"kind": "verify", "by": "phone", "checks": [1, 2]}),
        ),
        op(
            edit_notes,
            vec![create],
            json!({"kind": "edit", "values": [{"field": "notes", "value": "second note"}]}),
        ),
    ];
    let url = next_release_server(pull);
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &url, "--code", "AAAA-BBBB-CCCC-DDDD"]);
    let run = laptop.run(&["sync"]).expect_code(0);
    assert!(run.stdout.contains("pulled 4"), "{}", run.stdout);

    // The known edit applies; the later field follows its edit; the kind
    // this release does not know changes nothing it shows.
    let id = record.to_string();
    let shown = laptop.json(&["show", "--json", &id]);
    assert_eq!(shown["notes"], "second note");
    assert_eq!(shown["phone_contact"], later_field(), "{shown}");
    let report = laptop.json(&["report", "--json"]);
    assert_eq!(report["families"], 1, "{report}");

    // Editing another field keeps it; the export carries it.
    laptop.ok(&["edit", &id, "--notes", "third note"]);
    laptop.run(&["sync"]).expect_code(0);
    let shown = laptop.json(&["show", "--json", &id]);
    assert_eq!(shown["notes"], "third note");
    assert_eq!(shown["phone_contact"], later_field());
    let jsonl = laptop.ok(&["export", "--format", "jsonl"]);
    let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(line["phone_contact"], later_field());
}

/// A laptop newer than the server (the wrong order of an upgrade) pushes
/// a kind of operation this server does not know: the batch is refused
/// whole, with the way out, and nothing of it is stored.
#[test]
fn a_server_refuses_a_push_with_a_kind_it_does_not_know() {
    let server = TestServer::start();
    let mut newer = Device::new("newer-release");
    newer.enroll(&server.url(), &server.admin_code);
    let device = newer.store.device().unwrap().id;
    let op = json!({"id": new_op_id(), "record": new_record_id(), "device": device,
        "at": "2026-11-02T08:00:00Z", "change": {"kind": "verify", "by": "phone"}})
    .to_string();
    let err = newer.client().push_json(&[op.as_bytes()]).unwrap_err();
    match &err {
        returnee_cli::client::ClientError::Refused {
            status, message, ..
        } => {
            assert_eq!(*status, 400);
            assert!(
                message.contains("kind `verify`") && message.contains("upgrade the server"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The same for an edit of a field it does not know.
    let create = json!({"id": new_op_id(), "record": new_record_id(), "device": device,
        "at": "2026-11-02T08:00:00Z", "change": {"kind": "edit",
        "values": [{"field": "phone_contact", "value": "0700"}]}})
    .to_string();
    let err = newer.client().push_json(&[create.as_bytes()]).unwrap_err();
    assert!(
        err.to_string().contains("edits the field `phone_contact`"),
        "{err}"
    );
    assert_eq!(newer.report().totals.families, 0);
}
