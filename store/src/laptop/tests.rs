use chrono::{NaiveDate, Utc};
use returnee_shared::wire::RejectedOp;
use returnee_shared::{DocType, FamilyFields, FieldValue, Members, ReturnType};

use super::queue::queue_done_key;
use super::record_packs::FEATURES;
use super::*;

/// A valid family at Torkham, told apart by `n`.
pub(crate) fn fields(n: u32) -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 9, 20).unwrap(),
        return_type: ReturnType::Deported,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [n, 0, 0, 1, 0],
            females: [0, 0, 0, 1, 0],
        },
        head_name: None,
        head_sex: None,
        doc_type: DocType::None,
        doc_number: None,
        consent: false,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    }
}

/// Every queued operation, as its record holds it.
fn recorded(store: &LocalStore, queued: &[QueuedOp]) -> Vec<Vec<u8>> {
    queued
        .iter()
        .map(|q| {
            let doc = store.load_doc(q.record).unwrap().unwrap();
            encode(doc.ops.iter().find(|o| o.id == q.id).unwrap())
        })
        .collect()
}

#[test]
fn writes_through_clones_on_several_threads_lose_no_operation() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
    let now = Utc::now();
    let shared = store.add(fields(0), now).unwrap();
    // Each thread adds families and edits one family all share: every
    // operation must reach the queue and its record.
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let store = store.clone();
            s.spawn(move || {
                for n in 0..25 {
                    store.add(fields(t * 100 + n + 1), now).unwrap();
                    let note = FieldValue::Notes(Some(format!("note {t} {n}")));
                    store
                        .edit(shared, vec![note], now.date_naive(), now)
                        .unwrap();
                }
            });
        }
    });
    let queued = store.pending(usize::MAX).unwrap();
    assert_eq!(queued.len(), 1 + 4 * 50, "every operation is queued");
    let ids: std::collections::HashSet<OpId> = queued.iter().map(|q| q.id).collect();
    assert_eq!(ids.len(), queued.len(), "each once");
    assert_eq!(store.pending_count().unwrap(), queued.len());
    assert_eq!(store.count_queued().unwrap(), queued.len() as u64);
    let doc = store.load_doc(shared).unwrap().unwrap();
    assert_eq!(doc.ops.len(), 1 + 4 * 25, "every edit is in its record");
    assert_eq!(store.views().count(), 1 + 4 * 25);
}

#[test]
fn the_queue_carries_each_operation_as_recorded_and_its_count() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
    let now = Utc::now();
    let ids: Vec<RecordId> = (0..3).map(|n| store.add(fields(n), now).unwrap()).collect();
    store
        .edit(
            ids[0],
            vec![FieldValue::Notes(Some("edited".into()))],
            now.date_naive(),
            now,
        )
        .unwrap();
    let queued = store.pending(100).unwrap();
    assert_eq!(queued.len(), 4);
    assert_eq!(store.pending_count().unwrap(), 4);
    assert_eq!(store.count_queued().unwrap(), 4);
    let json: Vec<Vec<u8>> = queued.iter().map(|q| q.json.clone()).collect();
    assert_eq!(
        json,
        recorded(&store, &queued),
        "the queue holds each operation as recorded"
    );
    assert_eq!(
        store.queued_records().unwrap(),
        vec![ids[0], ids[1], ids[2], ids[0]]
    );

    // A partial acknowledgement; one refused.
    let refused = RejectedOp {
        op: queued[1].id,
        error: "forbidden".into(),
        message: "refused".into(),
    };
    store.acknowledge(&queued[..3], &[refused]).unwrap();
    let left = store.pending(100).unwrap();
    assert_eq!(left, queued[3..].to_vec());
    assert_eq!(store.pending_count().unwrap(), 1);
    assert_eq!(store.count_queued().unwrap(), 1);
    let held = store.held().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].0.id, queued[1].id);
    store.acknowledge(&left, &[]).unwrap();
    assert!(store.pending(100).unwrap().is_empty());
    assert_eq!(store.pending_count().unwrap(), 0);
    assert_eq!(store.count_queued().unwrap(), 0);
}

