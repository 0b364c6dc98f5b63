//! `updater-server windows preview`, run as the real binary.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_updater-server"))
        .args(["windows", "preview"])
        .args(args)
        .env_remove("UPDATER_DATA_DIR")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_lists_utc_instants_across_dst() {
    // (args, exact stdout)
    let cases: &[(&[&str], &str)] = &[
        // 02:30 is skipped on 2026-03-29 in Berlin: opens at 03:00 CEST.
        (
            &[
                "--cron",
                "30 2 * * *",
                "--duration",
                "1h30m",
                "--tz",
                "Europe/Berlin",
                "--from",
                "2026-03-28T12:00:00Z",
                "--count",
                "2",
                "--json",
            ],
            r#"[{"start":"2026-03-29T01:00:00Z","end":"2026-03-29T02:30:00Z"},{"start":"2026-03-30T00:30:00Z","end":"2026-03-30T02:00:00Z"}]"#,
        ),
        // Repeated hour on fall-back: once, at the first 02:30 (CEST).
        (
            &[
                "--cron",
                "30 2 * * *",
                "--duration",
                "90m",
                "--tz",
                "Europe/Berlin",
                "--from",
                "2026-10-25T00:00:00+02:00",
                "--count",
                "2",
                "--json",
            ],
            r#"[{"start":"2026-10-25T00:30:00Z","end":"2026-10-25T02:00:00Z"},{"start":"2026-10-26T01:30:00Z","end":"2026-10-26T03:00:00Z"}]"#,
        ),
        // Default count is 5; dom/dow OR rule (the 13th or a Friday).
        (
            &[
                "--cron",
                "0 0 13 * FRI",
                "--duration",
                "4h",
                "--tz",
                "UTC",
                "--from",
                "2026-11-01T00:00:00Z",
                "--json",
            ],
            concat!(
                r#"[{"start":"2026-11-06T00:00:00Z","end":"2026-11-06T04:00:00Z"},"#,
                r#"{"start":"2026-11-13T00:00:00Z","end":"2026-11-13T04:00:00Z"},"#,
                r#"{"start":"2026-11-20T00:00:00Z","end":"2026-11-20T04:00:00Z"},"#,
                r#"{"start":"2026-11-27T00:00:00Z","end":"2026-11-27T04:00:00Z"},"#,
                r#"{"start":"2026-12-04T00:00:00Z","end":"2026-12-04T04:00:00Z"}]"#
            ),
        ),
        (
            &[
                "--cron",
                "0 1 * * *",
                "--duration",
                "1d",
                "--tz",
                "Asia/Kolkata",
                "--from",
                "2026-01-01T00:00:00Z",
                "--count",
                "0",
                "--json",
            ],
            "[]",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(ok(args).trim_end(), *want, "{args:?}");
    }
}

#[test]
fn table_shows_local_and_utc() {
    let out = ok(&[
        "--cron",
        "0 1 * * *",
        "--duration",
        "4h",
        "--tz",
        "Europe/Berlin",
        "--from",
        "2026-03-28T23:30:00Z",
        "--count",
        "1",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "\"0 1 * * *\" for 4h in Europe/Berlin, from 2026-03-28T23:30:00Z"
    );
    // Elapsed time: 01:00 CET + 4h is 06:00 CEST.
    assert_eq!(
        lines[2],
        "1  Sun 2026-03-29 01:00 +01:00 CET  Sun 2026-03-29 06:00 +02:00 CEST  \
         2026-03-29 00:00  2026-03-29 04:00"
    );
    assert!(lines[1].starts_with("#  opens (Europe/Berlin)"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");

    // A window already open at --from is mentioned.
    let out = ok(&[
        "--cron",
        "0 22 * * *",
        "--duration",
        "12h",
        "--tz",
        "UTC",
        "--from",
        "2026-11-03T05:00:00Z",
        "--count",
        "1",
    ]);
    assert!(
        out.contains("open at that instant since Mon 2026-11-02 22:00 +00:00 UTC until Tue 2026-11-03 10:00 +00:00 UTC"),
        "{out}"
    );
}

#[test]
fn invalid_input_fails_with_the_reason() {
    let base = ["--from", "2026-01-01T00:00:00Z", "--json"];
    // (cron, duration, tz, the reason printed on stderr)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("0 0 1 * * *", "1h", "UTC", "cron: 5 fields expected (minute hour day-of-month month day-of-week), found 6 (seconds and year fields are not supported)"),
        ("0 24 * * *", "1h", "UTC", "cron: hour: 24 is out of range 0-23"),
        ("0 0 * * 8", "1h", "UTC", "cron: day-of-week: 8 is out of range 0-7"),
        ("0 0 * foo *", "1h", "UTC", "cron: month: \"foo\" is not a number or a month name (jan-dec)"),
        ("*/0 * * * *", "1h", "UTC", "cron: minute: step \"0\" must be a number of at least 1"),
        ("0 5-1 * * *", "1h", "UTC", "cron: hour: range 5-1 is reversed"),
        ("0 0 31 2 *", "1h", "UTC", "cron: never occurs: no month among those selected has any of the selected days of the month"),
        ("0 1 * * *", "1h", "Europe/Nowhere", "tz: unknown time zone \"Europe/Nowhere\" (expected an IANA name such as Europe/Berlin)"),
        ("0 1 * * *", "8d", "UTC", "duration: 11520 minutes is longer than the maximum of 7 days"),
        ("0 1 * * *", "0m", "UTC", "duration: must be positive"),
        ("0 1 * * *", "1.5h", "UTC", "duration: cannot parse \"1.5h\": units are d, h, m, largest first, each at most once"),
    ];
    for (cron, duration, tz, want) in cases {
        let mut args = vec!["--cron", cron, "--duration", duration, "--tz", tz];
        args.extend(base);
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(
            stderr,
            format!("error: invalid maintenance window: {want}\n"),
            "{args:?}"
        );
    }
    let out = run(&[
        "--cron",
        "0 1 * * *",
        "--duration",
        "1h",
        "--tz",
        "UTC",
        "--from",
        "yesterday",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--from: \"yesterday\" is not an RFC 3339 instant"));
}
