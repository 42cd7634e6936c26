//! `returnee report`: families, individuals, men, women, children and the
//! ten sex × age-band counts, broken down by one or more keys, as a table,
//! JSON, CSV, a spreadsheet, HXL, the sitrep sentence or a chart. The
//! formats are written by `returnee_shared::report` (the server writes the
//! same for `GET /v1/reports?format=`).

use std::io::{IsTerminal, Write};
use std::path::Path;

use comfy_table::{Cell, CellAlignment};
use returnee_shared::report::summary;
use returnee_shared::report::table::Cell as Value;
use returnee_shared::report::{FlatTable, RenderOptions, ReportFormat};
use returnee_shared::{GroupBy, Report, ReportBuilder, ReportFilter};

use crate::cli::ReportArgs;
use crate::commands::{open_store, parse_filter};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{count, num, table};

mod chart;

fn invalid(flag: &str, message: String) -> CliError {
    CliError::Usage(format!("--{flag}: {message}"))
}

/// Parses `--by` (one or more keys, comma-separated).
pub fn parse_groups(by: Option<&str>) -> Result<Vec<GroupBy>, CliError> {
    by.map_or(Ok(Vec::new()), |b| {
        GroupBy::parse_list(b).map_err(|m| invalid("by", m))
    })
}

/// Parses the report filters (a range that ends before it starts is
/// refused there, as for `list`).
pub fn parse_report_filter(args: &ReportArgs) -> Result<ReportFilter, CliError> {
    parse_filter(&args.filter)
}

pub fn run(args: ReportArgs, config: &Config) -> Result<(), CliError> {
    let filter = parse_report_filter(&args)?;
    let by = parse_groups(args.by.as_deref())?;
    let format = match (&args.format, args.json) {
        (_, true) => ReportFormat::Json,
        (Some(f), false) => ReportFormat::parse(f).map_err(|m| invalid("format", m))?,
        (None, false) => ReportFormat::Table,
    };
    if args.excel && format != ReportFormat::Csv {
        return Err(CliError::Usage(format!(
            "--excel adds a byte-order mark to a CSV; it does nothing for --format {}: drop it, or use --format csv",
            format.as_str()
        )));
    }
    let chart = args
        .chart
        .as_deref()
        .map(|c| chart::Kind::parse(c).map_err(|m| invalid("chart", m)))
        .transpose()?;
    if format.is_binary() && args.out.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Usage(format!(
            "an {} file is not for the terminal; write it with --out FILE.{}",
            format.as_str(),
            format.extension()
        )));
    }
    let small_cells = args.share.then_some(args.small_cells);
    let store = open_store(config)?;
    let device = store.device()?.id;

    let mut builder = match chart {
        Some(kind) => ReportBuilder::grouped(filter.clone(), vec![kind.by()]),
        None => ReportBuilder::grouped(filter.clone(), by.clone()),
    };
    if args.summary {
        builder = builder.with_breakdowns(&summary::BREAKDOWNS);
    } else if format == ReportFormat::Xlsx && by.len() > 1 {
        builder = builder.with_breakdowns(&by);
    }
    // As the server counts: a family whose creation it refused counts
    // nowhere until the change is sent again and taken.
    let refused = store.refused_creations()?;
    let mut left_out = 0u64;
    if builder.needs_fields() {
        for f in store.families() {
            let f = f?;
            if refused.contains(&f.id) {
                left_out += u64::from(filter.matches(&f.fields));
                continue;
            }
            builder.add(&f.fields);
        }
    } else {
        for item in store.identified_report_rows() {
            let (id, row) = item?;
            if refused.contains(&id) {
                left_out += u64::from(filter.matches_row(&row));
                continue;
            }
            builder.add_row(&row);
        }
    }
    let report = builder.finish();
    if left_out > 0 {
        eprintln!(
            "{} the server refused {} left out, as the server's report leaves {} out (see `returnee status`)",
            count(left_out, "family", "families"),
            if left_out == 1 { "is" } else { "are" },
            if left_out == 1 { "it" } else { "them" },
        );
    }

    if args.summary {
        let text = summary::sentence(&report, &filter, small_cells) + "\n";
        return write_out(args.out.as_deref(), text.as_bytes());
    }
    if let Some(kind) = chart {
        return chart::draw(config, kind, &report, small_cells, args.out.as_deref());
    }
    if format == ReportFormat::Table {
        let text = table_text(config, &report, small_cells);
        return write_out(args.out.as_deref(), format!("{text}\n").as_bytes());
    }
    let opts = RenderOptions {
        excel_bom: args.excel,
        small_cells,
        filter: filter.describe(),
        exported_at: crate::commands::now().timestamp(),
        source: format!("laptop {device}"),
    };
    let bytes = returnee_shared::report::render(&report, format, &opts)
        .map_err(|e| CliError::Other(e.to_string()))?;
    write_out(args.out.as_deref(), &bytes)?;
    if let Some(path) = &args.out {
        eprintln!(
            "wrote the report ({} group(s), {} families) to {}",
            report.groups.as_ref().map_or(1, Vec::len),
            report.totals.families,
            path.display()
        );
    }
    Ok(())
}

/// Writes `bytes` to `out`, or to standard output.
pub fn write_out(out: Option<&Path>, bytes: &[u8]) -> Result<(), CliError> {
    match out {
        Some(path) => std::fs::write(path, bytes)
            .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e)),
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(bytes)
                .and_then(|()| o.flush())
                .map_err(|e| CliError::io("cannot write the report", e))
        }
    }
}

/// The report as a table for people: one column per breakdown key (names
/// shown), then families, individuals, men, women and children, and a
/// total row; with `small_cells`, counts below it are withheld.
fn table_text(config: &Config, report: &Report, small_cells: Option<u64>) -> String {
    let shape = |mut t: FlatTable| {
        if let Some(n) = small_cells {
            t.suppress(n);
        }
        t
    };
    let t = shape(FlatTable::of_report(report));
    let mut head: Vec<&str> = report.by.iter().map(|b| b.as_str()).collect();
    head.extend(["families", "individuals", "men", "women", "children"]);
    let mut out = table(config, &head);
    let show = |v: &Value| match v {
        Value::Count(n) => num(*n),
        other => Cell::new(other.text()).set_alignment(CellAlignment::Right),
    };
    let count_at = t.key_width;
    if report.groups.is_some() {
        for (row, g) in t.rows.iter().zip(report.groups.iter().flatten()) {
            let mut cells: Vec<Cell> = g
                .keys
                .iter()
                .map(|k| Cell::new(returnee_shared::reference::display_name(k)))
                .collect();
            cells.extend(row[count_at..count_at + 5].iter().map(show));
            out.add_row(cells);
        }
    }
    let total = shape(FlatTable::of_totals(&report.totals));
    let mut cells: Vec<Cell> = vec![Cell::new("total")];
    cells.extend((1..report.by.len()).map(|_| Cell::new("")));
    cells.extend(total.rows[0][..5].iter().map(show));
    out.add_row(cells);
    out.to_string()
}

/// Prints a report as a table (sync's server report).
pub fn print_report(config: &Config, report: &Report) {
    println!("{}", table_text(config, report, None));
}
