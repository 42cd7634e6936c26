//! A record's entry in the store (`p/` packs): its site tag, its report
//! row while it counts, whether it has open conflicts, and where each of
//! its operations sits in the log; and reading records back from it.

use super::*;

/// A record's entry (in the `p/` packs): its site tag (one length byte, then
/// the tag), its report row (a flag byte, then [`ReportRow::BYTES`] when
/// set), whether
/// it has open conflicts (one byte), then the log position of each of its
/// operations (8 + 4 bytes each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RecordEntry {
    pub(super) tag: Vec<u8>,
    pub(super) row: Option<[u8; ReportRow::BYTES]>,
    pub(super) has_conflicts: bool,
    pub(super) ops: Vec<LogPos>,
}

/// A log position as stored in an entry: chunk (8 bytes), offset (4).
const LOG_POS_BYTES: usize = 12;

impl RecordEntry {
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let tag = &self.tag[..self.tag.len().min(255)];
        let mut v =
            Vec::with_capacity(3 + tag.len() + ReportRow::BYTES + LOG_POS_BYTES * self.ops.len());
        v.push(tag.len() as u8);
        v.extend_from_slice(tag);
        match &self.row {
            Some(row) => {
                v.push(1);
                v.extend_from_slice(row);
            }
            None => v.push(0),
        }
        v.push(self.has_conflicts as u8);
        for p in &self.ops {
            v.extend_from_slice(&p.chunk.to_be_bytes());
            v.extend_from_slice(&p.offset.to_be_bytes());
        }
        v
    }

    pub(super) fn from_bytes(b: &[u8]) -> Option<Self> {
        let tag_len = *b.first()? as usize;
        let tag = b.get(1..1 + tag_len)?.to_vec();
        let mut at = 1 + tag_len;
        let row = match *b.get(at)? {
            0 => {
                at += 1;
                None
            }
            _ => {
                let row: [u8; ReportRow::BYTES] =
                    b.get(at + 1..at + 1 + ReportRow::BYTES)?.try_into().ok()?;
                at += 1 + ReportRow::BYTES;
                Some(row)
            }
        };
        let has_conflicts = *b.get(at)? != 0;
        at += 1;
        let rest = b.get(at..)?;
        if !rest.len().is_multiple_of(LOG_POS_BYTES) {
            return None;
        }
        let ops = rest
            .chunks_exact(LOG_POS_BYTES)
            .map(|p| LogPos {
                chunk: u64::from_be_bytes(p[..8].try_into().expect("8 bytes")),
                offset: u32::from_be_bytes(p[8..].try_into().expect("4 bytes")),
            })
            .collect();
        Some(RecordEntry {
            tag,
            row,
            has_conflicts,
            ops,
        })
    }

    /// The report row stored in an encoded entry, read without decoding the rest.
    pub(super) fn row_of(b: &[u8]) -> Option<&[u8]> {
        let tag_len = *b.first()? as usize;
        match *b.get(1 + tag_len)? {
            0 => None,
            _ => b.get(2 + tag_len..2 + tag_len + ReportRow::BYTES),
        }
    }
}

// ---------------------------------------------------------------------------
// Reading records back (the push path, and the duplicate index, which
// keeps its own tree and is updated after a push commits).

impl ServerStore {
    /// The sled database (the duplicate index opens its own tree in it):
    /// the one in use now, which an erasure's rewrite replaces
    /// ([`ServerStore::rewrite_index`]).
    pub(crate) fn db(&self) -> Arc<sled::Db> {
        self.db.read().expect("index lock").clone()
    }

    /// A record's operations, if the server holds any.
    pub fn record_doc(&self, id: RecordId) -> Result<Option<RecordDoc>> {
        let record = self.load_record(id)?;
        Ok(record.existed.then_some(record.doc))
    }

    /// The operations of each of `ids` (sorted, each once), in their order
    /// (`None`: a record the server does not hold): the index of places is
    /// read once for all of them, where [`ServerStore::record_doc`] reads it
    /// for each.
    pub fn record_docs_of(&self, ids: &[RecordId]) -> Result<Vec<Option<RecordDoc>>> {
        record_packs::get_many(&self.db(), ids)?
            .into_iter()
            .map(|entry| {
                let record = self.loaded(entry.as_deref())?;
                Ok(record.existed.then_some(record.doc))
            })
            .collect()
    }

    /// The id of every record the server holds, in the order records
    /// arrived, without reading their operations.
    pub fn record_ids(&self) -> impl Iterator<Item = Result<RecordId>> + '_ {
        record_packs::scan_held(self.db()).map(|item| item.map(|(id, _)| id))
    }

    /// Every record the server holds, with its operations, in the order records arrived.
    pub fn record_docs(&self) -> impl Iterator<Item = Result<(RecordId, RecordDoc)>> + '_ {
        record_packs::scan_held(self.db()).map(move |item| {
            let (id, v) = item?;
            let stored = RecordEntry::from_bytes(&v).ok_or_else(|| damaged("a record entry"))?;
            Ok((id, self.ops_at(&stored.ops)?))
        })
    }

    /// The operations at these log positions.
    pub(super) fn ops_at(&self, positions: &[LogPos]) -> Result<RecordDoc> {
        let mut doc = RecordDoc::default();
        for pos in positions {
            if let Some(json) = self.ops.op_json(*pos)? {
                doc.insert(decode(&json)?);
            }
        }
        Ok(doc)
    }

    /// A record's operations and its stored entry (empty if new).
    pub(super) fn load_record(&self, id: RecordId) -> Result<LoadedRecord> {
        self.loaded(record_packs::get(&self.db(), id)?.as_deref())
    }

    /// A record's operations and its stored entry, from that entry (`None`:
    /// a new record).
    pub(super) fn loaded(&self, entry: Option<&[u8]>) -> Result<LoadedRecord> {
        let stored = entry
            .map(|v| RecordEntry::from_bytes(v).ok_or_else(|| damaged("a record entry")))
            .transpose()?;
        Ok(match stored {
            Some(stored) => LoadedRecord {
                doc: self.ops_at(&stored.ops)?,
                stored,
                existed: true,
                changed: false,
            },
            None => LoadedRecord {
                doc: RecordDoc::default(),
                stored: RecordEntry::default(),
                existed: false,
                changed: false,
            },
        })
    }
}
