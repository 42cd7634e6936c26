//! Where `returnee unlock` keeps an encrypted store's data key for a while:
//! the Linux kernel's session keyring (`linux-keyutils`). The key lives in
//! kernel memory, never on disk; the kernel drops it when its time is up,
//! at `returnee lock`, or when the login session's keyring goes. It is
//! named by the store's folder, so two stores do not share one.
//!
//! Elsewhere than Linux there is no such keyring: `unlock` says so.

use std::path::Path;

use returnee_store::laptop::sealing::DataKey;

/// The keyring entry's name for the store in `dir`.
fn name(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("returnee:{}", dir.display())
}

#[cfg(target_os = "linux")]
mod imp {
    use linux_keyutils::{KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    use super::*;

    fn ring() -> Result<KeyRing, String> {
        KeyRing::from_special_id(KeyRingIdentifier::Session, false)
            .map_err(|e| format!("the session keyring cannot be used ({e:?})"))
    }

    /// Keeps `key` for `seconds`, readable only by this user's processes.
    pub fn keep(dir: &Path, key: &DataKey, seconds: u64) -> Result<(), String> {
        let ring = ring()?;
        let k = ring
            .add_key(&name(dir), key.as_bytes())
            .map_err(|e| format!("the key could not be kept ({e:?})"))?;
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::ALL)
            .build();
        k.set_perms(perms)
            .and_then(|()| k.set_timeout(seconds as usize))
            .map_err(|e| {
                let _ = k.invalidate();
                format!("the key's time limit could not be set ({e:?}); it was not kept")
            })
    }

    /// The key kept for the store in `dir`, if any.
    pub fn get(dir: &Path) -> Option<DataKey> {
        let key = ring().ok()?.search(&name(dir)).ok()?;
        DataKey::from_bytes(&zeroize::Zeroizing::new(key.read_to_vec().ok()?))
    }

    /// Forgets the key kept for the store in `dir`; whether there was one.
    pub fn forget(dir: &Path) -> bool {
        match ring().ok().and_then(|r| r.search(&name(dir)).ok()) {
            Some(k) => k.invalidate().is_ok(),
            None => false,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub fn keep(_: &Path, _: &DataKey, _: u64) -> Result<(), String> {
        Err(
            "this system has no kernel keyring returnee can use (Linux only); \
             set RETURNEE_PASSPHRASE in the shell instead"
                .into(),
        )
    }
    pub fn get(_: &Path) -> Option<DataKey> {
        None
    }
    pub fn forget(_: &Path) -> bool {
        false
    }
}

pub use imp::{forget, get, keep};
