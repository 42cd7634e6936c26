//! The server's store: devices, enrollment codes, the log of every operation
//! received, and each record's operations and view. The journal
//! (`DIR/journal/`, [`crate::journal`], frames in [`frames`]) is the source
//! of truth; sled (`DIR/index/`, one tree, so one `sled::Batch` is atomic
//! across kinds) holds what is derived from it ([`journaled`]).
//!
//! Layout of sled:
//! - `m/format`: the layout's version (`FORMAT`); a store of another one is refused;
//! - `m/seq`: the last log position handed out; `m/journal`: the journal
//!   position sled includes;
//! - `l/<seq>`: the journal position of the frame whose first log entry is
//!   `<seq>`. Each entry of a frame is its length (4 bytes),
//!   then the sending device's id (16 bytes), a kind byte (`o` an
//!   operation, `r` a re-send of a whole record, `f` a record that left a
//!   site), the record's site tag (one length byte, then its crossing codes
//!   joined by `,`), then the operation's JSON or the record's id (16
//!   bytes). A push writes one frame of its own and never rewrites one;
//! - `p/<place>`: the records' entries ([`RecordEntry`]), packed up to 64 to
//!   a key in the order records arrived ([`record_packs`]), found by id
//!   through `i/<record id>`, the packs of each record's place, with
//!   `j/<run>`, the places of records placed lately, not merged into those
//!   packs yet ([`crate::placed::RUN_LIMIT`]), and `m/place`. An entry holds the record's
//!   site tag, what reports need of it while it counts (19 bytes), whether
//!   it has open conflicts, and where each of its operations sits in the log
//!   (frame position and byte offset; each operation is stored once, in the journal).
//!   Re-sends are recognised by operation id within their record.
//! - `c/<record id>`: its open conflicts, present only when there are some;
//! - `dev/<device id>`: an enrolled device; `tok/<token hash>`: device by credential;
//! - `code/<code hash>`: an enrollment code and the uses it has left;
//! - `m/crossings`: the crossings admins added, with the list's version;
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

use crate::db::OpenError;
use crate::format::{self, Migration};

pub mod duplicates;

pub use duplicates::DuplicateIndex;

mod admission;
mod audit;
mod backup;
mod crossings;
mod cycles;
mod dashboard;
mod devices;
mod erasure;
mod exports;
mod frames;
mod journaled;
mod keys;
mod log;
pub(crate) mod record_packs;
mod records;

use admission::admit;
pub use backup::Backup;
pub use dashboard::Session;
pub use devices::{
    Credential, EnrollRefusal, EnrollmentCode, PendingToken, hash_secret, new_code, normalize_code,
};
use frames::{Frame, Writes};
pub use journaled::{Opened, Repaired, repair};
use keys::{AUDIT_HEAD_KEY, CROSSINGS_KEY, FORMAT_KEY, IndexKind, Kind, SEQ_KEY};
use log::*;
use records::RecordEntry;

/// The store's migrations, oldest first ([`crate::format`]): add one, with
/// a test on a store written by the release before, for any change to the
/// layout (see the module docs) that a released store must be brought to.
const MIGRATIONS: &[Migration<StoreError>] = &[];
/// The layout's version, under [`FORMAT_KEY`].
const FORMAT: u32 = format::current(MIGRATIONS);

/// Errors of the server's store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another returnee-server process; stop it first")]
    InUse(PathBuf),
    #[error(
        "the index in {dir} could not be opened ({source}); run `returnee-server repair --data-dir` on the data folder to rebuild it from the journal"
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
    #[error(
        "stored data is damaged: {0}; run `returnee-server repair`, or restore the data directory from backup"
    )]
    Damaged(String),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error("{0}")]
    Backup(String),
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
    /// The credential in use ([`devices`]; module docs there).
    #[serde(default)]
    pub credential: Credential,
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

/// One page of the log for one device: the operations' JSON as logged,
/// the records that left the device's sites, the next cursor and whether
/// more remain.
pub type Pulled = returnee_shared::wire::PullPage<sled::IVec>;

/// A record's site tag: its crossings, sorted, joined by `,`.
fn site_tag(sites: &BTreeSet<String>) -> Vec<u8> {
    let tag = sites.iter().cloned().collect::<Vec<_>>().join(",");
    tag.into_bytes()
}

fn damaged(what: &str) -> StoreError {
    StoreError::Damaged(what.to_string())
}

