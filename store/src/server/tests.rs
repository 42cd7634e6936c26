use super::*;

#[test]
fn a_store_of_another_format_is_refused_and_a_new_one_reopens() {
    let dir = tempfile::tempdir().unwrap();
    drop(ServerStore::open(dir.path()).unwrap());
    drop(ServerStore::open(dir.path()).expect("its own format reopens"));
    // A store written before the format was recorded (it has a log).
    let old = tempfile::tempdir().unwrap();
    {
        let db = sled::open(old.path()).unwrap();
        db.insert(b"m/seq", 7u64.to_be_bytes().to_vec()).unwrap();
        db.flush().unwrap();
    }
    let err = ServerStore::open(old.path()).err().expect("refused");
    assert!(matches!(err, StoreError::Format { found: 0, .. }), "{err}");
    assert!(err.to_string().contains("new --data-dir"), "{err}");
}

#[test]
fn a_store_of_format_1_opens_and_keeps_its_records_and_places() {
    let dir = tempfile::tempdir().unwrap();
    let ops = {
        let store = ServerStore::open(dir.path()).unwrap();
        let device = enrolled(&store, "a");
        let ops = creates(&device, 40);
        store.push(&device, ops.clone(), Utc::now()).unwrap();
        ops
    };
    // As format 1 left it: the places merged into the index's packs, no
    // runs, and the format's number 1.
    {
        let db = sled::open(journaled::index_dir(dir.path())).unwrap();
        let mut batch = sled::Batch::default();
        let mut places: Vec<(RecordId, Option<Vec<u8>>)> = Vec::new();
        for kv in db.scan_prefix(Kind::PlaceRuns.prefix()) {
            let (key, run) = kv.unwrap();
            for e in run.chunks_exact(24) {
                let id = RecordId(uuid::Uuid::from_slice(&e[..16]).unwrap());
                places.push((id, Some(e[16..].to_vec())));
            }
            batch.remove(key);
        }
        assert_eq!(places.len(), 40, "a push's places wait in runs");
        places.sort();
        let plain = crate::packs::Plain::<StoreError>::new();
        crate::packs::Packs::<_, RecordId>::new(&db, Kind::Places.prefix(), true, &plain)
            .stage(&mut batch, &places)
            .unwrap();
        batch.insert(FORMAT_KEY, 1u32.to_be_bytes().to_vec());
        db.apply_batch(batch).unwrap();
        db.flush().unwrap();
    }
    let store = ServerStore::open(dir.path()).expect("format 1 is migrated");
    for op in &ops {
        assert!(store.record_doc(op.record).unwrap().is_some());
    }
    let device = enrolled(&store, "b");
    store
        .push(&device, creates(&device, 10), Utc::now())
        .unwrap();
    assert_eq!(record_packs::scan(&store.db()).count(), 50);
}

#[test]
fn a_record_entry_reads_back_what_was_written() {
    let entry = RecordEntry {
        tag: b"chaman,torkham".to_vec(),
        row: Some([7; 19]),
        has_conflicts: true,
        ops: vec![
            LogPos {
                chunk: 1,
                offset: 0,
            },
            LogPos {
                chunk: u64::MAX - 3,
                offset: 77_000,
            },
        ],
    };
    let bytes = entry.to_bytes();
    assert_eq!(RecordEntry::from_bytes(&bytes), Some(entry.clone()));
    assert_eq!(RecordEntry::row_of(&bytes), Some(&[7u8; 19][..]));
    let none = RecordEntry { row: None, ..entry };
    assert_eq!(RecordEntry::row_of(&none.to_bytes()), None);
    assert_eq!(RecordEntry::from_bytes(&none.to_bytes()), Some(none));
    assert_eq!(RecordEntry::from_bytes(&bytes[..bytes.len() - 1]), None);
}

#[test]
fn a_frame_reads_back_and_every_entry_is_found_again_by_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) =
        crate::journal::Journal::open(dir.path(), crate::journal::Options::default()).unwrap();
    journal.append(b"a frame before").unwrap();
    let at = journal.end();
    let mut log = LogWriter::after(41, at);
    let payloads: Vec<Vec<u8>> = (0..13)
        .map(|i| format!("entry {i} ").repeat(i * 50).into_bytes())
        .collect();
    let positions: Vec<LogPos> = payloads
        .iter()
        .map(|p| {
            log.append(log_entry(
                DeviceId(uuid::Uuid::nil()),
                KIND_OP,
                b"torkham",
                p,
            ))
        })
        .collect();
    assert_eq!(log.last(), 41 + positions.len() as u64);
    let mut writes = Writes::default();
    writes.insert(b"dev/x".to_vec(), b"device".to_vec());
    writes.remove(b"code/y".to_vec());
    let payload = frames::encode_frame(log.first, &log.chunk, &writes);
    assert_eq!(journal.append(&payload).unwrap(), at);
    let frame = Frame::parse(&payload).unwrap();
    assert_eq!((frame.first, frame.count()), (42, 13));
    assert_eq!(frame.writes.writes, writes.writes);
    let reader = OpReader {
        journal: journal.reader(),
    };
    for (pos, p) in positions.iter().zip(&payloads) {
        assert_eq!(pos.chunk, at);
        assert_eq!(reader.op_json(*pos).unwrap().unwrap().to_vec(), *p);
    }
    assert!(Frame::parse(&payload[..payload.len() - 1]).is_err());
}

