//! `returnee add`: record a family, from flags or an interactive form.

use crate::cli::AddArgs;
use crate::commands::{Access, form, now, open_store, today};
use crate::config::Config;
use crate::error::CliError;
use crate::output::print_json;

pub fn run(args: AddArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let fields = if config.interactive && args.fields.lacks_all_required() {
        let sites = store.enrollment()?.map(|e| e.sites).unwrap_or_default();
        form::ask(today(), &sites)?
    } else {
        args.fields.to_draft().build(today())?
    };
    if let Some(p) = Access::of(&store)?.crossing_problem(&fields.crossing) {
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
