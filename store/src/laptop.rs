//! The laptop's local store: every family this device holds, the operations
//! not yet pushed, and the device's identity and sync state, in one sled tree.
//!
//! Layout (one tree, so one `sled::Batch` changes several kinds atomically;
//! each prefix is spelled once, in `keys.rs`):
//! - `m/<name>`: metadata (device id and name, server, credential, cursor …);
//! - `m/format`: the layout's version ([`FORMAT`]), plain; a store of
//!   another one is refused;
//! - `D/<place>`: the records' operations ([`RecordDoc`]), packed a few
//!   dozen records to a key in the order they arrived here
//!   ([`record_packs`]), found by id through `I/<record id>`, the packs of
//!   each record's place, and `m/next_place`;
//! - `S/<place>`: what reports need of each active family ([`ReportRow`]),
//!   packed the same way;
//! - `c/<record id>`: the record's open conflicts, present only when there are some;
//! - `q/<seq>`: operations made here and not yet acknowledged by the server,
//!   written with each local write (at most [`QUEUE_ENTRY_OPS`] an entry), each
//!   operation as its record's id and its own id (16 bytes each), then its
//!   JSON (a 4-byte length, then the bytes) as it is pushed, so that a push
//!   reads nothing else;
//! - `qd/<seq>`: how many leading operations of queue entry `seq` the server
//!   has acknowledged (4 bytes), so that a large entry (an import chunk) is
//!   not rewritten at each batch; absent when none are;
//! - `h/<op id>`: operations the server refused, held with the reason;
//! - `m/crossings`, `m/provisional_crossings`: the crossings learnt from
//!   the server, and codes accepted offline before ([`crossings`]);
//! - `g/<record id>`: a family purged from this laptop (`returnee purge`):
//!   operations pulled for it later are dropped, not applied to a stub;
//! - `F/<place>`, `x/…`: what duplicate detection reads, kept in the same
//!   batch as the records (a pull's included): each counting family's
//!   features, packed like the records, and the pairs dismissed
//!   ([`duplicates`]). Candidates are found in memory from the features
//!   when asked; no key in the store holds a name or a document number.
//!
//! - `e/<note id>`: an export made from this store (`returnee export`),
//!   until a sync has put it in the server's audit trail;
//!
//! Every value goes through the store's [`StoreCipher`] ([`sealing`]): the
//! identity in a plain store, an AEAD bound to the value's key in an
//! encrypted one. Only `m/crypt` (the encryption header) and `m/format`
//! are always plain.
//! Empty marker values (index entries, dismissed pairs) carry nothing and
//! are left empty.
//!
//! Every write that is reported to the user is one atomic batch followed by a
//! flush, so it survives `kill -9` right after.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use rayon::prelude::*;
use returnee_shared::duplicates::Features;
use returnee_shared::merge::{Change, Conflict, Lifecycle, Op, Origin, RecordDoc, RecordView};
use returnee_shared::wire::{LoggedSpan, RejectedOp, Role, SyncCursor};
use returnee_shared::{
    DeviceId, Family, FamilyFields, FieldName, FieldValue, OpId, RecordId, ReportRow,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::db::OpenError;
use crate::format::{self, Migration};

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {0} is in use by another returnee process; wait for it to finish, or stop it, and try again"
    )]
    InUse(PathBuf),
    #[error(
        "there is no returnee store at {0}; run `returnee init` first (or pass the right --data-dir)"
    )]
    NotInitialized(PathBuf),
    #[error(
        "the store at {dir} could not be opened: {source}. Your data is still on disk; copy the folder somewhere safe, then run `returnee repair`"
    )]
    Corrupt {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored data could not be read ({0}); the store may come from a newer returnee")]
    Decode(#[from] serde_json::Error),
    #[error("no family with id {0}; `returnee list` shows the ids")]
    NotFound(String),
    #[error("'{0}' matches more than one family; give more characters of the id")]
    Ambiguous(String),
    #[error("family {0} is deleted; it cannot be edited")]
    Deleted(RecordId),
    #[error(
        "family {id} was merged into {into} as a duplicate; change {into} instead, or undo the merge with `returnee duplicates unmerge {id}`"
    )]
    Merged { id: RecordId, into: RecordId },
    #[error(
        "the personal data of family {0} was erased (`returnee erase`); its name, document number, notes, vulnerabilities and referral cannot be entered again. Other fields can still be changed"
    )]
    Erased(RecordId),
    #[error("family {0} is not merged into another family; there is nothing to unmerge")]
    NotMerged(RecordId),
    #[error("no open duplicate pair with id {0}; `returnee duplicates` lists them")]
    NoSuchPair(String),
    #[error("'{0}' starts more than one open pair's id; give more of it")]
    AmbiguousPair(String),
    #[error("--keep {keep}: not one of the two families of pair {pair}; give one of them")]
    NotInPair { keep: String, pair: String },
    #[error("no open conflict with id {0}; `returnee conflicts` lists them")]
    NoSuchConflict(String),
    #[error(transparent)]
    Invalid(#[from] returnee_shared::ValidationError),
    /// A value given by the user is wrong (exit 2).
    #[error("{0}")]
    BadValue(String),
    /// Something stored does not read back (exit 1).
    #[error(
        "the local store is damaged: {0}. Your data is still on disk; copy the data folder somewhere safe before trying anything else, and ask for support"
    )]
    Damaged(String),
    #[error(
        "the store at {dir} was written by another version of returnee (store format {found}, this one reads {FORMAT}); nothing was changed. Run the version that wrote it (and sync), or start a new store with another --data-dir"
    )]
    Format { dir: PathBuf, found: u32 },
    #[error(
        "the store at {0} is encrypted: set RETURNEE_PASSPHRASE, or run returnee on a terminal to be asked for the passphrase"
    )]
    PassphraseNeeded(PathBuf),
    #[error("wrong passphrase for the store at {0}; nothing was read or changed")]
    WrongPassphrase(PathBuf),
    #[error(
        "a store already exists at {0} and is not encrypted; nothing changed. Encryption is chosen when a store is made: use `init --encrypt` with a new --data-dir"
    )]
    AlreadyPlain(PathBuf),
    #[error(
        "the store at {0} is not encrypted, so it has no passphrase to change; encryption is chosen when a store is made (`init --encrypt` with a new --data-dir)"
    )]
    NotEncrypted(PathBuf),
    #[error("the store at {dir} could not be read: {source}")]
    Sealing {
        dir: PathBuf,
        #[source]
        source: SealError,
    },
    /// The outbox journal could not be read or written (exit 1).
    #[error("the outbox (unsent changes) could not be used: {0}")]
    Outbox(String),
    /// The outbox journal is damaged before its last complete frame (exit 1).
    #[error(
        "the outbox (unsent changes) is damaged in {} at byte {offset} ({reason}); copy the data folder somewhere safe and ask for support",
        segment.display()
    )]
    OutboxDamaged {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

mod crossings;
mod duplicates;
mod edits;
pub mod erasure;
mod export_notes;
pub mod find;
mod keys;
mod open;
mod outbox;
mod pull;
mod purge;
mod queue;
mod recent;
mod record_packs;
pub mod refused;
mod repair;
pub mod sealing;
mod sync_store;

pub use duplicates::BlockCounts;
use keys::Kind;
pub use purge::PurgeOutcome;
use queue::{QUEUE_ENTRY_OPS, queue_items, queue_key};
pub use queue::{QueueRef, QueuedOp};
use record_packs::{DOCS, PackedValues, ROWS};
pub use repair::RepairReport;
use sealing::{CryptHeader, Passphrase, SealError, StoreCipher};

/// What the device shows of a record, kept beside its operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredView {
    pub family: Family,
    pub lifecycle: Lifecycle,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

impl StoredView {
    /// The family if it counts (not deleted).
    pub fn active(&self) -> Option<&Family> {
        (self.lifecycle == Lifecycle::Active).then_some(&self.family)
    }
}

/// This device as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: DeviceId,
    pub name: String,
}

