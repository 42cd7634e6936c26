//! `returnee purge --synced-before DATE`: remove from this laptop the
//! families that are safely on the server and have not changed since DATE
//! (see `store::purge` for what counts as synced). They stay on the server
//! and on other devices; operations for them pulled later are dropped here.
//! `--dry-run` lists what would go; on a terminal it asks first.

use chrono::NaiveDate;

use crate::cli::PurgeArgs;
use crate::commands::{confirm, now, open_store, today};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{count, print_json};

pub fn run(args: PurgeArgs, config: &Config) -> Result<(), CliError> {
    let date = NaiveDate::parse_from_str(args.synced_before.trim(), "%Y-%m-%d").map_err(|_| {
        CliError::Usage(format!(
            "--synced-before '{}' is not a date; use YYYY-MM-DD (families last changed before 00:00 UTC that day are removed)",
            args.synced_before
        ))
    })?;
    // Tomorrow is the latest that means something: before it, every change
    // made up to now (in any time zone of the day).
    let tomorrow = today().succ_opt().unwrap_or(NaiveDate::MAX);
    if date > tomorrow {
        return Err(CliError::Usage(format!(
            "--synced-before {date} is in the future; give a day up to {tomorrow} (tomorrow: every synced family, today's changes too)"
        )));
    }
    let before = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let store = open_store(config)?;
    let (plan, ids) = store.purge_preview(before)?;
    if args.dry_run {
        if args.json {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            return print_json(&serde_json::json!({ "would_remove": ids, "counts": plan }));
        }
        for id in &ids {
            println!("{id}");
        }
        println!(
            "would remove {} (nothing was removed: run again without --dry-run)",
            count(ids.len() as u64, "family", "families")
        );
        return Ok(());
    }
    if !plan.never_synced
        && plan.removed > 0
        && !confirm(
            config,
            args.yes,
            &format!(
                "Remove {} from this laptop (they stay on the server)?",
                count(plan.removed, "synced family", "synced families")
            ),
        )?
    {
        println!("nothing removed");
        return Ok(());
    }
    let out = store.purge_synced_before(before, now())?;
    if args.json {
        return print_json(&out);
    }
    if out.never_synced {
        println!(
            "removed 0 families: this device has never synced, so none of its {} is known to be on the server. Enroll and sync first",
            count(out.kept_unsynced, "family", "families")
        );
        return Ok(());
    }
    println!(
        "removed {} last changed before {date}; they stay on the server",
        count(out.removed, "synced family", "synced families")
    );
    println!(
        "kept {} not yet synced (sync, then purge again) and {} changed since {date}",
        count(out.kept_unsynced, "family", "families"),
        count(out.kept_recent, "family", "families")
    );
    Ok(())
}
