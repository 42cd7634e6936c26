//! `ApiError`: every way a request fails, mapped to an HTTP status and a
//! JSON body `{"error": CODE, "message": TEXT}`. Messages say what to do and
//! never carry personal data.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
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
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    ProtocolMismatch(String),
    #[error("{0}")]
    TooLarge(String),
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
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::ProtocolMismatch(_) => ErrorCode::ProtocolMismatch,
            ApiError::TooLarge(_) => ErrorCode::TooLarge,
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
        match self {
            ApiError::Unauthorized(_) | ApiError::Revoked(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::ProtocolMismatch(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Store(e) = self {
            tracing::error!(error = %e, "store failure");
        }
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}
