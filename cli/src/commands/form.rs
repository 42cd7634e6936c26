//! The interactive form `returnee add` shows on a terminal: it asks for each
//! field, shows the allowed values, and checks each answer as it is typed.
//! If the whole family breaks a rule (say, female-headed with a male head),
//! it says why and asks again with every earlier answer as the default, so
//! nothing typed has to be typed twice.

use chrono::NaiveDate;
use dialoguer::{Confirm, Input, MultiSelect, Select};
use returnee_shared::reference::{af_provinces, crossings, pk_provinces};
use returnee_shared::validate::{parse_counts, parse_date_only};
use returnee_shared::{
    DocType, Documentation, FamilyDraft, FamilyFields, Referral, ReturnType, Vulnerability,
};

use crate::error::CliError;

fn io(e: dialoguer::Error) -> CliError {
    CliError::Other(format!("the form could not read the terminal: {e}"))
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

fn labelled<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> (Vec<String>, Vec<String>) {
    entries
        .map(|(code, name)| (format!("{code} ({name})"), code.to_string()))
        .unzip()
}

/// Asks for every field and returns a valid family.
pub fn ask(today: NaiveDate) -> Result<FamilyFields, CliError> {
    let mut prev = FamilyDraft::default();
    loop {
        let mut d = FamilyDraft::default();
        let (items, codes) = labelled(
            crossings()
                .iter()
                .map(|c| (c.entry.code.as_str(), c.entry.name.as_str())),
        );
        d.crossing = Some(choose(
            "Crossing",
            &items,
            &codes,
            prev.crossing.as_deref(),
            0,
        )?);
        d.crossed_on = Some(checked(
            "Date of crossing (YYYY-MM-DD)",
            prev.crossed_on.clone().unwrap_or_else(|| today.to_string()),
            |s| {
                parse_date_only("date", s)
                    .map(|_| ())
                    .map_err(|p| p.message)
            },
        )?);
        let rts: Vec<String> = ReturnType::ALL.iter().map(|t| t.to_string()).collect();
        d.return_type = Some(choose(
            "Return type",
            &rts,
            &rts,
            prev.return_type.as_deref(),
            0,
        )?);
        let (mut items, mut codes) = labelled(
            pk_provinces()
                .iter()
                .map(|p| (p.code.as_str(), p.name.as_str())),
        );
        items.push("unknown".into());
        codes.push("unknown".into());
        d.departure_province = Some(choose(
            "Province of departure (Pakistan)",
            &items,
            &codes,
            prev.departure_province.as_deref(),
            0,
        )?);
        let (mut items, mut codes) = labelled(
            af_provinces()
                .iter()
                .map(|p| (p.code.as_str(), p.name.as_str())),
        );
        items.push("undecided".into());
        codes.push("undecided".into());
        d.destination_province = Some(choose(
            "Province of destination (Afghanistan)",
            &items,
            &codes,
            prev.destination_province.as_deref(),
            0,
        )?);
        for (slot, old, who) in [
            (&mut d.males, &prev.males, "Males"),
            (&mut d.females, &prev.females, "Females"),
        ] {
            *slot = Some(checked(
                &format!("{who} aged 0-4,5-11,12-17,18-59,60+"),
                old.clone().unwrap_or_else(|| "0,0,0,0,0".into()),
                |s| parse_counts("counts", s).map(|_| ()).map_err(|p| p.message),
            )?);
        }
        let sexes = ["not recorded".to_string(), "m".into(), "f".into()];
        let sex = choose(
            "Sex of the head of household",
            &sexes,
            &sexes,
            prev.head_sex.as_deref(),
            0,
        )?;
        d.head_sex = (sex != sexes[0]).then_some(sex);
        let consent = Confirm::new()
            .with_prompt("Did the family consent to their name and document number being stored?")
            .default(prev.consent.as_deref() == Some("yes"))
            .interact()
            .map_err(io)?;
        d.consent = Some(if consent { "yes" } else { "no" }.into());
        let docs: Vec<String> = DocType::ALL.iter().map(|t| t.to_string()).collect();
        let doc = choose(
            "Document shown by the head",
            &docs,
            &docs,
            prev.doc_type.as_deref(),
            docs.len() - 1,
        )?;
        if consent {
            d.head_name = text(
                "Name of the head of household (optional)",
                prev.head_name.as_deref(),
            )?;
            if doc != DocType::None.as_str() {
                d.doc_number = text("Document number (optional)", prev.doc_number.as_deref())?;
            }
        }
        d.doc_type = Some(doc);
        let vs: Vec<String> = Vulnerability::ALL.iter().map(|v| v.to_string()).collect();
        d.vulnerabilities = choose_many(
            "Vulnerabilities (space to choose, enter to go on)",
            &vs,
            &prev.vulnerabilities,
        )?;
        let ds: Vec<String> = Documentation::ALL.iter().map(|v| v.to_string()).collect();
        d.documentation = choose_many(
            "Documentation held (space to choose, enter to go on)",
            &ds,
            &prev.documentation,
        )?;
        let mut rs: Vec<String> = vec!["none".into()];
        rs.extend(Referral::ALL.iter().map(|r| r.to_string()));
        let referral = choose(
            "Protection referral",
            &rs,
            &rs,
            prev.protection_referral.as_deref(),
            0,
        )?;
        d.protection_referral = (referral != "none").then_some(referral);
        d.notes = text(
            "Notes (optional, at most 500 characters)",
            prev.notes.as_deref(),
        )?;
        match d.build(today) {
            Ok(f) => return Ok(f),
            Err(e) => {
                eprintln!("{e}");
                eprintln!("Please correct it: your answers are kept, press enter to keep one.");
                prev = d;
            }
        }
    }
}
