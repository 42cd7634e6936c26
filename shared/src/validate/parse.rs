//! Parsing each field's text as people type it, with a message that says
//! what was wrong and what is accepted.

use super::*;

pub(super) fn crossing_problem(input: &str) -> Problem {
    Problem::new(
        "crossing",
        format!(
            "'{}' is not a known crossing; use one of {}",
            input,
            reference::crossing_codes()
        ),
    )
}

pub(super) fn departure_problem(input: &str) -> Problem {
    Problem::new(
        "departure_province",
        format!(
            "'{input}' is not a province of Pakistan; use an ISO 3166-2:PK code ({}) or a name, or 'unknown'",
            reference::pk_provinces()
                .iter()
                .map(|e| e.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

pub(super) fn destination_problem(input: &str) -> Problem {
    Problem::new(
        "destination_province",
        format!(
            "'{input}' is not a province of Afghanistan; use an ISO 3166-2:AF code (AF-KAB, AF-NAN, …) or a name such as Nangarhar, or 'undecided'"
        ),
    )
}

/// A crossing code or name → its canonical code.
pub fn parse_crossing(s: &str) -> Result<String, Problem> {
    reference::crossing(s)
        .map(|c| c.entry.code.clone())
        .ok_or_else(|| crossing_problem(s))
}

/// A Pakistani province code or name, or `unknown` → its canonical code.
pub fn parse_departure(s: &str) -> Result<String, Problem> {
    reference::departure(s).ok_or_else(|| departure_problem(s))
}

/// An Afghan province code or name, or `undecided` → its canonical code.
pub fn parse_destination(s: &str) -> Result<String, Problem> {
    reference::destination(s).ok_or_else(|| destination_problem(s))
}

/// A `YYYY-MM-DD` date (no range check).
pub fn parse_date_only(field: &str, s: &str) -> Result<NaiveDate, Problem> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Problem::new(
            field,
            format!(
                "'{}' is not a date; write it as YYYY-MM-DD, e.g. 2026-09-17",
                s.trim()
            ),
        )
    })
}

pub(super) fn check_date(
    field: &str,
    d: NaiveDate,
    today: NaiveDate,
) -> Result<NaiveDate, Problem> {
    if d > today {
        Err(Problem::new(
            field,
            format!(
                "{d} is in the future (today is {today}); check the date and the laptop's clock"
            ),
        ))
    } else if d < earliest_date() {
        Err(Problem::new(
            field,
            format!("{d} is before 2000-01-01; check the year"),
        ))
    } else {
        Ok(d)
    }
}

pub(super) fn parse_date(field: &str, s: &str) -> Result<NaiveDate, Problem> {
    parse_date_only(field, s)
}

pub(super) fn parse_return_type(s: &str) -> Result<ReturnType, Problem> {
    ReturnType::parse(s).ok_or_else(|| {
        Problem::new(
            "return_type",
            format!(
                "'{s}' is not a return type; use one of {}",
                ReturnType::allowed()
            ),
        )
    })
}

pub(super) fn parse_sex(s: &str) -> Result<Sex, Problem> {
    Sex::parse_loose(s)
        .ok_or_else(|| Problem::new("head_sex", format!("'{s}' is not allowed; use m or f")))
}

pub(super) fn parse_doc_type(s: &str) -> Result<DocType, Problem> {
    DocType::parse(s).ok_or_else(|| {
        Problem::new(
            "doc_type",
            format!(
                "'{s}' is not a document type; use one of {}",
                DocType::allowed()
            ),
        )
    })
}

pub(super) fn parse_referral(s: &str) -> Result<Referral, Problem> {
    Referral::parse(s).ok_or_else(|| {
        Problem::new(
            "protection_referral",
            format!(
                "'{s}' is not a referral reason; use one of {}",
                Referral::allowed()
            ),
        )
    })
}

pub(super) fn parse_vulnerability(s: &str) -> Result<Vulnerability, Problem> {
    Vulnerability::parse(s).ok_or_else(|| {
        Problem::new(
            "vulnerabilities",
            format!(
                "'{s}' is not a vulnerability; use one of {}",
                Vulnerability::allowed()
            ),
        )
    })
}

pub(super) fn parse_documentation(s: &str) -> Result<Documentation, Problem> {
    Documentation::parse(s).ok_or_else(|| {
        Problem::new(
            "documentation",
            format!(
                "'{s}' is not a kind of documentation; use one of {}",
                Documentation::allowed()
            ),
        )
    })
}

pub(super) fn parse_set<'a, T: Ord>(
    items: impl Iterator<Item = &'a str>,
    parse: impl Fn(&str) -> Result<T, Problem>,
) -> Result<BTreeSet<T>, Problem> {
    items
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect()
}

/// `yes/no`, `true/false`, `y/n`, `1/0`.
pub fn parse_bool(field: &str, s: &str) -> Result<bool, Problem> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Ok(true),
        "no" | "n" | "false" | "0" | "" => Ok(false),
        other => Err(Problem::new(
            field,
            format!("'{other}' is not yes or no; use yes/no or true/false"),
        )),
    }
}

/// Five non-negative counts separated by commas, for the bands 0–4, 5–11, 12–17, 18–59, 60+.
pub fn parse_counts(field: &str, s: &str) -> Result<[u32; 5], Problem> {
    let bad = || {
        Problem::new(
            field,
            format!(
                "'{}' is not five counts; give the numbers of people aged 0-4, 5-11, 12-17, 18-59 and 60+ separated by commas, e.g. 1,2,0,1,0",
                s.trim()
            ),
        )
    };
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != 5 {
        return Err(bad());
    }
    let mut out = [0u32; 5];
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = part
            .parse::<u32>()
            .ok()
            .filter(|n| *n as u64 <= MAX_HOUSEHOLD)
            .ok_or_else(bad)?;
    }
    Ok(out)
}

pub(super) fn parse_members_text(s: &str) -> Result<Members, Problem> {
    let bad = || {
        Problem::new(
            "members",
            "give 'males=A,B,C,D,E females=A,B,C,D,E' (counts for ages 0-4, 5-11, 12-17, 18-59, 60+)",
        )
    };
    let mut males = None;
    let mut females = None;
    for part in s.split_whitespace() {
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        match k.trim().to_ascii_lowercase().as_str() {
            "males" | "m" => males = Some(parse_counts("members", v)?),
            "females" | "f" => females = Some(parse_counts("members", v)?),
            _ => return Err(bad()),
        }
    }
    match (males, females) {
        (Some(males), Some(females)) => Ok(Members { males, females }),
        _ => Err(bad()),
    }
}
