//! The suggested duplicate pairs, side by side (fields aligned, differences
//! highlighted, document numbers masked to their last 4 characters), with
//! the score and reasons; merge (choosing the family to keep), dismiss,
//! and the undo of recent merges.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use returnee_shared::access::{Action, Decision};
use returnee_shared::audit::AuditEvent;
use returnee_shared::duplicates::Candidate;
use returnee_shared::{FamilyFields, FieldName, FieldValue, RecordId, reference};
use serde::Deserialize;

use super::conflicts::Done;
use super::decide::{Decider, on_duplicates};
use super::layout::{self, Nav, csrf_field, short_id};
use super::session::Signed;
use super::{DashError, State, blocking, html, see_other};

/// At most this many pairs are shown at once (highest scores first).
const SHOWN: usize = 50;
/// How far back in the audit trail recent merges are looked for.
const RECENT_AUDIT: u64 = 500;

/// A document number as shown: every character but the last 4 masked.
pub fn mask_document(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = chars.len().saturating_sub(4);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < keep { '•' } else { *c })
        .collect()
}

/// A field's value as the page shows it.
fn shown(fields: &FamilyFields, name: FieldName) -> String {
    match fields.get(name) {
        FieldValue::DocNumber(Some(n)) => mask_document(&n),
        FieldValue::Crossing(c)
        | FieldValue::DepartureProvince(c)
        | FieldValue::DestinationProvince(c) => reference::display_name(&c).to_string(),
        other => other.display(),
    }
}

/// One pair: its two families' fields (when the server holds them).
struct Pair {
    candidate: Candidate,
    fields: [Option<FamilyFields>; 2],
}

/// A recently merged family that can be unmerged, and its survivor.
struct Merged {
    lost: RecordId,
    into: RecordId,
}

