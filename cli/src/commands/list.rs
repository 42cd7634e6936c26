//! `returnee list`: families as a table, or a JSON array of records.
//!
//! The table shows a document number masked ([`mask_doc`]: `…` and its
//! last 4 characters), enough to tell families apart over a shoulder;
//! `show` and `--json` give it in full, to check against the card.

use comfy_table::Cell;
use returnee_shared::merge::Lifecycle;

use crate::cli::ListArgs;
use crate::commands::{open_store, parse_filter};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{num, print_json, table};
use returnee_store::laptop::StoredView;

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
            "doc", "note",
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
            Cell::new(f.doc_number.as_deref().map(mask_doc).unwrap_or_default()),
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

/// A document number as human tables show it: `…` and its last 4
/// characters (all of it hidden when it has 4 or fewer).
pub fn mask_doc(number: &str) -> String {
    returnee_shared::report::records::mask(number)
}

#[cfg(test)]
mod tests {
    use super::mask_doc;

    #[test]
    fn a_masked_document_number_shows_only_its_last_four_characters() {
        assert_eq!(mask_doc("PK-1234-567890"), "…7890");
        assert_eq!(mask_doc("AB12345"), "…2345");
        assert_eq!(mask_doc("1234"), "…");
        assert_eq!(mask_doc("ذ٤٥٦٧٨٩"), "…٦٧٨٩");
    }
}
