//! An accelerated wall clock that separate processes agree on: simulated
//! time starts at `start` when the real clock reads `real_start` and runs
//! `speed` times faster. A server and its agents given the same three values
//! read the same simulated "now" (within their real clocks' agreement times
//! `speed`), so end-to-end tests can run a night of the real binaries in
//! seconds.
//!
//! This is a simulation hook only: the server takes it as a hidden flag and
//! the agent only together with its simulated device backend.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The fastest accepted speed: beyond this, the real clock's millisecond
/// jitter between processes becomes minutes of simulated time.
pub const MAX_SPEED: u32 = 100_000;

/// Why an accelerated clock setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimClockError {
    /// Not `START,REAL_START,SPEED`.
    #[error("expected START,REAL_START,SPEED (two RFC 3339 times and a whole number), got {0:?}")]
    Shape(String),
    /// A time that is not RFC 3339.
    #[error("{field}: {value:?} is not an RFC 3339 time")]
    Time {
        /// Which of the two times.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// A speed of zero, too large, or not a number.
    #[error("speed must be a whole number from 1 to {MAX_SPEED}, got {0:?}")]
    Speed(String),
}

/// Simulated time `start` at real time `real_start`, running `speed` times
/// faster than real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawAcceleratedTime")]
pub struct AcceleratedTime {
    start: DateTime<Utc>,
    real_start: DateTime<Utc>,
    speed: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcceleratedTime {
    start: DateTime<Utc>,
    real_start: DateTime<Utc>,
    speed: u32,
}

impl TryFrom<RawAcceleratedTime> for AcceleratedTime {
    type Error = SimClockError;

    fn try_from(r: RawAcceleratedTime) -> Result<Self, Self::Error> {
        Self::new(r.start, r.real_start, r.speed)
    }
}

impl AcceleratedTime {
    /// A clock reading `start` at real time `real_start`; `speed` must be
    /// 1 to [`MAX_SPEED`].
    pub fn new(
        start: DateTime<Utc>,
        real_start: DateTime<Utc>,
        speed: u32,
    ) -> Result<Self, SimClockError> {
        if speed == 0 || speed > MAX_SPEED {
            return Err(SimClockError::Speed(speed.to_string()));
        }
        Ok(Self {
            start,
            real_start,
            speed,
        })
    }

    /// The simulated time at `real_start`.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The real time the simulation starts from.
    pub fn real_start(&self) -> DateTime<Utc> {
        self.real_start
    }

    /// Simulated seconds per real second.
    pub fn speed(&self) -> u32 {
        self.speed
    }

    /// The simulated time when the real clock reads `real`: never panics;
    /// past what a timestamp can hold it stays at the limit (a setting
    /// that far off shows as absurd dates, not as a crash).
    pub fn at(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed = real - self.real_start;
        // Milliseconds: exact enough for any test, and an i64 of them
        // times the speed covers far more than a timestamp can.
        let ms = elapsed.num_milliseconds();
        let limit = if ms < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        };
        ms.checked_mul(i64::from(self.speed))
            .and_then(Duration::try_milliseconds)
            .and_then(|d| self.start.checked_add_signed(d))
            .unwrap_or(limit)
    }

    /// The simulated time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// How long to wait in real time for `simulated` to pass (zero for a
    /// negative duration).
    pub fn real_wait(&self, simulated: Duration) -> std::time::Duration {
        simulated.to_std().unwrap_or_default() / self.speed.max(1)
    }
}

impl fmt::Display for AcceleratedTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{}",
            self.start
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            self.real_start
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            self.speed
        )
    }
}

impl FromStr for AcceleratedTime {
    type Err = SimClockError;

