//! What a check-in's devices may get from the rollouts in force, and what
//! check-ins and update events tell about the devices rollouts hold.

use std::collections::BTreeMap;

use catalog::assignment::{Assignment, DeploymentType, DownloadSource};
use catalog::checkin::UpdateState;
use catalog::package::FirmwareRelease;
use catalog::protocol::{DeviceReport, DfuState};
use catalog::window::MaintenanceWindow;

use super::service::{is_version, member_key, targets, ROLLOUT_PREFIX};
use super::status::{observe, Member, Observed};
use super::waves::{bucket, joining_wave};
use super::{MemberState, Rollout, RolloutState};
use crate::fleet::inventory;
use crate::fleet::{decode, to_value, Fleet, FleetError};
use crate::store::{Key, Op, StoreError, Table};

/// What a check-in's device may get from the rollout that decides for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `rollout:<id>` (the assignment's `policy` field).
    pub id: String,
    /// The model the rollout targets.
    pub model: catalog::package::HardwareId,
    /// The release.
    pub target_name: String,
    /// Its wave's deployment type.
    pub deployment: DeploymentType,
    /// Its wave's window.
    pub window: Option<MaintenanceWindow>,
    /// Download source.
    pub source: DownloadSource,
    /// Fallback to the server.
    pub fallback_to_server: bool,
    /// Why the device gets nothing now (wave not begun, rollout paused).
    pub hold: Option<String>,
}

impl CheckInRollouts {
    /// The rollouts in force, newest first.
    pub(crate) fn rollouts(&self) -> &[Rollout] {
        &self.rollouts
    }
}

/// A device of a check-in that a rollout decides for.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    rollout: usize,
    device_id: String,
    identity: String,
    member: Member,
    stored: bool,
}

/// The rollouts in force for one check-in, and the devices they claimed.
#[derive(Debug, Default)]
pub(crate) struct CheckInRollouts {
    rollouts: Vec<Rollout>,
    claimed: Vec<Claimed>,
}

impl Fleet {
    /// The plans for a check-in's devices: for each device a rollout in
    /// force decides for (its row, or it is of the model, in the target and
    /// in a wave), what it may get now.
    pub(crate) fn rollout_plans(
        &self,
        tenant: &str,
        agent: &str,
        host_group: &str,
        devices: &[DeviceReport],
        releases: &[FirmwareRelease],
        rollouts: &[Rollout],
    ) -> Result<(CheckInRollouts, BTreeMap<String, Plan>), FleetError> {
        let mut view = CheckInRollouts {
            rollouts: rollouts.iter().filter(|r| r.in_force()).cloned().collect(),
            claimed: Vec::new(),
        };
        let mut plans = BTreeMap::new();
        if view.rollouts.is_empty() {
            return Ok((view, plans));
        }
        for d in devices {
            let identity = d.identity();
            if d.dfu == DfuState::None || plans.contains_key(&identity) {
                continue;
            }
            let device_id = inventory::device_id(agent, d);
            for (ri, r) in view.rollouts.iter().enumerate() {
                let m = r.spec.model;
                if m.vid != d.vendor_id || m.pid != d.product_id {
                    continue;
                }
                let key = member_key(tenant, &r.id, &device_id);
                let stored: Option<Member> = self
                    .store()
                    .get(Table::RolloutMembers, &key)?
                    .map(|v| decode(Table::RolloutMembers, v))
                    .transpose()?;
                let fits = releases
                    .iter()
                    .find(|x| x.target_name == r.release.target_name)
                    .is_none_or(|x| x.fits(d.vendor_id, d.product_id, d.bcd_device));
                let member = match stored.clone() {
                    Some(m) => m,
                    None if fits && targets(&r.spec.groups, host_group) => {
                        let b = bucket(&r.id, &device_id);
                        match joining_wave(&r.spec.waves, &r.started(), host_group, b) {
                            Some(w) => Member {
                                wave: w as u16,
                                state: MemberState::Pending,
                                reason: None,
                            },
                            None => continue,
                        }
                    }
                    None => continue,
                };
                plans.insert(identity.clone(), plan_for(r, usize::from(member.wave)));
                view.claimed.push(Claimed {
                    rollout: ri,
                    device_id: device_id.clone(),
                    identity: identity.clone(),
                    stored: stored.is_some(),
                    member,
                });
                break;
            }
        }
        Ok((view, plans))
    }

