//! `returnee duplicates`: families that may be recorded twice on this
//! device, and a supervisor's decisions on them (merge, dismiss, unmerge).
//!
//! Also the warning `add` and `import` print when a new family looks like
//! one already held: on standard error, with ids and scores only (never a
//! name or a document number), and never a refusal.

use returnee_shared::RecordId;
use returnee_shared::access::{Action, Decision};
use returnee_shared::duplicates::Candidate;

use crate::cli::{DuplicatesAction, DuplicatesArgs};
use crate::commands::list::mask_doc;
use crate::commands::{authorize_local, now, open_store};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{count, print_json, spinner, table};
use returnee_shared::FieldName;
use returnee_store::laptop::{BlockCounts, LocalStore, StoredView};

/// At most this many warnings are printed by one import.
const IMPORT_WARNINGS: u64 = 20;

pub fn run(args: DuplicatesArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    match args.action {
        None => list(&store, config, args.json),
        Some(DuplicatesAction::Merge { pair_id, keep }) => {
            authorize_local(&store, Action::DecideDuplicates(Decision::Merge))?;
            let (keep, lose) = store.merge_pair(&pair_id, keep.as_deref(), now())?;
            let open = store
                .get(keep)?
                .map(|v| {
                    v.conflicts
                        .iter()
                        .filter(|c| c.values.iter().any(|x| x.merged_from == Some(lose)))
                        .count()
                })
                .unwrap_or(0);
            println!("merged {lose} into {keep}; {lose} no longer counts");
            if open > 0 {
                println!(
                    "{open} field(s) differed: they are conflicts on {keep} now, for review with `returnee conflicts`"
                );
            }
            println!("sync to send the decision; `returnee duplicates unmerge {lose}` undoes it");
            Ok(())
        }
        Some(DuplicatesAction::Dismiss { pair_id }) => {
            authorize_local(&store, Action::DecideDuplicates(Decision::Dismiss))?;
            let pair = store.dismiss_pair(&pair_id, now())?;
            println!(
                "dismissed pair {}: {} and {} are not the same family and will not be suggested again; sync to send the decision",
                pair.id, pair.records[0], pair.records[1]
            );
            Ok(())
        }
        Some(DuplicatesAction::Show { pair_id }) => show(&store, config, &pair_id, args.json),
        Some(DuplicatesAction::Unmerge { record_id }) => {
            authorize_local(&store, Action::DecideDuplicates(Decision::Unmerge))?;
            let id = store.resolve_id(&record_id)?;
            let into = store.unmerge(id, now())?;
            println!(
                "unmerged {id} from {into}: both families count again; sync to send the decision"
            );
            Ok(())
        }
    }
}

fn list(store: &LocalStore, config: &Config, json: bool) -> Result<(), CliError> {
    // The first run after a large pull indexes what it brought: seconds.
    let wait = spinner(config, "looking for families recorded twice");
    let candidates = store.duplicates();
    wait.finish_and_clear();
    let candidates = candidates?;
    if json {
        return print_json(&candidates);
    }
    // Every family of every pair, read together.
    let ids: Vec<RecordId> = candidates.iter().flat_map(|c| c.records).collect();
    let mut views = ids.iter().copied().zip(store.get_many(&ids)?);
    for c in &candidates {
        let mut next = || {
            let (id, view) = views.next().expect("a view for each family of each pair");
            view.ok_or_else(|| CliError::Other(format!("family {id} of pair {} is gone", c.id)))
        };
        let (a, b) = (next()?, next()?);
        println!("pair {}  score {:.2}: {}", c.id, c.score, why(c));
        println!("{}", side_by_side(config, &a, &b, &BRIEF, true));
        println!();
    }
    println!(
        "{}; `returnee duplicates show PAIR` compares every field; a supervisor decides with `returnee duplicates merge PAIR` or `returnee duplicates dismiss PAIR`",
        count(
            candidates.len() as u64,
            "possible duplicate pair",
            "possible duplicate pairs"
        )
    );
    Ok(())
}

/// `duplicates show PAIR`: every field of both families, and the reasons.
fn show(store: &LocalStore, config: &Config, pair: &str, json: bool) -> Result<(), CliError> {
    let found = store.find_pair(pair)?;
    let c = &found;
    let (a, b) = pair_views(store, c)?;
    if json {
        return print_json(&serde_json::json!({ "pair": c, "families": [a.family, b.family] }));
    }
    println!("pair {}  score {:.2}", c.id, c.score);
    println!("{}", side_by_side(config, &a, &b, &FieldName::ALL, false));
    for r in &c.reasons {
        println!("  {:+.2} {}", r.points, r.detail);
    }
    Ok(())
}

