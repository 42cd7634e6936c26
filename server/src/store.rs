//! The server's store: devices, enrollment codes, the log of every operation
//! received, and each record's operations and view, in one sled tree.
//!
//! Layout (one tree, so one `sled::Batch` is atomic across kinds):
//! - `m/format`: the layout's version (`FORMAT`); a store of another one is refused;
//! - `m/seq`: the last log position handed out;
//! - `l/<seq>`: the log, in chunks of up to [`CHUNK_ENTRIES`] entries keyed
//!   by the position of their first; each entry is its length (4 bytes),
//!   then the sending device's id (16 bytes), a kind byte (`o` an
//!   operation, `r` a re-send of a whole record, `f` a record that left a
//!   site), the record's site tag (one length byte, then its crossing codes
//!   joined by `,`), then the operation's JSON or the record's id (16
//!   bytes). A push writes whole chunks of its own and never rewrites one;
//! - `p/<record id>`: the records' entries ([`RecordEntry`]), packed up to
//!   64 to a key in id order ([`record_packs`]). An entry holds the record's
//!   site tag, what reports need of it while it counts (19 bytes), whether
//!   it has open conflicts, and where each of its operations sits in the log
//!   (chunk and byte offset; each operation is stored once, in the log).
//!   Re-sends are recognised by operation id within their record. (Format 3
//!   kept one `r/<record id>` key per entry; such a store is packed when it
//!   is first opened.)
//! - `c/<record id>`: its open conflicts, present only when there are some;
//! - `dev/<device id>`: an enrolled device; `tok/<token hash>`: device by credential;
//! - `code/<code hash>`: an enrollment code and the uses it has left;
//! - `a/<seq>`: the audit trail (`returnee_shared::audit::AuditEntry` as
//!   JSON), hash-chained; `m/audit`: its last sequence number and hash,
//!   written in the same batch as the entry.
//!
//! Site scoping: every log entry carries the sites of its record, and a pull
//! hands a device only the entries of its sites ([`Device::sees`]). When a
//! record moves to a site (its crossing is edited), an `r` entry tagged with
//! the new site makes devices there receive the record's whole history, and
//! an `f` entry tagged with the site it left tells devices there to forget it.
//!
//! Secrets (credentials, codes) are stored only as SHA-256 hashes; both are
//! long random strings, so a hash cannot be reversed by guessing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use rayon::prelude::*;
use returnee_shared::audit::{
    AuditEntry, AuditEvent, AuditedOp, ChainBreak, GENESIS, verify_chain,
};
use returnee_shared::duplicates::Features;
use returnee_shared::merge::{Change, Conflict, Op, RecordDoc, RecordView};
use returnee_shared::wire::{
    DeviceSummary, LoggedSpan, PushResponse, RejectedOp, Role, SyncCursor,
};
use returnee_shared::{DeviceId, FieldName, FieldValue, RecordId, ReportBuilder, ReportRow};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod page_cache;
pub(crate) mod record_packs;

/// The layout of the store (see the module docs); bumped on any change
/// an older server could not read, or that this one could not read from an
/// older store.
const FORMAT: u32 = 4;
/// The format this one reads after packing its record entries.
const FORMAT_LOOSE_ENTRIES: u32 = 3;
const FORMAT_KEY: &[u8] = b"m/format";

/// Errors of the server's store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another returnee-server process; stop it first")]
    InUse(PathBuf),
    #[error(
        "the data directory {dir} could not be opened ({source}); keep a copy of it and restore from backup"
    )]
    Corrupt {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the data directory {dir} was written by another version of returnee-server (store format {found}, this one reads {FORMAT}); start the version that wrote it, or start this one on a new --data-dir and let the laptops sync again"
    )]
    Format { dir: PathBuf, found: u32 },
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored data could not be read: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("stored data is damaged: {0}; restore the data directory from backup")]
    Damaged(String),
    #[error("cannot create the data directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<returnee_shared::packs::DamagedPack> for StoreError {
    fn from(_: returnee_shared::packs::DamagedPack) -> Self {
        damaged("a record pack")
    }
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub name: String,
    pub role: Role,
    /// Crossing codes; empty means every site.
    pub sites: Vec<String>,
    pub enrolled_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Device {
    /// This device as the access policy (`returnee_shared::access`) sees
    /// it; borrows its sites, allocates nothing.
    pub fn principal(&self) -> returnee_shared::access::Principal<'_> {
        returnee_shared::access::Principal {
            device: self.id,
            role: self.role,
            sites: &self.sites,
        }
    }

    /// Whether this device works at every site (admins, and supervisors
    /// given no site).
    pub fn all_sites(&self) -> bool {
        self.principal().every_site()
    }

    /// Whether a record with this site tag (its sites, comma-separated) is
    /// this device's to see: the policy's `SeeSite` on the tag's bytes, as
    /// they are (no allocation: the pull asks once per log entry).
    pub fn sees(&self, tag: &[u8]) -> bool {
        self.principal().sees_any(tag.split(|b| *b == b','))
    }

    /// Whether this device works at `site`.
    pub fn works_at(&self, site: &str) -> bool {
        self.principal().works_at(site)
    }

    pub fn summary(&self) -> DeviceSummary {
        DeviceSummary {
            id: self.id,
            name: self.name.clone(),
            role: self.role,
            sites: self.sites.clone(),
            enrolled_at: self.enrolled_at,
            revoked_at: self.revoked_at,
        }
    }
}

/// One page of the log for one device.
pub struct Pulled {
    /// The operations' JSON, as logged.
    pub ops: Vec<sled::IVec>,
    /// Records that left the device's sites.
    pub forget: Vec<RecordId>,
    pub cursor: SyncCursor,
    pub more: bool,
}

/// A record's site tag: its crossings, sorted, joined by `,`.
fn site_tag(sites: &BTreeSet<String>) -> Vec<u8> {
    let tag = sites.iter().cloned().collect::<Vec<_>>().join(",");
    tag.into_bytes()
}

const KIND_OP: u8 = b'o';
const KIND_RESEND: u8 = b'r';
const KIND_FORGET: u8 = b'f';

/// A log entry: device, kind, site tag, payload (written straight into
/// its chunk, see [`LogWriter::append`]).
#[derive(Clone, Copy)]
struct LogEntry<'a> {
    device: DeviceId,
    kind: u8,
    tag: &'a [u8],
    payload: &'a [u8],
}

fn log_entry<'a>(device: DeviceId, kind: u8, tag: &'a [u8], payload: &'a [u8]) -> LogEntry<'a> {
    LogEntry {
        device,
        kind,
        tag: &tag[..tag.len().min(255)],
        payload,
    }
}

impl LogEntry<'_> {
    fn len(&self) -> usize {
        18 + self.tag.len() + self.payload.len()
    }

    fn write_into(&self, v: &mut Vec<u8>) {
        v.extend_from_slice(self.device.0.as_bytes());
        v.push(self.kind);
        v.push(self.tag.len() as u8);
        v.extend_from_slice(self.tag);
        v.extend_from_slice(self.payload);
    }
}

