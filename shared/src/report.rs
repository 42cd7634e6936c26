//! The figures agencies publish: families, individuals, men, women and
//! children, filtered and broken down. Computed the same way on a laptop and
//! on the server, from records streamed one at a time.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::family::{FamilyFields, Members, ReturnType};
use crate::reference;

/// Which families a report or a listing covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFilter {
    /// A canonical crossing code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossing: Option<String>,
    /// First crossing date included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// Last crossing date included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_type: Option<ReturnType>,
}

impl ReportFilter {
    pub fn matches(&self, f: &FamilyFields) -> bool {
        ReportRow::of(f).is_some_and(|r| self.matches_row(&r))
    }

    pub fn matches_row(&self, f: &ReportRow) -> bool {
        self.crossing.as_ref().is_none_or(|c| *c == f.crossing)
            && self.from.is_none_or(|d| f.crossed_on >= d)
            && self.to.is_none_or(|d| f.crossed_on <= d)
            && self.return_type.is_none_or(|t| t == f.return_type)
    }
}

/// How a report is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    Crossing,
    Date,
    ReturnType,
    Departure,
    Destination,
}

impl GroupBy {
    pub const ALL: [GroupBy; 5] = [
        GroupBy::Crossing,
        GroupBy::Date,
        GroupBy::ReturnType,
        GroupBy::Departure,
        GroupBy::Destination,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Crossing => "crossing",
            GroupBy::Date => "date",
            GroupBy::ReturnType => "return-type",
            GroupBy::Departure => "departure",
            GroupBy::Destination => "destination",
        }
    }

    pub fn parse(s: &str) -> Option<GroupBy> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        GroupBy::ALL.into_iter().find(|g| g.as_str() == s)
    }

    fn key(self, f: &ReportRow) -> String {
        match self {
            GroupBy::Crossing => f.crossing.to_string(),
            GroupBy::Date => f.crossed_on.to_string(),
            GroupBy::ReturnType => f.return_type.to_string(),
            GroupBy::Departure => f.departure_province.to_string(),
            GroupBy::Destination => f.destination_province.to_string(),
        }
    }
}

/// Counts over a set of families.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Totals {
    pub families: u64,
    pub individuals: u64,
    pub men: u64,
    pub women: u64,
    pub children: u64,
}

impl Totals {
    pub fn add(&mut self, f: &ReportRow) {
        let m = &f.members;
        self.families += 1;
        self.individuals += m.individuals();
        self.men += m.men();
        self.women += m.women();
        self.children += m.children();
    }
}

/// One line of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Totals, and a breakdown when one was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    #[serde(flatten)]
    pub totals: Totals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
}

/// Builds a report from families fed one at a time.
#[derive(Debug, Clone)]
pub struct ReportBuilder {
    filter: ReportFilter,
    by: Option<GroupBy>,
    totals: Totals,
    groups: BTreeMap<String, Totals>,
}

impl ReportBuilder {
    pub fn new(filter: ReportFilter, by: Option<GroupBy>) -> Self {
        ReportBuilder {
            filter,
            by,
            totals: Totals::default(),
            groups: BTreeMap::new(),
        }
    }

    /// Counts one active family if it matches the filter.
    pub fn add(&mut self, f: &FamilyFields) {
        if let Some(row) = ReportRow::of(f) {
            self.add_row(&row);
        }
    }

    /// Counts one active family, given by what reports need of it.
    pub fn add_row(&mut self, f: &ReportRow) {
        if !self.filter.matches_row(f) {
            return;
        }
        self.totals.add(f);
        if let Some(by) = self.by {
            self.groups.entry(by.key(f)).or_default().add(f);
        }
    }

    pub fn finish(self) -> Report {
        Report {
            totals: self.totals,
            groups: self.by.map(|_| {
                self.groups
                    .into_iter()
                    .map(|(key, totals)| Group { key, totals })
                    .collect()
            }),
        }
    }
}

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
            reference::pk_provinces()
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
            reference::pk_provinces().iter().map(|e| e.code.as_str()),
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
            i => reference::pk_provinces().get(i as usize)?.code.as_str(),
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