/// What the list shows of each family.
const BRIEF: [FieldName; 5] = [
    FieldName::HeadName,
    FieldName::CrossedOn,
    FieldName::Crossing,
    FieldName::Members,
    FieldName::DocNumber,
];

fn why(c: &Candidate) -> String {
    c.reasons
        .iter()
        .filter(|r| r.points > 0.0)
        .map(|r| r.detail.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

fn pair_views(store: &LocalStore, c: &Candidate) -> Result<(StoredView, StoredView), CliError> {
    let get = |id: RecordId| -> Result<StoredView, CliError> {
        store
            .get(id)?
            .ok_or_else(|| CliError::Other(format!("family {id} of pair {} is gone", c.id)))
    };
    Ok((get(c.records[0])?, get(c.records[1])?))
}

/// A table of `fields` of two families, one column each; with `mask`, a
/// document number masked as in `list` (`show` gives it in full, as
/// `returnee show` does, to check against the card).
fn side_by_side(
    config: &Config,
    a: &StoredView,
    b: &StoredView,
    fields: &[FieldName],
    mask: bool,
) -> String {
    let mut t = table(config, &["", "family 1", "family 2"]);
    let id = |v: &StoredView| v.family.id.0.simple().to_string()[..12].to_string();
    t.add_row(vec!["id".to_string(), id(a), id(b)]);
    for name in fields {
        let show = |v: &StoredView| {
            let f = &v.family.fields;
            match name {
                FieldName::Members => {
                    let m = &f.members;
                    format!(
                        "{} ({}, {}, {})",
                        m.individuals(),
                        count(m.men(), "man", "men"),
                        count(m.women(), "woman", "women"),
                        count(m.children(), "child", "children")
                    )
                }
                FieldName::DocNumber if mask => {
                    f.doc_number.as_deref().map(mask_doc).unwrap_or_default()
                }
                FieldName::HeadName => f.head_name.clone().unwrap_or_else(|| "—".into()),
                n => f.get(*n).display(),
            }
        };
        t.add_row(vec![name.to_string(), show(a), show(b)]);
    }
    t.to_string()
}

fn warning(id: RecordId, c: &Candidate) -> String {
    format!(
        "warning: family {id} may be a duplicate of family {} (score {:.2}, pair {}); it was saved. A supervisor reviews it with `returnee duplicates`",
        c.other(id),
        c.score,
        c.id
    )
}

/// Prints a warning on standard error for each candidate of the family
/// just added. Returns how many.
pub fn warn_added(store: &LocalStore, id: RecordId) -> Result<usize, CliError> {
    let found = store.candidates_of(id)?;
    for c in &found {
        eprintln!("{}", warning(id, c));
    }
    Ok(found.len())
}

/// Warns about the candidates of newly imported families, up to a limit
/// per import; `printed` counts the families warned about so far. A pair of
/// two families new in the same chunk is reported once, by the later one.
pub fn warn_imported(
    store: &LocalStore,
    new: &[RecordId],
    counts: Option<&mut BlockCounts>,
    printed: &mut u64,
) -> Result<(), CliError> {
    let later: std::collections::HashSet<RecordId> = new.iter().copied().collect();
    let mut seen = std::collections::HashSet::new();
    let mut filed = match counts {
        Some(c) => store.candidates_counted(new, c)?.into_iter(),
        None => Vec::new().into_iter(),
    };
    for id in new {
        seen.insert(*id);
        let candidates = match filed.next() {
            Some(found) => found,
            None => store.candidates_of(*id)?,
        };
        let found: Vec<Candidate> = candidates
            .into_iter()
            .filter(|c| {
                let other = c.other(*id);
                !later.contains(&other) || seen.contains(&other)
            })
            .collect();
        if found.is_empty() {
            continue;
        }
        *printed += 1;
        if *printed <= IMPORT_WARNINGS {
            for c in &found {
                eprintln!("{}", warning(*id, c));
            }
        }
    }
    Ok(())
}

/// After an import: how many new families may be duplicates, if more than were shown.
pub fn warn_import_summary(printed: u64) {
    if printed > IMPORT_WARNINGS {
        eprintln!(
            "warning: {printed} imported families may be duplicates ({IMPORT_WARNINGS} shown above); `returnee duplicates` lists them all"
        );
    }
}
