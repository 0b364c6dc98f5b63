//! Signed assignments: what one agent's devices should run, signed by the
//! tenant's online key (the role of Uptane's Director), in the same signed
//! envelope and canonical JSON as the TUF metadata.
//!
//! The agent installs only when **both** sides agree: the assignment (tenant
//! policy) and the catalog's signed target (what the image is) name the same
//! sha256, length and hardware, and the security counter does not go down.
//! [`verify_assignments`] checks the envelope; [`check_against_target`]
//! checks one assignment against the verified catalog target and the device.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Sha256Digest;
use crate::package::{HardwareId, TargetFirmware, Version};
use crate::protocol::DeviceReport;
use crate::tuf::{Metadata, PublicKey, Signed, TargetFile, TufError, SPEC_VERSION};
use crate::window::MaintenanceWindow;

mod downgrade;
mod endorsement;
mod software;

pub use self::downgrade::{check_not_older, running_version};
pub use self::endorsement::{check_endorsed, EndorsementError, KeyEndorsement, ENDORSEMENT_DIR};
pub use self::software::{SoftwareOffer, SoftwarePackage};

/// How an update reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentType {
    /// Offered; the user may accept or decline.
    Optional,
    /// Offered at every poll and login until done; deferrals are limited.
    Persistent,
    /// Applied without asking when the device is attached at agent start.
    Automatic,
    /// Applied without the user inside the maintenance window (firmware only).
    Silent,
}

/// Where the agent downloads the image. Whatever the source, the bytes are
/// verified against the signed target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DownloadSource {
    /// The update server itself.
    Server,
    /// A mirror on a network share (mounted path or UNC path).
    Share {
        /// The mirror's root directory.
        path: String,
    },
    /// A mirror on an internal web server.
    Web {
        /// The mirror's base URL.
        url: String,
    },
}

/// One device's assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The device it is for ([`DeviceReport::identity`]).
    pub device: String,
    /// The hardware id the policy targets.
    pub hardware_id: HardwareId,
    /// The catalog target to install.
    pub target_name: String,
    /// Its sha256, as the catalog signed it.
    pub sha256: Sha256Digest,
    /// Its length.
    pub length: u64,
    /// How it is deployed.
    pub deployment: DeploymentType,
    /// When a silent update may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<MaintenanceWindow>,
    /// Where to download from.
    pub source: DownloadSource,
    /// Fall back to the server when the share or mirror fails verification.
    pub fallback_to_server: bool,
    /// The policy that produced it (for reports).
    pub policy: String,
    /// The policy allows installing a version older than the device runs
    /// (never below the installed security counter). Absent: false, and an
    /// older offer is refused ([`check_not_older`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_downgrade: bool,
}

