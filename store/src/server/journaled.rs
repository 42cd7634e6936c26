//! The store on its journal: `DIR/journal/` holds the operation log and
//! every write not derived from it (devices, tokens, codes, the audit
//! trail) as frames ([`super::frames`]), appended and synced before a write
//! is acknowledged; `DIR/index/` is the sled database of what is derived
//! (records, report rows, conflicts, the duplicate index, per-site scoping,
//! `l/<seq>` → the journal position of the frame holding that entry), with
//! `m/journal`: the journal position that sled includes, written in the
//! same batch as the frame's effects.
//!
//! At open, sled catches up from that position; sled that is missing, or
//! ahead of the journal (a torn tail was cut), is rebuilt from the start.
//! Browser sessions and last-seen notes live in sled only: a rebuild drops
//! them (users sign in again).

use std::time::Instant;

use super::*;
use crate::journal::{Journal, Options, Recovery};

/// The journal position sled includes.
pub(super) const CHECKPOINT_KEY: &[u8] = b"m/journal";

/// What opening a store found and did.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    /// The journal's recovery: segments, and a torn tail cut.
    pub recovery: Recovery,
    /// Frames replayed into sled to catch up.
    pub replayed: u64,
    /// Whether sled was rebuilt from the whole journal (and why).
    pub rebuilt: Option<String>,
    /// The journal's end.
    pub end: u64,
}

/// What `repair` checked and did.
#[derive(Debug, Clone)]
pub struct Repaired {
    /// Frames read and checked in the journal.
    pub frames: u64,
    /// The checks made of sled, each with its outcome.
    pub checks: Vec<(String, bool)>,
    /// Whether sled was rebuilt (and where the damaged one was moved).
    pub rebuilt: Option<PathBuf>,
    /// The torn tail cut, if any.
    pub cut: Option<crate::journal::Cut>,
    pub records: u64,
    pub millis: u128,
}

pub(super) fn journal_dir(dir: &Path) -> PathBuf {
    dir.join("journal")
}
/// The file naming the index in use, once an erasure rewrote it.
const CURRENT_INDEX: &str = "index.current";
/// The prefix of a rewritten index's folder (`index.gen-<n>`).
const GENERATION: &str = "index.gen-";

/// The folder of the index in use: `index`, or the last rewrite's.
pub(super) fn index_dir(dir: &Path) -> PathBuf {
    dir.join(current_index(dir))
}

fn current_index(dir: &Path) -> String {
    match std::fs::read_to_string(dir.join(CURRENT_INDEX)) {
        Ok(name) if name.trim().starts_with(GENERATION) => name.trim().to_string(),
        _ => "index".to_string(),
    }
}

