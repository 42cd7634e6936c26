//! Purging synced families from the laptop (`returnee purge`), so that a lost
//! laptop holds only what the worker still needs.
//!
//! A family is *synced* when none of its operations waits in the push queue
//! (`q/`) or is held after the server refused it (`h/`), on a device that has
//! synced at least once: everything it holds of the family is then on the
//! server. A synced family whose newest operation is dated before the cut-off
//! loses its doc, report row, conflicts, duplicate index entries and
//! dismissed pairs, and gets a purged marker (`g/<record id>`, valued with
//! when) so that operations for it pulled later are dropped
//! ([`LocalStore::apply_remote`]) instead of rebuilding a partial record,
//! and an import of it leaves it alone. All in one atomic, flushed batch.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use returnee_shared::RecordId;
use returnee_shared::merge::{Op, RecordDoc};
use returnee_shared::wire::RejectedOp;
use serde::Serialize;

use super::duplicates::dismissed_key;
use super::{DOCS, Kind, LocalStore, Result, Writes, conflicts_key, decode, purged_key};

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeOutcome {
    /// Families removed from this laptop.
    pub removed: u64,
    /// Families old enough, kept because some of their changes are not on
    /// the server yet (pending, or refused by it).
    pub kept_unsynced: u64,
    /// Synced families kept because they changed on or after the cut-off.
    pub kept_recent: u64,
    /// The device never synced: nothing is known to be on the server, so
    /// nothing was removed.
    pub never_synced: bool,
}

