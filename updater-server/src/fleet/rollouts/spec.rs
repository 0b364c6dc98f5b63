//! What an admin writes to start a staged rollout, and its checks.

use std::fmt;

use catalog::assignment::{DeploymentType, DownloadSource};
use catalog::package::HardwareId;
use catalog::window::MaintenanceWindow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fleet::policies::check_source;
use crate::fleet::{check_text, FleetError, VersionSpec};

/// Most waves a rollout may have.
pub const MAX_WAVES: usize = 20;
/// Default share of a wave's devices that must be on the new version before
/// a wave that starts `after_previous` begins.
pub const DEFAULT_SUCCESS_PERCENT: u8 = 95;
/// Default share of a wave's devices failed for one reason that pauses the
/// rollout.
pub const DEFAULT_ERROR_PERCENT: u8 = 10;

/// When a wave begins (every condition is checked only once the wave before
/// it has begun).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartCondition {
    /// As soon as it is the wave's turn.
    Immediately,
    /// When an admin approves it.
    Approval,
    /// When the wave before it reached its success threshold.
    AfterPrevious,
    /// At this time (or as soon as it is the wave's turn, if later).
    At(DateTime<Utc>),
}

impl fmt::Display for StartCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartCondition::Immediately => f.write_str("at once"),
            StartCondition::Approval => f.write_str("on approval"),
            StartCondition::AfterPrevious => {
                f.write_str("when the previous wave reached its success threshold")
            }
            StartCondition::At(t) => write!(f, "at {}", t.to_rfc3339()),
        }
    }
}

/// Which devices of the rollout's target a wave holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveShare {
    /// This share (1–100 %) of the target's devices outside group waves,
    /// chosen by a stable hash.
    Percent(u8),
    /// What the percentage waves leave.
    Rest,
    /// The devices whose host is in this group (an id once stored).
    Group(String),
}

/// One wave as the admin writes it: exactly one of `percent`, `rest` or
/// `group`; deployment and window default to the rollout's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveInput {
    /// A name for reports (default "Wave N").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A share of the target's devices, 1 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// The devices the percentage waves leave.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rest: bool,
    /// The devices of one group (id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Deployment type (default: the rollout's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentType>,
    /// Maintenance window (default: the rollout's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<MaintenanceWindow>,
    /// When the wave begins (default: at once for the first wave, after the
    /// previous one for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartCondition>,
    /// Share (1–100 %) of the wave's devices on the new version that counts
    /// as success.
    #[serde(default = "default_success")]
    pub success_threshold_percent: u8,
    /// Share (1–100 %) of the wave's devices failed for one reason that
    /// pauses the rollout.
    #[serde(default = "default_error")]
    pub error_threshold_percent: u8,
}

fn default_success() -> u8 {
    DEFAULT_SUCCESS_PERCENT
}

fn default_error() -> u8 {
    DEFAULT_ERROR_PERCENT
}

impl WaveInput {
    /// Which devices it holds (after [`RolloutInput::validate`]).
    pub fn share(&self) -> WaveShare {
        match (&self.group, self.percent) {
            (Some(g), _) => WaveShare::Group(g.clone()),
            (None, Some(p)) => WaveShare::Percent(p),
            (None, None) => WaveShare::Rest,
        }
    }

    /// When it begins, its position given (the first wave defaults to at
    /// once, the others to after the previous one).
    pub fn start_condition(&self, index: usize) -> StartCondition {
        self.start.unwrap_or(if index == 0 {
            StartCondition::Immediately
        } else {
            StartCondition::AfterPrevious
        })
    }

    /// Its display name.
    pub fn display_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("Wave {}", index + 1))
    }
}

fn optional() -> DeploymentType {
    DeploymentType::Optional
}

fn server() -> DownloadSource {
    DownloadSource::Server
}

fn yes() -> bool {
    true
}

