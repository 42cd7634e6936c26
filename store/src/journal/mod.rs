//! An append-only journal: segment files of length-prefixed, CRC-checked
//! frames, the source of truth that a store's sled projections are rebuilt
//! from. Generic: it knows nothing of what a frame holds.
//!
//! On disk, a directory of segments named by the position of their first
//! frame (`00000000000000000000.journal`, 20 decimal digits). A segment is a
//! 16-byte header (`RTNJ`, a version byte, three zero bytes, its first
//! position as 8 bytes little-endian), then frames: payload length (4 bytes
//! LE), CRC-32 of the length bytes and the payload (4 bytes LE), payload.
//!
//! Positions are byte positions in the stream of frames across segments
//! (headers not counted): a frame's position is where it starts, and
//! [`Journal::end`] is where the next one will. They only grow, so a store
//! can record "my projection includes the journal up to P" as one number.
//!
//! Durability: [`Journal::append`] writes to the OS; [`Journal::sync`] (or a
//! [`SyncPoint`] taken under a lock and synced outside it, for group commit)
//! makes everything appended before it durable. Acknowledge nothing before.
//!
//! Damage: at [`Journal::open`], the last segment is scanned. A frame cut
//! short by a crash (its header or payload runs past the end of the file),
//! or a last frame whose CRC fails with nothing valid after it, is a torn
//! tail: it is cut, and the cut reported ([`Recovery`]). Anything else that
//! fails its check (a bad frame followed by a good one, or any bad frame in
//! an earlier segment) is damage: [`JournalError::Damaged`] names the
//! segment file and byte offset, and nothing is cut.
//!
//! An outbox (a laptop's unsent operations) drops what the server has
//! acknowledged with [`Journal::drop_before`], whole segments at a time.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

mod read;
mod rewrite;
#[cfg(test)]
mod tests;

pub use read::{Frames, Reader, snapshot, verify};

/// Bytes before the first frame of a segment.
pub const HEADER: u64 = 16;
/// Bytes before a frame's payload (length, CRC).
pub const FRAME_HEADER: u64 = 8;
const MAGIC: &[u8; 4] = b"RTNJ";
const VERSION: u8 = 1;
/// The largest payload a frame may hold; a length beyond it is damage (or,
/// at the tail, a torn header).
pub const MAX_FRAME: u32 = 1 << 30;
const SUFFIX: &str = "journal";

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the journal is damaged in {segment} at byte {offset} ({reason}), before its last complete frame; restore the data directory from a backup"
    )]
    Damaged {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("position {0} is not the start of a frame of this journal")]
    BadPosition(u64),
    #[error("a frame of {0} bytes is larger than a journal frame may be")]
    TooLarge(usize),
}

