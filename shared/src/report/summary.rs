//! The paragraph a sitrep or a flash update quotes, written from a report's
//! numbers: the period, families, individuals, men, women and children, the
//! share deported, and the main provinces of departure and destination.
//!
//! The CLI's `returnee report --summary` and the dashboard print the same
//! words: build the report with [`ReportBuilder::with_breakdowns`] and
//! [`BREAKDOWNS`], then call [`sentence`].

use chrono::NaiveDate;

use super::{Group, GroupBy, Report, ReportBuilder, ReportFilter};
use crate::family::ReturnType;
use crate::reference;

/// The breakdowns [`sentence`] reads (return type, departure, destination).
pub const BREAKDOWNS: [GroupBy; 3] = [
    GroupBy::ReturnType,
    GroupBy::Departure,
    GroupBy::Destination,
];

/// How many provinces of departure and of destination are named.
pub const TOP: usize = 3;

/// A builder for the report [`sentence`] needs, over `filter`.
pub fn builder(filter: ReportFilter) -> ReportBuilder {
    ReportBuilder::grouped(filter, Vec::new()).with_breakdowns(&BREAKDOWNS)
}

/// The paragraph for `report`, which was built over `filter` (its dates
/// name the period; without them, the first and last crossing counted).
///
/// With `small_cells` (a shareable output), a count below it is written
/// "fewer than N" and a province that fewer than N families came from or
/// went to is not named.
pub fn sentence(report: &Report, filter: &ReportFilter, small_cells: Option<u64>) -> String {
    let t = &report.totals;
    let small = small_cells.unwrap_or(0);
    let count = |n: u64, one: &str, many: &str| -> String {
        if n > 0 && n < small {
            format!("fewer than {small} {many}")
        } else if n == 1 {
            format!("1 {one}")
        } else {
            format!("{} {many}", thousands(n))
        }
    };
    let period = period(
        filter.from.or(report.first),
        filter.to.or(report.last),
        filter.from.is_some() || filter.to.is_some(),
    );
    let through = filter
        .crossing
        .as_deref()
        .map(|c| format!(" through {}", reference::display_name(c)))
        .unwrap_or_default();
    let kind = filter
        .return_type
        .map(|r| format!("{r} "))
        .unwrap_or_default();
    if t.families == 0 {
        return match period {
            Some(p) => format!("{p}, no {kind}returning families were recorded{through}."),
            None => format!("No {kind}returning families have been recorded{through}."),
        };
    }
    let verb = if t.families == 1 { "was" } else { "were" };
    let mut out = format!(
        "{}{} {}{} ({}: {}, {} and {}) returned from Pakistan{through}.",
        period.map(|p| format!("{p}, ")).unwrap_or_default(),
        count(t.families, "", "").trim_end(),
        kind,
        if t.families == 1 {
            "family"
        } else {
            "families"
        },
        count(t.individuals, "individual", "individuals"),
        count(t.men, "man", "men"),
        count(t.women, "woman", "women"),
        count(t.children, "child", "children"),
    );
    if filter.return_type.is_none()
        && let Some(types) = report.breakdown(GroupBy::ReturnType)
        && t.families >= small
    {
        let deported = families_of(types, ReturnType::Deported.as_str());
        out.push_str(&format!(
            " {} of the families {verb} deported.",
            capitalise(&percent(deported, t.families))
        ));
    }
    let from = top(report.breakdown(GroupBy::Departure), t.families, small);
    let to = top(report.breakdown(GroupBy::Destination), t.families, small);
    match (from.is_empty(), to.is_empty()) {
        (false, false) => out.push_str(&format!(
            " Most came from {} and were going to {}.",
            list(&from),
            list(&to)
        )),
        (false, true) => out.push_str(&format!(" Most came from {}.", list(&from))),
        (true, false) => out.push_str(&format!(" Most were going to {}.", list(&to))),
        (true, true) => {}
    }
    out
}

fn families_of(groups: &[Group], key: &str) -> u64 {
    groups
        .iter()
        .filter(|g| g.key == key)
        .map(|g| g.totals.families)
        .sum()
}

/// The `TOP` known provinces with most families, as "Name (NN %)".
fn top(groups: Option<&[Group]>, total: u64, small: u64) -> Vec<String> {
    let mut known: Vec<&Group> = groups
        .unwrap_or_default()
        .iter()
        .filter(|g| {
            g.key != reference::UNKNOWN_DEPARTURE
                && g.key != reference::UNDECIDED_DESTINATION
                && g.totals.families >= small.max(1)
        })
        .collect();
    known.sort_by(|a, b| {
        b.totals
            .families
            .cmp(&a.totals.families)
            .then_with(|| a.key.cmp(&b.key))
    });
    known
        .into_iter()
        .take(TOP)
        .map(|g| {
            format!(
                "{} ({})",
                reference::display_name(&g.key),
                percent(g.totals.families, total)
            )
        })
        .collect()
}

