//! Maintenance windows: when a device may be updated.
//!
//! A window is a standard crontab(5) expression giving the local wall-clock start
//! times, a duration, and an IANA time zone:
//!
//! ```
//! use catalog::window::MaintenanceWindow;
//! use chrono::{DateTime, Duration, Utc};
//!
//! let w = MaintenanceWindow::new("30 2 * * *", Duration::hours(4), "Europe/Berlin").unwrap();
//! let from: DateTime<Utc> = "2026-03-29T00:00:00Z".parse().unwrap();
//! let first = w.occurrences(from).next().unwrap();
//! // 02:30 does not exist in Berlin that night: the window opens at 03:00 CEST.
//! assert_eq!(first.start.to_rfc3339(), "2026-03-29T01:00:00+00:00");
//! assert_eq!(first.end.to_rfc3339(), "2026-03-29T05:00:00+00:00");
//! ```
//!
//! Semantics across daylight-saving changes:
//! - a start in a spring-forward gap opens at the first instant after the gap;
//! - a start whose wall-clock time occurs twice on fall-back opens once, at the
//!   first occurrence;
//! - the duration is elapsed time (4 h from 01:00 on the spring-forward night of
//!   Europe/Berlin ends at 06:00 local, not 05:00).
//!
//! Several starts that land on the same instant (all of `*/15 2 * * *` on a night
//! where 02:00–03:00 is skipped) open one window. Overlapping windows are reported
//! separately; [`MaintenanceWindow::active_at`] picks the one that ends last.
//!
//! Time only enters as a `DateTime<Utc>` argument, so server and agent evaluate the
//! same windows for any date.

mod spec;

use std::collections::VecDeque;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use self::spec::{CronError, CronField, CronSpec};

/// The longest window accepted: 7 days.
pub const MAX_DURATION: Duration = Duration::days(7);

/// How many consecutive non-matching days the search scans before giving up: one
/// Gregorian cycle of 400 years, after which dates and weekdays repeat exactly. A
/// validated expression matches within it (gaps can be long: 29 February on a
/// Sunday comes back after 40 years across 2100), so this only ends the search at
/// the end of chrono's calendar. Scanning a day is a few bit tests.
const SEARCH_DAYS: u32 = 146_097;

/// Longest spring-forward gap searched for its end (a whole day was skipped by
/// Pacific/Apia in 2011).
const MAX_GAP_MINUTES: i64 = 48 * 60;

/// Why a window definition was refused. The message names the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The crontab expression is invalid or never matches. (The reason is part of
    /// the message, not a `source`, so `{:#}` chains do not print it twice.)
    #[error("cron: {0}")]
    Cron(CronError),
    /// The duration is zero or negative.
    #[error("duration: must be positive")]
    DurationNotPositive,
    /// The duration is longer than [`MAX_DURATION`].
    #[error("duration: {minutes} minutes is longer than the maximum of 7 days")]
    DurationTooLong {
        /// The duration given, in whole minutes.
        minutes: i64,
    },
    /// The duration has a seconds part.
    #[error("duration: must be a whole number of minutes")]
    DurationNotWholeMinutes,
    /// A duration text such as `1h30m` could not be parsed.
    #[error("duration: cannot parse {text:?}: {reason}")]
    DurationSyntax {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not an IANA time-zone name known to the tz database.
    #[error("tz: unknown time zone {0:?} (expected an IANA name such as Europe/Berlin)")]
    UnknownZone(String),
}

impl From<CronError> for WindowError {
    fn from(e: CronError) -> Self {
        WindowError::Cron(e)
    }
}

/// One opening of a window: `start <= t < end` is inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Occurrence {
    /// When the window opens.
    pub start: DateTime<Utc>,
    /// When it closes (exclusive): `start` plus the duration in elapsed time.
    pub end: DateTime<Utc>,
}

