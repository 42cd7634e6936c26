//! `returnee list` and `returnee find`: families as a table that fits the
//! terminal, or a JSON array of records.
//!
//! The table fits [`Config::columns`] (80 on a small terminal): a short id
//! (the shortest prefix of at least 8 characters that no other family of
//! this laptop shares; `show`, `edit` and `delete` take it), the date, the
//! crossing, the head's name (cut with `…` to fit), the household and
//! where the family stands with the server; then, as the width allows, the
//! return type, the route, the masked document number and notes. `--wide`
//! shows every column and full ids. A document number is masked
//! ([`mask_doc`]: `…` and its last 4 characters), enough to tell families
//! apart over a shoulder; `show` and `--json` give it in full.

use comfy_table::{Cell, CellAlignment};
use returnee_shared::RecordId;
use returnee_shared::merge::Lifecycle;
use returnee_store::laptop::StoredView;
use returnee_store::laptop::find::{Found, SyncState, SyncStates};

use crate::cli::{FindArgs, ListArgs};
use crate::commands::{open_store, parse_filter};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{count, light_table, print_json, thousands};

/// The fewest characters of an id a table shows.
const MIN_ID: usize = 8;
/// The narrowest the name column gets before optional columns are left out.
const MIN_NAME: usize = 18;

pub fn run(args: ListArgs, config: &Config) -> Result<(), CliError> {
    let filter = parse_filter(&args.filter)?;
    let store = open_store(config)?;
    let states = store.sync_states()?;
    let found = match &args.search {
        Some(text) => Some(store.find(text)?),
        None => None,
    };
    let mut ids = Vec::new();
    let mut views: Vec<StoredView> = Vec::new();
    for v in store.views() {
        let v = v?;
        ids.push(v.family.id);
        let pending = states.of(v.family.id) != SyncState::Sent;
        if (args.deleted || v.lifecycle == Lifecycle::Active)
            && (!args.pending || pending)
            && filter.matches(&v.family.fields)
        {
            views.push(v);
        }
    }
    let ranked = found.map(|found| rank(views.clone(), &found));
    let views = match &ranked {
        Some(r) => r.iter().map(|(v, _)| v.clone()).collect(),
        None => views,
    };
    if args.json {
        return print_json(&records(&views, args.deleted));
    }
    let prefixes = ShortIds::new(ids);
    print_table(config, &views, &states, &prefixes, args.wide);
    Ok(())
}

/// `returnee find TEXT`: `list --search TEXT` with its own JSON.
pub fn find(args: FindArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let found = store.find(&args.text)?;
    let states = store.sync_states()?;
    let ids: Vec<_> = found.iter().map(|f| f.id).collect();
    let views: Vec<_> = store.get_many(&ids)?.into_iter().flatten().collect();
    let ranked = rank(views, &found);
    if args.json {
        let out: Vec<serde_json::Value> = ranked
            .iter()
            .map(|(v, f)| {
                let mut j = serde_json::to_value(&v.family).expect("family serializes");
                j["score"] = ((f.score * 1000.0).round() / 1000.0).into();
                j["matched"] = if f.by_document { "document" } else { "name" }.into();
                j["sync"] = sync_json(states.of(v.family.id)).into();
                j
            })
            .collect();
        return print_json(&out);
    }
    if ranked.is_empty() {
        println!(
            "no family matches '{}' (names are compared with other spellings; a document number must be whole)",
            args.text
        );
        return Ok(());
    }
    let views: Vec<StoredView> = ranked.into_iter().map(|(v, _)| v).collect();
    let ids: Vec<RecordId> = store.record_ids().collect::<Result<_, _>>()?;
    print_table(config, &views, &states, &ShortIds::new(ids), args.wide);
    Ok(())
}

