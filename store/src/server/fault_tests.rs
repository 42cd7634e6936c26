//! Fault tests of the store on its journal: cuts of the journal, sled
//! deleted or overwritten, a backup taken during a sustained push.

use super::tests::{enrolled, fields};
use super::*;
use crate::journal::HEADER;

fn create(device: &Device, fields: returnee_shared::FamilyFields) -> Op {
    Op {
        id: crate::ids::new_op_id(),
        record: crate::ids::new_record_id(),
        device: device.id,
        at: Utc::now(),
        base: vec![],
        resolution: false,
        change: Change::Create {
            fields,
            origin: None,
        },
    }
}

fn edit(device: &Device, of: &Op, notes: &str) -> Op {
    Op {
        id: crate::ids::new_op_id(),
        record: of.record,
        device: device.id,
        at: Utc::now(),
        base: vec![of.id],
        resolution: false,
        change: Change::edit(vec![FieldValue::Notes(Some(notes.into()))]),
    }
}

/// A family that is a duplicate candidate of every other copy.
fn twin() -> returnee_shared::FamilyFields {
    let mut f = fields("torkham", 0);
    f.head_name = Some("Mohammad Gul".into());
    f.head_sex = Some(returnee_shared::Sex::Male);
    f.doc_type = returnee_shared::DocType::PorCard;
    f.doc_number = Some("PK-1234567".into());
    f.consent = true;
    f
}

fn segment(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(journaled::journal_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 1, "one segment");
    files.pop().unwrap()
}

fn families(store: &ServerStore, device: &Device) -> u64 {
    store
        .report(device, ReportBuilder::new(Default::default(), None))
        .unwrap()
        .totals
        .families
}

fn journal_end(store: &ServerStore) -> u64 {
    store.journal.lock().unwrap().end()
}

#[test]
fn every_cut_of_the_journal_opens_keeps_every_complete_frame_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let a = enrolled(&store, "a");
    // After each frame: its end, the families and log position it leaves.
    let mut after = vec![(journal_end(&store), 0u64, 0u64)];
    let mut total = 0;
    for i in 0..14u32 {
        let ops: Vec<Op> = (0..=i % 4)
            .map(|n| create(&a, fields("chaman", n)))
            .collect();
        total += ops.len() as u64;
        store.push(&a, ops, Utc::now()).unwrap();
        after.push((journal_end(&store), total, store.last_seq().unwrap()));
    }
    store.flush().unwrap();
    drop(store);
    let seg = segment(dir.path());
    let whole = std::fs::read(&seg).unwrap();
    let enrolled_at = after[0].0;
    // Every frame boundary after enrolment, and 200 offsets inside frames.
    let mut cuts: Vec<u64> = after.iter().map(|a| a.0).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    while cuts.len() < after.len() + 200 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let pos = enrolled_at + rng % (whole.len() as u64 - HEADER - enrolled_at);
        if !after.iter().any(|a| a.0 == pos) {
            cuts.push(pos);
        }
    }
    for pos in cuts {
        std::fs::write(&seg, &whole[..(HEADER + pos) as usize]).unwrap();
        let store = ServerStore::open(dir.path()).unwrap();
        let (end, families_then, seq) = *after.iter().rev().find(|a| a.0 <= pos).unwrap();
        let opened = store.opened().clone();
        assert_eq!(opened.end, end, "cut at {pos}");
        match &opened.recovery.cut {
            Some(cut) => {
                assert_ne!(end, pos, "a cut at a boundary cuts nothing");
                assert_eq!((cut.position, cut.bytes), (end, pos - end));
            }
            None => assert_eq!(end, pos, "a cut inside a frame is reported"),
        }
        let admin = store.devices().unwrap().remove(0);
        assert_eq!(families(&store, &admin), families_then, "cut at {pos}");
        assert_eq!(store.last_seq().unwrap(), seq);
        assert!(store.verify_audit().unwrap().is_ok(), "cut at {pos}");
        // The store takes new pushes after the cut, from where it stands
        // (then its index goes: the next cut's journal is not this one).
        let pushed = pos % 7 == 0;
        if pushed {
            store
                .push(&a, vec![create(&a, fields("chaman", 1))], Utc::now())
                .unwrap();
            assert_eq!(store.last_seq().unwrap(), seq + 1);
        }
        store.flush().unwrap();
        drop(store);
        if pushed {
            std::fs::remove_dir_all(journaled::index_dir(dir.path())).unwrap();
        }
    }
}

