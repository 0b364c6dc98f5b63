//! The 5-field crontab(5) expression: parsing, validation and day/time matching.
//!
//! We parse and match crontab expressions ourselves instead of handing them to the
//! `cron` crate, because that crate differs from crontab(5) where it matters here:
//! it wants a seconds field (and takes an optional year field), numbers weekdays
//! 1–7 from Sunday (`sun` = 1) where crontab uses 0–7 (Sunday 0 or 7), ANDs a
//! restricted day-of-month with a restricted day-of-week where crontab ORs them,
//! and silently skips start times that fall into a spring-forward gap, whereas a
//! maintenance window must then open at the end of the gap. The matcher is a few
//! bitsets; the time-zone mapping lives in the parent module. The `cron` crate is
//! kept as a dev-dependency: a test compares both on expressions where they agree.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// One of the five fields of a crontab expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Minute, 0–59.
    Minute,
    /// Hour, 0–23.
    Hour,
    /// Day of month, 1–31.
    DayOfMonth,
    /// Month, 1–12 or `jan`–`dec`.
    Month,
    /// Day of week, 0–7 (0 and 7 are Sunday) or `sun`–`sat`.
    DayOfWeek,
}

impl CronField {
    const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
    ];

    /// The inclusive range of numbers the field accepts.
    pub fn bounds(self) -> (u32, u32) {
        match self {
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (0, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            CronField::Month => &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
            CronField::DayOfWeek => &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            _ => &[],
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        })
    }
}

/// Why a crontab expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not exactly five whitespace-separated fields.
    #[error(
        "5 fields expected (minute hour day-of-month month day-of-week), found {found}{hint}",
        hint = if *found == 6 || *found == 7 { " (seconds and year fields are not supported)" } else { "" }
    )]
    FieldCount {
        /// How many fields the expression had.
        found: usize,
    },
    /// A field, or an element of a comma-separated list, is empty.
    #[error("{field}: empty value in {text:?}")]
    Empty {
        /// The field.
        field: CronField,
        /// The field's text.
        text: String,
    },
    /// A number outside the field's range.
    #[error("{field}: {value} is out of range {min}-{max}")]
    OutOfRange {
        /// The field.
        field: CronField,
        /// The number given, as written.
        value: String,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// Neither a number nor a name the field knows.
    #[error("{field}: {token:?} is not a number{names}", names = names_hint(*field))]
    BadValue {
        /// The field.
        field: CronField,
        /// The offending text.
        token: String,
    },
    /// A step of zero (`*/0`) or a step that is not a number.
    #[error("{field}: step {step:?} must be a number of at least 1")]
    BadStep {
        /// The field.
        field: CronField,
        /// The step text.
        step: String,
    },
    /// A step after a single value (`5/10`): crontab steps need `*` or a range.
    #[error("{field}: a step needs `*` or a range before it, not {item:?}")]
    StepWithoutRange {
        /// The field.
        field: CronField,
        /// The list element.
        item: String,
    },
    /// A range whose start is after its end (`5-1`).
    #[error("{field}: range {lo}-{hi} is reversed")]
    ReversedRange {
        /// The field.
        field: CronField,
        /// Start.
        lo: u32,
        /// End.
        hi: u32,
    },
    /// The expression can never match a real date (e.g. `0 0 31 2 *`).
    #[error(
        "never occurs: no month among those selected has any of the selected days of the month"
    )]
    NeverOccurs,
}

fn names_hint(field: CronField) -> &'static str {
    match field {
        CronField::Month => " or a month name (jan-dec)",
        CronField::DayOfWeek => " or a day name (sun-sat)",
        _ => "",
    }
}

/// A validated crontab(5) expression.
///
/// Days match as in crontab(5): if both day-of-month and day-of-week are restricted
/// (neither field starts with `*`), a day matches when EITHER matches; otherwise
/// both must match. As in Vixie cron and cronie, a field starting with `*` (such as
/// `*/2`) counts as unrestricted for this rule.
#[derive(Clone, PartialEq, Eq)]
pub struct CronSpec {
    source: String,
    minutes: u64,
    hours: u32,
    /// Bit d for day d (1–31).
    days_of_month: u32,
    /// Bit m for month m (1–12).
    months: u16,
    /// Bit w for weekday w, 0 = Sunday … 6 = Saturday (7 folded onto 0).
    days_of_week: u8,
    dom_star: bool,
    dow_star: bool,
}

impl fmt::Debug for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronSpec").field(&self.source).finish()
    }
}

impl fmt::Display for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for CronSpec {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, CronError> {
        CronSpec::parse(s)
    }
}

