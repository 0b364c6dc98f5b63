//! Waking for maintenance windows: the agent checks in shortly before a
//! window opens (so it runs what the server assigns now), then acts when the
//! window opens. To keep a fleet from arriving at the same second, each agent
//! checks in `offset` before the start, where the offset is derived from its
//! SystemID within a configurable spread ([`fleet_offset`]): deterministic
//! per agent, uniform over the fleet.
//!
//! Windows themselves are `catalog::window::MaintenanceWindow` (the same
//! code the server previews with); this module only plans wake-ups.

use catalog::window::{MaintenanceWindow, Occurrence};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// The default spread of pre-window check-ins: up to 10 minutes before the start.
pub const DEFAULT_WINDOW_SPREAD: Duration = Duration::minutes(10);

/// This agent's check-in offset before a window: in `[0, spread)`, in whole
/// seconds, from SHA-256 of the SystemID.
pub fn fleet_offset(system_id: &str, spread: Duration) -> Duration {
    let secs = spread.num_seconds();
    if secs <= 0 {
        return Duration::zero();
    }
    let digest = Sha256::digest(system_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(first) % secs.unsigned_abs();
    Duration::seconds(i64::try_from(n).unwrap_or(0))
}

/// The next window (of any of `windows`) whose pre-window check-in
/// (`start - offset`) is after `after`, earliest first.
pub fn next_window(
    windows: &[MaintenanceWindow],
    after: DateTime<Utc>,
    offset: Duration,
) -> Option<Occurrence> {
    windows
        .iter()
        .filter_map(|w| {
            w.occurrences(after + offset)
                .find(|o| o.start - offset > after)
        })
        .min_by_key(|o| o.start)
}

/// The next time, after `after`, that one of `windows` opens.
pub fn next_opening(windows: &[MaintenanceWindow], after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    windows
        .iter()
        .filter_map(|w| w.occurrences(after).find(|o| o.start > after))
        .map(|o| o.start)
        .min()
}

/// Whether one of `windows` is open at `t`.
pub fn any_open(windows: &[MaintenanceWindow], t: DateTime<Utc>) -> bool {
    windows.iter().any(|w| w.active_at(t).is_some())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn offsets_are_deterministic_bounded_and_spread() {
        let spread = Duration::minutes(10);
        assert_eq!(fleet_offset("abc", spread), fleet_offset("abc", spread));
        assert_eq!(fleet_offset("abc", Duration::zero()), Duration::zero());
        let offsets: Vec<i64> = (0..1000)
            .map(|i| fleet_offset(&format!("system-{i}"), spread).num_seconds())
            .collect();
        assert!(offsets.iter().all(|o| (0..600).contains(o)));
        // Spread over the fleet: every minute of the ten gets agents, none gets a quarter.
        for minute in 0..10 {
            let n = offsets.iter().filter(|o| **o / 60 == minute).count();
            assert!((40..250).contains(&n), "minute {minute}: {n}");
        }
    }

    /// (zone, cron, a time before a DST change, the UTC starts of the next
    /// three windows) — expected values worked out by hand from the zone's rules.
    #[test]
    fn pre_window_check_ins_across_dst_in_three_zones() {
        let offset = Duration::seconds(317);
        let cases = [
            // Berlin springs forward on 2026-03-29 at 02:00 CET: 01:00 local
            // is 00:00 UTC up to that night (still CET), 23:00 UTC the evening
            // before from the 30th on (CEST).
            (
                "Europe/Berlin",
                "0 1 * * *",
                utc(2026, 3, 27, 12, 0),
                [
                    utc(2026, 3, 28, 0, 0),
                    utc(2026, 3, 29, 0, 0),
                    utc(2026, 3, 29, 23, 0),
                ],
            ),
            // New York falls back on 2026-11-01 (02:00 EDT -> 01:00 EST): 03:00
            // local is 07:00 UTC before and 08:00 UTC from that night on.
            (
                "America/New_York",
                "0 3 * * *",
                utc(2026, 10, 30, 12, 0),
                [
                    utc(2026, 10, 31, 7, 0),
                    utc(2026, 11, 1, 8, 0),
                    utc(2026, 11, 2, 8, 0),
                ],
            ),
            // Sydney springs forward on 2026-10-04 (02:00 AEST -> 03:00 AEDT):
            // 02:30 does not exist that night and opens at 03:00 AEDT (16:00 UTC);
            // before it is 16:30 UTC, after 15:30 UTC.
            (
                "Australia/Sydney",
                "30 2 * * *",
                utc(2026, 10, 2, 12, 0),
                [
                    utc(2026, 10, 2, 16, 30),
                    utc(2026, 10, 3, 16, 0),
                    utc(2026, 10, 4, 15, 30),
                ],
            ),
        ];
        for (tz, cron, from, starts) in cases {
            let w = MaintenanceWindow::new(cron, Duration::hours(2), tz).unwrap();
            let ws = [w];
            let mut t = from;
            for want in starts {
                let o = next_window(&ws, t, offset).unwrap();
                assert_eq!(o.start, want, "{tz}");
                assert_eq!(next_opening(&ws, o.start - offset), Some(want), "{tz}");
                assert!(!any_open(&ws, o.start - offset), "{tz}");
                assert!(any_open(&ws, o.start), "{tz}");
                // Right at the wake-up, the next one is the following window.
                t = o.start - offset;
            }
        }
    }

    #[test]
    fn next_window_takes_the_earliest_of_several() {
        let a = MaintenanceWindow::new("0 2 * * *", Duration::hours(1), "Europe/Berlin").unwrap();
        let b =
            MaintenanceWindow::new("0 22 * * *", Duration::hours(1), "America/New_York").unwrap();
        // 2026-11-20 12:00 UTC: New York's 22:00 EST is 03:00 UTC on the 21st,
        // Berlin's 02:00 CET is 01:00 UTC on the 21st.
        let o = next_window(&[a, b], utc(2026, 11, 20, 12, 0), Duration::minutes(5)).unwrap();
        assert_eq!(o.start, utc(2026, 11, 21, 1, 0));
        assert_eq!(
            next_window(&[], utc(2026, 11, 20, 12, 0), Duration::zero()),
            None
        );
    }
}
