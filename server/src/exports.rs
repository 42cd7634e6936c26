//! Reports in every format (`GET /v1/reports`) and family exports
//! (`GET /v1/export`). The formats are written by
//! `returnee_shared::report`, as the CLI writes them; each family export is
//! recorded in the audit trail before it is answered, and a laptop's
//! exports from its own store when it tells them (`POST /v1/audit/exports`).

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use chrono::Utc;
use returnee_shared::access::Action;
use returnee_shared::audit::AuditEvent;
use returnee_shared::report::records::{Disclosure, RecordCsv, record_cells};
use returnee_shared::report::{RenderOptions, ReportFormat, summary};
use returnee_shared::validate::{parse_crossing, parse_date_only};
use returnee_shared::wire::{
    ExportNotes, ExportNotesRecorded, ExportParams, MAX_EXPORT_NOTES, ReportJson, ReportParams,
};
use returnee_shared::{GroupBy, ReportBuilder, ReportFilter, ReturnType};

use crate::auth::Authenticated;
use crate::error::{ApiError, Refusals};
use crate::routes::blocking;
use crate::state::AppState;

type State = web::Data<AppState>;

/// The filter both endpoints take, checked like a form's.
fn filter_of(
    crossing: &Option<String>,
    from: &Option<String>,
    to: &Option<String>,
    return_type: &Option<String>,
) -> Result<ReportFilter, ApiError> {
    let bad = |m: String| ApiError::BadRequest(m);
    let mut filter = ReportFilter::default();
    if let Some(c) = crossing {
        filter.crossing = Some(parse_crossing(c).map_err(|p| bad(p.to_string()))?);
    }
    if let Some(d) = from {
        filter.from = Some(parse_date_only("from", d).map_err(|p| bad(p.to_string()))?);
    }
    if let Some(d) = to {
        filter.to = Some(parse_date_only("to", d).map_err(|p| bad(p.to_string()))?);
    }
    if let Some(t) = return_type {
        filter.return_type =
            Some(ReturnType::parse(t).ok_or_else(|| {
                bad(format!("return_type: use one of {}", ReturnType::allowed()))
            })?);
    }
    if let Some(p) = filter.range_problem() {
        return Err(bad(p.to_string()));
    }
    Ok(filter)
}

fn attachment(name: &str, format: ReportFormat) -> (header::HeaderName, String) {
    (
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}.{}\"", format.extension()),
    )
}

/// The totals, the ten sex × age-band counts and the breakdowns, over the
/// families of the device's sites; as JSON, a file (CSV, XLSX, HXL) or
/// the sitrep sentence.
#[utoipa::path(
    tag = "review",
    params(ReportParams),
    security(("bearer" = ["supervisor", "admin"])),
    responses(
        (status = 200, description = "The report, in the format asked for", content(
            (ReportJson = "application/json"),
            (String = "text/csv"),
            (String = "text/plain"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        Refusals
    )
)]
#[get("/reports")]
pub async fn reports(
    state: State,
    who: Authenticated,
    query: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let device = who.authorize(Action::ReadReports)?.clone();
    let q = query.into_inner();
    let bad = |m: String| ApiError::BadRequest(m);
    let mut filter = filter_of(&q.crossing, &q.from, &q.to, &q.return_type)?;
    if let Some(r) = &q.review {
        filter.review = Some(returnee_shared::ReviewState::parse(r).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "review: use one of {}",
                returnee_shared::ReviewState::allowed()
            ))
        })?);
    }
    let by = match &q.by {
        None => Vec::new(),
        Some(b) => GroupBy::parse_list(b).map_err(|m| bad(format!("by: {m}")))?,
    };
    let format = match &q.format {
        None => ReportFormat::Json,
        Some(f) => ReportFormat::parse(f).map_err(|m| bad(format!("format: {m}")))?,
    };
    if format == ReportFormat::Table {
        return Err(bad(
            "format: a table is for the terminal; use json, csv, xlsx, hxl or hxl-long".into(),
        ));
    }
    let small_cells = match (q.share, q.small_cells) {
        (false, _) => None,
        (true, Some(n)) if n < 2 => {
            return Err(bad("small_cells: give 2 or more".into()));
        }
        (true, n) => Some(n.unwrap_or(5)),
    };
    let mut builder = ReportBuilder::grouped(filter.clone(), by.clone());
    if q.summary {
        builder = builder.with_breakdowns(&summary::BREAKDOWNS);
    } else if format == ReportFormat::Xlsx && by.len() > 1 {
        builder = builder.with_breakdowns(&by);
    }
    let store = state.store.clone();
    let report = blocking(move || Ok(store.report(&device, builder)?)).await?;
    if q.summary {
        return Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(summary::sentence(&report, &filter, small_cells)));
    }
    if format == ReportFormat::Json && small_cells.is_none() {
        return Ok(HttpResponse::Ok().json(report));
    }
    let opts = RenderOptions {
        excel_bom: q.excel,
        small_cells,
        filter: filter.describe(),
        exported_at: Utc::now().timestamp(),
        source: "server".into(),
    };
    let bytes = blocking(move || {
        returnee_shared::report::render(&report, format, &opts)
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header(attachment("returnee-report", format))
        .body(bytes))
}

