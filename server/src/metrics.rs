//! `GET /metrics` in the Prometheus text format, served on its own address
//! (`--metrics-bind`, off by default) so that it is never reachable through
//! the sync API by accident.
//!
//! Series (every name starts with `returnee_`):
//! - `http_requests_total{method,route,status}` and
//!   `http_request_duration_seconds{route}`: every request, by its route
//!   pattern (`/v1/sync/push`, `/v1/admin/devices/{id}/revoke`), never its
//!   path or query;
//! - `sync_operations_total{direction}`: operations received by pushes and
//!   sent by pulls; `sync_batch_seconds{direction}`: how long each batch took;
//! - `journal_fsync_seconds`: each fsync that made acknowledged pushes
//!   durable (`returnee_store::observe`); `journal_bytes`: the store's size
//!   on disk;
//! - `log_position`: the last position of the operation log;
//!   `projection_lag_positions`: how far the duplicate index is behind it;
//!   `duplicate_queue_records`: changed records waiting for the index;
//! - `devices{state="enrolled"|"revoked"}`.
//!
//! Counters and histograms are recorded where things happen (through the
//! `metrics` facade); gauges are read from the store at each scrape. The
//! recorder is process-wide: one server per process reports.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{App, HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use returnee_store::server::{DuplicateIndex, ServerStore};

use crate::app::Prepared;

pub const HTTP_REQUESTS: &str = "returnee_http_requests_total";
pub const HTTP_DURATION: &str = "returnee_http_request_duration_seconds";
pub const SYNC_OPERATIONS: &str = "returnee_sync_operations_total";
pub const SYNC_BATCH_SECONDS: &str = "returnee_sync_batch_seconds";
pub const LOG_POSITION: &str = "returnee_log_position";
pub const PROJECTION_LAG: &str = "returnee_projection_lag_positions";
pub const DUPLICATE_QUEUE: &str = "returnee_duplicate_queue_records";
pub const DEVICES: &str = "returnee_devices";

/// Histogram buckets, in seconds: from a fast fsync to a slow large batch.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder (once; later calls share it).
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed: then this one
            // shows nothing recorded, which the handle still renders.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a request, by route pattern"
    );
    describe_counter!(
        SYNC_OPERATIONS,
        "Operations received by pushes and sent by pulls"
    );
    describe_histogram!(
        SYNC_BATCH_SECONDS,
        Unit::Seconds,
        "Time to handle one push or pull batch"
    );
    describe_histogram!(
        returnee_store::observe::JOURNAL_FSYNC_SECONDS,
        Unit::Seconds,
        "Time of each fsync that made acknowledged pushes durable"
    );
    describe_gauge!(
        returnee_store::observe::JOURNAL_BYTES,
        Unit::Bytes,
        "Bytes the store takes on disk"
    );
    describe_gauge!(LOG_POSITION, "The last position of the operation log");
    describe_gauge!(
        PROJECTION_LAG,
        "Log positions the duplicate index has not taken in yet"
    );
    describe_gauge!(
        DUPLICATE_QUEUE,
        "Changed records waiting for the duplicate index"
    );
    describe_gauge!(
        DEVICES,
        "Devices by state: enrolled (not revoked) and revoked"
    );
}

/// A request was answered.
pub fn request(method: &str, route: &str, status: u16, took: Duration) {
    metrics::counter!(
        HTTP_REQUESTS,
        "method" => method.to_string(),
        "route" => route.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route.to_string()).record(took.as_secs_f64());
}

/// Which way a sync batch went.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    Push,
    Pull,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::Push => "push",
            Direction::Pull => "pull",
        }
    }
}

/// A push or pull batch of `ops` operations took `took`.
pub fn batch(direction: Direction, ops: usize, took: Duration) {
    metrics::counter!(SYNC_OPERATIONS, "direction" => direction.label()).increment(ops as u64);
    metrics::histogram!(SYNC_BATCH_SECONDS, "direction" => direction.label())
        .record(took.as_secs_f64());
}

/// What a scrape reads: the store and its index.
struct Scrape {
    store: ServerStore,
    duplicates: DuplicateIndex,
    handle: PrometheusHandle,
}

impl Scrape {
    /// Sets the gauges read from the store, then renders every series.
    fn render(&self) -> Result<String, returnee_store::server::StoreError> {
        let devices = self.store.devices()?;
        let revoked = devices.iter().filter(|d| d.revoked_at.is_some()).count();
        metrics::gauge!(DEVICES, "state" => "enrolled").set((devices.len() - revoked) as f64);
        metrics::gauge!(DEVICES, "state" => "revoked").set(revoked as f64);
        let (lag, waiting) = self.duplicates.lag()?;
        metrics::gauge!(PROJECTION_LAG).set(lag as f64);
        metrics::gauge!(DUPLICATE_QUEUE).set(waiting as f64);
        metrics::gauge!(LOG_POSITION).set(self.store.log_position()? as f64);
        returnee_store::observe::journal_bytes(self.store.size_on_disk()?);
        Ok(self.handle.render())
    }
}

async fn metrics_page(scrape: web::Data<Scrape>) -> HttpResponse {
    let scrape = scrape.into_inner();
    match web::block(move || scrape.render()).await {
        Ok(Ok(text)) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "metrics could not be read from the store");
            HttpResponse::InternalServerError().body("the store could not be read\n")
        }
        Err(_) => HttpResponse::InternalServerError().body("the metrics task failed\n"),
    }
}

/// The metrics server over `listener`: `GET /metrics` and nothing else,
/// one worker, no signal handling of its own (the sync API's server stops
/// it). Run it inside the same actix system as the sync API.
pub fn http_server(
    prepared: &Prepared,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let scrape = web::Data::new(Scrape {
        store: prepared.store.clone(),
        duplicates: prepared.duplicates.clone(),
        handle: install(),
    });
    Ok(actix_web::HttpServer::new(move || {
        App::new()
            .app_data(scrape.clone())
            .route("/metrics", web::get().to(metrics_page))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}
