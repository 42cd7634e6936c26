//! Reading a journal: random access to frames by position ([`Reader`]),
//! and frames in order from a position ([`Frames`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::*;

/// Random access to a journal's frames by position (a frame's start, or
/// any byte of one with [`Reader::read_at`]): cheap to clone, usable from
/// many threads while the journal appends.
#[derive(Clone)]
pub struct Reader {
    files: Arc<RwLock<Vec<OpenSegment>>>,
}

/// A segment open for reading: its first position, path and file.
type OpenSegment = (u64, PathBuf, Arc<File>);

impl Reader {
    pub(super) fn of(segments: &[Segment]) -> Result<Reader> {
        let reader = Reader {
            files: Arc::new(RwLock::new(Vec::new())),
        };
        for seg in segments {
            reader.push(seg)?;
        }
        Ok(reader)
    }

    pub(super) fn push(&self, seg: &Segment) -> Result<()> {
        let file = File::open(&seg.path).map_err(io(&seg.path))?;
        self.files
            .write()
            .expect("reader lock")
            .push((seg.base, seg.path.clone(), Arc::new(file)));
        Ok(())
    }

    pub(super) fn drop_first(&self) {
        self.files.write().expect("reader lock").remove(0);
    }

    /// Fills `buf` from journal position `pos` (within one segment).
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> Result<()> {
        let (base, path, file) = {
            let files = self.files.read().expect("reader lock");
            let i = files
                .iter()
                .rposition(|(base, _, _)| *base <= pos)
                .ok_or(JournalError::BadPosition(pos))?;
            files[i].clone()
        };
        file.read_exact_at(buf, HEADER + pos - base)
            .map_err(io(&path))
    }

    /// The payload of the frame at `pos`, checked, and the position after it.
    pub fn read_frame(&self, pos: u64) -> Result<(Vec<u8>, u64)> {
        let mut head = [0u8; FRAME_HEADER as usize];
        self.read_at(pos, &mut head)?;
        let n = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        if n > MAX_FRAME {
            return Err(self.damaged(pos, "a frame length beyond the largest frame"));
        }
        let mut frame = vec![0u8; FRAME_HEADER as usize + n as usize];
        self.read_at(pos, &mut frame)?;
        match check(&frame) {
            Check::Ok(_) => {}
            Check::Short => return Err(self.damaged(pos, "a frame cut short")),
            Check::Bad(reason) => return Err(self.damaged(pos, reason)),
        }
        frame.drain(..FRAME_HEADER as usize);
        Ok((frame, pos + FRAME_HEADER + n as u64))
    }

    fn damaged(&self, pos: u64, reason: &str) -> JournalError {
        let files = self.files.read().expect("reader lock");
        let (base, path) = files
            .iter()
            .rev()
            .find(|(base, _, _)| *base <= pos)
            .map(|(b, p, _)| (*b, p.clone()))
            .unwrap_or((0, PathBuf::new()));
        JournalError::Damaged {
            segment: path,
            offset: HEADER + pos - base,
            reason: reason.into(),
        }
    }
}

/// The frames of a journal from a position: `(position, payload)`, each
/// checked; damage is an error naming the segment and offset.
pub struct Frames {
    segments: Vec<Segment>,
    /// Index of the segment being read, its bytes and the offset in them.
    seg: usize,
    bytes: Vec<u8>,
    at: usize,
    pos: u64,
    end: u64,
    /// Whether an incomplete or unreadable frame in the last segment ends
    /// the frames rather than being damage (a journal being written to).
    pub(super) lenient_tail: bool,
}

impl Frames {
    pub(super) fn new(segments: Vec<Segment>, from: u64, end: u64) -> Result<Self> {
        let seg = segments
            .iter()
            .rposition(|s| s.base <= from)
            .ok_or(JournalError::BadPosition(from))?;
        let bytes = read_segment(&segments[seg])?;
        let at = (HEADER + from - segments[seg].base) as usize;
        if at > bytes.len() {
            return Err(JournalError::BadPosition(from));
        }
        Ok(Frames {
            segments,
            seg,
            bytes,
            at,
            pos: from,
            end,
            lenient_tail: false,
        })
    }

    /// The position after the last frame read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn next_frame(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        loop {
            if self.pos >= self.end {
                return Ok(None);
            }
            if self.at >= self.bytes.len() {
                if self.seg + 1 >= self.segments.len() {
                    return Ok(None);
                }
                self.seg += 1;
                self.bytes = read_segment(&self.segments[self.seg])?;
                self.at = HEADER as usize;
                continue;
            }
            let segment = &self.segments[self.seg];
            let checked = check(&self.bytes[self.at..]);
            if self.lenient_tail
                && self.seg + 1 == self.segments.len()
                && !matches!(checked, Check::Ok(_))
            {
                return Ok(None);
            }
            return match checked {
                Check::Ok(n) => {
                    let payload = self.bytes[self.at + FRAME_HEADER as usize..self.at + n].to_vec();
                    let pos = self.pos;
                    self.at += n;
                    self.pos += n as u64;
                    Ok(Some((pos, payload)))
                }
                Check::Short => Err(JournalError::Damaged {
                    segment: segment.path.clone(),
                    offset: self.at as u64,
                    reason: "a frame cut short".into(),
                }),
                Check::Bad(reason) => Err(JournalError::Damaged {
                    segment: segment.path.clone(),
                    offset: self.at as u64,
                    reason: reason.into(),
                }),
            };
        }
    }
}

impl Iterator for Frames {
    type Item = Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// Checks every frame of the journal in `dir` without changing anything
/// (open it first to cut a torn tail): the number of frames and the end
/// position, or the first damage, named by segment and offset.
pub fn verify(dir: &Path) -> Result<(u64, u64)> {
    let segments = list(dir)?;
    let Some(first) = segments.first() else {
        return Ok((0, 0));
    };
    let mut frames = Frames::new(segments.clone(), first.base, u64::MAX)?;
    let mut count = 0;
    for frame in &mut frames {
        frame?;
        count += 1;
    }
    Ok((count, frames.position()))
}

/// The complete frames of the journal in `dir` as they are now, read while
/// a process may be appending to it: the last segment's frames end at its
/// first incomplete or unreadable one (a frame being written). Damage in
/// an earlier segment is an error.
pub fn snapshot(dir: &Path) -> Result<Frames> {
    let segments = list(dir)?;
    let Some(first) = segments.first() else {
        return Err(JournalError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no journal segments"),
        });
    };
    let mut frames = Frames::new(segments.clone(), first.base, u64::MAX)?;
    frames.lenient_tail = true;
    Ok(frames)
}
