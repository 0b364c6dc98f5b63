//! Maintenance windows against an independent oracle: `tests/window_oracle/oracle.py`
//! maps wall-clock starts to UTC with Python's `zoneinfo` (standard library,
//! Python >= 3.9) by walking local minutes, and we compare every window around the
//! DST transitions of several zones. A missing `python3` fails the test.

use std::io::Write;
use std::process::{Command, Stdio};

use catalog::window::MaintenanceWindow;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

/// (zone, dates on which its offset changes in 2026; empty if it has no DST).
const ZONES: &[(&str, &[&str])] = &[
    ("Europe/Berlin", &["2026-03-29", "2026-10-25"]),
    ("Europe/London", &["2026-03-29", "2026-10-25"]),
    ("America/New_York", &["2026-03-08", "2026-11-01"]),
    ("America/St_Johns", &["2026-03-08", "2026-11-01"]),
    ("Australia/Sydney", &["2026-04-05", "2026-10-04"]),
    ("Australia/Lord_Howe", &["2026-04-05", "2026-10-04"]),
    ("Pacific/Chatham", &["2026-04-05", "2026-09-27"]),
    // Transitions at midnight; in Beirut the repeated hour is 23:00-24:00 of Saturday.
    ("America/Havana", &["2026-03-08", "2026-11-01"]),
    ("Asia/Beirut", &["2026-03-29", "2026-10-25"]),
    ("Asia/Kolkata", &[]),
];

/// (minute field, hour field, the same as explicit lists for the oracle, duration).
type Schedule = (&'static str, &'static str, Vec<u32>, Vec<u32>, i64);

fn schedules() -> Vec<Schedule> {
    vec![
        ("30", "2", vec![30], vec![2], 60),
        ("0", "2", vec![0], vec![2], 240),
        ("15", "2", vec![15], vec![2], 30),
        ("45", "1", vec![45], vec![1], 90),
        ("0", "1", vec![0], vec![1], 240),
        (
            "*/15",
            "1-3",
            (0..60).step_by(15).collect(),
            vec![1, 2, 3],
            20,
        ),
        ("*", "2", (0..60).collect(), vec![2], 1),
        ("0,30", "0-4", vec![0, 30], (0..=4).collect(), 45),
        ("0", "*/6", vec![0], vec![0, 6, 12, 18], 7 * 24 * 60),
        ("59", "23", vec![59], vec![23], 2),
        ("30", "23", vec![30], vec![23], 60),
    ]
}

fn oracle(cases: &Value) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/window_oracle/oracle.py");
    let mut child = match Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "this test needs python3 (>= 3.9, for zoneinfo) on PATH as the independent \
             oracle; install it (e.g. apt-get install python3): {e}"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "oracle.py failed: {}", out.status);
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("oracle output is JSON")
}

fn utc(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn windows_around_dst_transitions_match_python_zoneinfo() {
    // One case per (zone, transition or ordinary date, schedule): three local days
    // centred on the date.
    let mut cases = Vec::new();
    let mut expect_change = Vec::new();
    let mut inputs = Vec::new();
    for (tz, transitions) in ZONES {
        let dates: Vec<&str> = if transitions.is_empty() {
            vec!["2026-03-29", "2026-10-25"]
        } else {
            transitions.to_vec()
        };
        for day in dates {
            let d: NaiveDate = day.parse().unwrap();
            let days: Vec<String> = [d.pred_opt().unwrap(), d, d.succ_opt().unwrap()]
                .iter()
                .map(|d| d.to_string())
                .collect();
            for (m, h, minutes, hours, duration) in schedules() {
                cases.push((tz, m, h, duration));
                expect_change.push(!transitions.is_empty());
                inputs.push(json!({"tz": tz, "minutes": minutes, "hours": hours,
                                   "dates": days, "duration_minutes": duration}));
            }
        }
    }
    let expected = oracle(&Value::Array(inputs));
    assert_eq!(expected.len(), cases.len());

    let mut compared = 0;
    for (((tz, m, h, duration), want), changes) in cases.iter().zip(&expected).zip(expect_change) {
        assert_eq!(
            want["offset_changes"].as_bool(),
            Some(changes),
            "{tz}: the listed dates do not match its 2026 transitions: {want}"
        );
        let cron = format!("{m} {h} * * *");
        let window = MaintenanceWindow::new(&cron, Duration::minutes(*duration), tz).unwrap();
        let (from, until) = (utc(&want["from"]), utc(&want["until"]));
        let got: Vec<(DateTime<Utc>, DateTime<Utc>)> = window
            .occurrences(from)
            .take_while(|o| o.start < until)
            .map(|o| (o.start, o.end))
            .collect();
        let want: Vec<(DateTime<Utc>, DateTime<Utc>)> = want["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (utc(&w[0]), utc(&w[1])))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "{cron} for {duration} min in {tz} from {from}");
        compared += want.len();
    }
    // 10 zones x 2 dates x 11 schedules; over a thousand windows.
    assert_eq!(cases.len(), 220);
    assert!(compared > 1000, "{compared}");
}
