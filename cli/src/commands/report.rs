//! `returnee report`: families, individuals, men, women and children, with
//! an optional breakdown.

use comfy_table::Cell;
use returnee_shared::{GroupBy, Problem, Report, ReportBuilder, ValidationError};

use crate::cli::ReportArgs;
use crate::commands::{open_store, parse_filter};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{num, print_json, table};

/// Parses `--by`.
pub fn parse_group(by: Option<&str>) -> Result<Option<GroupBy>, CliError> {
    by.map(|b| {
        GroupBy::parse(b).ok_or_else(|| {
            CliError::Invalid(ValidationError {
                problems: vec![Problem::new(
                    "by",
                    format!(
                        "'{b}' is not a breakdown; use one of {}",
                        GroupBy::ALL.map(|g| g.as_str()).join(", ")
                    ),
                )],
            })
        })
    })
    .transpose()
}

pub fn run(args: ReportArgs, config: &Config) -> Result<(), CliError> {
    let filter = parse_filter(&args.filter)?;
    let by = parse_group(args.by.as_deref())?;
    let store = open_store(config)?;
    let mut builder = ReportBuilder::new(filter, by);
    for row in store.report_rows() {
        builder.add_row(&row?);
    }
    let report = builder.finish();
    if args.json {
        return print_json(&report);
    }
    print_report(config, &report, by);
    Ok(())
}

/// Prints a report as a table (shared with sync's server report).
pub fn print_report(config: &Config, report: &Report, by: Option<GroupBy>) {
    let head = by.map_or("", |b| b.as_str());
    let mut t = table(
        config,
        &[head, "families", "individuals", "men", "women", "children"],
    );
    for g in report.groups.iter().flatten() {
        t.add_row(vec![
            Cell::new(returnee_shared::reference::display_name(&g.key)),
            num(g.totals.families),
            num(g.totals.individuals),
            num(g.totals.men),
            num(g.totals.women),
            num(g.totals.children),
        ]);
    }
    let r = &report.totals;
    t.add_row(vec![
        Cell::new("total"),
        num(r.families),
        num(r.individuals),
        num(r.men),
        num(r.women),
        num(r.children),
    ]);
    println!("{t}");
}
