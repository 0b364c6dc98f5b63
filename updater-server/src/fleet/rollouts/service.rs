//! Rollouts in the store: creating one (its devices recorded with their
//! waves), the admin's actions and the periodic evaluation. What a
//! check-in's devices may get is in [`super::checkin`].
//!
//! Records: the rollout in [`Table::Rollouts`]; one row per device in
//! [`Table::RolloutMembers`] under `<rollout>/<device id>` holding its wave
//! and its last observed state, so the status report reads only the
//! rollout's own rows. Every write of a rollout moves a claim
//! `rollout-rev:<id>:<revision>` in the unique table, so two writers that
//! read the same revision cannot both win (the second gets a conflict).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use catalog::package::{FirmwareRelease, Version};
use catalog::protocol::DfuState;

use super::machine;
use super::spec::RolloutInput;
use super::status::{count, figures, observe, Member, Observed, WaveFigures};
use super::waves::{bucket, initial_wave};
use super::{Rollout, RolloutRelease, RolloutState, WaveProgress};
use crate::auth::secret::new_id;
use crate::auth::Clock;
use crate::fleet::inventory::{Device, Host};
use crate::fleet::policies::{check_capability, releases_of_model};
use crate::fleet::{get_existing, list, to_value, Fleet, FleetError, Stamps, ALL_USERS};
use crate::store::{Key, Op, StoreError, Table};

/// The prefix of the `policy` field of assignments a rollout made.
pub const ROLLOUT_PREFIX: &str = "rollout:";

pub(super) fn member_key(tenant: &str, rollout: &str, device: &str) -> Key {
    Key::new(tenant, format!("{rollout}/{device}"))
}

fn rev_claim(tenant: &str, id: &str, revision: u64) -> Key {
    Key::new(tenant, format!("rollout-rev:{id}:{revision}"))
}

/// Whether a target (group ids; empty: All Users) holds a host of `group`.
pub(super) fn targets(groups: &[String], group: &str) -> bool {
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
            count(&mut out, device, &m);
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
}

pub(super) fn is_version(release: &FirmwareRelease, v: &str) -> bool {
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

/// How often the server evaluates rollouts, in its clock's time.
pub const EVALUATE_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The server's job: evaluates every tenant's rollouts every
/// [`EVALUATE_EVERY`] of `clock` time (faster under a simulation's
/// accelerated clock), one node at a time ([`crate::store::Store::exclusively`]). A pass that meets a concurrent writer is retried at
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
        let pass = tokio::task::spawn_blocking(move || {
            crate::store::run_exclusively(f.store(), "rollouts", || f.evaluate_all_rollouts())
        });
        match pass.await {
            Ok(Ok(None) | Ok(Some(Ok(0)))) => {}
            Ok(Ok(Some(Ok(n)))) => tracing::info!(rollouts = n, "rollouts advanced"),
            Ok(Ok(Some(Err(FleetError::Conflict(_))))) => {
                tracing::info!("rollout evaluation met a concurrent writer; next tick retries");
            }
            Ok(Ok(Some(Err(e)))) => tracing::error!(error = %e, "rollout evaluation failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "rollout evaluation: store"),
            Err(e) => tracing::error!(error = %e, "rollout evaluation task failed"),
        }
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
