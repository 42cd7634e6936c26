//! The HTTP API under `/v1/`: one handler per endpoint, each a thin layer
//! that checks the caller, calls the store on a blocking thread, and answers
//! with the wire types of `returnee-shared`.

use actix_web::{HttpResponse, get, post, web};
use chrono::Utc;
use rayon::prelude::*;
use returnee_shared::DeviceId;
use returnee_shared::access::Action;
use returnee_shared::merge::Op;
use returnee_shared::reference::{CrossingDef, CrossingList};
use returnee_shared::validate::parse_crossing;
use returnee_shared::wire::{
    AuditPage, CodeRequest, CodeResponse, DeviceName, DeviceSummary, EnrollRequest, EnrollResponse,
    Health, MAX_AUDIT_PAGE, MAX_PULL_OPS, MAX_PUSH_OPS, PageParams, PullResponse, PushRequest,
    PushResponse, RawPushRequest, Role, SitesRequest, SyncCursor, TokenAnswer,
};
use serde_json::value::RawValue;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Authenticated, SyncProtocol};
use crate::error::{ApiError, Refusals};
use crate::openapi::OpenApiJson;
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

/// Every endpoint, each registered with its OpenAPI description (the
/// handler's `#[utoipa::path]`): adding one is a `.service(handler)` line
/// here (ARCHITECTURE.md, "Adding an endpoint").
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/v1")
            .service(health)
            .service(openapi)
            .service(enroll)
            .service(mint_code)
            .service(devices)
            .service(device_names)
            .service(revoke)
            .service(audit)
            .service(device_token)
            .service(set_sites)
            .service(ask_rotation)
            .service(list_crossings)
            .service(add_crossing)
            .service(deactivate_crossing)
            .service(push)
            .service(pull)
            .service(conflicts)
            .service(list_duplicates)
            .service(crate::exports::reports)
            .service(crate::exports::export)
            .service(crate::exports::export_notes),
    );
}

/// The server is up, and the sync protocols it speaks.
#[utoipa::path(tag = "meta", responses((status = 200, description = "The server is up", body = Health), Refusals))]
#[get("/health")]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health::current())
}

/// This API's OpenAPI 3.1 description (the same as `docs/openapi.json`).
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "An OpenAPI 3.1 document", body = Object), Refusals)
)]
#[get("/openapi.json")]
async fn openapi(spec: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec.0.clone())
}

/// Exchanges a one-time enrollment code for a device credential (no
/// bearer token: the code is the credential).
#[utoipa::path(
    tag = "devices",
    responses((status = 200, description = "Enrolled: the credential, shown once", body = EnrollResponse), Refusals)
)]
#[post("/enroll")]
async fn enroll(state: State, body: web::Json<EnrollRequest>) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    crate::auth::accept_protocol(req.protocol)?;
    let name = req.device_name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "device_name must be 1 to 100 characters; pass --device-name".into(),
        ));
    }
    let store = state.store.clone();
    let (now, lifetime) = (state.config.clock.now(), state.config.token_lifetime);
    // A device whose credential expired may enroll again (its store keeps
    // everything); any other enrolled one may not.
    let expired =
        move |d: &returnee_store::server::Device| crate::auth::token_expires(d, lifetime) <= now;
    let outcome = blocking(move || {
        Ok(store.enroll_replacing(&req.code, req.device_id, &name, now, &expired)?)
    })
    .await?;
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
            "this device is already enrolled and its credential still works; its store keeps the credential".into(),
        )),
    }
}

/// Mints an enrollment code for a role and sites.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The code, to give to the device", body = CodeResponse), Refusals)
)]
#[post("/admin/codes")]
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

