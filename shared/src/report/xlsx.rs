//! A report as a spreadsheet (rust_xlsxwriter, written to memory): a sheet
//! that says what was counted, a sheet of totals, the breakdown asked for,
//! and a sheet per further breakdown; bold, shaded header rows that stay in
//! view (frozen) while scrolling.

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::table::{Cell, Column, FlatTable};
use super::{GroupBy, Report};

/// What the "About" sheet says was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// The filters, in words ([`super::ReportFilter::describe`]).
    pub filter: String,
    /// When the export was made, as a Unix timestamp (seconds, UTC); the
    /// caller reads the clock.
    pub exported_at: i64,
    /// Where the figures come from: `server` or `laptop <device id>`.
    pub source: String,
    /// Families counted.
    pub records: u64,
    /// The small-cell threshold of a shareable export.
    pub small_cells: Option<u64>,
}

fn sheet_name(by: &[GroupBy], taken: &[String]) -> String {
    let mut name: String = format!(
        "By {}",
        by.iter().map(|b| b.as_str()).collect::<Vec<_>>().join("+")
    )
    .chars()
    .take(31)
    .collect();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!(" {n}");
        name = name.chars().take(31 - suffix.len()).collect::<String>() + &suffix;
        n += 1;
    }
    name
}

fn write_table(ws: &mut Worksheet, table: &FlatTable, header: &Format) -> Result<(), XlsxError> {
    for (c, column) in table.columns.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, column.name, header)?;
        ws.set_column_width(c as u16, (column.name.len() as f64 + 2.0).max(10.0))?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            match cell {
                Cell::Count(n) => ws.write_number(r, c as u16, *n as f64)?,
                other => ws.write_string(r, c as u16, other.text())?,
            };
        }
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// The "About" sheet: what was counted, when, where, how many.
fn about_sheet(
    ws: &mut Worksheet,
    about: &About,
    header: &Format,
    breakdown: &str,
    records: u64,
    when: &ExcelDateTime,
) -> Result<(), XlsxError> {
    ws.write_string_with_format(0, 0, "what", header)?;
    ws.write_string_with_format(0, 1, "value", header)?;
    ws.set_column_width(0, 22)?;
    ws.set_column_width(1, 60)?;
    let date_format = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss \"UTC\"");
    let lines: [(&str, String); 6] = [
        (
            "counted",
            "families registered by returnee that count (not deleted, not merged)".into(),
        ),
        ("filters", about.filter.clone()),
        ("source", about.source.clone()),
        ("families", records.to_string()),
        ("breakdown", breakdown.to_string()),
        (
            "small cells",
            match about.small_cells {
                Some(n) => format!("counts from 1 to {} shown as <{n}", n - 1),
                None => "shown as counted (not for sharing outside the organisation)".into(),
            },
        ),
    ];
    ws.write_string(1, 0, "exported at")?;
    ws.write_datetime_with_format(1, 1, when, &date_format)?;
    for (r, (what, value)) in lines.into_iter().enumerate() {
        ws.write_string(r as u32 + 2, 0, what)?;
        ws.write_string(r as u32 + 2, 1, value)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// The workbook's bytes. With `small_cells`, every count below it is
/// written `<N` (a shareable export).
pub fn workbook(report: &Report, about: &About) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let when = ExcelDateTime::from_timestamp(about.exported_at)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title("returnee report")
            .set_creation_datetime(&when),
    );
    let header = header_format();
    let shape = |mut t: FlatTable| {
        if let Some(n) = about.small_cells {
            t.suppress(n);
        }
        t
    };

    let ws = wb.add_worksheet();
    ws.set_name("About")?;
    let breakdown = if report.by.is_empty() {
        "none".to_string()
    } else {
        report
            .by
            .iter()
            .map(|b| b.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    about_sheet(ws, about, &header, &breakdown, about.records, &when)?;

    let ws = wb.add_worksheet();
    ws.set_name("Totals")?;
    write_table(ws, &shape(FlatTable::of_totals(&report.totals)), &header)?;

    let mut taken = vec!["About".to_string(), "Totals".to_string()];
    let mut sheets = Vec::new();
    if let Some(groups) = &report.groups {
        sheets.push((report.by.clone(), groups));
    }
    for b in &report.breakdowns {
        if b.by != report.by {
            sheets.push((b.by.clone(), &b.groups));
        }
    }
    for (by, groups) in sheets {
        let name = sheet_name(&by, &taken);
        let ws = wb.add_worksheet();
        ws.set_name(&name)?;
        write_table(ws, &shape(FlatTable::of_groups(&by, groups)), &header)?;
        taken.push(name);
    }
    wb.save_to_buffer()
}

/// Families as a spreadsheet: a "Families" sheet with the export columns
/// (counts as numbers) and an "About" sheet.
pub fn records_workbook(
    rows: impl IntoIterator<Item = [String; 27]>,
    about: &About,
) -> Result<Vec<u8>, XlsxError> {
    use super::records::RECORD_COLUMNS;
    let mut wb = Workbook::new();
    let when = ExcelDateTime::from_timestamp(about.exported_at)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title("returnee families")
            .set_creation_datetime(&when),
    );
    let header = header_format();
    // The member counts as numbers, every other column as text.
    let table = FlatTable {
        columns: RECORD_COLUMNS
            .iter()
            .map(|name| Column { name, hxl: "" })
            .collect(),
        key_width: RECORD_COLUMNS.len(),
        rows: rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .enumerate()
                    .map(|(c, cell)| match cell.parse() {
                        Ok(n) if (11..21).contains(&c) => Cell::Count(n),
                        _ => Cell::Text(cell),
                    })
                    .collect()
            })
            .collect(),
    };
    let n = table.rows.len() as u64;
    let ws = wb.add_worksheet();
    ws.set_name("Families")?;
    write_table(ws, &table, &header)?;
    let ws = wb.add_worksheet();
    ws.set_name("About")?;
    about_sheet(ws, about, &header, "none", n, &when)?;
    wb.save_to_buffer()
}

fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_background_color(0xD9E1F2)
        .set_border_bottom(rust_xlsxwriter::FormatBorder::Thin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_fit_and_differ() {
        let all = GroupBy::ALL.to_vec();
        let a = sheet_name(&all, &[]);
        assert!(a.chars().count() <= 31, "{a}");
        let b = sheet_name(&all, std::slice::from_ref(&a));
        assert!(b.chars().count() <= 31 && b != a, "{b}");
        assert_eq!(sheet_name(&[GroupBy::Date], &[]), "By date");
    }
}