pub(crate) fn fields(crossing: &str, n: u32) -> returnee_shared::FamilyFields {
    let mut members = returnee_shared::Members::default();
    members.males[2] = 1 + n % 3;
    members.females[2] = 1;
    returnee_shared::FamilyFields {
        crossing: crossing.into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 9, 17).unwrap(),
        return_type: returnee_shared::ReturnType::ALL[0],
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members,
        head_name: None,
        head_sex: None,
        doc_type: returnee_shared::DocType::None,
        doc_number: None,
        consent: false,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: Some(format!("family {n}")),
        extra: Default::default(),
    }
}

pub(crate) fn enrolled(store: &ServerStore, name: &str) -> Device {
    let now = Utc::now();
    let code = store
        .mint_code(Role::Supervisor, vec![], 1, None, now)
        .unwrap();
    let id = DeviceId(uuid::Uuid::new_v4());
    store.enroll(&code, id, name, now).unwrap().unwrap().0
}

/// `n` new families at Torkham, created by `device`.
fn creates(device: &Device, n: u32) -> Vec<Op> {
    (0..n)
        .map(|n| Op {
            id: returnee_shared::OpId(uuid::Uuid::new_v4()),
            record: crate::ids::new_record_id(),
            device: device.id,
            at: Utc::now(),
            base: vec![],
            resolution: false,
            change: Change::Create {
                fields: fields("torkham", n),
                origin: None,
            },
        })
        .collect()
}

#[test]
fn a_push_names_the_positions_it_logged_unless_a_family_moved() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let a = enrolled(&store, "a");
    let now = Utc::now();
    let ops = creates(&a, 7);
    let r = store.push(&a, ops.clone(), now).unwrap();
    assert_eq!(
        r.logged,
        Some(LoggedSpan {
            first: SyncCursor(1),
            last: SyncCursor(7)
        })
    );
    // A re-send logs nothing, so it names nothing.
    assert_eq!(store.push(&a, ops.clone(), now).unwrap().logged, None);
    let edit = |values: Vec<FieldValue>| Op {
        id: returnee_shared::OpId(uuid::Uuid::new_v4()),
        record: ops[0].record,
        device: a.id,
        at: now,
        base: store
            .record_doc(ops[0].record)
            .unwrap()
            .unwrap()
            .ops
            .iter()
            .map(|o| o.id)
            .collect(),
        resolution: false,
        change: Change::edit(values),
    };
    // A move between sites logs entries for other devices too (and
    // perhaps for this one): no span.
    let moved = store
        .push(
            &a,
            vec![edit(vec![FieldValue::Crossing("chaman".into())])],
            now,
        )
        .unwrap();
    assert_eq!(moved.applied, 1);
    assert_eq!(moved.logged, None);
    let last = store.last_seq().unwrap();
    assert!(last > 8, "the move logged more than the edit: {last}");
    let noted = store
        .push(
            &a,
            vec![edit(vec![FieldValue::Notes(Some("n".into()))])],
            now,
        )
        .unwrap();
    assert_eq!(
        noted.logged,
        Some(LoggedSpan {
            first: SyncCursor(last + 1),
            last: SyncCursor(last + 1)
        })
    );
}

/// Pulls a page at a time, checking each page against the limit.
fn pull_all(store: &ServerStore, device: &Device, limit: usize) -> Vec<Op> {
    let mut cursor = SyncCursor(0);
    let mut out = Vec::new();
    loop {
        let page = store.pull(device, cursor, limit).unwrap();
        assert!(page.ops.len() <= limit);
        assert!(page.cursor >= cursor);
        out.extend(page.ops.iter().map(|j| decode::<Op>(j).unwrap()));
        cursor = page.cursor;
        if !page.more {
            return out;
        }
    }
}

