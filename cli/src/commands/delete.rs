//! `returnee delete`: delete a family, keeping a tombstone for sync.

use crate::cli::DeleteArgs;
use crate::commands::{now, open_store};
use crate::config::Config;
use crate::error::CliError;

pub fn run(args: DeleteArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let id = store.resolve_id(&args.id)?;
    store.delete(id, now())?;
    println!("{id}: deleted");
    Ok(())
}