    /// `START,REAL_START,SPEED`, e.g.
    /// `2027-03-27T22:00:00Z,2026-11-23T04:00:00.250Z,600`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [start, real_start, speed] = parts[..] else {
            return Err(SimClockError::Shape(s.to_owned()));
        };
        let time = |field: &'static str, value: &str| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| SimClockError::Time {
                    field,
                    value: value.to_owned(),
                })
        };
        let speed = speed
            .parse::<u32>()
            .map_err(|_| SimClockError::Speed(speed.to_owned()))?;
        Self::new(
            time("START", start)?,
            time("REAL_START", real_start)?,
            speed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn simulated_time_runs_speed_times_faster_from_the_shared_anchor() {
        let c = AcceleratedTime::new(t("2027-03-27T22:00:00Z"), t("2026-11-23T04:00:00Z"), 600)
            .unwrap();
        for (real, simulated) in [
            ("2026-11-23T04:00:00Z", "2027-03-27T22:00:00Z"),
            ("2026-11-23T04:00:06Z", "2027-03-27T23:00:00Z"),
            ("2026-11-23T04:00:00.100Z", "2027-03-27T22:01:00Z"),
            ("2026-11-23T04:01:00Z", "2027-03-28T08:00:00Z"),
            ("2026-11-23T03:59:54Z", "2027-03-27T21:00:00Z"),
        ] {
            assert_eq!(c.at(t(real)), t(simulated), "real {real}");
        }
        assert_eq!(
            c.real_wait(Duration::hours(1)),
            std::time::Duration::from_secs(6)
        );
        assert_eq!(
            c.real_wait(Duration::minutes(-5)),
            std::time::Duration::ZERO
        );
    }

    #[test]
    fn settings_far_off_give_limit_dates_instead_of_a_panic() {
        let fast = AcceleratedTime::new(
            t("2027-01-01T00:00:00Z"),
            t("2026-01-01T00:00:00Z"),
            MAX_SPEED,
        )
        .unwrap();
        // A real start three years off at the highest speed: 300,000 years.
        assert_eq!(fast.at(t("2029-01-01T00:00:00Z")), DateTime::<Utc>::MAX_UTC);
        assert_eq!(fast.at(t("2023-01-01T00:00:00Z")), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            fast.at(t("2026-01-01T00:00:01Z")),
            t("2027-01-02T03:46:40Z")
        );
    }

    #[test]
    fn the_text_form_round_trips_and_bad_forms_are_refused_with_the_reason() {
        let text = "2027-03-27T22:00:00Z,2026-11-23T04:00:00.250Z,600";
        let c: AcceleratedTime = text.parse().unwrap();
        assert_eq!(c.speed(), 600);
        assert_eq!(c.real_start(), t("2026-11-23T04:00:00.250Z"));
        assert_eq!(c.to_string().parse::<AcceleratedTime>().unwrap(), c);
        for (bad, why) in [
            (
                "2027-03-27T22:00:00Z,600",
                "expected START,REAL_START,SPEED",
            ),
            ("yesterday,2026-11-23T04:00:00Z,600", "START: \"yesterday\""),
            ("2027-03-27T22:00:00Z,now,600", "REAL_START: \"now\""),
            (
                "2027-03-27T22:00:00Z,2026-11-23T04:00:00Z,0",
                "speed must be",
            ),
            (
                "2027-03-27T22:00:00Z,2026-11-23T04:00:00Z,-3",
                "speed must be",
            ),
            (
                "2027-03-27T22:00:00Z,2026-11-23T04:00:00Z,100001",
                "speed must be",
            ),
        ] {
            let e = bad.parse::<AcceleratedTime>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_toml_form_is_checked_like_the_text_form() {
        #[derive(Deserialize)]
        struct Doc {
            clock: AcceleratedTime,
        }
        let ok: Doc = toml::from_str(
            "[clock]\nstart = \"2027-03-27T22:00:00Z\"\nreal_start = \"2026-11-23T04:00:00Z\"\nspeed = 60\n",
        )
        .unwrap();
        assert_eq!(ok.clock.speed(), 60);
        for bad in [
            "[clock]\nstart = \"2027-03-27T22:00:00Z\"\nreal_start = \"2026-11-23T04:00:00Z\"\nspeed = 0\n",
            "[clock]\nstart = \"2027-03-27T22:00:00Z\"\nspeed = 60\n",
            "[clock]\nstart = \"2027-03-27T22:00:00Z\"\nreal_start = \"2026-11-23T04:00:00Z\"\nspeed = 60\nextra = 1\n",
        ] {
            assert!(toml::from_str::<Doc>(bad).is_err(), "{bad}");
        }
    }
}
