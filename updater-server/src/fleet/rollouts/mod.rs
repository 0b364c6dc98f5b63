//! Staged rollouts: one release of one model to a target (groups or All
//! Users) in ordered waves, each with its own deployment type, window,
//! start condition and thresholds; paused automatically when a wave's
//! failures for one reason cross its error threshold.
//!
//! - [`spec`]: what the admin writes, and its checks.
//! - [`waves`]: which wave a device belongs to (stable hash, group waves,
//!   devices that join later).
//! - [`machine`]: the pure state machine — when waves begin, succeed and
//!   end, when the rollout pauses or completes — over per-wave figures and a
//!   `now` the caller passes.
//! - [`status`]: a device's state in the rollout from what its agent
//!   reports, and the per-wave figures.
//! - [`service`]: the records in the store, the admin's actions and the
//!   periodic evaluation; `checkin`: what each device's wave allows a
//!   check-in, and the device states check-ins and update events record.
//!
//! **Which wins, a rollout or a policy.** For a device of the rollout's
//! model in its target and in one of its waves, a rollout that is not
//! cancelled decides (the newest one when several do): the device gets the
//! rollout's release once its wave began and while the rollout runs, and
//! nothing from any policy before that or while the rollout is paused. A
//! completed rollout keeps deciding for its devices (so a policy pinning an
//! older version does not undo it); cancelling or deleting it hands them
//! back to the policies.

mod checkin;
pub mod machine;
pub mod report;
pub mod service;
pub mod spec;
pub mod status;
pub mod waves;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::checkin::Plan;
pub use self::spec::{RolloutInput, StartCondition, WaveInput, WaveShare};
pub use self::status::{MemberState, WaveFigures};
use super::Stamps;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Waves begin as their conditions are met.
    Running,
    /// Nothing new is assigned; devices already flashing finish.
    Paused,
    /// Every wave began and reached its success threshold; it keeps
    /// deciding for its devices (devices that appear join the last wave).
    Completed,
    /// Given up: its devices are back under the policies.
    Cancelled,
}

impl RolloutState {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::Completed => "completed",
            RolloutState::Cancelled => "cancelled",
        }
    }
}

/// The release a rollout installs (resolved when it was created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRelease {
    /// The catalog target.
    pub target_name: String,
    /// Its version.
    pub version: String,
}

/// What happened to one wave, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveProgress {
    /// When it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When its success threshold was first reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<DateTime<Utc>>,
    /// When none of its devices was left to install or fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// When an admin approved it (waves that start on approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<DateTime<Utc>>,
    /// Who approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Failures per reason an admin saw when resuming: the error threshold
    /// counts only failures beyond these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub acknowledged_failures: BTreeMap<String, u64>,
}

/// Why a rollout is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When.
    pub at: DateTime<Utc>,
    /// The admin who paused it; `None` when the error threshold did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// In words.
    pub reason: String,
    /// The wave whose failures paused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    /// The failure reason that crossed the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Inventory ids of the devices that failed for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_devices: Vec<String>,
}

/// One line of a rollout's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened, in words.
    pub what: String,
}

/// Log lines kept per rollout (the oldest go first).
pub const MAX_LOG: usize = 200;

/// A stored rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The tenant.
    pub tenant: String,
    /// Random hex id.
    pub id: String,
    /// As the admin wrote it (group names resolved to ids).
    pub spec: RolloutInput,
    /// What it installs.
    pub release: RolloutRelease,
    /// Where it stands.
    pub state: RolloutState,
    /// Why it is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// One per wave.
    pub waves: Vec<WaveProgress>,
    /// Increases with every change (concurrent writers are refused).
    pub revision: u64,
    /// What happened, oldest first.
    #[serde(default)]
    pub log: Vec<LogEntry>,
    /// Timestamps.
    #[serde(flatten)]
    pub stamps: Stamps,
}

impl Rollout {
    /// Whether it decides for its devices (not cancelled).
    pub fn in_force(&self) -> bool {
        self.state != RolloutState::Cancelled
    }

    /// Which waves began.
    pub fn started(&self) -> Vec<bool> {
        self.waves.iter().map(|w| w.started_at.is_some()).collect()
    }

    /// Adds a log line.
    pub fn note(&mut self, at: DateTime<Utc>, what: impl Into<String>) {
        self.log.push(LogEntry {
            at,
            what: what.into(),
        });
        if self.log.len() > MAX_LOG {
            let drop = self.log.len() - MAX_LOG;
            self.log.drain(..drop);
        }
    }
}