/// The server this device is enrolled with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub server: String,
    pub device_id: DeviceId,
    pub token: String,
    pub role: Role,
    pub sites: Vec<String>,
    /// The CA certificate (PEM) given with `--ca` at enrollment, trusted for
    /// this server from then on (a later `--ca` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// When the token stops working, as the server said at the last sync
    /// (each sync renews it in time; `None` before the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// One family to add, or to bring in line with, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    pub id: RecordId,
    pub fields: FamilyFields,
    /// Provenance carried over from an export.
    pub origin: Option<Origin>,
}

/// Whether `init` made a store or found one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyThere,
}

/// How an upsert of many families went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpsertOutcome {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// The families this upsert created (for duplicate checks).
    #[serde(skip)]
    pub added_ids: Vec<RecordId>,
}

const META_DEVICE: &str = "device";
const META_ENROLLMENT: &str = "enrollment";
const META_CURSOR: &str = "cursor";
const META_LAST_SYNC: &str = "last_sync";
/// The server's `/v1/health` at the last sync (its protocols), so that
/// `status` can say offline whether an update is available.
const META_SERVER_HEALTH: &str = "server_health";
const META_DEVICE_NAMES: &str = "device_names";
const META_PENDING_SEQ: &str = "pending_seq";
/// How many operations the push queue holds (kept with every change to it:
/// counting would read the whole queue).
const META_PENDING_COUNT: &str = "pending_count";
/// Set by a repair that rebuilt the store from its outbox: the next sync
/// pulls everything again, this device's own operations included.
const META_FULL_REPULL: &str = "full_repull";
/// The encryption header ([`CryptHeader`]), plain; absent in a plain store.
const META_CRYPT: &str = "crypt";
/// The layout's version (4 bytes, plain), written when the store is made.
const FORMAT_KEY: &[u8] = b"m/format";
/// The store's migrations, oldest first ([`crate::format`]): add one, with
/// a test on a store written by the release before, for any change to the
/// layout (see the module docs) that a released store must be brought to.
const MIGRATIONS: &[Migration<StoreError>] = &[];
/// The layout's version.
pub const FORMAT: u32 = format::current(MIGRATIONS);

