//! `returnee add`: record a family, from flags or an interactive form.

use crate::cli::AddArgs;
use crate::commands::{Access, form, now, open_store, today};
use crate::config::Config;
use crate::error::CliError;
use crate::output::print_json;
use returnee_shared::reference;
use returnee_store::laptop::LocalStore;

pub fn run(args: AddArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let provisional = match (&args.fields.crossing, args.new_crossing) {
        (Some(code), true) => accept_new_crossing(&store, code.trim())?,
        (None, true) => {
            return Err(CliError::Usage(
                "--new-crossing needs --crossing CODE (the new crossing's code)".into(),
            ));
        }
        _ => false,
    };
    let fields = if config.interactive && args.fields.lacks_all_required() {
        let sites = store.enrollment()?.map(|e| e.sites).unwrap_or_default();
        form::ask(today(), &sites)?
    } else {
        args.fields.to_draft().build(today())?
    };
    // At a crossing not learnt yet the server checks the sites.
    if let Some(p) = Access::of(&store)?
        .crossing_problem(&fields.crossing)
        .filter(|_| !provisional)
    {
        return Err(returnee_shared::ValidationError { problems: vec![p] }.into());
    }
    let id = store.add(fields, now())?;
    crate::commands::duplicates::warn_added(&store, id)?;
    if args.json {
        let view = store
            .get(id)?
            .ok_or_else(|| CliError::Other("saved family not found".into()))?;
        print_json(&view.family)?;
    } else {
        println!("{id}");
    }
    Ok(())
}

/// `--new-crossing`: a code this laptop does not list is accepted for now
/// (remembered, so later commands read the family), with a warning; a
/// listed one needs nothing. Whether it is provisional.
fn accept_new_crossing(store: &LocalStore, code: &str) -> Result<bool, CliError> {
    if reference::crossing(code).is_some_and(|c| !reference::is_provisional(&c.entry.code)) {
        return Ok(false);
    }
    if !reference::is_crossing_code(code) {
        return Err(CliError::Usage(format!(
            "--new-crossing: '{code}' is not a crossing code; give the code the admin added (lower-case letters, digits and dashes, such as islam-qala)"
        )));
    }
    store.add_provisional_crossing(code)?;
    crate::commands::install_crossings(store, true)?;
    eprintln!(
        "warning: '{code}' is not a crossing this laptop has learnt yet; the family is saved here and sent at the next sync, which also learns the crossing. If the server does not list '{code}' either, it refuses the family and `returnee refused` keeps it until an admin adds the crossing (`returnee refused retry --all` then)"
    );
    Ok(true)
}
