//! The interactive form `returnee add` shows on a terminal: it asks for each
//! field, shows the allowed values, and asks again until the value is valid.

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

fn select(prompt: &str, items: &[String], default: usize) -> Result<usize, CliError> {
    Select::new()
        .with_prompt(prompt)
        .items(items)
        .default(default)
        .interact()
        .map_err(io)
}

fn text(prompt: &str, optional: bool) -> Result<Option<String>, CliError> {
    let v: String = Input::new()
        .with_prompt(prompt)
        .allow_empty(optional)
        .interact_text()
        .map_err(io)?;
    Ok((!v.trim().is_empty()).then_some(v))
}

/// Asks for every field and returns a valid family.
pub fn ask(today: NaiveDate) -> Result<FamilyFields, CliError> {
    loop {
        let mut d = FamilyDraft::default();
        let cs: Vec<String> = crossings()
            .iter()
            .map(|c| format!("{} ({})", c.entry.code, c.entry.name))
            .collect();
        d.crossing = Some(crossings()[select("Crossing", &cs, 0)?].entry.code.clone());
        let date: String = Input::new()
            .with_prompt("Date of crossing (YYYY-MM-DD)")
            .default(today.to_string())
            .validate_with(|s: &String| {
                parse_date_only("date", s)
                    .map(|_| ())
                    .map_err(|p| p.message)
            })
            .interact_text()
            .map_err(io)?;
        d.crossed_on = Some(date);
        let rts: Vec<String> = ReturnType::ALL.iter().map(|t| t.to_string()).collect();
        d.return_type = Some(rts[select("Return type", &rts, 0)?].clone());
        let mut deps: Vec<String> = pk_provinces()
            .iter()
            .map(|p| format!("{} ({})", p.code, p.name))
            .collect();
        deps.push("unknown".into());
        let i = select("Province of departure (Pakistan)", &deps, 0)?;
        d.departure_province = Some(
            pk_provinces()
                .get(i)
                .map_or("unknown".into(), |p| p.code.clone()),
        );
        let mut dests: Vec<String> = af_provinces()
            .iter()
            .map(|p| format!("{} ({})", p.code, p.name))
            .collect();
        dests.push("undecided".into());
        let i = select("Province of destination (Afghanistan)", &dests, 0)?;
        d.destination_province = Some(
            af_provinces()
                .get(i)
                .map_or("undecided".into(), |p| p.code.clone()),
        );
        for (slot, who) in [(&mut d.males, "Males"), (&mut d.females, "Females")] {
            let v: String = Input::new()
                .with_prompt(format!("{who} aged 0-4,5-11,12-17,18-59,60+"))
                .default("0,0,0,0,0".into())
                .validate_with(|s: &String| {
                    parse_counts("counts", s).map(|_| ()).map_err(|p| p.message)
                })
                .interact_text()
                .map_err(io)?;
            *slot = Some(v);
        }
        let sexes = ["not recorded".to_string(), "m".into(), "f".into()];
        let i = select("Sex of the head of household", &sexes, 0)?;
        d.head_sex = (i > 0).then(|| sexes[i].clone());
        let consent = Confirm::new()
            .with_prompt("Did the family consent to their name and document number being stored?")
            .default(false)
            .interact()
            .map_err(io)?;
        d.consent = Some(if consent { "yes" } else { "no" }.into());
        let docs: Vec<String> = DocType::ALL.iter().map(|t| t.to_string()).collect();
        let i = select("Document shown by the head", &docs, docs.len() - 1)?;
        d.doc_type = Some(docs[i].clone());
        if consent {
            d.head_name = text("Name of the head of household (optional)", true)?;
            if DocType::ALL[i] != DocType::None {
                d.doc_number = text("Document number (optional)", true)?;
            }
        }
        let vs: Vec<String> = Vulnerability::ALL.iter().map(|v| v.to_string()).collect();
        d.vulnerabilities = MultiSelect::new()
            .with_prompt("Vulnerabilities (space to choose, enter to go on)")
            .items(&vs)
            .interact()
            .map_err(io)?
            .into_iter()
            .map(|i| vs[i].clone())
            .collect();
        let ds: Vec<String> = Documentation::ALL.iter().map(|v| v.to_string()).collect();
        d.documentation = MultiSelect::new()
            .with_prompt("Documentation held (space to choose, enter to go on)")
            .items(&ds)
            .interact()
            .map_err(io)?
            .into_iter()
            .map(|i| ds[i].clone())
            .collect();
        let mut rs: Vec<String> = vec!["none".into()];
        rs.extend(Referral::ALL.iter().map(|r| r.to_string()));
        let i = select("Protection referral", &rs, 0)?;
        d.protection_referral = (i > 0).then(|| rs[i].clone());
        d.notes = text("Notes (optional, at most 500 characters)", true)?;
        match d.build(today) {
            Ok(f) => return Ok(f),
            Err(e) => {
                eprintln!("{e}");
                eprintln!("Let's go through the form again.");
            }
        }
    }
}