fn meta_key(name: &str) -> Vec<u8> {
    Kind::Meta.key(&[name.as_bytes()])
}
fn conflicts_key(id: RecordId) -> Vec<u8> {
    Kind::Conflicts.key(&[id.0.as_bytes()])
}
fn damaged(what: impl Into<String>) -> StoreError {
    StoreError::Damaged(what.into())
}

fn held_key(id: OpId) -> Vec<u8> {
    Kind::Held.key(&[id.0.as_bytes()])
}
fn purged_key(id: RecordId) -> Vec<u8> {
    Kind::Purged.key(&[id.0.as_bytes()])
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store values serialize")
}
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

/// The device's local store. Cheap to clone; one per process.
#[derive(Clone)]
pub struct LocalStore {
    db: sled::Db,
    dir: PathBuf,
    /// Seals and opens every value.
    cipher: StoreCipher,
    /// Held by every write from its first read to its batch being applied
    /// ([`WriteLock`]).
    commit_lock: std::sync::Arc<std::sync::Mutex<()>>,
    /// The outbox journal ([`outbox`]), opened at the first write.
    outbox: std::sync::Arc<std::sync::Mutex<outbox::Outbox>>,
    /// What waits beside the packs, as last read ([`recent`]).
    recent: recent::RecentCache,
    /// Which records may be placed here, for writes under the commit lock
    /// only ([`LocalStore::placement_locked`]).
    known: std::sync::Arc<crate::placed::KnownIds>,
}

/// Proof that the store's write lock is held. Every write takes it before
/// it reads what it will change (a record, the queue's next number, a pack)
/// and keeps it until its batch is applied, so that writes through clones
/// of one store, on several threads, never build on the same old value.
pub(super) struct WriteLock<'a>(#[allow(dead_code)] std::sync::MutexGuard<'a, ()>);

