//! Measurements the stores report to whoever listens: the server's
//! `GET /metrics` (`returnee-server serve --metrics-bind`). They go through
//! the `metrics` facade, which does nothing until a recorder is installed,
//! so a laptop or a test pays nothing for them.
//!
//! The names are the series' names as Prometheus shows them; every
//! measurement of the stores is one function here, so that a new durable
//! write (the journal) reports through the same call as the old one.

use std::time::Duration;

/// Seconds each fsync of acknowledged work took (a push's group commit).
pub const JOURNAL_FSYNC_SECONDS: &str = "returnee_journal_fsync_seconds";
/// Bytes the server's durable log takes on disk.
pub const JOURNAL_BYTES: &str = "returnee_journal_bytes";

/// One fsync (or flush) that made acknowledged work durable took `took`.
pub fn journal_fsync(took: Duration) {
    metrics::histogram!(JOURNAL_FSYNC_SECONDS).record(took.as_secs_f64());
}

/// The durable log now takes `bytes` on disk.
pub fn journal_bytes(bytes: u64) {
    metrics::gauge!(JOURNAL_BYTES).set(bytes as f64);
}