/// Sends a batch of the device's operations; once acknowledged, every one
/// is durable (applied, already held, or rejected with its reason).
#[utoipa::path(
    tag = "sync",
    params(SyncProtocol),
    request_body = PushRequest,
    security(("bearer" = ["field", "supervisor", "admin"])),
    responses((status = 200, description = "The batch is durable on the server", body = PushResponse), Refusals)
)]
#[post("/sync/push")]
async fn push(
    state: State,
    protocol: SyncProtocol,
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
        // Logged as they came from a client of this protocol; a client of
        // the one before may lack what this one writes: encoded again.
        let current = protocol.version == returnee_shared::wire::PROTOCOL_VERSION;
        let ops = decode_ops(raw, current)?;
        // Committed: re-check the changed records for duplicates (off this request).
        let ack = store.push_received_settled(&device, ops, Utc::now(), |changed, through| {
            duplicates.after_push(changed, through, |task| {
                actix_web::rt::task::spawn_blocking(task);
            })
        })?;
        // An erasure is complete on the server before it is acknowledged:
        // the index that held the family's name is rewritten.
        duplicates.rewrite_after_erasure()?;
        Ok(ack)
    })
    .await?;
    ack.next_batch = Some(crate::pacing::next_batch(n, arrived.elapsed()) as u32);
    crate::metrics::batch(crate::metrics::Direction::Push, n, arrived.elapsed());
    // The request's own line (`logging`) says who and how long; this one the counts.
    tracing::debug!(
        device = %id,
        ops = n,
        applied = ack.applied,
        already_held = ack.already_held,
        rejected = ack.rejected.len(),
        "push"
    );
    Ok(HttpResponse::Ok().json(ack))
}

/// Decodes a push's operations, several at once on a large batch, each
/// with the JSON the log keeps: as it came when `as_sent` (decoding
/// checked it), else encoded again. Any element that is not a valid
/// operation refuses the whole batch, and the error names one such element
/// by its place (with several, not necessarily the first).
fn decode_ops(raw: Vec<Box<RawValue>>, as_sent: bool) -> Result<Vec<(Op, Vec<u8>)>, ApiError> {
    raw.into_par_iter()
        .with_min_len(500)
        .enumerate()
        .map(|(i, json)| {
            // Keys this release does not read are noted: such an operation
            // is logged as this release writes it, without them.
            let mut unread = false;
            let mut de = serde_json::Deserializer::from_str(json.get());
            let op: Op = serde_ignored::deserialize(&mut de, |_| unread = true)
                .and_then(|op| de.end().map(|()| op))
                .map_err(|e| {
                ApiError::BadRequest(format!(
                    "operation {} of the batch is not a valid operation: {e}",
                    i + 1
                ))
            })?;
            // A kind or an edited field of a later release (a laptop newer
            // than this server): who may do it, and whether the value is
            // valid, cannot be told here. The batch waits on the laptop
            // until the server is upgraded.
            let unknown = match &op.change {
                returnee_shared::merge::Change::Other(o) => Some(format!("is of kind `{}`", o.kind)),
                returnee_shared::merge::Change::Edit { unknown, .. } => unknown
                    .keys()
                    .next()
                    .map(|f| format!("edits the field `{f}`")),
                _ => None,
            };
            if let Some(what) = unknown {
                return Err(ApiError::BadRequest(format!(
                    "operation {} of the batch {what}, which this server does not know: upgrade the server, then sync again",
                    i + 1
                )));
            }
            // As this release writes it: `kind` first in `change` (read
            // without buffering the change, so that unread keys are seen),
            // and no shorter than this release's encoding: an erasure
            // writes a logged operation's stripped form over it in place,
            // and that form is never longer than this release's encoding
            // of the operation (a client that leaves out default values
            // sends less).
            let json = if as_sent
                && !unread
                && json.get().contains("\"change\":{\"kind\":")
                && json.get().len() >= encoded_len(&op)?
            {
                String::from(Box::<str>::from(json)).into_bytes()
            } else {
                serde_json::to_vec(&op).map_err(|e| ApiError::Internal(e.to_string()))?
            };
            Ok((op, json))
        })
        .collect()
}

/// The length of `op` as this release encodes it, counted without writing it.
fn encoded_len(op: &Op) -> Result<usize, ApiError> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, op).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(count.0)
}