/// The families of the device's sites (supervisors and admins), document
/// numbers masked unless an admin asks `full=true`; written to the audit
/// trail before the first byte.
#[utoipa::path(
    tag = "review",
    params(ExportParams),
    security(("bearer" = ["supervisor", "admin"])),
    responses(
        (status = 200, description = "The families, in the format asked for", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        Refusals
    )
)]
#[get("/export")]
pub async fn export(
    state: State,
    who: Authenticated,
    query: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let bad = |m: String| ApiError::BadRequest(m);
    if q.full && q.share {
        return Err(bad(
            "full and share contradict each other: a shareable export has no document numbers"
                .into(),
        ));
    }
    let device = who
        .authorize(Action::ExportFamilies {
            full_documents: q.full,
        })?
        .clone();
    let filter = filter_of(&q.crossing, &q.from, &q.to, &q.return_type)?;
    let format = match q.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("csv") => ReportFormat::Csv,
        Some("jsonl") | Some("ndjson") => ReportFormat::Json,
        Some("xlsx") => ReportFormat::Xlsx,
        Some(other) => {
            return Err(bad(format!(
                "format: '{other}' is not an export format; use csv, jsonl or xlsx"
            )));
        }
    };
    let disclosure = if q.share {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Disclosure::Share { key }
    } else if q.full {
        Disclosure::Full
    } else {
        Disclosure::MaskDocuments
    };
    // The number of families is known before any leaves: the export and
    // this count read the same rows with the same test. The audit entry
    // is written before the first byte is sent.
    let store = state.store.clone();
    let (counted, device_id) = (filter.clone(), device.clone());
    let event = AuditEvent::Exported {
        format: match format {
            ReportFormat::Json => "jsonl".into(),
            f => f.as_str().into(),
        },
        filter: filter.describe(),
        rows: 0,
        personal: disclosure.personal(),
        full_documents: disclosure == Disclosure::Full,
        on_laptop_at: None,
    };
    let rows = blocking(move || {
        let rows = store
            .report(&device_id, ReportBuilder::new(counted, None))?
            .totals
            .families;
        let mut event = event;
        if let AuditEvent::Exported { rows: r, .. } = &mut event {
            *r = rows;
        }
        store.audit_export(device_id.id, Utc::now(), event)?;
        Ok(rows)
    })
    .await?;
    tracing::info!(rows, "families exported");
    let content_type = match format {
        ReportFormat::Json => "application/x-ndjson",
        f => f.content_type(),
    };
    let name = match format {
        ReportFormat::Json => "returnee-families.jsonl".to_string(),
        f => format!("returnee-families.{}", f.extension()),
    };
    let mut response = HttpResponse::Ok();
    response.content_type(content_type).insert_header((
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    ));
    let store = state.store.clone();
    if format == ReportFormat::Xlsx {
        let bytes = blocking(move || {
            let all: Vec<_> = store
                .families_for(&device, &filter)
                .map(|f| f.map(|f| disclosure.apply(f)))
                .collect::<Result<_, _>>()?;
            returnee_shared::report::xlsx::records_workbook(
                all.iter().map(record_cells),
                &returnee_shared::report::xlsx::About {
                    filter: filter.describe(),
                    exported_at: Utc::now().timestamp(),
                    source: "server".into(),
                    records: all.len() as u64,
                    small_cells: None,
                },
            )
            .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
        return Ok(response.body(bytes));
    }
    // CSV and JSON lines leave as they are written, in chunks, from a
    // blocking thread: memory stays flat whatever the number of families.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<web::Bytes>>(4);
    actix_web::rt::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            buf: Vec::with_capacity(CHUNK),
            tx,
        };
        let written = (|| -> std::io::Result<()> {
            let families = store
                .families_for(&device, &filter)
                .map(|f| f.map(|f| disclosure.apply(f)));
            let io = |e: String| std::io::Error::other(e);
            if format == ReportFormat::Csv {
                let mut w = RecordCsv::new(&mut out).map_err(|e| io(e.to_string()))?;
                for f in families {
                    w.push(&f.map_err(|e| io(e.to_string()))?)
                        .map_err(|e| io(e.to_string()))?;
                }
                w.finish()?;
            } else {
                for f in families {
                    serde_json::to_writer(&mut out, &f.map_err(|e| io(e.to_string()))?)?;
                    std::io::Write::write_all(&mut out, b"\n")?;
                }
            }
            std::io::Write::flush(&mut out)
        })();
        if let Err(e) = written {
            tracing::error!(error = %e, "an export stopped before its end");
            let _ = out.tx.blocking_send(Err(e));
        }
    });
    Ok(response.streaming(Chunks(rx)))
}

/// How much of an export is sent at a time.
const CHUNK: usize = 64 * 1024;

/// Sends what is written to it, a chunk at a time, to the response.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<web::Bytes>>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = web::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        // The client went away: stop reading the store.
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

/// The receiving end, as the response body's stream.
struct Chunks(tokio::sync::mpsc::Receiver<std::io::Result<web::Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<web::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Exports a laptop made from its own store since its last sync, for the
/// audit trail (each note once, however often it is sent).
#[utoipa::path(
    tag = "sync",
    request_body = ExportNotes,
    security(("bearer" = ["field", "supervisor", "admin"])),
    responses(
        (status = 200, description = "The notes are in the audit trail", body = ExportNotesRecorded),
        Refusals
    )
)]
#[post("/audit/exports")]
pub async fn export_notes(
    state: State,
    who: Authenticated,
    body: web::Json<ExportNotes>,
) -> Result<HttpResponse, ApiError> {
    let device = who.authorize(Action::NoteOwnExports)?.id;
    let notes = body.into_inner().notes;
    if notes.len() > MAX_EXPORT_NOTES {
        return Err(ApiError::BadRequest(format!(
            "{} notes in one request; send at most {MAX_EXPORT_NOTES} at a time",
            notes.len()
        )));
    }
    let store = state.store.clone();
    let recorded =
        blocking(move || Ok(store.record_export_notes(device, &notes, Utc::now())?)).await?;
    tracing::info!(recorded, "laptop exports noted");
    Ok(HttpResponse::Ok().json(ExportNotesRecorded { recorded }))
}
