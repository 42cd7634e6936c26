//! The family record: one family that crossed the border is one record.
//!
//! `FamilyFields` holds what a worker types; `Family` adds the identity and
//! provenance that the device sets. Derived figures (men, women, children,
//! individuals) are computed from the member counts and never stored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map($name)
            }
        }
    };
}

id_type!(
    /// The id of a family record: a UUID v7 made on the device that recorded it.
    RecordId
);
id_type!(
    /// The id of an enrolled device (a laptop's local store).
    DeviceId
);

id_type!(
    /// The id of one change to one record (an operation): a UUID v7 made where
    /// the change was made. Used for identity and deduplication, never for order.
    OpId
);

impl OpId {
    /// A clock-independent total order used only to choose which of several
    /// concurrent values is shown while their conflict is open: the random
    /// bits of the UUID first, so a device with a fast clock gains nothing.
    pub fn tiebreak_key(&self) -> [u8; 16] {
        let b = self.0.as_bytes();
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&b[8..]);
        k[8..].copy_from_slice(&b[..8]);
        k
    }
}

/// Defines a closed set of kebab-case string values with parsing that lists
/// the allowed values when it fails.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        // By hand: the derive does not see a rename given through the macro.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and displayed form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The allowed values, comma-separated, for messages.
            pub fn allowed() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }

            /// Parses the stored form, in any case, with `_` or space for `-`.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// How the family came back.
    ReturnType {
        Spontaneous => "spontaneous",
        Deported => "deported",
        Assisted => "assisted",
    }
);

string_enum!(
    /// Sex of the head of household.
    Sex {
        Male => "m",
        Female => "f",
    }
);

impl Sex {
    /// Accepts `m`, `f`, `male` and `female` in any case.
    pub fn parse_loose(s: &str) -> Option<Sex> {
        match s.trim().to_ascii_lowercase().as_str() {
            "m" | "male" => Some(Sex::Male),
            "f" | "female" => Some(Sex::Female),
            _ => None,
        }
    }
}

string_enum!(
    /// The document the head of household showed.
    DocType {
        PorCard => "por-card",
        Acc => "acc",
        Tazkira => "tazkira",
        Passport => "passport",
        None => "none",
    }
);

string_enum!(
    /// Specific needs recorded for protection follow-up.
    Vulnerability {
        FemaleHeaded => "female-headed",
        SingleParent => "single-parent",
        UnaccompaniedChild => "unaccompanied-child",
        SeparatedChild => "separated-child",
        UnaccompaniedElderly => "unaccompanied-elderly",
        Disability => "disability",
        SeriousMedical => "serious-medical",
        ChronicIllness => "chronic-illness",
        SingleFemale => "single-female",
        Widow => "widow",
        PregnantOrLactating => "pregnant-or-lactating",
    }
);

string_enum!(
    /// Documents the family holds.
    Documentation {
        PorCard => "por-card",
        Acc => "acc",
        Tazkira => "tazkira",
        PassportVisa => "passport-visa",
        Undocumented => "undocumented",
    }
);

string_enum!(
    /// Why protection staff should look at this family.
    Referral {
        ResettlementCasePending => "resettlement-case-pending",
        Medical => "medical",
        ChildProtection => "child-protection",
        Gbv => "gbv",
        Other => "other",
    }
);

/// The UNHCR standard age bands, in the order counts are given.
pub const AGE_BANDS: [&str; 5] = ["0-4", "5-11", "12-17", "18-59", "60+"];

/// Household members counted by sex and age band (0–4, 5–11, 12–17, 18–59, 60+).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Members {
    #[schema(min_items = 5, max_items = 5)]
    pub males: [u32; 5],
    #[schema(min_items = 5, max_items = 5)]
    pub females: [u32; 5],
}

