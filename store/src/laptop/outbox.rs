//! The outbox: the operations made on this laptop and not yet acknowledged
//! by the server, kept a second time outside sled, in an append-only
//! journal of CRC-checked frames ([`crate::journal`]) in `<store>/outbox/`,
//! so that a sled store that no longer opens loses nothing typed
//! (`returnee repair`, [`LocalStore::repair`]).
//!
//! Frames, each a kind byte then its body:
//! - `H`: the outbox's header (plain JSON, [`OutboxHeader`]): its version and
//!   the store's encryption header when it is encrypted (plain in sled too:
//!   it holds no secret that is not wrapped under the passphrase). Always the
//!   first frame;
//! - `I`: the device and its enrollment (the credential included);
//! - `O`: the operations of one local write, as the push queue holds them
//!   (record id, op id, the operation's JSON);
//! - `A`: the ids of operations the server acknowledged (16 bytes each);
//! - `R`: an operation the server refused, with the reason (held here);
//! - `P`: families purged from this laptop (record ids and when), so that a
//!   rebuilt store does not take them back from the server.
//!
//! Every frame but `H` is sealed with the store's cipher (the identity on a
//! plain store, XChaCha20-Poly1305 under the data key on an encrypted one),
//! bound to `outbox/<kind>`: an encrypted laptop's outbox holds no name or
//! document number in the clear.
//!
//! Durability: the frames of a write are appended and fsync'd before the
//! write's sled batch is applied and flushed, so what the worker is told is
//! saved is in both. Acknowledgements are appended without a sync (as sled
//! applies them unflushed: one lost is re-sent and recognised). Once the
//! queue is empty the outbox is rewritten to its header and identity (and
//! refused operations): written to `outbox.new`, synced, then renamed over
//! `outbox`, so that a crash leaves one whole outbox.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;
use crate::journal::{Journal, JournalError, Options};

const DIR: &str = "outbox";
const NEW_DIR: &str = "outbox.new";
const OLD_DIR: &str = "outbox.old";
const VERSION: u32 = 1;

pub(super) const HEADER: u8 = b'H';
pub(super) const IDENTITY: u8 = b'I';
pub(super) const OPS: u8 = b'O';
pub(super) const ACKED: u8 = b'A';
pub(super) const REFUSED: u8 = b'R';
pub(super) const PURGED: u8 = b'P';
/// An export made here, not yet in the server's audit trail.
pub(super) const NOTE: u8 = b'N';

/// Segments roll at this size.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

fn aad(kind: u8) -> [u8; 8] {
    let mut k = *b"outbox/?";
    k[7] = kind;
    k
}

/// The plain first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OutboxHeader {
    pub(super) version: u32,
    pub(super) crypt: Option<CryptHeader>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Identity {
    pub(super) device: DeviceInfo,
    pub(super) enrollment: Option<Enrollment>,
}

/// The outbox of one store, opened at its first write.
#[derive(Default)]
pub(super) struct Outbox {
    journal: Option<Journal>,
}

/// The folder of the outbox of the store in `dir`.
pub(super) fn outbox_dir(dir: &Path) -> PathBuf {
    dir.join(DIR)
}

