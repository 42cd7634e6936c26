//! The writes a person makes on this laptop: add, import (upsert), edit,
//! delete and resolve a conflict. Each becomes operations, staged into the
//! record and the push queue in one batch under the write lock.

use super::*;

impl LocalStore {
    /// Stages a local operation: into its record and the push queue.
    pub(super) fn stage_local(w: &mut Writes, doc: &mut RecordDoc, op: Op) {
        // An erased family's personal values never reach the store again.
        let op = match doc.erasure() {
            Some(_) => op.erased().unwrap_or(op),
            None => op,
        };
        Self::stage_queued(w, &op);
        doc.insert(op);
    }

    /// Stages `op` into the push queue only (as its record's id, its own
    /// id, then its JSON).
    pub(super) fn stage_queued(w: &mut Writes, op: &Op) {
        let json = encode(op);
        w.queue.extend_from_slice(op.record.0.as_bytes());
        w.queue.extend_from_slice(op.id.0.as_bytes());
        w.queue
            .extend_from_slice(&(json.len() as u32).to_be_bytes());
        w.queue.extend_from_slice(&json);
    }

    pub(super) fn new_op(
        &self,
        device: DeviceId,
        record: RecordId,
        now: DateTime<Utc>,
        change: Change,
    ) -> Op {
        Op {
            id: crate::ids::new_op_id(),
            record,
            device,
            at: now,
            base: Vec::new(),
            resolution: false,
            change,
        }
    }

    /// The operations of an edit (usually one; see [`RecordDoc::plan_edit`]).
    pub(super) fn edit_ops(
        &self,
        device: DeviceId,
        id: RecordId,
        doc: &RecordDoc,
        changes: Vec<FieldValue>,
        now: DateTime<Utc>,
    ) -> Vec<Op> {
        let names: Vec<FieldName> = changes.iter().map(|v| v.name()).collect();
        doc.plan_edit(&names, false)
            .into_iter()
            .map(|(fields, base)| {
                let values = changes
                    .iter()
                    .filter(|v| fields.contains(&v.name()))
                    .cloned()
                    .collect();
                let mut op = self.new_op(device, id, now, Change::edit(values));
                op.base = base;
                op
            })
            .collect()
    }

    /// Saves a new family and returns its id.
    pub fn add(&self, fields: FamilyFields, now: DateTime<Utc>) -> Result<RecordId> {
        let id = crate::ids::new_record_id();
        self.upsert_many(
            vec![Upsert {
                id,
                fields,
                origin: None,
            }],
            now,
        )?;
        Ok(id)
    }