/// What the repair must give back identically.
#[derive(Debug, PartialEq)]
struct Views {
    report: returnee_shared::Report,
    conflicts: Vec<Conflict>,
    duplicates: Vec<returnee_shared::duplicates::Candidate>,
    devices: Vec<Device>,
    audit: u64,
    last_seq: u64,
}

fn views(dir: &Path) -> Views {
    let store = ServerStore::open(dir).unwrap();
    let index = DuplicateIndex::open(&store).unwrap();
    let admin = store.devices().unwrap().remove(0);
    let views = Views {
        report: store
            .report(&admin, ReportBuilder::new(Default::default(), None))
            .unwrap(),
        conflicts: store.conflicts(&admin).unwrap(),
        duplicates: index.candidates().unwrap(),
        devices: store.devices().unwrap(),
        audit: store.verify_audit().unwrap().unwrap(),
        last_seq: store.last_seq().unwrap(),
    };
    index.close().unwrap();
    store.flush().unwrap();
    views
}

#[test]
fn sled_deleted_or_overwritten_is_rebuilt_by_repair_with_identical_views() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = ServerStore::open(dir.path()).unwrap();
        let (a, b) = (enrolled(&store, "a"), enrolled(&store, "b"));
        let mut ops: Vec<Op> = (0..40).map(|n| create(&a, fields("torkham", n))).collect();
        ops.extend((0..3).map(|_| create(&a, twin())));
        store.push(&a, ops.clone(), Utc::now()).unwrap();
        store
            .push(&b, vec![create(&b, twin())], Utc::now())
            .unwrap();
        // Concurrent edits of one field: conflicts.
        for of in &ops[..5] {
            store
                .push(&a, vec![edit(&a, of, "from a")], Utc::now())
                .unwrap();
            store
                .push(&b, vec![edit(&b, of, "from b")], Utc::now())
                .unwrap();
        }
        store.flush().unwrap();
    }
    let before = views(dir.path());
    assert_eq!(before.conflicts.len(), 5);
    assert_eq!(before.duplicates.len(), 6);
    // A healthy store: checked, nothing rebuilt.
    let done = repair(dir.path()).unwrap();
    assert!(done.rebuilt.is_none(), "{:?}", done.checks);
    assert!(done.checks.iter().all(|c| c.1));
    let index = journaled::index_dir(dir.path());
    // Deleted: every file of sled.
    std::fs::remove_dir_all(&index).unwrap();
    let done = repair(dir.path()).unwrap();
    assert!(done.rebuilt.is_some());
    assert_eq!(done.records, 44);
    assert_eq!(views(dir.path()), before);
    // Overwritten with random bytes, each file at its length.
    for entry in crate::files_under(&index) {
        let len = std::fs::metadata(&entry).unwrap().len() as usize;
        let junk: Vec<u8> = (0..len.max(64))
            .map(|i| (i * 7919 % 251) as u8 ^ 0x5a)
            .collect();
        std::fs::write(&entry, junk).unwrap();
    }
    let done = repair(dir.path()).unwrap();
    assert!(done.rebuilt.is_some(), "{:?}", done.checks);
    assert!(done.checks.iter().any(|c| !c.1));
    assert_eq!(views(dir.path()), before);
}

