//! Erasure on a laptop (PROTOCOL.md, "Erasure"): `returnee erase` here,
//! or an erasure a pull brings. The family's personal values leave every
//! operation this store holds of it (its record, the push queue, the
//! refused changes, the outbox), and then the store's files are rewritten
//! ([`LocalStore::rewrite_files`]), because sled leaves the old bytes of
//! a value it replaced in its log until it reuses the space.
//!
//! The rewrite copies every tree into `sled.rewrite/` beside the store's
//! files, marks the copy complete, moves the old files into `sled.old/`,
//! marks that done, moves the copy's files in and deletes `sled.old/`.
//! [`settle`], called before the store opens, finishes whatever step a
//! crash interrupted; `m/erasure_pending` (set with the erasure, cleared
//! after the rewrite) makes the next open rewrite again if none finished.

use std::collections::BTreeSet;

use returnee_shared::merge::erasure::erased_json;

use super::queue::{QueueItem, queue_items, queue_key};
use super::*;

const META_ERASURE_PENDING: &str = "erasure_pending";
const NEW: &str = "sled.rewrite";
const OLD: &str = "sled.old";
const COMPLETE: &str = "COMPLETE";
const CLEARED: &str = "CLEARED";

/// What an erasure on this laptop did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// The families erased (the one asked for, and those merged into it).
    pub families: Vec<RecordId>,
}

fn is_sled_file(name: &str) -> bool {
    name == "conf" || name == "db" || name == "blobs" || name.starts_with("snap.")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Outbox(format!("rewriting the store at {}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn touch(path: &Path) -> Result<()> {
    std::fs::File::create(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err(path))
}

/// Moves the sled files of `from` into `to` (made if missing).
fn move_sled_files(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    for entry in std::fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_sled_file(&name) {
            std::fs::rename(entry.path(), to.join(&name)).map_err(io_err(to))?;
        }
    }
    sync_dir(from)?;
    sync_dir(to)
}

fn remove(path: &Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(io_err(path))?;
    }
    Ok(())
}

/// Finishes (or, before the copy was complete, drops) a rewrite of the
/// store in `dir` that a crash interrupted (see the module docs).
pub(super) fn settle(dir: &Path) -> Result<()> {
    let (new, old) = (dir.join(NEW), dir.join(OLD));
    if old.join(CLEARED).exists() {
        move_sled_files(&new, dir)?;
    } else if new.join(COMPLETE).exists() {
        move_sled_files(dir, &old)?;
        touch(&old.join(CLEARED))?;
        sync_dir(&old)?;
        move_sled_files(&new, dir)?;
    } else if old.exists() {
        // Not reached by a rewrite (old files move only once the copy is
        // complete); put back what is there rather than lose it.
        move_sled_files(&old, dir)?;
    }
    remove(&new)?;
    remove(&old)?;
    sync_dir(dir)
}

impl LocalStore {
    /// Erases the personal data of `id` and of the families merged into
    /// it that this laptop holds: an erasure operation each (sent at the
    /// next sync), their values stripped here, and the store's files
    /// rewritten. The caller checks that this device may (a supervisor's
    /// or an admin's) and asks for the reason.
    pub fn erase(self, id: RecordId, reason: &str, now: DateTime<Utc>) -> Result<(Self, Erased)> {
        let device = self.device()?.id;
        // Every record is read to find those merged into this one.
        let _purge = returnee_memory::EagerPurge::after(10);
        let mut ids = vec![id];
        {
            let lock = self.write_lock();
            let doc = self
                .load_doc(id)?
                .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            if doc.view(id).family.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
            for item in self.record_docs() {
                let (other, doc) = item?;
                if doc.view(other).lifecycle.merged_into() == Some(id) {
                    ids.push(other);
                }
            }
            let mut w = self.writes();
            for rid in &ids {
                let mut doc = self.load_doc(*rid)?.unwrap_or_default();
                if doc.erasure().is_none() {
                    let op = self.new_op(
                        device,
                        *rid,
                        now,
                        Change::Erase {
                            reason: reason.trim().to_string(),
                        },
                    );
                    Self::stage_queued(&mut w, &op);
                    doc.insert(op);
                }
                doc.erase_personal();
                Self::stage_doc(&mut w, *rid, &doc);
            }
            let set: BTreeSet<RecordId> = ids.iter().copied().collect();
            self.stage_erased_elsewhere(&mut w, &set)?;
            self.commit(&lock, w)?;
        }
        let store = self.finish_erasure()?;
        Ok((store, Erased { families: ids }))
    }

