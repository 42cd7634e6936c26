//! A report in each file format, the same for `returnee report --format`
//! and `GET /v1/reports?format=`.

use serde_json::{Map, Value};

use super::Report;
use super::table::{Cell, FlatTable};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// For people: a table on the terminal (the CLI's default; the API gives JSON).
    Table,
    Json,
    Csv,
    Xlsx,
    /// CSV with a row of HXL hashtags.
    Hxl,
    /// HXL, one row per group, sex and age band.
    HxlLong,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 6] = [
        ReportFormat::Table,
        ReportFormat::Json,
        ReportFormat::Csv,
        ReportFormat::Xlsx,
        ReportFormat::Hxl,
        ReportFormat::HxlLong,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Table => "table",
            ReportFormat::Json => "json",
            ReportFormat::Csv => "csv",
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Hxl => "hxl",
            ReportFormat::HxlLong => "hxl-long",
        }
    }

    /// Parses a format name; the error lists the accepted ones.
    pub fn parse(s: &str) -> Result<ReportFormat, String> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == t)
            .ok_or_else(|| {
                format!(
                    "'{s}' is not a report format; use one of {}",
                    ReportFormat::ALL.map(|f| f.as_str()).join(", ")
                )
            })
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Table | ReportFormat::Csv => "text/csv; charset=utf-8",
            ReportFormat::Json => "application/json",
            ReportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ReportFormat::Hxl | ReportFormat::HxlLong => "text/csv; charset=utf-8",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Xlsx => "xlsx",
            _ => "csv",
        }
    }

    /// Whether the output is binary (not for a terminal).
    pub fn is_binary(self) -> bool {
        self == ReportFormat::Xlsx
    }
}

/// Everything a rendering needs besides the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Start a CSV with a UTF-8 byte-order mark (for Excel).
    pub excel_bom: bool,
    /// Withhold counts below this (a shareable output).
    pub small_cells: Option<u64>,
    /// The filters in words, for the spreadsheet's "About" sheet.
    pub filter: String,
    /// When (Unix seconds, UTC) and where the figures were made.
    pub exported_at: i64,
    pub source: String,
}

/// Why a rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the spreadsheet could not be written: {0}")]
    Xlsx(String),
    #[error("this build cannot write spreadsheets")]
    NoXlsx,
    #[error("a table is for the terminal; choose another format")]
    Table,
}

/// The report's main table, with small cells withheld when asked.
pub fn flat(report: &Report, opts: &RenderOptions) -> FlatTable {
    let mut t = FlatTable::of_report(report);
    if let Some(n) = opts.small_cells {
        t.suppress(n);
    }
    t
}

/// The report in `format`, as bytes.
pub fn render(
    report: &Report,
    format: ReportFormat,
    opts: &RenderOptions,
) -> Result<Vec<u8>, RenderError> {
    Ok(match format {
        ReportFormat::Table => return Err(RenderError::Table),
        ReportFormat::Json if opts.small_cells.is_none() => {
            let mut v = serde_json::to_vec_pretty(report).expect("a report serializes");
            v.push(b'\n');
            v
        }
        ReportFormat::Json => {
            let mut v =
                serde_json::to_vec_pretty(&json_rows(&flat(report, opts))).expect("rows serialize");
            v.push(b'\n');
            v
        }
        ReportFormat::Csv => flat(report, opts).to_csv(opts.excel_bom),
        ReportFormat::Hxl => flat(report, opts).to_hxl(),
        ReportFormat::HxlLong => flat(report, opts).long().to_hxl(),
        ReportFormat::Xlsx => xlsx(report, opts)?,
    })
}

#[cfg(feature = "xlsx")]
fn xlsx(report: &Report, opts: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    super::xlsx::workbook(
        report,
        &super::xlsx::About {
            filter: opts.filter.clone(),
            exported_at: opts.exported_at,
            source: opts.source.clone(),
            records: report.totals.families,
            small_cells: opts.small_cells,
        },
    )
    .map_err(|e| RenderError::Xlsx(e.to_string()))
}

#[cfg(not(feature = "xlsx"))]
fn xlsx(_: &Report, _: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    Err(RenderError::NoXlsx)
}

/// A table as JSON objects, one per row (a withheld count is the string `<N`).
pub fn json_rows(t: &FlatTable) -> Vec<Map<String, Value>> {
    t.rows
        .iter()
        .map(|row| {
            t.columns
                .iter()
                .zip(row)
                .map(|(c, cell)| {
                    let v = match cell {
                        Cell::Count(n) => Value::from(*n),
                        other => Value::from(other.text()),
                    };
                    (c.name.to_string(), v)
                })
                .collect()
        })
        .collect()
}
