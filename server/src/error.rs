//! `ApiError`: every way a request fails, mapped to an HTTP status and a
//! JSON body `{"error": CODE, "message": TEXT}` (the codes are
//! `returnee_shared::wire::ErrorCode`, shared with the client). Messages say
//! what to do and never carry personal data.
//!
//! Refusals no handler made (a wrong method, a body actix refused) and
//! panics are turned into the same body by [`json_errors`] and
//! [`catch_panics`], so no answer of this server is an error without one.

use std::panic::AssertUnwindSafe;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use actix_web::{HttpResponse, ResponseError};
use futures_util::FutureExt;
use returnee_shared::access::Denial;
use returnee_shared::wire::{ErrorBody, ErrorCode};

use returnee_store::server::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    /// The device was revoked by an admin: it must erase its local copy.
    #[error("{0}")]
    Revoked(String),
    #[error("{0}")]
    Forbidden(String),
    /// The device's credential expired: it must enroll again.
    #[error("{0}")]
    TokenExpired(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The path exists with other methods (listed in the `Allow` header).
    #[error("{message}")]
    MethodNotAllowed { message: String, allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    ProtocolMismatch(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the server could not complete the request; nothing acknowledged was lost, try again")]
    Store(#[from] StoreError),
    #[error("the server could not complete the request; try again")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Revoked(_) => ErrorCode::Revoked,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::TokenExpired(_) => ErrorCode::TokenExpired,
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::ProtocolMismatch(_) => ErrorCode::ProtocolMismatch,
            ApiError::TooLarge(_) => ErrorCode::TooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::Store(_) | ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The access policy's refusal: 403, with its message.
impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        ApiError::Forbidden(d.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Store(e) => tracing::error!(error = %e, "store failure"),
            ApiError::Internal(e) => tracing::error!(error = %e, "internal failure"),
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            resp.insert_header((header::ALLOW, allow.as_str()));
        }
        resp.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

/// The error answers every endpoint may give, for the OpenAPI description:
/// each is an [`ErrorBody`].
pub struct Refusals;

impl utoipa::IntoResponses for Refusals {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        [
            (
                400,
                "A malformed request, query or body, or a protocol the server does not accept",
            ),
            (
                401,
                "No valid credential, an expired one, or a revoked device",
            ),
            (403, "The device's role or sites do not allow it"),
            (404, "No such endpoint or item"),
            (405, "The path exists with another method"),
            (409, "Already done (a device already enrolled)"),
            (413, "The body or batch is over the limit"),
            (415, "The body is not sent as JSON"),
            (500, "The server failed; nothing acknowledged was lost"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            (status.to_string(), response.into())
        })
        .collect()
    }
}

/// The middleware that gives an error answer no handler wrote (actix's own
/// refusals: a payload error, a method no route takes) the JSON body every
/// other error has, with the code of its status.
pub fn json_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        // A handler's own answer (the API's JSON, the dashboard's pages)
        // is left as it is.
        let written = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
        if written {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let (req, old) = res.into_parts();
        let status = old.status();
        let code = ErrorCode::for_status(status.as_u16());
        let message = framework_message(code, old.error());
        let mut new = HttpResponse::build(status);
        for (name, value) in old.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                new.append_header((name.clone(), value.clone()));
            }
        }
        let new = new.json(ErrorBody {
            error: code,
            message,
        });
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, new).map_into_right_body(),
        ))
    })
}

/// What to tell the client of a refusal actix made.
fn framework_message(code: ErrorCode, error: Option<&actix_web::Error>) -> String {
    let what = match code {
        ErrorCode::NotFound => "no such endpoint; the API lives under /v1/ (GET /v1/openapi.json)",
        ErrorCode::MethodNotAllowed => "this path does not take this method",
        ErrorCode::TooLarge => "the request body is over the limit; send smaller batches",
        ErrorCode::UnsupportedMediaType => {
            "send the body as JSON with Content-Type: application/json"
        }
        ErrorCode::Internal | ErrorCode::Unknown => {
            return "the server could not complete the request; try again".into();
        }
        _ => "the request is not valid",
    };
    match error {
        Some(e) => format!("{what}: {e}"),
        None => what.to_string(),
    }
}

/// The middleware that answers a panicking handler with a 500 and the JSON
/// body of [`ApiError::Internal`] (no detail of the panic), instead of a
/// dropped connection.
pub async fn catch_panics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // The request cannot be kept aside (routing needs it unshared): the
    // refusal goes back as an error, which actix answers with its
    // `error_response`.
    let path = req.path().to_string();
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(res) => res.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            tracing::error!(path = %path, "a handler panicked");
            Err(ApiError::Internal("a handler panicked".into()).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};

    use super::*;

    #[actix_web::test]
    async fn a_panic_and_a_refusal_no_handler_wrote_are_json_errors() {
        let app = test::init_service(
            App::new()
                .route(
                    "/boom",
                    web::get().to(|| async {
                        if true {
                            panic!("secret detail");
                        }
                        HttpResponse::Ok().finish()
                    }),
                )
                .route(
                    "/teapot",
                    web::get().to(|| async { HttpResponse::ImATeapot().finish() }),
                )
                .wrap(json_errors())
                .wrap(actix_web::middleware::from_fn(catch_panics)),
        )
        .await;
        // A middleware's error is answered by actix with its error_response.
        let err = test::try_call_service(&app, test::TestRequest::get().uri("/boom").to_request())
            .await
            .expect_err("the panic is refused");
        let resp = err.error_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error, ErrorCode::Internal);
        assert!(!body.message.contains("secret"), "{}", body.message);

        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/teapot").to_request()).await;
        assert_eq!(resp.status().as_u16(), 418);
        let body: ErrorBody = test::read_body_json(resp).await;
        assert_eq!(body.error, ErrorCode::BadRequest);
    }
}