    /// Stages what an erasure of `ids` changes beside their records: their
    /// queued and refused operations without personal values, and the mark
    /// that the store's files must be rewritten.
    pub(super) fn stage_erased_elsewhere(
        &self,
        w: &mut Writes,
        ids: &BTreeSet<RecordId>,
    ) -> Result<()> {
        for entry in self.queue_entries() {
            let entry = entry?;
            let items = queue_items(&entry.value)?;
            if !items.iter().any(|i| ids.contains(&i.record)) {
                continue;
            }
            let mut out = Vec::with_capacity(entry.value.len());
            for QueueItem {
                record,
                id,
                json,
                raw,
            } in items
            {
                match erased_json(json).filter(|_| ids.contains(&record)) {
                    Some(json) => {
                        out.extend_from_slice(record.0.as_bytes());
                        out.extend_from_slice(id.0.as_bytes());
                        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
                        out.extend_from_slice(&json);
                    }
                    None => out.extend_from_slice(raw),
                }
            }
            w.put_bytes(queue_key(entry.seq), out);
        }
        for (op, rejection) in self.held()? {
            if ids.contains(&op.record)
                && let Some(stripped) = op.erased()
            {
                w.put(held_key(op.id), &(stripped, rejection));
            }
        }
        Self::stage_rewrite(w);
        Ok(())
    }

    /// Stages the mark that the store's files must be rewritten (a purged
    /// family erased: its old bytes may still lie in sled's log).
    pub(super) fn stage_rewrite(w: &mut Writes) {
        w.put(meta_key(META_ERASURE_PENDING), &true);
    }

    /// After an erasure was committed: the outbox written again from the
    /// store (its old frames held the values), then the store's files.
    /// Nothing to do when no erasure waits.
    pub fn finish_erasure(self) -> Result<Self> {
        if self.meta::<bool>(META_ERASURE_PENDING)? != Some(true) {
            return Ok(self);
        }
        // The packs must hold no value that one waiting beside them
        // superseded: the copy takes every key.
        self.fold_recent()?;
        self.rewrite_outbox()?;
        let store = self.rewrite_files()?;
        {
            let lock = store.write_lock();
            let mut w = store.writes();
            w.remove(meta_key(META_ERASURE_PENDING));
            store.commit(&lock, w)?;
        }
        Ok(store)
    }

    /// Copies the store into fresh sled files and puts them in place of
    /// the old ones (see the module docs). Takes the store: no other handle
    /// may hold it.
    fn rewrite_files(self) -> Result<Self> {
        let LocalStore {
            db,
            dir,
            cipher,
            commit_lock,
            outbox,
            recent,
            known,
        } = self;
        db.flush()?;
        let new = dir.join(NEW);
        remove(&new)?;
        {
            let copy = open_fresh(&new)?;
            crate::db::copy_into(&db, &copy)?;
        }
        touch(&new.join(COMPLETE))?;
        sync_dir(&new)?;
        drop(db);
        settle(&dir)?;
        // sled makes its files with the process's umask.
        crate::private::tighten(&dir).map_err(io_err(&dir))?;
        let db = open_db(&dir, CACHE_BYTES)?;
        Ok(LocalStore {
            db,
            dir,
            cipher,
            commit_lock,
            outbox,
            recent,
            known,
        })
    }
}

fn open_fresh(dir: &Path) -> Result<sled::Db> {
    crate::db::open(dir, CACHE_BYTES).map_err(|e| match e {
        OpenError::InUse => StoreError::InUse(dir.to_path_buf()),
        OpenError::Corrupt(source) | OpenError::Other(source) => source.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in `dir` holding one family, its copy in `sled.rewrite/`
    /// marked complete: where a crash can stop a rewrite.
    fn store_with_complete_copy(dir: &Path) -> RecordId {
        let (store, _) = LocalStore::init(dir, "laptop").unwrap();
        let mut f = super::super::tests::fields(1);
        f.notes = Some("a note".into());
        let id = store.add(f, Utc::now()).unwrap();
        store.flush().unwrap();
        let copy = open_fresh(&dir.join(NEW)).unwrap();
        crate::db::copy_into(&store.db, &copy).unwrap();
        drop(copy);
        touch(&dir.join(NEW).join(COMPLETE)).unwrap();
        id
    }

    fn opens_with(dir: &Path, id: RecordId) {
        let store = LocalStore::open(dir).unwrap();
        let view = store.get(id).unwrap().expect("the family is there");
        assert_eq!(view.family.fields.notes.as_deref(), Some("a note"));
        drop(store);
        assert!(!dir.join(NEW).exists() && !dir.join(OLD).exists());
    }

    #[test]
    fn a_rewrite_stopped_at_any_step_is_finished_or_dropped_at_open() {
        // The copy complete, nothing moved yet.
        let dir = tempfile::tempdir().unwrap();
        let id = store_with_complete_copy(dir.path());
        opens_with(dir.path(), id);

        // The copy not complete: dropped, the store as it was.
        let dir = tempfile::tempdir().unwrap();
        let id = store_with_complete_copy(dir.path());
        std::fs::remove_file(dir.path().join(NEW).join(COMPLETE)).unwrap();
        opens_with(dir.path(), id);

        // The old files moved out, and some of the copy's moved in.
        let dir = tempfile::tempdir().unwrap();
        let id = store_with_complete_copy(dir.path());
        let old = dir.path().join(OLD);
        move_sled_files(dir.path(), &old).unwrap();
        touch(&old.join(CLEARED)).unwrap();
        std::fs::rename(dir.path().join(NEW).join("conf"), dir.path().join("conf")).unwrap();
        opens_with(dir.path(), id);
    }
}
