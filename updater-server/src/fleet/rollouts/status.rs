//! A device's state in a rollout, from what its agent reports, and the
//! figures per wave that the state machine and the status report read.

use std::collections::BTreeMap;

use catalog::checkin::{UpdatePhase, UpdateState};
use serde::{Deserialize, Serialize};

/// Longest failure or waiting reason kept (longer ones are cut).
pub const MAX_REASON_LEN: usize = 200;
/// Failing devices listed per reason and wave.
pub const MAX_LISTED: usize = 50;

/// Where one device of a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Its wave has not begun, or the rollout is paused.
    Pending,
    /// Assigned; the agent has not reported the update yet (it is fetching
    /// and verifying the image).
    Downloading,
    /// Downloaded and held back (window, user, call, replug …: the reason).
    Waiting,
    /// Being flashed.
    Installing,
    /// Runs the rollout's version.
    Installed,
    /// The last attempt failed (the reason).
    Failed,
}

impl MemberState {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Pending => "pending",
            MemberState::Downloading => "downloading",
            MemberState::Waiting => "waiting",
            MemberState::Installing => "installing",
            MemberState::Installed => "installed",
            MemberState::Failed => "failed",
        }
    }
}

/// One device of a rollout, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its wave (index).
    pub wave: u16,
    /// Its state.
    pub state: MemberState,
    /// Why it waits or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What one check-in says about a device of a rollout.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The device runs the rollout's version.
    pub on_version: bool,
    /// The device got the rollout's release in this answer.
    pub assigned: bool,
    /// The agent's update state for the device, if it is about the
    /// rollout's target.
    pub update: Option<&'a UpdateState>,
}

/// The state a check-in's observation gives.
pub fn observe(o: Observed<'_>) -> (MemberState, Option<String>) {
    if o.on_version {
        return (MemberState::Installed, None);
    }
    let reason = |default: &str| {
        let m = o
            .update
            .and_then(|u| u.message.as_deref())
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or(default);
        Some(cut(m))
    };
    match o.update.and_then(|u| u.phase) {
        Some(UpdatePhase::Failed) => (MemberState::Failed, reason("failed")),
        Some(UpdatePhase::Flashing) => (MemberState::Installing, None),
        Some(UpdatePhase::Waiting) => (MemberState::Waiting, reason("waiting")),
        Some(UpdatePhase::Staged) => (MemberState::Waiting, reason("staged")),
        Some(UpdatePhase::Deferred) => (MemberState::Waiting, reason("deferred by the user")),
        Some(UpdatePhase::AwaitingReplug) => (
            MemberState::Waiting,
            reason("flashed; waiting for the device to be unplugged and plugged in again"),
        ),
        // Installed but reporting another version: the read-back decides.
        Some(UpdatePhase::Installed) | None if o.assigned => (MemberState::Downloading, None),
        Some(UpdatePhase::Installed) | None => (MemberState::Pending, None),
    }
}

pub(crate) fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_REASON_LEN) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// One wave's devices by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WaveFigures {
    /// All of them.
    pub devices: u64,
    /// Wave not begun or rollout paused.
    pub pending: u64,
    /// Assigned, nothing reported yet.
    pub downloading: u64,
    /// Held back, by reason.
    pub waiting: BTreeMap<String, u64>,
    /// Being flashed.
    pub installing: u64,
    /// On the new version.
    pub installed: u64,
    /// Failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Failed devices (inventory ids) by reason, the first
    /// [`MAX_LISTED`] of each.
    pub failing_devices: BTreeMap<String, Vec<String>>,
}

impl WaveFigures {
    /// Counts one device.
    pub fn add(&mut self, device: &str, m: &Member) {
        self.devices += 1;
        let reason = || m.reason.clone().unwrap_or_default();
        match m.state {
            MemberState::Pending => self.pending += 1,
            MemberState::Downloading => self.downloading += 1,
            MemberState::Waiting => *self.waiting.entry(reason()).or_default() += 1,
            MemberState::Installing => self.installing += 1,
            MemberState::Installed => self.installed += 1,
            MemberState::Failed => {
                *self.failed.entry(reason()).or_default() += 1;
                let listed = self.failing_devices.entry(reason()).or_default();
                if listed.len() < MAX_LISTED {
                    listed.push(device.to_owned());
                }
            }
        }
    }