impl CronSpec {
    /// Parses and validates a 5-field expression.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount {
                found: fields.len(),
            });
        }
        let mut sets = [0u64; 5];
        for ((set, field), text) in sets.iter_mut().zip(CronField::ALL).zip(&fields) {
            *set = parse_field(field, text)?;
        }
        let dow = sets[4];
        // Fold 7 (Sunday) onto 0.
        let days_of_week = ((dow & 0x7f) | ((dow >> 7) & 1)) as u8;
        let spec = CronSpec {
            source: fields.join(" "),
            minutes: sets[0],
            hours: sets[1] as u32,
            days_of_month: sets[2] as u32,
            months: sets[3] as u16,
            days_of_week,
            dom_star: fields[2].starts_with('*'),
            dow_star: fields[4].starts_with('*'),
        };
        if !spec.can_occur() {
            return Err(CronError::NeverOccurs);
        }
        Ok(spec)
    }

    /// The expression, with whitespace normalised to single spaces.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether any real date matches. Within a 400-year Gregorian cycle every
    /// (month, day) pair that fits the month's length falls on every weekday, so only
    /// the month/day-of-month combination needs checking.
    fn can_occur(&self) -> bool {
        if !self.dom_star && !self.dow_star && self.days_of_week != 0 {
            return true; // OR rule: any selected weekday in any selected month.
        }
        const MAX_DAYS: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12).any(|m| {
            self.months & (1 << m) != 0
                && (1..=MAX_DAYS[m as usize]).any(|d| self.days_of_month & (1 << d) != 0)
        })
    }

    /// Whether the expression selects this local calendar day.
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The selected (hour, minute) pairs of a day, in increasing order.
    pub fn times(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..24u32)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(move |h| {
                (0..60u32)
                    .filter(|m| self.minutes & (1u64 << m) != 0)
                    .map(move |m| (h, m))
            })
    }

    /// The selected values of a field, in increasing order, as numbers in crontab's
    /// own numbering (day-of-week 0–6 from Sunday; 7 is reported as 0).
    pub fn values(&self, field: CronField) -> Vec<u32> {
        let (set, (lo, hi)) = match field {
            CronField::Minute => (self.minutes, field.bounds()),
            CronField::Hour => (u64::from(self.hours), field.bounds()),
            CronField::DayOfMonth => (u64::from(self.days_of_month), field.bounds()),
            CronField::Month => (u64::from(self.months), field.bounds()),
            CronField::DayOfWeek => (u64::from(self.days_of_week), (0, 6)),
        };
        (lo..=hi).filter(|v| set & (1u64 << v) != 0).collect()
    }

    /// Whether the field starts with `*` (unrestricted for the day-of-month /
    /// day-of-week OR rule).
    pub fn is_star(&self, field: CronField) -> bool {
        match field {
            CronField::DayOfMonth => self.dom_star,
            CronField::DayOfWeek => self.dow_star,
            _ => false,
        }
    }
}

/// Parses one field into a bitset of its values (bit n = value n).
fn parse_field(field: CronField, text: &str) -> Result<u64, CronError> {
    let (min, max) = field.bounds();
    let mut set = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError::Empty {
                field,
                text: text.to_owned(),
            });
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (lo, hi) = (value(field, a, item)?, value(field, b, item)?);
            if lo > hi {
                return Err(CronError::ReversedRange { field, lo, hi });
            }
            (lo, hi)
        } else {
            if step.is_some() {
                return Err(CronError::StepWithoutRange {
                    field,
                    item: item.to_owned(),
                });
            }
            let v = value(field, range, item)?;
            (v, v)
        };
        let step = match step {
            None => 1,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n >= 1 && s.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(CronError::BadStep {
                        field,
                        step: s.to_owned(),
                    })
                }
            },
        };
        let mut v = lo;
        while v <= hi {
            set |= 1u64 << v;
            v = match v.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
    }
    Ok(set)
}

