//! Protocol versions end to end: a family carrying a field this release
//! does not know (added by a later one) passes through a laptop running
//! the real `returnee` binary untouched: pulled, edited on another field,
//! exported and imported, and pulled back from the server, it keeps it.

use returnee_shared::merge::{Change, Op};
use returnee_shared::wire::Role;
use returnee_store::ids::{new_op_id, new_record_id};
use returnee_tests::Store;
use returnee_tests::cluster::{Device, TestServer, family};
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