/// Where the passphrase of an encrypted store comes from, asked only when
/// the store turns out to be encrypted (`None`: there is none to be had).
pub type PassphraseSource<'a> = &'a dyn Fn() -> Option<Passphrase>;

/// sled's page cache for everyday commands: small, so that a laptop with
/// a million families stays light.
pub const CACHE_BYTES: u64 = 16 * 1024 * 1024;

fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db> {
    // A rewrite of the store's files an erasure began (`erasure`).
    erasure::settle(dir)?;
    crate::db::open(dir, cache_bytes).map_err(|e| match e {
        OpenError::InUse => StoreError::InUse(dir.to_path_buf()),
        OpenError::Corrupt(source) => StoreError::Corrupt {
            dir: dir.to_path_buf(),
            source,
        },
        OpenError::Other(e) => e.into(),
    })
}

/// A batch of changes to the store, applied atomically. Every value staged
/// goes through the store's cipher.
struct Writes {
    batch: sled::Batch,
    cipher: StoreCipher,
    /// Records this batch creates: nothing of them is stored yet, so there
    /// is nothing to remove or read back (a bulk import's common case).
    fresh: std::collections::HashSet<RecordId>,
    /// Operations made here in this batch, as queued items: `commit`
    /// writes them as queue entries.
    queue: Vec<u8>,
    /// Records' operations set or removed, packed at commit.
    docs: PackedValues,
    /// Report rows set or removed, packed at commit.
    rows: PackedValues,
    /// Duplicate-index features set or removed, packed at commit.
    features: PackedValues,
    /// Every value waiting beside the packs goes into them at commit.
    fold_recent: bool,
}

impl Writes {
    fn put<T: Serialize>(&mut self, key: Vec<u8>, v: &T) {
        self.put_bytes(key, encode(v));
    }
    fn put_bytes(&mut self, key: Vec<u8>, value: Vec<u8>) {
        let value = self.cipher.seal(&key, value);
        self.batch.insert(key, value);
    }
    /// An entry whose key is all it says (an empty value: nothing to seal).
    fn mark(&mut self, key: Vec<u8>) {
        self.batch.insert(key, Vec::new());
    }
    fn remove(&mut self, key: Vec<u8>) {
        self.batch.remove(key);
    }
    fn apply(&mut self, doc: DocWrites) {
        self.docs.insert(doc.id, Some(doc.doc));
        if let Some(row) = doc.row {
            self.rows.insert(doc.id, row);
        }
        if let Some(features) = doc.features {
            self.features.insert(doc.id, features);
        }
        for key in doc.marks {
            self.mark(key);
        }
        for (key, sealed) in doc.puts {
            self.batch.insert(key, sealed);
        }
        for key in doc.removes {
            self.batch.remove(key);
        }
    }
}

