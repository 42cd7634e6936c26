//! The server's clock, passed in with the configuration so that tests can
//! move time (token expiry) without touching the machine's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// Where the server reads the time from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The machine's clock moved by an offset that can be changed while the
/// server runs (tests: "90 days later").
#[derive(Debug, Clone, Default)]
pub struct OffsetClock(Arc<AtomicI64>);

impl OffsetClock {
    /// Moves the clock forward by `by` (backward if negative).
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.num_seconds(), Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::seconds(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_moves_by_what_it_is_told() {
        let clock = OffsetClock::default();
        let shared = clock.clone();
        shared.advance(Duration::days(60));
        let ahead = clock.now() - Utc::now();
        assert!(ahead > Duration::days(60) - Duration::seconds(5));
        assert!(ahead < Duration::days(60) + Duration::seconds(5));
    }
}
