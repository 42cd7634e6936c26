//! The operation log: entries in chunks of up to [`CHUNK_ENTRIES`] under
//! `l/<seq>` (see the store's module docs for an entry's bytes), written
//! whole by a push and never rewritten; and reading an operation back from
//! the chunk and offset a record entry names.

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

/// Entries per log chunk: few enough that reading one operation back (a
/// record's history, on a later push) reads a small value, many enough that
/// a large push writes one key per chunk rather than per operation. Larger
/// chunks write a push's log a little faster but cost the server memory
/// while it serves a full pull (sled keeps whole pages of chunks in
/// memory). Chunks of any size read back, so the figure can change.
pub(super) const CHUNK_ENTRIES: usize = 4;
/// ... and bytes per chunk (give or take one entry): sled writes a page of
/// more than 128 KB to a file of its own at every rewrite, and a page holds
/// up to 16 keys (see `returnee_shared::packs::PACK_BYTES`).
pub(super) const CHUNK_BYTES: usize = returnee_shared::packs::PACK_BYTES;

/// Where an entry sits in the log: the first position of its chunk and its
/// byte offset in the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogPos {
    pub(super) chunk: u64,
    pub(super) offset: u32,
}

/// Lays the entries of one push out in new chunks, staged into a batch.
pub(super) struct LogWriter {
    /// The position the next entry gets.
    pub(super) next: u64,
    pub(super) first: u64,
    pub(super) count: usize,
    pub(super) chunk: Vec<u8>,
}

impl LogWriter {
    pub(super) fn after(last: u64) -> Self {
        LogWriter {
            next: last + 1,
            first: last + 1,
            count: 0,
            chunk: Vec::new(),
        }
    }

    pub(super) fn append(&mut self, batch: &mut sled::Batch, entry: LogEntry<'_>) -> LogPos {
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
    pub(super) fn finish(&mut self, batch: &mut sled::Batch) {
        if self.count > 0 {
            batch.insert(log_key(self.first), std::mem::take(&mut self.chunk));
            self.count = 0;
        }
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

/// The entry at `offset` of a chunk.
pub(super) fn entry_at(chunk: &[u8], offset: u32) -> Option<(usize, &[u8])> {
    chunk_entries(chunk.get(offset as usize..)?)
        .next()
        .map(|(_, e)| (offset as usize + 4, e))
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

pub(super) fn seq_of_log_key(k: &[u8]) -> u64 {
    u64::from_be_bytes(k[2..10].try_into().expect("8-byte log position"))
}

/// Log chunks read while loading records: a record's operations often sit
/// in the same chunk, and one push touches many records of few chunks.
#[derive(Default)]
pub(super) struct ChunkCache {
    pub(super) chunks: std::collections::HashMap<u64, sled::IVec>,
}

impl ChunkCache {
    /// The JSON of the operation logged at `pos` (`None` if it is not an operation).
    pub(super) fn op_json(&mut self, db: &sled::Db, pos: LogPos) -> Result<Option<sled::IVec>> {
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
