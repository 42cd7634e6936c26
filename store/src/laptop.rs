//! The laptop's local store: every family this device holds, the operations
//! not yet pushed, and the device's identity and sync state, in one sled tree.
//!
//! Layout (one tree, so one `sled::Batch` changes several kinds atomically):
//! - `m/<name>`: metadata (device id and name, server, credential, cursor …);
//! - `m/format`: the layout's version ([`FORMAT`]), plain; a store of
//!   another one is refused;
//! - `D/<record id>`: the records' operations ([`RecordDoc`]), packed a few
//!   dozen records to a key in id order ([`record_packs`]);
//! - `S/<record id>`: what reports need of each active family ([`ReportRow`]),
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
//! - `g/<record id>`: a family purged from this laptop (`returnee purge`):
//!   operations pulled for it later are dropped, not applied to a stub;
//! - `b/…`, `F/…`, `x/…`: the duplicate index, kept in the same batch as
//!   the records it indexes ([`duplicates`]), except for families changed by
//!   a pull: those are marked (`bp/<cursor><part>`: the ids of up to 256
//!   families a pulled page changed) and indexed by the next command that looks for duplicates. Its block keys are keyed hashes
//!   ([`sealing::IndexKey`]): no key in the store holds a name or a document
//!   number, in a plain store as in an encrypted one.
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
use returnee_shared::merge::{Change, Conflict, Lifecycle, Op, Origin, RecordDoc, RecordView};
use returnee_shared::wire::{LoggedSpan, RejectedOp, Role, SyncCursor};
use returnee_shared::{
    DeviceId, Family, FamilyFields, FieldName, FieldValue, OpId, RecordId, ReportRow,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::db::OpenError;
use crate::format::{self, FormatError, Migration, Opened};

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
        "the store at {dir} could not be opened: {source}. Your data is still on disk; copy the folder somewhere safe before trying anything else, and ask for support"
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
    #[error("family {0} is not merged into another family; there is nothing to unmerge")]
    NotMerged(RecordId),
    #[error("no open duplicate pair with id {0}; `returnee duplicates` lists them")]
    NoSuchPair(String),
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
    #[error("the store at {dir} could not be read: {source}")]
    Sealing {
        dir: PathBuf,
        #[source]
        source: SealError,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

mod duplicates;
mod purge;
mod record_packs;
pub mod sealing;

pub use duplicates::BlockCounts;
pub use purge::PurgeOutcome;
use record_packs::{DOCS, PackedValues, ROWS};
use sealing::{CryptHeader, IndexKey, Passphrase, SealError, StoreCipher};

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
const META_PENDING_SEQ: &str = "pending_seq";
/// How many operations the push queue holds (kept with every change to it:
/// counting would read the whole queue).
const META_PENDING_COUNT: &str = "pending_count";
/// The encryption header ([`CryptHeader`]), plain; absent in a plain store.
const META_CRYPT: &str = "crypt";
/// The duplicate index's key (32 bytes; sealed in an encrypted store).
const META_INDEX_KEY: &str = "index_key";
/// The layout's version (4 bytes, plain), written when the store is made.
const FORMAT_KEY: &[u8] = b"m/format";
/// The store's migrations, oldest first ([`crate::format`]): add one, with
/// a test on a store written by the release before, for any change to the
/// layout (see the module docs) that a released store must be brought to.
const MIGRATIONS: &[Migration<StoreError>] = &[];
/// The layout's version.
pub const FORMAT: u32 = format::current(MIGRATIONS);

fn meta_key(name: &str) -> Vec<u8> {
    [b"m/".as_slice(), name.as_bytes()].concat()
}
fn conflicts_key(id: RecordId) -> Vec<u8> {
    [b"c/".as_slice(), id.0.as_bytes()].concat()
}
/// Operations per queue entry at most: a large write (an import chunk) is
/// queued as several entries, because sled holds a node's values together
/// in memory, and entries of megabytes made a push of a million families
/// take a gigabyte.
const QUEUE_ENTRY_OPS: usize = 64;

/// Where a queued operation sits: its queue entry (one per local write:
/// an `add`, an `edit`, a chunk of an import) and its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueRef {
    pub seq: u64,
    pub index: u32,
}

fn queue_key(seq: u64) -> Vec<u8> {
    [b"q/".as_slice(), &seq.to_be_bytes()].concat()
}
fn queue_done_key(seq: u64) -> Vec<u8> {
    [b"qd/".as_slice(), &seq.to_be_bytes()].concat()
}

/// An operation waiting to be pushed: where it sits in the queue, and its
/// JSON as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedOp {
    pub at: QueueRef,
    pub record: RecordId,
    pub id: OpId,
    pub json: Vec<u8>,
}

/// A queue entry as stored, and how many of its leading operations are
/// already acknowledged.
struct QueueEntry {
    seq: u64,
    done: usize,
    value: sled::IVec,
}

/// One operation of a queue entry as stored: its record, its id, its JSON,
/// and the bytes of the whole item.
struct QueueItem<'a> {
    record: RecordId,
    id: OpId,
    json: &'a [u8],
    raw: &'a [u8],
}

fn damaged_queue() -> StoreError {
    damaged("an entry of the push queue does not read back")
}

fn damaged(what: impl Into<String>) -> StoreError {
    StoreError::Damaged(what.into())
}

