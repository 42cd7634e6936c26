//! The newest entries of the audit trail, and whether its hash chain is
//! whole. Admin only. Entries hold ids, kinds and times, never values.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use actix_web::HttpResponse;
use maud::{Markup, html};
use returnee_shared::access::Action;
use returnee_shared::audit::{AuditEntry, AuditEvent, ChainBreak, verify_chain};
use returnee_store::server::ServerStore;

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
            on_laptop_at,
        } => html! {
            "exported " (rows) " families as " (format) " (" (filter) ")"
            @if *full_documents { ", full document numbers" }
            @else if *personal { ", with personal data" }
            @if let Some(at) = on_laptop_at {
                ", from the laptop's own store at " (at.format("%Y-%m-%d %H:%M")) " (its clock)"
            }
        },
        AuditEvent::CodeMinted { role, sites, uses } => html! {
            "code minted for " (role) " (" (uses) " use(s))"
            @if !sites.is_empty() { " at " (sites.join(", ")) }
        },
        AuditEvent::TokenRotated { device } => html! { "token rotated by " (short_id(device)) },
        AuditEvent::RotationRequested { device } => html! {
            "token rotation asked of " (short_id(device))
        },
        AuditEvent::CrossingChanged { code, active } => html! {
            "crossing " (code) @if *active { " added" } @else { " deactivated" }
        },
        AuditEvent::SitesChanged { device, sites } => html! {
            "sites of " (short_id(device)) " set to "
            @if sites.is_empty() { "all" } @else { (sites.join(", ")) }
        },
    }
}

/// The chain's status. The whole trail is checked the first time a
/// server process is asked (a store altered while it was stopped shows
/// then); after that, only the entries added since the last check are,
/// from the last verified entry's hash (the store is this process's alone
/// while it runs). `returnee-server audit-verify` checks it all again.
fn chain_status(store: &ServerStore, dir: PathBuf) -> Result<Result<u64, ChainBreak>, DashError> {
    static VERIFIED: OnceLock<Mutex<HashMap<PathBuf, (u64, String)>>> = OnceLock::new();
    let cache = VERIFIED.get_or_init(Default::default);
    let known = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&dir)
        .cloned();
    let status = match known {
        None => store.verify_audit()?,
        Some((seq, hash)) => {
            let (entries, _) = store.audit(seq, usize::MAX)?;
            let newest = store.audit_newest()?;
            match verify_chain(entries, seq, &hash) {
                Ok((last, _)) if last == newest => Ok(last),
                Ok((last, _)) => Err(ChainBreak {
                    seq: last + 1,
                    reason: format!(
                        "the trail ends at entry {last} but the store recorded {newest} entries (entries were removed)"
                    ),
                }),
                Err(b) => Err(b),
            }
        }
    };
    if let Ok(n) = status {
        let (last, _) = store.audit(n.saturating_sub(1), 1)?;
        if let Some(e) = last.into_iter().next() {
            cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(dir, (e.seq, e.hash));
        }
    }
    Ok(status)
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
        let chain = chain_status(&st.store, st.config.data_dir.clone())?;
        Ok((entries, chain, device_names(&st)?))
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
