//! `returnee import`: families from CSV or JSON lines.
//!
//! Rows with an id are upserted by that id; rows without one get an id
//! derived from their content (and how many identical rows came before in the
//! file), so importing the same file twice adds nothing. A bad row is
//! reported with its line number and reason; the good rows are still saved,
//! in flushed chunks, and each "saved N rows" line is a promise that survives
//! `kill -9`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};

use chrono::NaiveDate;
use returnee_shared::merge::Origin;
use returnee_shared::{FamilyFields, RecordId};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::ImportArgs;
use crate::commands::{now, open_store, today};
use crate::config::Config;
use crate::csv_format::{CsvRow, Format};
use crate::error::CliError;
use crate::output::{print_json, progress};
use returnee_store::laptop::{LocalStore, Upsert, UpsertOutcome};

/// Rows saved per atomic, flushed batch.
const CHUNK: usize = 2000;
/// Up to this many families here, an import files them by block in memory
/// first ([`LocalStore::block_counts`], about 300 bytes each); above, each
/// new family is compared in one scan of the store's features.
const BLOCK_COUNT_CAP: usize = 200_000;

#[derive(Debug, Default, Serialize)]
struct Summary {
    added: u64,
    updated: u64,
    unchanged: u64,
    refused: Vec<RefusedRow>,
}

#[derive(Debug, Serialize)]
struct RefusedRow {
    line: u64,
    reason: String,
}

/// What identifies a row's content.
fn content_hash(fields: &FamilyFields) -> [u8; 32] {
    Sha256::digest(serde_json::to_vec(fields).expect("fields serialize")).into()
}

/// A UUID v7 whose time is the crossing date and whose other bits come from
/// the row's content and its occurrence number: the same row always gets the
/// same id, two identical rows in one file get two ids.
fn derive_id(content: &[u8; 32], fields: &FamilyFields, occurrence: u32) -> RecordId {
    let mut h = Sha256::new();
    h.update(content);
    h.update(occurrence.to_be_bytes());
    let digest = h.finalize();
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&digest[..10]);
    let millis = fields
        .crossed_on
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis().max(0) as u64)
        .unwrap_or(0);
    RecordId(uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid())
}

/// Saves chunks on a thread of its own, so that reading and checking the
/// next rows overlaps with writing the previous ones. Each "saved N rows" line
/// is printed once that chunk is flushed.
struct ChunkWriter {
    tx: Option<std::sync::mpsc::SyncSender<Vec<Upsert>>>,
    thread: Option<std::thread::JoinHandle<Result<Written, CliError>>>,
}

/// What the writer did.
#[derive(Default)]
struct Written {
    outcome: UpsertOutcome,
    /// New families warned about as possible duplicates.
    duplicate_warnings: u64,
}

impl ChunkWriter {
    fn start(store: LocalStore, announce: bool) -> ChunkWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Upsert>>(1);
        // Duplicate checks of saved families run on a third thread: they
        // only read, so they overlap with the writes of the next chunk.
        let (check_tx, check_rx) = std::sync::mpsc::sync_channel::<Vec<RecordId>>(4);
        let checker_store = store.clone();
        let checker = std::thread::spawn(move || -> Result<u64, CliError> {
            let mut warned = 0;
            // The families here, filed by block in memory; each saved one is
            // compared with those it shares a block with, then filed too.
            let Some(mut counts) = checker_store.block_counts(BLOCK_COUNT_CAP)? else {
                eprintln!(
                    "note: this laptop holds more than {BLOCK_COUNT_CAP} families, too many to compare each imported row with; run `returnee duplicates` afterwards to review possible duplicates"
                );
                for _ in check_rx {}
                return Ok(0);
            };
            for new in check_rx {
                crate::commands::duplicates::warn_imported(
                    &checker_store,
                    &new,
                    Some(&mut counts),
                    &mut warned,
                )?;
            }
            Ok(warned)
        });
        let thread = std::thread::spawn(move || {
            let mut w = Written::default();
            let mut saved = 0u64;
            let written = (|| -> Result<(), CliError> {
                for items in rx {
                    let n = items.len() as u64;
                    let o = store.upsert_many(items, now())?;
                    w.outcome.added += o.added;
                    w.outcome.updated += o.updated;
                    w.outcome.unchanged += o.unchanged;
                    saved += n;
                    if announce {
                        eprintln!("saved {}", crate::output::count(saved, "row", "rows"));
                    }
                    if check_tx.send(o.added_ids).is_err() {
                        break;
                    }
                }
                Ok(())
            })();
            drop(check_tx);
            let warned = checker
                .join()
                .map_err(|_| CliError::Other("the duplicate check crashed".into()))?;
            written?;
            w.duplicate_warnings = warned?;
            Ok(w)
        });
        ChunkWriter {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn send(&mut self, items: Vec<Upsert>) -> Result<(), CliError> {
        let sent = self.tx.as_ref().map(|tx| tx.send(items).is_ok());
        if sent == Some(true) {
            Ok(())
        } else {
            // The writer stopped: its error says why.
            self.finish().map(|_| ())
        }
    }

    fn finish(&mut self) -> Result<Written, CliError> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| CliError::Other("the import writer crashed".into()))?,
            None => Err(CliError::Other("the import writer already stopped".into())),
        }
    }
}

