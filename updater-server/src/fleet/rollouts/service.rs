//! Rollouts in the store: creating one (its devices recorded with their
//! waves), the admin's actions, the periodic evaluation, and what a
//! check-in's devices may get.
//!
//! Records: the rollout in [`Table::Rollouts`]; one row per device in
//! [`Table::RolloutMembers`] under `<rollout>/<device id>` holding its wave
//! and its last observed state, so the status report reads only the
//! rollout's own rows. Every write of a rollout moves a claim
//! `rollout-rev:<id>:<revision>` in the unique table, so two writers that
//! read the same revision cannot both win (the second gets a conflict).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use catalog::assignment::{Assignment, DeploymentType, DownloadSource};
use catalog::checkin::UpdateState;
use catalog::package::{FirmwareRelease, Version};
use catalog::protocol::{DeviceReport, DfuState};
use catalog::window::MaintenanceWindow;

use super::machine;
use super::spec::{RolloutInput, WaveShare};
use super::status::{figures, observe, Member, Observed, WaveFigures};
use super::waves::{bucket, initial_wave, joining_wave};
use super::MemberState;
use super::{Rollout, RolloutRelease, RolloutState, WaveProgress};
use crate::auth::secret::new_id;
use crate::auth::Clock;
use crate::fleet::inventory::{self, Device, Host};
use crate::fleet::policies::{check_capability, releases_of_model};
use crate::fleet::{get_existing, list, to_value, Fleet, FleetError, Stamps, ALL_USERS};
use crate::store::{Key, Op, StoreError, Table};

/// The prefix of the `policy` field of assignments a rollout made.
pub const ROLLOUT_PREFIX: &str = "rollout:";

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

fn member_key(tenant: &str, rollout: &str, device: &str) -> Key {
    Key::new(tenant, format!("{rollout}/{device}"))
}

fn rev_claim(tenant: &str, id: &str, revision: u64) -> Key {
    Key::new(tenant, format!("rollout-rev:{id}:{revision}"))
}

fn decode<T: serde::de::DeserializeOwned>(
    table: Table,
    v: serde_json::Value,
) -> Result<T, FleetError> {
    serde_json::from_value(v).map_err(|e| {
        FleetError::Store(StoreError::Corrupt {
            table: table.name(),
            why: e.to_string(),
        })
    })
}

/// Whether a target (group ids; empty: All Users) holds a host of `group`.
fn targets(groups: &[String], group: &str) -> bool {
    groups.is_empty() || groups.iter().any(|g| g == group)
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|g| b.contains(g))
}

impl Fleet {
    /// The tenant's rollouts, newest first.
    pub fn rollouts(&self, tenant: &str) -> Result<Vec<Rollout>, FleetError> {
        let mut all: Vec<Rollout> = list(self.store(), Table::Rollouts, tenant)?;
        all.sort_by(|a, b| {
            b.stamps
                .created_at
                .cmp(&a.stamps.created_at)
                .then(b.id.cmp(&a.id))
        });
        Ok(all)
    }

    /// One rollout.
    pub fn rollout(&self, tenant: &str, id: &str) -> Result<Rollout, FleetError> {
        get_existing(self.store(), Table::Rollouts, tenant, id)
    }

