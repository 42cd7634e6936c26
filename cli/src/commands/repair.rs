//! `returnee repair`: check the local store and, when it does not open or
//! a check fails, rebuild it from its outbox (the unsent changes, kept
//! apart from the store); the next `returnee sync` then pulls everything
//! the laptop held from the server again.

use crate::cli::JsonFlag;
use crate::commands::passphrase;
use crate::config::Config;
use crate::error::CliError;
use crate::output::print_json;
use returnee_store::laptop::LocalStore;

pub fn run(args: JsonFlag, config: &Config) -> Result<(), CliError> {
    let report = LocalStore::repair(&config.data_dir, &|| passphrase(config))?;
    if args.json {
        return print_json(&report);
    }
    for line in &report.checked {
        println!("checked  {line}");
    }
    if let Some(cut) = &report.outbox_cut {
        println!("outbox   {cut} (an unfinished write; nothing acknowledged is in it)");
    }
    if let Some(problem) = &report.problem {
        println!("problem  {problem}");
    }
    if let Some(aside) = &report.moved_aside {
        println!("moved    the damaged store's files to {}", aside.display());
    }
    if report.rebuilt {
        println!(
            "rebuilt  the store from its outbox: {} unsent changes of {} families and {} refused changes kept",
            report.unsent, report.families, report.refused
        );
        println!(
            "next     run `returnee sync`: it sends the unsent changes and pulls everything else back"
        );
    } else if report.outbox_rewritten {
        println!("rebuilt  the outbox from the store (the store is sound)");
    } else {
        println!("result   the store is sound; nothing rebuilt");
    }
    println!("took     {:.2} s", report.took.as_secs_f64());
    Ok(())
}
