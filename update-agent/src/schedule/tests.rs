use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::clock::{Clock, ManualClock};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn within(t: DateTime<Utc>, centre: DateTime<Utc>, spread: Duration) -> bool {
    t >= centre - spread && t <= centre + spread
}

#[test]
fn schedule_table_with_manual_clock() {
    let clock = ManualClock::new(t0());
    let s = PollSchedule::new(clock.now(), Duration::hours(6), [7; 16]);
    let h = Duration::hours;
    let m = Duration::minutes;
    let sec = Duration::seconds;
    // (clock advanced to, last result, expected centre, allowed spread)
    let cases: Vec<(Duration, LastCheckIn, DateTime<Utc>, Duration)> = vec![
        // At start: due at once.
        (h(0), LastCheckIn::Never, t0(), sec(0)),
        // After a success at start: the first tick, 6 h ± 36 min from start.
        (
            m(1),
            LastCheckIn::Succeeded { at: t0() },
            t0() + h(6),
            m(36),
        ),
        // Counted from process start, not from the last success.
        (
            h(7),
            LastCheckIn::Succeeded {
                at: t0() + h(6) + m(40),
            },
            t0() + h(12),
            m(36),
        ),
        // Backoff: 1 min, 2 min, 4 min, each ± 10 %.
        (
            h(0),
            LastCheckIn::Failed {
                at: t0(),
                consecutive: 1,
            },
            t0() + m(1),
            sec(6),
        ),
        (
            h(0),
            LastCheckIn::Failed {
                at: t0(),
                consecutive: 2,
            },
            t0() + m(2),
            sec(12),
        ),
        (
            h(0),
            LastCheckIn::Failed {
                at: t0(),
                consecutive: 3,
            },
            t0() + m(4),
            sec(24),
        ),
        // Capped at one hour (64 min would be next), also for absurd counts.
        (
            h(0),
            LastCheckIn::Failed {
                at: t0(),
                consecutive: 7,
            },
            t0() + h(1),
            m(6),
        ),
        (
            h(0),
            LastCheckIn::Failed {
                at: t0(),
                consecutive: u32::MAX,
            },
            t0() + h(1),
            m(6),
        ),
    ];
    for (advance, last, centre, spread) in cases {
        clock.set(t0() + advance);
        let next = s.next_attempt(clock.now(), last);
        assert!(
            within(next, centre, spread),
            "{last:?} at +{advance}: {next} not within {centre} ± {spread}"
        );
        assert!(next >= clock.now(), "never before now");
        // A pure function: the same question, the same answer.
        assert_eq!(next, s.next_attempt(clock.now(), last));
    }
}

#[test]
fn a_retry_never_waits_past_the_next_tick() {
    let s = PollSchedule::new(t0(), Duration::hours(2), [1; 16])
        .with_backoff(Duration::minutes(1), Duration::hours(10));
    let at = t0() + Duration::minutes(110);
    let next = s.next_attempt(
        at,
        LastCheckIn::Failed {
            at,
            consecutive: 12,
        },
    );
    let tick1 = s.next_attempt(t0(), LastCheckIn::Succeeded { at: t0() });
    assert_eq!(next, tick1.max(at));
    assert!(next <= t0() + Duration::minutes(132));
}

#[test]
fn overdue_attempts_are_due_now() {
    // The host slept through two ticks: the next attempt is now.
    let s = PollSchedule::new(t0(), Duration::hours(6), [2; 16]);
    let now = t0() + Duration::hours(20);
    assert_eq!(
        s.next_attempt(now, LastCheckIn::Succeeded { at: t0() }),
        now
    );
    assert_eq!(s.next_attempt(now, LastCheckIn::Never), now);
}

#[test]
fn jitter_stays_within_ten_percent_and_spreads() {
    let interval = Duration::hours(6);
    let mut lo = Duration::MAX;
    let mut hi = Duration::MIN;
    for i in 0..2000u32 {
        let mut seed = [0u8; 16];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        let s = PollSchedule::new(t0(), interval, seed);
        // Each check-in made when due and successful: the next is the next tick.
        let mut at = t0();
        for k in 1..4 {
            let next = s.next_attempt(at, LastCheckIn::Succeeded { at });
            let offset = next - (t0() + interval * k);
            at = next;
            assert!(
                offset.abs() <= Duration::minutes(36),
                "seed {i}, tick {k}: {offset}"
            );
            lo = lo.min(offset);
            hi = hi.max(offset);
        }
        let delay = s.next_attempt(
            t0(),
            LastCheckIn::Failed {
                at: t0(),
                consecutive: 4,
            },
        ) - t0();
        assert!(
            delay >= Duration::seconds(432) && delay <= Duration::seconds(528),
            "{delay}"
        );
    }
    // 6000 draws: the extremes come close to both ends of the ±36 min band.
    assert!(lo < Duration::minutes(-34), "{lo}");
    assert!(hi > Duration::minutes(34), "{hi}");
}

#[test]
fn backoff_doubles_then_caps() {
    let s = PollSchedule::new(t0(), DEFAULT_POLL_INTERVAL, [0; 16]);
    let got: Vec<i64> = [0, 1, 2, 3, 6, 7, 31, 32, u32::MAX]
        .iter()
        .map(|n| s.backoff(*n).num_seconds())
        .collect();
    assert_eq!(got, [60, 60, 120, 240, 1920, 3600, 3600, 3600, 3600]);
}