    /// Creates a rollout: checks it against the groups and the catalog,
    /// records every device of its target in the inventory with its wave,
    /// and begins what may begin now.
    pub fn create_rollout(
        &self,
        tenant: &str,
        mut spec: RolloutInput,
        by: &str,
    ) -> Result<Rollout, FleetError> {
        spec.validate()?;
        let mut groups = Vec::new();
        for g in std::mem::take(&mut spec.groups) {
            if g == ALL_USERS {
                return Err(FleetError::invalid(
                    "groups",
                    "leave the groups empty for All Users",
                ));
            }
            let id = self.group_id(tenant, &g)?;
            self.check_group(tenant, Some(&id))?;
            if !groups.contains(&id) {
                groups.push(id);
            }
        }
        spec.groups = groups;
        let mut seen = BTreeSet::new();
        for (i, w) in spec.waves.iter_mut().enumerate() {
            let Some(g) = w.group.take() else { continue };
            let id = self.group_id(tenant, &g)?;
            self.check_group(tenant, Some(&id)).map_err(|_| {
                FleetError::invalid("waves.group", format!("wave {}: no group {g}", i + 1))
            })?;
            if !targets(&spec.groups, &id) {
                return Err(FleetError::invalid(
                    "waves.group",
                    format!("wave {}: group {g} is not in the rollout's target", i + 1),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(FleetError::invalid(
                    "waves.group",
                    format!("wave {}: group {g} already has a wave", i + 1),
                ));
            }
            w.group = Some(id);
        }
        let releases = self.releases()?;
        let release = resolve_release(&spec, &releases)?;
        for i in 0..spec.waves.len() {
            check_capability(spec.deployment_of(i), release)
                .map_err(|m| FleetError::Capability(format!("wave {}: {m}", i + 1)))?;
        }
        let existing = self.rollouts(tenant)?;
        if let Some(other) = existing.iter().find(|o| {
            matches!(o.state, RolloutState::Running | RolloutState::Paused)
                && o.spec.model.model_key() == spec.model.model_key()
                && overlaps(&o.spec.groups, &spec.groups)
        }) {
            return Err(FleetError::Conflict(format!(
                "rollout \"{}\" ({}) is {} for {} in an overlapping target: cancel it or let it \
                 complete first",
                other.spec.name,
                other.id,
                other.state.as_str(),
                spec.model.model_key()
            )));
        }
        let now = self.accounts.now();
        let id = new_id();
        let hosts: HashMap<String, Host> =
            list::<Host>(self.store(), Table::InventoryHosts, tenant)?
                .into_iter()
                .map(|h| (h.id.clone(), h))
                .collect();
        let devices: Vec<Device> = list(self.store(), Table::InventoryDevices, tenant)?;
        let mut members = Vec::new();
        for d in &devices {
            if d.deleted_at.is_some()
                || d.dfu == DfuState::None
                || !release.fits(d.vendor_id, d.product_id, d.bcd_device)
            {
                continue;
            }
            let group = hosts.get(&d.host).map_or(ALL_USERS, |h| h.group.as_str());
            if !targets(&spec.groups, group) {
                continue;
            }
            let Some(wave) = initial_wave(&spec.waves, group, bucket(&id, &d.id)) else {
                continue;
            };
            let on_version = d
                .firmware_version
                .as_deref()
                .is_some_and(|v| is_version(release, v));
            let (state, reason) = observe(Observed {
                on_version,
                assigned: false,
                update: None,
            });
            members.push((
                d.id.clone(),
                Member {
                    wave: wave as u16,
                    state,
                    reason,
                },
            ));
        }
        let mut r = Rollout {
            tenant: tenant.to_owned(),
            id: id.clone(),
            waves: vec![WaveProgress::default(); spec.waves.len()],
            release: RolloutRelease {
                target_name: release.target_name.clone(),
                version: release.version.as_str().to_owned(),
            },
            spec,
            state: RolloutState::Running,
            pause: None,
            revision: 1,
            log: Vec::new(),
            stamps: Stamps {
                created_at: now,
                updated_at: now,
            },
        };
        r.note(
            now,
            format!(
                "created by {by}: {} to {} devices known now",
                r.release.target_name,
                members.len()
            ),
        );
        let f = figures(r.waves.len(), members.iter().map(|(d, m)| (d.as_str(), m)));
        machine::step(&mut r, &f, now);
        let mut ops = vec![
            Op::Insert(Table::Rollouts, Key::new(tenant, &id), to_value(&r)),
            Op::Insert(
                Table::Unique,
                rev_claim(tenant, &id, r.revision),
                serde_json::Value::Null,
            ),
        ];
        ops.extend(members.iter().map(|(d, m)| {
            Op::Insert(
                Table::RolloutMembers,
                member_key(tenant, &id, d),
                to_value(m),
            )
        }));
        self.commit(ops, || "the rollout id is taken; retry".into())?;
        Ok(r)
    }

    /// The rollout's devices: `(device id, member)` in id order.
    pub fn rollout_members(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Vec<(String, Member)>, FleetError> {
        let mut out = Vec::new();
        self.scan_members(tenant, id, &mut |device, m| {
            out.push((device.to_owned(), m));
        })?;
        Ok(out)
    }

    /// Visits the rollout's devices in id order, decoding each row straight
    /// from its stored text.
    fn scan_members(
        &self,
        tenant: &str,
        id: &str,
        visit: &mut dyn FnMut(&str, Member),
    ) -> Result<(), FleetError> {
        let prefix = format!("{id}/");
        self.store()
            .scan_prefix(Table::RolloutMembers, tenant, &prefix, &mut |key, text| {
                let m: Member = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                    table: Table::RolloutMembers.name(),
                    why: e.to_string(),
                })?;
                visit(&key[prefix.len()..], m);
                Ok(())
            })?;
        Ok(())
    }

    /// Per-wave figures of a rollout.
    pub fn rollout_figures(&self, r: &Rollout) -> Result<Vec<WaveFigures>, FleetError> {
        let mut out = vec![WaveFigures::default(); r.waves.len()];
        self.scan_members(&r.tenant, &r.id, &mut |device, m| {
            if let Some(f) = out.get_mut(usize::from(m.wave)) {
                f.add(device, &m);
            }
        })?;
        Ok(out)
    }

    fn save_rollout(&self, before: u64, r: &mut Rollout, extra: Vec<Op>) -> Result<(), FleetError> {
        r.revision = before + 1;
        r.stamps.updated_at = self.accounts.now();
        let mut ops = vec![
            Op::Update(Table::Rollouts, Key::new(&r.tenant, &r.id), to_value(&*r)),
            Op::Delete(Table::Unique, rev_claim(&r.tenant, &r.id, before)),
            Op::Insert(
                Table::Unique,
                rev_claim(&r.tenant, &r.id, r.revision),
                serde_json::Value::Null,
            ),
        ];
        ops.extend(extra);
        self.commit(ops, || "the rollout changed meanwhile; retry".into())
    }

    /// Applies an admin's action, then evaluates the rollout.
    pub fn rollout_action(
        &self,
        tenant: &str,
        id: &str,
        action: RolloutAction,
        by: &str,
    ) -> Result<Rollout, FleetError> {
        let mut r = self.rollout(tenant, id)?;
        let before = r.revision;
        let now = self.accounts.now();
        let f = self.rollout_figures(&r)?;
        match action {
            RolloutAction::Pause => machine::pause(&mut r, by, now)?,
            RolloutAction::Resume => machine::resume(&mut r, by, &f, now)?,
            RolloutAction::Approve => machine::approve(&mut r, by, now).map(|_| ())?,
            RolloutAction::Cancel => machine::cancel(&mut r, by, now)?,
        }
        machine::step(&mut r, &f, now);
        self.save_rollout(before, &mut r, Vec::new())?;
        Ok(r)
    }

    /// Deletes a cancelled or completed rollout and its device rows.
    pub fn delete_rollout(&self, tenant: &str, id: &str) -> Result<(), FleetError> {
        let r = self.rollout(tenant, id)?;
        if matches!(r.state, RolloutState::Running | RolloutState::Paused) {
            return Err(FleetError::Conflict(format!(
                "the rollout is {}: cancel it before deleting it",
                r.state.as_str()
            )));
        }
        let mut ops = vec![
            Op::Delete(Table::Rollouts, Key::new(tenant, id)),
            Op::Delete(Table::Unique, rev_claim(tenant, id, r.revision)),
        ];
        ops.extend(
            self.rollout_members(tenant, id)?
                .into_iter()
                .map(|(d, _)| Op::Delete(Table::RolloutMembers, member_key(tenant, id, &d))),
        );
        self.commit(ops, String::new)
    }

    /// Evaluates the tenant's running rollouts (and completed ones with a
    /// wave still to end); returns the rollouts that changed.
    pub fn evaluate_rollouts(&self, tenant: &str) -> Result<Vec<String>, FleetError> {
        let now = self.accounts.now();
        let mut changed = Vec::new();
        for mut r in self.rollouts(tenant)? {
            let live = r.state == RolloutState::Running
                || (r.state == RolloutState::Completed
                    && r.waves.iter().any(|w| w.ended_at.is_none()));
            if !live {
                continue;
            }
            let before = r.revision;
            let f = self.rollout_figures(&r)?;
            if machine::step(&mut r, &f, now) {
                self.save_rollout(before, &mut r, Vec::new())?;
                changed.push(r.id.clone());
            }
        }
        Ok(changed)
    }

    /// Evaluates every tenant's rollouts (the server's periodic job).
    pub fn evaluate_all_rollouts(&self) -> Result<usize, FleetError> {
        let mut n = 0;
        for (key, _) in self.store().list(Table::Tenants, None)? {
            n += self.evaluate_rollouts(&key.tenant)?.len();
        }
        Ok(n)
    }

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
    ) -> Result<(CheckInRollouts, BTreeMap<String, Plan>), FleetError> {
        let mut view = CheckInRollouts {
            rollouts: self
                .rollouts(tenant)?
                .into_iter()
                .filter(Rollout::in_force)
                .collect(),
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

fn is_version(release: &FirmwareRelease, v: &str) -> bool {
    Version::parse(v, release.version.format()).is_ok_and(|v| v == release.version)
}

fn resolve_release<'a>(
    spec: &RolloutInput,
    releases: &'a [FirmwareRelease],
) -> Result<&'a FirmwareRelease, FleetError> {
    let m = spec.model;
    let candidates = releases_of_model(releases, m);
    if candidates.is_empty() {
        return Err(FleetError::invalid(
            "model",
            format!(
                "the catalog has no release for {}: import one first",
                m.model_key()
            ),
        ));
    }
    spec.version.select(&candidates).ok_or_else(|| {
        FleetError::invalid(
            "version",
            format!(
                "the catalog has no version {} for {}",
                spec.version,
                m.model_key()
            ),
        )
    })
}

/// An admin's action on a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutAction {
    /// Pause a running rollout.
    Pause,
    /// Resume a paused one.
    Resume,
    /// Approve the next wave.
    Approve,
    /// Cancel.
    Cancel,
}

