//! The newest entries of the audit trail, and whether its hash chain is
//! whole. Admin only. Entries hold ids, kinds and times, never values.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use maud::{Markup, html};
use returnee_shared::access::Action;
use returnee_shared::audit::{AuditEntry, AuditEvent};

use super::conflicts::device_names;
use super::layout::{self, Nav, short_id};
use super::session::Signed;
use super::{DashError, State, blocking, html};

/// How many of the newest entries are shown.
const NEWEST: u64 = 100;

fn what(event: &AuditEvent) -> Markup {
    match event {
        AuditEvent::Push { applied, rejected } => {
            let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
            for op in applied {
                *kinds.entry(op.change.as_str()).or_default() += 1;
            }
            let decided = applied.iter().filter(|o| o.resolution).count();
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            html! {
                "push: " (if kinds.is_empty() { "nothing applied".to_string() } else { kinds.join(", ") })
                @if decided > 0 { " (" (decided) " decision(s))" }
                @if *rejected > 0 { ", " (rejected) " refused" }
            }
        }
        AuditEvent::Enrolled {
            device,
            role,
            sites,
        } => html! {
            "enrolled " (short_id(device)) " as " (role)
            @if !sites.is_empty() { " at " (sites.join(", ")) }
        },
        AuditEvent::Revoked { device } => html! { "revoked " (short_id(device)) },
        AuditEvent::Exported {
            format,
            filter,
            rows,
            personal,
            full_documents,
        } => html! {
            "exported " (rows) " families as " (format) " (" (filter) ")"
            @if *full_documents { ", full document numbers" }
            @else if *personal { ", with personal data" }
        },
        AuditEvent::CodeMinted { role, sites, uses } => html! {
            "code minted for " (role) " (" (uses) " use(s))"
            @if !sites.is_empty() { " at " (sites.join(", ")) }
        },
    }
}

/// `GET /dashboard/audit`.
pub async fn page(state: State, who: Signed) -> Result<HttpResponse, DashError> {
    who.authorize(Action::ReadAudit)?;
    let st = state.clone();
    let (entries, chain, names) = blocking(move || {
        let newest = st.store.audit_newest()?;
        let (mut entries, _) = st
            .store
            .audit(newest.saturating_sub(NEWEST), NEWEST as usize)?;
        entries.reverse();
        Ok((entries, st.store.verify_audit()?, device_names(&st)?))
    })
    .await?;
    let who_did = |e: &AuditEntry| match e.device {
        Some(d) => html! {
            (names.get(&d).map(String::as_str).unwrap_or("unknown device")) " " (short_id(&d))
        },
        None => html! { "the server" },
    };
    let body = html! {
        @match &chain {
            Ok(n) => p.notice id="chain" role="status" { "The chain is whole: all " (n) " entries link up and end where the store says." },
            Err(b) => p.error id="chain" role="alert" { "The chain is broken at entry " (b.seq) ": " (b.reason) ". Restore the data directory from backup and run returnee-server audit-verify." },
        }
        p.muted { "The newest " (entries.len()) " entries, newest first." }
        div.scroll {
            table {
                thead { tr { th.num scope="col" { "#" } th scope="col" { "Time (UTC)" } th scope="col" { "Device" } th scope="col" { "What" } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td.num { (e.seq) }
                            td.nowrap { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (who_did(e)) }
                            td { (what(&e.event)) }
                        }
                    }
                }
            }
        }
    };
    Ok(html(layout::page("Audit trail", &who, Nav::Audit, body)))
}
