//! Maintenance windows: tables of expressions, zones and dates with the expected
//! UTC instants, worked out by hand from the 2026 transitions of each zone.

use catalog::window::{MaintenanceWindow, Occurrence};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn window(cron: &str, minutes: i64, tz: &str) -> MaintenanceWindow {
    MaintenanceWindow::new(cron, Duration::minutes(minutes), tz)
        .unwrap_or_else(|e| panic!("{cron} {tz}: {e}"))
}

fn starts(w: &MaintenanceWindow, from: &str, n: usize) -> Vec<String> {
    w.occurrences(utc(from))
        .take(n)
        .map(|o| o.start.format("%Y-%m-%dT%H:%MZ").to_string())
        .collect()
}

#[test]
fn starts_across_dst_in_several_zones() {
    // (cron, zone, from, the next starts in UTC)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
        // 02:30 is skipped: opens at 03:00 CEST = 01:00Z.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T00:00:00Z",
            &[
                "2026-03-28T01:30Z",
                "2026-03-29T01:00Z",
                "2026-03-30T00:30Z",
            ],
        ),
        // 02:30 happens twice: opens once, at the first (CEST) one.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T00:00:00Z",
            &[
                "2026-10-24T00:30Z",
                "2026-10-25T00:30Z",
                "2026-10-26T01:30Z",
            ],
        ),
        // from between the two 02:30s: the second is not a start.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-25T00:31:00Z",
            &["2026-10-26T01:30Z"],
        ),
        // All four skipped quarter hours collapse into one window at the gap's end.
        (
            "*/15 2 * * *",
            "Europe/Berlin",
            "2026-03-29T00:00:00Z",
            &[
                "2026-03-29T01:00Z",
                "2026-03-30T00:00Z",
                "2026-03-30T00:15Z",
            ],
        ),
        // 02:00 and 03:00 on the spring-forward night are the same instant.
        (
            "0 2,3 * * *",
            "Europe/Berlin",
            "2026-03-29T00:00:00Z",
            &[
                "2026-03-29T01:00Z",
                "2026-03-30T00:00Z",
                "2026-03-30T01:00Z",
            ],
        ),
        (
            "*/30 2 * * *",
            "Europe/Berlin",
            "2026-10-25T00:00:00Z",
            &[
                "2026-10-25T00:00Z",
                "2026-10-25T00:30Z",
                "2026-10-26T01:00Z",
            ],
        ),
        // America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
        (
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T00:00:00Z",
            &[
                "2026-03-07T07:30Z",
                "2026-03-08T07:00Z",
                "2026-03-09T06:30Z",
            ],
        ),
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T00:00:00Z",
            &[
                "2026-10-31T05:30Z",
                "2026-11-01T05:30Z",
                "2026-11-02T06:30Z",
            ],
        ),
        // Australia/Sydney (southern hemisphere): 2026-04-05 03:00 AEDT -> 02:00 AEST,
        // 2026-10-04 02:00 AEST -> 03:00 AEDT.
        (
            "30 2 * * *",
            "Australia/Sydney",
            "2026-10-02T00:00:00Z",
            &[
                "2026-10-02T16:30Z",
                "2026-10-03T16:00Z",
                "2026-10-04T15:30Z",
            ],
        ),
        (
            "30 2 * * *",
            "Australia/Sydney",
            "2026-04-03T00:00:00Z",
            &[
                "2026-04-03T15:30Z",
                "2026-04-04T15:30Z",
                "2026-04-05T16:30Z",
            ],
        ),
        // Australia/Lord_Howe, a 30-minute shift: 2026-10-04 02:00 -> 02:30 (+10:30 -> +11),
        // 2026-04-05 02:00 -> 01:30 (+11 -> +10:30).
        (
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-02T00:00:00Z",
            &[
                "2026-10-02T15:45Z",
                "2026-10-03T15:30Z",
                "2026-10-04T15:15Z",
            ],
        ),
        (
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2026-04-03T00:00:00Z",
            &[
                "2026-04-03T14:45Z",
                "2026-04-04T14:45Z",
                "2026-04-05T15:15Z",
            ],
        ),
        // 02:45 still exists on the spring-forward night (only 02:00-02:30 is skipped).
        (
            "45 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-03T00:00:00Z",
            &["2026-10-03T15:45Z", "2026-10-04T15:45Z"],
        ),
        // America/Havana springs forward at midnight (2026-03-08 00:00 CST -> 01:00 CDT).
        (
            "0 0 * * *",
            "America/Havana",
            "2026-03-07T00:00:00Z",
            &[
                "2026-03-07T05:00Z",
                "2026-03-08T05:00Z",
                "2026-03-09T04:00Z",
            ],
        ),
        // Asia/Kolkata: +05:30 all year.
        (
            "30 2 * * *",
            "Asia/Kolkata",
            "2026-03-28T00:00:00Z",
            &[
                "2026-03-28T21:00Z",
                "2026-03-29T21:00Z",
                "2026-03-30T21:00Z",
            ],
        ),
    ];
    for (cron, tz, from, want) in cases {
        let w = window(cron, 60, tz);
        assert_eq!(
            starts(&w, from, want.len()),
            *want,
            "{cron} in {tz} from {from}"
        );
    }
}