/// Parses a number or (for month and day-of-week) a three-letter name.
fn value(field: CronField, token: &str, item: &str) -> Result<u32, CronError> {
    let (min, max) = field.bounds();
    if token.is_empty() {
        return Err(CronError::Empty {
            field,
            text: item.to_owned(),
        });
    }
    if token.bytes().all(|b| b.is_ascii_digit()) {
        // Digit strings too long for u32 are out of range too.
        let v = token.parse::<u32>().unwrap_or(u32::MAX);
        if v < min || v > max {
            return Err(CronError::OutOfRange {
                field,
                value: token.to_owned(),
                min,
                max,
            });
        }
        return Ok(v);
    }
    let lower = token.to_ascii_lowercase();
    match field.names().iter().position(|n| *n == lower) {
        // Months are numbered from 1, weekdays from 0 (Sunday).
        Some(i) if field == CronField::Month => Ok(i as u32 + 1),
        Some(i) => Ok(i as u32),
        None => Err(CronError::BadValue {
            field,
            token: token.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports() {
        let ok: &[(&str, CronField, &[u32])] = &[
            ("*/15 * * * *", CronField::Minute, &[0, 15, 30, 45]),
            ("0 1-5/2 * * *", CronField::Hour, &[1, 3, 5]),
            ("0 0 * * 0", CronField::DayOfWeek, &[0]),
            ("0 0 * * 7", CronField::DayOfWeek, &[0]),
            ("0 0 * * 5-7", CronField::DayOfWeek, &[0, 5, 6]),
            ("0 0 * * MON-fri", CronField::DayOfWeek, &[1, 2, 3, 4, 5]),
            ("0 0 * * Sun,sat", CronField::DayOfWeek, &[0, 6]),
            ("0 0 * JAN,mar-May *", CronField::Month, &[1, 3, 4, 5]),
            ("0 0 1,15,31 * *", CronField::DayOfMonth, &[1, 15, 31]),
            ("0 0 * * */3", CronField::DayOfWeek, &[0, 3, 6]),
            ("  0   0 * *  *  ", CronField::Minute, &[0]),
        ];
        for (text, field, want) in ok {
            let spec = CronSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec.values(*field), *want, "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("0 1 * *", "5 fields expected (minute hour day-of-month month day-of-week), found 4"),
            ("0 0 1 * * *", "5 fields expected (minute hour day-of-month month day-of-week), found 6 (seconds and year fields are not supported)"),
            ("", "5 fields expected (minute hour day-of-month month day-of-week), found 0"),
            ("60 * * * *", "minute: 60 is out of range 0-59"),
            ("0 24 * * *", "hour: 24 is out of range 0-23"),
            ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
            ("0 0 32 * *", "day-of-month: 32 is out of range 1-31"),
            ("0 0 * 13 *", "month: 13 is out of range 1-12"),
            ("0 0 * 0 *", "month: 0 is out of range 1-12"),
            ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
            ("0 0 * * 99999999999", "day-of-week: 99999999999 is out of range 0-7"),
            ("0 0 * jna *", "month: \"jna\" is not a number or a month name (jan-dec)"),
            ("0 0 * * monday", "day-of-week: \"monday\" is not a number or a day name (sun-sat)"),
            ("0 mon * * *", "hour: \"mon\" is not a number"),
            ("-1 * * * *", "minute: empty value in \"-1\""),
            ("1,,2 * * * *", "minute: empty value in \"1,,2\""),
            ("*/0 * * * *", "minute: step \"0\" must be a number of at least 1"),
            ("*/ * * * *", "minute: step \"\" must be a number of at least 1"),
            ("*/+2 * * * *", "minute: step \"+2\" must be a number of at least 1"),
            ("5/10 * * * *", "minute: a step needs `*` or a range before it, not \"5/10\""),
            ("0 5-1 * * *", "hour: range 5-1 is reversed"),
            ("0 0 * * sat-sun", "day-of-week: range 6-0 is reversed"),
            ("0 0 31 2 *", "never occurs: no month among those selected has any of the selected days of the month"),
            ("0 0 30,31 feb *", "never occurs: no month among those selected has any of the selected days of the month"),
            ("0 0 31 4,6,9,11 *", "never occurs: no month among those selected has any of the selected days of the month"),
        ];
        for (text, want) in bad {
            let err = CronSpec::parse(text).expect_err(text);
            assert_eq!(err.to_string(), *want, "{text}");
        }
        // Rare but real: 29 February; and the OR rule makes 31 February + Mondays real.
        assert!(CronSpec::parse("0 0 29 2 *").is_ok());
        assert!(CronSpec::parse("0 0 31 2 mon").is_ok());
    }

    #[test]
    fn day_matching_follows_crontab() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        // 2026-11-01 is a Sunday, 2026-11-13 a Friday, 2026-11-02 a Monday.
        let cases: &[(&str, NaiveDate, bool)] = &[
            ("0 0 * * 0", d(2026, 11, 1), true),
            ("0 0 * * 7", d(2026, 11, 1), true),
            ("0 0 * * 7", d(2026, 11, 2), false),
            ("0 0 13 * fri", d(2026, 11, 13), true),
            ("0 0 13 * fri", d(2026, 11, 6), true), // a Friday, not the 13th: OR
            ("0 0 13 * fri", d(2026, 3, 13), true), // the 13th, a Friday too
            ("0 0 13 * fri", d(2026, 11, 12), false),
            ("0 0 13 * mon", d(2026, 11, 2), true),
            ("0 0 */2 * mon", d(2026, 11, 2), false), // `*/2` is unrestricted: AND
            ("0 0 */2 * mon", d(2026, 11, 9), true),
            ("0 0 1 * *", d(2026, 11, 1), true),
            ("0 0 1 * *", d(2026, 11, 2), false),
            ("0 0 * nov *", d(2026, 11, 2), true),
            ("0 0 * dec *", d(2026, 11, 2), false),
        ];
        for (text, date, want) in cases {
            let spec = CronSpec::parse(text).unwrap();
            assert_eq!(spec.matches_date(*date), *want, "{text} on {date}");
        }
    }
}
