use super::*;

/// A family whose every copy is a duplicate candidate of the others
/// (same crossing and day, head's name, document number).
fn twin() -> returnee_shared::FamilyFields {
    let mut f = super::super::tests::fields("torkham", 0);
    f.head_name = Some("Mohammad Gul".into());
    f.head_sex = Some(returnee_shared::Sex::Male);
    f.doc_type = returnee_shared::DocType::PorCard;
    f.doc_number = Some("PK-1234567".into());
    f.consent = true;
    f
}

fn changed(n: usize) -> Vec<ChangedRecord> {
    (0..n)
        .map(|_| ChangedRecord {
            id: crate::ids::new_record_id(),
            features: None,
            dismissed: Default::default(),
        })
        .collect()
}

/// A store holding two twins and another family, pushed without the
/// index hearing of it (as if the server crashed before indexing).
fn pushed_unindexed() -> (tempfile::TempDir, ServerStore) {
    use super::super::tests::{enrolled, fields};
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let device = enrolled(&store, "a");
    let ops: Vec<Op> = [twin(), twin(), fields("chaman", 5)]
        .into_iter()
        .map(|fields| Op {
            id: crate::ids::new_op_id(),
            record: crate::ids::new_record_id(),
            device: device.id,
            at: chrono::Utc::now(),
            base: vec![],
            resolution: false,
            change: Change::Create {
                fields,
                origin: None,
            },
        })
        .collect();
    store.push(&device, ops, chrono::Utc::now()).unwrap();
    (dir, store)
}

#[test]
fn an_index_that_missed_pushes_catches_up_from_its_position() {
    let (_dir, store) = pushed_unindexed();
    let last = store.last_seq().unwrap();
    {
        let index = DuplicateIndex::open(&store).unwrap();
        assert_eq!(index.through().unwrap(), Some(last));
        assert_eq!(index.candidates().unwrap().len(), 1);
    }
    // Pushed while no index listened: the index is behind the log.
    let (_other_dir, other) = pushed_unindexed();
    let more: Vec<Op> = other.record_docs().flat_map(|r| r.unwrap().1.ops).collect();
    let device = super::super::tests::enrolled(&store, "b");
    let more: Vec<Op> = more
        .into_iter()
        .map(|mut op| {
            op.device = device.id;
            op
        })
        .collect();
    store.push(&device, more, chrono::Utc::now()).unwrap();
    let index = DuplicateIndex::open(&store).unwrap();
    // Caught up, not rebuilt: a key only a rebuild would clear stays.
    index.tree().insert(b"marker", vec![]).unwrap();
    drop(index);
    let index = DuplicateIndex::open(&store).unwrap();
    assert!(index.tree().get(b"marker").unwrap().is_some());
    assert_eq!(index.through().unwrap(), Some(store.last_seq().unwrap()));
    // Four twins now: every pair of them.
    assert_eq!(index.candidates().unwrap().len(), 6);
}

#[test]
fn an_index_of_another_version_or_ahead_of_the_log_is_rebuilt() {
    let (_dir, store) = pushed_unindexed();
    let tree = store.db().open_tree("duplicates").unwrap();
    for state in [
        serde_json::to_vec(&State {
            version: VERSION + 1,
        })
        .unwrap(),
        serde_json::to_vec(&State { version: VERSION }).unwrap(),
    ] {
        tree.insert(STATE, state).unwrap();
        // Ahead of the log: a crash lost the log's tail it had indexed.
        tree.insert(
            THROUGH,
            (store.last_seq().unwrap() + 5).to_be_bytes().to_vec(),
        )
        .unwrap();
        tree.insert(b"marker", vec![]).unwrap();
        let index = DuplicateIndex::open(&store).unwrap();
        assert!(index.tree().get(b"marker").unwrap().is_none(), "rebuilt");
        assert_eq!(index.through().unwrap(), Some(store.last_seq().unwrap()));
        assert_eq!(index.candidates().unwrap().len(), 1);
    }
}