#[test]
fn damage_before_the_tail_stops_repair_naming_the_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = ServerStore::open(dir.path()).unwrap();
        let a = enrolled(&store, "a");
        for n in 0..3 {
            store
                .push(&a, vec![create(&a, fields("torkham", n))], Utc::now())
                .unwrap();
        }
        store.flush().unwrap();
    }
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[HEADER as usize + 20] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let err = repair(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains(&seg.display().to_string()) && err.contains("at byte 16"),
        "{err}"
    );
}

#[test]
fn a_backup_during_a_sustained_push_restores_the_report_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let a = enrolled(&store, "a");
    let code = store
        .mint_code(Role::Field, vec!["torkham".into()], 1, None, Utc::now())
        .unwrap();
    let (field, token) = store
        .enroll(&code, DeviceId(uuid::Uuid::new_v4()), "field", Utc::now())
        .unwrap()
        .unwrap();
    let pushing = {
        let (store, a) = (store.clone(), a.clone());
        std::thread::spawn(move || {
            for i in 0..60u32 {
                let ops = (0..10)
                    .map(|n| create(&a, fields("torkham", i * 10 + n)))
                    .collect();
                store.push(&a, ops, Utc::now()).unwrap();
            }
        })
    };
    while store.last_seq().unwrap() < 150 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = dir.path().join("backup.rtb");
    let manifest = Backup::take(dir.path(), &out, Utc::now()).unwrap();
    pushing.join().unwrap();
    assert!(
        manifest.last_seq >= 150 && manifest.last_seq < 600,
        "{manifest:?}"
    );
    assert!(
        Backup::take(dir.path(), &out, Utc::now()).is_err(),
        "never overwritten"
    );
    store.flush().unwrap();
    // The source at the backup's position: its journal cut there.
    let at = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(journaled::journal_dir(at.path())).unwrap();
    let seg = segment(dir.path());
    let bytes = std::fs::read(&seg).unwrap();
    std::fs::write(
        journaled::journal_dir(at.path()).join(seg.file_name().unwrap()),
        &bytes[..(HEADER + manifest.end) as usize],
    )
    .unwrap();
    let source_then = ServerStore::open(at.path()).unwrap();
    let new = tempfile::tempdir().unwrap();
    let target = new.path().join("restored");
    let (read, restored) = Backup::restore(&out, &target).unwrap();
    assert_eq!(read, manifest);
    assert_eq!(
        restored
            .report(&a, ReportBuilder::new(Default::default(), None))
            .unwrap(),
        source_then
            .report(&a, ReportBuilder::new(Default::default(), None))
            .unwrap()
    );
    assert_eq!(families(&restored, &a), manifest.last_seq);
    assert!(restored.verify_audit().unwrap().is_ok());
    // New positions lie past every cursor of the source.
    assert_eq!(
        restored.last_seq().unwrap(),
        manifest.last_seq + backup::RESTORE_GAP
    );
    let later = create(&a, fields("torkham", 1));
    restored.push(&a, vec![later.clone()], Utc::now()).unwrap();
    let cursor = SyncCursor(store.last_seq().unwrap());
    let page = restored.pull(&field, cursor, 10).unwrap();
    assert_eq!(
        page.ops.len(),
        1,
        "a laptop at the source's last position gets it"
    );
    drop(restored);
    let reopened = ServerStore::open(&target).unwrap();
    assert_eq!(
        reopened.last_seq().unwrap(),
        manifest.last_seq + backup::RESTORE_GAP + 1
    );
    // Devices keep their credentials.
    assert_eq!(reopened.device_by_token(&token).unwrap(), Some(field));
    // Not into a folder that holds something, and not from an altered file.
    assert!(Backup::restore(&out, &target).is_err());
    drop(reopened);
    let mut altered = std::fs::read(&out).unwrap();
    let n = altered.len();
    altered[n / 2] ^= 1;
    let bad = new.path().join("altered.rtb");
    std::fs::write(&bad, altered).unwrap();
    let err = Backup::restore(&bad, &new.path().join("other"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a usable"), "{err}");
}