impl Occurrence {
    /// Whether `t` is inside: `start <= t < end`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// A recurring maintenance window: crontab start times, a duration, a time zone.
///
/// Serializes as `{"cron": "0 1 * * 1-5", "duration_minutes": 240, "tz": "Europe/Berlin"}`;
/// deserializing validates exactly like [`MaintenanceWindow::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowRepr", into = "WindowRepr")]
pub struct MaintenanceWindow {
    cron: CronSpec,
    duration: Duration,
    tz: Tz,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowRepr {
    cron: String,
    duration_minutes: i64,
    tz: String,
}

impl TryFrom<WindowRepr> for MaintenanceWindow {
    type Error = WindowError;
    fn try_from(r: WindowRepr) -> Result<Self, WindowError> {
        let duration =
            Duration::try_minutes(r.duration_minutes).ok_or(WindowError::DurationTooLong {
                minutes: r.duration_minutes,
            })?;
        MaintenanceWindow::new(&r.cron, duration, &r.tz)
    }
}

impl From<MaintenanceWindow> for WindowRepr {
    fn from(w: MaintenanceWindow) -> Self {
        WindowRepr {
            cron: w.cron.as_str().to_owned(),
            duration_minutes: w.duration.num_minutes(),
            tz: w.tz.name().to_owned(),
        }
    }
}

impl MaintenanceWindow {
    /// Validates and builds a window.
    ///
    /// `cron` is a 5-field crontab(5) expression (see [`CronSpec`]); `duration` must be
    /// positive, whole minutes and at most [`MAX_DURATION`]; `tz` an IANA zone name
    /// (case-sensitive, e.g. `Europe/Berlin`, `UTC`). Fields are checked in that order.
    pub fn new(cron: &str, duration: Duration, tz: &str) -> Result<Self, WindowError> {
        let cron = CronSpec::parse(cron)?;
        check_duration(duration)?;
        let tz = tz
            .parse::<Tz>()
            .map_err(|_| WindowError::UnknownZone(tz.to_owned()))?;
        Ok(MaintenanceWindow { cron, duration, tz })
    }

    /// The start times.
    pub fn cron(&self) -> &CronSpec {
        &self.cron
    }

    /// How long each opening lasts (elapsed time).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The zone the start times are read in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The windows whose start is at or after `from`, in increasing order of start.
    ///
    /// The iterator is endless for practical purposes (it ends only if no start is
    /// found within 400 years, which a validated expression cannot cause before the
    /// end of chrono's calendar).
    pub fn occurrences(&self, from: DateTime<Utc>) -> Occurrences {
        // Two days back: a start on an earlier local date can map to an instant at
        // or after `from` only through a gap, and gaps are shorter than that.
        let date = from.with_timezone(&self.tz).date_naive();
        Occurrences {
            cron: self.cron.clone(),
            duration: self.duration,
            tz: self.tz,
            from,
            date: date.checked_sub_days(chrono::Days::new(2)).or(Some(date)),
            pending: VecDeque::new(),
            last: None,
        }
    }

    /// The window containing `t` (`start <= t < end`), including one that opened
    /// before `t` (yesterday, say). If overlapping windows contain `t`, the one that
    /// started last, hence ends last, is returned.
    pub fn active_at(&self, t: DateTime<Utc>) -> Option<Occurrence> {
        let from = t.checked_sub_signed(self.duration)?;
        self.occurrences(from)
            .take_while(|o| o.start <= t)
            .filter(|o| o.contains(t))
            .last()
    }

    /// The window containing `t`, or else the next one to open.
    ///
    /// # Panics
    /// Only if no window opens within 400 years after `t`, which cannot happen for a
    /// validated window unless `t` is within 400 years of chrono's last date.
    pub fn next_or_current(&self, t: DateTime<Utc>) -> Occurrence {
        self.active_at(t)
            .or_else(|| self.occurrences(t).next())
            .expect("a validated maintenance window occurs within 400 years")
    }

