//! Advice on the size of a device's next push batch
//! ([`returnee_shared::wire::PushResponse::next_batch`]).
//!
//! Pushes are applied one at a time (each is a read-modify-write of records
//! and the log), so when many devices push at once a batch waits for the
//! batches ahead of it. The time a batch spends on the server, waiting
//! included, grows with the size of everyone's batches: with 50 devices
//! sending 500 operations each, the last batch in waited for 25,000
//! operations. The server sees each batch's time and advises the device to
//! scale its next batch towards [`TARGET`]: smaller when crowded, larger
//! (up to the device's own limit) when alone. Every device then commits
//! progress in steps that come back quickly, and none holds the writer long.
//!
//! Only server-side time counts, not the link's: on a slow link a larger
//! batch is what pays, and the device's `--batch-size` caps it.

use std::time::Duration;

use returnee_shared::wire::MAX_PUSH_OPS;

/// The server-side time a push batch should take, waiting included.
pub const TARGET: Duration = Duration::from_millis(250);
/// Never advise fewer operations than this: below it, each request's own
/// cost dominates.
pub const MIN_BATCH: usize = 50;

/// The advised size of a device's next batch, after one of `ops`
/// operations took `took` on the server (waiting for the writer included).
///
/// Proportional to how far `took` was from [`TARGET`], at most doubling at a
/// time (one fast batch proves little), within `MIN_BATCH..=MAX_PUSH_OPS`.
pub fn next_batch(ops: usize, took: Duration) -> usize {
    let ops = ops.max(1) as f64;
    let took = took.as_secs_f64().max(1e-6);
    let scaled = ops * TARGET.as_secs_f64() / took;
    let capped = scaled.min(ops * 2.0);
    (capped as usize).clamp(MIN_BATCH, MAX_PUSH_OPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_that_took_twice_the_target_is_halved() {
        assert_eq!(next_batch(1000, TARGET * 2), 500);
    }

    #[test]
    fn a_fast_batch_grows_at_most_twofold_and_never_beyond_the_protocol_limit() {
        assert_eq!(next_batch(1000, Duration::from_millis(1)), 2000);
        assert_eq!(next_batch(8000, Duration::from_millis(1)), MAX_PUSH_OPS);
        assert_eq!(next_batch(0, Duration::ZERO), MIN_BATCH);
    }

    #[test]
    fn a_crowded_server_advises_small_batches_but_not_below_the_floor() {
        // 50 devices × 500 operations ahead: 1.2 s for this batch.
        assert_eq!(next_batch(500, Duration::from_millis(1200)), 104);
        assert_eq!(next_batch(100, Duration::from_secs(10)), MIN_BATCH);
    }

    #[test]
    fn a_batch_on_target_keeps_its_size() {
        assert_eq!(next_batch(700, TARGET), 700);
    }
}
