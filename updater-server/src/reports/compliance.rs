//! Policy Compliance: per device under an enabled firmware policy, the
//! policy's target version against the installed one, and why a device is
//! not compliant. Devices no enabled policy covers are listed too, as
//! `no_policy` (or `not_updatable`), without a policy, and counted apart
//! (`without_policy`), so that a device is never missing from the report.
//!
//! The policy is found as the check-in finds it ([`crate::fleet::compute`]):
//! the enabled policy for the model in the host's effective group at its
//! last check-in, else the All Users one. The target is the release that
//! policy selects today from the releases fitting the device. Then, first
//! match wins:
//!
//! | status | when |
//! |---|---|
//! | `not_updatable` | the device has no DFU interface |
//! | `no_policy` | no enabled policy covers the device (listed without one) |
//! | `no_release` / `pinned_version_not_in_catalog` | nothing to install |
//! | `compliant` | the installed version equals the target |
//! | `not_seen_since_policy_change` | the host's last check-in is older than the policy's last edit |
//! | `not_capable` / `downgrade_refused` | the last check-in refused the assignment |
//! | `failed` | the agent reports the last attempt failed (detail: its error) |
//! | `deferred` | the user deferred it |
//! | `awaiting_replug` | flashed; the device must be unplugged and replugged |
//! | `waiting_for_window` | staged, waiting for the maintenance window |
//! | `waiting_for_consent` | staged, waiting for the user (optional / persistent) |
//! | `waiting` | staged, waiting for something else the agent names (a call, another piece of a multi-piece product …) |
//! | `pending` | assigned; no progress reported yet, or installed and not re-read |
//!
//! Agents report a phase (staged, waiting, flashing, awaiting replug,
//! installed, failed, deferred) and a message. A waiting update is told
//! apart by the agent's reason (`maintenance window` → waiting for the
//! window, `user consent` → waiting for consent, else `waiting`); a staged
//! one with no message by the policy's deployment type. Agents before the
//! `waiting` / `awaiting_replug` phases sent `staged` with the reason, read
//! the same way (`awaiting replug` in it → awaiting replug).
//! States about another target than today's are ignored.
//!
//! A device flashed and waiting for its replug may still enumerate with its
//! DFU-mode product id; it is reported under the model of the release its
//! host says it is installing.

use std::collections::{BTreeMap, HashMap};

use catalog::assignment::DeploymentType;
use catalog::checkin::{UpdatePhase, UpdateState};
use catalog::package::{FirmwareRelease, Version};
use catalog::protocol::DfuState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{identity, model_key, opt_time, user_names, Built, ReportKind, Snapshot};
use crate::fleet::compute::{self, SkipReason};
use crate::fleet::inventory::{Device, Host, User};
use crate::fleet::{FirmwarePolicy, ALL_USERS};

/// Where a device stands against its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceStatus {
    /// Runs the target version.
    Compliant,
    /// Assigned; no progress reported yet.
    Pending,
    /// Staged, waiting for the maintenance window.
    WaitingForWindow,
    /// Staged, waiting for the user to accept.
    WaitingForConsent,
    /// Staged, waiting for another reason the agent gives.
    Waiting,
    /// The user deferred it.
    Deferred,
    /// Flashed; waiting for the device to be unplugged and replugged.
    AwaitingReplug,
    /// The last attempt failed.
    Failed,
    /// The host has not checked in since the policy changed.
    NotSeenSincePolicyChange,
    /// The device cannot be flashed.
    NotUpdatable,
    /// The catalog has no release for the device.
    NoRelease,
    /// The pinned version is not in the catalog for the device.
    PinnedVersionNotInCatalog,
    /// The release cannot be deployed the way the policy asks.
    NotCapable,
    /// The release is below the installed security counter.
    DowngradeRefused,
    /// No enabled firmware policy covers the device.
    NoPolicy,
}

impl ComplianceStatus {
    /// The name in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceStatus::Compliant => "compliant",
            ComplianceStatus::Pending => "pending",
            ComplianceStatus::WaitingForWindow => "waiting_for_window",
            ComplianceStatus::WaitingForConsent => "waiting_for_consent",
            ComplianceStatus::Waiting => "waiting",
            ComplianceStatus::Deferred => "deferred",
            ComplianceStatus::AwaitingReplug => "awaiting_replug",
            ComplianceStatus::Failed => "failed",
            ComplianceStatus::NotSeenSincePolicyChange => "not_seen_since_policy_change",
            ComplianceStatus::NotUpdatable => "not_updatable",
            ComplianceStatus::NoRelease => "no_release",
            ComplianceStatus::PinnedVersionNotInCatalog => "pinned_version_not_in_catalog",
            ComplianceStatus::NotCapable => "not_capable",
            ComplianceStatus::DowngradeRefused => "downgrade_refused",
            ComplianceStatus::NoPolicy => "no_policy",
        }
    }
}