/// Finishes a rewrite a crash interrupted: `outbox.new` is complete once
/// `outbox` was moved away.
fn settle(dir: &Path) -> std::io::Result<()> {
    let (cur, new, old) = (dir.join(DIR), dir.join(NEW_DIR), dir.join(OLD_DIR));
    if !cur.exists() && new.exists() {
        std::fs::rename(&new, &cur)?;
    }
    if new.exists() {
        std::fs::remove_dir_all(&new)?;
    }
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

pub(super) fn outbox_error(e: JournalError) -> StoreError {
    match e {
        JournalError::Damaged {
            segment,
            offset,
            reason,
        } => StoreError::OutboxDamaged {
            segment,
            offset,
            reason,
        },
        other => StoreError::Outbox(other.to_string()),
    }
}

fn io_error(dir: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Outbox(format!("{}: {e}", dir.display()))
}

/// The frames of an outbox, read back and not yet opened.
pub(super) struct RawOutbox {
    pub(super) header: OutboxHeader,
    pub(super) frames: Vec<(u8, Vec<u8>)>,
    /// A torn tail cut at open, as said to a person.
    pub(super) cut: Option<String>,
    pub(super) bytes: u64,
}

/// What an outbox says, opened: who this device is, what it has not sent.
pub(super) struct OutboxState {
    pub(super) identity: Option<Identity>,
    /// Queue items (as [`queue_items`] reads them) not acknowledged, in order.
    pub(super) unsent: Vec<Vec<u8>>,
    pub(super) refused: Vec<(Op, RejectedOp)>,
    pub(super) purged: Vec<(RecordId, DateTime<Utc>)>,
    /// Export notes (some perhaps already sent: the server records a note
    /// once, by its id).
    pub(super) notes: Vec<returnee_shared::wire::ExportNote>,
}

/// Reads the outbox of the store in `dir` (cutting a torn tail); `None`
/// when there is none.
pub(super) fn read_raw(dir: &Path) -> Result<Option<RawOutbox>> {
    settle(dir).map_err(io_error(dir))?;
    let path = outbox_dir(dir);
    if !path.is_dir() {
        return Ok(None);
    }
    let (journal, recovery) = Journal::open(&path, options()).map_err(outbox_error)?;
    let mut frames = Vec::new();
    for frame in journal.frames_from(journal.start()).map_err(outbox_error)? {
        let (_, payload) = frame.map_err(outbox_error)?;
        let Some((&kind, body)) = payload.split_first() else {
            continue;
        };
        frames.push((kind, body.to_vec()));
    }
    let header = match frames.first() {
        Some((HEADER, body)) => decode::<OutboxHeader>(body)?,
        _ => {
            return Err(StoreError::Outbox(format!(
                "{} does not begin with its header",
                path.display()
            )));
        }
    };
    Ok(Some(RawOutbox {
        header,
        frames,
        cut: recovery.cut.map(|c| c.to_string()),
        bytes: journal.end() - journal.start(),
    }))
}

impl RawOutbox {
    /// Opens every frame with `cipher`, in order.
    pub(super) fn open(&self, cipher: &StoreCipher, dir: &Path) -> Result<OutboxState> {
        let mut identity = None;
        let mut unsent: Vec<Option<Vec<u8>>> = Vec::new();
        let mut at: HashMap<OpId, usize> = HashMap::new();
        let mut refused = Vec::new();
        let mut purged = Vec::new();
        let mut notes = Vec::new();
        for (kind, sealed) in &self.frames[1..] {
            let body = cipher
                .open(&aad(*kind), sled::IVec::from(sealed.as_slice()))
                .map_err(|e| LocalStore::sealing(dir, e))?;
            match *kind {
                IDENTITY => identity = Some(decode::<Identity>(&body)?),
                OPS => {
                    for item in queue_items(&body)? {
                        if let Some(&i) = at.get(&item.id) {
                            unsent[i] = None;
                        }
                        at.insert(item.id, unsent.len());
                        unsent.push(Some(item.raw.to_vec()));
                    }
                }
                ACKED => {
                    for id in body.chunks_exact(16) {
                        let id = OpId(uuid::Uuid::from_slice(id).expect("16 bytes"));
                        if let Some(i) = at.remove(&id) {
                            unsent[i] = None;
                        }
                    }
                }
                REFUSED => refused.push(decode::<(Op, RejectedOp)>(&body)?),
                PURGED => purged.extend(decode::<Vec<(RecordId, DateTime<Utc>)>>(&body)?),
                NOTE => notes.push(decode(&body)?),
                _ => {}
            }
        }
        Ok(OutboxState {
            identity,
            unsent: unsent.into_iter().flatten().collect(),
            refused,
            purged,
            notes,
        })
    }
}

fn options() -> Options {
    Options {
        segment_bytes: SEGMENT_BYTES,
    }
}

impl LocalStore {
    /// The encryption header as sled holds it (plain), if encrypted.
    fn crypt_header(&self) -> Result<Option<CryptHeader>> {
        self.db
            .get(meta_key(META_CRYPT))?
            .map(|raw| decode(&raw))
            .transpose()
    }

    fn frame(&self, out: &mut Vec<u8>, kind: u8, body: Vec<u8>) {
        let sealed = if kind == HEADER {
            body
        } else {
            self.cipher.seal(&aad(kind), body)
        };
        let mut payload = Vec::with_capacity(sealed.len() + 1);
        payload.push(kind);
        payload.extend_from_slice(&sealed);
        crate::journal::encode_frame(out, &payload);
    }

    /// Rewrites the outbox from what sled holds: header, identity, the
    /// queue, the refused operations. Synced, and renamed into place.
    pub(super) fn rewrite_outbox(&self) -> Result<()> {
        let mut frames = Vec::new();
        let header = OutboxHeader {
            version: VERSION,
            crypt: self.crypt_header()?,
        };
        self.frame(&mut frames, HEADER, encode(&header));
        if let Some(device) = self.meta::<DeviceInfo>(META_DEVICE)? {
            let identity = Identity {
                device,
                enrollment: self.enrollment()?,
            };
            self.frame(&mut frames, IDENTITY, encode(&identity));
        }
        for entry in self.queue_entries() {
            let e = entry?;
            let rest: Vec<u8> = queue_items(&e.value)?
                .iter()
                .skip(e.done)
                .flat_map(|i| i.raw.iter().copied())
                .collect();
            if !rest.is_empty() {
                self.frame(&mut frames, OPS, rest);
            }
        }
        for held in self.held()? {
            self.frame(&mut frames, REFUSED, encode(&held));
        }
        let purged = self.purged_records()?;
        if !purged.is_empty() {
            self.frame(&mut frames, PURGED, encode(&purged));
        }
        for note in self.export_notes()? {
            self.frame(&mut frames, NOTE, encode(&note));
        }
        let mut slot = self.outbox.lock().expect("outbox lock");
        slot.journal = None;
        let dir = &self.dir;
        settle(dir).map_err(io_error(dir))?;
        let new = dir.join(NEW_DIR);
        let (mut journal, _) = Journal::open(&new, options()).map_err(outbox_error)?;
        journal.append_encoded(&frames).map_err(outbox_error)?;
        journal.sync().map_err(outbox_error)?;
        drop(journal);
        let cur = outbox_dir(dir);
        if cur.exists() {
            std::fs::rename(&cur, dir.join(OLD_DIR)).map_err(io_error(dir))?;
        }
        std::fs::rename(&new, &cur).map_err(io_error(dir))?;
        sync_dir(dir)?;
        settle(dir).map_err(io_error(dir))?;
        Ok(())
    }

    /// Appends frames of `kind` (bodies not yet sealed) to the outbox,
    /// made first from sled if this store has none yet; synced if `sync`.
    pub(super) fn outbox_append(&self, items: &[(u8, Vec<u8>)], sync: bool) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut frames = Vec::new();
        for (kind, body) in items {
            self.frame(&mut frames, *kind, body.clone());
        }
        if self.outbox.lock().expect("outbox lock").journal.is_none()
            && !outbox_dir(&self.dir).is_dir()
        {
            self.rewrite_outbox()?;
        }
        let mut slot = self.outbox.lock().expect("outbox lock");
        if slot.journal.is_none() {
            settle(&self.dir).map_err(io_error(&self.dir))?;
            let (journal, _) =
                Journal::open(&outbox_dir(&self.dir), options()).map_err(outbox_error)?;
            slot.journal = Some(journal);
        }
        let journal = slot.journal.as_mut().expect("opened above");
        journal.append_encoded(&frames).map_err(outbox_error)?;
        if sync {
            journal.sync().map_err(outbox_error)?;
        }
        Ok(())
    }

    /// Drops the outbox (a wiped store keeps nothing).
    pub(super) fn remove_outbox(&self) -> Result<()> {
        self.outbox.lock().expect("outbox lock").journal = None;
        for name in [DIR, NEW_DIR, OLD_DIR] {
            let p = self.dir.join(name);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(io_error(&self.dir))?;
            }
        }
        Ok(())
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir))?;
    Ok(())
}