    /// Time left in the window containing `t` (`end - t`), or `None` outside any
    /// window. A device should not start an install expected to take longer.
    ///
    /// Back-to-back windows are not merged: this is the time left in the one window
    /// [`active_at`](Self::active_at) returns, so the answer errs on the short side.
    pub fn time_left(&self, t: DateTime<Utc>) -> Option<Duration> {
        self.active_at(t).map(|o| o.end - t)
    }
}

/// Iterator over a window's openings; see [`MaintenanceWindow::occurrences`].
#[derive(Debug, Clone)]
pub struct Occurrences {
    cron: CronSpec,
    duration: Duration,
    tz: Tz,
    from: DateTime<Utc>,
    /// The next local date to expand (`None` past chrono's last date).
    date: Option<NaiveDate>,
    /// Starts of the expanded dates not yet returned, in order.
    pending: VecDeque<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Iterator for Occurrences {
    type Item = Occurrence;

    fn next(&mut self) -> Option<Occurrence> {
        let mut idle_days = 0;
        loop {
            while let Some(start) = self.pending.pop_front() {
                // Local-time order maps to UTC order (earliest of a fold, end of a gap),
                // so equal instants are adjacent: keep the first.
                if start < self.from || self.last.is_some_and(|l| start <= l) {
                    continue;
                }
                self.last = Some(start);
                return Some(Occurrence {
                    start,
                    end: start.checked_add_signed(self.duration)?,
                });
            }
            if idle_days > SEARCH_DAYS {
                return None;
            }
            let date = self.date?;
            self.date = date.succ_opt();
            if !self.cron.matches_date(date) {
                idle_days += 1;
                continue;
            }
            idle_days = 0;
            for (h, m) in self.cron.times() {
                let local = date.and_hms_opt(h, m, 0).expect("hour < 24, minute < 60");
                if let Some(start) = resolve_local(self.tz, local) {
                    self.pending.push_back(start);
                }
            }
        }
    }
}

/// The instant a local wall-clock start opens: itself if unique, the first of two
/// on fall-back, the end of the gap if skipped on spring-forward. Gap ends are found
/// minute by minute: every tz database transition of the modern era is on a whole
/// minute.
fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    (0..=MAX_GAP_MINUTES).find_map(|k| {
        let t = local.checked_add_signed(Duration::minutes(k))?;
        tz.from_local_datetime(&t)
            .earliest()
            .map(|d| d.with_timezone(&Utc))
    })
}

fn check_duration(d: Duration) -> Result<(), WindowError> {
    if d <= Duration::zero() {
        return Err(WindowError::DurationNotPositive);
    }
    if d > MAX_DURATION {
        return Err(WindowError::DurationTooLong {
            minutes: d.num_minutes(),
        });
    }
    if d.num_seconds() % 60 != 0 || d.subsec_nanos() != 0 {
        return Err(WindowError::DurationNotWholeMinutes);
    }
    Ok(())
}

/// Parses a duration written as days, hours and minutes, largest unit first, each at
/// most once: `4h`, `90m`, `1h30m`, `2d`, `1d12h`. The result is checked like
/// [`MaintenanceWindow::new`] checks durations (positive, at most 7 days).
pub fn parse_duration(text: &str) -> Result<Duration, WindowError> {
    let err = |reason| WindowError::DurationSyntax {
        text: text.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(err("empty"));
    }
    let mut total = 0i64;
    let mut rest = text;
    let mut allowed = "dhm";
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("expected a number followed by d, h or m"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        let unit = rest[digits..]
            .chars()
            .next()
            .ok_or(err("missing unit (d, h or m)"))?;
        let pos = allowed
            .find(unit)
            .ok_or(err("units are d, h, m, largest first, each at most once"))?;
        allowed = &allowed[pos + 1..];
        let minutes = match unit {
            'd' => 24 * 60,
            'h' => 60,
            _ => 1,
        };
        total = n
            .checked_mul(minutes)
            .and_then(|v| v.checked_add(total))
            .filter(|v| *v <= MAX_DURATION.num_minutes() * 1000)
            .ok_or(err("number too large"))?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    let d = Duration::minutes(total);
    check_duration(d)?;
    Ok(d)
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `2d`).
pub fn format_duration(d: Duration) -> String {
    let total = d.num_minutes();
    let (days, hours, minutes) = (total / 1440, total % 1440 / 60, total % 60);
    let mut s = String::new();
    for (n, unit) in [(days, 'd'), (hours, 'h'), (minutes, 'm')] {
        if n != 0 {
            s.push_str(&format!("{n}{unit}"));
        }
    }
    if s.is_empty() {
        s.push_str("0m");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok: &[(&str, i64, &str)] = &[
            ("4h", 240, "4h"),
            ("90m", 90, "1h30m"),
            ("1h30m", 90, "1h30m"),
            ("2d", 2880, "2d"),
            ("1d12h", 2160, "1d12h"),
            ("7d", 10080, "7d"),
            ("1m", 1, "1m"),
        ];
        for (text, minutes, formatted) in ok {
            let d = parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(d.num_minutes(), *minutes, "{text}");
            assert_eq!(format_duration(d), *formatted, "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "duration: cannot parse \"\": empty"),
            ("4", "duration: cannot parse \"4\": missing unit (d, h or m)"),
            ("h", "duration: cannot parse \"h\": expected a number followed by d, h or m"),
            ("4s", "duration: cannot parse \"4s\": units are d, h, m, largest first, each at most once"),
            ("30m1h", "duration: cannot parse \"30m1h\": units are d, h, m, largest first, each at most once"),
            ("1h1h", "duration: cannot parse \"1h1h\": units are d, h, m, largest first, each at most once"),
            ("-4h", "duration: cannot parse \"-4h\": expected a number followed by d, h or m"),
            ("99999999999999999999h", "duration: cannot parse \"99999999999999999999h\": number too large"),
            ("0m", "duration: must be positive"),
            ("7d1m", "duration: 10081 minutes is longer than the maximum of 7 days"),
        ];
        for (text, want) in bad {
            assert_eq!(
                parse_duration(text).unwrap_err().to_string(),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn new_checks_each_field() {
        let h = Duration::hours(1);
        let cases: &[(&str, Duration, &str, &str)] = &[
            ("0 1 * * *", Duration::zero(), "UTC", "duration: must be positive"),
            ("0 1 * * *", -h, "UTC", "duration: must be positive"),
            ("0 1 * * *", Duration::days(8), "UTC", "duration: 11520 minutes is longer than the maximum of 7 days"),
            ("0 1 * * *", Duration::seconds(90), "UTC", "duration: must be a whole number of minutes"),
            ("0 1 * * *", h, "Europe/Atlantis", "tz: unknown time zone \"Europe/Atlantis\" (expected an IANA name such as Europe/Berlin)"),
            ("0 1 * * *", h, "", "tz: unknown time zone \"\" (expected an IANA name such as Europe/Berlin)"),
            ("0 0 1 * * *", h, "UTC", "cron: 5 fields expected (minute hour day-of-month month day-of-week), found 6 (seconds and year fields are not supported)"),
            ("0 0 31 2 *", h, "UTC", "cron: never occurs: no month among those selected has any of the selected days of the month"),
        ];
        for (cron, d, tz, want) in cases {
            let err = MaintenanceWindow::new(cron, *d, tz).unwrap_err();
            assert_eq!(err.to_string(), *want, "{cron} {d} {tz}");
        }
    }

    #[test]
    fn serde_round_trip_validates() {
        let w =
            MaintenanceWindow::new("0  1 * * 1-5", Duration::hours(4), "Europe/Berlin").unwrap();
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            r#"{"cron":"0 1 * * 1-5","duration_minutes":240,"tz":"Europe/Berlin"}"#
        );
        assert_eq!(serde_json::from_str::<MaintenanceWindow>(&json).unwrap(), w);
        for (bad, want) in [
            (
                r#"{"cron":"0 1 * *","duration_minutes":240,"tz":"UTC"}"#,
                "cron: 5 fields expected",
            ),
            (
                r#"{"cron":"0 1 * * *","duration_minutes":0,"tz":"UTC"}"#,
                "duration: must be positive",
            ),
            (
                r#"{"cron":"0 1 * * *","duration_minutes":240,"tz":"Mars/Base"}"#,
                "tz: unknown time zone",
            ),
            (
                r#"{"cron":"0 1 * * *","duration_minutes":9223372036854775807,"tz":"UTC"}"#,
                "duration: 9223372036854775807 minutes is longer",
            ),
            (
                r#"{"cron":"0 1 * * *","duration":240,"tz":"UTC"}"#,
                "unknown field `duration`",
            ),
        ] {
            let err = serde_json::from_str::<MaintenanceWindow>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{bad}: {err}");
        }
    }
}