/// The operations after a cursor that this device may see, leaving out its own.
#[utoipa::path(
    tag = "sync",
    params(SyncProtocol, PageParams, OwnParam),
    security(("bearer" = ["field", "supervisor", "admin"])),
    responses((status = 200, description = "A page of operations", body = PullResponse), Refusals)
)]
#[get("/sync/pull")]
async fn pull(
    state: State,
    _protocol: SyncProtocol,
    query: web::Query<PageParams>,
    own: web::Query<OwnParam>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let own = own.own;
    let limit = query.limit(MAX_PULL_OPS);
    let after = SyncCursor(query.after().map_err(ApiError::BadRequest)?);
    let store = state.store.clone();
    let device = who.0;
    let id = device.id;
    let started = std::time::Instant::now();
    // A page reads whole journal frames and writes a body of megabytes:
    // handed back at once, by each thread that freed them, or a laptop
    // pulling page after page leaves tens of megabytes held by the
    // allocator (`returnee_memory`; PERFORMANCE.md). Not by lowering the
    // purge delay: that is process-wide, and pushes beside pulls (many
    // laptops syncing) would pay for it.
    let page = blocking(move || {
        let page = store.pull_with(&device, after, limit, own);
        returnee_memory::release_freed();
        Ok(page?)
    })
    .await?;
    // The log holds each operation's JSON: the answer is written from it
    // without decoding (PullPage::to_json).
    let body = page.to_json();
    let (ops, cursor) = (page.ops.len(), page.cursor.0);
    drop(page);
    returnee_memory::release_freed();
    crate::metrics::batch(crate::metrics::Direction::Pull, ops, started.elapsed());
    tracing::debug!(device = %id, ops, cursor, "pull");
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// The open conflicts of the device's sites.
#[utoipa::path(
    tag = "review",
    security(("bearer" = ["supervisor", "admin"])),
    responses((status = 200, description = "The open conflicts", body = Vec<returnee_shared::merge::Conflict>), Refusals)
)]
#[get("/conflicts")]
async fn conflicts(state: State, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let device = who.authorize(Action::ListConflicts)?.clone();
    let store = state.store.clone();
    let list = blocking(move || Ok(store.conflicts(&device)?)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The open duplicate candidates touching the device's sites.
#[utoipa::path(
    tag = "review",
    security(("bearer" = ["supervisor", "admin"])),
    responses((status = 200, description = "The open candidates, highest score first", body = Vec<returnee_shared::duplicates::Candidate>), Refusals)
)]
#[get("/duplicates")]
async fn list_duplicates(state: State, who: Authenticated) -> Result<HttpResponse, ApiError> {
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

/// Every enrolled device.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Every enrolled device", body = Vec<DeviceSummary>), Refusals)
)]
#[get("/admin/devices")]
async fn devices(state: State, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.authorize(Action::ListDevices)?;
    let store = state.store.clone();
    let list = blocking(move || Ok(store.devices()?)).await?;
    let list: Vec<DeviceSummary> = list.iter().map(|d| d.summary()).collect();
    Ok(HttpResponse::Ok().json(list))
}

/// What people call each device.
#[utoipa::path(
    tag = "sync",
    security(("bearer" = ["field", "supervisor", "admin"])),
    responses((status = 200, description = "Each device's name", body = Vec<DeviceName>), Refusals)
)]
#[get("/devices/names")]
async fn device_names(state: State, who: Authenticated) -> Result<HttpResponse, ApiError> {
    who.authorize(Action::ReadDeviceNames)?;
    let store = state.store.clone();
    let list = blocking(move || Ok(store.devices()?)).await?;
    Ok(HttpResponse::Ok().json(device_names_of(list)))
}

/// What `GET /v1/devices/names` and the check-in say of `list`.
fn device_names_of(list: Vec<returnee_store::server::Device>) -> Vec<DeviceName> {
    list.into_iter()
        .map(|d| DeviceName {
            id: d.id,
            name: d.name,
        })
        .collect()
}