/// Entries per log chunk: few enough that reading one operation back (a
/// record's history, on a later push) reads a small value, many enough that
/// a large push writes one key per chunk rather than per operation. Chunks
/// of 16 wrote a push's log a little faster, but serving a full pull of a
/// million families then took 470 MB more on the server (sled keeps whole
/// pages of chunks in memory) instead of 270. Chunks of any size read back,
/// so the figure can change.
const CHUNK_ENTRIES: usize = 4;
/// ... and bytes per chunk (give or take one entry): sled writes a page of
/// more than 128 KB to a file of its own at every rewrite, and a page holds
/// up to 16 keys (see `returnee_shared::packs::PACK_BYTES`).
const CHUNK_BYTES: usize = returnee_shared::packs::PACK_BYTES;

/// Where an entry sits in the log: the first position of its chunk and its
/// byte offset in the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogPos {
    chunk: u64,
    offset: u32,
}

/// Lays the entries of one push out in new chunks, staged into a batch.
struct LogWriter {
    /// The position the next entry gets.
    next: u64,
    first: u64,
    count: usize,
    chunk: Vec<u8>,
}

impl LogWriter {
    fn after(last: u64) -> Self {
        LogWriter {
            next: last + 1,
            first: last + 1,
            count: 0,
            chunk: Vec::new(),
        }
    }

    fn append(&mut self, batch: &mut sled::Batch, entry: LogEntry<'_>) -> LogPos {
        if self.count == CHUNK_ENTRIES
            || (self.count > 0 && self.chunk.len() + 4 + entry.len() > CHUNK_BYTES)
        {
            self.finish(batch);
        }
        if self.count == 0 {
            self.first = self.next;
        }
        let pos = LogPos {
            chunk: self.first,
            offset: self.chunk.len() as u32,
        };
        self.chunk
            .extend_from_slice(&(entry.len() as u32).to_be_bytes());
        entry.write_into(&mut self.chunk);
        self.count += 1;
        self.next += 1;
        pos
    }

    /// Stages the chunk being filled, if any.
    fn finish(&mut self, batch: &mut sled::Batch) {
        if self.count > 0 {
            batch.insert(log_key(self.first), std::mem::take(&mut self.chunk));
            self.count = 0;
        }
    }

    /// The last position handed out.
    fn last(&self) -> u64 {
        self.next - 1
    }
}

/// The entries of a log chunk, in order: (byte offset, entry).
fn chunk_entries(chunk: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(chunk.get(at..at + 4)?.try_into().ok()?) as usize;
        let entry = chunk.get(at + 4..at + 4 + len)?;
        let offset = at;
        at += 4 + len;
        Some((offset, entry))
    })
}

/// The entry at `offset` of a chunk.
fn entry_at(chunk: &[u8], offset: u32) -> Option<(usize, &[u8])> {
    chunk_entries(chunk.get(offset as usize..)?)
        .next()
        .map(|(_, e)| (offset as usize + 4, e))
}

/// A record's entry (`r/<record id>`): its site tag (one length byte, then
/// the tag), its report row (a flag byte, then 19 bytes when set), whether
/// it has open conflicts (one byte), then the log position of each of its
/// operations (8 + 4 bytes each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RecordEntry {
    tag: Vec<u8>,
    row: Option<[u8; 19]>,
    has_conflicts: bool,
    ops: Vec<LogPos>,
}

impl RecordEntry {
    fn to_bytes(&self) -> Vec<u8> {
        let tag = &self.tag[..self.tag.len().min(255)];
        let mut v = Vec::with_capacity(2 + tag.len() + 20 + 12 * self.ops.len());
        v.push(tag.len() as u8);
        v.extend_from_slice(tag);
        match &self.row {
            Some(row) => {
                v.push(1);
                v.extend_from_slice(row);
            }
            None => v.push(0),
        }
        v.push(self.has_conflicts as u8);
        for p in &self.ops {
            v.extend_from_slice(&p.chunk.to_be_bytes());
            v.extend_from_slice(&p.offset.to_be_bytes());
        }
        v
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let tag_len = *b.first()? as usize;
        let tag = b.get(1..1 + tag_len)?.to_vec();
        let mut at = 1 + tag_len;
        let row = match *b.get(at)? {
            0 => {
                at += 1;
                None
            }
            _ => {
                let row: [u8; 19] = b.get(at + 1..at + 20)?.try_into().ok()?;
                at += 20;
                Some(row)
            }
        };
        let has_conflicts = *b.get(at)? != 0;
        at += 1;
        let rest = b.get(at..)?;
        if rest.len() % 12 != 0 {
            return None;
        }
        let ops = rest
            .chunks_exact(12)
            .map(|p| LogPos {
                chunk: u64::from_be_bytes(p[..8].try_into().expect("8 bytes")),
                offset: u32::from_be_bytes(p[8..].try_into().expect("4 bytes")),
            })
            .collect();
        Some(RecordEntry {
            tag,
            row,
            has_conflicts,
            ops,
        })
    }

    /// The report row stored in an encoded entry, read without decoding the rest.
    fn row_of(b: &[u8]) -> Option<&[u8]> {
        let tag_len = *b.first()? as usize;
        match *b.get(1 + tag_len)? {
            0 => None,
            _ => b.get(2 + tag_len..21 + tag_len),
        }
    }
}

fn damaged(what: &str) -> StoreError {
    StoreError::Damaged(what.to_string())
}

/// The parts of a log entry: device bytes, kind, tag, payload offset.
fn parse_log_entry(v: &[u8]) -> Option<(&[u8], u8, &[u8], usize)> {
    if v.len() < 18 {
        return None;
    }
    let tag_len = v[17] as usize;
    let payload = 18 + tag_len;
    (v.len() >= payload).then(|| (&v[..16], v[16], &v[18..payload], payload))
}

/// An enrollment code, stored under the hash of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCode {
    pub role: Role,
    pub sites: Vec<String>,
    pub uses_left: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<DeviceId>,
}

/// Why enrollment failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollRefusal {
    UnknownCode,
    AlreadyEnrolled,
}

fn key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}
fn log_key(seq: u64) -> Vec<u8> {
    key(b"l/", &seq.to_be_bytes())
}
fn audit_key(seq: u64) -> Vec<u8> {
    key(b"a/", &seq.to_be_bytes())
}
fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("values serialize")
}
fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(b)?)
}

/// SHA-256 of a secret, hex-encoded.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Random bytes from the operating system.
fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

/// A human-typeable enrollment code: 16 characters from an alphabet without
/// look-alikes, in groups of four (80 bits).
pub fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let bytes = random::<16>();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Codes are typed by people: case and dashes do not matter.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether sled failed to open because another handle holds the store's lock
/// (sled 0.34 reports it as kind `Other`, "could not acquire lock …", not
/// `WouldBlock`). The laptop store has the same check.
fn is_lock_conflict(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || e.to_string().starts_with("could not acquire lock")
}

/// The server's store. Cheap to clone; one per process.
#[derive(Clone)]
pub struct ServerStore {
    db: sled::Db,
    /// Serialises pushes: each is a read-modify-write of records and the log.
    writer: Arc<Mutex<()>>,
    /// The last log position known to be on disk. Pulls hand out nothing
    /// after it: an entry applied but not yet flushed could be lost by a
    /// crash and its position handed out again, and a device whose cursor
    /// had passed it would never receive what then took its place.
    durable: Arc<AtomicU64>,
}