#[test]
fn a_large_entry_acknowledged_in_order_moves_a_mark_and_out_of_order_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
    let items = (0..10)
        .map(|n| Upsert {
            id: crate::ids::new_record_id(),
            fields: fields(n),
            origin: None,
        })
        .collect();
    store.upsert_many(items, Utc::now()).unwrap();
    let all = store.pending(100).unwrap();
    assert_eq!(all.len(), 10);
    let seq = all[0].at.seq;
    assert!(
        all.iter().all(|q| q.at.seq == seq),
        "one small write, one entry"
    );
    let entry = store.get_value(&queue_key(seq)).unwrap().unwrap();

    // The first three: the entry stays as written, its mark moves.
    store.acknowledge(&all[..3], &[]).unwrap();
    assert_eq!(store.get_value(&queue_key(seq)).unwrap().unwrap(), entry);
    assert_eq!(store.pending(100).unwrap(), all[3..].to_vec());
    assert_eq!(store.pending_count().unwrap(), 7);
    assert_eq!(store.count_queued().unwrap(), 7);
    assert_eq!(store.queued_records().unwrap().len(), 7);
    assert_eq!(store.pending(2).unwrap(), all[3..5].to_vec());

    // Two out of order: the rest is rewritten and numbered anew.
    store
        .acknowledge(&[all[5].clone(), all[7].clone()], &[])
        .unwrap();
    let left = store.pending(100).unwrap();
    let ids: Vec<OpId> = left.iter().map(|q| q.id).collect();
    assert_eq!(ids, [3, 4, 6, 8, 9].map(|i| all[i].id));
    assert_eq!(
        left.iter().map(|q| q.at.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert!(store.get_value(&queue_done_key(seq)).unwrap().is_none());
    assert_eq!(
        left.iter().map(|q| &q.json).collect::<Vec<_>>(),
        [3, 4, 6, 8, 9].map(|i| &all[i].json)
    );

    store.acknowledge(&left[..2], &[]).unwrap();
    store
        .acknowledge(&store.pending(100).unwrap(), &[])
        .unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
    assert_eq!(store.count_queued().unwrap(), 0);
    assert!(store.get_value(&queue_key(seq)).unwrap().is_none());
    assert!(store.get_value(&queue_done_key(seq)).unwrap().is_none());
}

#[test]
fn a_large_write_is_queued_as_several_bounded_entries_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
    let ids: Vec<RecordId> = (0..QUEUE_ENTRY_OPS * 2 + 22)
        .map(|_| crate::ids::new_record_id())
        .collect();
    let items = ids
        .iter()
        .map(|id| Upsert {
            id: *id,
            fields: fields(1),
            origin: None,
        })
        .collect();
    store.upsert_many(items, Utc::now()).unwrap();
    let first = store.add(fields(2), Utc::now()).unwrap();
    let all = store.pending(1000).unwrap();
    let records: Vec<RecordId> = all.iter().map(|q| q.record).collect();
    assert_eq!(records[..ids.len()], ids[..]);
    assert_eq!(records[ids.len()], first);
    let seqs: std::collections::BTreeSet<u64> = all.iter().map(|q| q.at.seq).collect();
    assert_eq!(
        seqs.len(),
        4,
        "three entries for the large write, one for the add"
    );
    let seqs: Vec<u64> = seqs.into_iter().collect();
    assert_eq!(seqs, (seqs[0]..seqs[0] + 4).collect::<Vec<_>>());
    assert!(all.iter().all(|q| (q.at.index as usize) < QUEUE_ENTRY_OPS));
}

/// A family as another device registered it twice (`twin`), and a third.
fn twin() -> FamilyFields {
    let mut f = fields(1);
    f.head_name = Some("Mohammad Gul".into());
    f.head_sex = Some(returnee_shared::Sex::Male);
    f.doc_type = DocType::PorCard;
    f.doc_number = Some("PK-1234567".into());
    f.consent = true;
    f
}

fn pull_twins_and_another(store: &LocalStore) -> Vec<RecordId> {
    let other = DeviceId(uuid::Uuid::new_v4());
    let create = |fields: FamilyFields| Op {
        id: OpId(uuid::Uuid::new_v4()),
        record: crate::ids::new_record_id(),
        device: other,
        at: Utc::now(),
        base: vec![],
        resolution: false,
        change: Change::Create {
            fields,
            origin: None,
        },
    };
    let ops = vec![create(twin()), create(twin()), create(fields(2))];
    let ids: Vec<RecordId> = ops.iter().map(|o| o.record).collect();
    store.apply_remote(ops, &[], SyncCursor(3)).unwrap();
    ids
}

#[test]
fn pulled_families_are_compared_as_soon_as_the_pull_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
    let ids = pull_twins_and_another(&store);
    // Pulled: saved, counted, and their features written in the same
    // batch: nothing waits for a later command.
    assert_eq!(store.report_rows().count(), 3);
    assert_eq!(store.scan_packed(FEATURES).count(), 3);
    let found = store.duplicates().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let mut pair = found[0].records.to_vec();
    pair.sort();
    let mut want = ids[..2].to_vec();
    want.sort();
    assert_eq!(pair, want);
    // A family added here afterwards is compared with the pulled ones, and
    // an import's filed families agree with it.
    let added = store.add(twin(), Utc::now()).unwrap();
    assert_eq!(store.candidates_of(added).unwrap().len(), 2);
    let mut filed = store.block_counts(usize::MAX).unwrap().unwrap();
    let before = store
        .candidates_counted(&[added], &mut filed)
        .unwrap()
        .remove(0);
    assert_eq!(before.len(), 2, "the added family was filed with the rest");
    assert_eq!(store.duplicates().unwrap().len(), 3);
    // Dismissing a pair leaves it out everywhere.
    let pair = store.candidates_of(added).unwrap().remove(0);
    store.dismiss_pair(&pair.id, Utc::now()).unwrap();
    assert_eq!(store.candidates_of(added).unwrap().len(), 1);
    assert_eq!(store.duplicates().unwrap().len(), 2);
    // No key holds anything derived from a name or a document number.
    assert_eq!(store.db.scan_prefix(b"b/").count(), 0);
}

