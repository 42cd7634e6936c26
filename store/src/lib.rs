//! Storage for returnee: the only crate that names sled.
//!
//! - [`laptop`]: a device's local store (`LocalStore`), encrypted at rest
//!   when asked, that works fully offline;
//! - [`server`]: the central store (`ServerStore`): devices, the operation
//!   log, records, the audit trail, and the duplicate index;
//! - [`journal`]: append-only segment files of CRC-checked frames, the
//!   source of truth that sled projections are rebuilt from (no sled).
//!
//! Both open their sled database through `db::open`, keep per-record values
//! many to a key through one pack adapter (`packs`), in the order records
//! arrived through one placement (`placed`), and check their stored
//! format against one ordered list of migrations each (`format`). Every key
//! either store writes is listed in ARCHITECTURE.md's keyspace registry and
//! in the module docs of [`laptop`] and [`server`]; a new kind of key is
//! added to both.

mod db;
mod format;
pub mod ids;
pub mod journal;
pub mod laptop;
pub mod observe;
mod packs;
mod placed;
pub mod private;
pub mod server;

/// Every file under a folder, for tests that read a store's raw bytes.
#[cfg(test)]
pub(crate) fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
