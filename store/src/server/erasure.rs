//! Erasure on the server (PROTOCOL.md, "Erasure"): a push that erases a
//! family writes over its personal values in the journal where they lie
//! ([`crate::journal::Journal::rewrite_in_place`]), and the index (whose
//! duplicate features held the name and document number) is then
//! rewritten into a fresh database and the old one deleted
//! ([`ServerStore::rewrite_index`], driven by
//! [`super::duplicates::DuplicateIndex::rewrite_after_erasure`]).
//!
//! `erasure.pending`, a marker beside the journal, is written before the
//! journal is touched and removed once the new index is in use (an old
//! folder left by a crash is deleted at the next open): a server stopped
//! between the two rewrites the index when it starts again.

use std::time::{Duration, Instant};

use returnee_shared::merge::erasure::erased_json;

use super::*;

const PENDING: &str = "erasure.pending";

/// Whether the store in `dir` has an erasure waiting for its index.
pub(super) fn pending_at(dir: &Path) -> bool {
    dir.join(PENDING).exists()
}

/// What an index rewrite did.
#[derive(Debug, Clone, Copy)]
pub struct IndexRewrite {
    pub keys: u64,
    pub millis: u128,
}

impl ServerStore {
    fn data_dir(&self) -> PathBuf {
        let journal = self.journal.lock().expect("journal lock");
        journal
            .dir()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Whether an erasure waits for the index to be rewritten.
    pub fn erasure_pending(&self) -> bool {
        self.erasure_waiting.load(Ordering::Acquire)
    }

    fn mark_erasure_pending(&self) -> Result<()> {
        self.erasure_waiting.store(true, Ordering::Release);
        let dir = self.data_dir();
        let io = |source| StoreError::CreateDir {
            dir: dir.clone(),
            source,
        };
        std::fs::File::create(dir.join(PENDING))
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    /// In a push, under the writer lock and before its frame is appended:
    /// the records in `erased` (each holds an erasure, and the push changed
    /// it) lose their personal values — in memory, in the push's new
    /// entries (`fresh`), and in the journal where their earlier operations
    /// lie; so do the values a merge carried from them onto the family they
    /// were merged into.
    pub(super) fn erase_in_push(
        &self,
        records: &mut BTreeMap<RecordId, LoadedRecord>,
        fresh: &mut [(RecordId, Vec<u8>)],
        erased: &BTreeSet<RecordId>,
    ) -> Result<()> {
        for (id, json) in fresh.iter_mut() {
            if erased.contains(id)
                && let Some(stripped) = erased_json(json)
            {
                *json = stripped;
            }
        }
        // The families they were merged into, which hold carried values.
        let mut survivors = BTreeSet::new();
        for id in erased {
            let record = records.get_mut(id).expect("loaded");
            record.doc.erase_personal();
            if let Some(into) = record.doc.view(*id).lifecycle.merged_into() {
                survivors.insert(into);
            }
        }
        for into in &survivors {
            if !records.contains_key(into) {
                let loaded = self.load_record(*into)?;
                if !loaded.existed {
                    continue;
                }
                records.insert(*into, loaded);
            }
            let survivor = records.get_mut(into).expect("loaded");
            for op in &mut survivor.doc.ops {
                if op.merged_from().is_some_and(|from| erased.contains(&from))
                    && let Some(stripped) = op.erased()
                {
                    *op = stripped;
                    survivor.changed = true;
                }
            }
        }
        let positions: Vec<LogPos> = erased
            .iter()
            .chain(&survivors)
            .filter_map(|id| records.get(id))
            .flat_map(|r| r.stored.ops.iter().copied())
            .collect();
        self.mark_erasure_pending()?;
        let rewrites = self.scrubbed_frames(&positions, erased)?;
        if !rewrites.is_empty() {
            let mut journal = self.journal.lock().expect("journal lock");
            journal.rewrite_in_place(&rewrites)?;
        }
        Ok(())
    }

    /// The frames holding operations at `positions` of (or carried from)
    /// the `erased` records, each with those operations' personal values
    /// written over by spaces (JSON's whitespace): same length, same
    /// positions.
    fn scrubbed_frames(
        &self,
        positions: &[LogPos],
        erased: &BTreeSet<RecordId>,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut by_frame: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for p in positions {
            by_frame.entry(p.chunk).or_default().push(p.offset);
        }
        let mut out = Vec::new();
        for (chunk, offsets) in by_frame {
            let (mut payload, _) = self.ops.journal.read_frame(chunk)?;
            let mut changed = false;
            for offset in offsets {
                let start = frames::ENTRIES_AT + offset as usize;
                let len = payload
                    .get(start..start + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| damaged("a record names a log entry that is not there"))?
                    as usize;
                let entry = payload
                    .get(start + 4..start + 4 + len)
                    .ok_or_else(|| damaged("a log entry"))?;
                let Some((_, KIND_OP, _, at)) = parse_log_entry(entry) else {
                    continue;
                };
                let json = &entry[at..];
                let op: Op = decode(json)?;
                let concerned = erased.contains(&op.record)
                    || op.merged_from().is_some_and(|from| erased.contains(&from));
                if !concerned {
                    continue;
                }
                let Some(mut stripped) = erased_json(json) else {
                    continue;
                };
                stripped.resize(json.len(), b' ');
                let from = start + 4 + at;
                payload[from..from + stripped.len()].copy_from_slice(&stripped);
                changed = true;
            }
            if changed {
                out.push((chunk, payload));
            }
        }
        Ok(out)
    }

    /// Rewrites the index into a fresh database (`index.gen-<n>`), makes it
    /// the one in use (`index.current`), calls `swapped` with it under the
    /// writer lock (the duplicate index takes its tree from it), then
    /// deletes the old one once the readers that held it let go. No byte
    /// the old index's files held and the index no longer does survives.
    pub(crate) fn rewrite_index(
        &self,
        swapped: impl FnOnce(&sled::Db) -> Result<()>,
    ) -> Result<IndexRewrite> {
        let started = Instant::now();
        let dir = self.data_dir();
        let guard = self.writer.lock().expect("writer lock");
        let old = self.db();
        let old_dir = journaled::index_dir(&dir);
        let (name, new_dir) = journaled::next_index(&dir);
        if new_dir.exists() {
            std::fs::remove_dir_all(&new_dir).map_err(|source| StoreError::CreateDir {
                dir: new_dir.clone(),
                source,
            })?;
        }
        let new = journaled::open_index_at(&dir, &new_dir)?;
        let keys = crate::db::copy_into(&old, &new)?;
        // sled makes its files with the process's umask.
        crate::private::tighten(&new_dir).map_err(|source| StoreError::CreateDir {
            dir: new_dir.clone(),
            source,
        })?;
        journaled::set_current_index(&dir, &name)?;
        *self.db.write().expect("index lock") = Arc::new(new);
        self.known_ids.reset();
        let swap = swapped(&self.db());
        // Under the writer lock, so that an erasure pushed next marks again.
        // The old folder, if a crash keeps it from being deleted below, is
        // deleted at the next open (`remove_stale_indexes`).
        if swap.is_ok() {
            std::fs::remove_file(dir.join(PENDING)).map_err(|source| StoreError::CreateDir {
                dir: dir.clone(),
                source,
            })?;
            self.erasure_waiting.store(false, Ordering::Release);
        }
        drop(guard);
        // Readers that began before the swap finish on the old index.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(old);
        std::fs::remove_dir_all(&old_dir).map_err(|source| StoreError::CreateDir {
            dir: old_dir.clone(),
            source,
        })?;
        swap?;

        let rewrite = IndexRewrite {
            keys,
            millis: started.elapsed().as_millis(),
        };
        tracing::info!(
            keys = rewrite.keys,
            ms = rewrite.millis as u64,
            "index rewritten after an erasure"
        );
        Ok(rewrite)
    }
}
