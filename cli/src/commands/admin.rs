//! `returnee admin`: administration from an admin device: enrollment
//! codes, devices and their revocation, and the audit trail.

use returnee_shared::DeviceId;
use returnee_shared::audit::{AuditEntry, AuditEvent, GENESIS, verify_chain};
use returnee_shared::reference::{self, CrossingDef};
use returnee_shared::validate::parse_crossing;
use returnee_shared::wire::{CodeRequest, DeviceSummary, MAX_AUDIT_PAGE, Role};

use crate::cli::{AdminAction, AdminArgs, CrossingAction};
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::output::{print_json, table};
use crate::sync::{enrolled_client, erase_if_revoked};

pub fn run(args: AdminArgs, config: &Config) -> Result<(), CliError> {
    match args.action {
        AdminAction::Code {
            role,
            sites,
            uses,
            json,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                CliError::Usage(format!(
                    "'{role}' is not a role; use --role field, supervisor or admin"
                ))
            })?;
            if uses == 0 {
                return Err(CliError::Usage("--uses must be at least 1".into()));
            }
            let store = open_store(config)?;
            let client = enrolled_client(&store, config.ca_file.as_deref())?;
            let sites = parse_sites(&client, &sites)?;
            let code = erase_if_revoked(
                store,
                client
                    .mint_code(&CodeRequest { role, sites, uses })
                    .map_err(CliError::from),
            )?;
            if json {
                print_json(&code)?;
            } else {
                println!("{}", code.code);
                eprintln!(
                    "a {} code for {} device(s){}; give it to the worker, it works once per device",
                    code.role,
                    code.uses,
                    if code.sites.is_empty() {
                        String::new()
                    } else {
                        format!(" at {}", code.sites.join(", "))
                    }
                );
            }
            Ok(())
        }
        AdminAction::Devices { json } => {
            let store = open_store(config)?;
            let client = enrolled_client(&store, config.ca_file.as_deref())?;
            let devices = erase_if_revoked(store, client.devices().map_err(CliError::from))?;
            if json {
                return print_json(&devices);
            }
            let mut t = table(
                config,
                &["id", "name", "role", "sites", "enrolled", "revoked"],
            );
            for d in &devices {
                t.add_row(vec![
                    d.id.to_string(),
                    d.name.clone(),
                    d.role.to_string(),
                    if d.sites.is_empty() {
                        "all".into()
                    } else {
                        d.sites.join(", ")
                    },
                    d.enrolled_at.format("%Y-%m-%d %H:%M").to_string(),
                    d.revoked_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        AdminAction::Revoke { device_id } => {
            let store = open_store(config)?;
            let client = enrolled_client(&store, config.ca_file.as_deref())?;
            let id = named_device(&store, &client, &device_id)?;
            let d = erase_if_revoked(store, client.revoke(id).map_err(CliError::from))?;
            println!(
                "revoked {} ({}, {}); the server refuses it from now on, and it erases its copy at its next contact",
                d.id, d.name, d.role
            );
            Ok(())
        }
        AdminAction::Sites { device_id, sites } => {
            let store = open_store(config)?;
            let client = enrolled_client(&store, config.ca_file.as_deref())?;
            let sites = parse_sites(&client, &sites)?;
            let id = named_device(&store, &client, &device_id)?;
            let d = erase_if_revoked(store, client.set_sites(id, sites).map_err(CliError::from))?;
            println!(
                "{} ({}) now works at {}; its changes refused for a site it now has go through once it runs `returnee refused retry --all` and syncs",
                d.name,
                d.id,
                if d.sites.is_empty() {
                    "every site".to_string()
                } else {
                    d.sites.join(", ")
                }
            );
            Ok(())
        }
        AdminAction::Crossing { action } => crossing(action, config),
        AdminAction::Rotate { device_id } => {
            let store = open_store(config)?;
            let client = enrolled_client(&store, config.ca_file.as_deref())?;
            let id = named_device(&store, &client, &device_id)?;
            let d = erase_if_revoked(store, client.ask_rotation(id).map_err(CliError::from))?;
            println!(
                "{} ({}) gets a new token at its next sync; its old token stops working once the new one is used",
                d.name, d.id
            );
            Ok(())
        }
        AdminAction::Audit { after, limit, json } => {
            let store = open_store(config)?;
            let client = enrolled_client(&store, config.ca_file.as_deref())?;
            let fetched: Result<(u64, Vec<AuditEntry>), CliError> = (|| {
                let after = match after {
                    Some(a) => a,
                    // The newest entries: ask where the trail ends first.
                    None => client.audit(0, 1)?.newest.saturating_sub(limit as u64),
                };
                let mut entries = Vec::new();
                let mut cursor = after;
                while entries.len() < limit {
                    let page = client.audit(cursor, (limit - entries.len()).min(MAX_AUDIT_PAGE))?;
                    let Some(last) = page.entries.last() else {
                        break;
                    };
                    cursor = last.seq;
                    let more = page.more;
                    entries.extend(page.entries);
                    if !more {
                        break;
                    }
                }
                Ok((after, entries))
            })();
            let (after, entries) = erase_if_revoked(store, fetched)?;
            // From the first entry the chain is checked from its start;
            // otherwise from the first entry shown.
            let checked = match entries.first() {
                None => Ok((after, String::new())),
                Some(first) if after == 0 => verify_chain(entries.clone(), 0, GENESIS)
                    .map(|_| (first.seq, first.hash.clone())),
                Some(first) => verify_chain(entries.clone(), first.seq - 1, &first.prev)
                    .map(|_| (first.seq, first.hash.clone())),
            };
            if json {
                print_json(&entries)?;
            } else {
                // Names for people: the devices as the server lists them
                // (ids stay in --json).
                let names = Names(client.devices().unwrap_or_default());
                let mut t = table(config, &["#", "time", "device", "event"]);
                for e in &entries {
                    t.add_row(vec![
                        e.seq.to_string(),
                        e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        e.device
                            .map(|d| names.of(d))
                            .unwrap_or_else(|| "server".into()),
                        describe(&e.event, &names),
                    ]);
                }
                println!("{t}");
            }
            match checked {
                Ok(_) => {
                    if !json {
                        eprintln!("hash chain intact over the {} entries shown", entries.len());
                    }
                    Ok(())
                }
                Err(b) => Err(CliError::Other(format!(
                    "{b}; the server's audit trail was tampered with: tell the data protection focal point"
                ))),
            }
        }
    }
}

/// Device names by id, from `admin devices`.
struct Names(Vec<DeviceSummary>);

impl Names {
    /// `torkham-desk-1 (98d708db)`, or the id alone for a device not listed.
    fn of(&self, id: DeviceId) -> String {
        let short = &id.0.simple().to_string()[..8];
        match self.0.iter().find(|d| d.id == id) {
            Some(d) => format!("{} ({short})", d.name),
            None => id.to_string(),
        }
    }
}

/// The crossings `--site` named, as codes, checked against the server's
/// list as it is now (an admin may name a crossing added since this
/// laptop's last sync).
fn parse_sites(
    client: &crate::client::ServerClient,
    sites: &[String],
) -> Result<Vec<String>, CliError> {
    if let Ok(list) = client.crossings() {
        reference::learn(&list);
    }
    sites
        .iter()
        .map(|s| parse_crossing(s).map_err(|p| CliError::Usage(format!("--site: {}", p.message))))
        .collect()
}

/// `admin crossing add|deactivate|list`.
fn crossing(action: CrossingAction, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let client = enrolled_client(&store, config.ca_file.as_deref())?;
    let list = match action {
        CrossingAction::Add {
            code,
            name,
            country_side,
            af_province,
        } => {
            // The province codes as people type them (ir-09, Herat).
            let country_side = reference::departure(&country_side)
                .filter(|c| c != reference::UNKNOWN_DEPARTURE)
                .unwrap_or(country_side);
            let af_province = reference::destination(&af_province)
                .filter(|c| c != reference::UNDECIDED_DESTINATION)
                .unwrap_or(af_province);
            let def = CrossingDef {
                code: code.trim().to_string(),
                name: name.trim().to_string(),
                country_side,
                af_province,
                active: true,
            };
            if let Some(why) = store.learnt_crossings()?.refuse_new(&def) {
                return Err(CliError::Usage(why));
            }
            let list = erase_if_revoked(store, client.add_crossing(&def).map_err(CliError::from))?;
            println!(
                "added the crossing {} ({}); laptops learn it at their next sync (list version {})",
                def.code, def.name, list.version
            );
            return Ok(());
        }
        CrossingAction::Deactivate { code } => {
            let list = erase_if_revoked(
                store,
                client
                    .deactivate_crossing(code.trim())
                    .map_err(CliError::from),
            )?;
            println!(
                "deactivated the crossing {code}: its families stay, new ones are not offered it (list version {})",
                list.version
            );
            return Ok(());
        }
        CrossingAction::List { json } => (
            erase_if_revoked(store, client.crossings().map_err(CliError::from))?,
            json,
        ),
    };
    let (list, json) = list;
    reference::learn(&list);
    if json {
        return print_json(&list);
    }
    let mut t = table(
        config,
        &["code", "name", "far side", "afghan side", "state"],
    );
    for c in reference::crossings() {
        let added = list.crossings.iter().any(|d| d.code == c.entry.code);
        t.add_row(vec![
            c.entry.code.clone(),
            c.entry.name.clone(),
            c.pk_province.clone(),
            c.af_province.clone(),
            match (added, c.active) {
                (false, _) => "built in",
                (true, true) => "added",
                (true, false) => "deactivated",
            }
            .to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// The device `text` names (see [`find_device`]), asking the server for
/// the list unless it is a full id.
fn named_device(
    store: &returnee_store::laptop::LocalStore,
    client: &crate::client::ServerClient,
    text: &str,
) -> Result<DeviceId, CliError> {
    match uuid::Uuid::parse_str(text.trim()) {
        Ok(id) => Ok(DeviceId(id)),
        Err(_) => {
            let devices =
                erase_if_revoked(store.clone(), client.devices().map_err(CliError::from))?;
            find_device(&devices, text)
        }
    }
}

/// The device named by `text`: its full id, a unique prefix of it (4
/// characters at least), or its name.
fn find_device(devices: &[DeviceSummary], text: &str) -> Result<DeviceId, CliError> {
    let wanted = text.trim().to_ascii_lowercase().replace('-', "");
    let by_name: Vec<&DeviceSummary> = devices.iter().filter(|d| d.name == text.trim()).collect();
    let by_prefix: Vec<&DeviceSummary> = devices
        .iter()
        .filter(|d| wanted.len() >= 4 && d.id.0.simple().to_string().starts_with(&wanted))
        .collect();
    let found = if by_name.is_empty() {
        by_prefix
    } else {
        by_name
    };
    match found.as_slice() {
        [d] => Ok(d.id),
        [] => Err(CliError::Usage(format!(
            "no device is named or has an id starting with '{text}'; see `returnee admin devices`"
        ))),
        many => Err(CliError::Usage(format!(
            "'{text}' names {} devices ({}); give more characters of the id",
            many.len(),
            many.iter()
                .map(|d| format!("{} {}", d.name, d.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One line for an audit event: kinds and counts, never values.
fn describe(event: &AuditEvent, names: &Names) -> String {
    match event {
        AuditEvent::Push { applied, rejected } => {
            let mut kinds = std::collections::BTreeMap::<String, usize>::new();
            let mut resolutions = 0;
            for op in applied {
                *kinds.entry(op.change.clone()).or_default() += 1;
                resolutions += usize::from(op.resolution);
            }
            let mut parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            if resolutions > 0 {
                parts.push(format!("{resolutions} resolution(s)"));
            }
            if *rejected > 0 {
                parts.push(format!("{rejected} refused"));
            }
            format!("push: {}", parts.join(", "))
        }
        AuditEvent::Enrolled {
            device,
            role,
            sites,
        } => format!(
            "enrolled {} as {role}{}",
            names.of(*device),
            if sites.is_empty() {
                String::new()
            } else {
                format!(" at {}", sites.join(", "))
            }
        ),
        AuditEvent::Revoked { device } => format!("revoked {}", names.of(*device)),
        AuditEvent::CodeMinted { role, sites, uses } => format!(
            "code minted: {role}{}, {uses} use(s)",
            if sites.is_empty() {
                String::new()
            } else {
                format!(" at {}", sites.join(", "))
            }
        ),
        AuditEvent::Exported {
            format,
            filter,
            rows,
            personal,
            full_documents,
            on_laptop_at,
        } => format!(
            "exported {rows} families as {format} (filters: {filter}; {}){}",
            match (personal, full_documents) {
                (false, _) => "shareable, no personal data",
                (true, false) => "names, document numbers masked",
                (true, true) => "names and full document numbers",
            },
            match on_laptop_at {
                Some(at) => format!(
                    ", from the laptop's own store at {} (its clock)",
                    at.format("%Y-%m-%d %H:%M")
                ),
                None => String::new(),
            }
        ),
        AuditEvent::TokenRotated { device } => {
            format!("token rotated by {}", names.of(*device))
        }
        AuditEvent::RotationRequested { device } => {
            format!("token rotation asked of {}", names.of(*device))
        }
        AuditEvent::CrossingChanged { code, active } => format!(
            "crossing {code} {}",
            if *active { "added" } else { "deactivated" }
        ),
        AuditEvent::SitesChanged { device, sites } => format!(
            "sites of {} set to {}",
            names.of(*device),
            if sites.is_empty() {
                "all".to_string()
            } else {
                sites.join(", ")
            }
        ),
    }
}