impl std::str::FromStr for RolloutAction {
    type Err = FleetError;

    fn from_str(s: &str) -> Result<Self, FleetError> {
        match s {
            "pause" => Ok(RolloutAction::Pause),
            "resume" => Ok(RolloutAction::Resume),
            "approve" => Ok(RolloutAction::Approve),
            "cancel" => Ok(RolloutAction::Cancel),
            _ => Err(FleetError::invalid(
                "action",
                "must be pause, resume, approve or cancel",
            )),
        }
    }
}

/// How often the server evaluates rollouts, in its clock's time.
pub const EVALUATE_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The server's job: evaluates every tenant's rollouts every
/// [`EVALUATE_EVERY`] of `clock` time (faster under a simulation's
/// accelerated clock). A pass that meets a concurrent writer is retried at
/// the next tick.
pub async fn run(fleet: Fleet, clock: Arc<dyn Clock>) {
    let period = clock
        .real_wait(EVALUATE_EVERY)
        .max(Duration::from_millis(10));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let f = fleet.clone();
        match tokio::task::spawn_blocking(move || f.evaluate_all_rollouts()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(rollouts = n, "rollouts advanced"),
            Ok(Err(FleetError::Conflict(_))) => {
                tracing::info!("rollout evaluation met a concurrent writer; next tick retries");
            }
            Ok(Err(e)) => tracing::error!(error = %e, "rollout evaluation failed"),
            Err(e) => tracing::error!(error = %e, "rollout evaluation task failed"),
        }
    }
}

/// Whether a wave's share is a group (for the status report's labels).
pub fn wave_target(share: &WaveShare) -> String {
    match share {
        WaveShare::Percent(p) => format!("{p} % of the target"),
        WaveShare::Rest => "the rest of the target".into(),
        WaveShare::Group(g) => format!("group {g}"),
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
