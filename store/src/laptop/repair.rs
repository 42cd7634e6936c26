//! `returnee repair`: check the store, and rebuild it from its outbox
//! ([`outbox`]) when it does not open or a check fails. A rebuilt store
//! holds the device's identity and enrollment, every operation not yet
//! acknowledged by the server (queued again, applied to its families) and
//! the refused ones; everything else it held comes back from the server at
//! the next sync, which pulls from the start, this device's own operations
//! included ([`LocalStore::full_repull`]).

use std::time::{Duration, Instant};

use super::outbox::{OutboxState, RawOutbox, read_raw};
use super::*;

/// What a repair checked and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// Each check made, as said to a person.
    pub checked: Vec<String>,
    /// Why the store was rebuilt (`None`: it was sound).
    pub problem: Option<String>,
    /// Whether the store was rebuilt from the outbox.
    pub rebuilt: bool,
    /// Whether the outbox was rewritten from a sound store (it lacked queued operations).
    pub outbox_rewritten: bool,
    /// Unsent operations the rebuilt store holds again.
    pub unsent: usize,
    /// Families those unsent operations change.
    pub families: usize,
    /// Refused operations the rebuilt store holds again.
    pub refused: usize,
    /// Where the damaged store's files were moved.
    pub moved_aside: Option<PathBuf>,
    /// A torn tail cut from the outbox.
    pub outbox_cut: Option<String>,
    /// How long the repair took.
    #[serde(serialize_with = "seconds")]
    pub took: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Files of the store folder that belong to sled (moved aside before a rebuild).
fn is_sled_file(name: &str) -> bool {
    name == "conf" || name == "db" || name == "blobs" || name.starts_with("snap.")
}

impl LocalStore {
    /// Checks the store in `dir` and rebuilds it from its outbox if it does
    /// not open or a check fails. A store that needs a passphrase it was
    /// not given, or is in use, is not touched (that error is returned).
    pub fn repair(dir: &Path, passphrase: PassphraseSource<'_>) -> Result<RepairReport> {
        let started = Instant::now();
        let mut report = RepairReport::default();
        let raw = read_raw(dir)?;
        if let Some(raw) = &raw {
            report.outbox_cut = raw.cut.clone();
            report.checked.push(format!(
                "outbox: {} frames, {} bytes, every checksum good",
                raw.frames.len(),
                raw.bytes
            ));
        }
        let problem = match Self::open_with(dir, passphrase) {
            Ok(store) => match store.check(&mut report) {
                Ok(()) => {
                    if raw.is_none() || !store.outbox_covers_queue(raw.as_ref())? {
                        store.rewrite_outbox()?;
                        report.outbox_rewritten = true;
                    }
                    store.flush()?;
                    report.took = started.elapsed();
                    return Ok(report);
                }
                Err(e) => e.to_string(),
            },
            Err(
                e @ (StoreError::InUse(_)
                | StoreError::PassphraseNeeded(_)
                | StoreError::WrongPassphrase(_)
                | StoreError::Format { .. }),
            ) => return Err(e),
            // Nothing to rebuild from: the store's own error says most.
            Err(e) if raw.is_none() => return Err(e),
            Err(e) => e.to_string(),
        };
        report.problem = Some(problem);
        let raw = raw.ok_or_else(|| {
            StoreError::Outbox(format!(
                "the store at {} is damaged and has no outbox to rebuild it from (it was made by an older returnee); copy the folder somewhere safe and ask for support",
                dir.display()
            ))
        })?;
        Self::rebuild(dir, &raw, passphrase, &mut report)?;
        report.took = started.elapsed();
        Ok(report)
    }