    /// Records what a check-in showed about the devices rollouts claimed
    /// (a row only when it changed).
    pub(crate) fn record_rollout_members(
        &self,
        tenant: &str,
        view: &CheckInRollouts,
        devices: &[DeviceReport],
        assignments: &[Assignment],
        update_states: &[UpdateState],
        releases: &[FirmwareRelease],
    ) -> Result<(), FleetError> {
        let mut ops = Vec::new();
        for c in &view.claimed {
            let r = &view.rollouts[c.rollout];
            let target = &r.release.target_name;
            let release = releases.iter().find(|x| &x.target_name == target);
            let on_version = devices
                .iter()
                .find(|d| d.identity() == c.identity)
                .and_then(|d| d.firmware_version.as_deref())
                .zip(release)
                .is_some_and(|(v, rel)| is_version(rel, v));
            let (state, reason) = observe(Observed {
                on_version,
                assigned: assignments
                    .iter()
                    .any(|a| a.device == c.identity && &a.target_name == target),
                update: update_states
                    .iter()
                    .find(|u| u.device == c.identity && u.target_name.as_ref() == Some(target)),
            });
            // A failed attempt stays the device's state while its agent
            // merely waits to retry (or its report shows nothing newer).
            let retrying = matches!(
                state,
                MemberState::Pending | MemberState::Downloading | MemberState::Waiting
            );
            let m = if c.member.state == MemberState::Failed && retrying {
                c.member.clone()
            } else {
                Member {
                    wave: c.member.wave,
                    state,
                    reason,
                }
            };
            if c.stored && m == c.member {
                continue;
            }
            let key = member_key(tenant, &r.id, &c.device_id);
            ops.push(if c.stored {
                Op::Update(Table::RolloutMembers, key, to_value(&m))
            } else {
                Op::Insert(Table::RolloutMembers, key, to_value(&m))
            });
        }
        if ops.is_empty() {
            return Ok(());
        }
        match self.store().commit(ops) {
            Err(StoreError::Conflict { .. }) => Err(FleetError::Conflict(
                "concurrent check-in of the same agent; retry".into(),
            )),
            other => Ok(other?),
        }
    }
}

impl Fleet {
    /// Applies an agent's update events to the devices rollouts hold, in
    /// order: an attempt that started makes the device installing, one
    /// that succeeded installed, one that failed failed with the agent's
    /// reason — kept until a new attempt starts, since an agent that waits
    /// to retry is still a failure for the error threshold. The events
    /// carry what a check-in may never show (a failure replaced at once by
    /// the wait for the next window).
    pub fn record_rollout_events(
        &self,
        tenant: &str,
        agent: &str,
        events: &[catalog::events::Event],
    ) -> Result<(), FleetError> {
        use catalog::events::UpdateOutcome as O;
        let mut rollouts: Option<Vec<Rollout>> = None;
        let mut changed: BTreeMap<Key, Member> = BTreeMap::new();
        for e in events {
            let (Some(u), Some(identity)) = (e.kind.update(), e.device.as_deref()) else {
                continue;
            };
            let (state, reason) = match u.outcome {
                O::Started => (MemberState::Installing, None),
                O::Succeeded => (MemberState::Installed, None),
                O::Failed => (
                    MemberState::Failed,
                    Some(super::status::cut(u.reason.unwrap_or("failed").trim())),
                ),
                _ => continue,
            };
            let all = match &rollouts {
                Some(r) => r,
                None => rollouts.insert(
                    self.rollouts(tenant)?
                        .into_iter()
                        .filter(Rollout::in_force)
                        .collect(),
                ),
            };
            let device = inventory::device_id_of_identity(agent, identity);
            for r in all.iter().filter(|r| r.release.target_name == u.target) {
                let key = member_key(tenant, &r.id, &device);
                let current = match changed.get(&key) {
                    Some(m) => Some(m.clone()),
                    None => self
                        .store()
                        .get(Table::RolloutMembers, &key)?
                        .map(|v| decode(Table::RolloutMembers, v))
                        .transpose()?,
                };
                let Some(mut m) = current else { continue };
                m.state = state;
                m.reason = reason.clone();
                changed.insert(key, m);
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let ops = changed
            .into_iter()
            .map(|(k, m)| Op::Update(Table::RolloutMembers, k, to_value(&m)))
            .collect();
        Ok(self.store().commit(ops)?)
    }
}

/// What a device in wave `wave` of `r` may get now.
fn plan_for(r: &Rollout, wave: usize) -> Plan {
    let spec = &r.spec;
    let name = spec
        .waves
        .get(wave)
        .map_or_else(|| format!("Wave {}", wave + 1), |w| w.display_name(wave));
    let begun = r.waves.get(wave).is_some_and(|w| w.started_at.is_some());
    let hold = match r.state {
        RolloutState::Paused => Some(format!(
            "rollout \"{}\" is paused ({})",
            spec.name,
            r.pause
                .as_ref()
                .map_or("no reason recorded", |p| p.reason.as_str())
        )),
        _ if !begun => Some(format!(
            "rollout \"{}\": the device is in {name}, which has not begun (it starts {})",
            spec.name,
            spec.waves
                .get(wave)
                .map_or_else(String::new, |w| w.start_condition(wave).to_string())
        )),
        _ => None,
    };
    Plan {
        id: format!("{ROLLOUT_PREFIX}{}", r.id),
        model: spec.model,
        target_name: r.release.target_name.clone(),
        deployment: spec.deployment_of(wave),
        window: spec.window_of(wave).cloned(),
        source: spec.source.clone(),
        fallback_to_server: spec.fallback_to_server,
        hold,
    }
}
