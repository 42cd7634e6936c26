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
        record_packs::scan(&self.db).filter_map(move |item| {
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
