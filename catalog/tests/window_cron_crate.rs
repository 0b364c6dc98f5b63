//! Our crontab matcher against the `cron` crate, in zones without DST (where the
//! two can agree). The `cron` crate's expression is built from our parsed fields,
//! never from the user's text: it wants a leading seconds field, numbers weekdays
//! 1-7 from Sunday (ours: 0-7, Sunday 0 or 7) and always ANDs day-of-month with
//! day-of-week, so crontab's OR rule is two `cron` schedules merged.

use std::str::FromStr;

use catalog::window::{CronField, MaintenanceWindow};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

fn list(values: &[u32], add: u32) -> String {
    let v: Vec<String> = values.iter().map(|v| (v + add).to_string()).collect();
    v.join(",")
}

/// The next `n` starts at or after `from` according to the `cron` crate.
fn cron_crate_starts(w: &MaintenanceWindow, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let spec = w.cron();
    let (min, hour, month) = (
        list(&spec.values(CronField::Minute), 0),
        list(&spec.values(CronField::Hour), 0),
        list(&spec.values(CronField::Month), 0),
    );
    let dom = list(&spec.values(CronField::DayOfMonth), 0);
    // cron crate: 1 = Sunday ... 7 = Saturday.
    let dow = list(&spec.values(CronField::DayOfWeek), 1);
    let days: Vec<(String, String)> =
        if spec.is_star(CronField::DayOfMonth) || spec.is_star(CronField::DayOfWeek) {
            vec![(dom, dow)]
        } else {
            vec![(dom, "*".into()), ("*".into(), dow)]
        };
    let tz: Tz = w.tz();
    let mut all: Vec<DateTime<Utc>> = days
        .iter()
        .flat_map(|(dom, dow)| {
            let expr = format!("0 {min} {hour} {dom} {month} {dow}");
            let schedule =
                cron::Schedule::from_str(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let after = (from - Duration::seconds(1)).with_timezone(&tz);
            schedule
                .after(&after)
                .take(n)
                .map(|t| t.with_timezone(&Utc))
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort();
    all.dedup();
    all.truncate(n);
    all
}

fn compare(cron: &str, tz: &str, from: &str) {
    let w = MaintenanceWindow::new(cron, Duration::hours(1), tz).unwrap();
    let from: DateTime<Utc> = from.parse().unwrap();
    // The cron crate's years end at 2100: compare the starts before that.
    let horizon: DateTime<Utc> = "2100-01-01T00:00:00Z".parse().unwrap();
    let ours: Vec<DateTime<Utc>> = w
        .occurrences(from)
        .take(40)
        .map(|o| o.start)
        .take_while(|t| *t < horizon)
        .collect();
    let mut theirs = cron_crate_starts(&w, from, 40);
    theirs.retain(|t| *t < horizon);
    assert!(!ours.is_empty(), "{cron} in {tz}: no start before 2100");
    assert_eq!(ours, theirs, "{cron} in {tz} from {from}");
}

#[test]
fn hand_picked_expressions_agree() {
    for cron in [
        "0 1 * * 1-5",
        "*/15 2 * * *",
        "30 2 * * 0",
        "30 2 * * 7",
        "0 0 13 * fri",
        "0 0 1,15 * mon",
        "0 0 */2 * mon",
        "0 0 1 */3 *",
        "5-59/20 9-17/4 * jan,jul *",
        "0 0 29 2 *",
        "0 0 31 2 mon",
        "59 23 31 dec *",
        "0 12 * * sat,SUN",
        "0 0 L * *".replace('L', "28-31").as_str(),
    ] {
        for tz in ["UTC", "Asia/Kolkata"] {
            compare(cron, tz, "2026-01-01T00:00:00Z");
        }
    }
}

#[test]
fn generated_expressions_agree() {
    // A fixed linear congruential sequence: reproducible, no extra dependency.
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u32| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) % u64::from(n)) as u32
    };
    let fields = [(0u32, 59u32), (0, 23), (1, 31), (1, 12), (0, 7)];
    let mut compared = 0;
    for _ in 0..300 {
        let expr: Vec<String> = fields
            .iter()
            .map(|&(lo, hi)| {
                let span = hi - lo + 1;
                let a = lo + next(span);
                let b = a + next(hi - a + 1);
                match next(6) {
                    0 => "*".to_owned(),
                    1 => format!("*/{}", 1 + next(span)),
                    2 => format!("{a}-{b}"),
                    3 => format!("{a}-{b}/{}", 1 + next(5)),
                    4 => format!("{a},{}", lo + next(span)),
                    _ => a.to_string(),
                }
            })
            .collect();
        let cron = expr.join(" ");
        if MaintenanceWindow::new(&cron, Duration::hours(1), "UTC").is_err() {
            continue; // e.g. 30 February
        }
        compare(&cron, "UTC", "2026-06-15T12:34:00Z");
        compared += 1;
    }
    assert!(
        compared > 200,
        "only {compared} valid expressions generated"
    );
}