/// Revokes a device: it is refused from now on, and told to erase its copy.
#[utoipa::path(
    tag = "admin",
    params(("id" = String, Path, description = "The device id (a UUID)")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The revoked device", body = DeviceSummary), Refusals)
)]
#[post("/admin/devices/{id}/revoke")]
async fn revoke(
    state: State,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = who.authorize(Action::RevokeDevice)?.id;
    let id = device_id(&path)?;
    if id == admin {
        return Err(ApiError::BadRequest(
            "a device cannot revoke itself; revoke it from another admin device".into(),
        ));
    }
    let store = state.store.clone();
    let device = blocking(move || Ok(store.revoke(id, admin, Utc::now())?))
        .await?
        .ok_or_else(no_such_device)?;
    tracing::info!(device = %id, by = %admin, "device revoked");
    Ok(HttpResponse::Ok().json(device.summary()))
}

/// Entries of the hash-chained audit trail after a sequence number.
#[utoipa::path(
    tag = "admin",
    params(PageParams),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of the audit trail", body = AuditPage), Refusals)
)]
#[get("/admin/audit")]
async fn audit(
    state: State,
    who: Authenticated,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    who.authorize(Action::ReadAudit)?;
    let limit = query.limit(MAX_AUDIT_PAGE);
    let after = query.after().map_err(ApiError::BadRequest)?;
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

/// The device id of a path, or a clear 400.
fn device_id(path: &str) -> Result<DeviceId, ApiError> {
    uuid::Uuid::parse_str(path.trim())
        .map(DeviceId)
        .map_err(|_| {
            ApiError::BadRequest(
                "the device id is not a UUID; copy it from `returnee admin devices`".into(),
            )
        })
}

fn no_such_device() -> ApiError {
    ApiError::NotFound("no device with this id is enrolled; see `returnee admin devices`".into())
}

/// The calling device's credential: when it expires, a new token when
/// rotation is due (kept beside the old one until the device first uses
/// it), the device's role and sites now, and what a sync would otherwise
/// ask in requests of their own: every device's name (for devices allowed
/// them) and the protocols the server speaks. Devices call it at the start
/// of each sync.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = ["field", "supervisor", "admin"])),
    responses((status = 200, description = "The credential's expiry, and a new token when rotation was due", body = TokenAnswer), Refusals)
)]
#[post("/device/token")]
async fn device_token(
    state: State,
    who: Authenticated,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let may_name = who.authorize(Action::ReadDeviceNames).is_ok();
    let device = who.0;
    let (now, lifetime) = (state.config.clock.now(), state.config.token_lifetime);
    let expires_at = crate::auth::token_expires(&device, lifetime);
    let store = state.store.clone();
    let (crossings_version, names) = blocking(move || {
        let names = if may_name {
            Some(device_names_of(store.devices()?))
        } else {
            None
        };
        Ok((store.crossings()?.version, names))
    })
    .await?;
    let mut answer = TokenAnswer {
        expires_at,
        token: None,
        token_expires_at: None,
        role: device.role,
        sites: device.sites.clone(),
        crossings_version,
        names,
        health: Some(Health::current()),
    };
    if crate::auth::rotation_due(&device, lifetime, now) {
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| returnee_store::server::hash_secret(t.trim()))
            .ok_or_else(|| ApiError::Internal("the bearer token vanished".into()))?;
        let store = state.store.clone();
        let id = device.id;
        let token = blocking(move || Ok(store.rotate_token(id, &presented, now)?))
            .await?
            .ok_or_else(no_such_device)?;
        answer.token = Some(token);
        answer.token_expires_at = Some(now + lifetime);
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// Gives a device the sites it works at (crossing codes; an empty list:
/// every site). Its operations refused for a site it now has can be sent
/// again (`returnee refused retry`).
#[utoipa::path(
    tag = "admin",
    params(("id" = String, Path, description = "The device id (a UUID)")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The device with its new sites", body = DeviceSummary), Refusals)
)]
#[post("/admin/devices/{id}/sites")]
async fn set_sites(
    state: State,
    who: Authenticated,
    path: web::Path<String>,
    body: web::Json<SitesRequest>,
) -> Result<HttpResponse, ApiError> {
    // Managing devices is the revoking admin's work.
    let admin = who.authorize(Action::RevokeDevice)?.id;
    let id = device_id(&path)?;
    let mut sites = Vec::new();
    for s in &body.sites {
        let code = parse_crossing(s).map_err(|p| ApiError::BadRequest(p.message))?;
        if !sites.contains(&code) {
            sites.push(code);
        }
    }
    let store = state.store.clone();
    let now = state.config.clock.now();
    let device = blocking(move || Ok(store.set_sites(id, sites, admin, now)?))
        .await?
        .ok_or_else(no_such_device)?;
    tracing::info!(device = %id, by = %admin, "device sites changed");
    Ok(HttpResponse::Ok().json(device.summary()))
}

