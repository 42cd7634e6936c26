//! `returnee delete`: delete a family, keeping a tombstone for sync. On a
//! terminal it shows the family and asks first (`--yes` does not ask).

use returnee_shared::merge::Lifecycle;

use crate::cli::DeleteArgs;
use crate::commands::{confirm, now, open_store};
use crate::config::Config;
use crate::error::CliError;

pub fn run(args: DeleteArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let id = store.resolve_id(&args.id)?;
    if let Some(view) = store.get(id)? {
        if view.lifecycle == Lifecycle::Deleted {
            return Err(CliError::Usage(format!(
                "family {id} is deleted already; to bring it back: `returnee restore {id}`"
            )));
        }
        let f = &view.family.fields;
        let question = format!(
            "Delete the family of {} ({} people, {} at {})?",
            f.head_name.as_deref().unwrap_or("an unnamed head"),
            f.members.individuals(),
            f.crossed_on,
            f.crossing
        );
        if !confirm(config, args.yes, &question)? {
            println!("{id}: not deleted");
            return Ok(());
        }
    }
    store.delete(id, now())?;
    println!("{id}: deleted (`returnee restore {id}` undoes it)");
    Ok(())
}