pub type Result<T, E = JournalError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How a journal is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A new segment starts once the current one holds this many bytes.
    pub segment_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What [`Journal::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments found.
    pub segments: usize,
    /// The torn tail cut off, if there was one.
    pub cut: Option<Cut>,
}

/// A torn tail cut at open: the bytes after the last complete frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub segment: PathBuf,
    /// Byte offset in the segment file where the cut was made.
    pub offset: u64,
    /// Bytes cut.
    pub bytes: u64,
    /// Journal position of the cut (the new end).
    pub position: u64,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cut a torn tail of {} bytes from {} at byte {} (journal position {})",
            self.bytes,
            self.segment.display(),
            self.offset,
            self.position
        )
    }
}

#[derive(Debug, Clone)]
struct Segment {
    base: u64,
    path: PathBuf,
}

/// An open journal: appends go to its last segment.
pub struct Journal {
    dir: PathBuf,
    opts: Options,
    segments: Vec<Segment>,
    reader: Reader,
    file: File,
    /// Bytes of frames in the last segment.
    len: u64,
    /// Everything before this position is durable.
    synced: u64,
}

fn segment_name(base: u64) -> String {
    format!("{base:020}.{SUFFIX}")
}

fn header(base: u64) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[8..].copy_from_slice(&base.to_le_bytes());
    h
}

fn crc(len: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// Appends one frame of `payload` to `out` (what [`Journal::append`] writes).
pub fn encode_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc(&len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// How the frame at the start of `bytes` checks.
enum Check {
    Ok(usize),
    /// Runs past the end of `bytes`.
    Short,
    Bad(&'static str),
}

fn check(bytes: &[u8]) -> Check {
    if bytes.len() < FRAME_HEADER as usize {
        return Check::Short;
    }
    let len: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
    let n = u32::from_le_bytes(len);
    if n > MAX_FRAME {
        return Check::Bad("a frame length beyond the largest frame");
    }
    let end = FRAME_HEADER as usize + n as usize;
    if bytes.len() < end {
        return Check::Short;
    }
    let want = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if crc(&len, &bytes[FRAME_HEADER as usize..end]) != want {
        return Check::Bad("a frame whose checksum does not match");
    }
    Check::Ok(end)
}

/// The frames of one segment's bytes (after its header): the length of its
/// valid prefix, and, if that is not all of it, whether what follows is
/// a torn tail (`Ok`) or damage (`Err(reason)`), at that offset.
fn scan(body: &[u8]) -> (usize, Option<Result<(), &'static str>>) {
    let mut at = 0;
    while at < body.len() {
        let reason = match check(&body[at..]) {
            Check::Ok(n) => {
                at += n;
                continue;
            }
            Check::Short => "a frame cut short",
            Check::Bad(reason) => reason,
        };
        // Damage if a complete, valid frame follows the bad one somewhere
        // (a flipped bit in a length, say): a crash tears only what was
        // written last, and cutting there would lose acknowledged frames.
        let torn = !(at + 1..body.len())
            .any(|next| matches!(check(&body[next..]), Check::Ok(n) if n > FRAME_HEADER as usize));
        return (at, Some(if torn { Ok(()) } else { Err(reason) }));
    }
    (at, None)
}

fn read_segment(seg: &Segment) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(&seg.path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(&seg.path))?;
    if bytes.len() < HEADER as usize
        || &bytes[..4] != MAGIC
        || bytes[4] != VERSION
        || bytes[8..16] != seg.base.to_le_bytes()
    {
        return Err(JournalError::Damaged {
            segment: seg.path.clone(),
            offset: 0,
            reason: "its header is not a journal segment's of this version".into(),
        });
    }
    Ok(bytes)
}

fn list(dir: &Path) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(base) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX)?.strip_suffix('.'))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push(Segment {
            base,
            path: entry.path(),
        });
    }
    segments.sort_by_key(|s| s.base);
    Ok(segments)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn create_segment(dir: &Path, base: u64) -> Result<(Segment, File)> {
    let path = dir.join(segment_name(base));
    let mut options = OpenOptions::new();
    options.create(true).truncate(true).read(true).write(true);
    // Frames may hold personal data: the owner's only (Unix).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io(&path))?;
    file.write_all(&header(base)).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))?;
    sync_dir(dir)?;
    Ok((Segment { base, path }, file))
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, cutting a torn tail.
    pub fn open(dir: &Path, opts: Options) -> Result<(Journal, Recovery)> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut segments = list(dir)?;
        rewrite::settle(dir, &segments)?;
        if segments.is_empty() {
            let (seg, file) = create_segment(dir, 0)?;
            let reader = Reader::of(std::slice::from_ref(&seg))?;
            let journal = Journal {
                dir: dir.to_path_buf(),
                opts,
                reader,
                segments: vec![seg],
                file,
                len: 0,
                synced: 0,
            };
            return Ok((
                journal,
                Recovery {
                    segments: 1,
                    cut: None,
                },
            ));
        }
        let last = segments.last().expect("one at least").clone();
        // A crash while a segment was created can leave its header short.
        let short = std::fs::metadata(&last.path).map_err(io(&last.path))?.len();
        if short < HEADER {
            create_segment(dir, last.base)?;
        }
        let bytes = read_segment(&last)?;
        let body = &bytes[HEADER as usize..];
        let (valid, rest) = scan(body);
        let mut cut = (short < HEADER).then(|| Cut {
            segment: last.path.clone(),
            offset: 0,
            bytes: short,
            position: last.base,
        });
        match rest {
            None => {}
            Some(Err(reason)) => {
                return Err(JournalError::Damaged {
                    segment: last.path.clone(),
                    offset: HEADER + valid as u64,
                    reason: reason.into(),
                });
            }
            Some(Ok(())) => {
                cut = Some(Cut {
                    segment: last.path.clone(),
                    offset: HEADER + valid as u64,
                    bytes: (body.len() - valid) as u64,
                    position: last.base + valid as u64,
                });
            }
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&last.path)
            .map_err(io(&last.path))?;
        if cut.is_some() {
            file.set_len(HEADER + valid as u64)
                .and_then(|_| file.sync_all())
                .map_err(io(&last.path))?;
        }
        file.seek(SeekFrom::Start(HEADER + valid as u64))
            .map_err(io(&last.path))?;
        // Segments are contiguous: a gap means one went missing.
        for pair in segments.windows(2) {
            let len = std::fs::metadata(&pair[0].path)
                .map_err(io(&pair[0].path))?
                .len();
            if pair[0].base + len.saturating_sub(HEADER) != pair[1].base {
                return Err(JournalError::Damaged {
                    segment: pair[1].path.clone(),
                    offset: 0,
                    reason: "the segment before it is missing or of the wrong length".into(),
                });
            }
        }
        let end = last.base + valid as u64;
        let count = segments.len();
        segments.last_mut().expect("one at least").path = last.path;
        let reader = Reader::of(&segments)?;
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                opts,
                reader,
                segments,
                file,
                len: valid as u64,
                synced: end,
            },
            Recovery {
                segments: count,
                cut,
            },
        ))
    }

    /// The directory of its segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The position the next frame will get.
    pub fn end(&self) -> u64 {
        self.segments.last().expect("one at least").base + self.len
    }

    /// The position of the first frame still held (after [`Journal::drop_before`]).
    pub fn start(&self) -> u64 {
        self.segments[0].base
    }

    /// Everything before this position is durable.
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// The segment files, oldest first, with the position each begins at.
    pub fn segment_files(&self) -> Vec<(u64, PathBuf)> {
        self.segments
            .iter()
            .map(|s| (s.base, s.path.clone()))
            .collect()
    }

    /// Appends a frame (not yet durable: see [`Journal::sync`]); returns its
    /// position.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64> {
        let mut frame = Vec::with_capacity(payload.len() + FRAME_HEADER as usize);
        if payload.len() > MAX_FRAME as usize {
            return Err(JournalError::TooLarge(payload.len()));
        }
        encode_frame(&mut frame, payload);
        self.append_encoded(&frame)
    }

    /// Appends a frame whose payload `write` puts after the header's place
    /// in the buffer it is given (at most about `len` bytes, the capacity
    /// it starts with): the payload is not copied again.
    pub fn append_with(&mut self, len: usize, write: impl FnOnce(&mut Vec<u8>)) -> Result<u64> {
        let header = FRAME_HEADER as usize;
        let mut frame = Vec::with_capacity(header + len);
        frame.resize(header, 0);
        write(&mut frame);
        let n = frame.len() - header;
        if n > MAX_FRAME as usize {
            return Err(JournalError::TooLarge(n));
        }
        let n = (n as u32).to_le_bytes();
        let sum = crc(&n, &frame[header..]);
        frame[..4].copy_from_slice(&n);
        frame[4..header].copy_from_slice(&sum.to_le_bytes());
        self.append_encoded(&frame)
    }

    /// Appends frames already encoded with [`encode_frame`] (one write);
    /// returns the position of the first.
    pub fn append_encoded(&mut self, frames: &[u8]) -> Result<u64> {
        if self.len >= self.opts.segment_bytes {
            self.roll()?;
        }
        let at = self.end();
        let path = &self.segments.last().expect("one at least").path;
        if let Err(source) = self.file.write_all(frames) {
            // Leave no half frame behind for the next append to follow.
            let _ = self.file.set_len(HEADER + self.len);
            let _ = self.file.seek(SeekFrom::Start(HEADER + self.len));
            return Err(JournalError::Io {
                path: path.clone(),
                source,
            });
        }
        self.len += frames.len() as u64;
        Ok(at)
    }

    /// Starts a new segment, the current one made durable first.
    fn roll(&mut self) -> Result<()> {
        let path = self.segments.last().expect("one at least").path.clone();
        self.file.sync_data().map_err(io(&path))?;
        let base = self.end();
        let (seg, file) = create_segment(&self.dir, base)?;
        self.reader.push(&seg)?;
        self.segments.push(seg);
        self.file = file;
        self.len = 0;
        self.synced = self.synced.max(base);
        Ok(())
    }

    /// Makes every frame appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        let point = self.sync_point()?;
        self.synced = point.sync()?;
        Ok(())
    }

    /// What [`SyncPoint::sync`] needs to make the frames appended so far
    /// durable without holding the journal: take it under the lock that
    /// guards the journal, sync after releasing it, then tell the journal
    /// with [`Journal::mark_synced`]. Appends made meanwhile may be synced
    /// too, but only what was appended before the point is promised.
    pub fn sync_point(&self) -> Result<SyncPoint> {
        let path = self.segments.last().expect("one at least").path.clone();
        let file = self.file.try_clone().map_err(io(&path))?;
        Ok(SyncPoint {
            file,
            path,
            end: self.end(),
        })
    }

    /// Records that a [`SyncPoint`] up to `end` was synced.
    pub fn mark_synced(&mut self, end: u64) {
        self.synced = self.synced.max(end);
    }

    /// A reader of frames at known positions, shared between threads, that
    /// follows this journal's segments as they roll over.
    pub fn reader(&self) -> Reader {
        self.reader.clone()
    }

    /// Reads the frames from position `from` (a frame's start) onwards, up
    /// to the end when the reader was made.
    pub fn frames_from(&self, from: u64) -> Result<Frames> {
        Frames::new(self.segments.clone(), from, self.end())
    }

    /// Drops the segments whose every frame lies before `pos` (what an
    /// outbox does once the server acknowledged them). The segment being
    /// written is kept: an outbox wholly acknowledged is emptied by
    /// [`Journal::reset`].
    pub fn drop_before(&mut self, pos: u64) -> Result<usize> {
        let mut dropped = 0;
        while self.segments.len() > 1 && self.segments[1].base <= pos {
            let seg = self.segments.remove(0);
            self.reader.drop_first();
            std::fs::remove_file(&seg.path).map_err(io(&seg.path))?;
            dropped += 1;
        }
        if dropped > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(dropped)
    }

    /// Drops every frame: a new, empty segment starts at the current end, so
    /// positions keep growing.
    pub fn reset(&mut self) -> Result<()> {
        self.sync()?;
        let base = self.end();
        if self.len > 0 {
            let (seg, file) = create_segment(&self.dir, base)?;
            self.reader.push(&seg)?;
            self.segments.push(seg);
            self.file = file;
            self.len = 0;
        }
        self.drop_before(base)?;
        Ok(())
    }

    /// Cuts the journal back to `pos` (a frame boundary of the last segment):
    /// what a restore to an earlier position does.
    pub fn truncate(&mut self, pos: u64) -> Result<()> {
        let last = self.segments.last().expect("one at least");
        if pos < last.base || pos > self.end() {
            return Err(JournalError::BadPosition(pos));
        }
        let path = last.path.clone();
        self.len = pos - last.base;
        self.file
            .set_len(HEADER + self.len)
            .and_then(|_| self.file.sync_all())
            .and_then(|_| {
                self.file
                    .seek(SeekFrom::Start(HEADER + self.len))
                    .map(|_| ())
            })
            .map_err(io(&path))?;
        self.synced = self.synced.min(pos);
        Ok(())
    }
}

/// A promise to make a journal durable up to a position, kept by
/// [`SyncPoint::sync`] without the journal's lock (see [`Journal::sync_point`]).
pub struct SyncPoint {
    file: File,
    path: PathBuf,
    end: u64,
}

impl SyncPoint {
    /// The position everything before which will be durable.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Syncs; returns [`SyncPoint::end`].
    pub fn sync(self) -> Result<u64> {
        self.file.sync_data().map_err(io(&self.path))?;
        Ok(self.end)
    }
}