/// What staging a record's doc writes, computed apart from the batch so
/// that a pulled page's records are prepared on all cores: its operations,
/// report row and duplicate features (for their packs), its other keys
/// (values sealed).
struct DocWrites {
    id: RecordId,
    doc: Vec<u8>,
    /// `Some(None)`: the row goes; `None`: nothing to do.
    row: Option<Option<Vec<u8>>>,
    /// The same for the duplicate features.
    features: Option<Option<Vec<u8>>>,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys whose presence is all they say (the pairs it was dismissed
    /// against).
    marks: Vec<Vec<u8>>,
    removes: Vec<Vec<u8>>,
}

impl DocWrites {
    /// A record's operations, its report row and duplicate features while
    /// it counts, the pairs it was dismissed against, and its open conflicts
    /// while it has some (`fresh`: nothing of it stored yet, so nothing to
    /// remove).
    fn of(
        cipher: &StoreCipher,
        id: RecordId,
        doc: &RecordDoc,
        view: &RecordView,
        fresh: bool,
    ) -> Self {
        let set_or_remove = |value: Option<Vec<u8>>| match value {
            Some(v) => Some(Some(v)),
            None if fresh => None,
            None => Some(None),
        };
        let active = view.active();
        let mut out = DocWrites {
            id,
            doc: encode(doc),
            row: set_or_remove(
                active
                    .and_then(|f| ReportRow::of(&f.fields))
                    .map(|row| row.to_bytes().to_vec()),
            ),
            features: set_or_remove(active.map(|f| Features::of(&f.fields).to_bytes())),
            puts: Vec::new(),
            marks: doc
                .dismissed()
                .into_iter()
                .map(|other| duplicates::dismissed_key(id, other))
                .collect(),
            removes: Vec::new(),
        };
        if !view.conflicts.is_empty() {
            let key = conflicts_key(id);
            let sealed = cipher.seal(&key, encode(&view.conflicts));
            out.puts.push((key, sealed));
        } else if !fresh {
            out.removes.push(conflicts_key(id));
        }
        out
    }
}

impl LocalStore {
    fn writes(&self) -> Writes {
        Writes {
            batch: sled::Batch::default(),
            cipher: self.cipher.clone(),
            fresh: Default::default(),
            queue: Vec::new(),
            docs: Default::default(),
            rows: Default::default(),
            features: Default::default(),
            fold_recent: false,
        }
    }

    /// The value under `key`, opened.
    fn get_value(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        match self.db.get(key)? {
            Some(v) => Ok(Some(self.open_value(key, v)?)),
            None => Ok(None),
        }
    }

    fn open_value(&self, key: &[u8], v: sled::IVec) -> Result<sled::IVec> {
        self.cipher
            .open(key, v)
            .map_err(|e| Self::sealing(&self.dir, e))
    }

