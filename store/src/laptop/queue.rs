//! The push queue: the operations made on this laptop that the server has
//! not acknowledged yet, in the order they were made.
//!
//! `q/<seq>` holds the operations of one local write (at most
//! [`QUEUE_ENTRY_OPS`]: a large write is queued as several entries), each
//! as its record's id and its own id (16 bytes each), then its JSON (a
//! 4-byte length, then the bytes) as it is pushed, so that a push reads
//! nothing else. `qd/<seq>` counts the entry's leading operations already
//! acknowledged; `m/pending_seq` and `m/pending_count` are kept with every
//! change to the queue. Refused operations are held under `h/<op id>`.

use super::*;

/// Operations per queue entry at most: a large write (an import chunk) is
/// queued as several entries, because sled holds a node's values together
/// in memory, and entries of megabytes made a push of a million families
/// take a gigabyte.
pub(super) const QUEUE_ENTRY_OPS: usize = 64;

/// Where a queued operation sits: its queue entry (one per local write:
/// an `add`, an `edit`, a chunk of an import) and its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueRef {
    pub seq: u64,
    pub index: u32,
}

pub(super) fn queue_key(seq: u64) -> Vec<u8> {
    Kind::Queue.key(&[&seq.to_be_bytes()])
}
pub(super) fn queue_done_key(seq: u64) -> Vec<u8> {
    Kind::QueueDone.key(&[&seq.to_be_bytes()])
}

/// An operation waiting to be pushed: where it sits in the queue, and its
/// JSON as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedOp {
    pub at: QueueRef,
    pub record: RecordId,
    pub id: OpId,
    pub json: Vec<u8>,
}

/// A queue entry as stored, and how many of its leading operations are
/// already acknowledged.
pub(super) struct QueueEntry {
    pub(super) seq: u64,
    pub(super) done: usize,
    pub(super) value: sled::IVec,
}

/// One operation of a queue entry as stored: its record, its id, its JSON,
/// and the bytes of the whole item.
pub(super) struct QueueItem<'a> {
    pub(super) record: RecordId,
    pub(super) id: OpId,
    pub(super) json: &'a [u8],
    pub(super) raw: &'a [u8],
}

pub(super) fn damaged_queue() -> StoreError {
    damaged("an entry of the push queue does not read back")
}

/// The operations of a queue entry, in order.
pub(super) fn queue_items(v: &[u8]) -> Result<Vec<QueueItem<'_>>> {
    let ids = |b: &[u8]| {
        (
            RecordId(uuid::Uuid::from_slice(&b[..16]).expect("16 bytes")),
            OpId(uuid::Uuid::from_slice(&b[16..32]).expect("16 bytes")),
        )
    };
    let mut out = Vec::new();
    let mut rest = v;
    while !rest.is_empty() {
        let len = rest
            .get(32..36)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(damaged_queue)?;
        let (raw, tail) = rest.split_at_checked(36 + len).ok_or_else(damaged_queue)?;
        let (record, id) = ids(raw);
        out.push(QueueItem {
            record,
            id,
            json: &raw[36..],
            raw,
        });
        rest = tail;
    }
    if out.is_empty() {
        return Err(damaged_queue());
    }
    Ok(out)
}
impl LocalStore {
    /// How many operations wait to be pushed.
    pub fn pending_count(&self) -> Result<usize> {
        Ok(self.queue_len()? as usize)
    }

    /// The kept count of queued operations (every write to the queue keeps
    /// it; absent until the first).
    pub(super) fn queue_len(&self) -> Result<u64> {
        Ok(self.meta::<u64>(META_PENDING_COUNT)?.unwrap_or(0))
    }

    /// Counts the queued operations by reading the whole queue.
    #[cfg(test)]
    pub(super) fn count_queued(&self) -> Result<u64> {
        let mut n = 0;
        for entry in self.queue_entries() {
            let e = entry?;
            n += queue_items(&e.value)?.len().saturating_sub(e.done) as u64;
        }
        Ok(n)
    }

