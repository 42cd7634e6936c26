//! `returnee show`: one family, every field, its derived figures and conflicts.

use comfy_table::Cell;
use returnee_shared::merge::{Conflict, Lifecycle};
use returnee_shared::{AGE_BANDS, Family, FieldName};
use returnee_store::laptop::find::SyncState;
use serde::Serialize;

use crate::cli::ShowArgs;
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::output::{print_json, table};

#[derive(Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    family: &'a Family,
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    merged_into: Option<returnee_shared::RecordId>,
    individuals: u64,
    men: u64,
    women: u64,
    children: u64,
    conflicts: &'a [Conflict],
    /// saved-here-only, refused or sent.
    sync: &'static str,
    /// When and why the family's personal data was erased, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    erased: Option<Erasure>,
}

#[derive(Serialize)]
struct Erasure {
    at: chrono::DateTime<chrono::Utc>,
    by: returnee_shared::DeviceId,
    reason: String,
}

/// The family's erasure, as its operations hold it.
fn erasure(doc: Option<returnee_shared::merge::RecordDoc>) -> Option<Erasure> {
    let doc = doc?;
    let op = doc.erasure()?;
    let returnee_shared::Change::Erase { reason } = &op.change else {
        return None;
    };
    Some(Erasure {
        at: op.at,
        by: op.device,
        reason: reason.clone(),
    })
}

pub fn run(args: ShowArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let id = store.resolve_id(&args.id)?;
    let view = store
        .get(id)?
        .ok_or_else(|| returnee_store::laptop::StoreError::NotFound(args.id.clone()))?;
    let state = store.sync_states()?.of(id);
    let erased = erasure(store.record_doc(id)?);
    let f = &view.family;
    let m = &f.fields.members;
    if args.json {
        return print_json(&ShowJson {
            family: f,
            deleted: view.lifecycle == Lifecycle::Deleted,
            merged_into: view.lifecycle.merged_into(),
            individuals: m.individuals(),
            men: m.men(),
            women: m.women(),
            children: m.children(),
            conflicts: &view.conflicts,
            sync: crate::commands::list::sync_json(state),
            erased,
        });
    }
    let mut t = table(config, &["field", "value"]);
    t.add_row(vec![Cell::new("id"), Cell::new(f.id)]);
    t.add_row(vec![Cell::new("sync"), Cell::new(sync_words(state))]);
    if view.lifecycle == Lifecycle::Deleted {
        t.add_row(vec!["state", "DELETED"]);
    }
    if let Some(into) = view.lifecycle.merged_into() {
        t.add_row(vec![
            Cell::new("state"),
            Cell::new(format!("MERGED into {into} (a duplicate; not counted)")),
        ]);
    }
    if let Some(e) = &erased {
        t.add_row(vec![
            Cell::new("personal data"),
            Cell::new(format!(
                "ERASED on {} ({}); still counted",
                e.at.format("%Y-%m-%d"),
                e.reason
            )),
        ]);
    }
    for name in FieldName::ALL {
        if name == FieldName::Members {
            continue;
        }
        t.add_row(vec![
            Cell::new(name),
            Cell::new(f.fields.get(name).display()),
        ]);
    }
    for (who, counts) in [("males", m.males), ("females", m.females)] {
        let parts: Vec<String> = AGE_BANDS
            .iter()
            .zip(counts)
            .map(|(band, n)| format!("{band}: {n}"))
            .collect();
        t.add_row(vec![Cell::new(who), Cell::new(parts.join("  "))]);
    }
    t.add_row(vec![
        Cell::new("household"),
        Cell::new(format!(
            "{} people: {} men, {} women, {} children",
            m.individuals(),
            m.men(),
            m.women(),
            m.children()
        )),
    ]);
    t.add_row(vec![
        Cell::new("recorded"),
        Cell::new(format!(
            "{} by device {}",
            f.recorded_at.format("%Y-%m-%d %H:%M UTC"),
            f.recorded_by
        )),
    ]);
    println!("{t}");
    for c in &view.conflicts {
        println!("conflict {} on {}:", c.id, c.label());
        for v in &c.values {
            println!(
                "  {}{}{}  (device {}, {})",
                v.value,
                if v.shown { " [shown]" } else { "" },
                v.merged_from
                    .map(|r| format!(" [from duplicate {r}]"))
                    .unwrap_or_default(),
                v.device,
                v.at.format("%Y-%m-%d %H:%M UTC")
            );
        }
    }
    Ok(())
}

/// Where the family stands with the server, and what to do about it.
fn sync_words(state: SyncState) -> &'static str {
    match state {
        SyncState::SavedHereOnly => "saved here only (not on the server yet: run `returnee sync`)",
        SyncState::Refused => {
            "REFUSED by the server (kept here; `returnee status` says why and what to do)"
        }
        SyncState::Sent => "sent (on the server)",
    }
}
