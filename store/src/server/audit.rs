//! The audit trail: `a/<seq>`, each entry hash-chained to the one before
//! (`returnee_shared::audit`), with `m/audit` holding the last sequence
//! number and hash, written in the same batch as the entry.

use super::*;

impl ServerStore {
    /// The audit trail's last sequence number and hash.
    pub(super) fn audit_head(&self) -> Result<(u64, String)> {
        Ok(match self.db().get(AUDIT_HEAD_KEY)? {
            Some(v) if v.len() > 8 => (
                u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
                String::from_utf8_lossy(&v[8..]).into_owned(),
            ),
            _ => (0, GENESIS.to_string()),
        })
    }

    /// Adds the next audit entry to `batch` (the caller holds the writer
    /// lock, so entries are numbered without gaps).
    pub(super) fn stage_audit(
        &self,
        batch: &mut Writes,
        at: DateTime<Utc>,
        device: Option<DeviceId>,
        event: AuditEvent,
    ) -> Result<()> {
        self.stage_audits(batch, at, device, vec![event])
    }

    /// [`ServerStore::stage_audit`] of several events, chained in order.
    pub(super) fn stage_audits(
        &self,
        batch: &mut Writes,
        at: DateTime<Utc>,
        device: Option<DeviceId>,
        events: Vec<AuditEvent>,
    ) -> Result<()> {
        let (mut seq, mut prev) = self.audit_head()?;
        for event in events {
            let entry = AuditEntry::new(seq + 1, at, device, event, &prev);
            batch.insert(audit_key(entry.seq), encode(&entry));
            (seq, prev) = (entry.seq, entry.hash);
        }
        let mut head = seq.to_be_bytes().to_vec();
        head.extend_from_slice(prev.as_bytes());
        batch.insert(AUDIT_HEAD_KEY, head);
        Ok(())
    }

    /// The newest audit entry's sequence number (0 for none).
    pub fn audit_newest(&self) -> Result<u64> {
        Ok(self.audit_head()?.0)
    }

    /// Audit entries after `after`, at most `limit`, and whether more follow.
    pub fn audit(&self, after: u64, limit: usize) -> Result<(Vec<AuditEntry>, bool)> {
        let mut out = Vec::new();
        let scan = self
            .db()
            .range(audit_key(after.saturating_add(1))..audit_key(u64::MAX));
        for item in crate::db::weighed(&self.db(), scan) {
            if out.len() >= limit {
                return Ok((out, true));
            }
            out.push(decode(&item?.1)?);
        }
        Ok((out, false))
    }

    /// Checks the whole audit trail: every link, and that it ends where the
    /// store's head says. Returns the number of entries.
    pub fn verify_audit(&self) -> Result<std::result::Result<u64, ChainBreak>> {
        let mut entries = Vec::new();
        let mut broken = None;
        for item in crate::db::weighed(&self.db(), self.db().scan_prefix(Kind::Audit.prefix())) {
            let (k, v) = item?;
            match serde_json::from_slice::<AuditEntry>(&v) {
                Ok(e) => entries.push(e),
                Err(_) => {
                    broken = Some(ChainBreak {
                        seq: u64::from_be_bytes(k[2..10].try_into().expect("8 bytes")),
                        reason: "it is not a readable entry (it was altered)".into(),
                    });
                    break;
                }
            }
        }
        let checked = verify_chain(entries, 0, GENESIS);
        if let Some(b) = broken {
            // An unreadable entry: report it unless the chain broke before it.
            return Ok(Err(match checked {
                Err(e) if e.seq < b.seq => e,
                _ => b,
            }));
        }
        let (last, hash) = match checked {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let (head_seq, head_hash) = self.audit_head()?;
        if (last, hash.as_str()) != (head_seq, head_hash.as_str()) {
            return Ok(Err(ChainBreak {
                seq: last + 1,
                reason: format!(
                    "the trail ends at entry {last} but the store recorded {head_seq} entries (entries were removed)"
                ),
            }));
        }
        Ok(Ok(last))
    }
}
