//! Values of records already here that changed lately, kept beside their
//! packs ([`super::record_packs`]) until enough wait to rewrite the packs
//! once for all of them.
//!
//! A pull of edits to families already on the laptop changes records all
//! over the arrival order: written into the packs, 1,000 edits rewrote about
//! 1,000 packs of each kind (6 KB each), and sled, which copies a leaf of up
//! to 16 such values at every write into it and rewrites the leaves it
//! relocates, wrote some 45 MB for them. Here such a batch's values are
//! appended instead, as a few keys `r/<number>` (each up to a pack's size)
//! holding entries `kind, record id, present, length, value`; a later entry
//! for a record and kind wins over an earlier one and over the packs. Once
//! more than [`RECENT_BYTES`] would wait, every waiting value is written
//! into the packs first, in batches of bounded size
//! ([`LocalStore::fold_in_pieces`]), the last removing the keys; so it is
//! too before a batch that removes records (a purge) and before the store's
//! files are copied (an erasure, which must leave no superseded value in
//! the packs).
//!
//! Every read of a record's values looks here first. What waits is read
//! once per change ([`RECENT_NEXT_KEY`], which every batch that writes or
//! folds these keys moves on, says when the copy kept in memory is stale).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use returnee_shared::RecordId;
use returnee_shared::packs::{DamagedPack, PACK_BYTES, Place};

use super::keys::RECENT_NEXT_KEY;
use super::record_packs::{DOCS, FEATURES, PackedValues, ROWS};
use super::{Kind, LocalStore, Result, WriteLock};

/// Most bytes of values waiting here before they are written into the
/// packs: about 4 pulls of 1,000 edited families. Every read of a record
/// reads them all once after each change (a few milliseconds).
/// (Tests: a few dozen records, so that they fold often.)
pub(super) const RECENT_BYTES: usize = if cfg!(test) { 16 << 10 } else { 4 << 20 };

/// Most records whose waiting values one batch of a fold writes into the
/// packs: at most this many packs of each kind (about 12 MB at 6 KB a
/// pack), whatever the store's size.
/// (Tests: a few, so that a fold takes several batches.)
const FOLD_RECORDS: usize = if cfg!(test) { 8 } else { 1024 };