impl ServerStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let deadline = Instant::now() + Duration::from_millis(1500);
        let db = loop {
            match sled::Config::new()
                .path(dir)
                // What sled counts is the pages' size on disk; in memory the
                // duplicate index's small keys and values take two to three
                // times that, and a shard is weighed only every 64 accesses
                // (`page_cache`). At 8 MB a million-family push peaked 40–70
                // MB lower than at 48 MB, the 100,000 benchmark unchanged
                // but the duplicate check (0.89 → 0.98 s).
                .cache_capacity(8 * 1024 * 1024)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if is_lock_conflict(&e) => {
                    if Instant::now() >= deadline {
                        return Err(StoreError::InUse(dir.to_path_buf()));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_))) => {
                    return Err(StoreError::Corrupt {
                        dir: dir.to_path_buf(),
                        source: e,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };
        // A store written before log entries carried their sites would be
        // misread: refuse it rather than serve garbage.
        match db.get(FORMAT_KEY)? {
            Some(v) if v.as_ref() == FORMAT.to_be_bytes() => {}
            Some(v) if v.as_ref() == FORMAT_LOOSE_ENTRIES.to_be_bytes() => {
                let moved = record_packs::pack_loose_entries(&db, b"r/")?;
                db.insert(FORMAT_KEY, FORMAT.to_be_bytes().to_vec())?;
                db.flush()?;
                tracing::info!(
                    records = moved,
                    "record entries packed (store format 3 to 4)"
                );
            }
            Some(v) => {
                return Err(StoreError::Format {
                    dir: dir.to_path_buf(),
                    found: v
                        .get(..4)
                        .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes"))),
                });
            }
            None if db.get(b"m/seq")?.is_some() || db.scan_prefix(b"dev/").next().is_some() => {
                return Err(StoreError::Format {
                    dir: dir.to_path_buf(),
                    found: 1,
                });
            }
            None => {
                let mut batch = sled::Batch::default();
                batch.insert(record_packs::first_pack_key(), Vec::new());
                batch.insert(FORMAT_KEY, FORMAT.to_be_bytes().to_vec());
                db.apply_batch(batch)?;
                db.flush()?;
            }
        }
        let durable = Arc::new(AtomicU64::new(
            db.get(b"m/seq")?
                .map(|b| u64::from_be_bytes(b.as_ref().try_into().expect("8-byte seq")))
                .unwrap_or(0),
        ));
        Ok(ServerStore {
            db,
            writer: Arc::new(Mutex::new(())),
            durable,
        })
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Whether no device was ever enrolled and no code minted.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.db.scan_prefix(b"dev/").next().is_none()
            && self.db.scan_prefix(b"code/").next().is_none())
    }

    /// Mints an enrollment code and returns its text (shown once).
    pub fn mint_code(
        &self,
        role: Role,
        sites: Vec<String>,
        uses: u32,
        by: Option<DeviceId>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let _guard = self.writer.lock().expect("writer lock");
        let code = new_code();
        let entry = EnrollmentCode {
            role,
            sites: sites.clone(),
            uses_left: uses,
            created_at: now,
            created_by: by,
        };
        let mut b = sled::Batch::default();
        b.insert(
            key(b"code/", hash_secret(&normalize_code(&code)).as_bytes()),
            encode(&entry),
        );
        self.stage_audit(
            &mut b,
            now,
            by,
            AuditEvent::CodeMinted { role, sites, uses },
        )?;
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(code)
    }

    /// Exchanges a code for a credential: registers the device and returns
    /// the device and its token (shown once; only its hash is kept).
    pub fn enroll(
        &self,
        code: &str,
        device_id: DeviceId,
        device_name: &str,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(Device, String), EnrollRefusal>> {
        let _guard = self.writer.lock().expect("writer lock");
        let code_key = key(b"code/", hash_secret(&normalize_code(code)).as_bytes());
        let Some(mut entry) = self
            .db
            .get(&code_key)?
            .map(|b| decode::<EnrollmentCode>(&b))
            .transpose()?
        else {
            return Ok(Err(EnrollRefusal::UnknownCode));
        };
        if entry.uses_left == 0 {
            return Ok(Err(EnrollRefusal::UnknownCode));
        }
        if self.db.contains_key(key(b"dev/", device_id.0.as_bytes()))? {
            return Ok(Err(EnrollRefusal::AlreadyEnrolled));
        }
        let token = format!("rt_{}", hex::encode(random::<32>()));
        let device = Device {
            id: device_id,
            name: device_name.chars().take(100).collect(),
            role: entry.role,
            sites: entry.sites.clone(),
            enrolled_at: now,
            revoked_at: None,
        };
        entry.uses_left -= 1;
        let mut b = sled::Batch::default();
        if entry.uses_left == 0 {
            b.remove(code_key);
        } else {
            b.insert(code_key, encode(&entry));
        }
        b.insert(key(b"dev/", device_id.0.as_bytes()), encode(&device));
        b.insert(
            key(b"tok/", hash_secret(&token).as_bytes()),
            device_id.0.as_bytes().to_vec(),
        );
        self.stage_audit(
            &mut b,
            now,
            Some(device_id),
            AuditEvent::Enrolled {
                device: device_id,
                role: device.role,
                sites: device.sites.clone(),
            },
        )?;
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(Ok((device, token)))
    }

    /// The device a credential belongs to.
    pub fn device_by_token(&self, token: &str) -> Result<Option<Device>> {
        let Some(id) = self.db.get(key(b"tok/", hash_secret(token).as_bytes()))? else {
            return Ok(None);
        };
        self.db
            .get(key(b"dev/", &id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Every enrolled device.
    pub fn devices(&self) -> Result<Vec<Device>> {
        self.db
            .scan_prefix(b"dev/")
            .map(|i| decode(&i?.1))
            .collect()
    }

    /// Revokes a device: from now on its credential is refused, and the
    /// device is told to erase its copy. Returns the device as it now is, or
    /// `None` if there is no such device. Revoking twice changes nothing.
    pub fn revoke(&self, id: DeviceId, by: DeviceId, now: DateTime<Utc>) -> Result<Option<Device>> {
        let _guard = self.writer.lock().expect("writer lock");
        let k = key(b"dev/", id.0.as_bytes());
        let Some(mut device) = self.db.get(&k)?.map(|b| decode::<Device>(&b)).transpose()? else {
            return Ok(None);
        };
        if device.revoked_at.is_some() {
            return Ok(Some(device));
        }
        device.revoked_at = Some(now);
        let mut b = sled::Batch::default();
        b.insert(k, encode(&device));
        self.stage_audit(&mut b, now, Some(by), AuditEvent::Revoked { device: id })?;
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(Some(device))
    }

    /// The audit trail's last sequence number and hash.
    fn audit_head(&self) -> Result<(u64, String)> {
        Ok(match self.db.get(b"m/audit")? {
            Some(v) if v.len() > 8 => (
                u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
                String::from_utf8_lossy(&v[8..]).into_owned(),
            ),
            _ => (0, GENESIS.to_string()),
        })
    }

    /// Adds the next audit entry to `batch` (the caller holds the writer
    /// lock, so entries are numbered without gaps).
    fn stage_audit(
        &self,
        batch: &mut sled::Batch,
        at: DateTime<Utc>,
        device: Option<DeviceId>,
        event: AuditEvent,
    ) -> Result<()> {
        let (seq, prev) = self.audit_head()?;
        let entry = AuditEntry::new(seq + 1, at, device, event, &prev);
        batch.insert(audit_key(entry.seq), encode(&entry));
        let mut head = entry.seq.to_be_bytes().to_vec();
        head.extend_from_slice(entry.hash.as_bytes());
        batch.insert(b"m/audit".to_vec(), head);
        Ok(())
    }

    /// The newest audit entry's sequence number (0 for none).
    pub fn audit_newest(&self) -> Result<u64> {
        Ok(self.audit_head()?.0)
    }

    /// Audit entries after `after`, at most `limit`, and whether more follow.
    pub fn audit(&self, after: u64, limit: usize) -> Result<(Vec<AuditEntry>, bool)> {
        let mut out = Vec::new();
        let scan = self
            .db
            .range(audit_key(after.saturating_add(1))..audit_key(u64::MAX));
        for item in page_cache::weighed(&self.db, scan) {
            if out.len() >= limit {
                return Ok((out, true));
            }
            out.push(decode(&item?.1)?);
        }
        Ok((out, false))
    }

    /// Checks the whole audit trail: every link, and that it ends where the
    /// store's head says. Returns the number of entries.
    pub fn verify_audit(&self) -> Result<std::result::Result<u64, ChainBreak>> {
        let mut entries = Vec::new();
        let mut broken = None;
        for item in page_cache::weighed(&self.db, self.db.scan_prefix(b"a/")) {
            let (k, v) = item?;
            match serde_json::from_slice::<AuditEntry>(&v) {
                Ok(e) => entries.push(e),
                Err(_) => {
                    broken = Some(ChainBreak {
                        seq: u64::from_be_bytes(k[2..10].try_into().expect("8 bytes")),
                        reason: "it is not a readable entry (it was altered)".into(),
                    });
                    break;
                }
            }
        }
        let checked = verify_chain(entries, 0, GENESIS);
        if let Some(b) = broken {
            // An unreadable entry: report it unless the chain broke before it.
            return Ok(Err(match checked {
                Err(e) if e.seq < b.seq => e,
                _ => b,
            }));
        }
        let (last, hash) = match checked {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let (head_seq, head_hash) = self.audit_head()?;
        if (last, hash.as_str()) != (head_seq, head_hash.as_str()) {
            return Ok(Err(ChainBreak {
                seq: last + 1,
                reason: format!(
                    "the trail ends at entry {last} but the store recorded {head_seq} entries (entries were removed)"
                ),
            }));
        }
        Ok(Ok(last))
    }

    fn last_seq(&self) -> Result<u64> {
        Ok(self
            .db
            .get(b"m/seq")?
            .map(|b| u64::from_be_bytes(b.as_ref().try_into().expect("8-byte seq")))
            .unwrap_or(0))
    }

    /// Applies a batch of operations from `device`: new ones are logged and
    /// merged, re-sent ones are recognised and skipped, invalid or forbidden
    /// ones are refused with a reason. Durable when this returns, together
    /// with its audit entry.
    pub fn push(&self, device: &Device, ops: Vec<Op>, now: DateTime<Utc>) -> Result<PushResponse> {
        self.push_then(device, ops, now, |_| {})
    }

    /// [`ServerStore::push`], then `committed` with what the push changed of
    /// each record, called before the next push can commit (so that calls
    /// come in commit order).
    pub fn push_then(
        &self,
        device: &Device,
        ops: Vec<Op>,
        now: DateTime<Utc>,
        committed: impl FnOnce(Vec<ChangedRecord>),
    ) -> Result<PushResponse> {
        let today = now.date_naive();
        // Encoded before taking the writer, so that other pushes' encoding
        // runs beside this push's commit (and a large batch on all cores).
        let encoded: Vec<Vec<u8>> = ops.par_iter().with_min_len(500).map(encode).collect();
        let guard = self.writer.lock().expect("writer lock");
        let mut out = PushResponse::default();
        // Every record the batch touches, read on all cores (each worker
        // shares the log chunks it reads between its records).
        let mut ids: Vec<RecordId> = ops.iter().map(|op| op.record).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = record_packs::get_many(&self.db, &ids)?;
        let mut records: BTreeMap<RecordId, LoadedRecord> = ids
            .into_par_iter()
            .zip(stored)
            .with_min_len(250)
            .map_init(ChunkCache::default, |chunks, (id, entry)| {
                Ok((id, self.loaded(entry.as_deref(), chunks)?))
            })
            .collect::<Result<_>>()?;
        // New operations in arrival order, logged once their record's final
        // site tag is known.
        let mut fresh: Vec<(RecordId, Vec<u8>)> = Vec::new();
        let mut audited = Vec::new();
        let mut batch = sled::Batch::default();
        for (op, json) in ops.into_iter().zip(encoded) {
            let record = records.get_mut(&op.record).expect("loaded above");
            if record.doc.contains(op.id) {
                out.duplicates += 1;
                continue;
            }
            if let Err((error, message)) = admit(device, &op, &record.doc, today) {
                out.rejected.push(RejectedOp {
                    op: op.id,
                    error,
                    message,
                });
                continue;
            }
            audited.push(AuditedOp::of(&op));
            fresh.push((op.record, json));
            record.doc.insert(op);
            record.changed = true;
            out.applied += 1;
        }
        let logged_after = self.last_seq()?;
        let mut log = LogWriter::after(logged_after);
        // Each changed record's site tag, and the entries that tell devices
        // it moved, on all cores; logged in record order.
        let retagged: Vec<(RecordId, Vec<u8>, Vec<Move>)> = records
            .par_iter()
            .filter(|(_, record)| record.changed)
            .map(|(id, record)| {
                let (tag, moves) = retag(record);
                (*id, tag, moves)
            })
            .collect();
        let mut tags: BTreeMap<RecordId, Vec<u8>> = BTreeMap::new();
        let mut moved = false;
        for (id, tag, moves) in retagged {
            for (kind, sites) in moves {
                moved = true;
                log.append(
                    &mut batch,
                    log_entry(device.id, kind, &sites, id.0.as_bytes()),
                );
            }
            tags.insert(id, tag);
        }
        for (id, json) in fresh {
            let pos = log.append(&mut batch, log_entry(device.id, KIND_OP, &tags[&id], &json));
            records.get_mut(&id).expect("loaded").stored.ops.push(pos);
        }
        log.finish(&mut batch);
        // Each changed record's view, entry and conflicts on all cores; then
        // into the batch, and to `committed`, in record order.
        let mut staged: Vec<(RecordId, &mut LoadedRecord, Vec<u8>)> =
            Vec::with_capacity(tags.len());
        for (id, record) in &mut records {
            if record.changed {
                let tag = tags.remove(id).expect("tagged");
                staged.push((*id, record, tag));
            }
        }
        let writes: Vec<RecordWrites> = staged
            .into_par_iter()
            .with_min_len(250)
            .map(|(id, record, tag)| record_writes(id, record, tag))
            .collect();
        let mut changed = Vec::with_capacity(writes.len());
        let mut entries = Vec::with_capacity(writes.len());
        for w in writes {
            entries.push((w.changed.id, Some(w.entry)));
            for (k, v) in w.writes {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
            changed.push(w.changed);
        }
        record_packs::stage(&self.db, &mut batch, &entries)?;
        batch.insert(b"m/seq".to_vec(), log.last().to_be_bytes().to_vec());
        if !audited.is_empty() || !out.rejected.is_empty() {
            self.stage_audit(
                &mut batch,
                now,
                Some(device.id),
                AuditEvent::Push {
                    applied: audited,
                    rejected: out.rejected.len() as u32,
                },
            )?;
        }
        self.db.apply_batch(batch)?;
        // In commit order, still under the lock. The duplicate index is
        // derived data, rebuilt after a crash, so it may run ahead of the
        // flush.
        committed(changed);
        let last = log.last();
        if !moved && last > logged_after {
            out.logged = Some(LoggedSpan {
                first: SyncCursor(logged_after + 1),
                last: SyncCursor(last),
            });
        }
        drop(guard);
        // Flushed outside the lock: pushes that committed meanwhile share
        // one flush (sled's flush makes everything applied before it
        // durable). A push whose operations were all there already flushes
        // too, since the push that applied them may not have yet.
        self.db.flush()?;
        self.durable.fetch_max(last, Ordering::AcqRel);
        Ok(out)
    }

    /// The log after `after` that `device` may see, leaving out its own
    /// operations, at most `limit` entries: the operations' JSON, the
    /// records that left its sites, the next cursor and whether more remain.
    pub fn pull(&self, device: &Device, after: SyncCursor, limit: usize) -> Result<Pulled> {
        let mut ops = Vec::new();
        let mut forget = Vec::new();
        let mut cursor = after;
        let mut more = false;
        let own = device.id.0.as_bytes();
        let all_sites = device.all_sites();
        let start = after.0.saturating_add(1);
        // The chunk holding `start` may begin before it.
        let from = match self.db.range(log_key(0)..=log_key(start)).next_back() {
            Some(item) => seq_of_log_key(&item?.0),
            None => start,
        };
        let mut chunks = ChunkCache::default();
        let durable = self.durable.load(Ordering::Acquire);
        let scan = self.db.range(log_key(from)..log_key(u64::MAX));
        'chunks: for item in page_cache::weighed(&self.db, scan) {
            let (k, chunk) = item?;
            let first = seq_of_log_key(&k);
            for (i, (offset, entry)) in chunk_entries(&chunk).enumerate() {
                let seq = first + i as u64;
                if seq < start {
                    continue;
                }
                if seq > durable {
                    break 'chunks;
                }
                if ops.len() >= limit {
                    more = true;
                    break 'chunks;
                }
                cursor = SyncCursor(seq);
                let Some((from, kind, tag, at)) = parse_log_entry(entry) else {
                    continue;
                };
                match kind {
                    KIND_OP if from != own && device.sees(tag) => {
                        ops.push(chunk.subslice(offset + 4 + at, entry.len() - at));
                    }
                    // A device that sees every site already has the history.
                    KIND_RESEND if !all_sites && device.sees(tag) && entry.len() >= at + 16 => {
                        let record = RecordId(
                            uuid::Uuid::from_slice(&entry[at..at + 16]).expect("16 bytes"),
                        );
                        if let Some(stored) = self.record_entry(record)? {
                            for pos in stored.ops {
                                if let Some(op) = chunks.op_json(&self.db, pos)? {
                                    ops.push(op);
                                }
                            }
                        }
                    }
                    // Moved out of some of this device's sites, and not into
                    // another of them (as it stands now).
                    KIND_FORGET if !all_sites && device.sees(tag) && entry.len() >= at + 16 => {
                        let record = RecordId(
                            uuid::Uuid::from_slice(&entry[at..at + 16]).expect("16 bytes"),
                        );
                        if !device.sees(&self.tag_of(record)?) {
                            forget.push(record);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Pulled {
            ops,
            forget,
            cursor,
            more,
        })
    }

    /// A record's entry, if the server holds the record.
    fn record_entry(&self, id: RecordId) -> Result<Option<RecordEntry>> {
        record_packs::get(&self.db, id)?
            .map(|v| RecordEntry::from_bytes(&v).ok_or_else(|| damaged("a record entry")))
            .transpose()
    }

    /// The site tag of a record (empty if unknown).
    fn tag_of(&self, id: RecordId) -> Result<Vec<u8>> {
        Ok(self.record_entry(id)?.map(|r| r.tag).unwrap_or_default())
    }

    /// Whether `device` may see record `id`.
    pub fn visible_to(&self, device: &Device, id: RecordId) -> Result<bool> {
        Ok(device.all_sites() || device.sees(&self.tag_of(id)?))
    }

    /// Every open conflict `device` may see.
    pub fn conflicts(&self, device: &Device) -> Result<Vec<Conflict>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(b"c/") {
            let (k, v) = item?;
            if self.visible_to(device, record_id_of(&k))? {
                out.extend(decode::<Vec<Conflict>>(&v)?);
            }
        }
        Ok(out)
    }

    /// A report over every active family of `device`'s sites (a scan of
    /// the compact report rows).
    pub fn report(
        &self,
        device: &Device,
        mut builder: ReportBuilder,
    ) -> Result<returnee_shared::Report> {
        for item in record_packs::scan(&self.db) {
            let (_, v) = item?;
            if let Some(row) = RecordEntry::row_of(&v).and_then(ReportRow::from_bytes)
                && device.works_at(row.crossing)
            {
                builder.add_row(&row);
            }
        }
        Ok(builder.finish())
    }
}

fn record_id_of(key: &[u8]) -> RecordId {
    RecordId(uuid::Uuid::from_slice(&key[2..18]).expect("16-byte record key"))
}

/// A record as the push path holds it: its operations, its entry as stored
/// (updated with the positions of its new operations), and whether it
/// existed before this push.
struct LoadedRecord {
    doc: RecordDoc,
    stored: RecordEntry,
    existed: bool,
    changed: bool,
}

/// A log entry a record's move calls for: its kind and site tag.
type Move = (u8, Vec<u8>);

/// A changed record's site tag, and the log entries its move calls for
/// (kind and site tag): devices at a site it arrived at have none of its
/// history yet (`KIND_RESEND`); devices of a site it left should no longer
/// hold it (`KIND_FORGET`).
fn retag(record: &LoadedRecord) -> (Vec<u8>, Vec<Move>) {
    let sites = record.doc.sites();
    let tag = site_tag(&sites);
    let mut moves = Vec::new();
    if record.existed && tag != record.stored.tag {
        let before: BTreeSet<&str> = std::str::from_utf8(&record.stored.tag)
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .collect();
        let arrived: BTreeSet<String> = sites
            .iter()
            .filter(|s| !before.contains(s.as_str()))
            .cloned()
            .collect();
        if !arrived.is_empty() {
            moves.push((KIND_RESEND, site_tag(&arrived)));
        }
        let departed: BTreeSet<String> = before
            .iter()
            .filter(|s| !sites.contains(**s))
            .map(|s| s.to_string())
            .collect();
        if !departed.is_empty() {
            moves.push((KIND_FORGET, site_tag(&departed)));
        }
    }
    (tag, moves)
}

/// What a push changed of a record, as the duplicate index needs it: its
/// features while it counts, and the records it was dismissed against.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedRecord {
    pub id: RecordId,
    pub features: Option<Features>,
    pub dismissed: BTreeSet<RecordId>,
}

impl ChangedRecord {
    pub fn of(id: RecordId, doc: &RecordDoc) -> Self {
        Self::of_view(id, doc, &doc.view(id))
    }

    fn of_view(id: RecordId, doc: &RecordDoc, view: &RecordView) -> Self {
        ChangedRecord {
            id,
            features: view.active().map(|f| Features::of(&f.fields)),
            dismissed: doc.dismissed(),
        }
    }
}

/// What a push writes of one changed record: its entry (for its pack), its
/// other keys (`None`: a removal), and what it hands the duplicate index.
struct RecordWrites {
    entry: Vec<u8>,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    changed: ChangedRecord,
}

/// A changed record's entry (its new site tag, report row, conflict flag
/// and log positions) and open conflicts, from its recomputed view.
fn record_writes(id: RecordId, record: &mut LoadedRecord, tag: Vec<u8>) -> RecordWrites {
    let view = record.doc.view(id);
    let had_conflicts = record.stored.has_conflicts;
    record.stored.tag = tag;
    record.stored.row = view
        .active()
        .and_then(|f| ReportRow::of(&f.fields))
        .map(|r| r.to_bytes());
    record.stored.has_conflicts = !view.conflicts.is_empty();
    let mut writes = Vec::new();
    if !view.conflicts.is_empty() {
        writes.push((key(b"c/", id.0.as_bytes()), Some(encode(&view.conflicts))));
    } else if had_conflicts {
        writes.push((key(b"c/", id.0.as_bytes()), None));
    }
    RecordWrites {
        entry: record.stored.to_bytes(),
        writes,
        changed: ChangedRecord::of_view(id, &record.doc, &view),
    }
}

fn seq_of_log_key(k: &[u8]) -> u64 {
    u64::from_be_bytes(k[2..10].try_into().expect("8-byte log position"))
}

/// Log chunks read while loading records: a record's operations often sit
/// in the same chunk, and one push touches many records of few chunks.
#[derive(Default)]
struct ChunkCache {
    chunks: std::collections::HashMap<u64, sled::IVec>,
}

impl ChunkCache {
    /// The JSON of the operation logged at `pos` (`None` if it is not an operation).
    fn op_json(&mut self, db: &sled::Db, pos: LogPos) -> Result<Option<sled::IVec>> {
        // Bounded: a push or a rebuild may touch many chunks.
        if self.chunks.len() >= 1024 && !self.chunks.contains_key(&pos.chunk) {
            self.chunks.clear();
        }
        let chunk = match self.chunks.entry(pos.chunk) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => match db.get(log_key(pos.chunk))? {
                Some(chunk) => e.insert(chunk),
                None => return Err(damaged("a record names a log chunk that is missing")),
            },
        };
        let (start, entry) = entry_at(chunk, pos.offset).ok_or_else(|| damaged("a log chunk"))?;
        Ok(match parse_log_entry(entry) {
            Some((_, KIND_OP, _, at)) => Some(chunk.subslice(start + at, entry.len() - at)),
            _ => None,
        })
    }
}

/// Whether `device` may apply `op` to `doc`; the error code and message if not.
fn admit(
    device: &Device,
    op: &Op,
    doc: &RecordDoc,
    today: NaiveDate,
) -> std::result::Result<(), (returnee_shared::wire::ErrorCode, String)> {
    use returnee_shared::access::{Action, authorize};
    use returnee_shared::wire::ErrorCode;
    let me = device.principal();
    let check = |action: &Action| {
        authorize(&me, action).map_err(|denial| (ErrorCode::Forbidden, denial.message))
    };
    check(&Action::SendOpsOf(op.device))?;
    // The record's sites come from its operations: worked out only for a
    // device that does not work at every site.
    if !me.every_site() {
        let crossing = match op.value(FieldName::Crossing) {
            Some(FieldValue::Crossing(c)) => Some(c),
            _ => None,
        };
        check(&Action::WriteFamilyAt {
            recorded_at: &doc.sites(),
            crossing: crossing.as_deref(),
        })?;
    }
    crate::duplicates::admit_decision(device, op)?;
    if op.resolution {
        check(&Action::ResolveConflict)?;
    }
    if matches!(op.change, Change::Restore) && !op.resolution {
        return Err((
            ErrorCode::BadRequest,
            "keeping a deleted family is a conflict resolution".into(),
        ));
    }
    // Devices' dates run up to a day ahead of the server's across time zones.
    let tomorrow = today.succ_opt().unwrap_or(today);
    match &op.change {
        Change::Create { fields, .. } => {
            fields
                .check(tomorrow)
                .map_err(|e| (ErrorCode::Invalid, e.one_line()))?;
        }
        Change::Edit { values } | Change::MergedValues { values, .. } => {
            let view = doc.view(op.record);
            if let Some(family) = view.family {
                let mut fields = family.fields.clone();
                let touched: Vec<FieldName> = values.iter().map(|v| v.name()).collect();
                for v in values {
                    fields.set(v.clone());
                }
                if let Err(e) = fields.check(tomorrow) {
                    let own: Vec<_> = e
                        .problems
                        .into_iter()
                        .filter(|p| touched.iter().any(|f| f.as_str() == p.field))
                        .collect();
                    if !own.is_empty() {
                        return Err((
                            ErrorCode::Invalid,
                            returnee_shared::ValidationError { problems: own }.one_line(),
                        ));
                    }
                }
            }
        }
        Change::Delete | Change::Restore | Change::Merge { .. } | Change::Dismiss { .. } => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Read access for the duplicate index (`crate::duplicates`), which keeps its
// own tree and is updated after a push commits, outside the push path.

impl ServerStore {
    /// The sled database (the duplicate index opens its own tree in it).
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// A record's operations, if the server holds any.
    pub fn record_doc(&self, id: RecordId) -> Result<Option<RecordDoc>> {
        let record = self.load_record(id, &mut ChunkCache::default())?;
        Ok(record.existed.then_some(record.doc))
    }

    /// Every record the server holds, with its operations, in id order.
    pub fn record_docs(&self) -> impl Iterator<Item = Result<(RecordId, RecordDoc)>> + '_ {
        let mut chunks = ChunkCache::default();
        record_packs::scan(&self.db).map(move |item| {
            let (id, v) = item?;
            let stored = RecordEntry::from_bytes(&v).ok_or_else(|| damaged("a record entry"))?;
            Ok((id, self.ops_at(&stored.ops, &mut chunks)?))
        })
    }

    /// The operations at these log positions.
    fn ops_at(&self, positions: &[LogPos], chunks: &mut ChunkCache) -> Result<RecordDoc> {
        let mut doc = RecordDoc::default();
        for pos in positions {
            if let Some(json) = chunks.op_json(&self.db, *pos)? {
                doc.insert(decode(&json)?);
            }
        }
        Ok(doc)
    }

    /// A record's operations and its stored entry (empty if new).
    fn load_record(&self, id: RecordId, chunks: &mut ChunkCache) -> Result<LoadedRecord> {
        self.loaded(record_packs::get(&self.db, id)?.as_deref(), chunks)
    }

    /// A record's operations and its stored entry, from that entry (`None`:
    /// a new record).
    fn loaded(&self, entry: Option<&[u8]>, chunks: &mut ChunkCache) -> Result<LoadedRecord> {
        let stored = entry
            .map(|v| RecordEntry::from_bytes(v).ok_or_else(|| damaged("a record entry")))
            .transpose()?;
        Ok(match stored {
            Some(stored) => LoadedRecord {
                doc: self.ops_at(&stored.ops, chunks)?,
                stored,
                existed: true,
                changed: false,
            },
            None => LoadedRecord {
                doc: RecordDoc::default(),
                stored: RecordEntry::default(),
                existed: false,
                changed: false,
            },
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_store_of_another_format_is_refused_and_a_new_one_reopens() {
        let dir = tempfile::tempdir().unwrap();
        drop(ServerStore::open(dir.path()).unwrap());
        drop(ServerStore::open(dir.path()).expect("its own format reopens"));
        // A store written before the format was recorded (it has a log).
        let old = tempfile::tempdir().unwrap();
        {
            let db = sled::open(old.path()).unwrap();
            db.insert(b"m/seq", 7u64.to_be_bytes().to_vec()).unwrap();
            db.flush().unwrap();
        }
        let err = ServerStore::open(old.path()).err().expect("refused");
        assert!(matches!(err, StoreError::Format { found: 1, .. }), "{err}");
        assert!(err.to_string().contains("new --data-dir"), "{err}");
    }

    #[test]
    fn a_record_entry_reads_back_what_was_written() {
        let entry = RecordEntry {
            tag: b"chaman,torkham".to_vec(),
            row: Some([7; 19]),
            has_conflicts: true,
            ops: vec![
                LogPos {
                    chunk: 1,
                    offset: 0,
                },
                LogPos {
                    chunk: u64::MAX - 3,
                    offset: 77_000,
                },
            ],
        };
        let bytes = entry.to_bytes();
        assert_eq!(RecordEntry::from_bytes(&bytes), Some(entry.clone()));
        assert_eq!(RecordEntry::row_of(&bytes), Some(&[7u8; 19][..]));
        let none = RecordEntry { row: None, ..entry };
        assert_eq!(RecordEntry::row_of(&none.to_bytes()), None);
        assert_eq!(RecordEntry::from_bytes(&none.to_bytes()), Some(none));
        assert_eq!(RecordEntry::from_bytes(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn the_log_writer_keeps_chunks_of_large_entries_within_their_byte_budget() {
        let mut batch = sled::Batch::default();
        let mut log = LogWriter::after(0);
        let payload = vec![b'x'; 2000];
        let positions: Vec<LogPos> = (0..10)
            .map(|_| {
                log.append(
                    &mut batch,
                    log_entry(DeviceId(uuid::Uuid::nil()), KIND_OP, b"", &payload),
                )
            })
            .collect();
        log.finish(&mut batch);
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.apply_batch(batch).unwrap();
        let chunks: Vec<sled::IVec> = db.scan_prefix(b"l/").map(|i| i.unwrap().1).collect();
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        assert_eq!(chunks.len(), 10usize.div_ceil(CHUNK_BYTES / 2022));
        let mut cache = ChunkCache::default();
        for pos in positions {
            assert_eq!(cache.op_json(&db, pos).unwrap().unwrap().to_vec(), payload);
        }
    }

    #[test]
    fn the_log_writer_cuts_chunks_and_every_entry_is_found_again() {
        let mut batch = sled::Batch::default();
        let mut log = LogWriter::after(41);
        let positions: Vec<LogPos> = (0..CHUNK_ENTRIES * 2 + 5)
            .map(|i| {
                let payload = format!("entry {i}");
                log.append(
                    &mut batch,
                    log_entry(
                        DeviceId(uuid::Uuid::nil()),
                        KIND_OP,
                        b"",
                        payload.as_bytes(),
                    ),
                )
            })
            .collect();
        log.finish(&mut batch);
        assert_eq!(log.last(), 41 + positions.len() as u64);
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.apply_batch(batch).unwrap();
        let chunks: Vec<(u64, sled::IVec)> = db
            .scan_prefix(b"l/")
            .map(|i| i.map(|(k, v)| (seq_of_log_key(&k), v)).unwrap())
            .collect();
        assert_eq!(
            chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
            (0..positions.len() as u64)
                .step_by(CHUNK_ENTRIES)
                .map(|i| 42 + i)
                .collect::<Vec<_>>()
        );
        let mut n = 0;
        for (first, chunk) in &chunks {
            for (i, (offset, entry)) in chunk_entries(chunk).enumerate() {
                let seq = first + i as u64;
                let (_, _, _, at) = parse_log_entry(entry).unwrap();
                assert_eq!(&entry[at..], format!("entry {}", seq - 42).as_bytes());
                let pos = positions[(seq - 42) as usize];
                assert_eq!((pos.chunk, pos.offset as usize), (*first, offset));
                assert_eq!(entry_at(chunk, pos.offset).unwrap().1, entry);
                n += 1;
            }
        }
        assert_eq!(n, positions.len());
    }

    pub(crate) fn fields(crossing: &str, n: u32) -> returnee_shared::FamilyFields {
        let mut members = returnee_shared::Members::default();
        members.males[2] = 1 + n % 3;
        members.females[2] = 1;
        returnee_shared::FamilyFields {
            crossing: crossing.into(),
            crossed_on: NaiveDate::from_ymd_opt(2026, 9, 17).unwrap(),
            return_type: returnee_shared::ReturnType::ALL[0],
            departure_province: "PK-KP".into(),
            destination_province: "AF-NAN".into(),
            members,
            head_name: None,
            head_sex: None,
            doc_type: returnee_shared::DocType::None,
            doc_number: None,
            consent: false,
            vulnerabilities: Default::default(),
            documentation: Default::default(),
            protection_referral: None,
            notes: Some(format!("family {n}")),
        }
    }

    pub(crate) fn enrolled(store: &ServerStore, name: &str) -> Device {
        let now = Utc::now();
        let code = store
            .mint_code(Role::Supervisor, vec![], 1, None, now)
            .unwrap();
        let id = DeviceId(uuid::Uuid::new_v4());
        store.enroll(&code, id, name, now).unwrap().unwrap().0
    }

    /// `n` new families at Torkham, created by `device`.
    fn creates(device: &Device, n: u32) -> Vec<Op> {
        (0..n)
            .map(|n| Op {
                id: returnee_shared::OpId(uuid::Uuid::new_v4()),
                record: RecordId::new_v7(),
                device: device.id,
                at: Utc::now(),
                base: vec![],
                resolution: false,
                change: Change::Create {
                    fields: fields("torkham", n),
                    origin: None,
                },
            })
            .collect()
    }

    #[test]
    fn a_push_names_the_positions_it_logged_unless_a_family_moved() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path()).unwrap();
        let a = enrolled(&store, "a");
        let now = Utc::now();
        let ops = creates(&a, 7);
        let r = store.push(&a, ops.clone(), now).unwrap();
        assert_eq!(
            r.logged,
            Some(LoggedSpan {
                first: SyncCursor(1),
                last: SyncCursor(7)
            })
        );
        // A re-send logs nothing, so it names nothing.
        assert_eq!(store.push(&a, ops.clone(), now).unwrap().logged, None);
        let edit = |values: Vec<FieldValue>| Op {
            id: returnee_shared::OpId(uuid::Uuid::new_v4()),
            record: ops[0].record,
            device: a.id,
            at: now,
            base: store
                .record_doc(ops[0].record)
                .unwrap()
                .unwrap()
                .ops
                .iter()
                .map(|o| o.id)
                .collect(),
            resolution: false,
            change: Change::Edit { values },
        };
        // A move between sites logs entries for other devices too (and
        // perhaps for this one): no span.
        let moved = store
            .push(
                &a,
                vec![edit(vec![FieldValue::Crossing("chaman".into())])],
                now,
            )
            .unwrap();
        assert_eq!(moved.applied, 1);
        assert_eq!(moved.logged, None);
        let last = store.last_seq().unwrap();
        assert!(last > 8, "the move logged more than the edit: {last}");
        let noted = store
            .push(
                &a,
                vec![edit(vec![FieldValue::Notes(Some("n".into()))])],
                now,
            )
            .unwrap();
        assert_eq!(
            noted.logged,
            Some(LoggedSpan {
                first: SyncCursor(last + 1),
                last: SyncCursor(last + 1)
            })
        );
    }

    /// Pulls a page at a time, checking each page against the limit.
    fn pull_all(store: &ServerStore, device: &Device, limit: usize) -> Vec<Op> {
        let mut cursor = SyncCursor(0);
        let mut out = Vec::new();
        loop {
            let page = store.pull(device, cursor, limit).unwrap();
            assert!(page.ops.len() <= limit);
            assert!(page.cursor >= cursor);
            out.extend(page.ops.iter().map(|j| decode::<Op>(j).unwrap()));
            cursor = page.cursor;
            if !page.more {
                return out;
            }
        }
    }

    #[test]
    fn a_store_of_format_3_has_its_record_entries_packed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let (a, ops) = {
            let store = ServerStore::open(dir.path()).unwrap();
            let a = enrolled(&store, "a");
            let ops = creates(&a, 200);
            assert_eq!(
                store.push(&a, ops.clone(), Utc::now()).unwrap().applied,
                200
            );
            // Rewrite it as format 3 left it: one `r/<id>` key per entry.
            let mut batch = sled::Batch::default();
            for item in store.db.scan_prefix(b"p/") {
                batch.remove(item.unwrap().0);
            }
            for item in record_packs::scan(&store.db) {
                let (id, entry) = item.unwrap();
                batch.insert(key(b"r/", id.0.as_bytes()), entry);
            }
            batch.insert(FORMAT_KEY, FORMAT_LOOSE_ENTRIES.to_be_bytes().to_vec());
            store.db.apply_batch(batch).unwrap();
            store.flush().unwrap();
            (a, ops)
        };
        let store = ServerStore::open(dir.path()).expect("a format-3 store opens");
        assert_eq!(store.db.scan_prefix(b"r/").count(), 0);
        assert_eq!(
            store.db.get(FORMAT_KEY).unwrap().unwrap().to_vec(),
            FORMAT.to_be_bytes()
        );
        for op in &ops {
            let doc = store.record_doc(op.record).unwrap().expect("still there");
            assert!(doc.contains(op.id));
        }
        let report = store
            .report(&a, ReportBuilder::new(Default::default(), None))
            .unwrap();
        assert_eq!(report.totals.families, 200);
        // Re-sent, they are recognised; new ones still land.
        let r = store.push(&a, ops, Utc::now()).unwrap();
        assert_eq!((r.applied, r.duplicates), (0, 200));
        assert_eq!(
            store.push(&a, creates(&a, 3), Utc::now()).unwrap().applied,
            3
        );
    }

    #[test]
    fn pages_of_any_size_hand_out_every_operation_once_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path()).unwrap();
        let (a, b) = (enrolled(&store, "a"), enrolled(&store, "b"));
        let now = Utc::now();
        let ops = creates(&a, 150);
        // Two pushes: the second starts new chunks mid-sequence.
        let r = store.push(&a, ops[..100].to_vec(), now).unwrap();
        assert_eq!(r.applied, 100);
        let r = store.push(&a, ops.clone(), now).unwrap();
        assert_eq!((r.applied, r.duplicates), (50, 100));
        for limit in [1, 7, 64, 65, 1000] {
            let got = pull_all(&store, &b, limit);
            assert_eq!(
                got.iter().map(|o| o.id).collect::<Vec<_>>(),
                ops.iter().map(|o| o.id).collect::<Vec<_>>(),
                "limit {limit}"
            );
        }
        // Nothing past the last position known to be on disk is handed out.
        let durable = store.durable.swap(120, Ordering::AcqRel);
        let page = store.pull(&b, SyncCursor(100), 1000).unwrap();
        assert_eq!(
            (page.ops.len(), page.cursor, page.more),
            (20, SyncCursor(120), false)
        );
        store.durable.store(durable, Ordering::Release);
        // The sender gets none of its own back, and the report counts each once.
        assert!(pull_all(&store, &a, 10).is_empty());
        let report = store
            .report(&b, ReportBuilder::new(Default::default(), None))
            .unwrap();
        assert_eq!(report.totals.families, 150);
        // An edit reads its record back from the log.
        let first = &ops[0];
        let mut edited = fields("torkham", 0);
        edited.notes = Some("edited".into());
        let edit = Op {
            id: returnee_shared::OpId(uuid::Uuid::new_v4()),
            record: first.record,
            device: a.id,
            at: now,
            base: vec![first.id],
            resolution: false,
            change: Change::Edit {
                values: vec![FieldValue::Notes(Some("edited".into()))],
            },
        };
        assert_eq!(store.push(&a, vec![edit], now).unwrap().applied, 1);
        let doc = store.record_doc(first.record).unwrap().unwrap();
        assert_eq!(doc.ops.len(), 2);
        assert_eq!(
            doc.view(first.record).family.unwrap().fields.notes,
            edited.notes
        );
    }

    #[test]
    fn concurrent_pushes_to_the_same_records_keep_every_operation_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path()).unwrap();
        let (a, b, reader) = (
            enrolled(&store, "a"),
            enrolled(&store, "b"),
            enrolled(&store, "reader"),
        );
        let now = Utc::now();
        let creates = creates(&a, 40);
        store.push(&a, creates.clone(), now).unwrap();
        let edits = |device: &Device, round: usize| -> Vec<Op> {
            creates
                .iter()
                .map(|c| Op {
                    id: returnee_shared::OpId(uuid::Uuid::new_v4()),
                    record: c.record,
                    device: device.id,
                    at: now,
                    base: vec![c.id],
                    resolution: false,
                    change: Change::Edit {
                        values: vec![FieldValue::Notes(Some(format!("{} {round}", device.name)))],
                    },
                })
                .collect()
        };
        let mut sent: Vec<Op> = creates.clone();
        let batches: Vec<(Device, Vec<Op>)> = (0..6)
            .flat_map(|round| [(a.clone(), edits(&a, round)), (b.clone(), edits(&b, round))])
            .collect();
        for (_, ops) in &batches {
            sent.extend(ops.iter().cloned());
        }
        std::thread::scope(|s| {
            // Every batch at once, each sent twice (a re-send racing the
            // original): between the two, every operation applied once.
            let running: Vec<_> = batches
                .iter()
                .map(|(device, ops)| {
                    let store = &store;
                    let twice: Vec<_> = (0..2)
                        .map(|_| s.spawn(move || store.push(device, ops.clone(), now).unwrap()))
                        .collect();
                    (ops.len() as u64, twice)
                })
                .collect();
            for (n, twice) in running {
                let acks: Vec<PushResponse> =
                    twice.into_iter().map(|h| h.join().unwrap()).collect();
                assert_eq!(acks[0].applied + acks[1].applied, n);
                assert_eq!(acks[0].duplicates + acks[1].duplicates, n);
            }
        });
        let pulled = pull_all(&store, &reader, 100);
        let mut got: Vec<_> = pulled.iter().map(|o| o.id).collect();
        let mut want: Vec<_> = sent.iter().map(|o| o.id).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "every operation logged once");
        for c in &creates {
            let doc = store.record_doc(c.record).unwrap().unwrap();
            assert_eq!(doc.ops.len(), 1 + 12, "the create and every edit");
        }
    }

    #[test]
    fn a_second_open_of_a_store_in_use_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let _first = ServerStore::open(dir.path()).unwrap();
        let second = ServerStore::open(dir.path());
        assert!(
            matches!(second, Err(StoreError::InUse(_))),
            "{:?}",
            second.err()
        );
    }
}
