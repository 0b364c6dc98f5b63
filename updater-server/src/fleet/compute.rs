//! The assignment computation: a pure function from the tenant's groups and
//! policies, what one agent reported, and the catalog's releases to the
//! per-device assignments and the reasons for every device left out.
//!
//! Rules:
//! - A user's effective group is the custom group with the best (lowest)
//!   priority number they belong to (manual membership by inventory name, or
//!   an LDAP group id the agent reported for the account), else All Users.
//!   The host's devices follow the best effective group among its users.
//! - A device's policy is the enabled policy for its model (`VID:PID`) and
//!   that group, else the enabled All-Users policy for the model.
//! - Candidate releases fit the device (hardware ids, `bcdDevice` range);
//!   `latest` picks the highest [`catalog::package::Version`], a pin the equal
//!   version.
//! - Refused: silent without `silent_capable`, automatic without
//!   `automatic_capable`, a release whose security counter is below what the
//!   agent reports installed.
//! - A device a staged rollout decides for (see [`super::rollouts`]) follows
//!   the rollout's [`Plan`] instead of any policy: the rollout's release
//!   with its wave's deployment type and window once the wave began, and
//!   nothing (reason `rollout_held`) before that or while it is paused.
//! - **Up to date devices get no assignment** (reason `up_to_date`): the
//!   document lists only work to do, so it changes only when there is some.
//!   A pin below the installed version is honoured (a deliberate downgrade)
//!   as long as the security counter allows it.

use std::collections::BTreeMap;

use catalog::assignment::Assignment;
use catalog::package::{FirmwareRelease, Version};
use catalog::protocol::{DeviceReport, DfuState};
use serde::{Deserialize, Serialize};

use catalog::assignment::{DeploymentType, DownloadSource};
use catalog::package::HardwareId;
use catalog::window::MaintenanceWindow;

use super::policies::check_capability;
use super::rollouts::Plan;
use super::{FirmwarePolicy, Group, ALL_USERS};

/// Why a device got no assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum SkipReason {
    /// The device cannot be flashed (inventory only).
    NotUpdatable,
    /// No enabled policy for the model in the effective group or All Users.
    NoPolicy,
    /// The catalog has no release for the device.
    NoRelease {
        /// The policy.
        policy: String,
    },
    /// The pinned version is not in the catalog for the device.
    PinnedVersionNotInCatalog {
        /// The policy.
        policy: String,
        /// The pin.
        version: String,
    },
    /// The deployment type is not supported by the release.
    NotCapable {
        /// The policy.
        policy: String,
        /// Why.
        message: String,
    },
    /// The release's security counter is below the installed one.
    Downgrade {
        /// The policy.
        policy: String,
        /// The release.
        target: String,
        /// Its counter.
        offered: u32,
        /// The installed counter.
        installed: u32,
    },
    /// A staged rollout holds the device back: its wave has not begun, or
    /// the rollout is paused.
    RolloutHeld {
        /// `rollout:<id>`.
        rollout: String,
        /// Why, in words.
        why: String,
    },
    /// The device already runs the selected version.
    UpToDate {
        /// The policy.
        policy: String,
        /// The version.
        version: String,
    },
}

/// What one agent reported, as the computation needs it.
#[derive(Debug, Clone, Default)]
pub struct Reported<'a> {
    /// Inventory names of the users (after shared / excluded accounts).
    pub users: Vec<String>,
    /// LDAP group ids per inventory name.
    pub ldap: BTreeMap<String, Vec<String>>,
    /// Attached devices.
    pub devices: &'a [DeviceReport],
    /// Installed security counters by device identity.
    pub installed_counters: BTreeMap<String, u32>,
    /// What staged rollouts allow, by device identity (devices no rollout
    /// decides for are absent).
    pub rollouts: BTreeMap<String, Plan>,
}

/// The result for one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The host's effective group (`all-users` or a custom group id).
    pub group: String,
    /// Assignments, one per device at most, in device order.
    pub assignments: Vec<Assignment>,
    /// Devices left out, with why.
    pub skipped: Vec<(String, SkipReason)>,
    /// Deferral limits of persistent assignments, by device (signed with the
    /// document as its `max_deferrals` field).
    pub max_deferrals: BTreeMap<String, u32>,
    /// Devices whose policy turns the multi-piece guard off (signed with
    /// the document as its `multi_piece_guard_off` field).
    pub multi_piece_guard_off: std::collections::BTreeSet<String>,
}

/// The best custom group of one user, if any.
pub fn effective_group<'g>(groups: &'g [Group], user: &str, ldap: &[String]) -> Option<&'g Group> {
    groups
        .iter()
        .filter(|g| g.has_member(user, ldap))
        .min_by_key(|g| g.priority)
}

/// The host's group: the best effective group among its users.
pub fn host_group<'g>(groups: &'g [Group], r: &Reported<'_>) -> Option<&'g Group> {
    r.users
        .iter()
        .filter_map(|u| {
            let ldap = r.ldap.get(u).map(Vec::as_slice).unwrap_or(&[]);
            effective_group(groups, u, ldap)
        })
        .min_by_key(|g| g.priority)
}

/// The policy for a device of this model (`VID:PID`, `bcdDevice`) in
/// `group` (a custom group's id; `None` or All Users' id: All Users): the
/// group's enabled policy for the model, else All Users' one. The one rule
/// check-ins and the compliance report follow.
pub fn policy_for<'p>(
    policies: &'p [FirmwarePolicy],
    group: Option<&str>,
    vendor_id: u16,
    product_id: u16,
    bcd_device: u16,
) -> Option<&'p FirmwarePolicy> {
    let for_model = |g: Option<&str>| {
        policies.iter().find(|p| {
            p.spec.enabled
                && p.spec.group.as_deref() == g
                && p.spec.model.matches(vendor_id, product_id, bcd_device)
        })
    };
    group
        .filter(|g| *g != ALL_USERS)
        .and_then(|g| for_model(Some(g)))
        .or_else(|| for_model(None))
}