/// `GET /dashboard/duplicates`.
pub async fn page(
    state: State,
    who: Signed,
    done: web::Query<Done>,
) -> Result<HttpResponse, DashError> {
    let device = who.authorize(Action::ListDuplicates)?.clone();
    let may_merge = who.may(on_duplicates(Decision::Merge));
    let may_dismiss = who.may(on_duplicates(Decision::Dismiss));
    let may_unmerge = who.may(on_duplicates(Decision::Unmerge));
    let st = state.clone();
    let (total, pairs, merged) = blocking(move || {
        let mut visible = Vec::new();
        for c in st.duplicates.candidates()? {
            if st.store.visible_to(&device, c.records[0])?
                || st.store.visible_to(&device, c.records[1])?
            {
                visible.push(c);
            }
        }
        let total = visible.len();
        visible.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        let mut pairs = Vec::new();
        for candidate in visible.into_iter().take(SHOWN) {
            let view = |id: RecordId| -> Result<Option<FamilyFields>, DashError> {
                Ok(st
                    .store
                    .record_doc(id)?
                    .and_then(|d| d.view(id).family.map(|f| f.fields)))
            };
            let fields = [view(candidate.records[0])?, view(candidate.records[1])?];
            pairs.push(Pair { candidate, fields });
        }
        // Recent merges, from the audit trail's newest entries.
        let newest = st.store.audit_newest()?;
        let (entries, _) = st
            .store
            .audit(newest.saturating_sub(RECENT_AUDIT), RECENT_AUDIT as usize)?;
        let mut merged = Vec::new();
        for e in entries.iter().rev() {
            let AuditEvent::Push { applied, .. } = &e.event else {
                continue;
            };
            for op in applied.iter().filter(|o| o.change == "merge") {
                if merged.iter().any(|m: &Merged| m.lost == op.record)
                    || !st.store.visible_to(&device, op.record)?
                {
                    continue;
                }
                if let Some(into) = st
                    .store
                    .record_doc(op.record)?
                    .and_then(|d| d.view(op.record).lifecycle.merged_into())
                {
                    merged.push(Merged {
                        lost: op.record,
                        into,
                    });
                }
            }
        }
        Ok((total, pairs, merged))
    })
    .await?;
    let body = html! {
        (layout::notice(done.done.as_deref()))
        p.muted id="pair-count" {
            (total) " possible duplicate pair(s)"
            @if total > SHOWN { ", the " (SHOWN) " most likely shown" } "."
        }
        @for p in &pairs { (pair(&who, p, may_merge, may_dismiss)) }
        @if may_unmerge && !merged.is_empty() {
            h2 { "Recent merges" }
            div.scroll {
                table {
                    thead { tr { th scope="col" { "Merged family" } th scope="col" { "Kept family" } th scope="col" { "" } } }
                    tbody {
                        @for m in &merged {
                            tr data-merged=(m.lost) {
                                td { (short_id(&m.lost)) } td { (short_id(&m.into)) }
                                td {
                                    form method="post" action="/dashboard/duplicates/unmerge" {
                                        (csrf_field(&who))
                                        input type="hidden" name="record" value=(m.lost);
                                        button.secondary type="submit" { "Undo merge" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html(layout::page(
        "Duplicates",
        &who,
        Nav::Duplicates,
        body,
    )))
}

fn pair(who: &Signed, p: &Pair, may_merge: bool, may_dismiss: bool) -> Markup {
    let c = &p.candidate;
    let [a, b] = &p.fields;
    html! {
        section.card data-pair=(c.id) {
            h2 { "Pair " code { (c.id) } " · score " (format!("{:.2}", c.score)) }
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Field" }
                        th scope="col" { "Family A " (short_id(&c.records[0])) }
                        th scope="col" { "Family B " (short_id(&c.records[1])) }
                    } }
                    tbody {
                        @for name in FieldName::ALL {
                            @let va = a.as_ref().map(|f| shown(f, name)).unwrap_or_default();
                            @let vb = b.as_ref().map(|f| shown(f, name)).unwrap_or_default();
                            tr.diff[va != vb] {
                                th scope="row" { (name.as_str().replace('_', " ")) }
                                td { (va) } td { (vb) }
                            }
                        }
                    }
                }
            }
            details open {
                summary { "Why they look alike" }
                ul { @for r in &c.reasons { li { (format!("{:+.2}", r.points)) " " (r.detail) } } }
            }
            div.actions {
                @if may_merge {
                    @for (i, keep) in c.records.iter().enumerate() {
                        form method="post" action="/dashboard/duplicates/merge" {
                            (csrf_field(who))
                            input type="hidden" name="pair" value=(c.id);
                            input type="hidden" name="keep" value=(keep);
                            button type="submit" { "Merge, keep " (if i == 0 { "A" } else { "B" }) }
                        }
                    }
                }
                @if may_dismiss {
                    form method="post" action="/dashboard/duplicates/dismiss" {
                        (csrf_field(who))
                        input type="hidden" name="pair" value=(c.id);
                        button.secondary type="submit" { "Not the same family" }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PairForm {
    #[serde(default)]
    csrf: String,
    pair: String,
    #[serde(default)]
    keep: String,
}

fn record_id(text: &str) -> Result<RecordId, DashError> {
    uuid::Uuid::parse_str(text.trim())
        .map(RecordId)
        .map_err(|_| DashError::BadInput("the family id is not valid; reload the page".into()))
}

/// `POST /dashboard/duplicates/merge`.
pub async fn merge(
    state: State,
    who: Signed,
    form: web::Form<PairForm>,
) -> Result<HttpResponse, DashError> {
    who.check_csrf(&form.csrf)?;
    let decider = Decider::new(&state, &who, on_duplicates(Decision::Merge))?;
    let keep = record_id(&form.keep)?;
    let pair = form.into_inner().pair;
    blocking(move || decider.merge(&pair, keep)).await?;
    Ok(see_other("/dashboard/duplicates?done=merged"))
}

/// `POST /dashboard/duplicates/dismiss`.
pub async fn dismiss(
    state: State,
    who: Signed,
    form: web::Form<PairForm>,
) -> Result<HttpResponse, DashError> {
    who.check_csrf(&form.csrf)?;
    let decider = Decider::new(&state, &who, on_duplicates(Decision::Dismiss))?;
    let pair = form.into_inner().pair;
    blocking(move || decider.dismiss(&pair)).await?;
    Ok(see_other("/dashboard/duplicates?done=dismissed"))
}

#[derive(Debug, Deserialize)]
pub struct RecordForm {
    #[serde(default)]
    csrf: String,
    record: String,
}

/// `POST /dashboard/duplicates/unmerge`.
pub async fn unmerge(
    state: State,
    who: Signed,
    form: web::Form<RecordForm>,
) -> Result<HttpResponse, DashError> {
    who.check_csrf(&form.csrf)?;
    let decider = Decider::new(&state, &who, on_duplicates(Decision::Unmerge))?;
    let id = record_id(&form.record)?;
    blocking(move || decider.unmerge(id)).await?;
    Ok(see_other("/dashboard/duplicates?done=unmerged"))
}

#[cfg(test)]
mod tests {
    use super::mask_document;

    #[test]
    fn document_numbers_show_their_last_four_characters_only() {
        assert_eq!(mask_document("AB1234567"), "•••••4567");
        assert_eq!(mask_document("123"), "123");
        assert_eq!(mask_document(""), "");
    }
}