/// Asks a device to rotate its token at its next sync (for example when
/// the laptop may have been copied).
#[utoipa::path(
    tag = "admin",
    params(("id" = String, Path, description = "The device id (a UUID)")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The device", body = DeviceSummary), Refusals)
)]
#[post("/admin/devices/{id}/rotate")]
async fn ask_rotation(
    state: State,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = who.authorize(Action::RevokeDevice)?.id;
    let id = device_id(&path)?;
    let store = state.store.clone();
    let now = state.config.clock.now();
    let device = blocking(move || Ok(store.request_rotation(id, admin, now)?))
        .await?
        .ok_or_else(no_such_device)?;
    tracing::info!(device = %id, by = %admin, "token rotation asked");
    Ok(HttpResponse::Ok().json(device.summary()))
}

/// The crossings admins added (after the compiled-in ones), with the
/// list's version; devices fetch it when their version is older.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = ["field", "supervisor", "admin"])),
    responses((status = 200, description = "The added crossings and the list's version", body = CrossingList), Refusals)
)]
#[get("/crossings")]
async fn list_crossings(state: State, _who: Authenticated) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let list = blocking(move || Ok(store.crossings()?)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Takes a changed list in (this process's lookups) and answers with it.
fn crossings_changed(outcome: Result<CrossingList, String>) -> Result<HttpResponse, ApiError> {
    let list = outcome.map_err(ApiError::BadRequest)?;
    returnee_shared::reference::learn(&list);
    Ok(HttpResponse::Ok().json(list))
}

/// Adds a crossing: devices learn it at their next sync and record
/// families there; codes and sites may name it.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The list with the new crossing", body = CrossingList), Refusals)
)]
#[post("/admin/crossings")]
async fn add_crossing(
    state: State,
    who: Authenticated,
    body: web::Json<CrossingDef>,
) -> Result<HttpResponse, ApiError> {
    // Configuring the deployment is the code-minting admin's work.
    let admin = who.authorize(Action::MintCodes)?.id;
    let store = state.store.clone();
    let now = state.config.clock.now();
    let def = body.into_inner();
    let outcome = blocking(move || Ok(store.add_crossing(def, admin, now)?)).await?;
    crossings_changed(outcome)
}

/// Deactivates an added crossing: kept for the families recorded there,
/// no longer offered for new ones.
#[utoipa::path(
    tag = "admin",
    params(("code" = String, Path, description = "The crossing's code")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The list with the crossing deactivated", body = CrossingList), Refusals)
)]
#[post("/admin/crossings/{code}/deactivate")]
async fn deactivate_crossing(
    state: State,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = who.authorize(Action::MintCodes)?.id;
    let store = state.store.clone();
    let now = state.config.clock.now();
    let code = path.into_inner();
    let outcome = blocking(move || Ok(store.deactivate_crossing(code.trim(), admin, now)?)).await?;
    crossings_changed(outcome)
}

/// Whether a pull includes the device's own operations.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OwnParam {
    /// Include this device's own operations (a laptop rebuilt by
    /// `returnee repair` pulls everything again); default false.
    #[serde(default)]
    own: bool,
}
