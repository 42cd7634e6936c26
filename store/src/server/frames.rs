//! The server's journal frames (`crate::journal`): what the operation log
//! and every other write that is not derived from it look like on disk.
//!
//! A frame's payload: a version byte ([`FRAME_VERSION`]), the log position
//! of its first entry (8 bytes BE), the length of its entries (4 bytes BE),
//! the entries (each its length, 4 bytes BE, then the entry as the store's
//! module docs describe it), then the key-value writes that go with them
//! (a count, 4 bytes BE, then per write: key length 4 bytes BE, key, 1 for
//! a value or 0 for a removal, value length 4 bytes BE, value). A push is
//! one frame (its entries, and its audit entry as writes); enrolling,
//! minting a code, revoking and exporting are frames of writes alone.
//!
//! A record entry names an operation by the position of its frame in the
//! journal and the offset of its entry in the frame's entries ([`LogPos`]).

use super::*;

pub(super) const FRAME_VERSION: u8 = 1;
/// Bytes of a frame's payload before its entries.
pub(super) const ENTRIES_AT: usize = 13;

/// Key-value writes to the store's tree, kept in order so that they can be
/// both journaled and applied.
#[derive(Default)]
pub(super) struct Writes {
    pub(super) writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Writes {
    pub(super) fn insert(&mut self, k: impl Into<Vec<u8>>, v: Vec<u8>) {
        self.writes.push((k.into(), Some(v)));
    }

    pub(super) fn remove(&mut self, k: impl Into<Vec<u8>>) {
        self.writes.push((k.into(), None));
    }

    pub(super) fn stage(&self, batch: &mut sled::Batch) {
        for (k, v) in &self.writes {
            match v {
                Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                None => batch.remove(k.as_slice()),
            }
        }
    }
}

/// A frame's payload from its parts.
#[cfg(test)]
pub(super) fn encode_frame(first: u64, entries: &[u8], writes: &Writes) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame_len(entries, writes));
    encode_frame_into(&mut out, first, entries, writes);
    out
}

/// The bytes of a frame's payload with these parts.
pub(super) fn frame_len(entries: &[u8], writes: &Writes) -> usize {
    let kv: usize = writes
        .writes
        .iter()
        .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum();
    ENTRIES_AT + entries.len() + 4 + kv
}

/// Appends a frame's payload from its parts to `out`.
pub(super) fn encode_frame_into(out: &mut Vec<u8>, first: u64, entries: &[u8], writes: &Writes) {
    out.push(FRAME_VERSION);
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(entries);
    out.extend_from_slice(&(writes.writes.len() as u32).to_be_bytes());
    for (k, v) in &writes.writes {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        out.push(v.is_some() as u8);
        let v = v.as_deref().unwrap_or_default();
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }
}

/// A frame's payload, read: the log position of its first entry, its
/// entries' bytes (see [`chunk_entries`]) and its writes.
pub(super) struct Frame<'a> {
    pub(super) first: u64,
    pub(super) entries: &'a [u8],
    pub(super) writes: Writes,
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = (b.get(..n)?, b.get(n..)?);
    *b = rest;
    Some(head)
}

fn take_u32(b: &mut &[u8]) -> Option<usize> {
    Some(u32::from_be_bytes(take(b, 4)?.try_into().ok()?) as usize)
}

impl<'a> Frame<'a> {
    pub(super) fn parse(payload: &'a [u8]) -> Result<Frame<'a>> {
        Self::parse_opt(payload).ok_or_else(|| damaged("a journal frame of the server's"))
    }

    fn parse_opt(payload: &'a [u8]) -> Option<Frame<'a>> {
        let mut b = payload;
        if take(&mut b, 1)? != [FRAME_VERSION] {
            return None;
        }
        let first = u64::from_be_bytes(take(&mut b, 8)?.try_into().ok()?);
        let n = take_u32(&mut b)?;
        let entries = take(&mut b, n)?;
        let count = take_u32(&mut b)?;
        let mut writes = Writes::default();
        for _ in 0..count {
            let kl = take_u32(&mut b)?;
            let k = take(&mut b, kl)?.to_vec();
            let present = take(&mut b, 1)?[0] == 1;
            let vl = take_u32(&mut b)?;
            let v = take(&mut b, vl)?.to_vec();
            writes.writes.push((k, present.then_some(v)));
        }
        Some(Frame {
            first,
            entries,
            writes,
        })
    }

    /// The number of log entries.
    pub(super) fn count(&self) -> u64 {
        chunk_entries(self.entries).count() as u64
    }
}
