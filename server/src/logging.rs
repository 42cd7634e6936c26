//! The server's log: where it goes, in which format, and one structured
//! line per request.
//!
//! A request's line holds its method, its route pattern (`/v1/sync/push`,
//! `/v1/admin/devices/{id}/revoke`; `unmatched` for a path no route takes),
//! its status, how long it took, and the device that made it when it
//! authenticated: never its path, its query string or its body, which may
//! carry names or document numbers.

use std::io::IsTerminal;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use returnee_shared::DeviceId;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Starts the log on standard error: `filter` as `RUST_LOG` says
/// (`info` by default), colours only on a terminal and unless `no_color`.
pub fn init(format: LogFormat, filter: Option<&str>, no_color: bool) {
    let filter = filter
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && !no_color;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The device a request authenticated as, kept in its extensions by
/// `auth` for the request's log line.
#[derive(Debug, Clone, Copy)]
pub struct RequestDevice(pub DeviceId);

/// The middleware that logs every request once it is answered and counts
/// it for `/metrics` (wrap it outermost, so that it sees the status the
/// client gets).
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let res = next.call(req).await;
    let took = started.elapsed();
    let (status, device) = match &res {
        Ok(res) => (
            res.status().as_u16(),
            res.request().extensions().get::<RequestDevice>().copied(),
        ),
        Err(e) => (e.as_response_error().status_code().as_u16(), None),
    };
    crate::metrics::request(&method, &route, status, took);
    let device = device.map(|d| d.0.to_string());
    tracing::info!(
        target: "returnee_server::request",
        method = %method,
        route = %route,
        status,
        ms = took.as_secs_f64() * 1000.0,
        device = device.as_deref().unwrap_or("-"),
        "request"
    );
    res
}

/// Notes on `req` the device it authenticated as.
pub fn note_device(req: &actix_web::HttpRequest, device: DeviceId) {
    req.extensions_mut().insert(RequestDevice(device));
}
