//! The figures agencies publish: families, individuals, men, women and
//! children, and the ten sex × age-band counts, filtered and broken down by
//! one or more keys. Computed the same way on a laptop and on the server,
//! from the compact report rows the stores keep ([`ReportRow`]).
//!
//! - [`table`]: a report as a flat table (one row per group, ISO code,
//!   p-code and name of each province) and its CSV and HXL forms, with
//!   small-cell suppression for tables that leave the organisation;
//! - [`summary`]: the sentence a sitrep quotes;
//! - `xlsx` (feature `xlsx`): the spreadsheet.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::family::{FamilyFields, ReturnType, ReviewState};

pub mod records;
pub mod render;
mod row;
pub mod summary;
pub mod table;
#[cfg(feature = "xlsx")]
pub mod xlsx;

pub use render::{RenderOptions, ReportFormat, render};
pub use row::ReportRow;
pub use table::FlatTable;

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
    /// Only families in this review state (`returnee review`). Report rows
    /// do not carry it: a report with it counts from the families' fields
    /// ([`ReportBuilder::needs_fields`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewState>,
}

impl ReportFilter {
    pub fn matches(&self, f: &FamilyFields) -> bool {
        self.matches_review(f) && ReportRow::of(f).is_some_and(|r| self.matches_row(&r))
    }

    /// Whether `f`'s review state is the one asked for (if one is).
    pub fn matches_review(&self, f: &FamilyFields) -> bool {
        self.review
            .is_none_or(|want| f.review().is_some_and(|r| r.state == want))
    }

    pub fn matches_row(&self, f: &ReportRow) -> bool {
        self.crossing.as_ref().is_none_or(|c| *c == f.crossing)
            && self.from.is_none_or(|d| f.crossed_on >= d)
            && self.to.is_none_or(|d| f.crossed_on <= d)
            && self.return_type.is_none_or(|t| t == f.return_type)
    }

    /// A problem if the range ends before it starts.
    pub fn range_problem(&self) -> Option<crate::Problem> {
        match (self.from, self.to) {
            (Some(from), Some(to)) if to < from => Some(crate::Problem::new(
                "to",
                format!(
                    "the range ends ({to}) before it starts ({from}); give --from a date on or before --to"
                ),
            )),
            _ => None,
        }
    }

    /// The filter in words, for the "what was counted" part of an export
    /// (`crossing=torkham, from=2026-09-01`; `none` when empty).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.crossing {
            parts.push(format!("crossing={c}"));
        }
        if let Some(d) = self.from {
            parts.push(format!("from={d}"));
        }
        if let Some(d) = self.to {
            parts.push(format!("to={d}"));
        }
        if let Some(t) = self.return_type {
            parts.push(format!("return-type={t}"));
        }
        if let Some(r) = self.review {
            parts.push(format!("review={r}"));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A key a report is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    Crossing,
    Date,
    ReturnType,
    Departure,
    Destination,
    /// The ISO week of the crossing date (`2026-W38`).
    Week,
    /// The month of the crossing date (`2026-09`).
    Month,
}

impl GroupBy {
    pub const ALL: [GroupBy; 7] = [
        GroupBy::Crossing,
        GroupBy::Date,
        GroupBy::ReturnType,
        GroupBy::Departure,
        GroupBy::Destination,
        GroupBy::Week,
        GroupBy::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Crossing => "crossing",
            GroupBy::Date => "date",
            GroupBy::ReturnType => "return-type",
            GroupBy::Departure => "departure",
            GroupBy::Destination => "destination",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<GroupBy> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        GroupBy::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// Parses a comma-separated list (`date,crossing,return-type`); the
    /// error says which key is wrong and what is accepted.
    pub fn parse_list(s: &str) -> Result<Vec<GroupBy>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g = GroupBy::parse(part).ok_or_else(|| {
                format!(
                    "'{part}' is not a breakdown; use one or more of {}, comma-separated",
                    GroupBy::ALL.map(|g| g.as_str()).join(", ")
                )
            })?;
            if out.contains(&g) {
                return Err(format!("'{part}' is given twice; name each breakdown once"));
            }
            out.push(g);
        }
        if out.is_empty() {
            return Err(format!(
                "no breakdown given; use one or more of {}",
                GroupBy::ALL.map(|g| g.as_str()).join(", ")
            ));
        }
        Ok(out)
    }

    fn key(self, f: &ReportRow) -> KeyPart {
        match self {
            GroupBy::Crossing => KeyPart::Code(f.crossing),
            GroupBy::Date => KeyPart::Date(f.crossed_on),
            GroupBy::ReturnType => KeyPart::Type(f.return_type),
            GroupBy::Departure => KeyPart::Code(f.departure_province),
            GroupBy::Destination => KeyPart::Code(f.destination_province),
            GroupBy::Week => {
                let w = f.crossed_on.iso_week();
                KeyPart::Week(w.year(), w.week())
            }
            GroupBy::Month => KeyPart::Month(f.crossed_on.year(), f.crossed_on.month()),
        }
    }
}

/// One part of a group's key, ordered as people read them (dates in time order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    Date(NaiveDate),
    Week(i32, u32),
    Month(i32, u32),
    Code(&'static str),
    Type(ReturnType),
}

