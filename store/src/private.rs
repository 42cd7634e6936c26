//! A store's folder and files readable by their owner only: the folder
//! 0700, its files 0600 (Unix; elsewhere these do nothing). Both stores
//! hold personal data; another user of the laptop or server must not read
//! it, encrypted or not.

use std::io;
use std::path::Path;

/// Makes `dir` (and missing parents) if needed, and gives `dir` itself
/// mode 0700 when this call made it or found it empty (a folder made for
/// the store); a folder that already holds something keeps its mode.
pub fn make_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        if std::fs::read_dir(dir)?.next().is_some() {
            return Ok(());
        }
    } else {
        std::fs::create_dir_all(dir)?;
    }
    set_mode(dir, 0o700)
}

/// Gives every file in `dir` and its sub-folders mode 0600 and every
/// sub-folder 0700 (sled makes its files with the process's umask).
pub fn tighten(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            set_mode(&path, 0o700)?;
            tighten(&path)?;
        } else {
            set_mode(&path, 0o600)?;
        }
    }
    Ok(())
}

/// The folder's mode when others than its owner may read or enter it
/// (`None`: private, or not a Unix system).
pub fn wider_than_private(dir: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}
