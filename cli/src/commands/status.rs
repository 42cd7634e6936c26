//! `returnee status`: where this device stands.

use returnee_shared::wire::PROTOCOL_VERSION;
use serde::Serialize;

use crate::cli::JsonFlag;
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::output::print_json;

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
    refused: usize,
    /// Set when the server (at the last sync) speaks a newer protocol.
    update: Option<String>,
}

pub fn run(args: JsonFlag, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let device = store.device()?;
    let enrollment = store.enrollment()?;
    let families = store.report_rows().count();
    let conflicts = store.conflicts()?.len();
    let held = store.held()?;
    let s = Status {
        device_id: device.id.to_string(),
        device_name: device.name,
        server: enrollment.as_ref().map(|e| e.server.clone()),
        role: enrollment.as_ref().map(|e| e.role.to_string()),
        sites: enrollment
            .as_ref()
            .map(|e| e.sites.clone())
            .unwrap_or_default(),
        last_sync: store.last_sync()?.map(|t| t.to_rfc3339()),
        pending: store.pending_count()?,
        conflicts,
        families,
        refused: held.len(),
        update: store
            .server_health()?
            .and_then(|h| h.compatibility(PROTOCOL_VERSION).notice()),
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
    println!("last sync   {}", s.last_sync.as_deref().unwrap_or("never"));
    println!("families    {}", s.families);
    println!("pending     {} change(s) not yet on the server", s.pending);
    println!("conflicts   {} open", s.conflicts);
    if let Some(update) = &s.update {
        println!("update      {update}");
    }
    if !held.is_empty() {
        println!(
            "refused     {} change(s) the server would not take (kept here):",
            held.len()
        );
        for (op, r) in &held {
            println!("  family {}: {} ({})", op.record, r.message, r.error);
        }
    }
    Ok(())
}
