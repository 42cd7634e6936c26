//! `returnee purge --synced-before DATE`: remove from this laptop the
//! families that are safely on the server and have not changed since DATE
//! (see `store::purge` for what counts as synced). They stay on the server
//! and on other devices; operations for them pulled later are dropped here.

use chrono::NaiveDate;

use crate::cli::PurgeArgs;
use crate::commands::{now, open_store};
use crate::config::Config;
use crate::error::CliError;
use crate::output::print_json;

pub fn run(args: PurgeArgs, config: &Config) -> Result<(), CliError> {
    let date = NaiveDate::parse_from_str(args.synced_before.trim(), "%Y-%m-%d").map_err(|_| {
        CliError::Usage(format!(
            "--synced-before '{}' is not a date; use YYYY-MM-DD (families last changed before 00:00 UTC that day are removed)",
            args.synced_before
        ))
    })?;
    let before = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let store = open_store(config)?;
    let out = store.purge_synced_before(before, now())?;
    if args.json {
        return print_json(&out);
    }
    if out.never_synced {
        println!(
            "removed 0 families: this device has never synced, so none of its {} famil{} is known to be on the server. Enroll and sync first",
            out.kept_unsynced,
            if out.kept_unsynced == 1 { "y" } else { "ies" }
        );
        return Ok(());
    }
    println!(
        "removed {} synced famil{} last changed before {date}; they stay on the server",
        out.removed,
        if out.removed == 1 { "y" } else { "ies" }
    );
    println!(
        "kept {} not yet synced (sync, then purge again) and {} changed since {date}",
        out.kept_unsynced, out.kept_recent
    );
    Ok(())
}
