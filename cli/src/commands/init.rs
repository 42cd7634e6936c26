//! `returnee init`: create the local store and this device's id.

use crate::cli::InitArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::store::{InitOutcome, LocalStore};

pub fn run(args: InitArgs, config: &Config) -> Result<(), CliError> {
    let name = args
        .device_name
        .unwrap_or_else(|| config.default_device_name.clone());
    let (store, outcome) = LocalStore::init(&config.data_dir, &name)?;
    let device = store.device()?;
    match outcome {
        InitOutcome::Created => println!(
            "created a store at {} for device {} ({})",
            config.data_dir.display(),
            device.name,
            device.id
        ),
        InitOutcome::AlreadyThere => println!(
            "a store already exists at {} (device {}, {}); nothing changed",
            config.data_dir.display(),
            device.name,
            device.id
        ),
    }
    Ok(())
}