/// The `signed` part of an assignment document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentSet {
    /// Always `assignments`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The envelope's format version (that of the TUF metadata).
    pub spec_version: String,
    /// Increases with every change for this agent (rollback protection).
    pub version: u64,
    /// The agent is not to act on it after this.
    #[serde(with = "crate::tuf::expires_format")]
    pub expires: DateTime<Utc>,
    /// The tenant.
    pub tenant: String,
    /// The agent it is for (an assignment for another agent is refused).
    pub agent: String,
    /// Seconds between check-ins.
    pub poll_interval_secs: u64,
    /// Per-device assignments.
    pub assignments: Vec<Assignment>,
    /// The agent's own update, if its software policy offers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<SoftwareOffer>,
    /// The tenant's LDAP groups, by priority, which the agent evaluates for
    /// its logged-in accounts: signed, so the server a bind goes to is the
    /// one the tenant's key vouches for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ldap_groups: Vec<crate::checkin::LdapGroupDefinition>,
    /// Unknown fields, kept verbatim (they are covered by the signature).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Metadata for AssignmentSet {
    const TYPE: &'static str = "assignments";

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }

    fn validate(&self) -> Result<(), String> {
        if self.poll_interval_secs == 0 {
            return Err("poll_interval_secs must be positive".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.assignments {
            if !seen.insert(a.device.as_str()) {
                return Err(format!("device {} is assigned twice", a.device));
            }
            crate::tuf::validate_target_name(&a.target_name).map_err(|e| e.to_string())?;
        }
        if let Some(s) = &self.software {
            if s.deployment == DeploymentType::Silent {
                return Err("software cannot be deployed silently".into());
            }
            if let Some(p) = &s.package {
                crate::tuf::validate_target_name(&p.target_name).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

impl AssignmentSet {
    /// A new document (`_type` and `spec_version` filled in).
    pub fn new(
        tenant: &str,
        agent: &str,
        version: u64,
        expires: DateTime<Utc>,
        poll_interval_secs: u64,
        assignments: Vec<Assignment>,
    ) -> Self {
        Self {
            type_: Self::TYPE.to_owned(),
            spec_version: SPEC_VERSION.to_owned(),
            version,
            expires: expires.trunc_subsecs(0),
            tenant: tenant.to_owned(),
            agent: agent.to_owned(),
            poll_interval_secs,
            assignments,
            software: None,
            ldap_groups: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// Why an assignment is not acted upon.
#[derive(Debug, thiserror::Error)]
pub enum AssignmentError {
    /// The envelope does not parse or is not signed by the tenant key.
    #[error(transparent)]
    Envelope(#[from] TufError),
    /// Signed for another agent (replayed from elsewhere).
    #[error("assignments are for agent {found}, this is agent {expected}")]
    WrongAgent {
        /// This agent.
        expected: String,
        /// The document's agent.
        found: String,
    },
    /// Expired.
    #[error("assignments expired at {0}")]
    Expired(DateTime<Utc>),
    /// Older than what the agent already acted on.
    #[error("assignments version {found} is older than the trusted version {trusted}")]
    Rollback {
        /// The version held.
        trusted: u64,
        /// The version offered.
        found: u64,
    },
    /// The assignment and the catalog name different images.
    #[error("{target}: assignment says {what} {assigned}, the signed catalog says {signed}")]
    Disagree {
        /// The target.
        target: String,
        /// Which field.
        what: &'static str,
        /// The assignment's value.
        assigned: String,
        /// The catalog's value.
        signed: String,
    },
    /// The catalog target is not for this device.
    #[error("{target} is for {ids}, not for the device {device}")]
    WrongHardware {
        /// The target.
        target: String,
        /// What the catalog says it is for.
        ids: String,
        /// The device's ids.
        device: String,
    },
    /// Installing would lower the security counter.
    #[error("{target} has security counter {offered}, below the installed {installed}: refusing a downgrade")]
    Downgrade {
        /// The target.
        target: String,
        /// Its counter.
        offered: u32,
        /// The installed counter.
        installed: u32,
    },
    /// The offered version is older than the device runs and the
    /// assignment does not allow a downgrade.
    #[error("{target}: version {offered} is older than the {running} the device runs; a downgrade is installed only when its policy allows it")]
    OlderVersion {
        /// The target.
        target: String,
        /// Its version.
        offered: String,
        /// The device's version.
        running: String,
    },
    /// The catalog target carries no firmware fields.
    #[error("{0} has no firmware description in the signed catalog")]
    NotFirmware(String),
}

/// Signs an assignment set with the tenant key (server side).
pub fn sign_assignments(
    set: AssignmentSet,
    key: &crate::tuf::Ed25519Signer,
) -> Result<Vec<u8>, TufError> {
    Signed::sign(set, &[key])?.to_json_bytes()
}

/// Verifies an assignment document (agent side): signed by the pinned tenant
/// key, for this agent, unexpired at `now`, and not older than `trusted_version`.
pub fn verify_assignments(
    bytes: &[u8],
    tenant_key: &PublicKey,
    agent: &str,
    trusted_version: u64,
    now: DateTime<Utc>,
) -> Result<AssignmentSet, AssignmentError> {
    let doc = Signed::<AssignmentSet>::from_slice("assignments", bytes)?;
    let keyid = tenant_key.key_id()?;
    let keys: BTreeMap<String, PublicKey> = [(keyid.clone(), tenant_key.clone())].into();
    doc.verify("assignments", &keys, &[keyid], 1)?;
    check_assignment_set(doc.signed, agent, trusted_version, now)
}

/// The checks of [`verify_assignments`] after the signature: for this
/// agent, unexpired at `now`, not older than `trusted_version`. For a set
/// whose signature was verified before (see the agent's cache of the last
/// verified document), these must still run at every use.
pub fn check_assignment_set(
    set: AssignmentSet,
    agent: &str,
    trusted_version: u64,
    now: DateTime<Utc>,
) -> Result<AssignmentSet, AssignmentError> {
    if set.agent != agent {
        return Err(AssignmentError::WrongAgent {
            expected: agent.to_owned(),
            found: set.agent,
        });
    }
    if set.expires <= now {
        return Err(AssignmentError::Expired(set.expires));
    }
    if set.version < trusted_version {
        return Err(AssignmentError::Rollback {
            trusted: trusted_version,
            found: set.version,
        });
    }
    Ok(set)
}

/// Checks one assignment against the verified catalog target and the device:
/// same sha256 and length, the target is for this hardware, and the security
/// counter does not go below `installed_counter`. Returns the target's
/// firmware fields and version on success.
pub fn check_against_target(
    assignment: &Assignment,
    target: &TargetFile,
    device: &DeviceReport,
    installed_counter: u32,
) -> Result<(TargetFirmware, Version), AssignmentError> {
    let name = &assignment.target_name;
    let disagree = |what, assigned: String, signed: String| AssignmentError::Disagree {
        target: name.clone(),
        what,
        assigned,
        signed,
    };
    let signed_sha = target.hashes.get("sha256").cloned().unwrap_or_default();
    if signed_sha != assignment.sha256.to_hex() {
        return Err(disagree("sha256", assignment.sha256.to_hex(), signed_sha));
    }
    if target.length != assignment.length {
        return Err(disagree(
            "length",
            assignment.length.to_string(),
            target.length.to_string(),
        ));
    }
    let fw = target
        .custom
        .as_ref()
        .and_then(TargetFirmware::from_custom)
        .ok_or_else(|| AssignmentError::NotFirmware(name.clone()))?;
    let fits = fw
        .hardware_ids
        .iter()
        .any(|h| h.matches(device.vendor_id, device.product_id, device.bcd_device));
    let policy_fits =
        assignment
            .hardware_id
            .matches(device.vendor_id, device.product_id, device.bcd_device);
    if !fits || !policy_fits {
        let ids: Vec<String> = fw.hardware_ids.iter().map(ToString::to_string).collect();
        return Err(AssignmentError::WrongHardware {
            target: name.clone(),
            ids: ids.join(", "),
            device: format!(
                "{:04X}:{:04X} rev {:04X}",
                device.vendor_id, device.product_id, device.bcd_device
            ),
        });
    }
    if fw.security_counter < installed_counter {
        return Err(AssignmentError::Downgrade {
            target: name.clone(),
            offered: fw.security_counter,
            installed: installed_counter,
        });
    }
    let version = Version::parse(&fw.version, fw.version_format)
        .map_err(|_| AssignmentError::NotFirmware(name.clone()))?;
    Ok((fw, version))
}

#[cfg(test)]
mod tests;
