//! `returnee refused`: the changes the server refused (kept on this laptop,
//! not counted by the server): list them with the server's reason, send
//! them again once the cause is fixed, or drop one for good.

use std::io::Write;

use chrono::{DateTime, Utc};
use returnee_shared::RecordId;
use returnee_shared::audit::AuditedOp;
use returnee_store::laptop::LocalStore;
use returnee_store::laptop::refused::{DISCARD_LOG, Refused};
use serde::Serialize;

use crate::cli::{RefusedAction, RefusedArgs};
use crate::commands::list::ShortIds;
use crate::commands::{confirm, now, open_store};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{count, print_json, table};

/// One refused change as listed.
#[derive(Serialize)]
struct Listed {
    /// The change (operation) id: what `retry` and `discard` take.
    id: String,
    family: String,
    /// create, edit, delete, restore, merge, merged_values or dismiss.
    change: String,
    /// The server's error code (`forbidden`, `invalid`, …).
    error: String,
    /// The server's reason.
    reason: String,
}

fn listed(r: &Refused) -> Listed {
    Listed {
        id: r.op.id.to_string(),
        family: r.op.record.to_string(),
        change: AuditedOp::of(&r.op).change,
        error: r.rejection.error.as_str().to_string(),
        reason: r.rejection.message.clone(),
    }
}

fn short(id: &str) -> &str {
    &id[..8]
}

pub fn run(args: RefusedArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    match args.action {
        None => list(&store, args.json, config),
        Some(RefusedAction::Retry { id, all }) => {
            let chosen = match (&id, all) {
                (_, true) => None,
                (Some(text), false) => Some(
                    matching(&store, text)?
                        .iter()
                        .map(|r| r.op.id)
                        .collect::<Vec<_>>(),
                ),
                (None, false) => {
                    return Err(CliError::Usage(
                        "say which change to send again (its id from `returnee refused`), or --all"
                            .into(),
                    ));
                }
            };
            let moved = store.retry_refused(chosen.as_deref())?;
            if moved.is_empty() {
                println!("no refused change to send again");
            } else {
                println!(
                    "{} back in the outbox; `returnee sync` sends {}",
                    count(moved.len() as u64, "refused change", "refused changes"),
                    if moved.len() == 1 { "it" } else { "them" }
                );
            }
            Ok(())
        }
        Some(RefusedAction::Discard { id, yes }) => discard(&store, &id, yes, config),
    }
}

fn list(store: &LocalStore, json: bool, config: &Config) -> Result<(), CliError> {
    let refused: Vec<Listed> = store.refused()?.iter().map(listed).collect();
    if json {
        return print_json(&refused);
    }
    if refused.is_empty() {
        println!("the server refused none of this laptop's changes");
        return Ok(());
    }
    // Ids as short as they stay unique: changes among the refused ones,
    // families as `list` shows them.
    let changes = ShortIds::new(
        store
            .refused()?
            .iter()
            .map(|r| RecordId(r.op.id.0))
            .collect(),
    );
    let families = ShortIds::new(store.record_ids().collect::<Result<_, _>>()?);
    let mut t = table(
        config,
        &["change", "family", "kind", "why the server refused it"],
    );
    for r in &refused {
        let id = |text: &str| RecordId(text.parse().expect("an id as listed"));
        t.add_row(vec![
            changes.of(id(&r.id)),
            families.of(id(&r.family)),
            r.change.clone(),
            format!("{}: {}", r.error, r.reason),
        ]);
    }
    println!("{t}");
    eprintln!(
        "{} kept on this laptop only. Once the cause is fixed: `returnee refused retry --all` and `returnee sync`; to drop one: `returnee refused discard CHANGE`",
        count(refused.len() as u64, "change", "changes")
    );
    Ok(())
}

/// The refused changes `text` names: a change id or a family id, whole or
/// a unique beginning of at least 4 characters (dashes optional).
fn matching(store: &LocalStore, text: &str) -> Result<Vec<Refused>, CliError> {
    let wanted = text.trim().to_ascii_lowercase().replace('-', "");
    if wanted.len() < 4 {
        return Err(CliError::Usage(format!(
            "'{text}' is too short: give at least 4 characters of a change id from `returnee refused`"
        )));
    }
    let starts = |id: String| id.replace('-', "").starts_with(&wanted);
    let all = store.refused()?;
    let by_change: Vec<Refused> = all
        .iter()
        .filter(|r| starts(r.op.id.to_string()))
        .cloned()
        .collect();
    let found = if by_change.is_empty() {
        all.into_iter()
            .filter(|r| starts(r.op.record.to_string()))
            .collect()
    } else {
        by_change
    };
    if found.is_empty() {
        return Err(CliError::Usage(format!(
            "no refused change or family has an id starting with '{text}'; `returnee refused` lists them"
        )));
    }
    Ok(found)
}

fn discard(store: &LocalStore, text: &str, yes: bool, config: &Config) -> Result<(), CliError> {
    let found = matching(store, text)?;
    let [r] = found.as_slice() else {
        return Err(CliError::Usage(format!(
            "'{text}' names {} refused changes ({}); give the id of one change",
            found.len(),
            found
                .iter()
                .map(|r| short(&r.op.id.to_string()).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let l = listed(r);
    let question = format!(
        "Drop the refused {} of family {} for good? It will never reach the server",
        l.change,
        short(&l.family)
    );
    if !confirm(config, yes, &question)? {
        println!("nothing dropped");
        return Ok(());
    }
    let Some(dropped) = store.discard_refused(r.op.id)? else {
        return Err(CliError::Usage(format!(
            "the change {} is no longer refused here; `returnee refused` lists them",
            short(&l.id)
        )));
    };
    log_discarded(store, &dropped, now())?;
    println!(
        "dropped the refused {} of family {}; noted in {}",
        l.change,
        short(&l.family),
        store.dir().join(DISCARD_LOG).display()
    );
    Ok(())
}

/// The server's reason without anything it quoted (a value the worker
/// typed could be personal): `'…'` in its place.
fn without_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut quoted = false;
    for c in reason.chars() {
        match (c, quoted) {
            ('\'', false) => {
                quoted = true;
                out.push_str("'…");
            }
            ('\'', true) => {
                quoted = false;
                out.push('\'');
            }
            (_, true) => {}
            ('\n' | '\r', false) => out.push(' '),
            (c, false) => out.push(c),
        }
    }
    if quoted {
        out.push('\'');
    }
    out
}

/// Appends one line to the log of discarded changes: when, the family,
/// the change, the server's error code and reason (no value of the family).
fn log_discarded(store: &LocalStore, r: &Refused, at: DateTime<Utc>) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = store.dir().join(DISCARD_LOG);
    let line = format!(
        "{}\tfamily {}\tchange {}\t{}: {}\n",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        r.op.record,
        r.op.id,
        r.rejection.error.as_str(),
        without_values(&r.rejection.message)
    );
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(|e| {
            CliError::io(
                format!(
                    "the change was dropped, but its line could not be written to {}",
                    path.display()
                ),
                e,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn quoted_values_leave_the_reason() {
        assert_eq!(
            without_values("'Karim Zaman' is not allowed; record it at 'torkham'"),
            "'…' is not allowed; record it at '…'"
        );
        assert_eq!(without_values("no quotes\nhere"), "no quotes here");
        assert_eq!(without_values("open 'end"), "open '…'");
    }
}
