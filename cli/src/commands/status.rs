//! `returnee status`: where this device stands.

use returnee_shared::ReviewState;
use returnee_shared::wire::PROTOCOL_VERSION;
use serde::Serialize;

use crate::cli::JsonFlag;
use crate::commands::now;
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::output::{count, print_json, thousands, when};
use returnee_shared::wire::ErrorCode;

#[derive(Serialize)]
struct Status {
    device_id: String,
    device_name: String,
    server: Option<String>,
    role: Option<String>,
    sites: Vec<String>,
    last_sync: Option<String>,
    pending: usize,
    conflicts: usize,
    families: usize,
    /// Refused operations (kept here).
    refused: usize,
    /// Set when the server (at the last sync) speaks a newer protocol.
    update: Option<String>,
    /// The families with a refused change: why, and what to do.
    refused_families: Vec<RefusedFamily>,
    /// When this device's token stops working, as the server said at the
    /// last sync (each sync renews it in time).
    token_expires_at: Option<String>,
    /// Exports from this laptop the server's audit trail has not yet heard of.
    exports_to_report: usize,
    /// The families a supervisor sent back to be fixed (`returnee review`).
    sent_back: Vec<SentBack>,
}

#[derive(Serialize)]
struct SentBack {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize)]
struct RefusedFamily {
    id: String,
    error: String,
    message: String,
    advice: String,
}

/// What a worker can do about a refused change, by why it was refused.
fn advice(error: ErrorCode, sites: &[String], id: &str) -> String {
    match error {
        ErrorCode::Forbidden if !sites.is_empty() => format!(
            "this laptop records families only at {}. If the crossing was typed wrong, record the \
             family again with the right one (`returnee add`) and then `returnee delete {id}`; if \
             the family did cross elsewhere, a worker of that crossing must record it",
            sites.join(", ")
        ),
        ErrorCode::Forbidden => "this laptop's role may not make that change; ask a supervisor \
             to make it from their laptop"
            .to_string(),
        _ => format!(
            "the server's rules refused it (is this laptop's returnee older than the server's? \
             update it); then record the family again (`returnee add`) and `returnee delete {id}`"
        ),
    }
}

pub fn run(args: JsonFlag, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let device = store.device()?;
    let enrollment = store.enrollment()?;
    let families = store.report_rows().count();
    let conflicts = store.conflicts()?.len();
    let held = store.held()?;
    let sites = enrollment
        .as_ref()
        .map(|e| e.sites.clone())
        .unwrap_or_default();
    let mut refused_families: Vec<RefusedFamily> = Vec::new();
    for (op, r) in &held {
        let id = op.record.0.simple().to_string()[..8].to_string();
        if refused_families
            .iter()
            .any(|f| f.id == op.record.to_string())
        {
            continue;
        }
        refused_families.push(RefusedFamily {
            id: op.record.to_string(),
            error: r.error.as_str().to_string(),
            message: r.message.clone(),
            advice: advice(r.error, &sites, &id),
        });
    }
    let mut sent_back = Vec::new();
    for f in store.families() {
        let f = f?;
        if let Some(r) = f.fields.review()
            && r.state == ReviewState::SentBack
        {
            sent_back.push(SentBack {
                id: f.id.to_string(),
                note: r.note,
            });
        }
    }
    let last_sync = store.last_sync()?;
    let s = Status {
        device_id: device.id.to_string(),
        device_name: device.name,
        server: enrollment.as_ref().map(|e| e.server.clone()),
        role: enrollment.as_ref().map(|e| e.role.to_string()),
        sites: enrollment
            .as_ref()
            .map(|e| e.sites.clone())
            .unwrap_or_default(),
        last_sync: last_sync.map(|t| t.to_rfc3339()),
        pending: store.pending_count()?,
        conflicts,
        families,
        refused: held.len(),
        update: store
            .server_health()?
            .and_then(|h| h.compatibility(PROTOCOL_VERSION).notice()),
        refused_families,
        token_expires_at: enrollment
            .as_ref()
            .and_then(|e| e.token_expires_at)
            .map(|t| t.to_rfc3339()),
        exports_to_report: store.export_notes()?.len(),
        sent_back,
    };
    if args.json {
        return print_json(&s);
    }
    println!("device      {} ({})", s.device_name, s.device_id);
    match &s.server {
        Some(server) => println!(
            "server      {server} as {}{}",
            s.role.as_deref().unwrap_or("?"),
            if s.sites.is_empty() {
                String::new()
            } else {
                format!(" for {}", s.sites.join(", "))
            }
        ),
        None => println!("server      not enrolled (returnee enroll --server URL --code CODE)"),
    }
    println!(
        "last sync   {}",
        last_sync.map_or("never".to_string(), |t| when(t, now()))
    );
    println!("families    {}", thousands(s.families as u64));
    println!(
        "pending     {} not yet on the server{}",
        count(s.pending as u64, "change", "changes"),
        if s.pending > 0 {
            " (`returnee sync` sends them)"
        } else {
            ""
        }
    );
    println!(
        "conflicts   {} open{}",
        thousands(s.conflicts as u64),
        if s.conflicts > 0 {
            " (`returnee conflicts`)"
        } else {
            ""
        }
    );
    if let Some(at) = enrollment.as_ref().and_then(|e| e.token_expires_at) {
        println!(
            "credential  valid until {} (a sync renews it in time)",
            at.format("%Y-%m-%d")
        );
    }
    if s.exports_to_report > 0 {
        println!(
            "exports     {} not yet in the server's audit trail (the next `returnee sync` sends it)",
            count(s.exports_to_report as u64, "export", "exports")
        );
    }
    if let Some(update) = &s.update {
        println!("update      {update}");
    }
    if !s.sent_back.is_empty() {
        println!(
            "sent back   {} to fix, then `returnee review ID --state resubmitted` \
             (`returnee list --review sent-back`):",
            count(s.sent_back.len() as u64, "family", "families"),
        );
        for f in &s.sent_back {
            println!(
                "  family {}: {}",
                &f.id.replace('-', "")[..8],
                f.note.as_deref().unwrap_or("(no note)")
            );
        }
    }
    if !s.refused_families.is_empty() {
        println!(
            "refused     {} the server would not take ({}); they stay on this laptop only and the server does not count them:",
            count(s.refused as u64, "change", "changes"),
            count(s.refused_families.len() as u64, "family", "families"),
        );
        for f in &s.refused_families {
            println!("  family {}: {}", &f.id.replace('-', "")[..8], f.message);
            println!("    what to do: {}", f.advice);
        }
        println!(
            "  `returnee refused` lists them; once the cause is fixed, `returnee refused retry --all` and sync"
        );
    }
    Ok(())
}
