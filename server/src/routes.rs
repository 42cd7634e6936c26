//! The HTTP API under `/v1/`: one handler per endpoint, each a thin layer
//! that checks the caller, calls the store on a blocking thread, and answers
//! with the wire types of `returnee-shared`.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use rayon::prelude::*;
use returnee_shared::DeviceId;
use returnee_shared::access::Action;
use returnee_shared::merge::Op;
use returnee_shared::validate::parse_crossing;
use returnee_shared::wire::{
    AuditPage, CodeRequest, CodeResponse, DeviceSummary, EnrollRequest, EnrollResponse, Health,
    MAX_AUDIT_PAGE, MAX_PULL_OPS, MAX_PUSH_OPS, PROTOCOL_VERSION, RawPushRequest, Role, SyncCursor,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use returnee_store::server::EnrollRefusal;

type State = web::Data<AppState>;

/// Runs store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/health", web::get().to(health))
            .route("/enroll", web::post().to(enroll))
            .route("/admin/codes", web::post().to(mint_code))
            .route("/admin/devices", web::get().to(devices))
            .route("/admin/devices/{id}/revoke", web::post().to(revoke))
            .route("/admin/audit", web::get().to(audit))
            .route("/sync/push", web::post().to(push))
            .route("/sync/pull", web::get().to(pull))
            .route("/conflicts", web::get().to(conflicts))
            .route("/duplicates", web::get().to(duplicates))
            .route("/reports", web::get().to(crate::exports::reports))
            .route("/export", web::get().to(crate::exports::export)),
    );
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        protocol: PROTOCOL_VERSION,
    })
}

async fn enroll(state: State, body: web::Json<EnrollRequest>) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    if req.protocol != PROTOCOL_VERSION {
        return Err(ApiError::ProtocolMismatch(format!(
            "this server speaks sync protocol {PROTOCOL_VERSION}, the client {}; update returnee",
            req.protocol
        )));
    }
    let name = req.device_name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "device_name must be 1 to 100 characters; pass --device-name".into(),
        ));
    }
    let store = state.store.clone();
    let outcome =
        blocking(move || Ok(store.enroll(&req.code, req.device_id, &name, Utc::now())?)).await?;
    match outcome {
        Ok((device, token)) => {
            tracing::info!(device = %device.id, role = %device.role, "device enrolled");
            Ok(HttpResponse::Ok().json(EnrollResponse {
                device_id: device.id,
                token,
                role: device.role,
                sites: device.sites,
            }))
        }
        Err(EnrollRefusal::UnknownCode) => Err(ApiError::Unauthorized(
            "the enrollment code is not valid: it is mistyped, already used up, or was never issued; ask an admin for a new code".into(),
        )),
        Err(EnrollRefusal::AlreadyEnrolled) => Err(ApiError::Conflict(
            "this device is already enrolled; its store keeps the credential".into(),
        )),
    }
}

