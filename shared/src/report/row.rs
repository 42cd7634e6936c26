//! [`ReportRow`]: what a report needs of one family, and its compact
//! stored form.

use chrono::NaiveDate;

use crate::family::{FamilyFields, Members, ReturnType};
use crate::reference;

/// What a report needs of one family: the fields it filters and groups by,
/// and the counts. Stores keep it beside each record in a compact binary
/// form (19 bytes) so that a report reads a few megabytes, not every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRow {
    pub crossing: &'static str,
    pub crossed_on: NaiveDate,
    pub return_type: ReturnType,
    pub departure_province: &'static str,
    pub destination_province: &'static str,
    pub members: Members,
}

const UNKNOWN_INDEX: u8 = 255;

fn index_of<'a>(
    mut codes: impl Iterator<Item = &'a str>,
    code: &str,
    fallback: &str,
) -> Option<u8> {
    if code == fallback {
        return Some(UNKNOWN_INDEX);
    }
    codes.position(|c| c == code).map(|i| i as u8)
}

impl ReportRow {
    /// The row of a valid family (`None` for a code missing from the reference lists).
    pub fn of(f: &FamilyFields) -> Option<ReportRow> {
        let crossing = reference::crossings()
            .iter()
            .find(|c| c.entry.code == f.crossing)?;
        let departure = if f.departure_province == reference::UNKNOWN_DEPARTURE {
            reference::UNKNOWN_DEPARTURE
        } else {
            reference::departure_provinces()
                .iter()
                .find(|e| e.code == f.departure_province)?
                .code
                .as_str()
        };
        let destination = if f.destination_province == reference::UNDECIDED_DESTINATION {
            reference::UNDECIDED_DESTINATION
        } else {
            reference::af_provinces()
                .iter()
                .find(|e| e.code == f.destination_province)?
                .code
                .as_str()
        };
        Some(ReportRow {
            crossing: crossing.entry.code.as_str(),
            crossed_on: f.crossed_on,
            return_type: f.return_type,
            departure_province: departure,
            destination_province: destination,
            members: f.members,
        })
    }

    /// The size of the compact form ([`ReportRow::to_bytes`]): part of both
    /// stores' formats.
    pub const BYTES: usize = 19;

    /// The compact form: crossing, departure and destination as indexes into
    /// the reference lists, the date as days since 0001-01-01, counts as
    /// bytes, and the form's version last.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[0] = index_of(
            reference::crossings().iter().map(|c| c.entry.code.as_str()),
            self.crossing,
            "",
        )
        .unwrap_or(UNKNOWN_INDEX);
        b[1..5]
            .copy_from_slice(&chrono::Datelike::num_days_from_ce(&self.crossed_on).to_be_bytes());
        b[5] = ReturnType::ALL
            .iter()
            .position(|t| *t == self.return_type)
            .unwrap_or(0) as u8;
        b[6] = index_of(
            reference::departure_provinces()
                .iter()
                .map(|e| e.code.as_str()),
            self.departure_province,
            reference::UNKNOWN_DEPARTURE,
        )
        .unwrap_or(UNKNOWN_INDEX);
        b[7] = index_of(
            reference::af_provinces().iter().map(|e| e.code.as_str()),
            self.destination_province,
            reference::UNDECIDED_DESTINATION,
        )
        .unwrap_or(UNKNOWN_INDEX);
        for i in 0..5 {
            b[8 + i] = self.members.males[i].min(255) as u8;
            b[13 + i] = self.members.females[i].min(255) as u8;
        }
        b[18] = 1; // format version
        b
    }

    /// Reads the compact form back; `None` if it is not one.
    pub fn from_bytes(b: &[u8]) -> Option<ReportRow> {
        if b.len() != Self::BYTES || b[18] != 1 {
            return None;
        }
        let crossing = reference::crossings()
            .get(b[0] as usize)?
            .entry
            .code
            .as_str();
        let days = i32::from_be_bytes(b[1..5].try_into().ok()?);
        let crossed_on = NaiveDate::from_num_days_from_ce_opt(days)?;
        let return_type = *ReturnType::ALL.get(b[5] as usize)?;
        let departure_province = match b[6] {
            UNKNOWN_INDEX => reference::UNKNOWN_DEPARTURE,
            i => reference::departure_provinces()
                .get(i as usize)?
                .code
                .as_str(),
        };
        let destination_province = match b[7] {
            UNKNOWN_INDEX => reference::UNDECIDED_DESTINATION,
            i => reference::af_provinces().get(i as usize)?.code.as_str(),
        };
        let mut members = Members::default();
        for i in 0..5 {
            members.males[i] = b[8 + i] as u32;
            members.females[i] = b[13 + i] as u32;
        }
        Some(ReportRow {
            crossing,
            crossed_on,
            return_type,
            departure_province,
            destination_province,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_bytes() {
        let f = FamilyFields {
            crossing: "chaman".into(),
            crossed_on: NaiveDate::from_ymd_opt(2026, 9, 17).unwrap(),
            return_type: ReturnType::Assisted,
            departure_province: "unknown".into(),
            destination_province: "AF-KAN".into(),
            members: Members {
                males: [1, 2, 3, 4, 5],
                females: [6, 7, 8, 9, 0],
            },
            head_name: None,
            head_sex: None,
            doc_type: crate::DocType::None,
            doc_number: None,
            consent: false,
            vulnerabilities: Default::default(),
            documentation: Default::default(),
            protection_referral: None,
            notes: None,
            extra: Default::default(),
        };
        let row = ReportRow::of(&f).unwrap();
        assert_eq!(ReportRow::from_bytes(&row.to_bytes()), Some(row));
        let mut g = f.clone();
        g.departure_province = "PK-SD".into();
        g.destination_province = "undecided".into();
        let row = ReportRow::of(&g).unwrap();
        assert_eq!(ReportRow::from_bytes(&row.to_bytes()), Some(row));
        assert_eq!(ReportRow::from_bytes(&[0; 5]), None);
    }
}
