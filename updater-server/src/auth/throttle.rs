//! Login throttling: after [`MAX_FAILURES`] wrong passwords for one
//! `(tenant, e-mail)` within [`WINDOW`], further attempts are refused until
//! the window (counted from the first failure) has passed. Kept in memory, per
//! server process.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// Failed attempts allowed per account and window.
pub(crate) const MAX_FAILURES: u32 = 10;
/// The window.
pub(crate) const WINDOW: TimeDelta = TimeDelta::minutes(15);
/// Accounts tracked at most; beyond, stale entries are dropped first, then all.
const MAX_TRACKED: usize = 100_000;

/// `(tenant, e-mail)`.
type Account = (String, String);
/// Failures so far and the time of the first one in the window.
type Failures = (u32, DateTime<Utc>);

#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<Account, Failures>>,
}

impl LoginThrottle {
    /// `Some(seconds to wait)` if the account is locked at `now`.
    pub(crate) fn locked(&self, key: &Account, now: DateTime<Utc>) -> Option<i64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, first) = map.get(key)?;
        let until = *first + WINDOW;
        // Rounded up, so a client that waits this long is let in.
        (*count >= MAX_FAILURES && now < until)
            .then(|| ((until - now).num_milliseconds() + 999) / 1000)
    }

    pub(crate) fn failed(&self, key: Account, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            map.retain(|_, (_, first)| now < *first + WINDOW);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(key).or_insert((0, now));
        if now >= entry.1 + WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub(crate) fn succeeded(&self, key: &Account) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}
