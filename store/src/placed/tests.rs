use super::*;
use crate::packs::Plain;

#[derive(Debug)]
struct E;
impl From<sled::Error> for E {
    fn from(_: sled::Error) -> Self {
        E
    }
}
impl From<DamagedPack> for E {
    fn from(_: DamagedPack) -> Self {
        E
    }
}

static PLAIN: Plain<E> = Plain::new();

fn id(n: u128) -> RecordId {
    RecordId(uuid::Uuid::from_u128(
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
    ))
}

type KindUpdates = (&'static [u8], Vec<(RecordId, Option<Vec<u8>>)>);

fn write(db: &sled::Db, kinds: &[KindUpdates]) -> usize {
    let placement = Placement::new(db, &PLAIN, b"I/", false, b"n");
    let mut batch = sled::Batch::default();
    let staged: Vec<(Kind<'_, Plain<E>>, &Updates)> = kinds
        .iter()
        .map(|(p, u)| (Packs::new(db, p, false, &PLAIN), &u[..]))
        .collect();
    let forget: Vec<RecordId> = kinds[0]
        .1
        .iter()
        .filter(|u| u.1.is_none())
        .map(|u| u.0)
        .collect();
    let written = placement.stage(&mut batch, &staged, &forget).unwrap();
    db.apply_batch(batch).unwrap();
    written.len()
}

#[test]
fn records_in_any_id_order_append_and_read_back_by_id() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let placement = Placement::new(&db, &PLAIN, b"I/", false, b"n");
    let docs = Packs::new(&db, b"D/", false, &PLAIN);
    let rows = Packs::new(&db, b"S/", false, &PLAIN);
    let mut all = Vec::new();
    for batch in 0..20u128 {
        // Ids scattered over the whole id space, sorted per batch.
        let mut docs_u: Vec<_> = (0..500u128)
            .map(|i| (id(batch * 500 + i), Some(vec![(i % 251) as u8; 300])))
            .collect();
        docs_u.sort_by_key(|u| u.0);
        let rows_u: Vec<_> = docs_u
            .iter()
            .step_by(2)
            .map(|(id, _)| (*id, Some(vec![7u8; 19])))
            .collect();
        all.extend(docs_u.iter().map(|u| u.0));
        let written = write(&db, &[(b"D/", docs_u), (b"S/", rows_u)]);
        // Appending: a few packs per kind, and index packs; never a pack
        // per record.
        assert!(written < 500, "batch {batch} wrote {written} packs");
    }
    all.sort();
    let got = placement.get_many(docs, &all).unwrap();
    assert!(
        got.iter()
            .all(|v| v.as_ref().is_some_and(|v| v.len() == 300))
    );
    let places = placement.places(&all).unwrap();
    let mut seen: Vec<u64> = places.iter().map(|s| s.unwrap().0).collect();
    seen.sort();
    assert_eq!(
        seen,
        (0..10_000).collect::<Vec<_>>(),
        "each record one place"
    );
    assert_eq!(Placement::scan(rows).count(), 5_000);
    let scanned: Vec<RecordId> = Placement::scan(docs).map(|r| r.unwrap().0).collect();
    assert_eq!(scanned.len(), 10_000);
    // Scans run in arrival order: the first batch's records first.
    assert_eq!(
        places[all.binary_search(&scanned[0]).unwrap()],
        Some(Place(0))
    );
    assert_eq!(placement.get(rows, id(1)).unwrap(), None);
    assert_eq!(placement.get(rows, id(2)).unwrap(), Some(vec![7u8; 19]));
    assert_eq!(placement.get(docs, id(1_000_000)).unwrap(), None);
}

#[test]
fn with_runs_records_in_any_order_are_found_before_and_after_each_merge() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let placement = Placement::new(&db, &PLAIN, b"I/", false, b"n").with_runs(b"J/", 120);
    let docs = Packs::new(&db, b"D/", false, &PLAIN);
    let runs = || db.scan_prefix(b"J/").count();
    let mut all = Vec::new();
    let mut merged = 0;
    for batch in 0..12u128 {
        let mut ids: Vec<RecordId> = (0..50).map(|i| id(batch * 50 + i)).collect();
        ids.sort();
        let updates: Vec<_> = ids
            .iter()
            .map(|i| (*i, Some(vec![batch as u8; 40])))
            .collect();
        let had = runs();
        let mut b = sled::Batch::default();
        placement
            .stage(&mut b, &[(docs, &updates[..])], &[])
            .unwrap();
        db.apply_batch(b).unwrap();
        if runs() < had {
            merged += 1;
        }
        all.extend(ids);
        all.sort();
        let places = placement.places(&all).unwrap();
        let mut seen: Vec<u64> = places.iter().map(|p| p.unwrap().0).collect();
        seen.sort();
        assert_eq!(seen, (0..all.len() as u64).collect::<Vec<_>>());
        let values = placement.get_many(docs, &all).unwrap();
        assert!(
            values
                .iter()
                .all(|v| v.as_ref().is_some_and(|v| v.len() == 40))
        );
        // At most the limit waits in runs (50 a batch: two batches).
        let waiting: usize = db
            .scan_prefix(b"J/")
            .map(|kv| kv.unwrap().1.len() / RUN_ENTRY)
            .sum();
        assert!(waiting <= 120, "batch {batch}: {waiting} entries in runs");
    }
    assert!(merged >= 3, "merged {merged} times");
    // A record that leaves, from a run or from the packs: every run is
    // merged, and it is gone.
    let mut b = sled::Batch::default();
    placement
        .stage(&mut b, &[(docs, &[(all[3], None)][..])], &[all[3]])
        .unwrap();
    db.apply_batch(b).unwrap();
    assert_eq!(runs(), 0);
    assert_eq!(placement.places(&all[3..4]).unwrap(), vec![None]);
    assert_eq!(
        placement
            .places(&all[..3])
            .unwrap()
            .iter()
            .flatten()
            .count(),
        3
    );
    // A placement that knows no runs misses the records in them: a
    // store written with runs is read with them.
    let mut b = sled::Batch::default();
    let fresh = id(9_999);
    placement
        .stage(&mut b, &[(docs, &[(fresh, Some(vec![1]))][..])], &[])
        .unwrap();
    db.apply_batch(b).unwrap();
    let plain = Placement::new(&db, &PLAIN, b"I/", false, b"n");
    assert_eq!(plain.places(&[fresh]).unwrap(), vec![None]);
    assert!(placement.places(&[fresh]).unwrap()[0].is_some());
}

