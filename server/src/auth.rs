//! Authentication: the `Authorization: Bearer TOKEN` header resolved to an
//! enrolled device, as an actix extractor, and the access checks handlers
//! make through it (the policy is `returnee_shared::access`).

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use returnee_shared::access::{Action, authorize};
use returnee_shared::wire::{ACCEPTED_PROTOCOLS, PROTOCOL_HEADER, PROTOCOL_VERSION};

use crate::error::ApiError;
use crate::state::AppState;
use returnee_store::server::{Device, hash_secret};

/// When the token `device` uses now stops working: `lifetime` after it was
/// issued (a device enrolled before tokens expired counts from its
/// enrollment).
pub fn token_expires(device: &Device, lifetime: chrono::Duration) -> chrono::DateTime<chrono::Utc> {
    device.credential.issued_at.unwrap_or(device.enrolled_at) + lifetime
}

/// Whether `device` should rotate its token now: less than a third of its
/// lifetime is left, an admin asked, or it was issued before tokens rotated.
pub fn rotation_due(
    device: &Device,
    lifetime: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let c = &device.credential;
    c.rotate_requested || c.hash.is_none() || token_expires(device, lifetime) - now < lifetime / 3
}

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

/// Refuses a protocol version this server does not accept (it accepts
/// [`ACCEPTED_PROTOCOLS`]: the current one and the one before).
pub fn accept_protocol(version: u32) -> Result<u32, ApiError> {
    if ACCEPTED_PROTOCOLS.contains(&version) {
        return Ok(version);
    }
    let [oldest, newest] = ACCEPTED_PROTOCOLS;
    Err(ApiError::ProtocolMismatch(if version < oldest {
        format!(
            "this server speaks sync protocol {newest} and accepts {oldest} to {newest}, the client {version}; update returnee on this laptop (nothing stored on it is lost)"
        )
    } else {
        format!(
            "this server speaks sync protocol {newest} and accepts {oldest} to {newest}, the client {version}; the server is older than this laptop, ask the admin to update it"
        )
    }))
}

/// The version a request's protocol header names, when it has one.
fn header_protocol(req: &HttpRequest) -> Result<Option<u32>, ApiError> {
    let Some(value) = req.headers().get(PROTOCOL_HEADER) else {
        return Ok(None);
    };
    let version = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| {
            ApiError::ProtocolMismatch(format!(
                "the {PROTOCOL_HEADER} header must be a protocol number such as {PROTOCOL_VERSION}"
            ))
        })?;
    accept_protocol(version).map(Some)
}

/// The protocol a sync request speaks: its header is required there (a
/// clear 400 without it), and must name an accepted version.
#[derive(Debug, Clone, Copy, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct SyncProtocol {
    /// The sync protocol the client speaks: the server's current one or
    /// the one before (see `GET /v1/health`).
    #[param(rename = "x-returnee-protocol", minimum = 1, maximum = 2)]
    pub version: u32,
}

impl FromRequest for SyncProtocol {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match header_protocol(req) {
            Ok(Some(version)) => Ok(SyncProtocol { version }),
            Ok(None) => Err(ApiError::BadRequest(format!(
                "a sync request must say its protocol: send the header {PROTOCOL_HEADER}: {PROTOCOL_VERSION}"
            ))),
            Err(e) => Err(e),
        })
    }
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    header_protocol(req)?;
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
    let token = token.trim();
    let mut device = state.store.device_by_token(token)?.ok_or_else(|| {
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
    let now = state.config.clock.now();
    let hash = hash_secret(token);
    let pending = device
        .credential
        .pending
        .as_ref()
        .is_some_and(|p| p.hash == hash);
    if !pending && device.credential.hash.as_ref().is_some_and(|h| *h != hash) {
        // A token replaced by a rotation or a new enrollment.
        return Err(ApiError::Unauthorized(
            "this device credential was replaced by a newer one and no longer works; enroll again with a new code".into(),
        ));
    }
    if pending {
        // The first use of a rotated token confirms it: the old one ends.
        if let Some(confirmed) = state.store.confirm_token(device.id, &hash, now)? {
            tracing::info!(device = %device.id, "token rotated");
            device = confirmed;
        }
    }
    let expires = token_expires(&device, state.config.token_lifetime);
    if now >= expires {
        return Err(ApiError::TokenExpired(format!(
            "this device's credential expired on {} (it was not synced in time to renew it). Nothing on this laptop is lost: ask an admin for a new enrollment code and run `returnee enroll --server URL --code CODE` again with this data folder",
            expires.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    crate::dashboard::devices::seen(&state.store, device.id);
    crate::logging::note_device(req, device.id);
    Ok(Authenticated(device))
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}
