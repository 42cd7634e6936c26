use super::duplicates::DuplicateIndex;
use super::tests::{enrolled, fields};
use super::*;

fn op(device: &Device, record: RecordId, base: Vec<returnee_shared::OpId>, change: Change) -> Op {
    Op {
        id: returnee_shared::OpId(uuid::Uuid::new_v4()),
        record,
        device: device.id,
        at: Utc::now(),
        base,
        resolution: false,
        change,
    }
}

/// Every byte of every file under `dir`.
fn raw_bytes(dir: &Path) -> Vec<u8> {
    crate::files_under(dir)
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect()
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

fn totals(store: &ServerStore, device: &Device) -> String {
    let report = store
        .report(device, ReportBuilder::new(Default::default(), None))
        .unwrap();
    serde_json::to_string(&report).unwrap()
}

#[test]
fn an_erasure_leaves_no_byte_of_the_family_in_the_data_folder_and_counts_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    let dups = DuplicateIndex::open(&store).unwrap();
    let sup = enrolled(&store, "supervisor");
    let (kept, erased, duplicate) = (
        crate::ids::new_record_id(),
        crate::ids::new_record_id(),
        crate::ids::new_record_id(),
    );
    let named = |n: u32, name: &str, doc: &str| {
        let mut f = fields("torkham", n);
        f.head_name = Some(name.into());
        f.doc_type = returnee_shared::DocType::PorCard;
        f.doc_number = Some(doc.into());
        f.consent = true;
        f.notes = Some(format!("note about {name}"));
        Change::Create {
            fields: f,
            origin: None,
        }
    };
    let creates = vec![
        op(&sup, kept, vec![], named(1, "Malalai Kakar", "PK1110001")),
        op(
            &sup,
            erased,
            vec![],
            named(2, "Zarghona Wardak", "PK5550123"),
        ),
        op(
            &sup,
            duplicate,
            vec![],
            named(2, "Zargona Wardak", "PK5550124"),
        ),
    ];
    store.push(&sup, creates.clone(), Utc::now()).unwrap();
    // The duplicate is merged into the family to be erased, its name
    // carried onto it; the survivor is then edited.
    let merge = vec![
        op(
            &sup,
            duplicate,
            vec![creates[2].id],
            Change::Merge { into: erased },
        ),
        op(
            &sup,
            erased,
            vec![],
            Change::MergedValues {
                from: duplicate,
                values: vec![FieldValue::HeadName(Some("Zargona Wardak".into()))],
            },
        ),
        op(
            &sup,
            erased,
            vec![creates[1].id],
            Change::edit(vec![FieldValue::Notes(Some(
                "moved on to Jalalabad".into(),
            ))]),
        ),
    ];
    store.push(&sup, merge, Utc::now()).unwrap();
    dups.update(&[kept, erased, duplicate]).unwrap();
    store.flush().unwrap();
    let before = totals(&store, &sup);
    let bytes = raw_bytes(dir.path());
    assert!(holds(&bytes, "Zarghona Wardak") && holds(&bytes, "PK5550123"));

    let erase = op(
        &sup,
        erased,
        vec![],
        Change::Erase {
            reason: "asked by the family".into(),
        },
    );
    // As the server does: the changed records are queued for the duplicate
    // index (its task not run here), then the index is rewritten.
    let ack = store
        .push_then(&sup, vec![erase], Utc::now(), |changed, through| {
            dups.after_push(changed, through, drop)
        })
        .unwrap();
    assert_eq!(ack.applied, 1);
    assert!(store.erasure_pending());
    assert!(dups.rewrite_after_erasure().unwrap());
    assert!(!store.erasure_pending());
    store.flush().unwrap();

    let bytes = raw_bytes(dir.path());
    for gone in [
        "Zarghona",
        "PK5550123",
        "note about Zarghona",
        "Jalalabad",
        // The duplicate's name as the merge carried it (its own record
        // is a separate family record, erased on its own).
    ] {
        assert!(!holds(&bytes, gone), "{gone} is still in the data folder");
    }
    assert!(
        holds(&bytes, "Malalai Kakar"),
        "other families are untouched"
    );
    assert_eq!(totals(&store, &sup), before, "the counts do not change");
    let view = store.record_doc(erased).unwrap().unwrap().view(erased);
    let family = view.active().expect("the family still counts");
    assert_eq!(family.fields.head_name, None);
    assert!(view.conflicts.is_empty(), "{:?}", view.conflicts);
    // The audit trail says who erased and why, not what.
    let (trail, _) = store.audit(0, 100).unwrap();
    let text = serde_json::to_string(&trail).unwrap();
    assert!(text.contains("asked by the family") && text.contains("\"erase\""));

    // A laptop that did not hear of it sends the name again: dropped.
    let late = op(
        &sup,
        erased,
        vec![],
        Change::edit(vec![FieldValue::HeadName(Some("Zarghona W.".into()))]),
    );
    store
        .push_then(&sup, vec![late], Utc::now(), |changed, through| {
            dups.after_push(changed, through, drop)
        })
        .unwrap();
    dups.rewrite_after_erasure().unwrap();
    drop(dups);
    drop(store);
    assert!(!holds(&raw_bytes(dir.path()), "Zarghona"));

    // Reopened, and rebuilt from the journal alone: the same.
    std::fs::remove_dir_all(journaled::index_dir(dir.path())).unwrap();
    let store = ServerStore::open(dir.path()).unwrap();
    assert!(store.opened().rebuilt.is_some() || store.opened().replayed > 0);
    assert_eq!(totals(&store, &sup), before);
    let view = store.record_doc(erased).unwrap().unwrap().view(erased);
    assert_eq!(view.active().unwrap().fields.head_name, None);
}