/// "A", "A and B", "A, B and C".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A share as a whole percentage ("42 %"), "less than 1 %" for a share
/// that rounds to nothing.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0 %".into();
    }
    let p = (part * 100 + whole / 2) / whole;
    if p == 0 && part > 0 {
        "less than 1 %".into()
    } else {
        format!("{p} %")
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// "Between 17 September and 3 November 2026", "On 1 September 2026",
/// "Since …", "Up to …"; `None` with no date at all.
fn period(from: Option<NaiveDate>, to: Option<NaiveDate>, asked: bool) -> Option<String> {
    let day = |d: NaiveDate| d.format("%-d %B %Y").to_string();
    Some(match (from, to) {
        (Some(a), Some(b)) if a == b => format!("On {}", day(a)),
        (Some(a), Some(b)) => {
            use chrono::Datelike;
            let first = if a.year() != b.year() {
                day(a)
            } else if a.month() != b.month() {
                a.format("%-d %B").to_string()
            } else {
                a.format("%-d").to_string()
            };
            format!("Between {first} and {}", day(b))
        }
        (Some(a), None) => format!("Since {}", day(a)),
        (None, Some(b)) if asked => format!("Up to {}", day(b)),
        (None, Some(b)) => format!("On {}", day(b)),
        (None, None) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::Members;
    use crate::report::ReportRow;

    fn row(
        date: (i32, u32, u32),
        rt: ReturnType,
        from: &'static str,
        to: &'static str,
        m: [u32; 5],
        f: [u32; 5],
    ) -> ReportRow {
        ReportRow {
            crossing: "torkham",
            crossed_on: NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap(),
            return_type: rt,
            departure_province: from,
            destination_province: to,
            members: Members {
                males: m,
                females: f,
            },
        }
    }

    fn sample() -> Vec<ReportRow> {
        use ReturnType::*;
        vec![
            row(
                (2026, 9, 17),
                Deported,
                "PK-KP",
                "AF-NAN",
                [1, 0, 0, 1, 0],
                [0, 1, 0, 1, 0],
            ),
            row(
                (2026, 9, 20),
                Spontaneous,
                "PK-KP",
                "AF-KAB",
                [0, 2, 0, 1, 0],
                [1, 0, 0, 1, 1],
            ),
            row(
                (2026, 10, 2),
                Deported,
                "PK-PB",
                "AF-NAN",
                [0, 0, 1, 2, 0],
                [0, 0, 0, 1, 0],
            ),
            row(
                (2026, 11, 3),
                Assisted,
                "unknown",
                "undecided",
                [0, 0, 0, 1, 0],
                [0, 0, 0, 0, 0],
            ),
        ]
    }

    fn build(filter: ReportFilter, rows: &[ReportRow]) -> Report {
        let mut b = builder(filter);
        for r in rows {
            b.add_row(r);
        }
        b.finish()
    }

    #[test]
    fn the_sentence_says_every_figure() {
        let filter = ReportFilter::default();
        let r = build(filter.clone(), &sample());
        assert_eq!(
            sentence(&r, &filter, None),
            "Between 17 September and 3 November 2026, 4 families (15 individuals: 5 men, \
             4 women and 6 children) returned from Pakistan. 50 % of the families were \
             deported. Most came from Khyber Pakhtunkhwa (50 %) and Punjab (25 %) and were \
             going to Nangarhar (50 %) and Kabul (25 %)."
        );
    }

    #[test]
    fn a_filter_names_the_period_the_crossing_and_the_kind() {
        let filter = ReportFilter {
            crossing: Some("torkham".into()),
            from: Some(NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()),
            to: Some(NaiveDate::from_ymd_opt(2026, 9, 30).unwrap()),
            return_type: Some(ReturnType::Deported),
            review: None,
        };
        let r = build(filter.clone(), &sample());
        assert_eq!(
            sentence(&r, &filter, None),
            "Between 1 and 30 September 2026, 1 deported family (4 individuals: 1 man, \
             1 woman and 2 children) returned from Pakistan through Torkham. Most came from \
             Khyber Pakhtunkhwa (100 %) and were going to Nangarhar (100 %)."
        );
        let none = build(filter.clone(), &[]);
        assert_eq!(
            sentence(&none, &filter, None),
            "Between 1 and 30 September 2026, no deported returning families were recorded through Torkham."
        );
    }

    #[test]
    fn small_cells_are_not_told() {
        let filter = ReportFilter::default();
        let r = build(filter.clone(), &sample());
        let s = sentence(&r, &filter, Some(5));
        assert_eq!(
            s,
            "Between 17 September and 3 November 2026, fewer than 5 families (15 individuals: \
             5 men, fewer than 5 women and 6 children) returned from Pakistan."
        );
    }

    #[test]
    fn numbers_and_shares_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(9737), "9,737");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(percent(1, 1000), "less than 1 %");
        assert_eq!(percent(1, 3), "33 %");
        assert_eq!(percent(2, 3), "67 %");
        assert_eq!(list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
    }
}
