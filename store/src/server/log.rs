//! The operation log: a push's entries, in one journal frame
//! ([`super::frames`]; see the store's module docs for an entry's bytes),
//! found from a log position through `l/<seq>`; and reading an operation
//! back from the frame and offset a record entry names.

use super::*;

pub(super) const KIND_OP: u8 = b'o';
pub(super) const KIND_RESEND: u8 = b'r';
pub(super) const KIND_FORGET: u8 = b'f';

/// A log entry: device, kind, site tag, payload (written straight into
/// its chunk, see [`LogWriter::append`]).
#[derive(Clone, Copy)]
pub(super) struct LogEntry<'a> {
    pub(super) device: DeviceId,
    pub(super) kind: u8,
    pub(super) tag: &'a [u8],
    pub(super) payload: &'a [u8],
}

pub(super) fn log_entry<'a>(
    device: DeviceId,
    kind: u8,
    tag: &'a [u8],
    payload: &'a [u8],
) -> LogEntry<'a> {
    LogEntry {
        device,
        kind,
        tag: &tag[..tag.len().min(255)],
        payload,
    }
}

impl LogEntry<'_> {
    pub(super) fn len(&self) -> usize {
        18 + self.tag.len() + self.payload.len()
    }

    pub(super) fn write_into(&self, v: &mut Vec<u8>) {
        v.extend_from_slice(self.device.0.as_bytes());
        v.push(self.kind);
        v.push(self.tag.len() as u8);
        v.extend_from_slice(self.tag);
        v.extend_from_slice(self.payload);
    }
}

/// Where an entry sits in the log: the journal position of its frame
/// and its byte offset among the frame's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogPos {
    pub(super) chunk: u64,
    pub(super) offset: u32,
}

/// Lays the entries of one push out in its journal frame, which will sit
/// at journal position `frame`.
pub(super) struct LogWriter {
    /// The position the next entry gets.
    pub(super) next: u64,
    pub(super) first: u64,
    pub(super) frame: u64,
    pub(super) chunk: Vec<u8>,
}

impl LogWriter {
    pub(super) fn after(last: u64, frame: u64) -> Self {
        LogWriter {
            next: last + 1,
            first: last + 1,
            frame,
            chunk: Vec::new(),
        }
    }

    pub(super) fn append(&mut self, entry: LogEntry<'_>) -> LogPos {
        let pos = LogPos {
            chunk: self.frame,
            offset: self.chunk.len() as u32,
        };
        self.chunk
            .extend_from_slice(&(entry.len() as u32).to_be_bytes());
        entry.write_into(&mut self.chunk);
        self.next += 1;
        pos
    }

    /// The last position handed out.
    pub(super) fn last(&self) -> u64 {
        self.next - 1
    }
}

/// The entries of a log chunk, in order: (byte offset, entry).
pub(super) fn chunk_entries(chunk: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(chunk.get(at..at + 4)?.try_into().ok()?) as usize;
        let entry = chunk.get(at + 4..at + 4 + len)?;
        let offset = at;
        at += 4 + len;
        Some((offset, entry))
    })
}

/// The parts of a log entry: device bytes, kind, tag, payload offset.
pub(super) fn parse_log_entry(v: &[u8]) -> Option<(&[u8], u8, &[u8], usize)> {
    if v.len() < 18 {
        return None;
    }
    let tag_len = v[17] as usize;
    let payload = 18 + tag_len;
    (v.len() >= payload).then(|| (&v[..16], v[16], &v[18..payload], payload))
}

pub(super) fn log_key(seq: u64) -> Vec<u8> {
    Kind::Log.key(&seq.to_be_bytes())
}

/// Reads operations back from the journal by their [`LogPos`].
#[derive(Clone)]
pub(super) struct OpReader {
    pub(super) journal: crate::journal::Reader,
}

impl OpReader {
    /// The JSON of the operation logged at `pos` (`None` if it is not an operation).
    pub(super) fn op_json(&self, pos: LogPos) -> Result<Option<sled::IVec>> {
        let at = pos.chunk
            + crate::journal::FRAME_HEADER
            + frames::ENTRIES_AT as u64
            + pos.offset as u64;
        let mut len = [0u8; 4];
        self.journal
            .read_at(at, &mut len)
            .map_err(StoreError::Journal)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > crate::journal::MAX_FRAME as usize {
            return Err(damaged("a record names a log entry that is not there"));
        }
        let mut entry = vec![0u8; len];
        self.journal
            .read_at(at + 4, &mut entry)
            .map_err(StoreError::Journal)?;
        Ok(match parse_log_entry(&entry) {
            Some((_, KIND_OP, _, at)) => Some(sled::IVec::from(&entry[at..])),
            Some(_) => None,
            None => return Err(damaged("a log entry")),
        })
    }
}