impl Members {
    /// Everyone in the household.
    pub fn individuals(&self) -> u64 {
        self.males
            .iter()
            .chain(&self.females)
            .map(|&n| n as u64)
            .sum()
    }
    /// Males aged 18 and over.
    pub fn men(&self) -> u64 {
        (self.males[3] + self.males[4]) as u64
    }
    /// Females aged 18 and over.
    pub fn women(&self) -> u64 {
        (self.females[3] + self.females[4]) as u64
    }
    /// Everyone under 18.
    pub fn children(&self) -> u64 {
        self.males[..3]
            .iter()
            .chain(&self.females[..3])
            .map(|&n| n as u64)
            .sum()
    }
}

string_enum!(
    /// Where a supervisor's review of a family stands.
    ReviewState {
        Approved => "approved",
        HasIssues => "has-issues",
        SentBack => "sent-back",
        Resubmitted => "resubmitted",
    }
);

/// A family's review: its state and a note for the worker (`returnee
/// review`). A field like the others (edited, synced and merged the same
/// way), kept under the key `review` beside the fields a later release may
/// add, so that a release that does not know it carries it unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Review {
    pub state: ReviewState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The key of [`FamilyFields::extra`] that holds the review.
const REVIEW_KEY: &str = "review";

impl fmt::Display for Review {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.note {
            Some(note) => write!(f, "{}: {note}", self.state),
            None => write!(f, "{}", self.state),
        }
    }
}

impl FamilyFields {
    /// The family's review, if it has one (a value that does not read as
    /// one counts as none).
    pub fn review(&self) -> Option<Review> {
        self.extra
            .get(REVIEW_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Sets (or with `None` removes) the family's review.
    pub fn set_review(&mut self, review: Option<Review>) {
        match review {
            Some(r) => {
                let v = serde_json::to_value(r).expect("a review serializes");
                self.extra.insert(REVIEW_KEY.to_string(), v);
            }
            None => {
                self.extra.remove(REVIEW_KEY);
            }
        }
    }
}

/// What a worker records about a family: every field that can be edited.
/// Other keys (fields a later release added) are kept and sent back unchanged.
// Read by a hand-written `Deserialize` (`family/fields_json.rs`) that
// takes the same JSON as a derive with these attributes, and keeps the
// keys it does not know in `extra` without buffering the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FamilyFields {
    pub crossing: String,
    pub crossed_on: NaiveDate,
    pub return_type: ReturnType,
    pub departure_province: String,
    pub destination_province: String,
    pub members: Members,
    #[serde(default)]
    pub head_name: Option<String>,
    #[serde(default)]
    pub head_sex: Option<Sex>,
    #[serde(default = "no_doc")]
    pub doc_type: DocType,
    #[serde(default)]
    pub doc_number: Option<String>,
    #[serde(default)]
    pub consent: bool,
    #[serde(default)]
    pub vulnerabilities: BTreeSet<Vulnerability>,
    #[serde(default)]
    pub documentation: BTreeSet<Documentation>,
    #[serde(default)]
    pub protection_referral: Option<Referral>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Fields this release does not know (added by a later one), kept as
    /// they came and written back unchanged: a record passes through an
    /// older laptop untouched (PROTOCOL.md, "Versions"). Never validated,
    /// shown, counted or edited here. A [`Family`]'s own keys (`id`,
    /// `recorded_by`, `recorded_at`) are never taken for one.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: ExtraFields,
}

/// The fields of a record this release does not know, by name, as JSON.
pub type ExtraFields = BTreeMap<String, serde_json::Value>;

/// `FamilyFields`' `Deserialize`: the derive's, plus [`FamilyFields::extra`].
mod fields_json;

/// A family record as every replica shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub id: RecordId,
    #[serde(flatten)]
    pub fields: FamilyFields,
    /// The device that first recorded the family.
    pub recorded_by: DeviceId,
    /// When it was first recorded, by that device's clock (display only).
    pub recorded_at: DateTime<Utc>,
}

impl Family {
    /// Household size.
    pub fn individuals(&self) -> u64 {
        self.fields.members.individuals()
    }
}
