//! Applying what a pull brought: the operations of other devices and the
//! families that left this device's sites.

use super::*;

impl LocalStore {
    /// Applies operations pulled from the server and moves the cursor past
    /// them, in one atomic batch: a crash leaves either both or neither.
    ///
    /// `forget` lists families that left this device's sites: each is
    /// removed, unless some change to it is not on the server yet (it stays,
    /// so that nothing typed here is lost; the server refuses such changes
    /// and `status` shows them).
    pub fn apply_remote(
        &self,
        ops: Vec<Op>,
        forget: &[RecordId],
        cursor: SyncCursor,
    ) -> Result<usize> {
        let lock = self.write_lock();
        let any_purged = self.db.scan_prefix(Kind::Purged.prefix()).next().is_some();
        let mut w = self.writes();
        // The page's records, read on all cores. `None`: a family purged
        // here, whose operations are dropped.
        let mut ids: Vec<RecordId> = ops.iter().map(|op| op.record).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = self.packed_many_locked(&lock, DOCS, &ids)?;
        let loaded: Vec<(RecordId, Option<Option<RecordDoc>>)> = ids
            .into_par_iter()
            .zip(stored)
            .with_min_len(250)
            .map(|(id, stored)| {
                Ok(if any_purged && self.db.contains_key(purged_key(id))? {
                    (id, None)
                } else {
                    (id, Some(stored.map(|b| decode(&b)).transpose()?))
                })
            })
            .collect::<Result<_>>()?;
        let mut docs: std::collections::BTreeMap<RecordId, Option<RecordDoc>> = Default::default();
        for (id, doc) in loaded {
            docs.insert(
                id,
                doc.map(|d| {
                    d.unwrap_or_else(|| {
                        w.fresh.insert(id);
                        RecordDoc::default()
                    })
                }),
            );
        }
        let mut applied = 0;
        for op in ops {
            if matches!(op.change, Change::Erase { .. })
                && matches!(docs.get(&op.record), Some(None))
            {
                // Purged here, erased everywhere: what purging left in
                // sled's log goes with the rewrite.
                Self::stage_rewrite(&mut w);
            }
            if let Some(Some(doc)) = docs.get_mut(&op.record)
                && doc.insert(op)
            {
                applied += 1;
            }
        }
        // Families erased (by this page, or before it and sent personal
        // values by a device that had not heard): their values leave.
        let mut erased = std::collections::BTreeSet::new();
        for (id, doc) in docs.iter_mut() {
            if let Some(doc) = doc
                && doc.erasure().is_some()
                && doc.erase_personal()
            {
                erased.insert(*id);
            }
        }
        let forgotten: std::collections::HashSet<RecordId> = if forget.is_empty() {
            Default::default()
        } else {
            let unsynced = self.unsynced_records()?;
            forget
                .iter()
                .copied()
                .filter(|id| !unsynced.contains(id))
                .collect()
        };
        // Each record's writes (its duplicate features included, so that
        // nothing is left for the next command) prepared on all cores, then
        // batched in order.
        let (cipher, fresh) = (&w.cipher, &w.fresh);
        let staged: Vec<(RecordId, DocWrites)> = docs
            .par_iter()
            .filter(|(id, _)| !forgotten.contains(id))
            .filter_map(|(id, doc)| {
                let doc = doc.as_ref()?;
                let view = doc.view(*id);
                Some((
                    *id,
                    DocWrites::of(cipher, *id, doc, &view, fresh.contains(id)),
                ))
            })
            .collect();
        for (_, writes) in staged {
            w.apply(writes);
        }
        if !erased.is_empty() {
            self.stage_erased_elsewhere(&mut w, &erased)?;
        }
        self.stage_removals(&mut w, &forgotten)?;
        self.stage_dismissed_removal(&mut w, &forgotten)?;
        w.put(meta_key(META_CURSOR), &cursor);
        self.commit(&lock, w)?;
        Ok(applied)
    }
}
