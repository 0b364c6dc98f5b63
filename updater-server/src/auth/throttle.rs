//! Login throttling, kept in memory per server process, bounded.
//!
//! Failures are counted per *(source address, account)*: after
//! [`MAX_FAILURES`] wrong passwords for one account from one address within
//! [`WINDOW`], that address is refused for that account until the window
//! (counted from the first failure) has passed. Someone guessing from
//! elsewhere never locks the real admin out. One address is also refused
//! for every account after [`MAX_SOURCE_FAILURES`] failures in the window
//! (guessing across accounts). A failure without a known address (a
//! password change by a signed-in admin) counts for the account alone.
//!
//! Accounts are kept as a 128-bit hash of `(tenant, e-mail)`, not the typed
//! strings (which can be as long as a request body). At most
//! [`MAX_TRACKED`] entries: past it, expired entries go first, then the
//! oldest — never all, which would lift every lockout at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

/// Failed attempts allowed per address and account, per window.
pub(crate) const MAX_FAILURES: u32 = 10;
/// Failed attempts allowed per address over all accounts, per window.
pub(crate) const MAX_SOURCE_FAILURES: u32 = 50;
/// The window.
pub(crate) const WINDOW: TimeDelta = TimeDelta::minutes(15);
/// Entries tracked at most.
pub(crate) const MAX_TRACKED: usize = 100_000;

/// One login attempt: where from, and for which account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    source: Option<IpAddr>,
    account: [u8; 16],
}

impl Attempt {
    /// An attempt from `source` (if known) for `(tenant, email)`; the e-mail
    /// as the caller normalised it.
    pub(crate) fn new(source: Option<IpAddr>, tenant: &str, email: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(tenant.as_bytes())
            .chain_update([0])
            .chain_update(email.as_bytes())
            .finalize();
        let mut account = [0; 16];
        account.copy_from_slice(&digest[..16]);
        Self { source, account }
    }

    /// The counters this attempt touches, with their limits. An IPv6
    /// client counts as its /64 (one host is usually given a whole /64).
    fn buckets(&self) -> Vec<(Bucket, u32)> {
        let source = self.source.map(|ip| match ip {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        });
        match source {
            Some(ip) => vec![
                (Bucket::Pair(ip, self.account), MAX_FAILURES),
                (Bucket::Source(ip), MAX_SOURCE_FAILURES),
            ],
            None => vec![(Bucket::Account(self.account), MAX_FAILURES)],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Pair(IpAddr, [u8; 16]),
    Source(IpAddr),
    Account([u8; 16]),
}

/// Failures so far and the time of the first one in the window.
type Failures = (u32, DateTime<Utc>);

#[derive(Debug)]
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<Bucket, Failures>>,
    capacity: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::with_capacity(MAX_TRACKED)
    }
}