    /// Adds families, or edits those whose id is already here so they match
    /// (fields that already match are left alone; nothing is added twice).
    /// One atomic, flushed batch: when it returns, all of them are saved.
    pub fn upsert_many(&self, items: Vec<Upsert>, now: DateTime<Utc>) -> Result<UpsertOutcome> {
        let device = self.device()?.id;
        let lock = self.write_lock();
        let mut w = self.writes();
        let mut out = UpsertOutcome::default();
        let mut touched: std::collections::HashMap<RecordId, RecordDoc> = Default::default();
        // Families purged here are on the server already: an upsert of one
        // leaves it alone (one read per new family, only once anything was purged).
        let any_purged = self.db.scan_prefix(Kind::Purged.prefix()).next().is_some();
        // Every family named, read one pack at a time (an import's new ids
        // mostly fall in one pack: opened once, not once per row).
        let mut ids: Vec<RecordId> = items.iter().map(|u| u.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = self.packed_many_locked(&lock, DOCS, &ids)?;
        let mut stored: std::collections::HashMap<RecordId, Vec<u8>> = ids
            .into_iter()
            .zip(stored)
            .filter_map(|(id, doc)| Some((id, doc?)))
            .collect();
        for Upsert { id, fields, origin } in items {
            let mut doc = match touched.remove(&id) {
                Some(d) => d,
                None => match stored.remove(&id).map(|b| decode(&b)).transpose()? {
                    Some(d) => d,
                    None if any_purged && self.db.contains_key(purged_key(id))? => {
                        out.unchanged += 1;
                        continue;
                    }
                    None => {
                        w.fresh.insert(id);
                        RecordDoc::default()
                    }
                },
            };
            let view = doc.view(id);
            match view.family {
                None => {
                    let op = self.new_op(device, id, now, Change::Create { fields, origin });
                    Self::stage_local(&mut w, &mut doc, op);
                    out.added += 1;
                    out.added_ids.push(id);
                }
                Some(current) => {
                    // A file without reviews (a CSV) leaves the review alone.
                    let mut fields = fields;
                    if fields.review().is_none() {
                        fields.set_review(current.fields.review());
                    }
                    let changes = current.fields.changes_to(&fields);
                    if changes.is_empty() {
                        out.unchanged += 1;
                    } else {
                        for op in self.edit_ops(device, id, &doc, changes, now) {
                            Self::stage_local(&mut w, &mut doc, op);
                        }
                        out.updated += 1;
                    }
                }
            }
            Self::stage_doc(&mut w, id, &doc);
            touched.insert(id, doc);
        }
        self.commit(&lock, w)?;
        Ok(out)
    }

    /// Changes some fields of a family. Values equal to the current ones are
    /// dropped; the result must still pass validation. Returns the fields changed.
    pub fn edit(
        &self,
        id: RecordId,
        values: Vec<FieldValue>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Vec<FieldName>> {
        let device = self.device()?.id;
        let lock = self.write_lock();
        let mut doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let view = doc.view(id);
        let Some(current) = view.active() else {
            return Err(match (view.family, view.lifecycle) {
                (Some(_), Lifecycle::Merged { into }) => StoreError::Merged { id, into },
                (Some(_), _) => StoreError::Deleted(id),
                (None, _) => StoreError::NotFound(id.to_string()),
            });
        };
        if doc.erasure().is_some()
            && values
                .iter()
                .any(|v| FieldName::ERASED.contains(&v.name()) && !v.display().is_empty())
        {
            return Err(StoreError::Erased(id));
        }
        let mut fields = current.fields.clone();
        for v in &values {
            fields.set(v.clone());
        }
        fields.check(today)?;
        let changes = current.fields.changes_to(&fields);
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<FieldName> = changes.iter().map(|v| v.name()).collect();
        let ops = self.edit_ops(device, id, &doc, changes, now);
        self.commit_local(&lock, id, &mut doc, ops)?;
        Ok(names)
    }

    pub(super) fn commit_local(
        &self,
        lock: &WriteLock<'_>,
        id: RecordId,
        doc: &mut RecordDoc,
        ops: Vec<Op>,
    ) -> Result<()> {
        let mut w = self.writes();
        for op in ops {
            Self::stage_local(&mut w, doc, op);
        }
        Self::stage_doc(&mut w, id, doc);
        self.commit(lock, w)
    }

    /// Deletes a family, keeping a tombstone so that sync carries the deletion.
    pub fn delete(&self, id: RecordId, now: DateTime<Utc>) -> Result<()> {
        let device = self.device()?.id;
        let lock = self.write_lock();
        let mut doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let view = doc.view(id);
        if view.family.is_none() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        if view.lifecycle == Lifecycle::Deleted {
            return Err(StoreError::Deleted(id));
        }
        if let Lifecycle::Merged { into } = view.lifecycle {
            return Err(StoreError::Merged { id, into });
        }
        let mut op = self.new_op(device, id, now, Change::Delete);
        op.base = doc.base_for_lifecycle();
        self.commit_local(&lock, id, &mut doc, vec![op])
    }

    /// Undoes a delete: a `Restore` of the family's lifecycle, sent as a
    /// decision (the server takes it from supervisors and admins).
    /// Whether the family's delete was this device's own (any worker
    /// undoes it); otherwise restoring it is a supervisor's decision.
    pub fn deleted_here(&self, id: RecordId) -> Result<bool> {
        let device = self.device()?.id;
        let Some(doc) = self.load_doc(id)? else {
            return Ok(false);
        };
        let probe = Op {
            id: returnee_shared::OpId(uuid::Uuid::nil()),
            record: id,
            device,
            at: DateTime::<Utc>::MIN_UTC,
            base: doc.base_for_lifecycle(),
            resolution: false,
            change: Change::Restore,
        };
        Ok(returnee_shared::merge::resolve::undoes_own_delete(
            &doc, &probe,
        ))
    }

    pub fn restore(&self, id: RecordId, now: DateTime<Utc>) -> Result<()> {
        let device = self.device()?.id;
        let lock = self.write_lock();
        let mut doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        if doc.view(id).lifecycle != Lifecycle::Deleted {
            return Err(StoreError::BadValue(format!("family {id} is not deleted")));
        }
        let mut op = self.new_op(device, id, now, Change::Restore);
        op.base = doc.base_for_lifecycle();
        // Undoing this device's own delete is any worker's to do; keeping a
        // family someone else deleted is a decision (the caller checked).
        op.resolution = !returnee_shared::merge::resolve::undoes_own_delete(&doc, &op);
        self.commit_local(&lock, id, &mut doc, vec![op])
    }

    /// Every open conflict on this device.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        let mut out = Vec::new();
        for item in self.scan_values(Kind::Conflicts.prefix()) {
            out.extend(decode::<Vec<Conflict>>(&item?.1)?);
        }
        Ok(out)
    }

    /// Decides a conflict: the chosen value becomes an operation that covers
    /// every competing value, and syncs everywhere like any edit.
    pub fn resolve(
        &self,
        conflict_id: &str,
        value: &str,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Conflict> {
        use returnee_shared::merge::resolve::{ResolveError, merge_involved, plan_resolve};
        let lock = self.write_lock();
        let conflict = self
            .conflicts()?
            .into_iter()
            .find(|c| c.id == conflict_id.trim())
            .ok_or_else(|| StoreError::NoSuchConflict(conflict_id.to_string()))?;
        let id = conflict.record_id;
        let device = self.device()?.id;
        let mut doc = self
            .load_doc(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        // A `record` conflict a merge is in changes the survivor too.
        let into = merge_involved(&conflict, &doc)
            .map(|into| Ok::<_, StoreError>((into, self.load_doc(into)?)))
            .transpose()?;
        let ops = plan_resolve(
            &conflict,
            &doc,
            value,
            into.as_ref().map(|(i, d)| (*i, d.as_ref())),
            today,
            super::duplicates::decision(device, now),
        )
        .map_err(|e| match e {
            ResolveError::NotADecision(m) => StoreError::BadValue(m),
            ResolveError::Invalid(v) => StoreError::Invalid(v),
        })?;
        if into.is_some() {
            self.commit_ops(&lock, ops)?;
        } else {
            self.commit_local(&lock, id, &mut doc, ops)?;
        }
        Ok(conflict)
    }
}
