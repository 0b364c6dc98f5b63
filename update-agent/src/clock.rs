//! Time as an argument: the daemon asks a [`Clock`], so tests drive a
//! [`ManualClock`] instead of sleeping.

use std::sync::Mutex;

use catalog::sim_clock::AcceleratedTime;
use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// How long to wait in real time for `span` of this clock's time to
    /// pass (zero for a negative span).
    fn real_wait(&self, span: Duration) -> std::time::Duration {
        span.to_std().unwrap_or_default()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The simulation's accelerated clock (`[simulated.clock]`), shared with a
/// server started with the same values.
#[derive(Debug, Clone, Copy)]
pub struct AcceleratedClock(pub AcceleratedTime);

impl Clock for AcceleratedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    fn real_wait(&self, span: Duration) -> std::time::Duration {
        self.0.real_wait(span)
    }
}

/// A clock that moves only when told to (tests, the demo).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-03-29T00:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = ManualClock::new(start);
        assert_eq!(c.now(), start);
        assert_eq!(c.now(), start);
        c.advance(Duration::hours(6));
        assert_eq!(c.now(), start + Duration::hours(6));
        c.set(start);
        assert_eq!(c.now(), start);
    }
}
