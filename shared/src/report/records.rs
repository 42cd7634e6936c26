//! Families as export rows (CSV, spreadsheet), and what an export may
//! disclose of them: everything, document numbers masked (the server's
//! default), or nothing that names a family (`--share`: no name, document
//! number or note, and record and device ids replaced by keyed hashes).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::family::{DeviceId, Family, RecordId};

/// The export columns, in order (the CSV that `returnee import` reads back).
/// Scripts depend on them: add at the end, never rename.
pub const RECORD_COLUMNS: [&str; 27] = [
    "id",
    "crossing",
    "crossed_on",
    "return_type",
    "departure_province",
    "destination_province",
    "head_name",
    "head_sex",
    "doc_type",
    "doc_number",
    "consent",
    "m_0_4",
    "m_5_11",
    "m_12_17",
    "m_18_59",
    "m_60_plus",
    "f_0_4",
    "f_5_11",
    "f_12_17",
    "f_18_59",
    "f_60_plus",
    "vulnerabilities",
    "documentation",
    "protection_referral",
    "notes",
    "recorded_by",
    "recorded_at",
];

/// A family as the cells of [`RECORD_COLUMNS`] (an absent value is empty).
pub fn record_cells(f: &Family) -> [String; 27] {
    let x = &f.fields;
    let m = &x.members;
    let join = |items: Vec<&str>| items.join(";");
    [
        f.id.to_string(),
        x.crossing.clone(),
        x.crossed_on.to_string(),
        x.return_type.to_string(),
        x.departure_province.clone(),
        x.destination_province.clone(),
        x.head_name.clone().unwrap_or_default(),
        x.head_sex.map(|s| s.to_string()).unwrap_or_default(),
        x.doc_type.to_string(),
        x.doc_number.clone().unwrap_or_default(),
        x.consent.to_string(),
        m.males[0].to_string(),
        m.males[1].to_string(),
        m.males[2].to_string(),
        m.males[3].to_string(),
        m.males[4].to_string(),
        m.females[0].to_string(),
        m.females[1].to_string(),
        m.females[2].to_string(),
        m.females[3].to_string(),
        m.females[4].to_string(),
        join(x.vulnerabilities.iter().map(|v| v.as_str()).collect()),
        join(x.documentation.iter().map(|v| v.as_str()).collect()),
        x.protection_referral
            .map(|r| r.to_string())
            .unwrap_or_default(),
        x.notes.clone().unwrap_or_default(),
        f.recorded_by.to_string(),
        f.recorded_at.to_rfc3339(),
    ]
}

/// Writes families as CSV rows under a header of [`RECORD_COLUMNS`] into
/// any writer the caller gives (a file, a response body, memory).
pub struct RecordCsv<W: std::io::Write> {
    w: csv::Writer<W>,
    rows: u64,
}

impl<W: std::io::Write> RecordCsv<W> {
    /// Starts the CSV (writes the header row).
    pub fn new(into: W) -> csv::Result<Self> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(into);
        w.write_record(RECORD_COLUMNS)?;
        Ok(RecordCsv { w, rows: 0 })
    }

    pub fn push(&mut self, f: &Family) -> csv::Result<()> {
        self.rows += 1;
        self.w.write_record(record_cells(f))
    }

    /// Flushes; the number of rows written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.w.flush()?;
        Ok(self.rows)
    }
}

/// What an export discloses.
#[derive(Clone, PartialEq, Eq)]
pub enum Disclosure {
    /// Every field (an admin's `full=true`, or the laptop's own export).
    Full,
    /// Document numbers masked: `…` and their last 4 characters.
    MaskDocuments,
    /// For a partner: no name, document number or note; record and device
    /// ids replaced by HMAC-SHA-256 of this key (the same id gives the same
    /// hash within an export; without the key it cannot be traced back).
    Share { key: [u8; 32] },
}

impl std::fmt::Debug for Disclosure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Disclosure::Full => "Full",
            Disclosure::MaskDocuments => "MaskDocuments",
            Disclosure::Share { .. } => "Share",
        })
    }
}

impl Disclosure {
    /// Whether names or document numbers can leave with the export.
    pub fn personal(&self) -> bool {
        !matches!(self, Disclosure::Share { .. })
    }

    /// The family as this export may show it.
    pub fn apply(&self, mut f: Family) -> Family {
        match self {
            Disclosure::Full => {}
            Disclosure::MaskDocuments => {
                f.fields.doc_number = f.fields.doc_number.as_deref().map(mask);
            }
            Disclosure::Share { key } => {
                f.fields.head_name = None;
                f.fields.doc_number = None;
                f.fields.notes = None;
                f.id = RecordId(keyed(key, f.id.0));
                f.recorded_by = DeviceId(keyed(key, f.recorded_by.0));
            }
        }
        f
    }
}

/// A document number as tables show it: `…` and its last 4 characters
/// (all of it hidden when it has 4 or fewer).
pub fn mask(doc: &str) -> String {
    let chars: Vec<char> = doc.trim().chars().collect();
    let shown: String = if chars.len() > 4 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("…{shown}")
}

/// An id's keyed hash, shaped as a UUID (version 8: "custom").
fn keyed(key: &[u8; 32], id: Uuid) -> Uuid {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(id.as_bytes());
    let out = mac.finalize().into_bytes();
    let mut b = [0u8; 16];
    b.copy_from_slice(&out[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_the_last_four_characters() {
        assert_eq!(mask("AB123456"), "…3456");
        assert_eq!(mask("1234"), "…");
        assert_eq!(mask(""), "…");
    }

    #[test]
    fn keyed_hashes_are_stable_per_key_and_differ_across_keys() {
        let id = Uuid::from_u128(42);
        assert_eq!(keyed(&[1; 32], id), keyed(&[1; 32], id));
        assert_ne!(keyed(&[1; 32], id), keyed(&[2; 32], id));
        assert_ne!(keyed(&[1; 32], id), id);
    }
}
