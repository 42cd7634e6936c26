//! Exports made from this store, kept (sealed like every value) until a
//! sync has told the server, whose audit trail records each one: an
//! export from a laptop leaves the same trace as one from the server.

use returnee_shared::wire::ExportNote;

use super::keys::Kind;
use super::*;

pub(super) fn note_key(note: &ExportNote) -> Vec<u8> {
    Kind::ExportNotes.key(&[note.id.as_bytes()])
}

impl LocalStore {
    /// Keeps a note of an export, durably, before its first row is written.
    pub fn note_export(&self, note: &ExportNote) -> Result<()> {
        let lock = self.write_lock();
        let mut w = self.writes();
        w.put(note_key(note), note);
        self.commit(&lock, w)?;
        // In the outbox too, so that a repair does not lose it.
        self.outbox_append(&[(super::outbox::NOTE, encode(note))], true)
    }

    /// The notes the server has not yet recorded, oldest first.
    pub fn export_notes(&self) -> Result<Vec<ExportNote>> {
        let mut notes: Vec<ExportNote> = self
            .scan_values(Kind::ExportNotes.prefix())
            .map(|item| decode(&item?.1))
            .collect::<Result<_>>()?;
        notes.sort_by_key(|n| (n.at, n.id));
        Ok(notes)
    }

    /// Drops the notes the server has recorded.
    pub fn forget_export_notes(&self, notes: &[ExportNote]) -> Result<()> {
        let lock = self.write_lock();
        let mut w = self.writes();
        for note in notes {
            w.remove(note_key(note));
        }
        self.commit(&lock, w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(n: u128, minute: u32) -> ExportNote {
        ExportNote {
            id: uuid::Uuid::from_u128(n),
            at: chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 2, 8, minute, 0).unwrap(),
            format: "csv".into(),
            filter: "all families".into(),
            rows: 12,
            personal: true,
        }
    }

    #[test]
    fn notes_are_kept_until_forgotten_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (note(2, 5), note(1, 9));
        {
            let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
            store.note_export(&b).unwrap();
            store.note_export(&a).unwrap();
        }
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(store.export_notes().unwrap(), vec![a.clone(), b.clone()]);
        store.forget_export_notes(std::slice::from_ref(&a)).unwrap();
        assert_eq!(store.export_notes().unwrap(), vec![b]);
    }
}