#[test]
fn queued_pushes_move_the_position_once_all_their_records_are_indexed() {
    let (_dir, store) = pushed_unindexed();
    let index = DuplicateIndex::open(&store).unwrap();
    let start = index.through().unwrap().unwrap();
    let ids: Vec<RecordId> = store.record_docs().map(|r| r.unwrap().0).collect();
    let changed = |id: RecordId| ChangedRecord::of(id, &store.record_doc(id).unwrap().unwrap());
    // One push's records split over two chunks: the position moves only
    // with the chunk that finishes it.
    let mut many: Vec<ChangedRecord> = (0..DRAIN_CHUNK).map(|_| changed(ids[2])).collect();
    many.push(changed(ids[0]));
    index.enqueue_changed(vec![changed(ids[1])], start + 1);
    index.enqueue_changed(many, start + 2);
    let _guard = index.inner.lock.lock().unwrap();
    assert!(index.process_locked().unwrap());
    assert_eq!(index.through().unwrap(), Some(start + 1));
    assert!(index.process_locked().unwrap());
    assert_eq!(index.through().unwrap(), Some(start + 2));
    assert!(!index.process_locked().unwrap());
}

#[test]
fn a_record_queued_by_several_pushes_is_indexed_as_the_newest_left_it() {
    use super::super::tests::fields;
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let index = DuplicateIndex::open(&store).unwrap();
    let other = {
        let mut f = fields("chaman", 5);
        f.head_name = Some("Abdul Wali".into());
        f
    };
    // Two records the store holds (the index keeps features at their places).
    let device = super::super::tests::enrolled(&store, "a");
    let ops: Vec<Op> = (0..2)
        .map(|_| Op {
            id: crate::ids::new_op_id(),
            record: crate::ids::new_record_id(),
            device: device.id,
            at: chrono::Utc::now(),
            base: vec![],
            resolution: false,
            change: Change::Create {
                fields: fields("chaman", 1),
                origin: None,
            },
        })
        .collect();
    let (a, b) = (ops[0].record, ops[1].record);
    store.push(&device, ops, chrono::Utc::now()).unwrap();
    let queued = |id, f: &returnee_shared::FamilyFields| ChangedRecord {
        id,
        features: Some(Features::of(f)),
        dismissed: Default::default(),
    };
    // b becomes a's twin, then (a later push) someone else: the pair
    // must not be suggested; both entries of b fall in one chunk.
    index.enqueue_changed(vec![queued(a, &twin()), queued(b, &twin())], 0);
    index.enqueue_changed(vec![queued(b, &other)], 0);
    assert!(index.candidates().unwrap().is_empty());
    // The other way round, with the older entry in an earlier chunk
    // than the newer one: the pair is found.
    index.enqueue_changed(vec![queued(b, &other)], 0);
    index.enqueue_changed(changed(DRAIN_CHUNK), 0);
    index.enqueue_changed(vec![queued(b, &twin())], 0);
    let found = index.candidates().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].records, if a < b { [a, b] } else { [b, a] });
}

#[test]
fn the_background_update_waits_for_pushes_to_pause_unless_too_many_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let index = DuplicateIndex::open(&store).unwrap();
    assert!(index.enqueue_changed(changed(3), 0));
    let started = Instant::now();
    index.wait_for_quiet();
    assert!(started.elapsed() >= QUIET - Duration::from_millis(5));
    // Nothing pushed since: no wait.
    let started = Instant::now();
    index.wait_for_quiet();
    assert!(started.elapsed() < QUIET);
    // Past the high-water mark, it goes at once even mid-burst.
    index.enqueue_changed(changed(HIGH_WATER), 0);
    let started = Instant::now();
    index.wait_for_quiet();
    assert!(started.elapsed() < QUIET);
    // A listing never waits, and finishes everything queued.
    index.enqueue_changed(changed(2), 0);
    let started = Instant::now();
    assert!(index.candidates().unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(index.inner.pending.lock().unwrap().records.is_empty());
}
