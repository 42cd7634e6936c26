//! `returnee edit`: change some fields of a family. Only the fields given
//! change; on sync they merge with other devices' edits field by field.

use returnee_shared::{FieldName, FieldValue, Problem, ValidationError};

use crate::cli::EditArgs;
use crate::commands::{Access, now, open_store, today};
use crate::config::Config;
use crate::error::CliError;

fn sets(values: &[String]) -> Option<String> {
    if values.is_empty() {
        None
    } else if values.iter().all(|v| v.trim().eq_ignore_ascii_case("none")) {
        Some(String::new())
    } else {
        Some(values.join(";"))
    }
}

pub fn run(args: EditArgs, config: &Config) -> Result<(), CliError> {
    let f = &args.fields;
    let members = match (&f.males, &f.females) {
        (None, None) => None,
        (m, fe) => Some((m.clone(), fe.clone())),
    };
    let consent = if f.consent {
        Some("yes".to_string())
    } else if args.no_consent {
        Some("no".to_string())
    } else {
        None
    };
    let given: Vec<(FieldName, Option<String>)> = vec![
        (FieldName::Crossing, f.crossing.clone()),
        (FieldName::CrossedOn, f.date.clone()),
        (FieldName::ReturnType, f.return_type.clone()),
        (FieldName::DepartureProvince, f.departure.clone()),
        (FieldName::DestinationProvince, f.destination.clone()),
        (FieldName::HeadName, f.head_name.clone()),
        (FieldName::HeadSex, f.head_sex.clone()),
        (FieldName::DocType, f.doc_type.clone()),
        (FieldName::DocNumber, f.doc_number.clone()),
        (FieldName::Consent, consent),
        (FieldName::Vulnerabilities, sets(&f.vulnerabilities)),
        (FieldName::Documentation, sets(&f.documentation)),
        (FieldName::ProtectionReferral, f.referral.clone()),
        (FieldName::Notes, f.notes.clone()),
    ];
    let mut problems = Vec::new();
    let mut values = Vec::new();
    for (name, text) in given {
        if let Some(text) = text {
            match FieldValue::parse(name, &text) {
                Ok(v) => values.push(v),
                Err(p) => problems.push(p),
            }
        }
    }
    let store = open_store(config)?;
    let access = Access::of(&store)?;
    for v in &values {
        if let FieldValue::Crossing(c) = v
            && let Some(p) = access.crossing_problem(c)
        {
            problems.push(p);
        }
    }
    let id = store.resolve_id(&args.id)?;
    if let Some((males, females)) = members {
        let current = store
            .get(id)?
            .ok_or_else(|| returnee_store::laptop::StoreError::NotFound(args.id.clone()))?
            .family
            .fields
            .members;
        let mut m = current;
        for (text, slot, name) in [
            (males, &mut m.males, "males"),
            (females, &mut m.females, "females"),
        ] {
            if let Some(text) = text {
                match returnee_shared::validate::parse_counts(name, &text) {
                    Ok(c) => *slot = c,
                    Err(p) => problems.push(p),
                }
            }
        }
        values.push(FieldValue::Members(m));
    }
    if !problems.is_empty() {
        return Err(ValidationError { problems }.into());
    }
    if values.is_empty() {
        return Err(CliError::Invalid(ValidationError {
            problems: vec![Problem::new(
                "edit",
                "nothing to change; give at least one field flag, e.g. --notes TEXT (see returnee edit --help)",
            )],
        }));
    }
    let changed = store.edit(id, values, today(), now())?;
    if changed.is_empty() {
        println!("{id}: nothing changed (the values were already so)");
    } else {
        let names: Vec<&str> = changed.iter().map(|f| f.as_str()).collect();
        println!("{id}: changed {}", names.join(", "));
    }
    Ok(())
}