#[test]
fn pages_of_any_size_hand_out_every_operation_once_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let (a, b) = (enrolled(&store, "a"), enrolled(&store, "b"));
    let now = Utc::now();
    let ops = creates(&a, 150);
    // Two pushes: the second starts new chunks mid-sequence.
    let r = store.push(&a, ops[..100].to_vec(), now).unwrap();
    assert_eq!(r.applied, 100);
    let r = store.push(&a, ops.clone(), now).unwrap();
    assert_eq!((r.applied, r.already_held), (50, 100));
    for limit in [1, 7, 64, 65, 1000] {
        let got = pull_all(&store, &b, limit);
        assert_eq!(
            got.iter().map(|o| o.id).collect::<Vec<_>>(),
            ops.iter().map(|o| o.id).collect::<Vec<_>>(),
            "limit {limit}"
        );
    }
    // Nothing past the last position known to be on disk is handed out.
    let durable = store.durable.swap(120, Ordering::AcqRel);
    let page = store.pull(&b, SyncCursor(100), 1000).unwrap();
    assert_eq!(
        (page.ops.len(), page.cursor, page.more),
        (20, SyncCursor(120), false)
    );
    store.durable.store(durable, Ordering::Release);
    // The sender gets none of its own back, and the report counts each once.
    assert!(pull_all(&store, &a, 10).is_empty());
    let report = store
        .report(&b, ReportBuilder::new(Default::default(), None))
        .unwrap();
    assert_eq!(report.totals.families, 150);
    // An edit reads its record back from the log.
    let first = &ops[0];
    let mut edited = fields("torkham", 0);
    edited.notes = Some("edited".into());
    let edit = Op {
        id: returnee_shared::OpId(uuid::Uuid::new_v4()),
        record: first.record,
        device: a.id,
        at: now,
        base: vec![first.id],
        resolution: false,
        change: Change::edit(vec![FieldValue::Notes(Some("edited".into()))]),
    };
    assert_eq!(store.push(&a, vec![edit], now).unwrap().applied, 1);
    let doc = store.record_doc(first.record).unwrap().unwrap();
    assert_eq!(doc.ops.len(), 2);
    assert_eq!(
        doc.view(first.record).family.unwrap().fields.notes,
        edited.notes
    );
}

#[test]
fn concurrent_pushes_to_the_same_records_keep_every_operation_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let (a, b, reader) = (
        enrolled(&store, "a"),
        enrolled(&store, "b"),
        enrolled(&store, "reader"),
    );
    let now = Utc::now();
    let creates = creates(&a, 40);
    store.push(&a, creates.clone(), now).unwrap();
    let edits = |device: &Device, round: usize| -> Vec<Op> {
        creates
            .iter()
            .map(|c| Op {
                id: returnee_shared::OpId(uuid::Uuid::new_v4()),
                record: c.record,
                device: device.id,
                at: now,
                base: vec![c.id],
                resolution: false,
                change: Change::edit(vec![FieldValue::Notes(Some(format!(
                    "{} {round}",
                    device.name
                )))]),
            })
            .collect()
    };
    let mut sent: Vec<Op> = creates.clone();
    let batches: Vec<(Device, Vec<Op>)> = (0..6)
        .flat_map(|round| [(a.clone(), edits(&a, round)), (b.clone(), edits(&b, round))])
        .collect();
    for (_, ops) in &batches {
        sent.extend(ops.iter().cloned());
    }
    std::thread::scope(|s| {
        // Every batch at once, each sent twice (a re-send racing the
        // original): between the two, every operation applied once.
        let running: Vec<_> = batches
            .iter()
            .map(|(device, ops)| {
                let store = &store;
                let twice: Vec<_> = (0..2)
                    .map(|_| s.spawn(move || store.push(device, ops.clone(), now).unwrap()))
                    .collect();
                (ops.len() as u64, twice)
            })
            .collect();
        for (n, twice) in running {
            let acks: Vec<PushResponse> = twice.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(acks[0].applied + acks[1].applied, n);
            assert_eq!(acks[0].already_held + acks[1].already_held, n);
        }
    });
    let pulled = pull_all(&store, &reader, 100);
    let mut got: Vec<_> = pulled.iter().map(|o| o.id).collect();
    let mut want: Vec<_> = sent.iter().map(|o| o.id).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every operation logged once");
    for c in &creates {
        let doc = store.record_doc(c.record).unwrap().unwrap();
        assert_eq!(doc.ops.len(), 1 + 12, "the create and every edit");
    }
}

#[test]
fn a_second_open_of_a_store_in_use_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let _first = ServerStore::open(dir.path()).unwrap();
    let second = ServerStore::open(dir.path());
    assert!(
        matches!(second, Err(StoreError::InUse(_))),
        "{:?}",
        second.err()
    );
}

#[test]
fn an_operation_of_a_later_release_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let a = enrolled(&store, "a");
    let now = Utc::now();
    let ops = creates(&a, 1);
    store.push(&a, ops.clone(), now).unwrap();
    let later = Op {
        id: returnee_shared::OpId(uuid::Uuid::new_v4()),
        change: serde_json::from_str(r#"{"kind":"verify","by":"phone"}"#).unwrap(),
        ..ops[0].clone()
    };
    let r = store.push(&a, vec![later.clone()], now).unwrap();
    assert_eq!(r.applied, 0);
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert_eq!(r.rejected[0].op, later.id);
    assert_eq!(
        r.rejected[0].error,
        returnee_shared::wire::ErrorCode::BadRequest
    );
    assert!(
        r.rejected[0].message.contains("kind `verify`")
            && r.rejected[0].message.contains("upgrade the server"),
        "{}",
        r.rejected[0].message
    );
    let doc = store.record_doc(ops[0].record).unwrap().unwrap();
    assert_eq!(doc.ops.len(), 1, "nothing stored");
}
