//! `returnee export`: families as CSV, JSON lines or a spreadsheet, from
//! this laptop or (`--from-server`) from the server's `GET /v1/export`;
//! `--share` leaves out everything that names a family. The rows are
//! written by `returnee_shared::report::records`, as the server writes them.
//! An export from this laptop's store is noted for the server's audit
//! trail (sent at the next sync), as the server records its own.

use std::io::{BufWriter, IsTerminal, Write};

use returnee_shared::Family;
use returnee_shared::report::records::{Disclosure, RecordCsv, record_cells};
use returnee_shared::wire::ExportNote;

use crate::cli::ExportArgs;
use crate::commands::{open_store, parse_filter};
use crate::config::Config;
use crate::error::CliError;

/// The file formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
    Xlsx,
}

impl Format {
    fn parse(s: &str) -> Result<Format, CliError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "xlsx" => Ok(Format::Xlsx),
            _ => Err(CliError::Usage(format!(
                "'{s}' is not an export format; use --format csv, jsonl or xlsx"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }
}

/// A fresh key for this export's keyed hashes (never stored: ids in a
/// shared file cannot be traced back, and match only within the file).
fn share_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

pub fn run(args: ExportArgs, config: &Config) -> Result<(), CliError> {
    let format = Format::parse(&args.format)?;
    let filter = parse_filter(&args.filter)?;
    if let Some(p) = filter.range_problem() {
        return Err(CliError::Usage(format!("--{}: {}", p.field, p.message)));
    }
    if format == Format::Xlsx && args.out.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "an xlsx file is not for the terminal; write it with --out FILE.xlsx".into(),
        ));
    }
    let store = open_store(config)?;
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| CliError::io(format!("cannot create {}", path.display()), e))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let werr = |e: std::io::Error| CliError::io("cannot write the export", e);

    if args.from_server {
        let client = crate::sync::enrolled_client(&store, config.ca_file.as_deref())?;
        let mut query: Vec<(&str, String)> = vec![("format", format.as_str().into())];
        if let Some(c) = &filter.crossing {
            query.push(("crossing", c.clone()));
        }
        if let Some(d) = filter.from {
            query.push(("from", d.to_string()));
        }
        if let Some(d) = filter.to {
            query.push(("to", d.to_string()));
        }
        if let Some(t) = filter.return_type {
            query.push(("return_type", t.to_string()));
        }
        if args.share {
            query.push(("share", "true".into()));
        }
        if args.full {
            query.push(("full", "true".into()));
        }
        let result = client.download("/v1/export", &query, &mut out);
        let bytes = crate::sync::erase_if_revoked(store, result.map_err(CliError::from))?;
        out.flush().map_err(werr)?;
        if let Some(path) = &args.out {
            eprintln!(
                "exported {bytes} bytes from the server to {}",
                path.display()
            );
        }
        return Ok(());
    }

    let disclosure = if args.share {
        Disclosure::Share { key: share_key() }
    } else {
        Disclosure::Full
    };
    // As on the server, the audit trail hears of the export before any
    // row leaves: the note is durable here first, and the next sync
    // hands it to the server (`returnee status` counts those waiting).
    let mut rows = 0u64;
    for row in store.report_rows() {
        if filter.matches_row(&row?) {
            rows += 1;
        }
    }
    store.note_export(&ExportNote {
        id: uuid::Uuid::new_v4(),
        at: crate::commands::now(),
        format: format.as_str().into(),
        filter: filter.describe(),
        rows,
        personal: !args.share,
    })?;
    let mut families = store
        .families()
        .filter(|f| f.as_ref().map_or(true, |f| filter.matches(&f.fields)))
        .map(|f| f.map(|f| disclosure.apply(f)));
    let mut n = 0u64;
    match format {
        Format::Csv => {
            let cerr = |e: csv::Error| CliError::Other(format!("cannot write the export: {e}"));
            let mut w = RecordCsv::new(&mut out).map_err(cerr)?;
            for f in families {
                w.push(&f?).map_err(cerr)?;
            }
            n = w.finish().map_err(werr)?;
        }
        Format::Jsonl => {
            for f in families {
                serde_json::to_writer(&mut out, &f?).map_err(|e| CliError::Other(e.to_string()))?;
                out.write_all(b"\n").map_err(werr)?;
                n += 1;
            }
        }
        Format::Xlsx => {
            let all: Vec<Family> = families.by_ref().collect::<Result<_, _>>()?;
            n = all.len() as u64;
            let device = store.device()?.id;
            let bytes = returnee_shared::report::xlsx::records_workbook(
                all.iter().map(record_cells),
                &returnee_shared::report::xlsx::About {
                    filter: filter.describe(),
                    exported_at: crate::commands::now().timestamp(),
                    source: format!("laptop {device}"),
                    records: n,
                    small_cells: None,
                },
            )
            .map_err(|e| CliError::Other(format!("cannot write the spreadsheet: {e}")))?;
            out.write_all(&bytes).map_err(werr)?;
        }
    }
    out.flush().map_err(werr)?;
    if let Some(path) = &args.out {
        eprintln!("exported {n} families to {}", path.display());
    }
    Ok(())
}