/// The views that were found, in the order found (best first).
fn rank(views: Vec<StoredView>, found: &[Found]) -> Vec<(StoredView, Found)> {
    let mut by_id: std::collections::HashMap<RecordId, StoredView> =
        views.into_iter().map(|v| (v.family.id, v)).collect();
    found
        .iter()
        .filter_map(|f| by_id.remove(&f.id).map(|v| (v, f.clone())))
        .collect()
}

/// A sync state as JSON spells it.
pub fn sync_json(s: SyncState) -> &'static str {
    match s {
        SyncState::SavedHereOnly => "saved-here-only",
        SyncState::Refused => "refused",
        SyncState::Sent => "sent",
    }
}

fn records(views: &[StoredView], deleted: bool) -> Vec<serde_json::Value> {
    views
        .iter()
        .map(|v| {
            let mut j = serde_json::to_value(&v.family).expect("family serializes");
            if deleted {
                j["deleted"] = (v.lifecycle == Lifecycle::Deleted).into();
                if let Some(into) = v.lifecycle.merged_into() {
                    j["merged_into"] = into.to_string().into();
                }
            }
            j
        })
        .collect()
}

/// The shortest prefix of each id (at least [`MIN_ID`] characters) that no
/// other id of the store starts with.
pub struct ShortIds(std::collections::HashMap<RecordId, usize>);

impl ShortIds {
    /// From every id of the store.
    pub fn new(mut ids: Vec<RecordId>) -> ShortIds {
        ids.sort();
        let text: Vec<String> = ids.iter().map(|i| i.0.simple().to_string()).collect();
        let common =
            |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let before = i.checked_sub(1).map_or(0, |j| common(&text[j], &text[i]));
            let after = text.get(i + 1).map_or(0, |n| common(n, &text[i]));
            out.insert(*id, (before.max(after) + 1).clamp(MIN_ID, 32));
        }
        ShortIds(out)
    }

    /// The id as a table shows it.
    pub fn of(&self, id: RecordId) -> String {
        let s = id.0.simple().to_string();
        let n = self.0.get(&id).copied().unwrap_or(32);
        s[..n].to_string()
    }
}

/// A column of the table: its header and each row's text.
struct Column {
    header: &'static str,
    right: bool,
    cells: Vec<String>,
}

impl Column {
    fn new(header: &'static str, right: bool, cells: Vec<String>) -> Column {
        Column {
            header,
            right,
            cells,
        }
    }
    fn width(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.chars().count())
            .chain([self.header.len()])
            .max()
            .unwrap_or(0)
    }
}