/// The operations of a queue entry, in order.
fn queue_items(v: &[u8]) -> Result<Vec<QueueItem<'_>>> {
    let ids = |b: &[u8]| {
        (
            RecordId(uuid::Uuid::from_slice(&b[..16]).expect("16 bytes")),
            OpId(uuid::Uuid::from_slice(&b[16..32]).expect("16 bytes")),
        )
    };
    let mut out = Vec::new();
    let mut rest = v;
    while !rest.is_empty() {
        let len = rest
            .get(32..36)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(damaged_queue)?;
        let (raw, tail) = rest.split_at_checked(36 + len).ok_or_else(damaged_queue)?;
        let (record, id) = ids(raw);
        out.push(QueueItem {
            record,
            id,
            json: &raw[36..],
            raw,
        });
        rest = tail;
    }
    if out.is_empty() {
        return Err(damaged_queue());
    }
    Ok(out)
}
fn held_key(id: OpId) -> Vec<u8> {
    [b"h/".as_slice(), id.0.as_bytes()].concat()
}
fn purged_key(id: RecordId) -> Vec<u8> {
    [b"g/".as_slice(), id.0.as_bytes()].concat()
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
    /// Hashes the duplicate index's block keys.
    index: IndexKey,
    /// Held by every write from its first read to its batch being applied
    /// ([`WriteLock`]).
    commit_lock: std::sync::Arc<std::sync::Mutex<()>>,
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
/// sled's page cache for a bulk import: the duplicate index's keys land all
/// over the tree, and a cache that holds it makes an import of 100,000 rows
/// about twice as fast.
pub const BULK_CACHE_BYTES: u64 = 256 * 1024 * 1024;

fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db> {
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
    /// Records whose duplicate index entries `commit` stages.
    dup: duplicates::Staged,
    cipher: StoreCipher,
    /// Records this batch creates: nothing of them is stored yet, so there
    /// is nothing to remove or read back (a bulk import's common case).
    fresh: std::collections::HashSet<RecordId>,
    /// Operations made here in this batch, as queued items: `commit`
    /// writes them as queue entries.
    queue: Vec<u8>,
    /// Families a pull changed: marked by [`duplicates::stage_pulled_marks`]
    /// for the duplicate index to catch up later rather than indexed now.
    pulled: Vec<RecordId>,
    /// Records' operations set or removed, packed at commit.
    docs: PackedValues,
    /// Report rows set or removed, packed at commit.
    rows: PackedValues,
    /// Duplicate-index features set or removed, packed at commit.
    features: PackedValues,
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
        for (key, sealed) in doc.puts {
            self.batch.insert(key, sealed);
        }
        for key in doc.removes {
            self.batch.remove(key);
        }
    }
}

/// What staging a record's doc writes, computed apart from the batch so
/// that a pulled page's records are prepared on all cores: its operations
/// and report row (for their packs), its other keys (values sealed).
struct DocWrites {
    id: RecordId,
    doc: Vec<u8>,
    /// `Some(None)`: the row goes; `None`: nothing to do.
    row: Option<Option<Vec<u8>>>,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    removes: Vec<Vec<u8>>,
}

impl DocWrites {
    /// A record's operations, its report row while it counts and its open
    /// conflicts while it has some (`fresh`: nothing of it stored yet, so
    /// nothing to remove).
    fn of(
        cipher: &StoreCipher,
        id: RecordId,
        doc: &RecordDoc,
        view: &RecordView,
        fresh: bool,
    ) -> Self {
        let mut out = DocWrites {
            id,
            doc: encode(doc),
            row: match view.active().and_then(|f| ReportRow::of(&f.fields)) {
                Some(row) => Some(Some(row.to_bytes().to_vec())),
                None if fresh => None,
                None => Some(None),
            },
            puts: Vec::new(),
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
    /// Creates a plain store (and a device id) or finds the one already there.
    pub fn init(dir: &Path, device_name: &str) -> Result<(Self, InitOutcome)> {
        Self::init_with(dir, device_name, None, &|| None)
    }

    /// Creates the store, encrypted under `encrypt` if given, or finds the
    /// one already there (unlocked with `encrypt`, else with `passphrase`).
    /// A new store is written in one flushed batch: its encryption header,
    /// index key and device id land together or not at all.
    pub fn init_with(
        dir: &Path,
        device_name: &str,
        encrypt: Option<&Passphrase>,
        passphrase: PassphraseSource<'_>,
    ) -> Result<(Self, InitOutcome)> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        let db = open_db(dir, CACHE_BYTES)?;
        if Self::has_device(&db)? {
            if encrypt.is_some() && db.get(meta_key(META_CRYPT))?.is_none() {
                return Err(StoreError::AlreadyPlain(dir.to_path_buf()));
            }
            let given = encrypt.cloned();
            let store = Self::unlock(db, dir, &|| given.clone().or_else(passphrase))?;
            return Ok((store, InitOutcome::AlreadyThere));
        }
        let mut batch = sled::Batch::default();
        let cipher = match encrypt {
            Some(pass) => {
                let (cipher, header) =
                    StoreCipher::create(pass).map_err(|e| Self::sealing(dir, e))?;
                batch.insert(meta_key(META_CRYPT), encode(&header));
                cipher
            }
            None => StoreCipher::Plain,
        };
        let (index, index_bytes) = IndexKey::generate().map_err(|e| Self::sealing(dir, e))?;
        let store = LocalStore {
            db,
            dir: dir.to_path_buf(),
            cipher,
            index,
            commit_lock: Default::default(),
        };
        let mut w = store.writes();
        w.batch = batch;
        w.put_bytes(meta_key(META_INDEX_KEY), index_bytes.to_vec());
        w.put(
            meta_key(META_DEVICE),
            &DeviceInfo {
                id: DeviceId::new_v4(),
                name: device_name.to_string(),
            },
        );
        store.mark_duplicate_index_built(&mut w);
        w.batch.insert(FORMAT_KEY, FORMAT.to_be_bytes().to_vec());
        store.db.apply_batch(w.batch)?;
        store.db.flush()?;
        Ok((store, InitOutcome::Created))
    }

    /// Opens an existing plain store (an encrypted one needs [`Self::open_with`]).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, &|| None)
    }

