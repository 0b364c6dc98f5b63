//! Firmware policies (per device model and group) and software policies
//! (the agent's own version per platform and group).

use std::fmt;

use catalog::assignment::{DeploymentType, DownloadSource};
use catalog::package::{FirmwareRelease, HardwareId, Version};
use catalog::window::MaintenanceWindow;
use serde::{Deserialize, Serialize};

use super::{check_text, FleetError, Stamps};

/// Which version a policy asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSpec {
    /// The highest version in the catalog ([`Version`] ordering).
    Latest,
    /// Exactly this version (compared in the release's version format).
    Pinned(String),
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Latest => f.write_str("latest"),
            VersionSpec::Pinned(v) => f.write_str(v),
        }
    }
}

impl Serialize for VersionSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let s = s.trim();
        if s.eq_ignore_ascii_case("latest") {
            return Ok(VersionSpec::Latest);
        }
        if s.is_empty() || s.len() > catalog::package::MAX_VERSION_LEN {
            return Err(serde::de::Error::custom(
                "version must be `latest` or 1 to 64 characters",
            ));
        }
        Ok(VersionSpec::Pinned(s.to_owned()))
    }
}

impl VersionSpec {
    /// The release of `candidates` this spec selects: the highest version for
    /// `latest`, the one equal to the pin (in the release's format) otherwise.
    pub fn select<'a>(&self, candidates: &[&'a FirmwareRelease]) -> Option<&'a FirmwareRelease> {
        match self {
            VersionSpec::Latest => candidates.iter().copied().max_by(|a, b| {
                a.version
                    .cmp(&b.version)
                    .then(a.imported_at.cmp(&b.imported_at))
            }),
            VersionSpec::Pinned(pin) => candidates
                .iter()
                .copied()
                .find(|r| Version::parse(pin, r.version.format()).is_ok_and(|v| v == r.version)),
        }
    }
}

/// A firmware policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwarePolicy {
    /// The tenant.
    pub tenant: String,
    /// Random hex id.
    pub id: String,
    /// The policy as the admin wrote it.
    pub spec: FirmwarePolicyInput,
    /// Timestamps.
    #[serde(flatten)]
    pub stamps: Stamps,
}

fn yes() -> bool {
    true
}

fn optional() -> DeploymentType {
    DeploymentType::Optional
}

fn server() -> DownloadSource {
    DownloadSource::Server
}

/// What an admin sends to create or replace a firmware policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwarePolicyInput {
    /// Display name.
    pub name: String,
    /// The device model, `VID:PID` (a model nobody has yet may be targeted).
    pub model: HardwareId,
    /// The group (a custom group id); absent: All Users.
    #[serde(default)]
    pub group: Option<String>,
    /// Pinned version or `latest`.
    pub version: VersionSpec,
    /// Deployment type (default optional).
    #[serde(default = "optional")]
    pub deployment: DeploymentType,
    /// Maintenance window (required for silent).
    #[serde(default)]
    pub window: Option<MaintenanceWindow>,
    /// Download source (default the server).
    #[serde(default = "server")]
    pub source: DownloadSource,
    /// Fall back to the server when the share or mirror fails.
    #[serde(default = "yes")]
    pub fallback_to_server: bool,
    /// Only enabled policies are applied (at most one per model and group).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often a user may defer a persistent update.
    #[serde(default)]
    pub max_deferrals: Option<u32>,
    /// A silent update of one piece of a multi-piece product (base, headset,
    /// dongle: the catalog's product family) waits while another piece is
    /// attached. `false` lets it go ahead (signed into the assignment
    /// document's `multi_piece_guard_off` list).
    #[serde(default = "yes")]
    pub multi_piece_guard: bool,
    /// Install the pinned version even where a device runs a newer one (a
    /// rollback of a bad release; signed into each assignment). Never below
    /// a device's installed security counter. Default false: agents refuse
    /// an older version.
    #[serde(default)]
    pub allow_downgrade: bool,
}

impl FirmwarePolicyInput {
    /// Checks the fields that do not need the catalog.
    pub fn validate(&self) -> Result<(), FleetError> {
        check_text("name", &self.name, 200)?;
        if self.deployment == DeploymentType::Silent && self.window.is_none() {
            return Err(FleetError::invalid(
                "window",
                "a silent policy needs a maintenance window",
            ));
        }
        if self.max_deferrals.is_some() && self.deployment != DeploymentType::Persistent {
            return Err(FleetError::invalid(
                "max_deferrals",
                "only persistent policies limit deferrals",
            ));
        }
        check_source(&self.source)
    }