/// Removes the folders of indexes no longer in use: what a rewrite left
/// when the process stopped before it removed them (they may hold erased
/// data), and a rewrite's folder it never finished.
fn remove_stale_indexes(dir: &Path) -> Result<()> {
    let current = current_index(dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != current && (name == "index" || name.starts_with(GENERATION)) {
            std::fs::remove_dir_all(entry.path()).map_err(|source| StoreError::CreateDir {
                dir: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
}

/// The name and folder of the next rewrite of the index.
pub(super) fn next_index(dir: &Path) -> (String, PathBuf) {
    let n = current_index(dir)
        .strip_prefix(GENERATION)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let name = format!("{GENERATION}{}", n + 1);
    let path = dir.join(&name);
    (name, path)
}

/// Names `name` the index in use (written aside, then renamed: atomic).
pub(super) fn set_current_index(dir: &Path, name: &str) -> Result<()> {
    let io = |source| StoreError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    };
    let tmp = dir.join(format!("{CURRENT_INDEX}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io)?;
    std::io::Write::write_all(&mut file, name.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, dir.join(CURRENT_INDEX)).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

fn read_u64(db: &sled::Db, key: &[u8]) -> Result<u64> {
    Ok(db
        .get(key)?
        .map(|b| <[u8; 8]>::try_from(b.as_ref()).map(u64::from_be_bytes))
        .transpose()
        .map_err(|_| damaged("a position in the store"))?
        .unwrap_or(0))
}

pub(super) fn journal_damage(e: crate::journal::JournalError) -> StoreError {
    StoreError::Journal(e)
}

fn open_sled(dir: &Path) -> Result<sled::Db> {
    open_index_at(dir, &index_dir(dir))
}

pub(super) fn open_index_at(dir: &Path, index: &Path) -> Result<sled::Db> {
    let index = index.to_path_buf();
    crate::db::open(&index, CACHE_BYTES).map_err(|e| match e {
        OpenError::InUse => StoreError::InUse(dir.to_path_buf()),
        OpenError::Corrupt(source) => StoreError::Corrupt {
            dir: index.clone(),
            source,
        },
        OpenError::Other(e) => e.into(),
    })
}

/// Opens the store in `dir` (see the module docs).
pub(super) fn open(dir: &Path) -> Result<ServerStore> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    // A store of the layout before the journal (sled at the top level).
    if dir.join("db").exists() && !journal_dir(dir).exists() {
        return Err(StoreError::Format {
            dir: dir.to_path_buf(),
            found: 0,
        });
    }
    remove_stale_indexes(dir)?;
    let db = open_sled(dir)?;
    let (mut journal, recovery) = Journal::open(&journal_dir(dir), Options::default())?;
    // What a killed process left in the page cache is durable from here:
    // pulls may hand it out.
    journal.sync()?;
    if let Some(cut) = &recovery.cut {
        tracing::warn!(%cut, "journal: torn tail cut");
    }
    let end = journal.end();
    let checkpoint = read_u64(&db, CHECKPOINT_KEY)?;
    let holds_data = db.iter().next().is_some();
    let rebuilt = if checkpoint > end {
        Some(format!(
            "the index was ahead of the journal (position {checkpoint}, journal ends at {end})"
        ))
    } else if checkpoint == 0 && holds_data && db.get(FORMAT_KEY)?.is_some() && end > 0 {
        Some("the index had no journal position".to_string())
    } else {
        None
    };
    if rebuilt.is_some() {
        db.clear()?;
        db.drop_tree("duplicates")?;
    }
    let empty = db.first()?.is_none();
    let mut first = sled::Batch::default();
    first.insert(record_packs::first_pack_key(&db), Vec::new());
    format::open(&db, FORMAT_KEY, MIGRATIONS, empty, first, |found| {
        StoreError::Format {
            dir: dir.to_path_buf(),
            found,
        }
    })?;
    let ops = OpReader {
        journal: journal.reader(),
    };
    let mut store = ServerStore {
        db: Arc::new(std::sync::RwLock::new(Arc::new(db))),
        journal: Arc::new(Mutex::new(journal)),
        ops,
        opened: Arc::new(Opened::default()),
        writer: Arc::new(Mutex::new(())),
        durable: Arc::new(AtomicU64::new(0)),
        erasure_waiting: Arc::new(std::sync::atomic::AtomicBool::new(erasure::pending_at(dir))),
        known_ids: Arc::new(crate::placed::KnownIds::new()),
    };
    let from = if rebuilt.is_some() { 0 } else { checkpoint };
    let replayed = store.catch_up(from, end)?;
    if replayed > 0 {
        store.db().flush()?;
        tracing::info!(
            frames = replayed,
            rebuilt = rebuilt.is_some(),
            "index caught up with the journal"
        );
    }
    store.durable.store(store.last_seq()?, Ordering::Release);
    store.opened = Arc::new(Opened {
        recovery,
        replayed,
        rebuilt,
        end,
    });
    Ok(store)
}

impl ServerStore {
    /// Appends a frame of log entries (`first` the position of the first)
    /// and writes; stages `l/<first>` and the checkpoint into `batch`.
    /// Returns the journal position after it. Called under the writer lock.
    pub(super) fn append_frame(
        &self,
        batch: &mut sled::Batch,
        first: u64,
        entries: &[u8],
        writes: &Writes,
    ) -> Result<u64> {
        let len = frames::frame_len(entries, writes);
        let mut journal = self.journal.lock().expect("journal lock");
        let at = journal.append_with(len, |out| {
            frames::encode_frame_into(out, first, entries, writes)
        })?;
        let end = journal.end();
        drop(journal);
        stage_frame_effects(batch, at, end, first, entries, writes);
        Ok(end)
    }

    /// Journals and applies writes that are not log entries (devices,
    /// codes, audit entries), durable when this returns.
    pub(super) fn commit_writes(
        &self,
        guard: std::sync::MutexGuard<'_, ()>,
        writes: Writes,
    ) -> Result<()> {
        let mut batch = sled::Batch::default();
        let first = self.last_seq()? + 1;
        let end = self.append_frame(&mut batch, first, &[], &writes)?;
        self.db().apply_batch(batch)?;
        drop(guard);
        self.sync_journal_through(end)
    }

    /// Moves the log's next position `n` further on, journaled: a restored
    /// server does this so that the positions it hands out from then on lie
    /// after every cursor a laptop may hold from before the restore (the
    /// server it replaces may have logged more than the backup holds).
    pub fn skip_positions(&self, n: u64) -> Result<u64> {
        let guard = self.writer.lock().expect("writer lock");
        let last = self.last_seq()? + n;
        let mut batch = sled::Batch::default();
        let end = self.append_frame(&mut batch, last + 1, &[], &Writes::default())?;
        self.db().apply_batch(batch)?;
        drop(guard);
        self.sync_journal_through(end)?;
        self.durable.fetch_max(last, Ordering::AcqRel);
        Ok(last)
    }

    /// Makes the journal durable up to `end`, sharing one fsync with the
    /// writers that appended meanwhile.
    pub(super) fn sync_journal_through(&self, end: u64) -> Result<()> {
        let point = {
            let journal = self.journal.lock().expect("journal lock");
            if journal.synced() >= end {
                return Ok(());
            }
            journal.sync_point()?
        };
        let synced = point.sync()?;
        self.journal
            .lock()
            .expect("journal lock")
            .mark_synced(synced);
        Ok(())
    }

    pub(super) fn sync_journal(&self) -> Result<()> {
        let end = self.journal.lock().expect("journal lock").end();
        self.sync_journal_through(end)
    }

    /// The journal's frames from the one holding log position `start`
    /// (or the first after it) up to journal position `end`.
    pub(super) fn log_frames(
        &self,
        start: u64,
        end: u64,
    ) -> Result<impl Iterator<Item = Result<(Vec<u8>, u64)>> + '_> {
        let mut at = match self.db().range(log_key(0)..=log_key(start)).next_back() {
            Some(item) => read_pos(&item?.1)?,
            None => 0,
        };
        Ok(std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            Some(match self.ops.journal.read_frame(at) {
                Ok((payload, next)) => {
                    let pos = at;
                    at = next;
                    Ok((payload, pos))
                }
                Err(e) => {
                    at = end;
                    Err(journal_damage(e))
                }
            })
        }))
    }

    /// Replays the journal's frames from position `from` to `end` into
    /// sled, one batch per frame. Returns the number replayed.
    fn catch_up(&self, from: u64, end: u64) -> Result<u64> {
        let journal = self.journal.lock().expect("journal lock");
        let frames = if from < end {
            journal.frames_from(from)?
        } else {
            return Ok(0);
        };
        drop(journal);
        let mut n = 0;
        for frame in frames {
            let (at, payload) = frame?;
            self.replay(
                at,
                at + crate::journal::FRAME_HEADER + payload.len() as u64,
                &payload,
            )?;
            n += 1;
        }
        Ok(n)
    }

    /// Applies one frame to sled as the push or write that made it did.
    fn replay(&self, at: u64, end: u64, payload: &[u8]) -> Result<()> {
        let frame = Frame::parse(payload)?;
        let mut batch = sled::Batch::default();
        let mut positions: Vec<(RecordId, LogPos, Op)> = Vec::new();
        for (offset, entry) in chunk_entries(frame.entries) {
            let (_, kind, _, payload_at) =
                parse_log_entry(entry).ok_or_else(|| damaged("a log entry"))?;
            if kind == KIND_OP {
                let op: Op = decode(&entry[payload_at..])?;
                let pos = LogPos {
                    chunk: at,
                    offset: offset as u32,
                };
                positions.push((op.record, pos, op));
            }
        }
        let mut ids: Vec<RecordId> = positions.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let (known, stored) = record_packs::get_many_placed(&self.db(), &self.known_ids, &ids)?;
        let mut records: BTreeMap<RecordId, LoadedRecord> = BTreeMap::new();
        for (id, entry) in ids.into_iter().zip(stored) {
            records.insert(id, self.loaded(entry.as_deref())?);
        }
        for (id, pos, op) in positions {
            let record = records.get_mut(&id).expect("loaded");
            record.doc.insert(op);
            record.stored.ops.push(pos);
            record.changed = true;
        }
        let mut entries = Vec::with_capacity(records.len());
        for (id, record) in &mut records {
            let (tag, _) = retag(record);
            let w = record_writes(*id, record, tag);
            entries.push((*id, Some(w.entry)));
            for (k, v) in w.writes {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
        }
        record_packs::stage_knowing(&self.db(), &self.known_ids, &mut batch, &entries, &known)?;
        stage_frame_effects(
            &mut batch,
            at,
            end,
            frame.first,
            frame.entries,
            &frame.writes,
        );
        self.db().apply_batch(batch)?;
        Ok(())
    }
}

/// What every frame leaves in sled besides records: its writes, the index
/// of its first log position, the last position and the checkpoint.
fn stage_frame_effects(
    batch: &mut sled::Batch,
    at: u64,
    end: u64,
    first: u64,
    entries: &[u8],
    writes: &Writes,
) {
    writes.stage(batch);
    let count = chunk_entries(entries).count() as u64;
    if count > 0 {
        batch.insert(log_key(first), at.to_be_bytes().to_vec());
        batch.insert(SEQ_KEY, (first + count - 1).to_be_bytes().to_vec());
    } else if first > 0 {
        // A frame of writes alone leaves the log where it was, or moves
        // it past a gap ([`ServerStore::skip_positions`]).
        batch.insert(SEQ_KEY, (first - 1).to_be_bytes().to_vec());
    }
    batch.insert(CHECKPOINT_KEY, end.to_be_bytes().to_vec());
}

fn read_pos(v: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| damaged("a log index entry"))
}

/// Checks the store in `dir` and, when sled does not open or a check
/// fails, rebuilds it from the journal (the damaged one moved aside to
/// `index.damaged`). The journal itself must be whole up to its tail.
pub fn repair(dir: &Path) -> Result<Repaired> {
    let started = Instant::now();
    if !journal_dir(dir).is_dir() {
        return Err(StoreError::Backup(format!(
            "{} holds no journal; give the data folder of a returnee-server",
            dir.display()
        )));
    }
    let (journal, recovery) = Journal::open(&journal_dir(dir), Options::default())?;
    drop(journal);
    let (frames, _) = crate::journal::verify(&journal_dir(dir))?;
    let mut checks = Vec::new();
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(dir, &mut checks)));
    if let Ok(Err(e @ StoreError::InUse(_))) = outcome {
        return Err(e);
    }
    let healthy = matches!(outcome, Ok(Ok(true)));
    if let Ok(Err(e)) = &outcome {
        checks.push((format!("the index opens ({e})"), false));
    } else if outcome.is_err() {
        checks.push(("the index opens (sled panicked reading it)".into(), false));
    }
    let mut rebuilt = None;
    if !healthy {
        let aside = dir.join("index.damaged");
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(|source| StoreError::CreateDir {
                dir: aside.clone(),
                source,
            })?;
        }
        if index_dir(dir).exists() {
            std::fs::rename(index_dir(dir), &aside).map_err(|source| StoreError::CreateDir {
                dir: aside.clone(),
                source,
            })?;
        }
        rebuilt = Some(aside);
    }
    let store = ServerStore::open(dir)?;
    let records = record_packs::scan(&store.db()).count() as u64;
    store.flush()?;
    Ok(Repaired {
        frames,
        checks,
        rebuilt,
        cut: recovery.cut,
        records,
        millis: started.elapsed().as_millis(),
    })
}