    /// Opens an existing store, asking `passphrase` if it is encrypted.
    pub fn open_with(dir: &Path, passphrase: PassphraseSource<'_>) -> Result<Self> {
        Self::open_with_cache(dir, passphrase, CACHE_BYTES)
    }

    /// As [`Self::open_with`], with a page cache of `cache_bytes`
    /// ([`BULK_CACHE_BYTES`] for a bulk import).
    pub fn open_with_cache(
        dir: &Path,
        passphrase: PassphraseSource<'_>,
        cache_bytes: u64,
    ) -> Result<Self> {
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        let db = open_db(dir, cache_bytes)?;
        if !Self::has_device(&db)? {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        Self::unlock(db, dir, passphrase)
    }

    /// Whether the store is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_sealed()
    }

    fn has_device(db: &sled::Db) -> Result<bool> {
        Ok(db.contains_key(meta_key(META_DEVICE))?)
    }

    fn sealing(dir: &Path, source: SealError) -> StoreError {
        match source {
            SealError::WrongPassphrase => StoreError::WrongPassphrase(dir.to_path_buf()),
            source => StoreError::Sealing {
                dir: dir.to_path_buf(),
                source,
            },
        }
    }

    /// Checks an opened store's format, unlocks it (checking the passphrase
    /// before anything is read or written), and brings its duplicate index
    /// up to date.
    fn unlock(db: sled::Db, dir: &Path, passphrase: PassphraseSource<'_>) -> Result<Self> {
        match format::open(&db, FORMAT_KEY, MIGRATIONS, false, Default::default()) {
            Ok(Opened::Migrated { from }) => {
                tracing::info!(from, to = FORMAT, "store format migrated");
            }
            Ok(Opened::Created | Opened::Current) => {}
            Err(FormatError::Unknown { found }) => {
                return Err(StoreError::Format {
                    dir: dir.to_path_buf(),
                    found,
                });
            }
            Err(FormatError::Store(e)) => return Err(e),
        }
        let cipher = match db.get(meta_key(META_CRYPT))? {
            None => StoreCipher::Plain,
            Some(raw) => {
                let header: CryptHeader = decode(&raw)?;
                let pass = passphrase().ok_or_else(|| StoreError::PassphraseNeeded(dir.into()))?;
                StoreCipher::unlock(&header, &pass).map_err(|e| Self::sealing(dir, e))?
            }
        };
        let key = meta_key(META_INDEX_KEY);
        let sealed = db
            .get(&key)?
            .ok_or_else(|| damaged("its duplicate index key is missing"))?;
        let bytes = cipher
            .open(&key, sealed)
            .map_err(|e| Self::sealing(dir, e))?;
        let index = IndexKey::from_bytes(&bytes).map_err(|e| Self::sealing(dir, e))?;
        let store = LocalStore {
            db,
            dir: dir.to_path_buf(),
            cipher,
            index,
            commit_lock: Default::default(),
        };
        store.ensure_duplicate_index()?;
        Ok(store)
    }