struct Importer {
    today: NaiveDate,
    /// The only crossings this device may record, if it is enrolled for some.
    access: crate::commands::Access,
    chunk: Vec<Upsert>,
    seen: HashMap<[u8; 32], u32>,
    summary: Summary,
    writer: ChunkWriter,
}

impl Importer {
    fn refuse(&mut self, line: u64, reason: String) {
        eprintln!("line {line}: {reason}");
        self.summary.refused.push(RefusedRow { line, reason });
    }

    fn accept(
        &mut self,
        line: u64,
        id: Option<RecordId>,
        fields: FamilyFields,
        origin: Option<Origin>,
    ) -> Result<(), CliError> {
        if let Some(p) = self.access.crossing_problem(&fields.crossing) {
            self.refuse(line, p.to_string());
            return Ok(());
        }
        let id = match id {
            Some(id) => id,
            None => {
                let key = content_hash(&fields);
                let n = self.seen.entry(key).or_insert(0);
                *n += 1;
                derive_id(&key, &fields, *n)
            }
        };
        self.chunk.push(Upsert { id, fields, origin });
        if self.chunk.len() >= CHUNK {
            self.save()?;
        }
        Ok(())
    }

    fn save(&mut self) -> Result<(), CliError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let items = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.writer.send(items)
    }

    /// Saves what is left and waits for the writer; returns its duplicate warnings.
    fn finish(&mut self) -> Result<u64, CliError> {
        self.save()?;
        let w = self.writer.finish()?;
        self.summary.added += w.outcome.added;
        self.summary.updated += w.outcome.updated;
        self.summary.unchanged += w.outcome.unchanged;
        Ok(w.duplicate_warnings)
    }
}

fn import_csv(
    imp: &mut Importer,
    file: std::fs::File,
    bar: &indicatif::ProgressBar,
) -> Result<(), CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| CliError::Usage(format!("cannot read the CSV header: {e}")))?
        .clone();
    if !headers.iter().any(|h| h == "crossing") {
        return Err(CliError::Usage(
            "the CSV has no 'crossing' column; the first line must name the columns (see `returnee export`)".into(),
        ));
    }
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                imp.refuse(line, format!("unreadable CSV: {e}"));
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        bar.inc(1);
        let row: CsvRow = match record.deserialize(Some(&headers)) {
            Ok(r) => r,
            Err(e) => {
                imp.refuse(line, csv_problem(&e, &headers));
                continue;
            }
        };
        let id = match row.record_id() {
            Ok(id) => id,
            Err(m) => {
                imp.refuse(line, m);
                continue;
            }
        };
        let bands = row.band_problems();
        if !bands.is_empty() {
            imp.refuse(line, bands.join("; "));
            continue;
        }
        match row.to_draft().build(imp.today) {
            Ok(fields) => imp.accept(line, id, fields, row.origin())?,
            Err(e) => imp.refuse(line, e.one_line()),
        }
    }
    Ok(())
}

/// The fields a JSON lines record must have (the others have defaults).
const JSONL_REQUIRED: [&str; 6] = [
    "crossing",
    "crossed_on",
    "return_type",
    "departure_province",
    "destination_province",
    "members",
];

/// A CSV row that does not read, named by its column (`m_60_plus: …`).
fn csv_problem(e: &csv::Error, headers: &csv::StringRecord) -> String {
    if let csv::ErrorKind::Deserialize { err, .. } = e.kind() {
        let column = err
            .field()
            .and_then(|i| headers.get(i as usize))
            .map_or_else(|| "a column".to_string(), |h| format!("column {h}"));
        return format!("{column}: {}", err.kind());
    }
    format!("unreadable row: {e}")
}

