//! Backups: the journal up to a frame boundary, read while the server
//! runs (sled is not needed: everything in it is derived from the journal),
//! compressed with zstd, with a manifest. A file is `RETURNEE-BACKUP 1\n`,
//! the frames as the journal holds them, then the manifest's JSON and its
//! length (4 bytes BE), all compressed as one zstd stream.

use std::io::{Read, Write};

use super::*;
use crate::journal::{self, Journal, Options};

const MAGIC: &[u8] = b"RETURNEE-BACKUP 1\n";
/// The version of the backup file's layout.
pub const BACKUP_VERSION: u32 = 1;

/// How far a restore moves the log's next position past the backup's
/// last: more than any server logs between two backups, so that laptops'
/// cursors from before the restore lie before every new position.
pub const RESTORE_GAP: u64 = 1 << 32;

/// A backup's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub version: u32,
    /// The server store's format.
    pub store_format: u32,
    /// The journal positions the backup holds: from `start` to `end`.
    pub start: u64,
    pub end: u64,
    pub frames: u64,
    /// The last log position in it (a sync cursor).
    pub last_seq: u64,
    /// SHA-256 of the frames' bytes, hex.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

fn backup_error(what: String) -> StoreError {
    StoreError::Backup(what)
}

impl Backup {
    /// Writes a backup of the store in `data_dir` (running or not) to `out`
    /// (which must not exist); returns its manifest.
    pub fn take(data_dir: &Path, out: &Path, now: DateTime<Utc>) -> Result<Backup> {
        let dir = journaled::journal_dir(data_dir);
        if !dir.is_dir() {
            return Err(backup_error(format!(
                "{} holds no journal; give the data folder of a returnee-server",
                data_dir.display()
            )));
        }
        if out.exists() {
            return Err(backup_error(format!(
                "{} already exists; give a new file name",
                out.display()
            )));
        }
        let tmp = out.with_extension("partial");
        let io = |e: std::io::Error| backup_error(format!("cannot write {}: {e}", tmp.display()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // A backup holds every record: the owner's only (Unix).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let _ = std::fs::remove_file(&tmp);
        let file = options.open(&tmp).map_err(io)?;
        let mut z = zstd::Encoder::new(file, 3).map_err(io)?;
        z.write_all(MAGIC).map_err(io)?;
        let mut sha = Sha256::new();
        let (mut start, mut end, mut frames, mut last_seq) = (None, 0, 0, 0);
        let mut buf = Vec::new();
        for frame in journal::snapshot(&dir)? {
            let (at, payload) = frame?;
            start.get_or_insert(at);
            let parsed = Frame::parse(&payload)?;
            let count = parsed.count();
            if count > 0 {
                last_seq = parsed.first + count - 1;
            }
            buf.clear();
            journal::encode_frame(&mut buf, &payload);
            sha.update(&buf);
            z.write_all(&buf).map_err(io)?;
            end = at + buf.len() as u64;
            frames += 1;
        }
        let manifest = Backup {
            version: BACKUP_VERSION,
            store_format: FORMAT,
            start: start.unwrap_or(end),
            end,
            frames,
            last_seq,
            sha256: hex::encode(sha.finalize()),
            created_at: now,
        };
        let json = encode(&manifest);
        z.write_all(&json).map_err(io)?;
        z.write_all(&(json.len() as u32).to_be_bytes())
            .map_err(io)?;
        let file = z.finish().map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, out).map_err(io)?;
        Ok(manifest)
    }

    /// Reads a backup file: its manifest and frames, checked against the
    /// manifest's SHA-256.
    fn read(from: &Path) -> Result<(Backup, Vec<u8>)> {
        let bad = |why: &str| {
            backup_error(format!(
                "{} is not a usable returnee-server backup: {why}",
                from.display()
            ))
        };
        let file = std::fs::File::open(from)
            .map_err(|e| backup_error(format!("cannot read {}: {e}", from.display())))?;
        let mut bytes = Vec::new();
        zstd::Decoder::new(file)
            .and_then(|mut d| d.read_to_end(&mut bytes))
            .map_err(|e| bad(&format!("it does not decompress ({e})")))?;
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("it does not start as a backup does"))?;
        let n = body.len();
        let len = body
            .get(n.saturating_sub(4)..)
            .filter(|_| n >= 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| bad("it is cut short"))?;
        let json_at = (n - 4)
            .checked_sub(len)
            .ok_or_else(|| bad("it is cut short"))?;
        let manifest: Backup = serde_json::from_slice(&body[json_at..n - 4])
            .map_err(|_| bad("its manifest does not read"))?;
        if manifest.version != BACKUP_VERSION || manifest.store_format != FORMAT {
            return Err(bad(&format!(
                "it is of backup version {} and store format {}, this server reads {BACKUP_VERSION} and {FORMAT}",
                manifest.version, manifest.store_format
            )));
        }
        let frames = &body[..json_at];
        if hex::encode(Sha256::digest(frames)) != manifest.sha256 {
            return Err(bad(
                "its SHA-256 does not match its manifest (the file was altered or damaged)",
            ));
        }
        Ok((manifest, frames.to_vec()))
    }

    /// Restores the backup `from` into `data_dir` (new or empty): its
    /// journal, then sled rebuilt from it, then the log's next position
    /// moved [`RESTORE_GAP`] on. Returns the manifest and the store, open.
    pub fn restore(from: &Path, data_dir: &Path) -> Result<(Backup, ServerStore)> {
        let (manifest, frames) = Self::read(from)?;
        if data_dir.exists()
            && std::fs::read_dir(data_dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(backup_error(format!(
                "{} is not empty; restore into a new folder",
                data_dir.display()
            )));
        }
        let dir = journaled::journal_dir(data_dir);
        if manifest.start != 0 {
            return Err(backup_error(
                "the backup does not start at the journal's beginning".into(),
            ));
        }
        let (mut journal, _) = Journal::open(&dir, Options::default())?;
        journal.append_encoded(&frames)?;
        journal.sync()?;
        drop(journal);
        let (journal, recovery) = Journal::open(&dir, Options::default())?;
        if recovery.cut.is_some() || journal.end() != manifest.end {
            return Err(backup_error(format!(
                "{} holds frames that do not read back; it is damaged",
                from.display()
            )));
        }
        drop(journal);
        let store = ServerStore::open(data_dir)?;
        store.skip_positions(RESTORE_GAP)?;
        Ok((manifest, store))
    }
}
