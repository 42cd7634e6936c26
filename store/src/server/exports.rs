//! What exports read: the families a device may see, filtered, and the
//! audit entry that records each export.

use returnee_shared::audit::AuditEvent;
use returnee_shared::{Family, ReportFilter};

use super::*;

impl ServerStore {
    /// Every active family `device` may see whose report row matches
    /// `filter`, in the order records arrived: the families its reports
    /// count (the family's crossing is one of the device's sites). A
    /// record's operations are read only when its row matches.
    pub fn families_for<'a>(
        &'a self,
        device: &'a Device,
        filter: &'a ReportFilter,
    ) -> impl Iterator<Item = Result<Family>> + 'a {
        record_packs::scan_held(self.db()).filter_map(move |item| {
            let (id, v) = match item {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            let row = RecordEntry::row_of(&v).and_then(ReportRow::from_bytes)?;
            if !device.works_at(row.crossing) || !filter.matches_row(&row) {
                return None;
            }
            let Some(stored) = RecordEntry::from_bytes(&v) else {
                return Some(Err(damaged("a record entry")));
            };
            match self.ops_at(&stored.ops) {
                Ok(doc) => doc.view(id).active().cloned().map(Ok),
                Err(e) => Some(Err(e)),
            }
        })
    }

    /// Records in the audit trail the exports a laptop made from its own
    /// store; a note already recorded (a re-send) is skipped. How many
    /// were new.
    pub fn record_export_notes(
        &self,
        device: DeviceId,
        notes: &[returnee_shared::wire::ExportNote],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let guard = self.writer.lock().expect("writer lock");
        let mut b = Writes::default();
        let mut events = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for note in notes {
            let key = Kind::ExportNotes.key(note.id.as_bytes());
            if !seen.insert(note.id) || self.db().contains_key(&key)? {
                continue;
            }
            let event = AuditEvent::Exported {
                format: note.format.clone(),
                filter: note.filter.clone(),
                rows: note.rows,
                personal: note.personal,
                full_documents: note.personal,
                on_laptop_at: Some(note.at),
            };
            events.push(event);
            b.insert(key, Vec::new());
        }
        let recorded = events.len() as u64;
        if recorded > 0 {
            self.stage_audits(&mut b, now, Some(device), events)?;
            self.commit_writes(guard, b)?;
        }
        Ok(recorded)
    }

    /// Records that `device` exported families (an [`AuditEvent::Exported`]).
    pub fn audit_export(
        &self,
        device: DeviceId,
        at: DateTime<Utc>,
        event: AuditEvent,
    ) -> Result<()> {
        let guard = self.writer.lock().expect("writer lock");
        let mut w = Writes::default();
        self.stage_audit(&mut w, at, Some(device), event)?;
        self.commit_writes(guard, w)
    }
}