/// What an admin sends to create a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutInput {
    /// Display name.
    pub name: String,
    /// The device model, `VID:PID`.
    pub model: HardwareId,
    /// A version of the model, or `latest` (resolved when the rollout is
    /// created: a later release does not join a running rollout).
    pub version: VersionSpec,
    /// Groups (ids or names) whose devices it updates; empty: All Users.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Deployment type of waves that do not set one (default optional).
    #[serde(default = "optional")]
    pub deployment: DeploymentType,
    /// Maintenance window of waves that do not set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<MaintenanceWindow>,
    /// Download source (default the server).
    #[serde(default = "server")]
    pub source: DownloadSource,
    /// Fall back to the server when the share or mirror fails.
    #[serde(default = "yes")]
    pub fallback_to_server: bool,
    /// The waves, in order.
    pub waves: Vec<WaveInput>,
}

impl RolloutInput {
    /// The deployment type of wave `i`.
    pub fn deployment_of(&self, i: usize) -> DeploymentType {
        self.waves
            .get(i)
            .and_then(|w| w.deployment)
            .unwrap_or(self.deployment)
    }

    /// The maintenance window of wave `i`.
    pub fn window_of(&self, i: usize) -> Option<&MaintenanceWindow> {
        self.waves
            .get(i)
            .and_then(|w| w.window.as_ref())
            .or(self.window.as_ref())
    }

    /// Checks everything that needs neither the store nor the catalog.
    pub fn validate(&self) -> Result<(), FleetError> {
        check_text("name", &self.name, 200)?;
        check_source(&self.source)?;
        if self.waves.is_empty() || self.waves.len() > MAX_WAVES {
            return Err(FleetError::invalid(
                "waves",
                format!("a rollout has 1 to {MAX_WAVES} waves"),
            ));
        }
        let mut percent_total = 0u32;
        let mut rests = 0;
        for (i, w) in self.waves.iter().enumerate() {
            let n = i + 1;
            if let Some(name) = &w.name {
                check_text("waves.name", name, 200)?;
            }
            let kinds = usize::from(w.percent.is_some())
                + usize::from(w.rest)
                + usize::from(w.group.is_some());
            if kinds != 1 {
                return Err(FleetError::invalid(
                    "waves",
                    format!("wave {n} needs exactly one of percent, rest or group"),
                ));
            }
            if let Some(p) = w.percent {
                if !(1..=100).contains(&p) {
                    return Err(FleetError::invalid(
                        "waves.percent",
                        format!("wave {n}: must be 1 to 100"),
                    ));
                }
                percent_total += u32::from(p);
            }
            rests += usize::from(w.rest);
            for (field, v) in [
                (
                    "waves.success_threshold_percent",
                    w.success_threshold_percent,
                ),
                ("waves.error_threshold_percent", w.error_threshold_percent),
            ] {
                if !(1..=100).contains(&v) {
                    return Err(FleetError::invalid(
                        field,
                        format!("wave {n}: must be 1 to 100"),
                    ));
                }
            }
            if i == 0 && w.start == Some(StartCondition::AfterPrevious) {
                return Err(FleetError::invalid(
                    "waves.start",
                    "the first wave has no previous wave to wait for",
                ));
            }
            if self.deployment_of(i) == DeploymentType::Silent && self.window_of(i).is_none() {
                return Err(FleetError::invalid(
                    "window",
                    format!("wave {n} is silent and needs a maintenance window"),
                ));
            }
        }
        if rests > 1 {
            return Err(FleetError::invalid(
                "waves",
                "only one wave may be the rest",
            ));
        }
        if percent_total > 100 || (rests == 1 && percent_total >= 100) {
            return Err(FleetError::invalid(
                "waves.percent",
                format!("the percentages add up to {percent_total}: more than the whole target"),
            ));
        }
        if rests == 0 && percent_total > 0 && percent_total < 100 {
            return Err(FleetError::invalid(
                "waves.percent",
                format!(
                    "the percentages add up to {percent_total}, not 100: add a wave with \
                     \"rest\": true for the remaining devices"
                ),
            ));
        }
        // Group waves only is allowed: the target's devices outside them
        // are not part of the rollout (plain policies decide for them).
        Ok(())
    }
}