    /// The queue's entries, in order.
    pub(super) fn queue_entries(&self) -> impl Iterator<Item = Result<QueueEntry>> + '_ {
        self.queue_entries_from(0)
    }

    /// The queue's entries from the one numbered `first` on, in order.
    fn queue_entries_from(&self, first: u64) -> impl Iterator<Item = Result<QueueEntry>> + '_ {
        let seq = |k: &[u8]| u64::from_be_bytes(k[2..10].try_into().expect("8-byte seq"));
        let prefix = Kind::Queue.prefix();
        let scan = crate::db::weighed(&self.db, self.db.range(queue_key(first)..));
        scan.take_while(move |item| item.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .map(move |item| {
                let (k, value) = item?;
                let value = self.open_value(&k, value)?;
                let seq = seq(&k);
                Ok(QueueEntry {
                    seq,
                    done: self.queue_done(seq)?,
                    value,
                })
            })
    }

    /// How many leading operations of entry `seq` are acknowledged.
    pub(super) fn queue_done(&self, seq: u64) -> Result<usize> {
        Ok(match self.get_value(&queue_done_key(seq))? {
            Some(v) => {
                u32::from_be_bytes(v.as_ref().try_into().map_err(|_| damaged_queue())?) as usize
            }
            None => 0,
        })
    }

    /// The record of every operation waiting in the queue, in order.
    pub(super) fn queued_records(&self) -> Result<Vec<RecordId>> {
        let mut out = Vec::new();
        for entry in self.queue_entries() {
            let e = entry?;
            out.extend(
                queue_items(&e.value)?
                    .iter()
                    .skip(e.done)
                    .map(|item| item.record),
            );
        }
        Ok(out)
    }

    /// The oldest operations waiting to be pushed (at most `limit`), with
    /// where each sits in the queue.
    pub fn pending(&self, limit: usize) -> Result<Vec<QueuedOp>> {
        self.pending_after(None, limit)
    }

    /// The oldest operations waiting to be pushed after the one at `last`
    /// (all of them if `None`), at most `limit`: the batch a sync prepares
    /// while the one that ends at `last` is on its way. The queue is read
    /// from `last`'s entry on.
    pub fn pending_after(&self, last: Option<QueueRef>, limit: usize) -> Result<Vec<QueuedOp>> {
        let mut out = Vec::new();
        let first = last.map_or(0, |l| l.seq);
        'entries: for entry in self.queue_entries_from(first) {
            let e = entry?;
            let skip = match last {
                Some(l) if l.seq == e.seq => e.done.max(l.index as usize + 1),
                _ => e.done,
            };
            for (index, item) in queue_items(&e.value)?.into_iter().enumerate().skip(skip) {
                if out.len() >= limit {
                    break 'entries;
                }
                out.push(QueuedOp {
                    at: QueueRef {
                        seq: e.seq,
                        index: index as u32,
                    },
                    record: item.record,
                    id: item.id,
                    json: item.json.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// The server acknowledged these queued operations: drop them from the
    /// queue, holding the ones it refused with the reason. An entry whose
    /// leading operations are acknowledged only moves its mark (`qd/`); one
    /// acknowledged out of order keeps the rest, rewritten.
    pub fn acknowledge(&self, sent: &[QueuedOp], rejected: &[RejectedOp]) -> Result<()> {
        self.acknowledge_logged(sent, rejected, None)
    }

    /// [`LocalStore::acknowledge`], also moving the cursor over `logged`,
    /// the log positions the server gave these operations and nothing else
    /// ([`LoggedSpan::advance`]: only if the cursor stands just before them),
    /// in the same atomic write.
    ///
    /// Not flushed (a push saves a disk sync per batch): an acknowledgement
    /// a crash loses leaves its operations queued, the next sync sends them
    /// again, and the server recognises every one and changes nothing; a
    /// lost cursor move only means reading those positions again. The
    /// sync's last write flushes every acknowledgement before it.
    pub fn acknowledge_logged(
        &self,
        sent: &[QueuedOp],
        rejected: &[RejectedOp],
        logged: Option<LoggedSpan>,
    ) -> Result<()> {
        let lock = self.write_lock();
        let mut w = self.writes();
        if let Some(span) = logged {
            let cursor = self.cursor()?;
            let moved = span.advance(cursor);
            if moved != cursor {
                w.put(meta_key(META_CURSOR), &moved);
            }
        }
        let mut by_entry: std::collections::BTreeMap<u64, std::collections::BTreeSet<usize>> =
            Default::default();
        for q in sent {
            by_entry
                .entry(q.at.seq)
                .or_default()
                .insert(q.at.index as usize);
        }
        let mut removed = 0u64;
        for (seq, acked) in by_entry {
            let key = queue_key(seq);
            let Some(v) = self.get_value(&key)? else {
                continue;
            };
            let done = self.queue_done(seq)?;
            let items = queue_items(&v)?;
            removed += acked
                .iter()
                .filter(|i| **i >= done && **i < items.len())
                .count() as u64;
            let is_prefix = acked
                .iter()
                .enumerate()
                .all(|(i, index)| *index == done + i);
            if is_prefix && done + acked.len() < items.len() {
                let done = (done + acked.len()) as u32;
                w.put_bytes(queue_done_key(seq), done.to_be_bytes().to_vec());
                continue;
            }
            let rest: Vec<u8> = items
                .iter()
                .enumerate()
                .filter(|(i, _)| *i >= done && !acked.contains(i))
                .flat_map(|(_, item)| item.raw.iter().copied())
                .collect();
            if rest.is_empty() {
                w.remove(key);
            } else {
                w.put_bytes(key, rest);
            }
            w.remove(queue_done_key(seq));
        }
        if removed > 0 {
            let count = self.queue_len()?.saturating_sub(removed);
            w.put(meta_key(META_PENDING_COUNT), &count);
        }
        let mut frames = vec![(
            super::outbox::ACKED,
            sent.iter().flat_map(|q| *q.id.0.as_bytes()).collect(),
        )];
        for r in rejected {
            if let Some(q) = sent.iter().find(|q| q.id == r.op) {
                let op: Op = decode(&q.json)?;
                frames.push((super::outbox::REFUSED, encode(&(&op, r))));
                w.put(held_key(r.op), &(op, r));
            }
        }
        self.outbox_append(&frames, false)?;
        self.commit_unflushed(&lock, w)?;
        // Everything sent is acknowledged: the outbox starts again small.
        if self.queue_len()? == 0 {
            self.rewrite_outbox()?;
        }
        Ok(())
    }

    /// Operations the server refused, with the reason.
    pub fn held(&self) -> Result<Vec<(Op, RejectedOp)>> {
        self.scan_values(Kind::Held.prefix())
            .map(|item| decode(&item?.1))
            .collect()
    }

    /// The families whose creation the server refused: the server counts
    /// them nowhere, so neither does this laptop's report.
    pub fn refused_creations(&self) -> Result<std::collections::HashSet<RecordId>> {
        Ok(self
            .held()?
            .into_iter()
            .filter(|(op, _)| matches!(op.change, Change::Create { .. }))
            .map(|(op, _)| op.record)
            .collect())
    }
}
