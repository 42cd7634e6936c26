//! Writing over frames in place (an erasure's: PROTOCOL.md, "Erasure").
//!
//! An append-only journal keeps every byte it was given; erasing a
//! family's personal data must not. A frame is rewritten with a payload of
//! exactly its length, so that every position in the journal (and every
//! position a store's index holds) stays valid, and the old bytes are
//! overwritten where they lie rather than left in a file that was
//! replaced.
//!
//! Crash safety: a frame half overwritten fails its checksum, and the
//! journal would refuse to open. So the new frames are first written,
//! checked and synced to a redo file (`rewrite.pending`) beside the
//! segments; then written over the old ones and synced; then the redo file
//! is removed. [`settle`], at open, applies a complete redo file again (the
//! writes are idempotent) and drops a torn one (nothing was overwritten
//! before it was complete). The redo file holds the new payloads only.

use std::os::unix::fs::FileExt;

use super::*;

const PENDING: &str = "rewrite.pending";
const MAGIC: &[u8; 4] = b"RTNR";

fn encode_pending(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    for (pos, payload) in frames {
        out.extend_from_slice(&pos.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
    }
    let sum = crc32fast::hash(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The frames of a complete redo file; `None` for a torn one.
fn decode_pending(bytes: &[u8]) -> Option<Vec<(u64, Vec<u8>)>> {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(4)?);
    if crc32fast::hash(body) != u32::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let mut b = body.strip_prefix(MAGIC.as_slice())?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        b = rest;
        Some(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let mut frames = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let pos = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        frames.push((pos, take(n)?.to_vec()));
    }
    Some(frames)
}

/// Writes `frames` over the frames at their positions, each checked to be
/// of the same length, and syncs the segments touched.
fn overwrite(segments: &[Segment], frames: &[(u64, Vec<u8>)]) -> Result<()> {
    let mut touched: Vec<(PathBuf, File)> = Vec::new();
    for (pos, payload) in frames {
        let seg = segments
            .iter()
            .rev()
            .find(|s| s.base <= *pos)
            .ok_or(JournalError::BadPosition(*pos))?;
        let i = match touched.iter().position(|(p, _)| *p == seg.path) {
            Some(i) => i,
            None => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&seg.path)
                    .map_err(io(&seg.path))?;
                touched.push((seg.path.clone(), file));
                touched.len() - 1
            }
        };
        let (path, file) = &touched[i];
        let at = HEADER + pos - seg.base;
        let mut len = [0u8; 4];
        file.read_exact_at(&mut len, at).map_err(io(path))?;
        if u32::from_le_bytes(len) as usize != payload.len() {
            return Err(JournalError::BadPosition(*pos));
        }
        let mut frame = Vec::with_capacity(FRAME_HEADER as usize + payload.len());
        encode_frame(&mut frame, payload);
        file.write_all_at(&frame, at).map_err(io(path))?;
    }
    for (path, file) in &touched {
        file.sync_data().map_err(io(path))?;
    }
    Ok(())
}

/// Finishes a rewrite a crash interrupted (see the module docs). Called
/// at open, before the last segment is scanned.
pub(super) fn settle(dir: &Path, segments: &[Segment]) -> Result<()> {
    let path = dir.join(PENDING);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&path)(e)),
    };
    if let Some(frames) = decode_pending(&bytes) {
        overwrite(segments, &frames)?;
    }
    std::fs::remove_file(&path).map_err(io(&path))?;
    sync_dir(dir)
}

impl Journal {
    /// Writes each `(position, payload)` over the frame at that position,
    /// in place: each payload must be exactly as long as the frame's (pad
    /// it). Durable when this returns; a crash on the way leaves either
    /// every old frame or every new one (see the module docs).
    pub fn rewrite_in_place(&mut self, frames: &[(u64, Vec<u8>)]) -> Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let end = self.end();
        if let Some((pos, _)) = frames.iter().find(|(pos, _)| *pos >= end) {
            return Err(JournalError::BadPosition(*pos));
        }
        // What is being overwritten must be on disk first, or a later sync
        // could put the old bytes back over the new.
        self.sync()?;
        let path = self.dir.join(PENDING);
        let mut options = OpenOptions::new();
        options.create(true).truncate(true).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io(&path))?;
        file.write_all(&encode_pending(frames))
            .and_then(|_| file.sync_all())
            .map_err(io(&path))?;
        sync_dir(&self.dir)?;
        overwrite(&self.segments, frames)?;
        std::fs::remove_file(&path).map_err(io(&path))?;
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(dir: &Path) -> Vec<(u64, Vec<u8>)> {
        let (j, _) = Journal::open(dir, Options::default()).unwrap();
        j.frames_from(0).unwrap().map(|f| f.unwrap()).collect()
    }

    #[test]
    fn a_frame_is_rewritten_in_place_and_positions_hold() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
        let a = j.append(b"first frame, secret name Zarghona").unwrap();
        let b = j.append(b"second frame").unwrap();
        j.rewrite_in_place(&[(a, b"first frame,                     ".to_vec())])
            .unwrap();
        let c = j.append(b"third").unwrap();
        assert_eq!(j.reader().read_frame(b).unwrap().0, b"second frame");
        drop(j);
        let frames = frames_of(dir.path());
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].0, a);
        assert_eq!(frames[2].0, c);
        let raw = std::fs::read(dir.path().join(segment_name(0))).unwrap();
        assert!(!raw.windows(8).any(|w| w == b"Zarghona"));
        assert!(!dir.path().join(PENDING).exists());
        let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
        assert!(matches!(
            j.rewrite_in_place(&[(a, b"too short".to_vec())]),
            Err(JournalError::BadPosition(_))
        ));
    }

    #[test]
    fn a_rewrite_cut_short_by_a_crash_is_finished_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
        let a = j.append(b"keep this one").unwrap();
        let b = j.append(b"name: Zarghona").unwrap();
        j.sync().unwrap();
        drop(j);
        let new = b"name:         ".to_vec();
        // The redo file was written, and the crash tore the overwrite: half
        // the new frame, so its checksum fails.
        std::fs::write(
            dir.path().join(PENDING),
            encode_pending(&[(b, new.clone())]),
        )
        .unwrap();
        let seg = dir.path().join(segment_name(0));
        let file = OpenOptions::new().write(true).open(&seg).unwrap();
        file.write_all_at(b"name:    ", HEADER + b + FRAME_HEADER)
            .unwrap();
        let frames = frames_of(dir.path());
        assert_eq!(frames, vec![(a, b"keep this one".to_vec()), (b, new)]);
        assert!(!dir.path().join(PENDING).exists());
        // A torn redo file: dropped, the journal as it was.
        let mut torn = encode_pending(&[(a, b"XXXXXXXXXXXXX".to_vec())]);
        torn.truncate(torn.len() - 3);
        std::fs::write(dir.path().join(PENDING), torn).unwrap();
        assert_eq!(frames_of(dir.path())[0].1, b"keep this one");
    }
}