fn audit_key(seq: u64) -> Vec<u8> {
    Kind::Audit.key(&seq.to_be_bytes())
}
fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("values serialize")
}
fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(b)?)
}

/// sled's page cache. What sled counts is the pages' size on disk; in
/// memory the duplicate index's small keys and values take two to three
/// times that, and a shard is weighed only every 64 accesses
/// ([`crate::db::weighed`]): a larger cache let a million-family push run
/// past the server's memory budget.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// The server's store. Cheap to clone; one per process.
#[derive(Clone)]
pub struct ServerStore {
    /// The index in use. Replaced whole, under `writer`, by an erasure's
    /// rewrite ([`ServerStore::rewrite_index`]); readers hold the one they
    /// started with.
    db: Arc<std::sync::RwLock<Arc<sled::Db>>>,
    /// The operation log and every write not derived from it (the source
    /// of truth; `db` holds what is derived, [`journaled`]). Appended to
    /// under `writer`, so frames are in commit order.
    journal: Arc<Mutex<crate::journal::Journal>>,
    ops: OpReader,
    /// What opening found and did (a torn tail cut, frames replayed).
    opened: Arc<Opened>,
    /// Serialises pushes: each is a read-modify-write of records and the log.
    writer: Arc<Mutex<()>>,
    /// The last log position known to be on disk. Pulls hand out nothing
    /// after it: an entry applied but not yet flushed could be lost by a
    /// crash and its position handed out again, and a device whose cursor
    /// had passed it would never receive what then took its place.
    durable: Arc<AtomicU64>,
    /// Whether an erasure waits for the index to be rewritten: mirrors
    /// `erasure.pending` (read at open), so that the check after every
    /// push touches no file.
    erasure_waiting: Arc<std::sync::atomic::AtomicBool>,
    /// Which records the index may hold: the push path looks up only those
    /// ([`crate::placed::KnownIds`]; used and noted under `writer`).
    known_ids: Arc<crate::placed::KnownIds>,
}

impl ServerStore {
    /// Opens (creating if needed) the store in `dir`: its journal (a torn
    /// tail cut), then its projections in sled, caught up from their
    /// checkpoint (rebuilt from the journal when missing or ahead of it).
    pub fn open(dir: &Path) -> Result<Self> {
        journaled::open(dir)
    }

    pub fn flush(&self) -> Result<()> {
        self.sync_journal()?;
        self.db().flush()?;
        Ok(())
    }

    /// The journal's bytes (its end position less what was dropped):
    /// what `GET /metrics` shows as `journal_bytes`.
    pub fn journal_bytes(&self) -> u64 {
        let journal = self.journal.lock().expect("journal lock");
        journal.end() - journal.start()
    }

    /// The last position of the operation log (0 when it is empty).
    pub fn log_position(&self) -> Result<u64> {
        self.last_seq()
    }