#[test]
fn duration_is_elapsed_time_across_transitions() {
    // (cron, zone, minutes, from, start, end, end as local wall clock)
    let cases: &[(&str, &str, i64, &str, &str, &str, &str)] = &[
        // 01:00 CET + 4h on the spring-forward night ends at 06:00 CEST, not 05:00.
        (
            "0 1 * * *",
            "Europe/Berlin",
            240,
            "2026-03-29T00:00:00Z",
            "2026-03-29T00:00:00Z",
            "2026-03-29T04:00:00Z",
            "06:00",
        ),
        // 00:00 CEST + 4h on fall-back ends at 03:00 CET.
        (
            "0 0 * * *",
            "Europe/Berlin",
            240,
            "2026-10-24T22:00:00Z",
            "2026-10-24T22:00:00Z",
            "2026-10-25T02:00:00Z",
            "03:00",
        ),
        (
            "0 0 * * *",
            "America/New_York",
            240,
            "2026-11-01T00:00:00Z",
            "2026-11-01T04:00:00Z",
            "2026-11-01T08:00:00Z",
            "03:00",
        ),
        (
            "0 1 * * *",
            "America/New_York",
            240,
            "2026-03-08T00:00:00Z",
            "2026-03-08T06:00:00Z",
            "2026-03-08T10:00:00Z",
            "06:00",
        ),
        (
            "0 1 * * *",
            "Australia/Lord_Howe",
            120,
            "2026-10-03T00:00:00Z",
            "2026-10-03T14:30:00Z",
            "2026-10-03T16:30:00Z",
            "03:30",
        ),
        (
            "0 0 * * *",
            "Australia/Sydney",
            7 * 24 * 60,
            "2026-04-01T00:00:00Z",
            "2026-04-01T13:00:00Z",
            "2026-04-08T13:00:00Z",
            "23:00",
        ),
    ];
    for (cron, tz, minutes, from, start, end, end_local) in cases {
        let w = window(cron, *minutes, tz);
        let o = w.occurrences(utc(from)).next().unwrap();
        assert_eq!(
            o,
            Occurrence {
                start: utc(start),
                end: utc(end)
            },
            "{cron} {tz}"
        );
        let zone: Tz = tz.parse().unwrap();
        assert_eq!(
            o.end.with_timezone(&zone).format("%H:%M").to_string(),
            *end_local
        );
    }
}

#[test]
fn days_names_steps_and_the_or_rule() {
    // All in UTC; 2026-11-01 is a Sunday.
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "0 12 * * 0",
            "2026-11-02T00:00:00Z",
            &["2026-11-08T12:00Z", "2026-11-15T12:00Z"],
        ),
        (
            "0 12 * * 7",
            "2026-11-02T00:00:00Z",
            &["2026-11-08T12:00Z", "2026-11-15T12:00Z"],
        ),
        (
            "0 12 * * sun",
            "2026-11-02T00:00:00Z",
            &["2026-11-08T12:00Z", "2026-11-15T12:00Z"],
        ),
        (
            "0 12 * * 6-7",
            "2026-11-02T00:00:00Z",
            &[
                "2026-11-07T12:00Z",
                "2026-11-08T12:00Z",
                "2026-11-14T12:00Z",
            ],
        ),
        (
            "0 9 * * MON-Fri",
            "2026-11-06T10:00:00Z",
            &["2026-11-09T09:00Z", "2026-11-10T09:00Z"],
        ),
        (
            "0 0 1 jan,JUL *",
            "2026-03-01T00:00:00Z",
            &["2026-07-01T00:00Z", "2027-01-01T00:00Z"],
        ),
        // Both restricted: the 13th OR a Friday.
        (
            "0 0 13 * fri",
            "2026-11-01T00:00:00Z",
            &[
                "2026-11-06T00:00Z",
                "2026-11-13T00:00Z",
                "2026-11-20T00:00Z",
                "2026-11-27T00:00Z",
                "2026-12-04T00:00Z",
                "2026-12-11T00:00Z",
                "2026-12-13T00:00Z",
                "2026-12-18T00:00Z",
            ],
        ),
        // `*/2` counts as `*`: odd days AND Mondays.
        (
            "0 0 */2 * mon",
            "2026-11-01T00:00:00Z",
            &[
                "2026-11-09T00:00Z",
                "2026-11-23T00:00Z",
                "2026-12-07T00:00Z",
                "2026-12-21T00:00Z",
            ],
        ),
        (
            "*/20 9-17/4 * * *",
            "2026-11-02T00:00:00Z",
            &[
                "2026-11-02T09:00Z",
                "2026-11-02T09:20Z",
                "2026-11-02T09:40Z",
                "2026-11-02T13:00Z",
                "2026-11-02T13:20Z",
                "2026-11-02T13:40Z",
                "2026-11-02T17:00Z",
                "2026-11-02T17:20Z",
                "2026-11-02T17:40Z",
                "2026-11-03T09:00Z",
            ],
        ),
        ("0 0 * * *", "2026-11-02T00:00:00Z", &["2026-11-02T00:00Z"]), // start == from counts
        (
            "0 0 29 2 *",
            "2026-01-01T00:00:00Z",
            &["2028-02-29T00:00Z", "2032-02-29T00:00Z"],
        ),
        // 2100 is not a leap year: eight years between two 29 Februaries.
        ("0 0 29 2 *", "2097-01-01T00:00:00Z", &["2104-02-29T00:00Z"]),
        // `*/7` is Sunday (0 and 7) and unrestricted for the OR rule: 29 February that
        // is a Sunday, 40 years apart across 2100.
        (
            "0 0 29 2 */7",
            "2033-01-01T00:00:00Z",
            &[
                "2060-02-29T00:00Z",
                "2088-02-29T00:00Z",
                "2128-02-29T00:00Z",
            ],
        ),
        // 31 February never exists, but OR makes every Monday of February count.
        (
            "0 0 31 2 mon",
            "2026-01-01T00:00:00Z",
            &["2026-02-02T00:00Z", "2026-02-09T00:00Z"],
        ),
    ];
    for (cron, from, want) in cases {
        let w = window(cron, 60, "UTC");
        assert_eq!(starts(&w, from, want.len()), *want, "{cron} from {from}");
    }
}