#[test]
fn with_known_ids_places_are_the_index_s_before_and_after_merges() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let plain = || Placement::new(&db, &PLAIN, b"I/", false, b"n").with_runs(b"J/", 120);
    let docs = Packs::new(&db, b"D/", false, &PLAIN);
    let mut all = Vec::new();
    // Records placed before the filter exists: it is built from the
    // index (packs and runs) at its first use.
    let known = KnownIds::new();
    for batch in 0..10u128 {
        let placement = plain().with_known_ids(&known);
        let mut ids: Vec<RecordId> = (0..50).map(|i| id(batch * 50 + i)).collect();
        ids.sort();
        let updates: Vec<_> = ids.iter().map(|i| (*i, Some(vec![1u8; 8]))).collect();
        // The first batches written before any use of the filter.
        let writer = if batch < 3 {
            plain()
        } else {
            plain().with_known_ids(&known)
        };
        let (read, _) = writer.get_many_placed(docs, &ids).unwrap();
        let mut b = sled::Batch::default();
        writer
            .stage_knowing(&mut b, &[(docs, &updates[..])], &[], &read)
            .unwrap();
        db.apply_batch(b).unwrap();
        all.extend(ids);
        all.sort();
        if batch < 3 {
            continue;
        }
        let mut asked = all.clone();
        asked.extend((9_000..9_020).map(id));
        asked.sort();
        assert_eq!(
            placement.places(&asked).unwrap(),
            plain().places(&asked).unwrap(),
            "batch {batch}"
        );
    }
    let places = plain().places(&all).unwrap();
    let mut seen: Vec<u64> = places.iter().map(|p| p.unwrap().0).collect();
    seen.sort();
    assert_eq!(seen, (0..500).collect::<Vec<_>>(), "each record one place");
    let fresh: Vec<RecordId> = (9_000..9_100).map(id).collect();
    assert!(
        plain()
            .with_known_ids(&known)
            .places(&fresh)
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
}

