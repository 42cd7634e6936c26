//! `returnee list`: families as a table, or a JSON array of records.

use comfy_table::Cell;
use returnee_shared::merge::Lifecycle;

use crate::cli::ListArgs;
use crate::commands::{open_store, parse_filter};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{num, print_json, table};
use crate::store::StoredView;

pub fn run(args: ListArgs, config: &Config) -> Result<(), CliError> {
    let filter = parse_filter(&args.filter)?;
    let store = open_store(config)?;
    let mut views: Vec<StoredView> = Vec::new();
    for v in store.views() {
        let v = v?;
        if (args.deleted || v.lifecycle == Lifecycle::Active) && filter.matches(&v.family.fields) {
            views.push(v);
        }
    }
    if args.json {
        let records: Vec<serde_json::Value> = views
            .iter()
            .map(|v| {
                let mut j = serde_json::to_value(&v.family).expect("family serializes");
                if args.deleted {
                    j["deleted"] = (v.lifecycle == Lifecycle::Deleted).into();
                    if let Some(into) = v.lifecycle.merged_into() {
                        j["merged_into"] = into.to_string().into();
                    }
                }
                j
            })
            .collect();
        return print_json(&records);
    }
    let mut t = table(
        config,
        &[
            "id", "crossing", "date", "return", "from", "to", "size", "men", "women", "children",
            "note",
        ],
    );
    for v in &views {
        let f = &v.family.fields;
        let mut note = Vec::new();
        if v.lifecycle == Lifecycle::Deleted {
            note.push("deleted".to_string());
        }
        if let Some(into) = v.lifecycle.merged_into() {
            note.push(format!("merged into {into}"));
        }
        if !v.conflicts.is_empty() {
            note.push(format!("{} conflict(s)", v.conflicts.len()));
        }
        t.add_row(vec![
            Cell::new(v.family.id),
            Cell::new(&f.crossing),
            Cell::new(f.crossed_on),
            Cell::new(f.return_type),
            Cell::new(&f.departure_province),
            Cell::new(&f.destination_province),
            num(f.members.individuals()),
            num(f.members.men()),
            num(f.members.women()),
            num(f.members.children()),
            Cell::new(note.join(", ")),
        ]);
    }
    println!("{t}");
    println!(
        "{} famil{}",
        views.len(),
        if views.len() == 1 { "y" } else { "ies" }
    );
    Ok(())
}
