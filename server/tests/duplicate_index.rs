//! The server's duplicate index (`returnee_server::DuplicateIndex`) on a
//! real store: a listing reflects every queued record, however many, and a
//! rebuild finds what the updates found.

use chrono::{NaiveDate, Utc};
use returnee_server::{DuplicateIndex, ServerStore};
use returnee_shared::merge::{Change, Op};
use returnee_shared::wire::Role;
use returnee_shared::{DocType, FamilyFields, Members, RecordId, ReturnType};
use returnee_store::server::Device;

fn family(i: usize, doc: String) -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()
            + chrono::Days::new((i % 30) as u64),
        return_type: ReturnType::Deported,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [(i % 3) as u32, (i % 4) as u32, 0, 1, 0],
            females: [(i % 5) as u32, 0, 0, 1, 0],
        },
        head_name: None,
        head_sex: None,
        doc_type: DocType::PorCard,
        doc_number: Some(doc),
        consent: true,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    }
}

#[test]
fn a_listing_finishes_every_queued_record_and_a_rebuild_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let index = DuplicateIndex::open(&store).unwrap();
    let device = Device {
        id: returnee_store::ids::new_device_id(),
        name: "test".into(),
        role: Role::Admin,
        sites: Vec::new(),
        enrolled_at: Utc::now(),
        revoked_at: None,
        credential: Default::default(),
    };
    // 4,500 different families, then the last one registered again: more
    // than two chunks of work waiting when the listing comes.
    let mut fields: Vec<FamilyFields> = (0..4500).map(|i| family(i, format!("D{i:07}"))).collect();
    fields.push(fields[4499].clone());
    let ids: Vec<RecordId> = fields
        .iter()
        .map(|_| returnee_store::ids::new_record_id())
        .collect();
    let ops: Vec<Op> = ids
        .iter()
        .zip(fields)
        .map(|(id, f)| Op {
            id: returnee_store::ids::new_op_id(),
            record: *id,
            device: device.id,
            at: Utc::now(),
            base: Vec::new(),
            resolution: false,
            change: Change::Create {
                fields: f,
                origin: None,
            },
        })
        .collect();
    // As the server does: each push queues what it changed as it commits.
    let mut first = true;
    for chunk in ops.chunks(1000) {
        let ack = store
            .push_then(&device, chunk.to_vec(), Utc::now(), |changed, through| {
                assert_eq!(changed.len(), chunk.len());
                assert_eq!(
                    index.enqueue_changed(changed, through),
                    first,
                    "one task at a time"
                );
                first = false;
            })
            .unwrap();
        assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
    }
    let listed = index.candidates().unwrap();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0].records, [ids[4499], ids[4500]]);

    index.rebuild().unwrap();
    assert_eq!(index.candidates().unwrap(), listed);
    index.close().unwrap();
}
