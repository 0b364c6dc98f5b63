//! When to check in: at process start, then every poll interval counted from
//! process start, each tick moved by a jitter of ±10 % of the interval so a
//! fleet started together spreads out; after a failure (server unreachable),
//! retries back off exponentially up to a cap, and never later than the next
//! regular tick.
//!
//! [`PollSchedule::next_attempt`] is a pure function of the schedule, `now`
//! and the last result: the jitter is derived from a per-process seed and the
//! tick number, so asking twice gives the same answer and tests need no
//! sleeps.
//!
//! [`windows`] plans the wake-ups before maintenance windows (spread over the
//! fleet), [`host`] models the host's power state and user sessions for the
//! guards.

pub mod host;
pub mod windows;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// The default poll interval (6 hours).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::hours(6);
/// The first retry after a failure.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::minutes(1);
/// The longest wait between retries.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::hours(1);

/// The outcome of the last check-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastCheckIn {
    /// None yet in this process.
    Never,
    /// The last attempt reached the server.
    Succeeded {
        /// When it was made.
        at: DateTime<Utc>,
    },
    /// The last `consecutive` attempts failed.
    Failed {
        /// When the last one was made.
        at: DateTime<Utc>,
        /// How many failed in a row (1 after the first failure).
        consecutive: u32,
    },
}

/// The check-in schedule of one agent process.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    started_at: DateTime<Utc>,
    interval: Duration,
    backoff_base: Duration,
    backoff_cap: Duration,
    seed: [u8; 16],
}

impl PollSchedule {
    /// A schedule for a process started at `started_at`; `seed` makes the
    /// jitter differ between agents (use random bytes).
    pub fn new(started_at: DateTime<Utc>, interval: Duration, seed: [u8; 16]) -> Self {
        Self {
            started_at,
            interval: interval.max(Duration::seconds(1)),
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            seed,
        }
    }

    /// Replaces the backoff parameters (first retry delay, longest delay).
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base.max(Duration::seconds(1));
        self.backoff_cap = cap.max(self.backoff_base);
        self
    }

    /// Replaces the poll interval (the server's `poll_interval_secs`).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval.max(Duration::seconds(1));
    }

    /// The poll interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the next check-in should be attempted, never before `now`
    /// (a time equal to `now` means "due").
    pub fn next_attempt(&self, now: DateTime<Utc>, last: LastCheckIn) -> DateTime<Utc> {
        let next = match last {
            LastCheckIn::Never => self.started_at,
            LastCheckIn::Succeeded { at } => self.tick_after(at),
            LastCheckIn::Failed { at, consecutive } => {
                let delay = self.backoff(consecutive);
                let retry = at + delay + self.jitter(b"backoff", at.timestamp_millis(), delay);
                retry.min(self.tick_after(at))
            }
        };
        next.max(now)
    }

    /// The backoff delay after `consecutive` failures, before jitter.
    pub fn backoff(&self, consecutive: u32) -> Duration {
        let doublings = consecutive.saturating_sub(1).min(30);
        let factor = 1i32 << doublings;
        self.backoff_base
            .checked_mul(factor)
            .unwrap_or(self.backoff_cap)
            .min(self.backoff_cap)
    }

    /// Regular tick `k` (k >= 1): process start + k intervals, jittered.
    fn tick(&self, k: i64) -> DateTime<Utc> {
        let nominal = self.interval * i32::try_from(k).unwrap_or(i32::MAX);
        self.started_at + nominal + self.jitter(b"tick", k, self.interval)
    }

    /// The first regular tick strictly after `at`. Jitter is under a tenth of
    /// the interval, so ticks are strictly increasing and one of three
    /// consecutive candidates is it.
    fn tick_after(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed = (at - self.started_at).num_milliseconds();
        let k0 = elapsed.div_euclid(self.interval.num_milliseconds()).max(1);
        (k0..k0 + 3)
            .map(|k| self.tick(k))
            .find(|t| *t > at)
            .unwrap_or_else(|| self.tick(k0 + 3))
    }

    /// A deterministic delay in [0, `max`) for `(tag, n)`: spreads the
    /// fleet's reactions to one event (e.g. devices re-enumerating at a
    /// window's opening).
    pub fn spread(&self, tag: &[u8], n: i64, max: Duration) -> Duration {
        self.jitter(tag, n, max * 5) + max / 2
    }

    /// A deterministic offset in [-span/10, +span/10) for `(tag, n)`.
    fn jitter(&self, tag: &[u8], n: i64, span: Duration) -> Duration {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(tag);
        h.update(n.to_be_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // A fraction in [0, 1) with 53 bits of precision.
        let unit = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
        let ms = span.num_milliseconds() as f64 * 0.1 * (2.0 * unit - 1.0);
        Duration::milliseconds(ms.floor() as i64)
    }
}

#[cfg(test)]
mod tests;