    /// Reads every value the store holds back; the first that does not read is the error.
    fn check(&self, report: &mut RepairReport) -> Result<()> {
        self.device()?;
        let mut records = 0;
        for doc in self.record_docs() {
            doc?;
            records += 1;
        }
        let rows = self.report_rows().collect::<Result<Vec<_>>>()?.len();
        report.checked.push(format!(
            "store: {records} families and {rows} report rows read back"
        ));
        let mut queued = 0u64;
        for entry in self.queue_entries() {
            let e = entry?;
            queued += queue_items(&e.value)?.len().saturating_sub(e.done) as u64;
        }
        if queued != self.queue_len()? {
            return Err(damaged(format!(
                "the push queue holds {queued} operations but counts {}",
                self.queue_len()?
            )));
        }
        let held = self.held()?.len();
        self.conflicts()?;
        report.checked.push(format!(
            "store: {queued} unsent and {held} refused operations read back; conflicts read back"
        ));
        Ok(())
    }

    /// Whether every queued operation is in the outbox.
    fn outbox_covers_queue(&self, raw: Option<&RawOutbox>) -> Result<bool> {
        let Some(raw) = raw else { return Ok(false) };
        let state = raw.open(&self.cipher, &self.dir)?;
        let mut unsent = std::collections::HashSet::new();
        for item in &state.unsent {
            unsent.insert(queue_items(item)?[0].id);
        }
        for q in self.pending(usize::MAX)? {
            if !unsent.contains(&q.id) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Moves sled's files aside and makes the store again from the outbox.
    fn rebuild(
        dir: &Path,
        raw: &RawOutbox,
        passphrase: PassphraseSource<'_>,
        report: &mut RepairReport,
    ) -> Result<()> {
        let cipher = match &raw.header.crypt {
            None => StoreCipher::Plain,
            Some(header) => {
                let pass = passphrase().ok_or_else(|| StoreError::PassphraseNeeded(dir.into()))?;
                StoreCipher::unlock(header, &pass).map_err(|e| Self::sealing(dir, e))?
            }
        };
        let OutboxState {
            identity,
            unsent,
            refused,
            purged,
            notes,
        } = raw.open(&cipher, dir)?;
        let identity = identity
            .ok_or_else(|| StoreError::Outbox("the outbox does not name this device".into()))?;
        // Keep the damaged files: moved, not deleted.
        let aside = dir.join(format!(
            "damaged-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ));
        let move_err = |e: std::io::Error| {
            StoreError::Outbox(format!("cannot move the damaged store aside: {e}"))
        };
        for entry in std::fs::read_dir(dir).map_err(move_err)? {
            let entry = entry.map_err(move_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_sled_file(&name) {
                std::fs::create_dir_all(&aside).map_err(move_err)?;
                std::fs::rename(entry.path(), aside.join(&name)).map_err(move_err)?;
            }
        }
        if aside.exists() {
            report.moved_aside = Some(aside);
        }
        let db = open_db(dir, CACHE_BYTES)?;
        let store = LocalStore {
            db,
            dir: dir.to_path_buf(),
            cipher,
            commit_lock: Default::default(),
            outbox: Default::default(),
            recent: Default::default(),
            known: super::record_packs::known_ids(),
        };
        let lock = store.write_lock();
        let mut w = store.writes();
        if let Some(header) = &raw.header.crypt {
            w.batch.insert(meta_key(META_CRYPT), encode(header));
        }
        w.batch.insert(FORMAT_KEY, FORMAT.to_be_bytes().to_vec());
        w.put(meta_key(META_DEVICE), &identity.device);
        if let Some(e) = &identity.enrollment {
            w.put(meta_key(META_ENROLLMENT), e);
        }
        w.put(meta_key(META_FULL_REPULL), &true);
        store.mark_duplicate_index_built(&mut w);
        let mut docs: std::collections::BTreeMap<RecordId, RecordDoc> = Default::default();
        for raw_item in &unsent {
            for item in queue_items(raw_item)? {
                let op: Op = decode(item.json)?;
                docs.entry(item.record).or_default().insert(op);
                w.queue.extend_from_slice(item.raw);
            }
        }
        for (id, doc) in &docs {
            w.fresh.insert(*id);
            Self::stage_doc(&mut w, *id, doc);
        }
        for (op, r) in &refused {
            w.put(held_key(r.op), &(op, r));
        }
        for (id, at) in &purged {
            w.put(purged_key(*id), at);
        }
        for note in &notes {
            w.put(super::export_notes::note_key(note), note);
        }
        report.unsent = unsent.len();
        report.refused = refused.len();
        store.commit(&lock, w)?;
        drop(lock);
        store.rewrite_outbox()?;
        report.rebuilt = true;
        report.families = docs.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;

    #[test]
    fn a_rebuilt_store_keeps_unsent_work_and_purged_families_stay_purged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let now = Utc::now();
        let (purged, unsent) = {
            let (store, _) = LocalStore::init(&path, "t").unwrap();
            let device = store.device().unwrap().id;
            store
                .set_enrollment(&Enrollment {
                    server: "http://127.0.0.1:9".into(),
                    device_id: device,
                    token: "t".into(),
                    role: Role::Field,
                    sites: vec![],
                    ca_pem: None,
                    token_expires_at: None,
                })
                .unwrap();
            let purged = store.add(fields(1), now).unwrap();
            let sent = store.pending(10).unwrap();
            store.acknowledge(&sent, &[]).unwrap();
            store.set_last_sync(now).unwrap();
            let out = store
                .purge_synced_before(now + chrono::Duration::days(1), now)
                .unwrap();
            assert_eq!(out.removed, 1);
            let unsent = store.add(fields(2), now).unwrap();
            store
                .note_export(&returnee_shared::wire::ExportNote {
                    id: uuid::Uuid::from_u128(7),
                    at: now,
                    format: "csv".into(),
                    filter: "all families".into(),
                    rows: 1,
                    personal: true,
                })
                .unwrap();
            store.flush().unwrap();
            (purged, unsent)
        };
        for name in ["db", "conf"] {
            std::fs::remove_file(path.join(name)).unwrap();
        }
        let report = LocalStore::repair(&path, &|| None).unwrap();
        assert!(report.rebuilt && report.unsent == 1, "{report:?}");
        let store = LocalStore::open(&path).unwrap();
        assert!(store.full_repull().unwrap());
        assert_eq!(store.enrollment().unwrap().unwrap().token, "t");
        assert_eq!(store.pending(10).unwrap()[0].record, unsent);
        assert!(store.get(purged).unwrap().is_none());
        assert_eq!(store.purged_records().unwrap()[0].0, purged);
        let notes = store.export_notes().unwrap();
        assert_eq!(notes.len(), 1, "the export note survives");
        assert_eq!(notes[0].id, uuid::Uuid::from_u128(7));
    }

    /// A refused change discarded (or sent again) is not brought back as
    /// refused by a repair.
    #[test]
    fn a_repair_keeps_what_was_done_with_refused_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let now = Utc::now();
        let (discarded, retried) = {
            let (store, _) = LocalStore::init(&path, "t").unwrap();
            let a = store.add(fields(1), now).unwrap();
            let b = store.add(fields(2), now).unwrap();
            let sent = store.pending(10).unwrap();
            let refuse = |q: &QueuedOp| RejectedOp {
                op: q.id,
                error: returnee_shared::wire::ErrorCode::Forbidden,
                message: "not this device's site".into(),
            };
            let rejected: Vec<RejectedOp> = sent.iter().map(refuse).collect();
            store.acknowledge(&sent, &rejected).unwrap();
            assert_eq!(store.refused().unwrap().len(), 2);
            let op_of = |record| sent.iter().find(|q| q.record == record).unwrap().id;
            store.discard_refused(op_of(a)).unwrap().unwrap();
            store.retry_refused(Some(&[op_of(b)])).unwrap();
            store.flush().unwrap();
            (a, b)
        };
        for name in ["db", "conf"] {
            std::fs::remove_file(path.join(name)).unwrap();
        }
        let report = LocalStore::repair(&path, &|| None).unwrap();
        assert!(report.rebuilt, "{report:?}");
        let store = LocalStore::open(&path).unwrap();
        assert!(
            store.refused().unwrap().is_empty(),
            "nothing comes back refused"
        );
        let pending: Vec<RecordId> = store
            .pending(10)
            .unwrap()
            .iter()
            .map(|q| q.record)
            .collect();
        assert_eq!(pending, vec![retried]);
        assert!(store.get(discarded).unwrap().is_none());
    }
}
