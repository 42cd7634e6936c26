//! The open conflicts the session may see, each with every competing
//! value, the device and time that set it, and a form to decide it (the
//! operation `returnee conflicts resolve` writes).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use maud::html;
use returnee_shared::access::Action;
use returnee_shared::merge::{DECIDE_DELETED, DECIDE_KEPT, DECIDE_MERGED, RECORD_CONFLICT_FIELD};
use returnee_shared::{Conflict, DeviceId};
use serde::Deserialize;

use super::decide::Decider;
use super::layout::{self, Nav, csrf_field, short_id};
use super::session::Signed;
use super::{DashError, State, blocking, html, see_other};

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    pub done: Option<String>,
}

/// The word that decides a `record` conflict for a value as shown
/// (`deleted`, `kept (edited …)`, `merged into …`).
fn decision_word(shown: &str) -> &'static str {
    if shown.starts_with(DECIDE_DELETED) {
        DECIDE_DELETED
    } else if shown.starts_with(DECIDE_MERGED) {
        DECIDE_MERGED
    } else {
        DECIDE_KEPT
    }
}

/// Device names by id, for showing who set what.
pub(crate) fn device_names(state: &State) -> Result<BTreeMap<DeviceId, String>, DashError> {
    Ok(state
        .store
        .devices()?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect())
}

/// `GET /dashboard/conflicts`.
pub async fn page(
    state: State,
    who: Signed,
    done: web::Query<Done>,
) -> Result<HttpResponse, DashError> {
    let device = who.authorize(Action::ListConflicts)?.clone();
    let may_decide = who.may(Action::ResolveConflict);
    let st = state.clone();
    let (conflicts, names) = blocking(move || {
        let list: Vec<Conflict> = st.store.conflicts(&device)?;
        Ok((list, device_names(&st)?))
    })
    .await?;
    let body = html! {
        (layout::notice(done.done.as_deref()))
        p.muted { (conflicts.len()) " open conflict(s). A decision is sent to every laptop at its next sync." }
        @for c in &conflicts {
            section.card data-conflict=(c.id) {
                h2 { "Family " (short_id(&c.record_id)) ": " (c.field.replace('_', " ")) }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Value" } th scope="col" { "Device" } th scope="col" { "Time (UTC)" } th scope="col" { "Shown now" } } }
                        tbody {
                            @for v in &c.values {
                                tr {
                                    td { (v.value) }
                                    td { (names.get(&v.device).map(String::as_str).unwrap_or("unknown device")) " " (short_id(&v.device)) }
                                    td.nowrap { (v.at.format("%Y-%m-%d %H:%M")) }
                                    td { @if v.shown { span.tag { "shown" } } }
                                }
                            }
                        }
                    }
                }
                @if may_decide {
                    form method="post" action="/dashboard/conflicts/resolve" {
                        (csrf_field(&who))
                        input type="hidden" name="conflict" value=(c.id);
                        fieldset {
                            legend { "Keep which value?" }
                            @for (i, v) in c.values.iter().enumerate() {
                                @let id = format!("c-{}-{i}", c.id);
                                @let value = if c.field == RECORD_CONFLICT_FIELD { decision_word(&v.value).to_string() } else { v.value.clone() };
                                div.choice {
                                    input type="radio" id=(id) name="value" value=(value) required checked[v.shown];
                                    label for=(id) { (v.value) }
                                }
                            }
                        }
                        button type="submit" { "Resolve" }
                    }
                }
            }
        }
    };
    Ok(html(layout::page("Conflicts", &who, Nav::Conflicts, body)))
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    conflict: String,
    value: String,
}

/// `POST /dashboard/conflicts/resolve`.
pub async fn resolve(
    state: State,
    who: Signed,
    form: web::Form<ResolveForm>,
) -> Result<HttpResponse, DashError> {
    who.check_csrf(&form.csrf)?;
    let decider = Decider::new(&state, &who, Action::ResolveConflict)?;
    let form = form.into_inner();
    blocking(move || decider.resolve(&form.conflict, &form.value)).await?;
    tracing::info!(device = %who.device.id, "conflict resolved in the dashboard");
    Ok(see_other("/dashboard/conflicts?done=resolved"))
}
