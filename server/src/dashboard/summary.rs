//! The one sentence a news report or a sitrep quotes, from a report's
//! totals: "Between 17 September and 3 November, 9,737 families — 44,718
//! men, 33,699 women and 82,221 children — returned through Torkham."
//!
//! Interim: the exports work builds the same sentence as a pure function
//! in `returnee_shared::report::summary` for `returnee report --summary`;
//! when it lands, the dashboard calls that one and this module goes.

use chrono::{Datelike, NaiveDate};
use returnee_shared::Totals;
use returnee_shared::reference;

use super::layout::thousands;

/// The sentence for `totals` counted between `from` and `to` (inclusive)
/// at `crossing` (or at every crossing of `sites`; empty: every crossing).
pub fn sentence(
    totals: &Totals,
    from: NaiveDate,
    to: NaiveDate,
    crossing: Option<&str>,
    sites: &[String],
) -> String {
    let day = |d: NaiveDate, year: bool| {
        if year {
            d.format("%-d %B %Y").to_string()
        } else {
            d.format("%-d %B").to_string()
        }
    };
    let years = from.year() != to.year();
    let period = if from == to {
        format!("On {}", day(from, true))
    } else {
        format!("Between {} and {}", day(from, years), day(to, true))
    };
    let place = match crossing {
        Some(c) => reference::display_name(c).to_string(),
        None if sites.is_empty() => "every crossing".to_string(),
        None => {
            let names: Vec<&str> = sites.iter().map(|s| reference::display_name(s)).collect();
            match names.as_slice() {
                [one] => one.to_string(),
                [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
                [] => "every crossing".to_string(),
            }
        }
    };
    let plural = |n: u64, one: &str, many: &str| {
        format!("{} {}", thousands(n), if n == 1 { one } else { many })
    };
    if totals.families == 0 {
        return format!("{period}, no returning family was recorded at {place}.");
    }
    format!(
        "{period}, {} — {}, {} and {} — returned through {place}.",
        plural(totals.families, "family", "families"),
        plural(totals.men, "man", "men"),
        plural(totals.women, "woman", "women"),
        plural(totals.children, "child", "children"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentence_reads_as_a_sitrep_quotes_it() {
        let t = Totals {
            families: 9737,
            individuals: 160_638,
            men: 44_718,
            women: 33_699,
            children: 82_221,
        };
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert_eq!(
            sentence(&t, d(9, 17), d(11, 3), Some("torkham"), &[]),
            "Between 17 September and 3 November 2026, 9,737 families — 44,718 men, 33,699 women and 82,221 children — returned through Torkham."
        );
        let one = Totals {
            families: 1,
            individuals: 2,
            men: 1,
            women: 1,
            children: 0,
        };
        assert_eq!(
            sentence(&one, d(11, 3), d(11, 3), None, &[]),
            "On 3 November 2026, 1 family — 1 man, 1 woman and 0 children — returned through every crossing."
        );
        assert_eq!(
            sentence(
                &Totals::default(),
                d(1, 1),
                d(1, 7),
                None,
                &["torkham".into()]
            ),
            "Between 1 January and 7 January 2026, no returning family was recorded at Torkham."
        );
    }
}
