//! The interactive form `returnee add` shows on a terminal: it asks for each
//! field, shows the allowed values, and checks each answer as it is typed.
//! A laptop enrolled for some sites is offered only those (one site: not
//! asked); departure and destination default to the crossing's provinces
//! and filter as one types. If the whole family breaks a rule (say,
//! female-headed with a male head), it says why and asks again only the
//! fields at fault. Ctrl-C ends it, the cursor shown, nothing saved.

use chrono::NaiveDate;
use std::collections::BTreeSet;

use dialoguer::{Confirm, FuzzySelect, Input, MultiSelect, Select};
use returnee_shared::reference::{Entry, af_provinces, crossings, departure_provinces};
use returnee_shared::validate::{parse_counts, parse_date_only};
use returnee_shared::{
    DocType, Documentation, FamilyDraft, FamilyFields, Referral, ReturnType, Vulnerability,
};

use crate::error::CliError;

/// A terminal error; Ctrl-C (read as a key while a list is shown) ends
/// the form with the cursor shown again and nothing saved.
fn io(e: dialoguer::Error) -> CliError {
    let dialoguer::Error::IO(e) = e;
    // dialoguer hides the cursor while a list is shown.
    eprint!("\x1b[?25h");
    if e.kind() == std::io::ErrorKind::Interrupted {
        return CliError::Cancelled;
    }
    CliError::Other(format!("the form could not read the terminal: {e}"))
}

/// Asks to choose one of `items`, filtered as the person types.
fn choose_filtered(
    prompt: &str,
    items: &[String],
    values: &[String],
    previous: Option<&str>,
) -> Result<String, CliError> {
    let at = previous
        .and_then(|p| values.iter().position(|v| v == p))
        .unwrap_or(0);
    let i = FuzzySelect::new()
        .with_prompt(prompt)
        .items(items)
        .default(at)
        .max_length(8)
        .interact()
        .map_err(io)?;
    Ok(values[i].clone())
}

/// Asks to choose one of `items` (shown) standing for `values` (stored).
fn choose(
    prompt: &str,
    items: &[String],
    values: &[String],
    previous: Option<&str>,
    default: usize,
) -> Result<String, CliError> {
    let at = previous
        .and_then(|p| values.iter().position(|v| v == p))
        .unwrap_or(default);
    let i = Select::new()
        .with_prompt(prompt)
        .items(items)
        .default(at)
        .interact()
        .map_err(io)?;
    Ok(values[i].clone())
}

fn choose_many(
    prompt: &str,
    values: &[String],
    previous: &[String],
) -> Result<Vec<String>, CliError> {
    let chosen: Vec<bool> = values.iter().map(|v| previous.contains(v)).collect();
    Ok(MultiSelect::new()
        .with_prompt(prompt)
        .items(values)
        .defaults(&chosen)
        .interact()
        .map_err(io)?
        .into_iter()
        .map(|i| values[i].clone())
        .collect())
}

fn text(prompt: &str, previous: Option<&str>) -> Result<Option<String>, CliError> {
    let mut input = Input::<String>::new().with_prompt(prompt).allow_empty(true);
    if let Some(p) = previous {
        input = input.default(p.to_string());
    }
    let v = input.interact_text().map_err(io)?;
    Ok((!v.trim().is_empty()).then_some(v))
}

fn checked(
    prompt: &str,
    default: String,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<String, CliError> {
    Input::new()
        .with_prompt(prompt)
        .default(default)
        .validate_with(|s: &String| check(s))
        .interact_text()
        .map_err(io)
}

/// The items of a list (`CODE (Name)`) and the codes they stand for.
fn labelled<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> (Vec<String>, Vec<String>) {
    entries
        .into_iter()
        .map(|e| (format!("{} ({})", e.code, e.name), e.code.clone()))
        .unzip()
}

/// [`labelled`], then each entry's other spellings as `Alias → Name
/// (CODE)`: in a list filtered as the person types, the name on a
/// family's papers (`KPK`, `Hilmand`) finds its province.
fn labelled_with_aliases(entries: &[Entry]) -> (Vec<String>, Vec<String>) {
    let (mut items, mut codes) = labelled(entries);
    for e in entries {
        for a in &e.aliases {
            items.push(format!("{a} → {} ({})", e.name, e.code));
            codes.push(e.code.clone());
        }
    }
    (items, codes)
}

/// The crossings this laptop may record at: its sites, or every crossing
/// when it has none (not enrolled, or a supervisor of every site).
fn offered_crossings(sites: &[String]) -> Vec<&'static returnee_shared::reference::Crossing> {
    crossings()
        .iter()
        .filter(|c| c.active && (sites.is_empty() || sites.contains(&c.entry.code)))
        .collect()
}

