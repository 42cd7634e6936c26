//! Every device (laptops and browser sessions) with its role, sites, when it
//! enrolled, when it was last heard from, its session's end for a browser,
//! and whether it is revoked; revoke, after a confirmation. Admin only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use maud::html;
use returnee_shared::DeviceId;
use returnee_shared::access::Action;
use serde::Deserialize;

use super::layout::{self, Nav, csrf_field, short_id};
use super::session::Signed;
use super::{DashError, State, blocking, html, see_other};
use returnee_store::server::ServerStore;

/// A device's last contact is written at most once per this many seconds.
const SEEN_EVERY_SECS: i64 = 60;
/// A laptop not heard from for this many days is marked.
const QUIET_DAYS: i64 = 3;

/// Notes that `device` made an authenticated request now (throttled per
/// device, so a sync's many requests write once). A failure to note is
/// logged, never the request's failure.
pub fn seen(store: &ServerStore, device: DeviceId) {
    static LAST: OnceLock<Mutex<HashMap<DeviceId, i64>>> = OnceLock::new();
    let now = Utc::now();
    {
        let mut last = LAST
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match last.get(&device) {
            Some(t) if now.timestamp() - t < SEEN_EVERY_SECS => return,
            _ => {
                last.insert(device, now.timestamp());
            }
        }
    }
    if let Err(e) = store.note_seen(device, now) {
        tracing::warn!(%device, error = %e, "could not note when a device was last seen");
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DevicesParams {
    #[serde(default)]
    done: Option<String>,
    /// The device whose revocation is being confirmed.
    #[serde(default)]
    confirm: Option<String>,
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

/// `GET /dashboard/devices`.
pub async fn page(
    state: State,
    who: Signed,
    query: web::Query<DevicesParams>,
) -> Result<HttpResponse, DashError> {
    who.authorize(Action::ListDevices)?;
    let st = state.clone();
    let (devices, seen, sessions) = blocking(move || {
        let sessions: BTreeMap<DeviceId, DateTime<Utc>> = st
            .store
            .sessions()?
            .into_iter()
            .map(|s| (s.device, s.expires_at))
            .collect();
        Ok((st.store.devices()?, st.store.last_seen()?, sessions))
    })
    .await?;
    let now = Utc::now();
    let confirming = query
        .confirm
        .as_deref()
        .and_then(|c| devices.iter().find(|d| d.id.to_string() == c.trim()));
    let body = html! {
        (layout::notice(query.done.as_deref()))
        @if let Some(d) = confirming {
            section.card role="alertdialog" aria-labelledby="confirm-title" id="confirm" {
                h2 id="confirm-title" { "Revoke " (d.name) " (" (short_id(&d.id)) ")?" }
                p { "Its next sync is refused and it is told to erase its copy. What it has not synced is lost to the server. This cannot be undone: the device must enroll again with a new code." }
                div.actions {
                    form method="post" action="/dashboard/devices/revoke" {
                        (csrf_field(&who))
                        input type="hidden" name="device" value=(d.id);
                        button.danger type="submit" { "Yes, revoke it" }
                    }
                    a href="/dashboard/devices" { "Cancel" }
                }
            }
        }
        p.muted { (devices.len()) " device(s). Operations waiting on a laptop are not known to the server until it syncs." }
        div.scroll {
            table {
                thead { tr {
                    th scope="col" { "Device" } th scope="col" { "Role" } th scope="col" { "Sites" }
                    th scope="col" { "Enrolled" } th scope="col" { "Last seen" } th scope="col" { "Status" } th scope="col" { "" }
                } }
                tbody {
                    @for d in &devices {
                        @let last = seen.get(&d.id).copied();
                        @let session = sessions.get(&d.id).copied();
                        @let quiet = session.is_none() && d.revoked_at.is_none()
                            && last.is_none_or(|t| (now - t).num_days() >= QUIET_DAYS);
                        tr data-device=(d.id) {
                            td { (d.name) " " (short_id(&d.id)) }
                            td { (d.role) }
                            td { @if d.sites.is_empty() { "every site" } @else { (d.sites.join(", ")) } }
                            td.nowrap { (when(Some(d.enrolled_at))) }
                            td.nowrap { (when(last)) @if quiet { " " span.tag.bad { "not seen for " (QUIET_DAYS) "+ days" } } }
                            td {
                                @if let Some(at) = d.revoked_at { span.tag.bad { "revoked " (when(Some(at))) } }
                                @else if let Some(end) = session {
                                    @if end <= now { span.tag { "session ended " (when(Some(end))) } }
                                    @else { span.tag.good { "browser session until " (when(Some(end))) } }
                                }
                                @else { span.tag.good { "active" } }
                            }
                            td {
                                @if d.revoked_at.is_none() && d.id != who.device.id {
                                    a href={ "/dashboard/devices?confirm=" (d.id) "#confirm" } { "Revoke…" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html(layout::page("Devices", &who, Nav::Devices, body)))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    device: String,
}

/// `POST /dashboard/devices/revoke`: the same store call as
/// `POST /v1/admin/devices/{id}/revoke` (`returnee admin revoke`).
pub async fn revoke(
    state: State,
    who: Signed,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, DashError> {
    who.check_csrf(&form.csrf)?;
    let admin = who.authorize(Action::RevokeDevice)?.id;
    let id = uuid::Uuid::parse_str(form.device.trim())
        .map(DeviceId)
        .map_err(|_| DashError::BadInput("the device id is not valid; reload the page".into()))?;
    if id == admin {
        return Err(DashError::BadInput(
            "this session cannot revoke itself; sign out instead".into(),
        ));
    }
    let store = state.store.clone();
    blocking(move || Ok(store.revoke(id, admin, Utc::now())?))
        .await?
        .ok_or_else(|| DashError::NotFound("no device with this id is enrolled".into()))?;
    tracing::info!(device = %id, by = %admin, "device revoked in the dashboard");
    Ok(see_other("/dashboard/devices?done=revoked"))
}
