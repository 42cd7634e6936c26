//! The rules that hold across several fields of a record, by name.
//!
//! Each entry path refuses a record that breaks one (see
//! [`FamilyFields::check`]); but concurrent edits of different fields, each
//! valid, can merge into a record that breaks one (consent withdrawn on one
//! laptop while another adds the head's name). The merge rules
//! (`merge::rules`) then show the record with a `rule` conflict naming
//! the rule, and hide the personal fields a rule protects.

use crate::family::{DocType, Documentation, FamilyFields, Sex, Vulnerability};
use crate::validate::{FieldName, FieldValue};

/// A rule across fields that a merged record can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A head's name or a document number needs the family's consent.
    Consent,
    /// A document number needs a document type.
    DocumentType,
    /// `undocumented` stands alone among the documents.
    UndocumentedAlone,
    /// A female-headed household does not have a male head.
    FemaleHeaded,
}

impl Rule {
    pub const ALL: [Rule; 4] = [
        Rule::Consent,
        Rule::DocumentType,
        Rule::UndocumentedAlone,
        Rule::FemaleHeaded,
    ];

    /// The rule's name, as conflicts show it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Consent => "consent",
            Rule::DocumentType => "document-type",
            Rule::UndocumentedAlone => "undocumented-alone",
            Rule::FemaleHeaded => "female-headed",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name.trim())
    }

    /// The fields the rule reads.
    pub fn fields(self) -> &'static [FieldName] {
        match self {
            Rule::Consent => &[
                FieldName::Consent,
                FieldName::HeadName,
                FieldName::DocNumber,
            ],
            Rule::DocumentType => &[FieldName::DocType, FieldName::DocNumber],
            Rule::UndocumentedAlone => &[FieldName::Documentation],
            Rule::FemaleHeaded => &[FieldName::Vulnerabilities, FieldName::HeadSex],
        }
    }

    /// The fields no replica shows while the rule is broken (personal data
    /// it protects).
    pub fn hides(self) -> &'static [FieldName] {
        match self {
            Rule::Consent => &[FieldName::HeadName, FieldName::DocNumber],
            _ => &[],
        }
    }

    /// The values that clear the fields the rule hides.
    pub fn cleared(self) -> Vec<FieldValue> {
        self.hides()
            .iter()
            .filter_map(|f| match f {
                FieldName::HeadName => Some(FieldValue::HeadName(None)),
                FieldName::DocNumber => Some(FieldValue::DocNumber(None)),
                _ => None,
            })
            .collect()
    }

    /// What the rule says, and how a supervisor decides.
    pub fn message(self) -> &'static str {
        match self {
            Rule::Consent => {
                "a name or document number without consent: hidden until a supervisor decides \
                 (--value withdrawn drops them; --value consent=yes keeps them)"
            }
            Rule::DocumentType => {
                "a document number without a document type: give --value doc_type=TYPE or --value doc_number="
            }
            Rule::UndocumentedAlone => {
                "undocumented with other documents: give --value documentation=LIST"
            }
            Rule::FemaleHeaded => {
                "female-headed with a male head: give --value head_sex=f or --value vulnerabilities=LIST"
            }
        }
    }

    /// Whether `f` breaks the rule.
    pub fn broken_by(self, f: &FamilyFields) -> bool {
        match self {
            Rule::Consent => !f.consent && (f.head_name.is_some() || f.doc_number.is_some()),
            Rule::DocumentType => f.doc_number.is_some() && f.doc_type == DocType::None,
            Rule::UndocumentedAlone => {
                f.documentation.contains(&Documentation::Undocumented) && f.documentation.len() > 1
            }
            Rule::FemaleHeaded => {
                f.vulnerabilities.contains(&Vulnerability::FemaleHeaded)
                    && f.head_sex == Some(Sex::Male)
            }
        }
    }
}

impl Rule {
    /// Changes a field of `f` so that it keeps the rule, leaving the
    /// fields whose own values are checked alone: what every other rule
    /// says of `f` can then be checked apart from this one.
    pub fn mend(self, f: &mut FamilyFields) {
        match self {
            Rule::Consent => f.consent = true,
            Rule::DocumentType => f.doc_type = DocType::PorCard,
            Rule::UndocumentedAlone => {
                f.documentation.remove(&Documentation::Undocumented);
            }
            Rule::FemaleHeaded => f.head_sex = None,
        }
    }
}

/// The rules `f` breaks.
pub fn broken_rules(f: &FamilyFields) -> Vec<Rule> {
    Rule::ALL.into_iter().filter(|r| r.broken_by(f)).collect()
}