    fn writes(&self) -> Writes {
        Writes {
            batch: sled::Batch::default(),
            dup: Default::default(),
            cipher: self.cipher.clone(),
            fresh: Default::default(),
            queue: Vec::new(),
            pulled: Vec::new(),
            docs: Default::default(),
            rows: Default::default(),
            features: Default::default(),
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

    /// Records the enrollment (the server registered this device's own id).
    pub fn set_enrollment(&self, e: &Enrollment) -> Result<()> {
        self.set_meta(META_ENROLLMENT, e)
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
        self.stage_duplicates(&mut w)?;
        let packs = self.stage_packs(&mut w)?;
        self.db.apply_batch(w.batch)?;
        crate::db::weigh_written(&self.db, &packs);
        Ok(())
    }

    fn load_doc(&self, id: RecordId) -> Result<Option<RecordDoc>> {
        self.packed(DOCS, id)?.map(|b| decode(&b)).transpose()
    }

    /// Stages a record's operations and its recomputed view (and its
    /// duplicate index entries, in the same batch).
    fn stage_doc(w: &mut Writes, id: RecordId, doc: &RecordDoc) {
        let view = doc.view(id);
        let writes = DocWrites::of(&w.cipher, id, doc, &view, w.fresh.contains(&id));
        w.apply(writes);
        w.dup.note(id, doc, &view);
    }

    fn next_pending_seq(&self) -> Result<u64> {
        Ok(self.meta::<u64>(META_PENDING_SEQ)?.unwrap_or(0) + 1)
    }

    /// Stages a local operation: into its record and the push queue.
    fn stage_local(w: &mut Writes, doc: &mut RecordDoc, op: Op) {
        let json = encode(&op);
        w.queue.extend_from_slice(op.record.0.as_bytes());
        w.queue.extend_from_slice(op.id.0.as_bytes());
        w.queue
            .extend_from_slice(&(json.len() as u32).to_be_bytes());
        w.queue.extend_from_slice(&json);
        doc.insert(op);
    }

    fn new_op(&self, device: DeviceId, record: RecordId, now: DateTime<Utc>, change: Change) -> Op {
        Op {
            id: OpId::new_v7(),
            record,
            device,
            at: now,
            base: Vec::new(),
            resolution: false,
            change,
        }
    }

    /// The operations of an edit (usually one; see [`RecordDoc::plan_edit`]).
    fn edit_ops(
        &self,
        device: DeviceId,
        id: RecordId,
        doc: &RecordDoc,
        changes: Vec<FieldValue>,
        now: DateTime<Utc>,
    ) -> Vec<Op> {
        let names: Vec<FieldName> = changes.iter().map(|v| v.name()).collect();
        doc.plan_edit(&names, false)
            .into_iter()
            .map(|(fields, base)| {
                let values = changes
                    .iter()
                    .filter(|v| fields.contains(&v.name()))
                    .cloned()
                    .collect();
                let mut op = self.new_op(device, id, now, Change::Edit { values });
                op.base = base;
                op
            })
            .collect()
    }

    /// Saves a new family and returns its id.
    pub fn add(&self, fields: FamilyFields, now: DateTime<Utc>) -> Result<RecordId> {
        let id = RecordId::new_v7();
        self.upsert_many(
            vec![Upsert {
                id,
                fields,
                origin: None,
            }],
            now,
        )?;
        Ok(id)
    }

    /// Adds families, or edits those whose id is already here so they match
    /// (fields that already match are left alone; nothing is added twice).
    /// One atomic, flushed batch: when it returns, all of them are saved.
    pub fn upsert_many(&self, items: Vec<Upsert>, now: DateTime<Utc>) -> Result<UpsertOutcome> {
        let device = self.device()?.id;
        let lock = self.write_lock();
        let mut w = self.writes();
        let mut out = UpsertOutcome::default();
        let mut touched: std::collections::HashMap<RecordId, RecordDoc> = Default::default();
        // Families purged here are on the server already: an upsert of one
        // leaves it alone (one read per new family, only once anything was purged).
        let any_purged = self.db.scan_prefix(b"g/").next().is_some();
        // Every family named, read one pack at a time (an import's new ids
        // mostly fall in one pack: opened once, not once per row).
        let mut ids: Vec<RecordId> = items.iter().map(|u| u.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = self.packed_many(DOCS, &ids)?;
        let mut stored: std::collections::HashMap<RecordId, Vec<u8>> = ids
            .into_iter()
            .zip(stored)
            .filter_map(|(id, doc)| Some((id, doc?)))
            .collect();
        for Upsert { id, fields, origin } in items {
            let mut doc = match touched.remove(&id) {
                Some(d) => d,
                None => match stored.remove(&id).map(|b| decode(&b)).transpose()? {
                    Some(d) => d,
                    None if any_purged && self.db.contains_key(purged_key(id))? => {
                        out.unchanged += 1;
                        continue;
                    }
                    None => {
                        w.fresh.insert(id);
                        RecordDoc::default()
                    }
                },
            };
            let view = doc.view(id);
            match view.family {
                None => {
                    let op = self.new_op(device, id, now, Change::Create { fields, origin });
                    Self::stage_local(&mut w, &mut doc, op);
                    out.added += 1;
                    out.added_ids.push(id);
                }
                Some(current) => {
                    let changes = current.fields.changes_to(&fields);
                    if changes.is_empty() {
                        out.unchanged += 1;
                    } else {
                        for op in self.edit_ops(device, id, &doc, changes, now) {
                            Self::stage_local(&mut w, &mut doc, op);
                        }
                        out.updated += 1;
                    }
                }
            }
            Self::stage_doc(&mut w, id, &doc);
            touched.insert(id, doc);
        }
        self.commit(&lock, w)?;
        Ok(out)
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

    /// Every record the device holds, deleted ones included, in id order.
    pub fn views(&self) -> impl Iterator<Item = Result<StoredView>> + '_ {
        self.scan_packed(DOCS).filter_map(|item| {
            let doc = item.and_then(|(id, v)| Ok((id, decode::<RecordDoc>(&v)?)));
            match doc {
                Ok((id, doc)) => stored_view(id, &doc).map(Ok),
                Err(e) => Some(Err(e)),
            }
        })
    }

    /// Every family that counts (not deleted), in id order.
    pub fn families(&self) -> impl Iterator<Item = Result<Family>> + '_ {
        self.views().filter_map(|v| match v {
            Ok(v) => (v.lifecycle == Lifecycle::Active).then_some(Ok(v.family)),
            Err(e) => Some(Err(e)),
        })
    }

    /// What reports need of every family that counts: a fast scan.
    pub fn report_rows(&self) -> impl Iterator<Item = Result<ReportRow>> + '_ {
        self.scan_packed(ROWS).map(|item| {
            let (_, v) = item?;
            ReportRow::from_bytes(&v).ok_or_else(|| damaged("a report row does not read back"))
        })
    }

    /// Changes some fields of a family. Values equal to the current ones are
    /// dropped; the result must still pass validation. Returns the fields changed.
    pub fn edit(
        &self,
        id: RecordId,
        values: Vec<FieldValue>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Vec<FieldName>> {
        let device = self.device()?.id;
        let lock = self.write_lock();
        let mut doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let view = doc.view(id);
        let Some(current) = view.active() else {
            return Err(match (view.family, view.lifecycle) {
                (Some(_), Lifecycle::Merged { into }) => StoreError::Merged { id, into },
                (Some(_), _) => StoreError::Deleted(id),
                (None, _) => StoreError::NotFound(id.to_string()),
            });
        };
        let mut fields = current.fields.clone();
        for v in &values {
            fields.set(v.clone());
        }
        fields.check(today)?;
        let changes = current.fields.changes_to(&fields);
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<FieldName> = changes.iter().map(|v| v.name()).collect();
        let ops = self.edit_ops(device, id, &doc, changes, now);
        self.commit_local(&lock, id, &mut doc, ops)?;
        Ok(names)
    }

    fn commit_local(
        &self,
        lock: &WriteLock<'_>,
        id: RecordId,
        doc: &mut RecordDoc,
        ops: Vec<Op>,
    ) -> Result<()> {
        let mut w = self.writes();
        for op in ops {
            Self::stage_local(&mut w, doc, op);
        }
        Self::stage_doc(&mut w, id, doc);
        self.commit(lock, w)
    }

    /// Deletes a family, keeping a tombstone so that sync carries the deletion.
    pub fn delete(&self, id: RecordId, now: DateTime<Utc>) -> Result<()> {
        let device = self.device()?.id;
        let lock = self.write_lock();
        let mut doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let view = doc.view(id);
        if view.family.is_none() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        if view.lifecycle == Lifecycle::Deleted {
            return Err(StoreError::Deleted(id));
        }
        if let Lifecycle::Merged { into } = view.lifecycle {
            return Err(StoreError::Merged { id, into });
        }
        let mut op = self.new_op(device, id, now, Change::Delete);
        op.base = doc.base_for_lifecycle();
        self.commit_local(&lock, id, &mut doc, vec![op])
    }

    /// Every open conflict on this device.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        let mut out = Vec::new();
        for item in self.scan_values(b"c/") {
            out.extend(decode::<Vec<Conflict>>(&item?.1)?);
        }
        Ok(out)
    }

    /// Decides a conflict: the chosen value becomes an operation that covers
    /// every competing value, and syncs everywhere like any edit.
    pub fn resolve(
        &self,
        conflict_id: &str,
        value: &str,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Conflict> {
        use returnee_shared::merge::{DECIDE_DELETED, DECIDE_KEPT, RECORD_CONFLICT_FIELD};
        let lock = self.write_lock();
        let conflict = self
            .conflicts()?
            .into_iter()
            .find(|c| c.id == conflict_id.trim())
            .ok_or_else(|| StoreError::NoSuchConflict(conflict_id.to_string()))?;
        let id = conflict.record_id;
        let device = self.device()?.id;
        let mut doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let op = if conflict.field == RECORD_CONFLICT_FIELD {
            if self
                .resolve_merge_conflict(&lock, id, &doc, value, now)?
                .is_some()
            {
                return Ok(conflict);
            }
            let change = match value.trim().to_ascii_lowercase().as_str() {
                DECIDE_DELETED | "delete" => Change::Delete,
                DECIDE_KEPT | "keep" => Change::Restore,
                other => {
                    return Err(StoreError::BadValue(format!(
                        "'{other}' does not decide a delete conflict; use --value deleted or --value kept"
                    )));
                }
            };
            let mut op = self.new_op(device, id, now, change);
            op.base = doc.base_for_lifecycle();
            op
        } else {
            let field = FieldName::parse(&conflict.field)
                .ok_or_else(|| StoreError::BadValue(format!("unknown field {}", conflict.field)))?;
            let parsed = FieldValue::parse(field, value)
                .map_err(|p| returnee_shared::ValidationError { problems: vec![p] })?;
            let view = doc.view(id);
            if let Some(f) = view.family {
                let mut fields = f.fields.clone();
                fields.set(parsed.clone());
                fields.check(today)?;
            }
            let mut op = self.new_op(
                device,
                id,
                now,
                Change::Edit {
                    values: vec![parsed],
                },
            );
            op.base = doc.base_for_edit(field, true);
            op
        };
        let mut op = op;
        op.resolution = true;
        self.commit_local(&lock, id, &mut doc, vec![op])?;
        Ok(conflict)
    }

    /// How many operations wait to be pushed.
    pub fn pending_count(&self) -> Result<usize> {
        Ok(self.queue_len()? as usize)
    }

    /// The kept count of queued operations (every write to the queue keeps
    /// it; absent until the first).
    fn queue_len(&self) -> Result<u64> {
        Ok(self.meta::<u64>(META_PENDING_COUNT)?.unwrap_or(0))
    }

    /// Counts the queued operations by reading the whole queue.
    #[cfg(test)]
    fn count_queued(&self) -> Result<u64> {
        let mut n = 0;
        for entry in self.queue_entries() {
            let e = entry?;
            n += queue_items(&e.value)?.len().saturating_sub(e.done) as u64;
        }
        Ok(n)
    }

    /// The queue's entries, in order.
    fn queue_entries(&self) -> impl Iterator<Item = Result<QueueEntry>> + '_ {
        let seq = |k: &[u8]| u64::from_be_bytes(k[2..10].try_into().expect("8-byte seq"));
        self.scan_values(b"q/").map(move |item| {
            let (k, value) = item?;
            let seq = seq(&k);
            Ok(QueueEntry {
                seq,
                done: self.queue_done(seq)?,
                value,
            })
        })
    }

    /// How many leading operations of entry `seq` are acknowledged.
    fn queue_done(&self, seq: u64) -> Result<usize> {
        Ok(match self.get_value(&queue_done_key(seq))? {
            Some(v) => {
                u32::from_be_bytes(v.as_ref().try_into().map_err(|_| damaged_queue())?) as usize
            }
            None => 0,
        })
    }

    /// The record of every operation waiting in the queue, in order.
    pub(super) fn queued_records(&self) -> Result<Vec<RecordId>> {
        let mut out = Vec::new();
        for entry in self.queue_entries() {
            let e = entry?;
            out.extend(
                queue_items(&e.value)?
                    .iter()
                    .skip(e.done)
                    .map(|item| item.record),
            );
        }
        Ok(out)
    }

    /// The oldest operations waiting to be pushed (at most `limit`), with
    /// where each sits in the queue.
    pub fn pending(&self, limit: usize) -> Result<Vec<QueuedOp>> {
        let mut out = Vec::new();
        'entries: for entry in self.queue_entries() {
            let e = entry?;
            for (index, item) in queue_items(&e.value)?.into_iter().enumerate().skip(e.done) {
                if out.len() >= limit {
                    break 'entries;
                }
                out.push(QueuedOp {
                    at: QueueRef {
                        seq: e.seq,
                        index: index as u32,
                    },
                    record: item.record,
                    id: item.id,
                    json: item.json.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// The server acknowledged these queued operations: drop them from the
    /// queue, holding the ones it refused with the reason. An entry whose
    /// leading operations are acknowledged only moves its mark (`qd/`); one
    /// acknowledged out of order keeps the rest, rewritten.
    pub fn acknowledge(&self, sent: &[QueuedOp], rejected: &[RejectedOp]) -> Result<()> {
        self.acknowledge_logged(sent, rejected, None)
    }

    /// [`LocalStore::acknowledge`], also moving the cursor over `logged`,
    /// the log positions the server gave these operations and nothing else
    /// ([`LoggedSpan::advance`]: only if the cursor stands just before them),
    /// in the same atomic write.
    ///
    /// Not flushed (a push saves a disk sync per batch): an acknowledgement
    /// a crash loses leaves its operations queued, the next sync sends them
    /// again, and the server recognises every one and changes nothing; a
    /// lost cursor move only means reading those positions again. The
    /// sync's last write flushes every acknowledgement before it.
    pub fn acknowledge_logged(
        &self,
        sent: &[QueuedOp],
        rejected: &[RejectedOp],
        logged: Option<LoggedSpan>,
    ) -> Result<()> {
        let lock = self.write_lock();
        let mut w = self.writes();
        if let Some(span) = logged {
            let cursor = self.cursor()?;
            let moved = span.advance(cursor);
            if moved != cursor {
                w.put(meta_key(META_CURSOR), &moved);
            }
        }
        let mut by_entry: std::collections::BTreeMap<u64, std::collections::BTreeSet<usize>> =
            Default::default();
        for q in sent {
            by_entry
                .entry(q.at.seq)
                .or_default()
                .insert(q.at.index as usize);
        }
        let mut removed = 0u64;
        for (seq, acked) in by_entry {
            let key = queue_key(seq);
            let Some(v) = self.get_value(&key)? else {
                continue;
            };
            let done = self.queue_done(seq)?;
            let items = queue_items(&v)?;
            removed += acked
                .iter()
                .filter(|i| **i >= done && **i < items.len())
                .count() as u64;
            let is_prefix = acked
                .iter()
                .enumerate()
                .all(|(i, index)| *index == done + i);
            if is_prefix && done + acked.len() < items.len() {
                let done = (done + acked.len()) as u32;
                w.put_bytes(queue_done_key(seq), done.to_be_bytes().to_vec());
                continue;
            }
            let rest: Vec<u8> = items
                .iter()
                .enumerate()
                .filter(|(i, _)| *i >= done && !acked.contains(i))
                .flat_map(|(_, item)| item.raw.iter().copied())
                .collect();
            if rest.is_empty() {
                w.remove(key);
            } else {
                w.put_bytes(key, rest);
            }
            w.remove(queue_done_key(seq));
        }
        if removed > 0 {
            let count = self.queue_len()?.saturating_sub(removed);
            w.put(meta_key(META_PENDING_COUNT), &count);
        }
        for r in rejected {
            if let Some(q) = sent.iter().find(|q| q.id == r.op) {
                let op: Op = decode(&q.json)?;
                w.put(held_key(r.op), &(op, r));
            }
        }
        self.commit_unflushed(&lock, w)
    }

    /// Operations the server refused, with the reason.
    pub fn held(&self) -> Result<Vec<(Op, RejectedOp)>> {
        self.scan_values(b"h/")
            .map(|item| decode(&item?.1))
            .collect()
    }

    /// Applies operations pulled from the server and moves the cursor past
    /// them, in one atomic batch: a crash leaves either both or neither.
    ///
    /// `forget` lists families that left this device's sites: each is
    /// removed, unless some change to it is not on the server yet (it stays,
    /// so that nothing typed here is lost; the server refuses such changes
    /// and `status` shows them).
    pub fn apply_remote(
        &self,
        ops: Vec<Op>,
        forget: &[RecordId],
        cursor: SyncCursor,
    ) -> Result<usize> {
        let lock = self.write_lock();
        let any_purged = self.db.scan_prefix(b"g/").next().is_some();
        let mut w = self.writes();
        // The page's records, read on all cores. `None`: a family purged
        // here, whose operations are dropped.
        let mut ids: Vec<RecordId> = ops.iter().map(|op| op.record).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = self.packed_many(DOCS, &ids)?;
        let loaded: Vec<(RecordId, Option<Option<RecordDoc>>)> = ids
            .into_par_iter()
            .zip(stored)
            .with_min_len(250)
            .map(|(id, stored)| {
                Ok(if any_purged && self.db.contains_key(purged_key(id))? {
                    (id, None)
                } else {
                    (id, Some(stored.map(|b| decode(&b)).transpose()?))
                })
            })
            .collect::<Result<_>>()?;
        let mut docs: std::collections::BTreeMap<RecordId, Option<RecordDoc>> = Default::default();
        for (id, doc) in loaded {
            docs.insert(
                id,
                doc.map(|d| {
                    d.unwrap_or_else(|| {
                        w.fresh.insert(id);
                        RecordDoc::default()
                    })
                }),
            );
        }
        let mut applied = 0;
        for op in ops {
            if let Some(Some(doc)) = docs.get_mut(&op.record)
                && doc.insert(op)
            {
                applied += 1;
            }
        }
        let forgotten: std::collections::HashSet<RecordId> = if forget.is_empty() {
            Default::default()
        } else {
            let unsynced = self.unsynced_records()?;
            forget
                .iter()
                .copied()
                .filter(|id| !unsynced.contains(id))
                .collect()
        };
        // Each record's writes prepared on all cores, then batched in order.
        // Indexing pulled families for duplicates is most of a pull's work:
        // they are only marked, for the next command that looks for
        // duplicates.
        let (cipher, fresh) = (&w.cipher, &w.fresh);
        let staged: Vec<(RecordId, DocWrites)> = docs
            .par_iter()
            .filter(|(id, _)| !forgotten.contains(id))
            .filter_map(|(id, doc)| {
                let doc = doc.as_ref()?;
                let view = doc.view(*id);
                Some((
                    *id,
                    DocWrites::of(cipher, *id, doc, &view, fresh.contains(id)),
                ))
            })
            .collect();
        for (id, writes) in staged {
            w.apply(writes);
            w.pulled.push(id);
        }
        self.stage_removals(&mut w, &forgotten)?;
        self.stage_dismissed_removal(&mut w, &forgotten)?;
        duplicates::stage_pulled_marks(&mut w, cursor);
        w.put(meta_key(META_CURSOR), &cursor);
        self.commit(&lock, w)?;
        Ok(applied)
    }

    /// Forgets everything this device holds (after the server revoked it).
    pub fn wipe(&self) -> Result<()> {
        self.db.clear()?;
        self.db.flush()?;
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
pub(crate) mod tests {
    use chrono::{NaiveDate, Utc};
    use returnee_shared::wire::RejectedOp;
    use returnee_shared::{DocType, FamilyFields, FieldValue, Members, ReturnType};

    use super::record_packs::FEATURES;
    use super::*;

    /// A valid family at Torkham, told apart by `n`.
    pub(crate) fn fields(n: u32) -> FamilyFields {
        FamilyFields {
            crossing: "torkham".into(),
            crossed_on: NaiveDate::from_ymd_opt(2026, 9, 20).unwrap(),
            return_type: ReturnType::Deported,
            departure_province: "PK-KP".into(),
            destination_province: "AF-NAN".into(),
            members: Members {
                males: [n, 0, 0, 1, 0],
                females: [0, 0, 0, 1, 0],
            },
            head_name: None,
            head_sex: None,
            doc_type: DocType::None,
            doc_number: None,
            consent: false,
            vulnerabilities: Default::default(),
            documentation: Default::default(),
            protection_referral: None,
            notes: None,
        }
    }

    /// Every queued operation, as its record holds it.
    fn recorded(store: &LocalStore, queued: &[QueuedOp]) -> Vec<Vec<u8>> {
        queued
            .iter()
            .map(|q| {
                let doc = store.load_doc(q.record).unwrap().unwrap();
                encode(doc.ops.iter().find(|o| o.id == q.id).unwrap())
            })
            .collect()
    }

    #[test]
    fn writes_through_clones_on_several_threads_lose_no_operation() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        let now = Utc::now();
        let shared = store.add(fields(0), now).unwrap();
        // Each thread adds families and edits one family all share: every
        // operation must reach the queue and its record.
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let store = store.clone();
                s.spawn(move || {
                    for n in 0..25 {
                        store.add(fields(t * 100 + n + 1), now).unwrap();
                        let note = FieldValue::Notes(Some(format!("note {t} {n}")));
                        store
                            .edit(shared, vec![note], now.date_naive(), now)
                            .unwrap();
                    }
                });
            }
        });
        let queued = store.pending(usize::MAX).unwrap();
        assert_eq!(queued.len(), 1 + 4 * 50, "every operation is queued");
        let ids: std::collections::HashSet<OpId> = queued.iter().map(|q| q.id).collect();
        assert_eq!(ids.len(), queued.len(), "each once");
        assert_eq!(store.pending_count().unwrap(), queued.len());
        assert_eq!(store.count_queued().unwrap(), queued.len() as u64);
        let doc = store.load_doc(shared).unwrap().unwrap();
        assert_eq!(doc.ops.len(), 1 + 4 * 25, "every edit is in its record");
        assert_eq!(store.views().count(), 1 + 4 * 25);
    }

    #[test]
    fn the_queue_carries_each_operation_as_recorded_and_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        let now = Utc::now();
        let ids: Vec<RecordId> = (0..3).map(|n| store.add(fields(n), now).unwrap()).collect();
        store
            .edit(
                ids[0],
                vec![FieldValue::Notes(Some("edited".into()))],
                now.date_naive(),
                now,
            )
            .unwrap();
        let queued = store.pending(100).unwrap();
        assert_eq!(queued.len(), 4);
        assert_eq!(store.pending_count().unwrap(), 4);
        assert_eq!(store.count_queued().unwrap(), 4);
        let json: Vec<Vec<u8>> = queued.iter().map(|q| q.json.clone()).collect();
        assert_eq!(
            json,
            recorded(&store, &queued),
            "the queue holds each operation as recorded"
        );
        assert_eq!(
            store.queued_records().unwrap(),
            vec![ids[0], ids[1], ids[2], ids[0]]
        );

        // A partial acknowledgement; one refused.
        let refused = RejectedOp {
            op: queued[1].id,
            error: "forbidden".into(),
            message: "refused".into(),
        };
        store.acknowledge(&queued[..3], &[refused]).unwrap();
        let left = store.pending(100).unwrap();
        assert_eq!(left, queued[3..].to_vec());
        assert_eq!(store.pending_count().unwrap(), 1);
        assert_eq!(store.count_queued().unwrap(), 1);
        let held = store.held().unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0.id, queued[1].id);
        store.acknowledge(&left, &[]).unwrap();
        assert!(store.pending(100).unwrap().is_empty());
        assert_eq!(store.pending_count().unwrap(), 0);
        assert_eq!(store.count_queued().unwrap(), 0);
    }

    #[test]
    fn a_large_entry_acknowledged_in_order_moves_a_mark_and_out_of_order_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        let items = (0..10)
            .map(|n| Upsert {
                id: RecordId::new_v7(),
                fields: fields(n),
                origin: None,
            })
            .collect();
        store.upsert_many(items, Utc::now()).unwrap();
        let all = store.pending(100).unwrap();
        assert_eq!(all.len(), 10);
        let seq = all[0].at.seq;
        assert!(
            all.iter().all(|q| q.at.seq == seq),
            "one small write, one entry"
        );
        let entry = store.get_value(&queue_key(seq)).unwrap().unwrap();

        // The first three: the entry stays as written, its mark moves.
        store.acknowledge(&all[..3], &[]).unwrap();
        assert_eq!(store.get_value(&queue_key(seq)).unwrap().unwrap(), entry);
        assert_eq!(store.pending(100).unwrap(), all[3..].to_vec());
        assert_eq!(store.pending_count().unwrap(), 7);
        assert_eq!(store.count_queued().unwrap(), 7);
        assert_eq!(store.queued_records().unwrap().len(), 7);
        assert_eq!(store.pending(2).unwrap(), all[3..5].to_vec());

        // Two out of order: the rest is rewritten and numbered anew.
        store
            .acknowledge(&[all[5].clone(), all[7].clone()], &[])
            .unwrap();
        let left = store.pending(100).unwrap();
        let ids: Vec<OpId> = left.iter().map(|q| q.id).collect();
        assert_eq!(ids, [3, 4, 6, 8, 9].map(|i| all[i].id));
        assert_eq!(
            left.iter().map(|q| q.at.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(store.get_value(&queue_done_key(seq)).unwrap().is_none());
        assert_eq!(
            left.iter().map(|q| &q.json).collect::<Vec<_>>(),
            [3, 4, 6, 8, 9].map(|i| &all[i].json)
        );

        store.acknowledge(&left[..2], &[]).unwrap();
        store
            .acknowledge(&store.pending(100).unwrap(), &[])
            .unwrap();
        assert_eq!(store.pending_count().unwrap(), 0);
        assert_eq!(store.count_queued().unwrap(), 0);
        assert!(store.get_value(&queue_key(seq)).unwrap().is_none());
        assert!(store.get_value(&queue_done_key(seq)).unwrap().is_none());
    }

    #[test]
    fn a_large_write_is_queued_as_several_bounded_entries_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        let ids: Vec<RecordId> = (0..QUEUE_ENTRY_OPS * 2 + 22)
            .map(|_| RecordId::new_v7())
            .collect();
        let items = ids
            .iter()
            .map(|id| Upsert {
                id: *id,
                fields: fields(1),
                origin: None,
            })
            .collect();
        store.upsert_many(items, Utc::now()).unwrap();
        let first = store.add(fields(2), Utc::now()).unwrap();
        let all = store.pending(1000).unwrap();
        let records: Vec<RecordId> = all.iter().map(|q| q.record).collect();
        assert_eq!(records[..ids.len()], ids[..]);
        assert_eq!(records[ids.len()], first);
        let seqs: std::collections::BTreeSet<u64> = all.iter().map(|q| q.at.seq).collect();
        assert_eq!(
            seqs.len(),
            4,
            "three entries for the large write, one for the add"
        );
        let seqs: Vec<u64> = seqs.into_iter().collect();
        assert_eq!(seqs, (seqs[0]..seqs[0] + 4).collect::<Vec<_>>());
        assert!(all.iter().all(|q| (q.at.index as usize) < QUEUE_ENTRY_OPS));
    }

    /// A family as another device registered it twice (`twin`), and a third.
    fn twin() -> FamilyFields {
        let mut f = fields(1);
        f.head_name = Some("Mohammad Gul".into());
        f.head_sex = Some(returnee_shared::Sex::Male);
        f.doc_type = DocType::PorCard;
        f.doc_number = Some("PK-1234567".into());
        f.consent = true;
        f
    }

    fn pull_twins_and_another(store: &LocalStore) -> Vec<RecordId> {
        let other = DeviceId(uuid::Uuid::new_v4());
        let create = |fields: FamilyFields| Op {
            id: OpId(uuid::Uuid::new_v4()),
            record: RecordId::new_v7(),
            device: other,
            at: Utc::now(),
            base: vec![],
            resolution: false,
            change: Change::Create {
                fields,
                origin: None,
            },
        };
        let ops = vec![create(twin()), create(twin()), create(fields(2))];
        let ids: Vec<RecordId> = ops.iter().map(|o| o.record).collect();
        store.apply_remote(ops, &[], SyncCursor(3)).unwrap();
        ids
    }

    /// The next reader of the index catches up and finds the twins.
    fn assert_twins_found(store: &LocalStore, ids: &[RecordId]) {
        let found = store.duplicates().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let mut pair = found[0].records.to_vec();
        pair.sort();
        let mut want = ids[..2].to_vec();
        want.sort();
        assert_eq!(pair, want);
        assert_eq!(store.db.scan_prefix(b"bp/").count(), 0);
        assert_eq!(store.scan_packed(FEATURES).count(), 3);
    }

    #[test]
    fn pulled_families_are_indexed_for_duplicates_by_the_next_reader_of_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        let ids = pull_twins_and_another(&store);
        // Pulled: saved, counted, marked (one mark for the page, naming its
        // three families), not indexed yet.
        assert_eq!(store.report_rows().count(), 3);
        assert_eq!(store.db.scan_prefix(b"bp/").count(), 1);
        assert_eq!(
            store.pulled_not_indexed().unwrap(),
            ids.iter().copied().collect()
        );
        assert_eq!(store.scan_packed(FEATURES).count(), 0);
        assert_twins_found(&store, &ids);
        // A family added here afterwards is indexed at once and found.
        let added = store.add(twin(), Utc::now()).unwrap();
        assert_eq!(store.candidates_of(added).unwrap().len(), 2);
    }

    #[test]
    fn a_damaged_queue_entry_is_an_error_not_a_silent_skip() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        store.add(fields(1), Utc::now()).unwrap();
        let q = store.pending(1).unwrap().remove(0);
        let mut w = store.writes();
        w.put_bytes(queue_key(q.at.seq), q.json[..10].to_vec());
        store.commit(&store.write_lock(), w).unwrap();
        assert!(matches!(store.pending(10), Err(StoreError::Damaged(_))));
    }
}
