//! `returnee export`: every active family as CSV or JSON lines.

use std::io::{BufWriter, Write};

use crate::cli::ExportArgs;
use crate::commands::open_store;
use crate::config::Config;
use crate::csv_format::{CSV_COLUMNS, CsvRow, Format};
use crate::error::CliError;

pub fn run(args: ExportArgs, config: &Config) -> Result<(), CliError> {
    let format = Format::parse(&args.format).ok_or_else(|| {
        CliError::Usage(format!(
            "'{}' is not an export format; use --format csv or --format jsonl",
            args.format
        ))
    })?;
    let store = open_store(config)?;
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| CliError::io(format!("cannot create {}", path.display()), e))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let mut n = 0u64;
    let werr = |e: std::io::Error| CliError::io("cannot write the export", e);
    match format {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut out);
            w.write_record(CSV_COLUMNS)
                .map_err(|e| CliError::Other(e.to_string()))?;
            for f in store.families() {
                w.serialize(CsvRow::from_family(&f?))
                    .map_err(|e| CliError::Other(format!("cannot write the export: {e}")))?;
                n += 1;
            }
            w.flush().map_err(werr)?;
        }
        Format::Jsonl => {
            for f in store.families() {
                serde_json::to_writer(&mut out, &f?).map_err(|e| CliError::Other(e.to_string()))?;
                out.write_all(b"\n").map_err(werr)?;
                n += 1;
            }
        }
    }
    out.flush().map_err(werr)?;
    if let Some(path) = &args.out {
        eprintln!("exported {n} families to {}", path.display());
    }
    Ok(())
}