impl std::fmt::Display for KeyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyPart::Date(d) => write!(f, "{d}"),
            KeyPart::Week(y, w) => write!(f, "{y}-W{w:02}"),
            KeyPart::Month(y, m) => write!(f, "{y}-{m:02}"),
            KeyPart::Code(c) => f.write_str(c),
            KeyPart::Type(t) => f.write_str(t.as_str()),
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
    /// Males by age band ([`crate::AGE_BANDS`]: 0-4, 5-11, 12-17, 18-59, 60+).
    #[serde(default)]
    pub males: [u64; 5],
    /// Females by age band.
    #[serde(default)]
    pub females: [u64; 5],
}

impl Totals {
    pub fn add(&mut self, f: &ReportRow) {
        let m = &f.members;
        self.families += 1;
        self.individuals += m.individuals();
        self.men += m.men();
        self.women += m.women();
        self.children += m.children();
        for i in 0..5 {
            self.males[i] += m.males[i] as u64;
            self.females[i] += m.females[i] as u64;
        }
    }
}

/// One line of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    /// The group's key: its `keys` joined with `|` (one key: the key itself).
    pub key: String,
    /// One value per breakdown key, in the order they were asked for.
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Totals of the families broken down by one or more keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Breakdown {
    pub by: Vec<GroupBy>,
    pub groups: Vec<Group>,
}

/// Totals, and a breakdown when one was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    #[serde(flatten)]
    pub totals: Totals,
    /// The keys of `groups`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<GroupBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
    /// Further breakdowns by one key each, when asked for
    /// ([`ReportBuilder::with_breakdowns`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakdowns: Vec<Breakdown>,
    /// The first crossing date counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<NaiveDate>,
    /// The last crossing date counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<NaiveDate>,
}

impl Report {
    /// The groups by `by` alone: a further breakdown, or the main one.
    pub fn breakdown(&self, by: GroupBy) -> Option<&[Group]> {
        self.breakdowns
            .iter()
            .find(|b| b.by == [by])
            .map(|b| b.groups.as_slice())
            .or_else(|| {
                (self.by == [by])
                    .then_some(self.groups.as_deref())
                    .flatten()
            })
    }
}

#[derive(Debug, Clone)]
struct Grouping {
    by: Vec<GroupBy>,
    groups: BTreeMap<Vec<KeyPart>, Totals>,
}

impl Grouping {
    fn new(by: Vec<GroupBy>) -> Grouping {
        Grouping {
            by,
            groups: BTreeMap::new(),
        }
    }

    fn add(&mut self, f: &ReportRow) {
        let key: Vec<KeyPart> = self.by.iter().map(|b| b.key(f)).collect();
        self.groups.entry(key).or_default().add(f);
    }

    fn finish(self) -> Breakdown {
        Breakdown {
            by: self.by,
            groups: self
                .groups
                .into_iter()
                .map(|(parts, totals)| {
                    let keys: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                    Group {
                        key: keys.join("|"),
                        keys,
                        totals,
                    }
                })
                .collect(),
        }
    }
}

/// Builds a report from families fed one at a time.
#[derive(Debug, Clone)]
pub struct ReportBuilder {
    filter: ReportFilter,
    main: Option<Grouping>,
    further: Vec<Grouping>,
    totals: Totals,
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
}

impl ReportBuilder {
    /// A report broken down by at most one key.
    pub fn new(filter: ReportFilter, by: Option<GroupBy>) -> Self {
        Self::grouped(filter, by.into_iter().collect())
    }

    /// A report broken down by every key of `by` at once (none: totals only).
    pub fn grouped(filter: ReportFilter, by: Vec<GroupBy>) -> Self {
        ReportBuilder {
            filter,
            main: (!by.is_empty()).then(|| Grouping::new(by)),
            further: Vec::new(),
            totals: Totals::default(),
            first: None,
            last: None,
        }
    }

    /// Also breaks the totals down by each of `each` alone (a spreadsheet's
    /// sheet each, the sentence's shares).
    pub fn with_breakdowns(mut self, each: &[GroupBy]) -> Self {
        for b in each {
            if !self.further.iter().any(|g| g.by == [*b]) {
                self.further.push(Grouping::new(vec![*b]));
            }
        }
        self
    }

    /// Whether the filter reads more of a family than its report row
    /// (its review state): count with [`ReportBuilder::add`] then.
    pub fn needs_fields(&self) -> bool {
        self.filter.review.is_some()
    }

    /// Counts one active family if it matches the filter.
    pub fn add(&mut self, f: &FamilyFields) {
        if !self.filter.matches_review(f) {
            return;
        }
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
        self.first = Some(self.first.map_or(f.crossed_on, |d| d.min(f.crossed_on)));
        self.last = Some(self.last.map_or(f.crossed_on, |d| d.max(f.crossed_on)));
        if let Some(g) = &mut self.main {
            g.add(f);
        }
        for g in &mut self.further {
            g.add(f);
        }
    }

    pub fn finish(self) -> Report {
        let main = self.main.map(Grouping::finish);
        Report {
            totals: self.totals,
            by: main.as_ref().map(|m| m.by.clone()).unwrap_or_default(),
            groups: main.map(|m| m.groups),
            breakdowns: self.further.into_iter().map(Grouping::finish).collect(),
            first: self.first,
            last: self.last,
        }
    }
}
