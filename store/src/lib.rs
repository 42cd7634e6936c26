//! Storage for returnee: the only crate that names sled.
//!
//! - [`laptop`]: a device's local store (`LocalStore`), encrypted at rest
//!   when asked, that works fully offline;
//! - [`server`]: the central store (`ServerStore`): devices, the operation
//!   log, records, the audit trail, and the duplicate index.
//!
//! Both open their sled database through [`db::open`] and keep per-record
//! values many to a key through one pack adapter ([`packs`]).

mod db;
mod format;
pub mod ids;
pub mod laptop;
mod packs;
pub mod server;