    /// What opening the store found and did.
    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    /// Whether no device was ever enrolled and no code minted.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self
            .db()
            .scan_prefix(Kind::Devices.prefix())
            .next()
            .is_none()
            && self.db().scan_prefix(Kind::Codes.prefix()).next().is_none())
    }

    /// The records named by the log after position `after`: what a
    /// projection of the log (the duplicate index) must look at again to
    /// catch up from there.
    pub(crate) fn records_logged_after(&self, after: u64) -> Result<BTreeSet<RecordId>> {
        #[derive(Deserialize)]
        struct RecordOf {
            record: RecordId,
        }
        let mut out = BTreeSet::new();
        let start = after.saturating_add(1);
        let end = self.journal.lock().expect("journal lock").end();
        for frame in self.log_frames(start, end)? {
            let (payload, _) = frame?;
            let frame = Frame::parse(&payload)?;
            for (i, (_, entry)) in chunk_entries(frame.entries).enumerate() {
                if frame.first + (i as u64) < start {
                    continue;
                }
                let (_, kind, _, at) =
                    parse_log_entry(entry).ok_or_else(|| damaged("a log entry"))?;
                let payload = &entry[at..];
                let record = match kind {
                    KIND_OP => serde_json::from_slice::<RecordOf>(payload)?.record,
                    _ => RecordId(
                        uuid::Uuid::from_slice(payload.get(..16).unwrap_or_default())
                            .map_err(|_| damaged("a log entry"))?,
                    ),
                };
                out.insert(record);
            }
        }
        Ok(out)
    }

    pub(crate) fn last_seq(&self) -> Result<u64> {
        Ok(self
            .db()
            .get(SEQ_KEY)?
            .map(|b| u64::from_be_bytes(b.as_ref().try_into().expect("8-byte seq")))
            .unwrap_or(0))
    }

    /// Applies a batch of operations from `device`: new ones are logged and
    /// merged, re-sent ones are recognised and skipped, invalid or forbidden
    /// ones are refused with a reason. Durable when this returns, together
    /// with its audit entry.
    ///
    /// Only where no [`DuplicateIndex`] listens (tests, benchmarks, a store
    /// opened by a tool): a running server pushes through
    /// [`ServerStore::push_then`], or its index would not hear of the push
    /// and would move its position past it with the next one it hears of.
    pub fn push(&self, device: &Device, ops: Vec<Op>, now: DateTime<Utc>) -> Result<PushResponse> {
        self.push_settled(device, ops, now, |_, _| {})
    }

    /// [`ServerStore::push_then`] of operations with the JSON each came in
    /// (which must decode to it), logged as it came: not encoded again.
    pub fn push_received_then(
        &self,
        device: &Device,
        ops: Vec<(Op, Vec<u8>)>,
        now: DateTime<Utc>,
        committed: impl FnOnce(Vec<ChangedRecord>, u64),
    ) -> Result<PushResponse> {
        let today = now.date_naive();
        let guard = self.writer.lock().expect("writer lock");
        let mut out = PushResponse::default();
        // Every record the batch touches, read on all cores (each worker
        // shares the log chunks it reads between its records).
        let mut ids: Vec<RecordId> = ops.iter().map(|(op, _)| op.record).collect();
        ids.sort_unstable();
        ids.dedup();
        let (known, stored) = record_packs::get_many_placed(&self.db(), &self.known_ids, &ids)?;
        let mut records: BTreeMap<RecordId, LoadedRecord> = ids
            .into_par_iter()
            .zip(stored)
            .with_min_len(250)
            .map(|(id, entry)| Ok((id, self.loaded(entry.as_deref())?)))
            .collect::<Result<_>>()?;
        // New operations in arrival order, logged once their record's final
        // site tag is known.
        let mut fresh: Vec<(RecordId, Vec<u8>)> = Vec::new();
        let mut audited = Vec::new();
        let mut erasing = BTreeSet::new();
        let mut batch = sled::Batch::default();
        for (op, json) in ops {
            let record = records.get_mut(&op.record).expect("loaded above");
            if record.doc.contains(op.id) {
                out.already_held += 1;
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
            // An erasure, or personal values for a family already erased
            // (made before the maker heard of the erasure): dropped.
            if matches!(op.change, Change::Erase { .. })
                || (record.doc.erasure().is_some() && op.erased().is_some())
            {
                erasing.insert(op.record);
            }
            fresh.push((op.record, json));
            record.doc.insert(op);
            record.changed = true;
            out.applied += 1;
        }
        if !erasing.is_empty() {
            self.erase_in_push(&mut records, &mut fresh, &erasing)?;
        }
        let logged_after = self.last_seq()?;
        let frame_at = self.journal.lock().expect("journal lock").end();
        let mut log = LogWriter::after(logged_after, frame_at);
        // Each entry: its length, device, kind, tag (a few crossings), JSON.
        log.chunk
            .reserve(fresh.iter().map(|(_, json)| 40 + json.len()).sum());
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
                log.append(log_entry(device.id, kind, &sites, id.0.as_bytes()));
            }
            tags.insert(id, tag);
        }
        for (id, json) in fresh {
            let pos = log.append(log_entry(device.id, KIND_OP, &tags[&id], &json));
            records.get_mut(&id).expect("loaded").stored.ops.push(pos);
        }
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
        record_packs::stage_knowing(&self.db(), &self.known_ids, &mut batch, &entries, &known)?;
        let mut writes = Writes::default();
        if !audited.is_empty() || !out.rejected.is_empty() {
            self.stage_audit(
                &mut writes,
                now,
                Some(device.id),
                AuditEvent::Push {
                    applied: audited,
                    rejected: out.rejected.len() as u32,
                },
            )?;
        }
        let last = log.last();
        let frame_end = if last > logged_after || !writes.writes.is_empty() {
            self.append_frame(&mut batch, log.first, &log.chunk, &writes)?
        } else {
            frame_at
        };
        self.db().apply_batch(batch)?;
        // In commit order, still under the lock. The duplicate index is
        // derived data that records how far through the log it is, so it
        // may run ahead of the flush (see `DuplicateIndex::open`).
        committed(changed, last);
        if !moved && last > logged_after {
            out.logged = Some(LoggedSpan {
                first: SyncCursor(logged_after + 1),
                last: SyncCursor(last),
            });
        }
        drop(guard);
        // Synced outside the lock: pushes that committed meanwhile share
        // one fsync of the journal. A push whose operations were all there
        // already syncs too, since the push that applied them may not have
        // yet. sled is not flushed: it is rebuilt from the journal.
        let syncing = std::time::Instant::now();
        self.sync_journal_through(frame_end)?;
        crate::observe::journal_fsync(syncing.elapsed());
        self.durable.fetch_max(last, Ordering::AcqRel);
        Ok(out)
    }

    /// The log after `after` that `device` may see, leaving out its own
    /// operations, at most `limit` entries: the operations' JSON, the
    /// records that left its sites, the next cursor and whether more remain.
    pub fn pull(&self, device: &Device, after: SyncCursor, limit: usize) -> Result<Pulled> {
        self.pull_with(device, after, limit, false)
    }

    /// [`ServerStore::pull`], with the device's own operations too when
    /// `own` (a laptop rebuilt by `returnee repair` pulls everything again).
    pub fn pull_with(
        &self,
        device: &Device,
        after: SyncCursor,
        limit: usize,
        own: bool,
    ) -> Result<Pulled> {
        let mut ops = Vec::new();
        let mut forget = Vec::new();
        let mut cursor = after;
        let mut more = false;
        let (own_id, with_own) = (device.id.0.as_bytes(), own);
        let all_sites = device.all_sites();
        let start = after.0.saturating_add(1);
        let durable = self.durable.load(Ordering::Acquire);
        let end = self.journal.lock().expect("journal lock").synced();
        'frames: for frame in self.log_frames(start, end)? {
            let (payload, _) = frame?;
            let payload = sled::IVec::from(payload);
            let frame = Frame::parse(&payload)?;
            let base = frame.entries.as_ptr() as usize - payload.as_ptr() as usize;
            for (i, (offset, entry)) in chunk_entries(frame.entries).enumerate() {
                let seq = frame.first + i as u64;
                if seq < start {
                    continue;
                }
                if seq > durable {
                    break 'frames;
                }
                if ops.len() >= limit {
                    more = true;
                    break 'frames;
                }
                cursor = SyncCursor(seq);
                let Some((from, kind, tag, at)) = parse_log_entry(entry) else {
                    continue;
                };
                match kind {
                    KIND_OP if (with_own || from != own_id) && device.sees(tag) => {
                        ops.push(payload.subslice(base + offset + 4 + at, entry.len() - at));
                    }
                    // A device that sees every site already has the history.
                    KIND_RESEND if !all_sites && device.sees(tag) && entry.len() >= at + 16 => {
                        let record = RecordId(
                            uuid::Uuid::from_slice(&entry[at..at + 16]).expect("16 bytes"),
                        );
                        if let Some(stored) = self.record_entry(record)? {
                            for pos in stored.ops {
                                if let Some(op) = self.ops.op_json(pos)? {
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
            remaining: durable.saturating_sub(cursor.0),
        })
    }

    /// A record's entry, if the server holds the record.
    fn record_entry(&self, id: RecordId) -> Result<Option<RecordEntry>> {
        record_packs::get(&self.db(), id)?
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
        for item in self.db().scan_prefix(Kind::Conflicts.prefix()) {
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
        if builder.needs_fields() {
            // A filter on the review state reads each family's fields.
            for item in self.record_docs() {
                let (id, doc) = item?;
                if let Some(f) = doc.view(id).active()
                    && device.works_at(&f.fields.crossing)
                {
                    builder.add(&f.fields);
                }
            }
            return Ok(builder.finish());
        }
        for item in record_packs::scan(&self.db()) {
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
        writes.push((
            Kind::Conflicts.key(id.0.as_bytes()),
            Some(encode(&view.conflicts)),
        ));
    } else if had_conflicts {
        writes.push((Kind::Conflicts.key(id.0.as_bytes()), None));
    }
    RecordWrites {
        entry: record.stored.to_bytes(),
        writes,
        changed: ChangedRecord::of_view(id, &record.doc, &view),
    }
}

#[cfg(test)]
mod erasure_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
pub(crate) mod tests;
