//! `returnee unlock [--for 8h]` and `returnee lock`: an encrypted store's
//! data key kept in the kernel keyring for a while (see [`crate::keyring`]
//! and SECURITY.md for the trade-off), so that a worker types the
//! passphrase once a shift rather than at every command.

use returnee_store::laptop::{LocalStore, StoreError};

use crate::commands::{PASSPHRASE_TRIES, passphrase};
use crate::config::Config;
use crate::error::CliError;
use crate::keyring;

/// The longest `--for`: a day.
const MAX_SECONDS: u64 = 24 * 3600;

pub fn unlock(duration: &str, config: &Config) -> Result<(), CliError> {
    let seconds = parse_duration(duration)?;
    // Forget a key kept before, so that the passphrase is checked now.
    keyring::forget(&config.data_dir);
    match LocalStore::open(&config.data_dir) {
        Ok(_) => {
            return Err(CliError::Usage(
                "this store is not encrypted: there is no passphrase to skip".into(),
            ));
        }
        Err(StoreError::PassphraseNeeded(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut tries = 0;
    let (store, pass) = loop {
        tries += 1;
        let pass = passphrase(config).ok_or_else(|| {
            CliError::Usage(
                "unlock needs the passphrase: run it on a terminal, or set RETURNEE_PASSPHRASE"
                    .into(),
            )
        })?;
        match LocalStore::open_with(&config.data_dir, &|| Some(pass.clone())) {
            Ok(store) => break (store, pass),
            Err(StoreError::WrongPassphrase(_))
                if config.interactive
                    && config.passphrase.is_none()
                    && tries < PASSPHRASE_TRIES =>
            {
                eprintln!(
                    "wrong passphrase; try again ({} left)",
                    PASSPHRASE_TRIES - tries
                );
            }
            Err(e) => return Err(e.into()),
        }
    };
    let key = store
        .data_key(&pass)?
        .ok_or_else(|| CliError::Other("the store has no key to keep".into()))?;
    keyring::keep(&config.data_dir, &key, seconds).map_err(CliError::Other)?;
    let until = crate::commands::now() + chrono::Duration::seconds(seconds as i64);
    println!(
        "unlocked until {} (for this login session); `returnee lock` forgets the key sooner",
        until.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(())
}

pub fn lock(config: &Config) -> Result<(), CliError> {
    if keyring::forget(&config.data_dir) {
        println!("locked: the next command asks for the passphrase");
    } else {
        println!(
            "nothing to lock: no key was kept for {}",
            config.data_dir.display()
        );
    }
    Ok(())
}

/// `30m`, `8h`, `1h30m`, `90s` as seconds (1 second to 24 hours).
fn parse_duration(text: &str) -> Result<u64, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--for '{text}' is not a duration; write it like 30m, 8h or 1h30m (at most 24h)"
        ))
    };
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
    }
    if !number.is_empty() || total == 0 || total > MAX_SECONDS {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("8h").unwrap(), 8 * 3600);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        for bad in ["", "8", "h", "25h", "0m", "8x", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