async fn mint_code(
    state: State,
    who: Authenticated,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let admin = who.authorize(Action::MintCodes)?.id;
    let req = body.into_inner();
    if !(1..=1000).contains(&req.uses) {
        return Err(ApiError::BadRequest("uses must be from 1 to 1000".into()));
    }
    let mut sites = req
        .sites
        .iter()
        .map(|s| {
            parse_crossing(s).map_err(|p| ApiError::BadRequest(format!("sites: {}", p.message)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    sites.sort();
    sites.dedup();
    match req.role {
        Role::Field if sites.is_empty() => {
            return Err(ApiError::BadRequest(
                "a field device works at its own site: give the code at least one site (--site CROSSING)".into(),
            ));
        }
        // An admin sees everything; sites would mean nothing.
        Role::Admin if !sites.is_empty() => {
            return Err(ApiError::BadRequest(
                "an admin works at every site: leave out --site for an admin code".into(),
            ));
        }
        _ => {}
    }
    let store = state.store.clone();
    let (role, uses) = (req.role, req.uses);
    let s2 = sites.clone();
    let code =
        blocking(move || Ok(store.mint_code(role, s2, uses, Some(admin), Utc::now())?)).await?;
    tracing::info!(by = %admin, role = %role, uses, "enrollment code minted");
    Ok(HttpResponse::Ok().json(CodeResponse {
        code,
        role,
        sites,
        uses,
    }))
}

async fn push(
    state: State,
    who: Authenticated,
    body: web::Json<RawPushRequest>,
) -> Result<HttpResponse, ApiError> {
    let raw = body.into_inner().ops;
    if raw.len() > MAX_PUSH_OPS {
        return Err(ApiError::TooLarge(format!(
            "a push carries at most {MAX_PUSH_OPS} operations; send smaller batches (--batch-size)"
        )));
    }
    let store = state.store.clone();
    let device = who.0;
    let id = device.id;
    let n = raw.len();
    let duplicates = state.duplicates.clone();
    let arrived = std::time::Instant::now();
    let mut ack = blocking(move || {
        let ops = decode_ops(&raw)?;
        drop(raw);
        // Committed: re-check the changed records for duplicates (off this request).
        Ok(
            store.push_then(&device, ops, Utc::now(), |changed, through| {
                duplicates.after_push(changed, through, |task| {
                    actix_web::rt::task::spawn_blocking(task);
                })
            })?,
        )
    })
    .await?;
    ack.next_batch = Some(crate::pacing::next_batch(n, arrived.elapsed()) as u32);
    tracing::info!(
        device = %id,
        ops = n,
        applied = ack.applied,
        already_held = ack.already_held,
        rejected = ack.rejected.len(),
        "push"
    );
    Ok(HttpResponse::Ok().json(ack))
}

/// Decodes a push's operations, several at once on a large batch; any
/// element that is not a valid operation refuses the whole batch, and the
/// error names one such element by its place (with several, not
/// necessarily the first).
fn decode_ops(raw: &[Box<RawValue>]) -> Result<Vec<Op>, ApiError> {
    raw.par_iter()
        .with_min_len(500)
        .enumerate()
        .map(|(i, op)| {
            serde_json::from_str(op.get()).map_err(|e| {
                ApiError::BadRequest(format!(
                    "operation {} of the batch is not a valid operation: {e}",
                    i + 1
                ))
            })
        })
        .collect()
}

/// `?after=N&limit=M` of the paged endpoints (pull, audit).
#[derive(Debug, Deserialize)]
struct PageParams {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

impl PageParams {
    /// The page size asked for, within `1..=max` (`max` when not given).
    fn limit(&self, max: usize) -> usize {
        self.limit.unwrap_or(max).clamp(1, max)
    }
}

async fn pull(
    state: State,
    who: Authenticated,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit(MAX_PULL_OPS);
    let after = SyncCursor(query.after);
    let store = state.store.clone();
    let device = who.0;
    let id = device.id;
    let page = blocking(move || Ok(store.pull(&device, after, limit)?)).await?;
    // The log holds each operation's JSON: the answer is written from it
    // without decoding (PullPage::to_json).
    let body = page.to_json();
    tracing::debug!(device = %id, ops = page.ops.len(), cursor = page.cursor.0, "pull");
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn conflicts(state: State, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let device = who.authorize(Action::ListConflicts)?.clone();
    let store = state.store.clone();
    let list = blocking(move || Ok(store.conflicts(&device)?)).await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn duplicates(state: State, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let device = who.authorize(Action::ListDuplicates)?.clone();
    let index = state.duplicates.clone();
    let store = state.store.clone();
    let list = blocking(move || {
        let mut out = Vec::new();
        for c in index.candidates()? {
            if store.visible_to(&device, c.records[0])?
                || store.visible_to(&device, c.records[1])?
            {
                out.push(c);
            }
        }
        Ok(out)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn devices(state: State, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.authorize(Action::ListDevices)?;
    let store = state.store.clone();
    let list = blocking(move || Ok(store.devices()?)).await?;
    let list: Vec<DeviceSummary> = list.iter().map(|d| d.summary()).collect();
    Ok(HttpResponse::Ok().json(list))
}

async fn revoke(
    state: State,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = who.authorize(Action::RevokeDevice)?.id;
    let id = uuid::Uuid::parse_str(path.trim())
        .map(DeviceId)
        .map_err(|_| {
            ApiError::BadRequest(
                "the device id is not a UUID; copy it from `returnee admin devices`".into(),
            )
        })?;
    if id == admin {
        return Err(ApiError::BadRequest(
            "a device cannot revoke itself; revoke it from another admin device".into(),
        ));
    }
    let store = state.store.clone();
    let device = blocking(move || Ok(store.revoke(id, admin, Utc::now())?))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(
                "no device with this id is enrolled; see `returnee admin devices`".into(),
            )
        })?;
    tracing::info!(device = %id, by = %admin, "device revoked");
    Ok(HttpResponse::Ok().json(device.summary()))
}

async fn audit(
    state: State,
    who: Authenticated,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    who.authorize(Action::ReadAudit)?;
    let limit = query.limit(MAX_AUDIT_PAGE);
    let after = query.after;
    let store = state.store.clone();
    let (entries, more, newest) = blocking(move || {
        let (entries, more) = store.audit(after, limit)?;
        Ok((entries, more, store.audit_newest()?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        entries,
        more,
        newest,
    }))
}