#[test]
fn a_damaged_queue_entry_is_an_error_not_a_silent_skip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
    store.add(fields(1), Utc::now()).unwrap();
    let q = store.pending(1).unwrap().remove(0);
    let mut w = store.writes();
    w.put_bytes(queue_key(q.at.seq), q.json[..10].to_vec());
    store.commit(&store.write_lock(), w).unwrap();
    assert!(matches!(store.pending(10), Err(StoreError::Damaged(_))));
}

#[test]
fn a_store_of_another_format_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        store.add(fields(1), Utc::now()).unwrap();
        store
            .db
            .insert(FORMAT_KEY, (FORMAT + 1).to_be_bytes().to_vec())
            .unwrap();
        store.flush().unwrap();
    }
    let err = LocalStore::open(dir.path()).err().expect("refused");
    assert!(
        matches!(err, StoreError::Format { found, .. } if found == FORMAT + 1),
        "{err}"
    );
    assert!(err.to_string().contains("another version"), "{err}");
    // Nothing was changed: put the format back and the family is there.
    let db = crate::db::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        db.get(FORMAT_KEY).unwrap().unwrap().to_vec(),
        (FORMAT + 1).to_be_bytes()
    );
    db.insert(FORMAT_KEY, FORMAT.to_be_bytes().to_vec())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(store.families().count(), 1);
}

/// Operations of another device: a create of each of `new`, an edit of
/// each of `edited` (based on the create `creates` gave it).
fn remote_ops(
    other: DeviceId,
    new: &[RecordId],
    edited: &[(RecordId, OpId)],
    note: &str,
) -> Vec<Op> {
    let op = |record: RecordId, base: Vec<OpId>, change: Change| Op {
        id: OpId(uuid::Uuid::new_v4()),
        record,
        device: other,
        at: Utc::now(),
        base,
        resolution: false,
        change,
    };
    let creates = new.iter().enumerate().map(|(i, id)| {
        op(
            *id,
            vec![],
            Change::Create {
                fields: fields(i as u32 % 9),
                origin: None,
            },
        )
    });
    let edits = edited.iter().map(|(id, base)| {
        op(
            *id,
            vec![*base],
            Change::Edit {
                values: vec![FieldValue::Notes(Some(note.into()))],
                unknown: Default::default(),
            },
        )
    });
    creates.chain(edits).collect()
}

#[test]
fn the_filter_of_placed_records_never_hides_one_across_pulls_adds_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let other = DeviceId(uuid::Uuid::new_v4());
    let first: Vec<RecordId> = (0..300).map(|_| crate::ids::new_record_id()).collect();
    let creates = remote_ops(other, &first, &[], "");
    let bases: Vec<(RecordId, OpId)> = creates.iter().map(|o| (o.record, o.id)).collect();
    let local;
    {
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        // A new store's first page builds the filter; an add then goes
        // through it, and a page of edits to every record and of new ones.
        store.apply_remote(creates, &[], SyncCursor(1)).unwrap();
        local = store.add(fields(1), Utc::now()).unwrap();
        let second: Vec<RecordId> = (0..100).map(|_| crate::ids::new_record_id()).collect();
        let page = remote_ops(other, &second, &bases, "seen twice");
        assert_eq!(store.apply_remote(page, &[], SyncCursor(2)).unwrap(), 400);
        assert_eq!(store.scan_packed(DOCS).count(), 401);
        for (id, _) in &bases {
            let doc = store.record_doc(*id).unwrap().unwrap();
            assert_eq!(
                doc.view(*id).family.unwrap().fields.notes.as_deref(),
                Some("seen twice")
            );
        }
    }
    // Reopened, with no filter yet: a small page of edits (too small to
    // build one), then an edit of the added family.
    let store = LocalStore::open(dir.path()).unwrap();
    let page = remote_ops(other, &[], &bases[..5], "seen three times");
    assert_eq!(store.apply_remote(page, &[], SyncCursor(3)).unwrap(), 5);
    store
        .edit(
            local,
            vec![FieldValue::Notes(Some("local".into()))],
            Utc::now().date_naive(),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(
        store.scan_packed(DOCS).count(),
        401,
        "no record placed twice"
    );
    let mut all: Vec<RecordId> = store.scan_packed(DOCS).map(|r| r.unwrap().0).collect();
    all.sort();
    let mut places: Vec<u64> = store
        .placement()
        .places(&all)
        .unwrap()
        .into_iter()
        .map(|p| p.expect("placed").0)
        .collect();
    places.sort();
    assert_eq!(places, (0..401).collect::<Vec<_>>(), "one place each");
}