/// How many rows the file holds (CSV records after the header, or
/// non-empty JSON lines): the progress bar's true total. One quick pass.
fn count_rows(path: &std::path::Path, format: Format) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    Some(match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
            let mut record = csv::ByteRecord::new();
            let mut n = 0;
            while reader.read_byte_record(&mut record).unwrap_or(true) {
                n += 1;
            }
            n
        }
        Format::Jsonl => BufReader::new(file)
            .split(b'\n')
            .map_while(Result::ok)
            .filter(|l| !l.trim_ascii().is_empty())
            .count() as u64,
    })
}

fn import_jsonl(
    imp: &mut Importer,
    file: std::fs::File,
    bar: &indicatif::ProgressBar,
) -> Result<(), CliError> {
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.map_err(|e| CliError::io("cannot read the file", e))?;
        if line.trim().is_empty() {
            continue;
        }
        bar.inc(1);
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                imp.refuse(n, format!("not a JSON object: {e}"));
                continue;
            }
        };
        let id = match value.get("id").and_then(|v| v.as_str()) {
            None | Some("") => None,
            Some(s) => match s.parse::<RecordId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    imp.refuse(n, format!("id: '{s}' is not a record id (a UUID)"));
                    continue;
                }
            },
        };
        let origin = serde_json::from_value::<Origin>(value.clone()).ok();
        let missing: Vec<&str> = JSONL_REQUIRED
            .iter()
            .copied()
            .filter(|k| value.get(k).is_none_or(serde_json::Value::is_null))
            .collect();
        if !missing.is_empty() {
            imp.refuse(
                n,
                format!(
                    "not a family record: missing {} {}",
                    if missing.len() == 1 {
                        "field"
                    } else {
                        "fields"
                    },
                    missing.join(", ")
                ),
            );
            continue;
        }
        let fields: FamilyFields = match serde_json::from_value(value) {
            Ok(f) => f,
            Err(e) => {
                imp.refuse(n, format!("not a family record: {e}"));
                continue;
            }
        };
        match fields.check(imp.today) {
            Ok(()) => imp.accept(n, id, fields, origin)?,
            Err(e) => imp.refuse(n, e.one_line()),
        }
    }
    Ok(())
}

pub fn run(args: ImportArgs, config: &Config) -> Result<(), CliError> {
    let format = match &args.format {
        Some(f) => Format::parse(f).ok_or_else(|| {
            CliError::Usage(format!(
                "'{f}' is not an import format; use --format csv or --format jsonl"
            ))
        })?,
        None => match args.file.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ => Format::Csv,
        },
    };
    let file = std::fs::File::open(&args.file)
        .map_err(|e| CliError::io(format!("cannot open {}", args.file.display()), e))?;
    let store = open_store(config)?;
    let rows = if config.progress {
        count_rows(&args.file, format).unwrap_or(0)
    } else {
        0
    };
    let bar = progress(config, rows, "importing rows");
    let mut imp = Importer {
        today: today(),
        access: crate::commands::Access::of(&store)?,
        chunk: Vec::with_capacity(CHUNK),
        seen: HashMap::new(),
        summary: Summary::default(),
        writer: ChunkWriter::start(store.clone(), !config.progress),
    };
    let read = match format {
        Format::Csv => import_csv(&mut imp, file, &bar),
        Format::Jsonl => import_jsonl(&mut imp, file, &bar),
    };
    // Whatever happened while reading, what was accepted is saved.
    let duplicate_warnings = imp.finish()?;
    read?;
    bar.finish_and_clear();
    crate::commands::duplicates::warn_import_summary(duplicate_warnings);
    let s = &imp.summary;
    if args.json {
        print_json(s)?;
    } else {
        println!(
            "imported {}: {} new, {} updated, {} unchanged; {} refused",
            crate::output::count(s.added + s.updated + s.unchanged, "row", "rows"),
            s.added,
            s.updated,
            s.unchanged,
            s.refused.len()
        );
    }
    if s.refused.is_empty() {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} row(s) were refused (listed above with their line numbers); the other rows were saved. Fix those rows and import the file again: rows already saved will not be added twice",
            s.refused.len()
        )))
    }
}
