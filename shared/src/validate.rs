//! Parsing and validation of family fields.
//!
//! Every entry path (command-line flags, the interactive form, CSV and JSONL
//! import, edits, conflict resolutions) goes through this module, so a rule
//! holds everywhere. Validation reports every problem of a record at once,
//! each naming the field and what is allowed.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::family::{
    DocType, Documentation, FamilyFields, Members, Referral, ReturnType, Review, ReviewState, Sex,
    Vulnerability,
};
use crate::reference;

mod parse;
pub mod rules;

use parse::*;
pub use parse::{
    parse_bool, parse_counts, parse_crossing, parse_date_only, parse_departure, parse_destination,
};

/// Largest household accepted.
pub const MAX_HOUSEHOLD: u64 = 60;
/// Longest note accepted, in characters.
pub const MAX_NOTES: usize = 500;
/// Longest head-of-household name accepted, in characters.
pub const MAX_NAME: usize = 100;
/// Longest document number accepted, in characters.
pub const MAX_DOC_NUMBER: usize = 40;

/// The earliest crossing date accepted.
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date")
}

/// One thing wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The field, as named in JSON and CSV (`crossing`, `males`, `consent` …).
    pub field: String,
    /// What was wrong and what is allowed. Never repeats a name or document number.
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub struct ValidationError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the family was not saved: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl ValidationError {
    /// All problems on one line, for a CSV row report.
    pub fn one_line(&self) -> String {
        self.problems
            .iter()
            .map(Problem::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The editable fields of a family, by the name used in JSON, CSV and conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldName {
    Crossing,
    CrossedOn,
    ReturnType,
    DepartureProvince,
    DestinationProvince,
    Members,
    HeadName,
    HeadSex,
    DocType,
    DocNumber,
    Consent,
    Vulnerabilities,
    Documentation,
    ProtectionReferral,
    Notes,
    /// A supervisor's review (`returnee review`).
    Review,
}

impl FieldName {
    pub const ALL: [FieldName; 16] = [
        FieldName::Crossing,
        FieldName::CrossedOn,
        FieldName::ReturnType,
        FieldName::DepartureProvince,
        FieldName::DestinationProvince,
        FieldName::Members,
        FieldName::HeadName,
        FieldName::HeadSex,
        FieldName::DocType,
        FieldName::DocNumber,
        FieldName::Consent,
        FieldName::Vulnerabilities,
        FieldName::Documentation,
        FieldName::ProtectionReferral,
        FieldName::Notes,
        FieldName::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldName::Crossing => "crossing",
            FieldName::CrossedOn => "crossed_on",
            FieldName::ReturnType => "return_type",
            FieldName::DepartureProvince => "departure_province",
            FieldName::DestinationProvince => "destination_province",
            FieldName::Members => "members",
            FieldName::HeadName => "head_name",
            FieldName::HeadSex => "head_sex",
            FieldName::DocType => "doc_type",
            FieldName::DocNumber => "doc_number",
            FieldName::Consent => "consent",
            FieldName::Vulnerabilities => "vulnerabilities",
            FieldName::Documentation => "documentation",
            FieldName::ProtectionReferral => "protection_referral",
            FieldName::Notes => "notes",
            FieldName::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<FieldName> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        FieldName::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The fields an erasure removes from every replica (`returnee erase`,
    /// [`crate::merge::erasure`]): what identifies or describes the person.
    /// Nothing a report counts is among them.
    pub const ERASED: [FieldName; 5] = [
        FieldName::HeadName,
        FieldName::DocNumber,
        FieldName::Notes,
        FieldName::Vulnerabilities,
        FieldName::ProtectionReferral,
    ];

    /// Whether the value is personal data that must never reach a log or an error.
    pub fn is_personal(self) -> bool {
        matches!(self, FieldName::HeadName | FieldName::DocNumber)
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new value for one field: the unit of an edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum FieldValue {
    Crossing(String),
    CrossedOn(NaiveDate),
    ReturnType(ReturnType),
    DepartureProvince(String),
    DestinationProvince(String),
    Members(Members),
    HeadName(Option<String>),
    HeadSex(Option<Sex>),
    DocType(DocType),
    DocNumber(Option<String>),
    Consent(bool),
    Vulnerabilities(BTreeSet<Vulnerability>),
    Documentation(BTreeSet<Documentation>),
    ProtectionReferral(Option<Referral>),
    Notes(Option<String>),
    Review(Option<Review>),
}

fn join<T: fmt::Display>(items: impl IntoIterator<Item = T>, sep: &str) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

impl FieldValue {
    pub fn name(&self) -> FieldName {
        match self {
            FieldValue::Crossing(_) => FieldName::Crossing,
            FieldValue::CrossedOn(_) => FieldName::CrossedOn,
            FieldValue::ReturnType(_) => FieldName::ReturnType,
            FieldValue::DepartureProvince(_) => FieldName::DepartureProvince,
            FieldValue::DestinationProvince(_) => FieldName::DestinationProvince,
            FieldValue::Members(_) => FieldName::Members,
            FieldValue::HeadName(_) => FieldName::HeadName,
            FieldValue::HeadSex(_) => FieldName::HeadSex,
            FieldValue::DocType(_) => FieldName::DocType,
            FieldValue::DocNumber(_) => FieldName::DocNumber,
            FieldValue::Consent(_) => FieldName::Consent,
            FieldValue::Vulnerabilities(_) => FieldName::Vulnerabilities,
            FieldValue::Documentation(_) => FieldName::Documentation,
            FieldValue::ProtectionReferral(_) => FieldName::ProtectionReferral,
            FieldValue::Notes(_) => FieldName::Notes,
            FieldValue::Review(_) => FieldName::Review,
        }
    }

    /// The value as a person types it (and as `parse` reads it back).
    pub fn display(&self) -> String {
        fn opt<T: fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map(|v| v.to_string()).unwrap_or_default()
        }
        match self {
            FieldValue::Crossing(s)
            | FieldValue::DepartureProvince(s)
            | FieldValue::DestinationProvince(s) => s.clone(),
            FieldValue::CrossedOn(d) => d.to_string(),
            FieldValue::ReturnType(t) => t.to_string(),
            FieldValue::Members(m) => format!(
                "males={} females={}",
                join(m.males, ","),
                join(m.females, ",")
            ),
            FieldValue::HeadName(s) | FieldValue::DocNumber(s) | FieldValue::Notes(s) => opt(s),
            FieldValue::HeadSex(s) => opt(s),
            FieldValue::DocType(t) => t.to_string(),
            FieldValue::Consent(c) => if *c { "yes" } else { "no" }.to_string(),
            FieldValue::Vulnerabilities(v) => join(v, ";"),
            FieldValue::Documentation(d) => join(d, ";"),
            FieldValue::ProtectionReferral(r) => opt(r),
            FieldValue::Review(r) => opt(r),
        }
    }

    /// The value for display where personal data must not appear.
    pub fn display_redacted(&self) -> String {
        if self.name().is_personal() {
            match self {
                FieldValue::HeadName(None) | FieldValue::DocNumber(None) => String::new(),
                _ => "(personal data hidden)".to_string(),
            }
        } else {
            self.display()
        }
    }

    /// Parses the typed form of one field. `members` takes
    /// `males=A,B,C,D,E females=A,B,C,D,E` or the ten counts separated by commas.
    pub fn parse(field: FieldName, input: &str) -> Result<FieldValue, Problem> {
        let text = input.trim();
        let blank = text.is_empty();
        let opt_text = || (!blank).then(|| text.to_string());
        Ok(match field {
            FieldName::Crossing => FieldValue::Crossing(parse_crossing(text)?),
            FieldName::CrossedOn => FieldValue::CrossedOn(parse_date("crossed_on", text)?),
            FieldName::ReturnType => FieldValue::ReturnType(parse_return_type(text)?),
            FieldName::DepartureProvince => FieldValue::DepartureProvince(parse_departure(text)?),
            FieldName::DestinationProvince => {
                FieldValue::DestinationProvince(parse_destination(text)?)
            }
            FieldName::Members => FieldValue::Members(parse_members_text(text)?),
            FieldName::HeadName => FieldValue::HeadName(opt_text()),
            FieldName::HeadSex => {
                FieldValue::HeadSex(if blank { None } else { Some(parse_sex(text)?) })
            }
            FieldName::DocType => FieldValue::DocType(if blank {
                DocType::None
            } else {
                parse_doc_type(text)?
            }),
            FieldName::DocNumber => FieldValue::DocNumber(opt_text()),
            FieldName::Consent => FieldValue::Consent(parse_bool("consent", text)?),
            FieldName::Vulnerabilities => {
                FieldValue::Vulnerabilities(parse_set(text.split([';', ',']), parse_vulnerability)?)
            }
            FieldName::Documentation => {
                FieldValue::Documentation(parse_set(text.split([';', ',']), parse_documentation)?)
            }
            FieldName::ProtectionReferral => FieldValue::ProtectionReferral(if blank {
                None
            } else {
                Some(parse_referral(text)?)
            }),
            FieldName::Notes => FieldValue::Notes(opt_text()),
            FieldName::Review => FieldValue::Review(if blank {
                None
            } else {
                Some(parse_review(text)?)
            }),
        })
    }
}

impl FamilyFields {
    /// The current value of one field.
    pub fn get(&self, field: FieldName) -> FieldValue {
        match field {
            FieldName::Crossing => FieldValue::Crossing(self.crossing.clone()),
            FieldName::CrossedOn => FieldValue::CrossedOn(self.crossed_on),
            FieldName::ReturnType => FieldValue::ReturnType(self.return_type),
            FieldName::DepartureProvince => {
                FieldValue::DepartureProvince(self.departure_province.clone())
            }
            FieldName::DestinationProvince => {
                FieldValue::DestinationProvince(self.destination_province.clone())
            }
            FieldName::Members => FieldValue::Members(self.members),
            FieldName::HeadName => FieldValue::HeadName(self.head_name.clone()),
            FieldName::HeadSex => FieldValue::HeadSex(self.head_sex),
            FieldName::DocType => FieldValue::DocType(self.doc_type),
            FieldName::DocNumber => FieldValue::DocNumber(self.doc_number.clone()),
            FieldName::Consent => FieldValue::Consent(self.consent),
            FieldName::Vulnerabilities => FieldValue::Vulnerabilities(self.vulnerabilities.clone()),
            FieldName::Documentation => FieldValue::Documentation(self.documentation.clone()),
            FieldName::ProtectionReferral => {
                FieldValue::ProtectionReferral(self.protection_referral)
            }
            FieldName::Notes => FieldValue::Notes(self.notes.clone()),
            FieldName::Review => FieldValue::Review(self.review()),
        }
    }

    /// Sets one field.
    pub fn set(&mut self, value: FieldValue) {
        match value {
            FieldValue::Crossing(v) => self.crossing = v,
            FieldValue::CrossedOn(v) => self.crossed_on = v,
            FieldValue::ReturnType(v) => self.return_type = v,
            FieldValue::DepartureProvince(v) => self.departure_province = v,
            FieldValue::DestinationProvince(v) => self.destination_province = v,
            FieldValue::Members(v) => self.members = v,
            FieldValue::HeadName(v) => self.head_name = v,
            FieldValue::HeadSex(v) => self.head_sex = v,
            FieldValue::DocType(v) => self.doc_type = v,
            FieldValue::DocNumber(v) => self.doc_number = v,
            FieldValue::Consent(v) => self.consent = v,
            FieldValue::Vulnerabilities(v) => self.vulnerabilities = v,
            FieldValue::Documentation(v) => self.documentation = v,
            FieldValue::ProtectionReferral(v) => self.protection_referral = v,
            FieldValue::Notes(v) => self.notes = v,
            FieldValue::Review(v) => self.set_review(v),
        }
    }

    /// The fields whose values differ from `other`, with `other`'s values.
    pub fn changes_to(&self, other: &FamilyFields) -> Vec<FieldValue> {
        FieldName::ALL
            .into_iter()
            .map(|f| other.get(f))
            .filter(|v| self.get(v.name()) != *v)
            .collect()
    }

    /// Checks the rules that hold for a whole record. `today` is the device's
    /// date; a crossing date after it is refused.
    pub fn check(&self, today: NaiveDate) -> Result<(), ValidationError> {
        let problems = self.problems(today);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { problems })
        }
    }

    fn problems(&self, today: NaiveDate) -> Vec<Problem> {
        let mut p = Vec::new();
        if reference::crossing(&self.crossing).map(|c| c.entry.code.as_str())
            != Some(self.crossing.as_str())
        {
            p.push(crossing_problem(&self.crossing));
        }
        if let Err(e) = check_date("crossed_on", self.crossed_on, today) {
            p.push(e);
        }
        if reference::departure(&self.departure_province).as_deref()
            != Some(self.departure_province.as_str())
        {
            p.push(departure_problem(&self.departure_province));
        }
        if reference::destination(&self.destination_province).as_deref()
            != Some(self.destination_province.as_str())
        {
            p.push(destination_problem(&self.destination_province));
        }
        let size = self.members.individuals();
        if !(1..=MAX_HOUSEHOLD).contains(&size) {
            p.push(Problem::new(
                "members",
                format!(
                    "household size is {size}; it must be from 1 to {MAX_HOUSEHOLD} \
                     (the sum of the ten --males and --females counts)"
                ),
            ));
        }
        if let Some(name) = &self.head_name {
            if name.trim().is_empty() {
                p.push(Problem::new("head_name", "is blank; leave it out instead"));
            } else if name.chars().count() > MAX_NAME {
                p.push(Problem::new(
                    "head_name",
                    format!("is longer than {MAX_NAME} characters; shorten it"),
                ));
            } else if name.chars().any(char::is_control) {
                p.push(Problem::new(
                    "head_name",
                    "contains control characters (tabs, line breaks); use letters, spaces, - and '",
                ));
            }
        }
        if let Some(doc) = &self.doc_number {
            if self.doc_type == DocType::None {
                p.push(Problem::new(
                    "doc_number",
                    format!(
                        "a document number needs a document type; give --doc-type ({})",
                        DocType::ALL
                            .iter()
                            .filter(|t| **t != DocType::None)
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if doc.trim().is_empty() {
                p.push(Problem::new("doc_number", "is blank; leave it out instead"));
            } else if doc.chars().count() > MAX_DOC_NUMBER
                || !doc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | ' '))
            {
                p.push(Problem::new(
                    "doc_number",
                    format!("must be at most {MAX_DOC_NUMBER} letters, digits, spaces, '-' or '/'"),
                ));
            }
        }
        if !self.consent {
            if self.head_name.is_some() {
                p.push(Problem::new(
                    "head_name",
                    "cannot be stored without consent; record consent (--consent) or leave the name out",
                ));
            }
            if self.doc_number.is_some() {
                p.push(Problem::new(
                    "doc_number",
                    "cannot be stored without consent; record consent (--consent) or leave the number out",
                ));
            }
        }
        if self.documentation.contains(&Documentation::Undocumented) && self.documentation.len() > 1
        {
            p.push(Problem::new(
                "documentation",
                "undocumented stands alone; remove it or the other documents",
            ));
        }
        if self.vulnerabilities.contains(&Vulnerability::FemaleHeaded)
            && self.head_sex == Some(Sex::Male)
        {
            p.push(Problem::new(
                "vulnerabilities",
                "female-headed does not fit a male head of household (head_sex m); correct one of them",
            ));
        }
        if let Some(note) = self.review().and_then(|r| r.note)
            && (note.chars().count() > MAX_NOTES || note.chars().any(char::is_control))
        {
            p.push(Problem::new(
                "review",
                format!("the note must be one line of at most {MAX_NOTES} characters"),
            ));
        }
        if let Some(notes) = &self.notes
            && notes.chars().count() > MAX_NOTES
        {
            p.push(Problem::new(
                "notes",
                format!(
                    "is {} characters long; at most {MAX_NOTES} are allowed",
                    notes.chars().count()
                ),
            ));
        }
        p
    }
}

/// A family as typed: every field a string, as it came from flags, a form or a CSV row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyDraft {
    pub crossing: Option<String>,
    pub crossed_on: Option<String>,
    pub return_type: Option<String>,
    pub departure_province: Option<String>,
    pub destination_province: Option<String>,
    pub males: Option<String>,
    pub females: Option<String>,
    pub head_name: Option<String>,
    pub head_sex: Option<String>,
    pub doc_type: Option<String>,
    pub doc_number: Option<String>,
    pub consent: Option<String>,
    pub vulnerabilities: Vec<String>,
    pub documentation: Vec<String>,
    pub protection_referral: Option<String>,
    pub notes: Option<String>,
}

fn non_blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl FamilyDraft {
    /// Parses and checks a new family; every problem is reported at once.
    pub fn build(&self, today: NaiveDate) -> Result<FamilyFields, ValidationError> {
        let mut problems = Vec::new();
        let mut need = |field: &str, flag: &str, v: &Option<String>| -> Option<String> {
            let got = non_blank(v).map(str::to_string);
            if got.is_none() {
                problems.push(Problem::new(field, format!("is required; give {flag}")));
            }
            got
        };
        let crossing = need("crossing", "--crossing", &self.crossing);
        let crossed_on = need("crossed_on", "--date YYYY-MM-DD", &self.crossed_on);
        let return_type = need("return_type", "--return-type", &self.return_type);
        let departure = need(
            "departure_province",
            "--departure",
            &self.departure_province,
        );
        let destination = need(
            "destination_province",
            "--destination",
            &self.destination_province,
        );
        let males = need("males", "--males A,B,C,D,E", &self.males);
        let females = need("females", "--females A,B,C,D,E", &self.females);

        fn take<T>(problems: &mut Vec<Problem>, r: Option<Result<T, Problem>>) -> Option<T> {
            match r {
                Some(Ok(v)) => Some(v),
                Some(Err(p)) => {
                    problems.push(p);
                    None
                }
                None => None,
            }
        }
        let crossing = take(&mut problems, crossing.map(|s| parse_crossing(&s)));
        let crossed_on = take(
            &mut problems,
            crossed_on.map(|s| parse_date("crossed_on", &s)),
        );
        let return_type = take(&mut problems, return_type.map(|s| parse_return_type(&s)));
        let departure = take(&mut problems, departure.map(|s| parse_departure(&s)));
        let destination = take(&mut problems, destination.map(|s| parse_destination(&s)));
        let males = take(&mut problems, males.map(|s| parse_counts("males", &s)));
        let females = take(&mut problems, females.map(|s| parse_counts("females", &s)));
        let head_sex = take(&mut problems, non_blank(&self.head_sex).map(parse_sex));
        let doc_type = take(&mut problems, non_blank(&self.doc_type).map(parse_doc_type))
            .unwrap_or(DocType::None);
        let consent = take(
            &mut problems,
            non_blank(&self.consent).map(|s| parse_bool("consent", s)),
        )
        .unwrap_or(false);
        let vulnerabilities = take(
            &mut problems,
            Some(parse_set(
                self.vulnerabilities
                    .iter()
                    .flat_map(|s| s.split([';', ','])),
                parse_vulnerability,
            )),
        );
        let documentation = take(
            &mut problems,
            Some(parse_set(
                self.documentation.iter().flat_map(|s| s.split([';', ','])),
                parse_documentation,
            )),
        );
        let referral = take(
            &mut problems,
            non_blank(&self.protection_referral).map(parse_referral),
        );

        // Fields that failed to parse get a valid stand-in, so that the rules
        // about the other fields (dates, consent, notes …) are still checked
        // and every problem is reported at once.
        let failed = crossing.is_none()
            || crossed_on.is_none()
            || return_type.is_none()
            || departure.is_none()
            || destination.is_none()
            || males.is_none()
            || females.is_none()
            || vulnerabilities.is_none()
            || documentation.is_none();
        let males_ok = males.is_some() && females.is_some();
        let fields = FamilyFields {
            crossing: crossing.unwrap_or_else(|| reference::crossings()[0].entry.code.clone()),
            crossed_on: crossed_on.unwrap_or_else(earliest_date),
            return_type: return_type.unwrap_or(ReturnType::Spontaneous),
            departure_province: departure
                .unwrap_or_else(|| reference::UNKNOWN_DEPARTURE.to_string()),
            destination_province: destination
                .unwrap_or_else(|| reference::UNDECIDED_DESTINATION.to_string()),
            members: Members {
                males: males.unwrap_or([1, 0, 0, 0, 0]),
                females: females.unwrap_or([0; 5]),
            },
            head_name: self.head_name.clone().filter(|s| !s.trim().is_empty()),
            head_sex,
            doc_type,
            doc_number: self.doc_number.clone().filter(|s| !s.trim().is_empty()),
            consent,
            vulnerabilities: vulnerabilities.unwrap_or_default(),
            documentation: documentation.unwrap_or_default(),
            protection_referral: referral,
            notes: self.notes.clone().filter(|s| !s.is_empty()),
            extra: Default::default(),
        };
        if let Err(e) = fields.check(today) {
            let reported: BTreeSet<String> = problems.iter().map(|p| p.field.clone()).collect();
            problems.extend(
                e.problems
                    .into_iter()
                    .filter(|p| !reported.contains(&p.field) && (males_ok || p.field != "members")),
            );
        }
        debug_assert!(
            !failed || !problems.is_empty(),
            "a parse failure without a problem"
        );
        if problems.is_empty() {
            Ok(fields)
        } else {
            Err(ValidationError { problems })
        }
    }
}

/// A review as a person types it: `STATE` or `STATE: note`.
fn parse_review(text: &str) -> Result<Review, Problem> {
    let (state, note) = match text.split_once(':') {
        Some((s, n)) => (s, Some(n.trim().to_string()).filter(|n| !n.is_empty())),
        None => (text, None),
    };
    let state = ReviewState::parse(state).ok_or_else(|| {
        Problem::new(
            "review",
            format!(
                "'{}' is not a review state; use one of {}",
                state.trim(),
                ReviewState::allowed()
            ),
        )
    })?;
    Ok(Review { state, note })
}
