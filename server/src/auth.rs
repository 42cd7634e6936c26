//! Authentication: the `Authorization: Bearer TOKEN` header resolved to an
//! enrolled device, as an actix extractor, and the access checks handlers
//! make through it (the policy is `returnee_shared::access`).

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use returnee_shared::access::{Action, authorize};
use returnee_shared::wire::{PROTOCOL_HEADER, PROTOCOL_VERSION};

use crate::error::ApiError;
use crate::state::AppState;
use returnee_store::server::Device;

/// The enrolled device that made the request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Device);

impl Authenticated {
    /// Refuses (403, with the policy's words) unless the device may do `action`.
    pub fn authorize(&self, action: Action) -> Result<&Device, ApiError> {
        authorize(&self.0.principal(), &action)?;
        Ok(&self.0)
    }
}

fn check_protocol(req: &HttpRequest) -> Result<(), ApiError> {
    match req.headers().get(PROTOCOL_HEADER) {
        None => Ok(()),
        Some(v) if v.to_str().ok() == Some(PROTOCOL_VERSION.to_string().as_str()) => Ok(()),
        Some(v) => Err(ApiError::ProtocolMismatch(format!(
            "this server speaks sync protocol {PROTOCOL_VERSION}, the client sent {}; update returnee on this laptop",
            v.to_str().unwrap_or("?")
        ))),
    }
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    check_protocol(req)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("state missing".into()))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "this device is not enrolled: send Authorization: Bearer TOKEN (run `returnee enroll` first)".into(),
            )
        })?;
    let token = header.strip_prefix("Bearer ").ok_or_else(|| {
        ApiError::Unauthorized("the Authorization header must be `Bearer TOKEN`".into())
    })?;
    let device = state.store.device_by_token(token.trim())?.ok_or_else(|| {
        ApiError::Unauthorized(
            "the device credential is not valid on this server; enroll again with a new code"
                .into(),
        )
    })?;
    if let Some(at) = device.revoked_at {
        return Err(ApiError::Revoked(format!(
            "this device was revoked by an admin on {}; it must erase its local copy and may not sync again",
            at.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    crate::dashboard::devices::seen(&state.store, device.id);
    Ok(Authenticated(device))
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}
