//! What a worker does with the operations the server refused (`h/<op id>`,
//! see [`super::queue`]): send them again once the cause is fixed, or drop
//! one for good.
//!
//! A retry moves the held operation back into the push queue (a new queue
//! entry, its JSON as first sent), so the next sync pushes it again; the
//! server, which never logged a refused operation, takes it as new. A
//! discard removes the held operation and the operation itself from its
//! record (a family created only by it disappears from this laptop), in
//! one atomic, flushed batch; the caller writes the line of the local log
//! of what was dropped ([`DISCARD_LOG`]).

use std::collections::HashSet;

use super::*;

/// The file in the store's folder that lists what was discarded: one line
/// per operation (time, family id, operation id, the server's reason), no
/// value of the family.
pub const DISCARD_LOG: &str = "discarded.log";

/// One refused operation as the worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub op: Op,
    pub rejection: RejectedOp,
}

impl LocalStore {
    /// The refused operations, in the order of their ids.
    pub fn refused(&self) -> Result<Vec<Refused>> {
        Ok(self
            .held()?
            .into_iter()
            .map(|(op, rejection)| Refused { op, rejection })
            .collect())
    }

    /// Puts the refused operations `ops` (all of them when `None`) back in
    /// the push queue; returns the ones moved. Unknown ids move nothing.
    pub fn retry_refused(&self, ops: Option<&[OpId]>) -> Result<Vec<Refused>> {
        let lock = self.write_lock();
        let chosen: Vec<Refused> = self
            .refused()?
            .into_iter()
            .filter(|r| ops.is_none_or(|ids| ids.contains(&r.op.id)))
            .collect();
        if chosen.is_empty() {
            return Ok(chosen);
        }
        let mut w = self.writes();
        for r in &chosen {
            Self::stage_queued(&mut w, &r.op);
            w.remove(held_key(r.op.id));
        }
        self.commit(&lock, w)?;
        // The outbox still holds them as refused: made again from what
        // sled holds now, or a repair would list them twice.
        self.rewrite_outbox()?;
        Ok(chosen)
    }

    /// Drops the refused operation `op` for good: from the held ones and
    /// from its record (a record left with no operation goes). `None` when
    /// no refused operation has that id.
    pub fn discard_refused(&self, op: OpId) -> Result<Option<Refused>> {
        let lock = self.write_lock();
        let Some(found) = self.refused()?.into_iter().find(|r| r.op.id == op) else {
            return Ok(None);
        };
        let mut w = self.writes();
        w.remove(held_key(op));
        let id = found.op.record;
        if let Some(mut doc) = self.load_doc(id)? {
            doc.ops.retain(|o| o.id != op);
            if doc.ops.is_empty() {
                let gone: HashSet<RecordId> = [id].into();
                self.stage_removals(&mut w, &gone)?;
                self.stage_dismissed_removal(&mut w, &gone)?;
            } else {
                Self::stage_doc(&mut w, id, &doc);
            }
        }
        self.commit(&lock, w)?;
        // The outbox still holds it as refused: made again from what sled
        // holds now, or a repair would bring the discarded change back.
        self.rewrite_outbox()?;
        Ok(Some(found))
    }
}
