//! The exchange formats: CSV with a fixed column order, and JSON lines of
//! records. Scripts depend on the column names and order; columns may be
//! added at the end, never renamed.

use chrono::{DateTime, Utc};
use returnee_shared::merge::Origin;
use returnee_shared::{DeviceId, FamilyDraft, RecordId};
use serde::{Deserialize, Serialize};

/// The CSV columns, in order (the export's, `returnee_shared::report::records`).
pub use returnee_shared::report::records::RECORD_COLUMNS as CSV_COLUMNS;

/// One CSV row as text; every column optional so that a bad row is reported,
/// not rejected by the parser.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CsvRow {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub crossing: Option<String>,
    #[serde(default)]
    pub crossed_on: Option<String>,
    #[serde(default)]
    pub return_type: Option<String>,
    #[serde(default)]
    pub departure_province: Option<String>,
    #[serde(default)]
    pub destination_province: Option<String>,
    #[serde(default)]
    pub head_name: Option<String>,
    #[serde(default)]
    pub head_sex: Option<String>,
    #[serde(default)]
    pub doc_type: Option<String>,
    #[serde(default)]
    pub doc_number: Option<String>,
    #[serde(default)]
    pub consent: Option<String>,
    #[serde(default)]
    pub m_0_4: Option<String>,
    #[serde(default)]
    pub m_5_11: Option<String>,
    #[serde(default)]
    pub m_12_17: Option<String>,
    #[serde(default)]
    pub m_18_59: Option<String>,
    #[serde(default)]
    pub m_60_plus: Option<String>,
    #[serde(default)]
    pub f_0_4: Option<String>,
    #[serde(default)]
    pub f_5_11: Option<String>,
    #[serde(default)]
    pub f_12_17: Option<String>,
    #[serde(default)]
    pub f_18_59: Option<String>,
    #[serde(default)]
    pub f_60_plus: Option<String>,
    #[serde(default)]
    pub vulnerabilities: Option<String>,
    #[serde(default)]
    pub documentation: Option<String>,
    #[serde(default)]
    pub protection_referral: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub recorded_by: Option<String>,
    #[serde(default)]
    pub recorded_at: Option<String>,
}

fn counts(cells: [&Option<String>; 5]) -> Option<String> {
    if cells
        .iter()
        .all(|c| c.as_deref().is_none_or(|s| s.trim().is_empty()))
    {
        return None;
    }
    Some(
        cells
            .iter()
            .map(|c| match c.as_deref().map(str::trim) {
                None | Some("") => "0",
                Some(s) => s,
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn set(cell: &Option<String>) -> Vec<String> {
    cell.as_deref()
        .map(|s| s.split(';').map(str::to_string).collect())
        .unwrap_or_default()
}

impl CsvRow {
    /// The row as a draft to validate.
    pub fn to_draft(&self) -> FamilyDraft {
        FamilyDraft {
            crossing: self.crossing.clone(),
            crossed_on: self.crossed_on.clone(),
            return_type: self.return_type.clone(),
            departure_province: self.departure_province.clone(),
            destination_province: self.destination_province.clone(),
            males: counts([
                &self.m_0_4,
                &self.m_5_11,
                &self.m_12_17,
                &self.m_18_59,
                &self.m_60_plus,
            ]),
            females: counts([
                &self.f_0_4,
                &self.f_5_11,
                &self.f_12_17,
                &self.f_18_59,
                &self.f_60_plus,
            ]),
            head_name: self.head_name.clone(),
            head_sex: self.head_sex.clone(),
            doc_type: self.doc_type.clone(),
            doc_number: self.doc_number.clone(),
            consent: self.consent.clone(),
            vulnerabilities: set(&self.vulnerabilities),
            documentation: set(&self.documentation),
            protection_referral: self.protection_referral.clone(),
            notes: self.notes.clone(),
        }
    }

    /// A problem for each age-band column that is not a whole number,
    /// named by its column (`m_60_plus: …`), rather than by the `males` or
    /// `females` field the columns make.
    pub fn band_problems(&self) -> Vec<String> {
        let bands = [
            ("m_0_4", &self.m_0_4),
            ("m_5_11", &self.m_5_11),
            ("m_12_17", &self.m_12_17),
            ("m_18_59", &self.m_18_59),
            ("m_60_plus", &self.m_60_plus),
            ("f_0_4", &self.f_0_4),
            ("f_5_11", &self.f_5_11),
            ("f_12_17", &self.f_12_17),
            ("f_18_59", &self.f_18_59),
            ("f_60_plus", &self.f_60_plus),
        ];
        bands
            .iter()
            .filter_map(|(name, cell)| {
                let v = cell.as_deref()?.trim();
                (!v.is_empty() && v.parse::<u32>().is_err()).then(|| {
                    format!(
                        "{name}: '{v}' is not a number of people; write a whole number (0 if none)"
                    )
                })
            })
            .collect()
    }

    /// The id column, if given; an error message if it is not an id.
    pub fn record_id(&self) -> Result<Option<RecordId>, String> {
        match self.id.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                format!("id: '{s}' is not a record id (a UUID); leave it empty for a new family")
            }),
        }
    }

    /// Provenance columns, when both are present and valid.
    pub fn origin(&self) -> Option<Origin> {
        let by: DeviceId = self.recorded_by.as_deref()?.parse().ok()?;
        let at: DateTime<Utc> = self.recorded_at.as_deref()?.trim().parse().ok()?;
        Some(Origin {
            recorded_by: by,
            recorded_at: at,
        })
    }
}

/// The file formats of export and import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            _ => None,
        }
    }
}