    /// Every entry under `prefix`, values opened (a scan that keeps the
    /// page cache to its size: [`crate::db::weighed`]).
    fn scan_values(
        &self,
        prefix: &'static [u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
        crate::db::weighed(&self.db, self.db.scan_prefix(prefix)).map(move |item| {
            let (k, v) = item?;
            let v = self.open_value(&k, v)?;
            Ok((k, v))
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        self.get_value(&meta_key(name))?
            .map(|b| decode(&b))
            .transpose()
    }

    fn set_meta<T: Serialize>(&self, name: &str, v: &T) -> Result<()> {
        let key = meta_key(name);
        let value = self.cipher.seal(&key, encode(v));
        self.db.insert(key, value)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn device(&self) -> Result<DeviceInfo> {
        self.meta(META_DEVICE)?
            .ok_or_else(|| StoreError::NotInitialized(self.dir.clone()))
    }

    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        self.meta(META_ENROLLMENT)
    }

    /// Records the enrollment (the server registered this device's own id),
    /// in the outbox too (a rebuilt store syncs with it).
    pub fn set_enrollment(&self, e: &Enrollment) -> Result<()> {
        let identity = outbox::Identity {
            device: self.device()?,
            enrollment: Some(e.clone()),
        };
        self.outbox_append(&[(outbox::IDENTITY, encode(&identity))], true)?;
        self.set_meta(META_ENROLLMENT, e)
    }

    /// Whether the next sync must pull everything again, this device's own
    /// operations included (set by a repair that rebuilt the store).
    pub fn full_repull(&self) -> Result<bool> {
        Ok(self.meta(META_FULL_REPULL)?.unwrap_or(false))
    }

    /// Records that the full re-pull is done.
    pub fn clear_full_repull(&self) -> Result<()> {
        if self.full_repull()? {
            self.set_meta(META_FULL_REPULL, &false)?;
        }
        Ok(())
    }

    pub fn cursor(&self) -> Result<SyncCursor> {
        Ok(self.meta(META_CURSOR)?.unwrap_or_default())
    }

    pub fn last_sync(&self) -> Result<Option<DateTime<Utc>>> {
        self.meta(META_LAST_SYNC)
    }

    pub fn set_last_sync(&self, at: DateTime<Utc>) -> Result<()> {
        self.set_meta(META_LAST_SYNC, &at)
    }

    /// What the server said of its protocols at the last sync.
    pub fn server_health(&self) -> Result<Option<returnee_shared::wire::Health>> {
        self.meta(META_SERVER_HEALTH)
    }

    /// Keeps what the server said of its protocols (written only when it
    /// changed: a sync's fixed cost is mostly its flushes).
    pub fn set_server_health(&self, health: &returnee_shared::wire::Health) -> Result<()> {
        if self.server_health()?.as_ref() == Some(health) {
            return Ok(());
        }
        self.set_meta(META_SERVER_HEALTH, health)
    }

    /// What people call each device, as the server said at the last sync
    /// (empty before one): shown where operations carry device ids.
    pub fn device_names(&self) -> Result<std::collections::HashMap<DeviceId, String>> {
        Ok(self.meta(META_DEVICE_NAMES)?.unwrap_or_default())
    }

    /// Keeps the names (written only when they changed).
    pub fn set_device_names(
        &self,
        names: &std::collections::HashMap<DeviceId, String>,
    ) -> Result<()> {
        if &self.device_names()? == names {
            return Ok(());
        }
        self.set_meta(META_DEVICE_NAMES, names)
    }

    /// Takes the write lock (see [`WriteLock`]).
    pub(super) fn write_lock(&self) -> WriteLock<'_> {
        WriteLock(self.commit_lock.lock().expect("write lock"))
    }

    /// Applies `w` in one atomic batch and flushes it.
    fn commit(&self, lock: &WriteLock<'_>, w: Writes) -> Result<()> {
        self.commit_unflushed(lock, w)?;
        self.db.flush()?;
        Ok(())
    }

    /// [`LocalStore::commit`] without the flush: the write is atomic, and
    /// durable at the next flush (any later commit's, or sled's own every
    /// half second). Only for writes that a crash may lose without losing
    /// anything typed: see [`LocalStore::acknowledge_logged`].
    fn commit_unflushed(&self, _lock: &WriteLock<'_>, mut w: Writes) -> Result<()> {
        if !w.queue.is_empty() {
            let queue = std::mem::take(&mut w.queue);
            let items = queue_items(&queue)?;
            // In the outbox, durable, before sled has it.
            self.outbox_append(&[(outbox::OPS, queue.clone())], true)?;
            let mut seq = self.next_pending_seq()?;
            for (i, part) in items.chunks(QUEUE_ENTRY_OPS).enumerate() {
                if i > 0 {
                    seq += 1;
                }
                let entry: Vec<u8> = part.iter().flat_map(|item| item.raw).copied().collect();
                w.put_bytes(queue_key(seq), entry);
            }
            w.put(meta_key(META_PENDING_SEQ), &seq);
            let count = self.queue_len()? + items.len() as u64;
            w.put(meta_key(META_PENDING_COUNT), &count);
        }
        let packs = self.stage_packs(_lock, &mut w)?;
        self.db.apply_batch(w.batch)?;
        crate::db::weigh_written(&self.db, &packs);
        Ok(())
    }

    fn load_doc(&self, id: RecordId) -> Result<Option<RecordDoc>> {
        self.packed(DOCS, id)?.map(|b| decode(&b)).transpose()
    }

    /// Stages a record's operations and what is derived from them (report
    /// row, duplicate features, conflicts), in the same batch.
    fn stage_doc(w: &mut Writes, id: RecordId, doc: &RecordDoc) {
        let view = doc.view(id);
        let writes = DocWrites::of(&w.cipher, id, doc, &view, w.fresh.contains(&id));
        w.apply(writes);
    }

    fn next_pending_seq(&self) -> Result<u64> {
        Ok(self.meta::<u64>(META_PENDING_SEQ)?.unwrap_or(0) + 1)
    }

    /// Finds a record by its full id or a unique prefix of at least 4 characters.
    pub fn resolve_id(&self, text: &str) -> Result<RecordId> {
        let text = text.trim();
        if let Ok(id) = text.parse::<RecordId>() {
            return Ok(id);
        }
        let wanted = text.to_ascii_lowercase();
        if wanted.len() < 4 {
            return Err(StoreError::NotFound(text.to_string()));
        }
        let mut found = None;
        for item in self.scan_packed(DOCS) {
            let (id, _) = item?;
            if id.to_string().starts_with(&wanted) || id.0.simple().to_string().starts_with(&wanted)
            {
                if found.is_some() {
                    return Err(StoreError::Ambiguous(text.to_string()));
                }
                found = Some(id);
            }
        }
        found.ok_or_else(|| StoreError::NotFound(text.to_string()))
    }

    /// A record as this device shows it.
    pub fn get(&self, id: RecordId) -> Result<Option<StoredView>> {
        Ok(self.load_doc(id)?.and_then(|doc| stored_view(id, &doc)))
    }

    /// Records as this device shows them, in the order of `ids` (any
    /// order, repeats allowed): read together, where [`Self::get`] reads
    /// the index of places for each.
    pub fn get_many(&self, ids: &[RecordId]) -> Result<Vec<Option<StoredView>>> {
        let docs = self.packed_by_id(DOCS, ids)?;
        ids.iter()
            .map(|id| {
                let Some(b) = docs.get(id) else {
                    return Ok(None);
                };
                Ok(stored_view(*id, &decode(b)?))
            })
            .collect()
    }

    /// A record's operations, as this device holds them.
    pub fn record_doc(&self, id: RecordId) -> Result<Option<RecordDoc>> {
        self.load_doc(id)
    }

    /// Every record this device holds, with its operations, in the order they arrived here.
    pub fn record_docs(&self) -> impl Iterator<Item = Result<(RecordId, RecordDoc)>> + '_ {
        self.scan_packed(DOCS)
            .map(|item| item.and_then(|(id, v)| Ok((id, decode::<RecordDoc>(&v)?))))
    }