/// Computes one agent's assignments (see the module docs for the rules).
pub fn compute(
    groups: &[Group],
    policies: &[FirmwarePolicy],
    releases: &[FirmwareRelease],
    reported: &Reported<'_>,
) -> Outcome {
    let group = host_group(groups, reported).map(|g| g.id.clone());
    let mut out = Outcome {
        group: group.clone().unwrap_or_else(|| ALL_USERS.to_owned()),
        assignments: Vec::new(),
        skipped: Vec::new(),
        max_deferrals: BTreeMap::new(),
        multi_piece_guard_off: std::collections::BTreeSet::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for d in reported.devices {
        let id = d.identity();
        if !seen.insert(id.clone()) {
            continue; // reported twice: assign once
        }
        match assign(policies, releases, reported, group.as_deref(), d) {
            Ok((a, terms)) => {
                if let Some(n) = terms.max_deferrals {
                    out.max_deferrals.insert(a.device.clone(), n);
                }
                if !terms.multi_piece_guard {
                    out.multi_piece_guard_off.insert(a.device.clone());
                }
                out.assignments.push(a);
            }
            Err(reason) => out.skipped.push((id, reason)),
        }
    }
    out
}

/// How a device is to be updated, from its policy or its rollout.
struct Terms<'a> {
    /// The policy id, or `rollout:<id>`.
    id: String,
    model: HardwareId,
    deployment: DeploymentType,
    window: Option<&'a MaintenanceWindow>,
    source: &'a DownloadSource,
    fallback_to_server: bool,
    max_deferrals: Option<u32>,
    multi_piece_guard: bool,
    allow_downgrade: bool,
}

impl<'a> Terms<'a> {
    fn of_policy(p: &'a FirmwarePolicy) -> Self {
        Terms {
            id: p.id.clone(),
            model: p.spec.model,
            deployment: p.spec.deployment,
            window: p.spec.window.as_ref(),
            source: &p.spec.source,
            fallback_to_server: p.spec.fallback_to_server,
            max_deferrals: p.spec.max_deferrals,
            multi_piece_guard: p.spec.multi_piece_guard,
            allow_downgrade: p.spec.allow_downgrade,
        }
    }

    fn of_plan(p: &'a Plan) -> Self {
        Terms {
            id: p.id.clone(),
            model: p.model,
            deployment: p.deployment,
            window: p.window.as_ref(),
            source: &p.source,
            fallback_to_server: p.fallback_to_server,
            max_deferrals: None,
            multi_piece_guard: true,
            // A rollout moves forward only.
            allow_downgrade: false,
        }
    }
}

fn assign<'p>(
    policies: &'p [FirmwarePolicy],
    releases: &[FirmwareRelease],
    reported: &'p Reported<'_>,
    group: Option<&str>,
    d: &DeviceReport,
) -> Result<(Assignment, Terms<'p>), SkipReason> {
    if d.dfu == DfuState::None {
        return Err(SkipReason::NotUpdatable);
    }
    let candidates: Vec<&FirmwareRelease> = releases
        .iter()
        .filter(|r| r.fits(d.vendor_id, d.product_id, d.bcd_device))
        .collect();
    let (terms, release) = match reported.rollouts.get(&d.identity()) {
        Some(plan) => {
            if let Some(why) = &plan.hold {
                return Err(SkipReason::RolloutHeld {
                    rollout: plan.id.clone(),
                    why: why.clone(),
                });
            }
            let release = candidates
                .iter()
                .copied()
                .find(|r| r.target_name == plan.target_name)
                .ok_or_else(|| SkipReason::NoRelease {
                    policy: plan.id.clone(),
                })?;
            (Terms::of_plan(plan), release)
        }
        None => {
            let policy = policy_for(policies, group, d.vendor_id, d.product_id, d.bcd_device)
                .ok_or(SkipReason::NoPolicy)?;
            let pid = policy.id.clone();
            if candidates.is_empty() {
                return Err(SkipReason::NoRelease { policy: pid });
            }
            let release = policy.spec.version.select(&candidates).ok_or_else(|| {
                SkipReason::PinnedVersionNotInCatalog {
                    policy: pid.clone(),
                    version: policy.spec.version.to_string(),
                }
            })?;
            (Terms::of_policy(policy), release)
        }
    };
    let pid = terms.id.clone();
    check_capability(terms.deployment, release).map_err(|message| SkipReason::NotCapable {
        policy: pid.clone(),
        message,
    })?;
    if let Some(&installed) = reported.installed_counters.get(&d.identity()) {
        if release.security_counter < installed {
            return Err(SkipReason::Downgrade {
                policy: pid,
                target: release.target_name.clone(),
                offered: release.security_counter,
                installed,
            });
        }
    }
    let running = d
        .firmware_version
        .as_deref()
        .and_then(|v| Version::parse(v, release.version.format()).ok());
    if running.as_ref() == Some(&release.version) {
        return Err(SkipReason::UpToDate {
            policy: pid,
            version: release.version.as_str().to_owned(),
        });
    }
    let assignment = Assignment {
        device: d.identity(),
        hardware_id: terms.model,
        target_name: release.target_name.clone(),
        sha256: release.sha256,
        length: release.size,
        deployment: terms.deployment,
        window: terms.window.cloned(),
        source: terms.source.clone(),
        fallback_to_server: terms.fallback_to_server,
        policy: pid,
        allow_downgrade: terms.allow_downgrade,
    };
    Ok((assignment, terms))
}

#[cfg(test)]
#[path = "compute_tests.rs"]
mod tests;