fn print_table(
    config: &Config,
    views: &[StoredView],
    states: &SyncStates,
    short: &ShortIds,
    wide: bool,
) {
    let col = |header, right, f: &dyn Fn(&StoredView) -> String| {
        Column::new(header, right, views.iter().map(f).collect())
    };
    let id = col("id", false, &|v| {
        if wide {
            v.family.id.to_string()
        } else {
            short.of(v.family.id)
        }
    });
    let date = col("date", false, &|v| v.family.fields.crossed_on.to_string());
    let crossing = col("crossing", false, &|v| v.family.fields.crossing.clone());
    let size = col("size", true, &|v| {
        thousands(v.family.fields.members.individuals())
    });
    let mwc = col("m/w/c", true, &|v| {
        let m = &v.family.fields.members;
        format!("{}/{}/{}", m.men(), m.women(), m.children())
    });
    let sync = col("sync", false, &|v| state_word(v, states.of(v.family.id)));
    let optional = [
        col("return", false, &|v| {
            v.family.fields.return_type.to_string()
        }),
        col("route", false, &|v| {
            format!(
                "{}→{}",
                v.family.fields.departure_province, v.family.fields.destination_province
            )
        }),
        col("doc", false, &|v| {
            v.family
                .fields
                .doc_number
                .as_deref()
                .map(mask_doc)
                .unwrap_or_default()
        }),
        col("note", false, &|v| note(v)),
    ];
    let names: Vec<String> = views
        .iter()
        .map(|v| {
            v.family
                .fields
                .head_name
                .clone()
                .unwrap_or_else(|| "—".into())
        })
        .collect();

    let mut columns = vec![id, date, crossing];
    let mut tail = vec![size, mwc, sync];
    let limit = if wide { None } else { config.columns };
    let used = |cols: &[&Column]| cols.iter().map(|c| c.width() + 2).sum::<usize>();
    let mut extra = Vec::new();
    for c in optional {
        if c.cells.iter().all(String::is_empty) {
            continue;
        }
        let mut all: Vec<&Column> = columns.iter().chain(&tail).chain(&extra).collect();
        all.push(&c);
        if limit.is_none_or(|w| used(&all) + MIN_NAME <= w as usize) {
            extra.push(c);
        }
    }
    tail.extend(extra);
    let name_room = limit.map(|w| {
        let all: Vec<&Column> = columns.iter().chain(&tail).collect();
        (w as usize).saturating_sub(used(&all)).max(4)
    });
    let names = names
        .into_iter()
        .map(|n| match name_room {
            Some(room) if n.chars().count() > room => {
                format!("{}…", n.chars().take(room - 1).collect::<String>())
            }
            _ => n,
        })
        .collect();
    columns.push(Column::new("name", false, names));
    columns.extend(tail);

    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    let mut t = light_table(&headers);
    for row in 0..views.len() {
        t.add_row(columns.iter().map(|c| {
            let cell = Cell::new(&c.cells[row]);
            if c.right {
                cell.set_alignment(CellAlignment::Right)
            } else {
                cell
            }
        }));
    }
    if !views.is_empty() {
        for line in t.lines() {
            println!("{}", line.trim_end());
        }
    }
    println!("{}", count(views.len() as u64, "family", "families"));
}

/// The sync column: where the family stands, and what else a person must know.
fn state_word(v: &StoredView, s: SyncState) -> String {
    let mut words = vec![
        match s {
            SyncState::SavedHereOnly => "here only",
            SyncState::Refused => "REFUSED",
            SyncState::Sent => "sent",
        }
        .to_string(),
    ];
    if v.lifecycle == Lifecycle::Deleted {
        words.push("deleted".into());
    } else if v.lifecycle.merged_into().is_some() {
        words.push("merged".into());
    }
    if !v.conflicts.is_empty() {
        words.push("conflict".into());
    }
    words.join(", ")
}

fn note(v: &StoredView) -> String {
    let mut note = Vec::new();
    if let Some(into) = v.lifecycle.merged_into() {
        note.push(format!(
            "merged into {}",
            &into.0.simple().to_string()[..MIN_ID]
        ));
    }
    if !v.conflicts.is_empty() {
        note.push(count(v.conflicts.len() as u64, "conflict", "conflicts"));
    }
    note.join(", ")
}

/// A document number as human tables show it: `…` and its last 4
/// characters (all of it hidden when it has 4 or fewer).
pub fn mask_doc(number: &str) -> String {
    returnee_shared::report::records::mask(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_document_number_shows_only_its_last_four_characters() {
        assert_eq!(mask_doc("PK-1234-567890"), "…7890");
        assert_eq!(mask_doc("AB12345"), "…2345");
        assert_eq!(mask_doc("1234"), "…");
        assert_eq!(mask_doc("ذ٤٥٦٧٨٩"), "…٦٧٨٩");
    }

    #[test]
    fn short_ids_are_the_shortest_unique_prefixes_of_at_least_eight() {
        let id = |s: &str| RecordId(s.parse().unwrap());
        let a = id("01a24421-f6ef-730d-93ec-7cd1f02dc629");
        let b = id("01a24421-f6ff-7640-8262-38c3cdaa0718");
        let c = id("99a24421-f6ff-7640-8262-38c3cdaa0718");
        let s = ShortIds::new(vec![c, a, b]);
        assert_eq!(s.of(a), "01a24421f6e");
        assert_eq!(s.of(b), "01a24421f6f");
        assert_eq!(s.of(c), "99a24421");
    }
}
