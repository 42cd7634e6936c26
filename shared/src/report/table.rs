//! A report as a flat table, the form spreadsheets, Power BI and HDX read:
//! one row per group, flat columns, and for each province its ISO code,
//! OCHA p-code and name; then the counts. Its CSV and HXL forms are here;
//! the spreadsheet is in `report::xlsx`.
//!
//! HXL (the Humanitarian Exchange Language) is the CSV with a second row of
//! hashtags; the tags are documented in the README ("Reports for HDX") and
//! a test checks the two agree. The long form has one row per group, sex
//! and age band (`#gender +code`, `#age +range`, `#population`).

use super::{Group, GroupBy, Report, Totals};
use crate::family::AGE_BANDS;
use crate::reference;

/// A column: its CSV header and its HXL hashtag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub hxl: &'static str,
}

/// The columns a breakdown key adds, in order.
pub fn key_columns(by: GroupBy) -> &'static [Column] {
    match by {
        GroupBy::Date => &[Column {
            name: "date",
            hxl: "#date",
        }],
        GroupBy::Week => &[Column {
            name: "week",
            hxl: "#date +week",
        }],
        GroupBy::Month => &[Column {
            name: "month",
            hxl: "#date +month",
        }],
        GroupBy::Crossing => &[
            Column {
                name: "crossing",
                hxl: "#loc +code +crossing",
            },
            Column {
                name: "crossing_name",
                hxl: "#loc +name +crossing",
            },
        ],
        GroupBy::ReturnType => &[Column {
            name: "return_type",
            hxl: "#status",
        }],
        GroupBy::Departure => &[
            Column {
                name: "departure_iso",
                hxl: "#adm1 +iso +origin",
            },
            Column {
                name: "departure_pcode",
                hxl: "#adm1 +code +origin",
            },
            Column {
                name: "departure_name",
                hxl: "#adm1 +name +origin",
            },
        ],
        GroupBy::Destination => &[
            Column {
                name: "destination_iso",
                hxl: "#adm1 +iso +dest",
            },
            Column {
                name: "destination_pcode",
                hxl: "#adm1 +code +dest",
            },
            Column {
                name: "destination_name",
                hxl: "#adm1 +name +dest",
            },
        ],
    }
}

/// The count columns, after the key columns, in order.
pub const COUNT_COLUMNS: [Column; 15] = [
    Column {
        name: "families",
        hxl: "#affected +hh +returnees",
    },
    Column {
        name: "individuals",
        hxl: "#affected +ind +returnees",
    },
    Column {
        name: "men",
        hxl: "#affected +returnees +m +adults",
    },
    Column {
        name: "women",
        hxl: "#affected +returnees +f +adults",
    },
    Column {
        name: "children",
        hxl: "#affected +returnees +children",
    },
    Column {
        name: "m_0_4",
        hxl: "#affected +returnees +m +age0_4",
    },
    Column {
        name: "m_5_11",
        hxl: "#affected +returnees +m +age5_11",
    },
    Column {
        name: "m_12_17",
        hxl: "#affected +returnees +m +age12_17",
    },
    Column {
        name: "m_18_59",
        hxl: "#affected +returnees +m +age18_59",
    },
    Column {
        name: "m_60_plus",
        hxl: "#affected +returnees +m +age60plus",
    },
    Column {
        name: "f_0_4",
        hxl: "#affected +returnees +f +age0_4",
    },
    Column {
        name: "f_5_11",
        hxl: "#affected +returnees +f +age5_11",
    },
    Column {
        name: "f_12_17",
        hxl: "#affected +returnees +f +age12_17",
    },
    Column {
        name: "f_18_59",
        hxl: "#affected +returnees +f +age18_59",
    },
    Column {
        name: "f_60_plus",
        hxl: "#affected +returnees +f +age60plus",
    },
];

/// The columns of the long form, after the key columns.
pub const LONG_COLUMNS: [Column; 3] = [
    Column {
        name: "sex",
        hxl: "#gender +code",
    },
    Column {
        name: "age",
        hxl: "#age +range",
    },
    Column {
        name: "population",
        hxl: "#population",
    },
];

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Count(u64),
    /// A count below the threshold, withheld from a shareable output (`<5`).
    Small(u64),
}

impl Cell {
    /// The cell as written in CSV.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Small(t) => format!("<{t}"),
        }
    }
}

/// A breakdown as rows of cells under named columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatTable {
    pub columns: Vec<Column>,
    /// How many leading columns name the group (the rest are counts).
    pub key_width: usize,
    pub rows: Vec<Vec<Cell>>,
}

fn counts(t: &Totals) -> impl Iterator<Item = Cell> + '_ {
    [t.families, t.individuals, t.men, t.women, t.children]
        .into_iter()
        .chain(t.males)
        .chain(t.females)
        .map(Cell::Count)
}