/// One device under a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComplianceRow {
    /// Inventory id.
    pub device_id: String,
    /// The identity agents use.
    pub identity: String,
    /// `VID:PID`.
    pub model: String,
    /// Serial number.
    pub serial: Option<String>,
    /// Host (agent id).
    pub host: String,
    /// Its name.
    pub hostname: String,
    /// Users of the device.
    pub users: Vec<String>,
    /// The effective group at the host's last check-in.
    pub group: String,
    /// The policy's id (`None`: no policy covers the device).
    pub policy: Option<String>,
    /// Its name.
    pub policy_name: Option<String>,
    /// Its deployment type.
    pub deployment: Option<DeploymentType>,
    /// The version the policy selects (`None`: nothing in the catalog).
    pub target_version: Option<String>,
    /// What the device reports.
    pub installed_version: Option<String>,
    /// Installed equals target.
    pub compliant: bool,
    /// Why (or `compliant`).
    pub status: ComplianceStatus,
    /// The agent's message or the server's explanation.
    pub detail: String,
    /// The host's last check-in.
    pub last_check_in: Option<DateTime<Utc>>,
    /// The policy's last change.
    pub policy_updated_at: Option<DateTime<Utc>>,
}

/// The CSV columns.
pub const COLUMNS: &[&str] = &[
    "device_id",
    "identity",
    "model",
    "serial",
    "host",
    "hostname",
    "users",
    "group",
    "policy",
    "policy_name",
    "deployment",
    "target_version",
    "installed_version",
    "compliant",
    "status",
    "detail",
    "last_check_in",
    "policy_updated_at",
];

/// The device's policy, by the check-in's rule ([`compute::policy_for`]).
fn policy_for<'p>(
    policies: &'p [FirmwarePolicy],
    group: &str,
    d: &Device,
) -> Option<&'p FirmwarePolicy> {
    compute::policy_for(
        policies,
        Some(group),
        d.vendor_id,
        d.product_id,
        d.bcd_device,
    )
}

/// The status and its detail (see the module docs for the order).
pub fn classify(
    d: &Device,
    host: Option<&Host>,
    policy: &FirmwarePolicy,
    target: Result<&FirmwareRelease, ComplianceStatus>,
) -> (ComplianceStatus, String) {
    use ComplianceStatus as S;
    if d.dfu == DfuState::None {
        return (S::NotUpdatable, "the device has no DFU interface".into());
    }
    let target = match target {
        Ok(t) => t,
        Err(S::NoRelease) => {
            return (
                S::NoRelease,
                "the catalog has no release for the device".into(),
            )
        }
        Err(s) => {
            let why = format!("version {} is not in the catalog", policy.spec.version);
            return (s, why);
        }
    };
    let installed = d
        .firmware_version
        .as_deref()
        .and_then(|v| Version::parse(v, target.version.format()).ok());
    if installed.as_ref() == Some(&target.version) {
        return (S::Compliant, String::new());
    }
    let Some(host) = host else {
        return (
            S::Pending,
            "the device's host is no longer in the inventory".into(),
        );
    };
    if host.last_seen < policy.stamps.updated_at {
        return (
            S::NotSeenSincePolicyChange,
            format!(
                "last check-in {}, policy changed {}",
                super::time(host.last_seen),
                super::time(policy.stamps.updated_at)
            ),
        );
    }
    let id = identity(d);
    if let Some((_, reason)) = host.skipped.iter().find(|(dev, _)| dev == id) {
        match reason {
            SkipReason::NotCapable { message, .. } => return (S::NotCapable, message.clone()),
            SkipReason::Downgrade {
                offered, installed, ..
            } => {
                return (
                    S::DowngradeRefused,
                    format!(
                        "release security counter {offered} is below the installed {installed}"
                    ),
                )
            }
            // Other reasons are about the catalog or policy of that moment.
            _ => {}
        }
    }
    let state = host
        .update_states
        .iter()
        .find(|s| s.device == id)
        .filter(|s| {
            s.target_name
                .as_ref()
                .is_none_or(|t| *t == target.target_name)
        });
    from_state(state, policy.spec.deployment)
}