/// Asks for every field and returns a valid family. After a family-wide
/// rule is broken, asks again only the fields at fault.
pub fn ask(today: NaiveDate, sites: &[String]) -> Result<FamilyFields, CliError> {
    // Ctrl-C between two keys a list reads (the terminal is not raw then)
    // is a signal: show the cursor dialoguer hid, and stop. Nothing is
    // saved before the last answer, so there is nothing to undo.
    let _ = ctrlc::set_handler(|| {
        eprintln!("\x1b[?25h\ncancelled: nothing was saved");
        std::process::exit(130);
    });
    let mut d = FamilyDraft::default();
    // `None`: the first pass, every field is asked.
    let mut faulty: Option<BTreeSet<String>> = None;
    loop {
        let asks = |fields: &[&str]| {
            faulty
                .as_ref()
                .is_none_or(|f| fields.iter().any(|x| f.contains(*x)))
        };
        if asks(&["crossing"]) {
            let offered = offered_crossings(sites);
            d.crossing = Some(match offered.as_slice() {
                [only] => {
                    eprintln!("Crossing: {} (this laptop's site)", only.entry.code);
                    only.entry.code.clone()
                }
                _ => {
                    let (items, codes) = labelled(offered.iter().map(|c| &c.entry));
                    choose("Crossing", &items, &codes, d.crossing.as_deref(), 0)?
                }
            });
        }
        let crossing = d
            .crossing
            .as_deref()
            .and_then(returnee_shared::reference::crossing);
        if asks(&["crossed_on"]) {
            d.crossed_on = Some(checked(
                "Date of crossing (YYYY-MM-DD)",
                d.crossed_on.clone().unwrap_or_else(|| today.to_string()),
                |s| {
                    parse_date_only("date", s)
                        .map(|_| ())
                        .map_err(|p| p.message)
                },
            )?);
        }
        if asks(&["return_type"]) {
            let rts: Vec<String> = ReturnType::ALL.iter().map(|t| t.to_string()).collect();
            d.return_type = Some(choose(
                "Return type",
                &rts,
                &rts,
                d.return_type.as_deref(),
                0,
            )?);
        }
        if asks(&["departure_province"]) {
            let (mut items, mut codes) = labelled_with_aliases(departure_provinces());
            items.push("unknown".into());
            codes.push("unknown".into());
            let near = crossing.map(|c| c.pk_province.clone());
            d.departure_province = Some(choose_filtered(
                "Province of departure (Pakistan or Iran; type to filter)",
                &items,
                &codes,
                d.departure_province.as_deref().or(near.as_deref()),
            )?);
        }
        if asks(&["destination_province"]) {
            let (mut items, mut codes) = labelled_with_aliases(af_provinces());
            items.push("undecided".into());
            codes.push("undecided".into());
            let near = crossing.map(|c| c.af_province.clone());
            d.destination_province = Some(choose_filtered(
                "Province of destination (Afghanistan; type to filter)",
                &items,
                &codes,
                d.destination_province.as_deref().or(near.as_deref()),
            )?);
        }
        if asks(&["males", "females", "members"]) {
            let (males, females) = (d.males.clone(), d.females.clone());
            for (slot, old, who) in [
                (&mut d.males, males, "Males"),
                (&mut d.females, females, "Females"),
            ] {
                *slot = Some(checked(
                    &format!("{who} aged 0-4,5-11,12-17,18-59,60+"),
                    old.unwrap_or_else(|| "0,0,0,0,0".into()),
                    |s| parse_counts("counts", s).map(|_| ()).map_err(|p| p.message),
                )?);
            }
        }
        if asks(&["head_sex"]) {
            let sexes = ["not recorded".to_string(), "m".into(), "f".into()];
            let sex = choose(
                "Sex of the head of household",
                &sexes,
                &sexes,
                d.head_sex.as_deref(),
                0,
            )?;
            d.head_sex = (sex != sexes[0]).then_some(sex);
        }
        if asks(&["consent", "head_name", "doc_type", "doc_number"]) {
            let consent = Confirm::new()
                .with_prompt(
                    "Did the family consent to their name and document number being stored?",
                )
                .default(d.consent.as_deref() == Some("yes"))
                .interact()
                .map_err(io)?;
            d.consent = Some(if consent { "yes" } else { "no" }.into());
            let docs: Vec<String> = DocType::ALL.iter().map(|t| t.to_string()).collect();
            let doc = choose(
                "Document shown by the head",
                &docs,
                &docs,
                d.doc_type.as_deref(),
                docs.len() - 1,
            )?;
            if consent {
                d.head_name = text(
                    "Name of the head of household (optional)",
                    d.head_name.as_deref(),
                )?;
                d.doc_number = if doc != DocType::None.as_str() {
                    text("Document number (optional)", d.doc_number.as_deref())?
                } else {
                    None
                };
            } else {
                d.head_name = None;
                d.doc_number = None;
            }
            d.doc_type = Some(doc);
        }
        if asks(&["vulnerabilities"]) {
            let vs: Vec<String> = Vulnerability::ALL.iter().map(|v| v.to_string()).collect();
            d.vulnerabilities = choose_many(
                "Vulnerabilities (space to choose, enter to go on)",
                &vs,
                &d.vulnerabilities,
            )?;
        }
        if asks(&["documentation"]) {
            let ds: Vec<String> = Documentation::ALL.iter().map(|v| v.to_string()).collect();
            d.documentation = choose_many(
                "Documentation held (space to choose, enter to go on)",
                &ds,
                &d.documentation,
            )?;
        }
        if asks(&["protection_referral"]) {
            let mut rs: Vec<String> = vec!["none".into()];
            rs.extend(Referral::ALL.iter().map(|r| r.to_string()));
            let referral = choose(
                "Protection referral",
                &rs,
                &rs,
                d.protection_referral.as_deref(),
                0,
            )?;
            d.protection_referral = (referral != "none").then_some(referral);
        }
        if asks(&["notes"]) {
            d.notes = text(
                "Notes (optional, at most 500 characters)",
                d.notes.as_deref(),
            )?;
        }
        match d.clone().build(today) {
            Ok(f) => return Ok(f),
            Err(e) => {
                eprintln!("{e}");
                eprintln!(
                    "Please correct {}: the other answers are kept.",
                    if e.problems.len() == 1 { "it" } else { "them" }
                );
                faulty = Some(e.problems.iter().map(|p| p.field.clone()).collect());
            }
        }
    }
}
