//! The coordinator's web dashboard under `/dashboard/`: server-rendered
//! HTML (maud), charts drawn as SVG on the server (plotters), every asset
//! compiled in, no script. Signed-in supervisors and admins see what the
//! API would show their device (the same access policy and store calls),
//! and their decisions are the same operations the laptops write, pushed
//! as the session's device.
//!
//! - [`session`]: sign-in with an enrollment code, the session cookie, CSRF.
//! - [`layout`]: the page frame, the style sheet, small shared pieces.
//! - [`overview`] (+ [`chart`]): the report for a date range and crossing,
//!   its summary sentence, and its downloads.
//! - [`conflicts`], [`duplicates`] (+ [`decide`]): the decisions.
//! - [`devices`], [`audit`]: admin pages.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};

use crate::state::AppState;
use returnee_store::server::StoreError;

pub mod audit;
pub mod chart;
pub mod conflicts;
pub mod decide;
pub mod devices;
pub mod duplicates;
pub mod layout;
pub mod overview;
pub mod session;

/// What a dashboard request can fail with; each is shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum DashError {
    /// Not signed in, or the session ended: the sign-in page (401).
    #[error("{0}")]
    SignIn(String),
    /// The policy or a check refused (403).
    #[error("{0}")]
    Refused(String),
    /// A form or filter was not valid (400).
    #[error("{0}")]
    BadInput(String),
    /// The thing asked about is not there (any more) (404).
    #[error("{0}")]
    NotFound(String),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl ResponseError for DashError {
    fn status_code(&self) -> StatusCode {
        match self {
            DashError::SignIn(_) => StatusCode::UNAUTHORIZED,
            DashError::Refused(_) => StatusCode::FORBIDDEN,
            DashError::BadInput(_) => StatusCode::BAD_REQUEST,
            DashError::NotFound(_) => StatusCode::NOT_FOUND,
            DashError::Store(_) | DashError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "dashboard request failed");
        }
        match self {
            DashError::SignIn(message) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(layout::signed_out(message).into_string()),
            other => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(layout::problem(status, &other.to_string()).into_string()),
        }
    }
}

/// Runs store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DashError> + Send + 'static,
) -> Result<T, DashError> {
    web::block(f)
        .await
        .map_err(|e| DashError::Internal(e.to_string()))?
}

/// A page as an HTML response.
pub(crate) fn html(markup: maud::Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(markup.into_string())
}

/// After a form: back to `to` (a path without personal data).
pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// Registers the dashboard's routes (and `/` sends a browser to it).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|| async { see_other("/dashboard/") }),
    )
    .service(
        web::scope("/dashboard")
            .app_data(web::FormConfig::default().limit(64 * 1024).error_handler(
                |err, _| {
                    DashError::BadInput(format!(
                        "the form was not complete or not valid ({err}); reload the page and try again"
                    ))
                    .into()
                },
            ))
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                DashError::BadInput(format!("the filter is not valid: {err}")).into()
            }))
            .route("/", web::get().to(overview::page))
            .route("/export", web::get().to(overview::export))
            .route("/style.css", web::get().to(layout::style))
            .route("/sign-in", web::get().to(session::sign_in_page))
            .route("/sign-in", web::post().to(session::sign_in))
            .route("/sign-out", web::post().to(session::sign_out))
            .route("/conflicts", web::get().to(conflicts::page))
            .route("/conflicts/resolve", web::post().to(conflicts::resolve))
            .route("/duplicates", web::get().to(duplicates::page))
            .route("/duplicates/merge", web::post().to(duplicates::merge))
            .route("/duplicates/dismiss", web::post().to(duplicates::dismiss))
            .route("/duplicates/unmerge", web::post().to(duplicates::unmerge))
            .route("/devices", web::get().to(devices::page))
            .route("/devices/revoke", web::post().to(devices::revoke))
            .route("/audit", web::get().to(audit::page)),
    );
}

/// The shared state, for handlers.
pub(crate) type State = web::Data<AppState>;