#[test]
fn active_at_next_or_current_and_time_left() {
    // 22:00 Berlin for 12h: opened yesterday evening, still open in the morning.
    let w = window("0 22 * * *", 12 * 60, "Europe/Berlin");
    let yesterday = Occurrence {
        start: utc("2026-11-02T21:00:00Z"),
        end: utc("2026-11-03T09:00:00Z"),
    };
    let tonight = Occurrence {
        start: utc("2026-11-03T21:00:00Z"),
        end: utc("2026-11-04T09:00:00Z"),
    };
    // (t, active_at, next_or_current, time_left in minutes)
    let cases: &[(&str, Option<Occurrence>, Occurrence, Option<i64>)] = &[
        (
            "2026-11-03T05:00:00Z",
            Some(yesterday),
            yesterday,
            Some(240),
        ),
        (
            "2026-11-02T21:00:00Z",
            Some(yesterday),
            yesterday,
            Some(720),
        ),
        ("2026-11-03T08:59:00Z", Some(yesterday), yesterday, Some(1)),
        ("2026-11-03T09:00:00Z", None, tonight, None),
        ("2026-11-03T20:59:59Z", None, tonight, None),
        ("2026-11-03T21:00:00Z", Some(tonight), tonight, Some(720)),
    ];
    for (t, active, next, left) in cases {
        let t = utc(t);
        assert_eq!(w.active_at(t), *active, "active_at {t}");
        assert_eq!(w.next_or_current(t), *next, "next_or_current {t}");
        assert_eq!(
            w.time_left(t).map(|d| d.num_minutes()),
            *left,
            "time_left {t}"
        );
    }

    // Overlapping hourly windows of 3h: the latest start wins (ends last).
    let w = window("0 * * * *", 180, "UTC");
    let t = utc("2026-11-03T10:30:00Z");
    assert_eq!(w.active_at(t).unwrap().start, utc("2026-11-03T10:00:00Z"));
    assert_eq!(w.time_left(t), Some(Duration::minutes(150)));

    // A 7-day window opened five days ago.
    let w = window("0 0 * * mon", 7 * 24 * 60, "UTC");
    let t = utc("2026-11-07T00:00:00Z");
    assert_eq!(w.active_at(t).unwrap().start, utc("2026-11-02T00:00:00Z"));
    assert_eq!(w.time_left(t), Some(Duration::days(2)));

    // Across the gap: a window "at 02:30" on the spring-forward night is open from 03:00.
    let w = window("30 2 * * *", 60, "Europe/Berlin");
    assert_eq!(w.active_at(utc("2026-03-29T00:59:59Z")), None);
    assert_eq!(
        w.time_left(utc("2026-03-29T01:00:00Z")),
        Some(Duration::minutes(60))
    );
}

#[test]
fn never_matching_expressions_are_refused() {
    for cron in [
        "0 0 31 2 *",
        "0 0 30 feb *",
        "0 0 31 apr,jun,sep,nov *",
        "0 0 30,31 2 */2",
    ] {
        let err = MaintenanceWindow::new(cron, Duration::hours(1), "UTC").unwrap_err();
        assert!(
            err.to_string().starts_with("cron: never occurs"),
            "{cron}: {err}"
        );
    }
}
