//! `returnee conflicts`: open conflicts on this device, and their resolution
//! by a supervisor or admin.

use comfy_table::Cell;
use returnee_shared::access::Action;

use crate::cli::{ConflictsAction, ConflictsArgs};
use crate::commands::{authorize_local, now, open_store, today};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{print_json, table};

pub fn run(args: ConflictsArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    match args.action {
        None => {
            let conflicts = store.conflicts()?;
            if args.json {
                return print_json(&conflicts);
            }
            let names = store.device_names()?;
            let mut t = table(
                config,
                &["conflict", "family", "field", "values (device, time)"],
            );
            for c in &conflicts {
                let values: Vec<String> = c
                    .values
                    .iter()
                    .map(|v| {
                        format!(
                            "{}{}{} ({}, {})",
                            v.value,
                            if v.shown { " [shown]" } else { "" },
                            v.merged_from
                                .map(|r| format!(" [from duplicate {r}]"))
                                .unwrap_or_default(),
                            names
                                .get(&v.device)
                                .cloned()
                                .unwrap_or_else(|| v.device.to_string()[..8].to_string()),
                            v.at.format("%Y-%m-%d %H:%M")
                        )
                    })
                    .collect();
                t.add_row(vec![
                    Cell::new(&c.id),
                    Cell::new(c.record_id),
                    Cell::new(c.label()),
                    Cell::new(values.join("\n")),
                ]);
            }
            println!("{t}");
            println!("{} open conflict(s)", conflicts.len());
            Ok(())
        }
        Some(ConflictsAction::Resolve { conflict_id, value }) => {
            authorize_local(&store, Action::ResolveConflict)?;
            let c = store.resolve(&conflict_id, &value, today(), now())?;
            println!(
                "resolved conflict {} on {} of {}; sync to send the decision",
                c.id, c.field, c.record_id
            );
            Ok(())
        }
    }
}