fn key_cells(by: GroupBy, key: &str) -> Vec<Cell> {
    let text = |s: &str| Cell::Text(s.to_string());
    match by {
        GroupBy::Crossing => vec![text(key), text(reference::display_name(key))],
        GroupBy::Departure | GroupBy::Destination => vec![
            text(key),
            text(reference::pcode(key)),
            text(reference::display_name(key)),
        ],
        _ => vec![text(key)],
    }
}

impl FlatTable {
    /// The groups of a breakdown by `by`, one row each.
    pub fn of_groups(by: &[GroupBy], groups: &[Group]) -> FlatTable {
        let mut columns: Vec<Column> = by.iter().flat_map(|b| key_columns(*b)).copied().collect();
        let key_width = columns.len();
        columns.extend(COUNT_COLUMNS);
        let rows = groups
            .iter()
            .map(|g| {
                let mut row: Vec<Cell> = by
                    .iter()
                    .zip(&g.keys)
                    .flat_map(|(b, k)| key_cells(*b, k))
                    .collect();
                row.extend(counts(&g.totals));
                row
            })
            .collect();
        FlatTable {
            columns,
            key_width,
            rows,
        }
    }

    /// The totals alone, as one row.
    pub fn of_totals(t: &Totals) -> FlatTable {
        FlatTable {
            columns: COUNT_COLUMNS.to_vec(),
            key_width: 0,
            rows: vec![counts(t).collect()],
        }
    }

    /// The report's main breakdown, or its totals when it has none.
    pub fn of_report(report: &Report) -> FlatTable {
        match &report.groups {
            Some(groups) => FlatTable::of_groups(&report.by, groups),
            None => FlatTable::of_totals(&report.totals),
        }
    }

    /// Withholds every count from 1 to `threshold - 1` (shown `<threshold`),
    /// so that no family can be picked out of a shared table.
    pub fn suppress(&mut self, threshold: u64) {
        for cell in self.rows.iter_mut().flatten() {
            if let Cell::Count(n) = *cell
                && n > 0
                && n < threshold
            {
                *cell = Cell::Small(threshold);
            }
        }
    }

    /// The table in its long form: one row per group, sex and age band.
    pub fn long(&self) -> FlatTable {
        let mut columns = self.columns[..self.key_width].to_vec();
        columns.extend(LONG_COLUMNS);
        let band_at = self.key_width + 5;
        let mut rows = Vec::with_capacity(self.rows.len() * 10);
        for row in &self.rows {
            for (s, sex) in ["m", "f"].into_iter().enumerate() {
                for (b, band) in AGE_BANDS.iter().enumerate() {
                    let mut r = row[..self.key_width].to_vec();
                    r.push(Cell::Text(sex.into()));
                    r.push(Cell::Text((*band).into()));
                    r.push(row[band_at + s * 5 + b].clone());
                    rows.push(r);
                }
            }
        }
        FlatTable {
            columns,
            key_width: self.key_width + 2,
            rows,
        }
    }

    /// The CSV: a header row, then one row per group. `bom` starts it with
    /// a UTF-8 byte-order mark, which Excel needs to show Dari and Pashto.
    pub fn to_csv(&self, bom: bool) -> Vec<u8> {
        self.write(bom, false)
    }

    /// The HXL form: the CSV with a row of hashtags under the header.
    pub fn to_hxl(&self) -> Vec<u8> {
        self.write(false, true)
    }

    fn write(&self, bom: bool, hxl: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * (self.rows.len() + 2));
        if bom {
            out.extend_from_slice("\u{feff}".as_bytes());
        }
        let mut w = csv::Writer::from_writer(out);
        // Writing to memory cannot fail.
        w.write_record(self.columns.iter().map(|c| c.name))
            .expect("write to memory");
        if hxl {
            w.write_record(self.columns.iter().map(|c| c.hxl))
                .expect("write to memory");
        }
        let mut record = csv::ByteRecord::new();
        let mut buf = itoa_buf();
        for row in &self.rows {
            record.clear();
            for cell in row {
                match cell {
                    Cell::Count(n) => record.push_field(fmt_u64(&mut buf, *n)),
                    other => record.push_field(other.text().as_bytes()),
                }
            }
            w.write_byte_record(&record).expect("write to memory");
        }
        w.into_inner().expect("write to memory")
    }
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Formats `n` into `buf` without allocating.
fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_without_allocating() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), b"0");
        assert_eq!(fmt_u64(&mut b, 1234), b"1234");
        assert_eq!(fmt_u64(&mut b, u64::MAX), u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn hxl_tags_are_well_formed() {
        let all = GroupBy::ALL
            .iter()
            .flat_map(|b| key_columns(*b))
            .chain(&COUNT_COLUMNS)
            .chain(&LONG_COLUMNS);
        for c in all {
            let mut parts = c.hxl.split(' ');
            let tag = parts.next().unwrap();
            assert!(
                tag.starts_with('#')
                    && tag[1..]
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit()),
                "{}",
                c.hxl
            );
            for a in parts {
                assert!(
                    a.starts_with('+')
                        && a[1..]
                            .chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                    "{}",
                    c.hxl
                );
            }
        }
    }
}
