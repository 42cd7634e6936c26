//! `returnee passphrase change`: a new passphrase for an encrypted store.
//! Only the wrapped data key changes (one header entry); no value is
//! re-encrypted, so it takes a second whatever the store holds.

use returnee_store::laptop::{LocalStore, StoreError};

use crate::cli::{PassphraseAction, PassphraseArgs};
use crate::commands::init::new_passphrase;
use crate::commands::{passphrase, warn_if_shared};
use crate::config::Config;
use crate::error::CliError;

pub fn run(args: PassphraseArgs, config: &Config) -> Result<(), CliError> {
    let PassphraseAction::Change = args.action;
    let dir = &config.data_dir;
    // The current passphrase is needed even when `unlock` kept the key:
    // whoever changes it must know it. A plain store is said so without
    // asking for one.
    let (store, old) = match LocalStore::open_with(dir, &|| None) {
        Err(StoreError::PassphraseNeeded(_)) => {
            let old =
                passphrase(config).ok_or_else(|| StoreError::PassphraseNeeded(dir.clone()))?;
            (LocalStore::open_with(dir, &|| Some(old.clone()))?, old)
        }
        Ok(_) => return Err(StoreError::NotEncrypted(dir.clone()).into()),
        Err(e) => return Err(e.into()),
    };
    warn_if_shared(config);
    let new = new_passphrase(
        config,
        config.new_passphrase.clone(),
        "New passphrase",
        "passphrase change needs the new passphrase: set RETURNEE_PASSPHRASE_NEW, or run returnee on a terminal to be asked",
    )?;
    store.change_passphrase(&old, &new)?;
    println!(
        "passphrase changed for the store at {}; the old one no longer opens it (a key kept by `returnee unlock` still works until it lapses, or `returnee lock`)",
        dir.display()
    );
    Ok(())
}
