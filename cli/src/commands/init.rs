//! `returnee init`: create the local store and this device's id, plain or
//! encrypted with a passphrase (`--encrypt`).

use crate::cli::InitArgs;
use crate::commands::{passphrase, warn_if_shared};
use crate::config::Config;
use crate::error::CliError;
use returnee_store::laptop::sealing::Passphrase;
use returnee_store::laptop::{InitOutcome, LocalStore};
use returnee_store::private;

/// The shortest passphrase `init --encrypt` accepts.
const MIN_PASSPHRASE_CHARS: usize = 8;

pub fn run(args: InitArgs, config: &Config) -> Result<(), CliError> {
    let name = args
        .device_name
        .unwrap_or_else(|| config.default_device_name.clone());
    let encrypt = if args.encrypt {
        Some(new_passphrase(
            config,
            config.passphrase.clone(),
            "Passphrase for the new store",
            "init --encrypt needs a passphrase: set RETURNEE_PASSPHRASE, or run returnee on a terminal to be asked",
        )?)
    } else {
        None
    };
    // Private from the start: the folder 0700 before sled writes into it.
    private::make_dir(&config.data_dir)
        .map_err(|e| CliError::io(format!("cannot make {}", config.data_dir.display()), e))?;
    let (store, outcome) =
        LocalStore::init_with(&config.data_dir, &name, encrypt.as_ref(), &|| {
            passphrase(config)
        })?;
    warn_if_shared(config);
    let device = store.device()?;
    let kind = if store.is_encrypted() {
        "an encrypted"
    } else {
        "a"
    };
    match outcome {
        InitOutcome::Created => println!(
            "created {kind} store at {} for device {} ({})",
            config.data_dir.display(),
            device.name,
            device.id
        ),
        InitOutcome::AlreadyThere => println!(
            "{kind} store already exists at {} (device {}, {}); nothing changed",
            config.data_dir.display(),
            device.name,
            device.id
        ),
    }
    if store.is_encrypted() && outcome == InitOutcome::Created {
        println!(
            "every command on this store needs the passphrase (RETURNEE_PASSPHRASE, or asked on a terminal); if it is forgotten, the data on this laptop cannot be read, changes not yet synced included"
        );
    }
    Ok(())
}

/// A new passphrase: `given` (from the environment), else asked twice on
/// a terminal (`prompt`); `missing` says what to do when neither is there.
pub(crate) fn new_passphrase(
    config: &Config,
    given: Option<Passphrase>,
    prompt: &str,
    missing: &str,
) -> Result<Passphrase, CliError> {
    let pass = match given {
        Some(p) => p,
        None if config.interactive => dialoguer::Password::new()
            .with_prompt(prompt)
            // Said at once, before it is typed a second time.
            .validate_with(|p: &String| {
                if p.chars().count() < MIN_PASSPHRASE_CHARS {
                    Err(format!(
                        "too short; use at least {MIN_PASSPHRASE_CHARS} characters (a few words are easiest to remember)"
                    ))
                } else {
                    Ok(())
                }
            })
            .with_confirmation("Repeat it", "the two passphrases differ; try again")
            .interact()
            .map(Passphrase::new)
            .map_err(|e| CliError::Other(format!("could not read the passphrase: {e}")))?,
        None => return Err(CliError::Usage(missing.into())),
    };
    if pass.chars() < MIN_PASSPHRASE_CHARS {
        return Err(CliError::Usage(format!(
            "the passphrase is too short; use at least {MIN_PASSPHRASE_CHARS} characters (a few words are easiest to remember)"
        )));
    }
    Ok(pass)
}