#[test]
fn places_read_before_staging_give_the_same_places_as_the_index() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let placement = Placement::new(&db, &PLAIN, b"I/", false, b"n");
    let docs = Packs::new(&db, b"D/", false, &PLAIN);
    let mut old: Vec<RecordId> = (0..300).map(id).collect();
    old.sort();
    write(
        &db,
        &[(b"D/", old.iter().map(|i| (*i, Some(vec![1]))).collect())],
    );
    let before = placement.places(&old).unwrap();
    // A batch of 50 placed records and 50 new ones, read first; then
    // staged with 20 more that were not read.
    let mut read: Vec<RecordId> = old[100..150].to_vec();
    read.extend((1000..1050).map(id));
    read.sort();
    let (known, values) = placement.get_many_placed(docs, &read).unwrap();
    assert_eq!(values.iter().filter(|v| v.is_some()).count(), 50);
    let mut updates: Vec<(RecordId, Option<Vec<u8>>)> = read
        .iter()
        .chain(&old[200..220])
        .map(|i| (*i, Some(vec![2])))
        .collect();
    updates.sort_by_key(|u| u.0);
    let mut batch = sled::Batch::default();
    placement
        .stage_knowing(&mut batch, &[(docs, &updates[..])], &[], &known)
        .unwrap();
    db.apply_batch(batch).unwrap();
    assert_eq!(placement.places(&old).unwrap(), before, "placed ones stay");
    let mut fresh: Vec<RecordId> = (1000..1050).map(id).collect();
    fresh.sort();
    let mut new_places: Vec<u64> = placement
        .places(&fresh)
        .unwrap()
        .into_iter()
        .map(|p| p.unwrap().0)
        .collect();
    new_places.sort();
    assert_eq!(new_places, (300..350).collect::<Vec<_>>());
    assert!(
        placement
            .get_many(docs, &updates.iter().map(|u| u.0).collect::<Vec<_>>())
            .unwrap()
            .iter()
            .all(|v| v.as_deref() == Some(&[2u8][..]))
    );
}

#[test]
fn a_changed_record_keeps_its_slot_and_a_forgotten_one_leaves() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let placement = Placement::new(&db, &PLAIN, b"I/", false, b"n");
    let docs = Packs::new(&db, b"D/", false, &PLAIN);
    let ids: Vec<RecordId> = {
        let mut v: Vec<_> = (0..100).map(id).collect();
        v.sort();
        v
    };
    write(
        &db,
        &[(b"D/", ids.iter().map(|i| (*i, Some(vec![1]))).collect())],
    );
    let before = placement.places(&ids).unwrap();
    write(
        &db,
        &[(b"D/", vec![(ids[5], Some(vec![2])), (ids[6], None)])],
    );
    assert_eq!(placement.places(&ids[5..6]).unwrap(), before[5..6]);
    assert_eq!(placement.get(docs, ids[5]).unwrap(), Some(vec![2]));
    assert_eq!(placement.get(docs, ids[6]).unwrap(), None);
    assert_eq!(placement.places(&ids[6..7]).unwrap(), vec![None]);
    // A new record after a forgotten one takes a new place, never reuses.
    let fresh = id(5_000);
    write(&db, &[(b"D/", vec![(fresh, Some(vec![3]))])]);
    assert_eq!(placement.places(&[fresh]).unwrap(), vec![Some(Place(100))]);
    assert_eq!(Placement::scan(docs).count(), 100);
}

#[test]
fn an_entry_under_another_record_s_slot_is_damage() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let placement = Placement::new(&db, &PLAIN, b"I/", false, b"n");
    let docs = Packs::new(&db, b"D/", false, &PLAIN);
    let (a, b) = (id(1).min(id(2)), id(1).max(id(2)));
    write(
        &db,
        &[(b"D/", vec![(a, Some(vec![1])), (b, Some(vec![2]))])],
    );
    // Point b's index entry at a's place.
    let slot_a = placement.places(&[a]).unwrap()[0].unwrap();
    let mut batch = sled::Batch::default();
    let index: Packs<'_, Plain<E>, RecordId> = Packs::new(&db, b"I/", false, &PLAIN);
    index
        .stage(&mut batch, &[(b, Some(slot_a.0.to_be_bytes().to_vec()))])
        .unwrap();
    db.apply_batch(batch).unwrap();
    assert!(placement.get(docs, b).is_err());
    assert_eq!(placement.get(docs, a).unwrap(), Some(vec![1]));
}
