//! The figures agencies publish: families, individuals, men, women and
//! children, filtered and broken down. Computed the same way on a laptop and
//! on the server, from records streamed one at a time.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::family::{FamilyFields, ReturnType};

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

    fn key(self, f: &FamilyFields) -> String {
        match self {
            GroupBy::Crossing => f.crossing.clone(),
            GroupBy::Date => f.crossed_on.to_string(),
            GroupBy::ReturnType => f.return_type.to_string(),
            GroupBy::Departure => f.departure_province.clone(),
            GroupBy::Destination => f.destination_province.clone(),
        }
    }
}

/// Counts over a set of families.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub families: u64,
    pub individuals: u64,
    pub men: u64,
    pub women: u64,
    pub children: u64,
}

impl Totals {
    pub fn add(&mut self, f: &FamilyFields) {
        let m = &f.members;
        self.families += 1;
        self.individuals += m.individuals();
        self.men += m.men();
        self.women += m.women();
        self.children += m.children();
    }
}

/// One line of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Totals, and a breakdown when one was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        if !self.filter.matches(f) {
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