    /// The claim that keeps one enabled policy per model and group.
    pub(crate) fn claim(&self) -> Option<String> {
        self.enabled.then(|| {
            format!(
                "fw-policy:{}:{}",
                self.model.model_key(),
                self.group.as_deref().unwrap_or(super::ALL_USERS)
            )
        })
    }

    /// Refuses a deployment type the release it selects today cannot do.
    /// Models without a release (or a pin not in the catalog yet) pass: they
    /// are checked again at assignment time.
    pub fn check_catalog(&self, releases: &[FirmwareRelease]) -> Result<(), FleetError> {
        let candidates = releases_of_model(releases, self.model);
        let Some(r) = self.version.select(&candidates) else {
            return Ok(());
        };
        check_capability(self.deployment, r).map_err(FleetError::Capability)
    }
}

/// The releases of a model (`VID:PID`), whatever `bcdDevice` range each
/// covers: what a policy or rollout naming the model chooses from.
pub(crate) fn releases_of_model(
    releases: &[FirmwareRelease],
    model: HardwareId,
) -> Vec<&FirmwareRelease> {
    releases
        .iter()
        .filter(|r| {
            r.hardware_ids
                .iter()
                .any(|h| h.vid == model.vid && h.pid == model.pid)
        })
        .collect()
}

/// Checks a download source's path or URL.
pub(crate) fn check_source(source: &DownloadSource) -> Result<(), FleetError> {
    match source {
        DownloadSource::Server => {}
        DownloadSource::Share { path } => check_text("source.path", path, 1024)?,
        DownloadSource::Web { url } => {
            check_text("source.url", url, 1024)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(FleetError::invalid("source.url", "must be an http(s) URL"));
            }
        }
    }
    Ok(())
}

/// Whether `release` can be deployed as `deployment`; the error says why not.
pub(crate) fn check_capability(
    deployment: DeploymentType,
    release: &FirmwareRelease,
) -> Result<(), String> {
    let name = &release.target_name;
    match deployment {
        DeploymentType::Silent if !release.capabilities.silent_capable => Err(format!(
            "{name} is not silent-capable: silent deployment is refused"
        )),
        DeploymentType::Automatic if !release.capabilities.automatic_capable => Err(format!(
            "{name} is not automatic-capable: automatic deployment is refused"
        )),
        _ => Ok(()),
    }
}

/// A software policy: which agent version a platform should run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwarePolicy {
    /// The tenant.
    pub tenant: String,
    /// Random hex id.
    pub id: String,
    /// The policy as the admin wrote it.
    pub spec: SoftwarePolicyInput,
    /// Timestamps.
    #[serde(flatten)]
    pub stamps: Stamps,
}

/// What an admin sends to create or replace a software policy. The agent is
/// never downgraded: a newer running agent stays. The check-in signs the
/// resulting offer into the assignment document (see [`super::software`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwarePolicyInput {
    /// Display name.
    pub name: String,
    /// `windows`, `macos` or `linux`.
    pub platform: String,
    /// The group; absent: All Users.
    #[serde(default)]
    pub group: Option<String>,
    /// Pinned version or `latest`.
    pub version: VersionSpec,
    /// Deployment type (default optional; silent is firmware-only).
    #[serde(default = "optional")]
    pub deployment: DeploymentType,
    /// Only enabled policies are applied (at most one per platform and group).
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl SoftwarePolicyInput {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), FleetError> {
        check_text("name", &self.name, 200)?;
        if !matches!(self.platform.as_str(), "windows" | "macos" | "linux") {
            return Err(FleetError::invalid(
                "platform",
                "must be windows, macos or linux",
            ));
        }
        if self.deployment == DeploymentType::Silent {
            return Err(FleetError::invalid(
                "deployment",
                "silent deployment is for firmware only",
            ));
        }
        if let VersionSpec::Pinned(pin) = &self.version {
            Version::parse(pin, catalog::package::VersionFormat::Plain).map_err(|e| {
                FleetError::invalid("version", format!("must be `latest` or a version: {e}"))
            })?;
        }
        Ok(())
    }

    pub(crate) fn claim(&self) -> Option<String> {
        self.enabled.then(|| {
            format!(
                "sw-policy:{}:{}",
                self.platform,
                self.group.as_deref().unwrap_or(super::ALL_USERS)
            )
        })
    }
}