impl LoginThrottle {
    /// A throttle tracking at most `capacity` entries.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            failures: Mutex::default(),
            capacity: capacity.max(2),
        }
    }

    /// `Some(seconds to wait)` if the attempt is refused at `now`.
    pub(crate) fn locked(&self, attempt: &Attempt, now: DateTime<Utc>) -> Option<i64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        attempt
            .buckets()
            .into_iter()
            .filter_map(|(bucket, limit)| {
                let (count, first) = map.get(&bucket)?;
                let until = *first + WINDOW;
                // Rounded up, so a client that waits this long is let in.
                (*count >= limit && now < until)
                    .then(|| ((until - now).num_milliseconds() + 999) / 1000)
            })
            .max()
    }

    pub(crate) fn failed(&self, attempt: &Attempt, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (bucket, _) in attempt.buckets() {
            if map.len() >= self.capacity && !map.contains_key(&bucket) {
                map.retain(|_, (_, first)| now < *first + WINDOW);
                while map.len() >= self.capacity {
                    let oldest = map.iter().min_by_key(|(_, (_, first))| *first);
                    let Some(oldest) = oldest.map(|(k, _)| *k) else {
                        break;
                    };
                    map.remove(&oldest);
                }
            }
            let entry = map.entry(bucket).or_insert((0, now));
            if now >= entry.1 + WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// A right password: the account's count from this address starts over
    /// (the address's count over all accounts does not).
    pub(crate) fn succeeded(&self, attempt: &Attempt) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((bucket, _)) = attempt.buckets().into_iter().next() {
            map.remove(&bucket);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    #[test]
    fn an_attacker_elsewhere_does_not_lock_the_admin_out() {
        let throttle = LoginThrottle::default();
        let attacker: IpAddr = "203.0.113.9".parse().unwrap();
        let admin: IpAddr = "10.1.2.3".parse().unwrap();
        let ann = |ip| Attempt::new(Some(ip), "t1", "ann@example.com");
        for _ in 0..MAX_FAILURES {
            assert_eq!(throttle.locked(&ann(attacker), t(0)), None);
            throttle.failed(&ann(attacker), t(0));
        }
        assert_eq!(throttle.locked(&ann(attacker), t(0)), Some(900));
        assert_eq!(throttle.locked(&ann(attacker), t(14)), Some(60));
        assert_eq!(throttle.locked(&ann(attacker), t(15)), None);
        assert_eq!(throttle.locked(&ann(admin), t(0)), None, "the real admin");
        // Another account from the attacker's address is still open...
        let bob = Attempt::new(Some(attacker), "t1", "bob@example.com");
        assert_eq!(throttle.locked(&bob, t(0)), None);
        // ...until the address has failed too often over all accounts.
        for n in 0..MAX_SOURCE_FAILURES - MAX_FAILURES {
            let other = Attempt::new(Some(attacker), "t1", &format!("u{n}@example.com"));
            throttle.failed(&other, t(1));
        }
        // (The address's window began with its first failure, at 0.)
        assert_eq!(throttle.locked(&bob, t(1)), Some(14 * 60));
        assert_eq!(throttle.locked(&ann(admin), t(1)), None, "the real admin");
    }

    #[test]
    fn an_ipv6_client_counts_as_its_slash_64() {
        let throttle = LoginThrottle::default();
        for n in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            throttle.failed(&Attempt::new(Some(ip), "t1", "ann@example.com"), t(0));
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let ann = |ip| Attempt::new(Some(ip), "t1", "ann@example.com");
        assert_eq!(throttle.locked(&ann(same_64), t(0)), Some(900));
        assert_eq!(throttle.locked(&ann(other_64), t(0)), None);
    }

    #[test]
    fn a_success_resets_the_account_from_that_address_only() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let ann = Attempt::new(Some(ip), "t1", "ann@example.com");
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed(&ann, t(0));
        }
        throttle.succeeded(&ann);
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed(&ann, t(0));
        }
        assert_eq!(throttle.locked(&ann, t(0)), None);
        // Without an address, the account alone counts.
        let signed_in = Attempt::new(None, "t1", "ann@example.com");
        for _ in 0..MAX_FAILURES {
            throttle.failed(&signed_in, t(0));
        }
        assert_eq!(throttle.locked(&signed_in, t(0)), Some(900));
        assert_eq!(throttle.locked(&ann, t(0)), None);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_not_every_lockout() {
        let throttle = LoginThrottle::with_capacity(40);
        let attempt =
            |n: u8, account: &str| Attempt::new(Some(IpAddr::from([192, 0, 2, n])), "t1", account);
        // 15 old attempts (30 entries: address and pair), then a lockout.
        for n in 0..15 {
            throttle.failed(&attempt(n, "old"), t(0));
        }
        let victim = attempt(200, "ann@example.com");
        for _ in 0..MAX_FAILURES {
            throttle.failed(&victim, t(5));
        }
        // 10 newer attempts (20 entries) overflow the table by 12.
        for n in 100..110 {
            throttle.failed(&attempt(n, "new"), t(6));
        }
        let map = throttle.failures.lock().unwrap();
        assert_eq!(map.len(), 40, "full, never emptied");
        let old = map.values().filter(|(_, first)| *first == t(0)).count();
        assert_eq!(old, 30 - 12, "the oldest went first");
        drop(map);
        assert_eq!(throttle.locked(&victim, t(6)), Some(14 * 60));
    }
}