    /// Devices failed, whatever the reason.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Devices waiting, whatever the reason.
    pub fn waiting_total(&self) -> u64 {
        self.waiting.values().sum()
    }

    /// Whether every device installed or failed.
    pub fn settled(&self) -> bool {
        self.installed + self.failed_total() == self.devices
    }
}

/// Figures for `waves` waves from the rollout's members (`(device id,
/// member)`); members of a wave the rollout does not have are ignored.
pub fn figures<'a>(
    waves: usize,
    members: impl IntoIterator<Item = (&'a str, &'a Member)>,
) -> Vec<WaveFigures> {
    let mut out = vec![WaveFigures::default(); waves];
    for (device, m) in members {
        count(&mut out, device, m);
    }
    out
}

/// Counts one member in its wave's figures (a wave the rollout does not
/// have is ignored).
pub fn count(figures: &mut [WaveFigures], device: &str, m: &Member) {
    if let Some(f) = figures.get_mut(usize::from(m.wave)) {
        f.add(device, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(phase: Option<UpdatePhase>, message: Option<&str>) -> UpdateState {
        UpdateState {
            device: "d".into(),
            installed_security_counter: None,
            target_name: Some("acme/x/2.0/fw.bin".into()),
            phase,
            deferrals: 0,
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn observations_give_states() {
        use MemberState::*;
        let failed = state(Some(UpdatePhase::Failed), Some("device did not come back"));
        let failed_silent = state(Some(UpdatePhase::Failed), None);
        let waiting = state(
            Some(UpdatePhase::Waiting),
            Some("outside the maintenance window"),
        );
        let flashing = state(Some(UpdatePhase::Flashing), None);
        let replug = state(Some(UpdatePhase::AwaitingReplug), None);
        let deferred = state(Some(UpdatePhase::Deferred), None);
        let long = "x".repeat(500);
        let failed_long = state(Some(UpdatePhase::Failed), Some(&long));
        for (on_version, assigned, update, expected, reason) in [
            (true, false, Some(&failed), Installed, None),
            (
                false,
                true,
                Some(&failed),
                Failed,
                Some("device did not come back"),
            ),
            (false, false, Some(&failed_silent), Failed, Some("failed")),
            (
                false,
                true,
                Some(&waiting),
                Waiting,
                Some("outside the maintenance window"),
            ),
            (false, true, Some(&flashing), Installing, None),
            (
                false,
                true,
                Some(&replug),
                Waiting,
                Some("flashed; waiting for the device to be unplugged and plugged in again"),
            ),
            (
                false,
                true,
                Some(&deferred),
                Waiting,
                Some("deferred by the user"),
            ),
            (false, true, None, Downloading, None),
            (false, false, None, Pending, None),
        ] {
            let got = observe(Observed {
                on_version,
                assigned,
                update,
            });
            assert_eq!(got, (expected, reason.map(str::to_owned)), "{update:?}");
        }
        let (s, r) = observe(Observed {
            on_version: false,
            assigned: true,
            update: Some(&failed_long),
        });
        assert_eq!(s, Failed);
        assert_eq!(r.unwrap().chars().count(), MAX_REASON_LEN + 1);
    }

    #[test]
    fn figures_per_wave() {
        let m = |wave, state, reason: Option<&str>| Member {
            wave,
            state,
            reason: reason.map(str::to_owned),
        };
        let members = [
            ("a", m(0, MemberState::Installed, None)),
            ("b", m(0, MemberState::Failed, Some("crc"))),
            ("c", m(0, MemberState::Failed, Some("crc"))),
            ("d", m(0, MemberState::Waiting, Some("window"))),
            ("e", m(1, MemberState::Pending, None)),
            ("f", m(7, MemberState::Pending, None)),
        ];
        let f = figures(2, members.iter().map(|(d, m)| (*d, m)));
        assert_eq!(f[0].devices, 4);
        assert_eq!(f[0].installed, 1);
        assert_eq!(f[0].failed, BTreeMap::from([("crc".to_owned(), 2)]));
        assert_eq!(f[0].failing_devices["crc"], ["b", "c"]);
        assert_eq!(f[0].waiting_total(), 1);
        assert!(!f[0].settled());
        assert_eq!((f[1].devices, f[1].pending), (1, 1));
    }
}