/// The checks of a store's sled: it opens, its position matches the
/// journal's end, its audit chain verifies, and every record reads back.
fn check(dir: &Path, checks: &mut Vec<(String, bool)>) -> Result<bool> {
    if !index_dir(dir).is_dir() {
        checks.push(("the index exists".into(), false));
        return Ok(false);
    }
    let db = open_sled(dir)?;
    let (journal, _) = Journal::open(&journal_dir(dir), Options::default())?;
    let end = journal.end();
    let checkpoint = read_u64(&db, CHECKPOINT_KEY)?;
    let format = db.get(FORMAT_KEY)?.is_some();
    checks.push(("the index opens and has its format".into(), format));
    let position = checkpoint <= end && (checkpoint > 0 || end == 0);
    checks.push((
        format!("the index's journal position ({checkpoint}) is within the journal ({end})"),
        position,
    ));
    drop(db);
    if !format || !position {
        return Ok(false);
    }
    let store = ServerStore::open(dir)?;
    let audit = store.verify_audit()?.is_ok();
    checks.push(("the audit trail's hash chain verifies".into(), audit));
    let mut readable = true;
    for item in store.record_docs() {
        if item.is_err() {
            readable = false;
            break;
        }
    }
    checks.push(("every record's operations read back".into(), readable));
    let seq = store.last_seq()?;
    let logged = store.last_logged()? == seq;
    checks.push((
        format!("the log's last position ({seq}) is the journal's"),
        logged,
    ));
    store.flush()?;
    Ok(audit && readable && logged)
}

impl ServerStore {
    /// The last log position the journal's frames reach, read frame by
    /// frame through the log index.
    fn last_logged(&self) -> Result<u64> {
        let end = self.journal.lock().expect("journal lock").end();
        let mut last = 0;
        for frame in self.log_frames(0, end)? {
            let (payload, _) = frame?;
            let frame = Frame::parse(&payload)?;
            last = match frame.count() {
                0 => frame.first.saturating_sub(1).max(last),
                n => frame.first + n - 1,
            };
        }
        Ok(last)
    }
}
