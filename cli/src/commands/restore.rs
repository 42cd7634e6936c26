//! `returnee restore`: undo a delete. The family counts again, here and,
//! once synced, everywhere. Any device undoes its own delete; keeping a
//! family another device deleted is a decision on its lifecycle (a
//! supervisor's or an admin's), so a field laptop is refused that here,
//! before anything is saved, in the policy's words.

use returnee_shared::access::Action;
use returnee_shared::merge::Lifecycle;

use crate::cli::RestoreArgs;
use crate::commands::{authorize_local, now, open_store};
use crate::config::Config;
use crate::error::CliError;

pub fn run(args: RestoreArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let id = store.resolve_id(&args.id)?;
    let view = store
        .get(id)?
        .ok_or_else(|| returnee_store::laptop::StoreError::NotFound(args.id.clone()))?;
    match view.lifecycle {
        Lifecycle::Active => {
            return Err(CliError::Usage(format!(
                "family {id} is not deleted: nothing to restore"
            )));
        }
        Lifecycle::Merged { into } => {
            return Err(CliError::Usage(format!(
                "family {id} was merged into {into} as a duplicate; undo that with `returnee duplicates unmerge {id}`"
            )));
        }
        Lifecycle::Deleted => {}
    }
    // A worker undoes their own delete; keeping a family someone else
    // deleted is a supervisor's decision (as the server rules).
    if !store.deleted_here(id)? {
        authorize_local(&store, Action::ResolveConflict).map_err(|e| {
            CliError::Usage(format!(
                "{e}. This family was deleted on another device; keeping it is a supervisor's decision: ask one to run `returnee restore {id}` after a sync"
            ))
        })?;
    }
    store.restore(id, now())?;
    println!("{id}: restored (it counts again)");
    Ok(())
}