fn from_state(
    state: Option<&UpdateState>,
    deployment: DeploymentType,
) -> (ComplianceStatus, String) {
    use ComplianceStatus as S;
    let Some(state) = state else {
        return (S::Pending, "assigned; no progress reported yet".into());
    };
    let message = state.message.clone().unwrap_or_default();
    let lower = message.to_lowercase();
    match state.phase {
        Some(UpdatePhase::Failed) => {
            let m = if message.is_empty() {
                "failed (no message)".into()
            } else {
                message
            };
            (S::Failed, m)
        }
        Some(UpdatePhase::Deferred) => (
            S::Deferred,
            format!("deferred by the user {} time(s)", state.deferrals),
        ),
        Some(UpdatePhase::Installed) => (
            S::Pending,
            "installed; the device has not reported the new version yet".into(),
        ),
        Some(UpdatePhase::AwaitingReplug) => (
            S::AwaitingReplug,
            if message.is_empty() {
                "flashed; unplug and replug the device to finish".into()
            } else {
                message
            },
        ),
        Some(UpdatePhase::Flashing) => (S::Pending, "being installed".into()),
        Some(UpdatePhase::Staged | UpdatePhase::Waiting) => {
            let status = if lower.starts_with("awaiting replug") {
                S::AwaitingReplug
            } else if lower.contains("maintenance window") {
                S::WaitingForWindow
            } else if lower.contains("user consent") {
                S::WaitingForConsent
            } else if !message.is_empty() {
                S::Waiting
            } else {
                match deployment {
                    DeploymentType::Silent => S::WaitingForWindow,
                    DeploymentType::Optional | DeploymentType::Persistent => S::WaitingForConsent,
                    DeploymentType::Automatic => S::Pending,
                }
            };
            let m = if message.is_empty() {
                "staged".into()
            } else {
                message
            };
            (status, m)
        }
        None => (S::Pending, "assigned; no progress reported yet".into()),
    }
}

/// The rows, by model, then host name, then device id.
pub fn rows(s: &Snapshot) -> Vec<ComplianceRow> {
    let hosts = s.hosts_by_id();
    let users = s.users_by_id();
    // The target depends on the policy and the hardware only: chosen once
    // per (policy, model, revision), not per device.
    let mut targets: HashMap<(&str, u16, u16, u16), Result<&FirmwareRelease, ComplianceStatus>> =
        HashMap::new();
    let mut rows = Vec::new();
    for d in s.devices.iter().filter(|d| d.deleted_at.is_none()) {
        let host = hosts.get(d.host.as_str()).copied();
        let group = host.map_or(ALL_USERS, |h| h.group.as_str());
        let by_release = installing_as(s, host, group, d);
        let d = by_release.as_ref().unwrap_or(d);
        let Some(policy) = policy_for(&s.policies, group, d) else {
            rows.push(without_policy(d, host, group, &users));
            continue;
        };
        let target = *targets
            .entry((policy.id.as_str(), d.vendor_id, d.product_id, d.bcd_device))
            .or_insert_with(|| target_of(&s.releases, policy, d));
        let (status, detail) = classify(d, host, policy, target);
        rows.push(row(
            Where { d, host, group },
            &users,
            Some(policy),
            target.ok().map(|t| t.version.as_str().to_owned()),
            (status, detail),
        ));
    }
    // Ids are unique: an unstable sort gives the same order, faster.
    rows.sort_unstable_by(|a, b| {
        (&a.model, &a.hostname, &a.device_id).cmp(&(&b.model, &b.hostname, &b.device_id))
    });
    rows
}

/// The release `policy` selects for `d`'s hardware, or why there is none.
fn target_of<'r>(
    releases: &'r [FirmwareRelease],
    policy: &FirmwarePolicy,
    d: &Device,
) -> Result<&'r FirmwareRelease, ComplianceStatus> {
    let candidates: Vec<&FirmwareRelease> = releases
        .iter()
        .filter(|r| r.fits(d.vendor_id, d.product_id, d.bcd_device))
        .collect();
    match policy.spec.version.select(&candidates) {
        Some(t) => Ok(t),
        None if candidates.is_empty() => Err(ComplianceStatus::NoRelease),
        None => Err(ComplianceStatus::PinnedVersionNotInCatalog),
    }
}