#[cfg(test)]
thread_local! {
    /// Pieces a fold writes before it stops as a crash would stop it.
    static CRASH_AFTER_PIECES: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The kinds of values that wait here, in the order of their entries' kind
/// byte.
const KINDS: [&[u8]; 3] = [DOCS, ROWS, FEATURES];

/// Values waiting here, by kind (the order of [`KINDS`]) and record: the
/// latest of each (`None`: removed).
#[derive(Default)]
pub(super) struct Recent {
    values: [HashMap<RecordId, Option<Vec<u8>>>; 3],
    keys: Vec<Vec<u8>>,
    /// The plain size of the entries.
    bytes: usize,
    /// The number the next key gets.
    next: u64,
}

/// The copy of what waits that a store's handles share, with the
/// [`RECENT_NEXT_KEY`] it was read at.
pub(super) type RecentCache = Arc<Mutex<Option<Arc<Recent>>>>;

fn kind_index(prefix: &[u8]) -> usize {
    KINDS
        .iter()
        .position(|k| *k == prefix)
        .expect("a kind of per-record value")
}

impl Recent {
    /// The value of `id` in the kind under `prefix`, if one waits here
    /// (`Some(None)`: removed).
    pub(super) fn get(&self, prefix: &[u8], id: RecordId) -> Option<Option<&[u8]>> {
        self.values[kind_index(prefix)]
            .get(&id)
            .map(|v| v.as_deref())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn of_kind(&self, prefix: &[u8]) -> &HashMap<RecordId, Option<Vec<u8>>> {
        &self.values[kind_index(prefix)]
    }

    fn read(&mut self, plain: &[u8]) -> std::result::Result<(), DamagedPack> {
        let mut at = 0;
        while at < plain.len() {
            let head = plain.get(at..at + 22).ok_or(DamagedPack)?;
            let kind = usize::from(head[0]);
            let id = RecordId(uuid::Uuid::from_bytes(
                head[1..17].try_into().expect("16 bytes"),
            ));
            let len = u32::from_be_bytes(head[18..22].try_into().expect("4 bytes")) as usize;
            let value = plain.get(at + 22..at + 22 + len).ok_or(DamagedPack)?;
            let value = match head[17] {
                0 => None,
                1 => Some(value.to_vec()),
                _ => return Err(DamagedPack),
            };
            self.values
                .get_mut(kind)
                .ok_or(DamagedPack)?
                .insert(id, value);
            at += 22 + len;
        }
        self.bytes += plain.len();
        Ok(())
    }
}

/// The entries of `updates` of each kind (in [`KINDS`] order), as plain
/// key values of at most about a pack's size.
fn pieces(updates: [&PackedValues; 3]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for (kind, values) in updates.into_iter().enumerate() {
        for (id, value) in values {
            let last = out.last_mut().expect("one piece");
            if last.len() >= PACK_BYTES {
                out.push(Vec::new());
            }
            let last = out.last_mut().expect("one piece");
            last.push(kind as u8);
            last.extend_from_slice(id.0.as_bytes());
            last.push(u8::from(value.is_some()));
            let value = value.as_deref().unwrap_or_default();
            last.extend_from_slice(&(value.len() as u32).to_be_bytes());
            last.extend_from_slice(value);
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

impl LocalStore {
    /// What waits beside the packs, read again only if a batch changed it
    /// since the last read.
    pub(super) fn recent(&self) -> Result<Arc<Recent>> {
        let next = match self.get_value(RECENT_NEXT_KEY)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| super::damaged("the number of the next recent key"))?,
            ),
            None => 0,
        };
        if let Some(cached) = self.recent.lock().expect("recent cache").as_ref()
            && cached.next == next
        {
            return Ok(cached.clone());
        }
        let mut recent = Recent {
            next,
            ..Recent::default()
        };
        for item in self.db.scan_prefix(Kind::Recent.prefix()) {
            let (key, value) = item?;
            let plain = self.open_value(&key, value)?;
            recent.read(&plain)?;
            recent.keys.push(key.to_vec());
        }
        let recent = Arc::new(recent);
        *self.recent.lock().expect("recent cache") = Some(recent.clone());
        Ok(recent)
    }

    /// Stages `docs`, `rows` and `features` of records already here as
    /// keys beside the packs and returns the keys, unless more than
    /// [`RECENT_BYTES`] would then wait: then stages nothing (`None`).
    pub(super) fn stage_recent(
        &self,
        batch: &mut sled::Batch,
        recent: &Recent,
        updates: [&PackedValues; 3],
    ) -> Result<Option<Vec<Vec<u8>>>> {
        let pieces = pieces(updates);
        if pieces.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let bytes: usize = pieces.iter().map(Vec::len).sum();
        if recent.bytes + bytes > RECENT_BYTES {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(pieces.len());
        let mut next = recent.next;
        for piece in pieces {
            let key = Kind::Recent.key(&[&next.to_be_bytes()]);
            batch.insert(key.clone(), self.cipher.seal(&key, piece));
            keys.push(key);
            next += 1;
        }
        self.stage_recent_next(batch, next);
        Ok(Some(keys))
    }

    /// Writes every value waiting beside the packs into them in batches of
    /// at most [`FOLD_RECORDS`] records, in the order of their places (so
    /// that each pack is rewritten once), the last batch removing the keys
    /// that held them. Each batch is atomic; until the last, a value is in
    /// both places, the same. The caller holds the commit lock; the batches
    /// are durable with its next flush.
    pub(super) fn fold_in_pieces(&self, lock: &WriteLock<'_>, recent: &Recent) -> Result<()> {
        let mut ids: Vec<RecordId> = recent
            .values
            .iter()
            .flat_map(|values| values.keys().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let places = self.placement().places(&ids)?;
        let mut order: Vec<(Option<Place>, RecordId)> = places.into_iter().zip(ids).collect();
        order.sort_unstable();
        let pieces: Vec<&[(Option<Place>, RecordId)]> = order.chunks(FOLD_RECORDS).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let mut w = self.writes();
            for (_, id) in piece.iter() {
                for (values, into) in
                    recent
                        .values
                        .iter()
                        .zip([&mut w.docs, &mut w.rows, &mut w.features])
                {
                    if let Some(value) = values.get(id) {
                        into.insert(*id, value.clone());
                    }
                }
            }
            if i + 1 == pieces.len() {
                for key in &recent.keys {
                    w.batch.remove(key.as_slice());
                }
                self.stage_recent_next(&mut w.batch, recent.next + 1);
            }
            let written = self.stage_into_packs(lock, &mut w)?;
            self.db.apply_batch(w.batch)?;
            crate::db::weigh_written(&self.db, &written);
            #[cfg(test)]
            if CRASH_AFTER_PIECES.get() == Some(i + 1) {
                return Err(super::damaged("a crash in the middle of a fold"));
            }
        }
        Ok(())
    }

    fn stage_recent_next(&self, batch: &mut sled::Batch, next: u64) {
        let key = RECENT_NEXT_KEY;
        batch.insert(key, self.cipher.seal(key, next.to_be_bytes().to_vec()));
    }

    /// Writes every value waiting beside the packs into them, in one
    /// flushed batch: before the store's files are copied (an erasure),
    /// so that the packs hold no value something later superseded.
    pub(super) fn fold_recent(&self) -> Result<()> {
        let lock = self.write_lock();
        if self.recent()?.is_empty() {
            return Ok(());
        }
        let mut w = self.writes();
        w.fold_recent = true;
        self.commit(&lock, w)
    }
}

/// The values of a scan of packs, with what waits beside them in their
/// place: a record's waiting value replaces its packed one (or removes it),
/// and the records with a waiting value and none in the packs come last,
/// in id order.
pub(super) struct WithRecent<I> {
    packs: I,
    recent: Arc<Recent>,
    prefix: &'static [u8],
    seen: HashSet<RecordId>,
    tail: Option<std::vec::IntoIter<(RecordId, sled::IVec)>>,
}

impl<I> WithRecent<I> {
    pub(super) fn new(packs: I, recent: Arc<Recent>, prefix: &'static [u8]) -> Self {
        WithRecent {
            packs,
            recent,
            prefix,
            seen: HashSet::new(),
            tail: None,
        }
    }
}

impl<I: Iterator<Item = Result<(RecordId, sled::IVec)>>> Iterator for WithRecent<I> {
    type Item = Result<(RecordId, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(tail) = &mut self.tail {
            return tail.next().map(Ok);
        }
        let waiting = self.recent.of_kind(self.prefix);
        if waiting.is_empty() {
            return self.packs.next();
        }
        for item in self.packs.by_ref() {
            let Ok((id, _)) = &item else {
                return Some(item);
            };
            match waiting.get(id) {
                None => return Some(item),
                Some(value) => {
                    self.seen.insert(*id);
                    if let Some(value) = value {
                        return Some(Ok((*id, sled::IVec::from(value.as_slice()))));
                    }
                }
            }
        }
        let mut tail: Vec<(RecordId, sled::IVec)> = waiting
            .iter()
            .filter(|(id, _)| !self.seen.contains(id))
            .filter_map(|(id, v)| Some((*id, sled::IVec::from(v.as_deref()?))))
            .collect();
        tail.sort_unstable_by_key(|e| e.0);
        let mut tail = tail.into_iter();
        let first = tail.next().map(Ok);
        self.tail = Some(tail);
        first
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use returnee_shared::FieldValue;

    use super::super::tests::fields;
    use super::*;

    fn waiting_keys(store: &LocalStore) -> usize {
        store.db.scan_prefix(Kind::Recent.prefix()).count()
    }

    fn notes(store: &LocalStore) -> Vec<(RecordId, Option<String>)> {
        store
            .views()
            .map(|v| {
                let v = v.unwrap();
                (v.family.id, v.family.fields.notes)
            })
            .collect()
    }

    /// The notes of `id`, which is on the laptop.
    fn note_of(store: &LocalStore, id: RecordId) -> Option<String> {
        store.get(id).unwrap().unwrap().family.fields.notes
    }

    fn note(store: &LocalStore, id: RecordId, text: &str) {
        let now = Utc::now();
        store
            .edit(
                id,
                vec![FieldValue::Notes(Some(text.into()))],
                now.date_naive(),
                now,
            )
            .unwrap();
    }

    /// A store of `n` families, all in the packs.
    fn packed_store(dir: &std::path::Path, n: u32) -> (LocalStore, Vec<RecordId>) {
        let (store, _) = LocalStore::init(dir, "t").unwrap();
        let ids = (0..n)
            .map(|i| store.add(fields(i), Utc::now()).unwrap())
            .collect();
        store.fold_recent().unwrap();
        assert_eq!(waiting_keys(&store), 0);
        (store, ids)
    }

    /// The store's files as a crash right now would leave them, opened.
    fn crashed_copy(store: &LocalStore, to: &std::path::Path) -> LocalStore {
        for file in crate::files_under(store.dir()) {
            let target = to.join(file.strip_prefix(store.dir()).unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&file, &target).unwrap();
        }
        LocalStore::open(to).unwrap()
    }

    #[test]
    fn edits_wait_beside_the_packs_and_every_read_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = packed_store(dir.path(), 40);
        let before: Vec<RecordId> = notes(&store).into_iter().map(|n| n.0).collect();
        note(&store, ids[3], "edited three");
        note(&store, ids[30], "edited thirty");
        assert!(waiting_keys(&store) > 0, "the edits wait beside the packs");

        let view = store.get(ids[3]).unwrap().unwrap();
        assert_eq!(view.family.fields.notes.as_deref(), Some("edited three"));
        let many = store.packed_many(DOCS, &{
            let mut s = vec![ids[3], ids[4], ids[30]];
            s.sort();
            s
        });
        assert!(many.unwrap().iter().all(Option::is_some));
        // A scan yields each family once, in the order they arrived, with
        // the edits in place.
        let scanned = notes(&store);
        assert_eq!(scanned.iter().map(|n| n.0).collect::<Vec<_>>(), before);
        let edited: Vec<_> = scanned.iter().filter(|n| n.1.is_some()).collect();
        assert_eq!(edited.len(), 2);
        // A second handle of the same store (its own copy of what waits).
        let other = store.clone();
        note(&store, ids[3], "edited again");
        assert_eq!(note_of(&other, ids[3]).as_deref(), Some("edited again"));
        drop(other);
        // A deleted family leaves the report and the duplicate index.
        store.delete(ids[5], Utc::now()).unwrap();
        assert_eq!(store.report_rows().count(), 39);
        assert_eq!(store.scan_packed(FEATURES).count(), 39);
        assert!(store.features_of(ids[5]).unwrap().is_none());
        store.restore(ids[5], Utc::now()).unwrap();
        assert_eq!(store.report_rows().count(), 40);
        assert!(store.features_of(ids[5]).unwrap().is_some());

        let copy = tempfile::tempdir().unwrap();
        let reopened = crashed_copy(&store, copy.path());
        assert_eq!(notes(&reopened), notes(&store));
        assert_eq!(reopened.report_rows().count(), 40);
    }

    #[test]
    fn waiting_values_go_into_the_packs_past_the_limit_and_at_a_purge() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = packed_store(dir.path(), 50);
        let mut most = 0;
        for round in 0..6 {
            for id in &ids {
                note(&store, *id, &format!("round {round} {}", "x".repeat(80)));
            }
            most = most.max(waiting_keys(&store));
            // Every read, folded or not, sees the last edit of every family.
            let scanned = notes(&store);
            assert_eq!(scanned.len(), 50);
            assert!(scanned.iter().all(|n| {
                n.1.as_deref()
                    .unwrap()
                    .starts_with(&format!("round {round} "))
            }));
            // And so do the files a crash at this point leaves.
            let copy = tempfile::tempdir().unwrap();
            assert_eq!(notes(&crashed_copy(&store, copy.path())), scanned);
        }
        let waiting = store.recent().unwrap();
        assert!(
            waiting.bytes <= RECENT_BYTES,
            "{} bytes wait",
            waiting.bytes
        );
        assert!(most > 0);
        store.fold_recent().unwrap();
        assert_eq!(waiting_keys(&store), 0);
        assert!(
            notes(&store)
                .iter()
                .all(|n| n.1.as_deref().unwrap().starts_with("round 5 "))
        );

        // A purge (records leave) takes what waits into the packs first.
        note(&store, ids[0], "waiting");
        assert!(waiting_keys(&store) > 0);
        let mut w = store.writes();
        let lock = store.write_lock();
        w.docs.insert(ids[1], None);
        w.rows.insert(ids[1], None);
        w.features.insert(ids[1], None);
        store.commit(&lock, w).unwrap();
        drop(lock);
        assert_eq!(waiting_keys(&store), 0);
        assert!(store.get(ids[1]).unwrap().is_none());
        assert_eq!(note_of(&store, ids[0]).as_deref(), Some("waiting"));
        assert_eq!(store.views().count(), 49);
    }

    #[test]
    fn a_fold_stopped_between_its_batches_loses_no_edit() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = packed_store(dir.path(), 50);
        for id in &ids {
            note(&store, *id, &format!("first {}", "y".repeat(200)));
        }
        // Edits until one makes too much wait: its fold stops after the
        // first of its batches.
        CRASH_AFTER_PIECES.set(Some(1));
        let now = Utc::now();
        let mut stopped = Ok(Vec::new());
        for id in &ids {
            stopped = store.edit(
                *id,
                vec![FieldValue::Notes(Some(format!(
                    "second {}",
                    "z".repeat(400)
                )))],
                now.date_naive(),
                now,
            );
            if stopped.is_err() {
                break;
            }
        }
        CRASH_AFTER_PIECES.set(None);
        let stopped = stopped.unwrap_err().to_string();
        assert!(
            stopped.contains("a crash in the middle of a fold"),
            "{stopped}"
        );
        assert!(waiting_keys(&store) > 0, "the keys go with the last batch");
        let copy = tempfile::tempdir().unwrap();
        let crashed = crashed_copy(&store, copy.path());
        let expected = notes(&store);
        assert_eq!(notes(&crashed), expected);
        assert!(
            expected
                .iter()
                .any(|n| n.1.as_deref().unwrap().starts_with("second "))
        );
        assert_eq!(crashed.report_rows().count(), 50);
        // The next commit folds from where that one stopped.
        note(&crashed, ids[1], "after the crash");
        crashed.fold_recent().unwrap();
        assert_eq!(waiting_keys(&crashed), 0);
        let mut after = expected.clone();
        after.iter_mut().find(|n| n.0 == ids[1]).unwrap().1 = Some("after the crash".into());
        assert_eq!(notes(&crashed), after);
    }

    #[test]
    fn an_erasure_leaves_no_superseded_value_in_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = packed_store(dir.path(), 20);
        // The name in the packs, and in a value waiting beside them.
        note(&store, ids[7], "Zarghona Wardak came back");
        store.fold_recent().unwrap();
        note(&store, ids[7], "Zarghona Wardak second visit");
        assert!(waiting_keys(&store) > 0);
        let (store, _) = store.erase(ids[7], "asked", Utc::now()).unwrap();
        assert_eq!(waiting_keys(&store), 0);
        assert_eq!(
            store.get(ids[7]).unwrap().unwrap().family.fields.notes,
            None
        );
        assert_eq!(store.views().count(), 20);
        drop(store);
        let mut bytes = Vec::new();
        for file in crate::files_under(dir.path()) {
            bytes.extend(std::fs::read(file).unwrap());
        }
        assert!(!bytes.windows(9).any(|w| w == b"Zarghona "));
    }
}