impl LocalStore {
    /// Removes every synced family whose newest operation is dated before
    /// `before`, and marks it purged (see the module docs).
    pub fn purge_synced_before(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PurgeOutcome> {
        if let Some(out) = self.never_synced()? {
            return Ok(out);
        }
        let lock = self.write_lock();
        let (mut out, purged) = self.purge_plan(before)?;
        let mut w = self.writes();
        for id in &purged {
            w.put(purged_key(*id), &now);
        }
        if !purged.is_empty() {
            let list: Vec<(RecordId, DateTime<Utc>)> = purged.iter().map(|id| (*id, now)).collect();
            self.outbox_append(&[(super::outbox::PURGED, super::encode(&list))], true)?;
        }
        self.stage_removals(&mut w, &purged)?;
        self.stage_dismissed_removal(&mut w, &purged)?;
        out.removed = purged.len() as u64;
        self.commit(&lock, w)?;
        Ok(out)
    }

    /// Every family purged here, and when.
    pub(super) fn purged_records(&self) -> Result<Vec<(RecordId, DateTime<Utc>)>> {
        self.scan_values(Kind::Purged.prefix())
            .map(|item| {
                let (k, v) = item?;
                let id = uuid::Uuid::from_slice(&k[Kind::Purged.prefix().len()..])
                    .map_err(|_| super::damaged("a purged family's key"))?;
                Ok((RecordId(id), decode(&v)?))
            })
            .collect()
    }

    /// What [`Self::purge_synced_before`] would do now, changing nothing:
    /// its counts, and the families it would remove, in id order.
    pub fn purge_preview(&self, before: DateTime<Utc>) -> Result<(PurgeOutcome, Vec<RecordId>)> {
        if let Some(out) = self.never_synced()? {
            return Ok((out, Vec::new()));
        }
        let (mut out, ids) = self.purge_plan(before)?;
        let mut ids: Vec<RecordId> = ids.into_iter().collect();
        ids.sort_unstable();
        out.removed = ids.len() as u64;
        Ok((out, ids))
    }

    /// A purge's outcome on a device that never synced (nothing is known
    /// to be on the server), or `None` when it has.
    fn never_synced(&self) -> Result<Option<PurgeOutcome>> {
        if self.enrollment()?.is_some() && self.last_sync()?.is_some() {
            return Ok(None);
        }
        Ok(Some(PurgeOutcome {
            never_synced: true,
            kept_unsynced: self.scan_packed(DOCS).count() as u64,
            ..PurgeOutcome::default()
        }))
    }

    /// The families a purge before `before` removes, and the counts of
    /// those it keeps.
    fn purge_plan(&self, before: DateTime<Utc>) -> Result<(PurgeOutcome, HashSet<RecordId>)> {
        let mut out = PurgeOutcome::default();
        let unsynced = self.unsynced_records()?;
        let mut purged: HashSet<RecordId> = HashSet::new();
        for item in self.scan_packed(DOCS) {
            let (id, v) = item?;
            let doc: RecordDoc = decode(&v)?;
            let Some(newest) = doc.ops.iter().map(|o| o.at).max() else {
                continue;
            };
            if newest >= before {
                if !unsynced.contains(&id) {
                    out.kept_recent += 1;
                }
                continue;
            }
            if unsynced.contains(&id) {
                out.kept_unsynced += 1;
                continue;
            }
            purged.insert(id);
        }
        Ok((out, purged))
    }

    /// Families with changes the server does not hold yet: queued, or held
    /// after it refused them.
    pub(super) fn unsynced_records(&self) -> Result<HashSet<RecordId>> {
        let mut unsynced: HashSet<RecordId> = HashSet::new();
        unsynced.extend(self.queued_records()?);
        for item in self.scan_values(Kind::Held.prefix()) {
            let (op, _): (Op, RejectedOp) = decode(&item?.1)?;
            unsynced.insert(op.record);
        }
        Ok(unsynced)
    }

    /// Stages the removal of these families and of everything derived from
    /// them: doc, report row, conflicts, duplicate features.
    pub(super) fn stage_removals(&self, w: &mut Writes, removed: &HashSet<RecordId>) -> Result<()> {
        for id in removed.iter().copied() {
            w.docs.insert(id, None);
            w.rows.insert(id, None);
            w.remove(conflicts_key(id));
            w.features.insert(id, None);
        }
        Ok(())
    }

    /// Stages the removal of the dismissed pairs naming any of `removed`.
    pub(super) fn stage_dismissed_removal(
        &self,
        w: &mut Writes,
        removed: &HashSet<RecordId>,
    ) -> Result<()> {
        if removed.is_empty() {
            return Ok(());
        }
        for item in self.db.scan_prefix(Kind::Dismissed.prefix()) {
            let (k, _) = item?;
            let ids = [&k[2..18], &k[18..34]]
                .map(|b| RecordId(uuid::Uuid::from_slice(b).expect("16-byte record ids")));
            if ids.iter().any(|id| removed.contains(id)) {
                debug_assert_eq!(&k[..], &dismissed_key(ids[0], ids[1])[..]);
                w.remove(k.to_vec());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};
    use returnee_shared::wire::{RejectedOp, Role};

    use super::super::sealing::Passphrase;
    use super::super::{Enrollment, LocalStore};

    use super::super::tests::fields;

    /// Pushes everything pending as if the server took it, refusing `refuse`.
    fn fake_sync(store: &LocalStore, refuse: usize) {
        let batch = store.pending(1000).unwrap();
        let rejected: Vec<RejectedOp> = batch
            .iter()
            .take(refuse)
            .map(|q| RejectedOp {
                op: q.id,
                error: "forbidden".into(),
                message: "refused".into(),
            })
            .collect();
        store.acknowledge(&batch, &rejected).unwrap();
        store.set_last_sync(Utc::now()).unwrap();
    }

    #[test]
    fn held_and_pending_families_are_kept_and_a_purged_one_ignores_pulls_and_imports() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new("a long enough passphrase".into());
        let (store, _) = LocalStore::init_with(dir.path(), "t", Some(&pass), &|| None).unwrap();
        let at = Utc::now() - Duration::days(10);
        let ids: Vec<_> = (0..4).map(|n| store.add(fields(n), at).unwrap()).collect();
        // Never synced: nothing goes.
        let out = store.purge_synced_before(Utc::now(), Utc::now()).unwrap();
        assert!(out.never_synced && out.removed == 0 && out.kept_unsynced == 4);

        let device = store.device().unwrap().id;
        store
            .set_enrollment(&Enrollment {
                server: "http://127.0.0.1:9".into(),
                device_id: device,
                token: "t".into(),
                role: Role::Field,
                sites: vec![],
                ca_pem: None,
                token_expires_at: None,
            })
            .unwrap();
        // The first family's creation is refused (held), the rest taken.
        fake_sync(&store, 1);
        // A fourth family's edit waits in the queue.
        store
            .edit(
                ids[3],
                vec![returnee_shared::FieldValue::Notes(Some("x".into()))],
                Utc::now().date_naive(),
                at,
            )
            .unwrap();
        let out = store.purge_synced_before(Utc::now(), Utc::now()).unwrap();
        assert_eq!((out.removed, out.kept_unsynced, out.kept_recent), (2, 2, 0));
        assert!(store.get(ids[0]).unwrap().is_some(), "held: kept");
        assert!(store.get(ids[1]).unwrap().is_none());
        assert!(store.get(ids[2]).unwrap().is_none());
        assert!(store.get(ids[3]).unwrap().is_some(), "pending: kept");
        assert_eq!(store.report_rows().count(), 2);
        // Gone from duplicate detection too, and from the placement index.
        for id in &ids[1..3] {
            assert_eq!(store.features_of(*id).unwrap(), None);
        }
        for id in [ids[0], ids[3]] {
            assert!(store.features_of(id).unwrap().is_some(), "kept");
        }
        assert_eq!(
            store
                .scan_packed(super::super::record_packs::FEATURES)
                .count(),
            2
        );
        let places = store.placement().places(&[ids[1], ids[3]]).unwrap();
        assert!(places[0].is_none() && places[1].is_some(), "{places:?}");

        // A pulled operation of a purged family is dropped.
        let op = returnee_shared::merge::Op {
            id: crate::ids::new_op_id(),
            record: ids[1],
            device,
            at: Utc::now(),
            base: vec![],
            resolution: false,
            change: returnee_shared::merge::Change::Delete,
        };
        assert_eq!(
            store
                .apply_remote(vec![op], &[], store.cursor().unwrap())
                .unwrap(),
            0
        );
        assert!(store.get(ids[1]).unwrap().is_none());
        // An import of it leaves it alone.
        let o = store
            .upsert_many(
                vec![super::super::Upsert {
                    id: ids[2],
                    fields: fields(2),
                    origin: None,
                }],
                Utc::now(),
            )
            .unwrap();
        assert_eq!((o.added, o.unchanged), (0, 1));
        assert!(store.get(ids[2]).unwrap().is_none());
        drop(store);

        // It all holds after reopening, with the passphrase only.
        assert!(matches!(
            LocalStore::open(dir.path()),
            Err(crate::laptop::StoreError::PassphraseNeeded(_))
        ));
        let store = LocalStore::open_with(dir.path(), &|| Some(pass.clone())).unwrap();
        assert_eq!(store.report_rows().count(), 2);
        assert_eq!(store.held().unwrap().len(), 1);
    }
}