/// The row of a device no enabled policy covers (listed so that an admin
/// sees it, counted apart from the non-compliant ones).
fn without_policy(
    d: &Device,
    host: Option<&Host>,
    group: &str,
    users: &HashMap<&str, &User>,
) -> ComplianceRow {
    let (status, detail) = if d.dfu == DfuState::None {
        (
            ComplianceStatus::NotUpdatable,
            "the device has no DFU interface".to_owned(),
        )
    } else if group == ALL_USERS {
        (
            ComplianceStatus::NoPolicy,
            "no enabled firmware policy for this model in All Users".to_owned(),
        )
    } else {
        (
            ComplianceStatus::NoPolicy,
            "no enabled firmware policy for this model in the host's group or All Users".to_owned(),
        )
    };
    row(
        Where { d, host, group },
        users,
        None,
        None,
        (status, detail),
    )
}

/// A device, its host and the host's group, as a row describes them.
struct Where<'a> {
    d: &'a Device,
    host: Option<&'a Host>,
    group: &'a str,
}

/// One row: the device's side from `at`, the policy's side from `policy`
/// (`None`: no policy covers it), and the verdict.
fn row(
    at: Where<'_>,
    users: &HashMap<&str, &User>,
    policy: Option<&FirmwarePolicy>,
    target_version: Option<String>,
    (status, detail): (ComplianceStatus, String),
) -> ComplianceRow {
    let Where { d, host, group } = at;
    ComplianceRow {
        device_id: d.id.clone(),
        identity: identity(d).to_owned(),
        model: model_key(d.vendor_id, d.product_id),
        serial: d.serial.clone(),
        host: d.host.clone(),
        hostname: host.map(|h| h.hostname.clone()).unwrap_or_default(),
        users: user_names(users, &d.users),
        group: group.to_owned(),
        policy: policy.map(|p| p.id.clone()),
        policy_name: policy.map(|p| p.spec.name.clone()),
        deployment: policy.map(|p| p.spec.deployment),
        target_version,
        installed_version: d.firmware_version.clone(),
        compliant: status == ComplianceStatus::Compliant,
        status,
        detail,
        last_check_in: host.map(|h| h.last_seen),
        policy_updated_at: policy.map(|p| p.stamps.updated_at),
    }
}

/// `d` as the model of the release its host reports installing on it,
/// when `d` is in DFU mode (its product id is then the bootloader's): the
/// first of the release's models (of `d`'s vendor) that a policy covers.
fn installing_as(s: &Snapshot, host: Option<&Host>, group: &str, d: &Device) -> Option<Device> {
    if d.dfu != DfuState::DfuMode {
        return None;
    }
    let id = identity(d);
    let target = host?
        .update_states
        .iter()
        .find(|u| u.device == id)?
        .target_name
        .as_ref()?;
    let release = s.releases.iter().find(|r| r.target_name == *target)?;
    release
        .hardware_ids
        .iter()
        .filter(|h| h.vid == d.vendor_id)
        .map(|hw| {
            let mut runtime = d.clone();
            runtime.product_id = hw.pid;
            if let Some((lo, hi)) = hw.bcd_range {
                runtime.bcd_device = d.bcd_device.max(lo).min(hi);
            }
            runtime
        })
        .find(|runtime| policy_for(&s.policies, group, runtime).is_some())
}

fn deployment_name(d: DeploymentType) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn cells(r: &ComplianceRow) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        r.device_id.clone(),
        r.identity.clone(),
        r.model.clone(),
        o(&r.serial),
        r.host.clone(),
        r.hostname.clone(),
        r.users.join("; "),
        r.group.clone(),
        o(&r.policy),
        o(&r.policy_name),
        r.deployment.map(deployment_name).unwrap_or_default(),
        o(&r.target_version),
        o(&r.installed_version),
        r.compliant.to_string(),
        r.status.as_str().to_owned(),
        r.detail.clone(),
        opt_time(r.last_check_in),
        opt_time(r.policy_updated_at),
    ]
}

/// The report.
pub fn build(s: &Snapshot) -> Built {
    let rows = rows(s);
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *by_status.entry(r.status.as_str()).or_default() += 1;
    }
    let compliant = rows.iter().filter(|r| r.compliant).count();
    let without_policy = rows.iter().filter(|r| r.policy.is_none()).count();
    let summary = json!({
        "report": ReportKind::Compliance,
        "tenant": s.tenant,
        "generated_at": s.now,
        "devices": rows.len(),
        "compliant": compliant,
        "non_compliant": rows.len() - compliant - without_policy,
        "without_policy": without_policy,
        "by_status": by_status,
    });
    Built::listed(
        ReportKind::Compliance,
        COLUMNS,
        summary,
        "rows",
        rows,
        cells,
    )
}

#[cfg(test)]
#[path = "compliance_tests.rs"]
mod tests;