    /// Every record the device holds, deleted ones included, in the order they arrived here.
    pub fn views(&self) -> impl Iterator<Item = Result<StoredView>> + '_ {
        self.scan_packed(DOCS).filter_map(|item| {
            let doc = item.and_then(|(id, v)| Ok((id, decode::<RecordDoc>(&v)?)));
            match doc {
                Ok((id, doc)) => stored_view(id, &doc).map(Ok),
                Err(e) => Some(Err(e)),
            }
        })
    }

    /// Every family that counts (not deleted), in the order they arrived here.
    pub fn families(&self) -> impl Iterator<Item = Result<Family>> + '_ {
        self.views().filter_map(|v| match v {
            Ok(v) => (v.lifecycle == Lifecycle::Active).then_some(Ok(v.family)),
            Err(e) => Some(Err(e)),
        })
    }

    /// What reports need of every family that counts: a fast scan.
    pub fn report_rows(&self) -> impl Iterator<Item = Result<ReportRow>> + '_ {
        self.identified_report_rows()
            .map(|item| item.map(|(_, row)| row))
    }

    /// [`LocalStore::report_rows`], each with its family's id.
    pub fn identified_report_rows(
        &self,
    ) -> impl Iterator<Item = Result<(RecordId, ReportRow)>> + '_ {
        self.scan_packed(ROWS).map(|item| {
            let (id, v) = item?;
            let row = ReportRow::from_bytes(&v)
                .ok_or_else(|| damaged("a report row does not read back"))?;
            Ok((id, row))
        })
    }

    /// Forgets everything this device holds (after the server revoked it).
    pub fn wipe(&self) -> Result<()> {
        self.remove_outbox()?;
        self.db.clear()?;
        self.db.flush()?;
        // The numbers of `r/` keys start again.
        *self.recent.lock().expect("recent cache") = None;
        Ok(())
    }
}

fn stored_view(id: RecordId, doc: &RecordDoc) -> Option<StoredView> {
    let view = doc.view(id);
    view.family.map(|family| StoredView {
        family,
        lifecycle: view.lifecycle,
        conflicts: view.conflicts,
    })
}

#[cfg(test)]
pub(crate) mod tests;
