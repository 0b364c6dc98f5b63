//! The software (agent self-update) computation: a pure function from the
//! tenant's software policies, the host's effective group, what the agent
//! reported (platform, running version) and the agent packages available,
//! to the offer signed into the assignment document, or why there is none.
//!
//! Rules:
//! - The policy is the enabled one for the platform and the effective group,
//!   else the enabled All-Users one for the platform.
//! - `latest` is the highest available version for the platform; a pin is
//!   that version (the package is attached when one is available for it).
//! - **Never downgrade**: a version lower than or equal to the running one
//!   is not offered (`not_newer`), and neither is anything when the running
//!   version cannot be read (`unknown_running_version`).

use catalog::assignment::{SoftwareOffer, SoftwarePackage};
use catalog::package::{Version, VersionFormat};
use serde::{Deserialize, Serialize};

use super::{SoftwarePolicy, VersionSpec};

/// An agent version the server can offer for a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRelease {
    /// `windows`, `macos` or `linux`.
    pub platform: String,
    /// The version.
    pub version: Version,
    /// The signed package, when the catalog holds one.
    pub package: Option<SoftwarePackage>,
}

impl AgentRelease {
    /// The release of the agent built with this server (same workspace
    /// version), for `platform`, without a package.
    pub fn this_build(platform: &str) -> Self {
        Self {
            platform: platform.to_owned(),
            version: parse(env!("CARGO_PKG_VERSION")).unwrap_or_else(|| {
                Version::parse("0", VersionFormat::Plain).expect("`0` is a plain version")
            }),
            package: None,
        }
    }
}

fn parse(v: &str) -> Option<Version> {
    Version::parse(v.trim(), VersionFormat::Plain).ok()
}

/// Why an agent got no software offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum SoftwareSkip {
    /// No enabled software policy for the platform (group or All Users).
    NoPolicy,
    /// `latest`, but no agent release is known for the platform.
    NoRelease {
        /// The policy.
        policy: String,
    },
    /// The pin is not a version.
    BadPin {
        /// The policy.
        policy: String,
        /// The pin.
        version: String,
    },
    /// The agent's reported version does not parse: nothing is offered
    /// (it might be newer than any offer).
    UnknownRunningVersion {
        /// What the agent reported.
        running: String,
    },
    /// The selected version is not newer than the running one (up to date,
    /// or an older pin: the agent is never downgraded).
    NotNewer {
        /// The policy.
        policy: String,
        /// The version the policy selects.
        selected: String,
        /// The version the agent runs.
        running: String,
    },
}

/// The software offer for one agent (see the module docs for the rules).
/// `group` is the host's effective custom group (`None`: All Users).
pub fn compute_software(
    policies: &[SoftwarePolicy],
    group: Option<&str>,
    platform: &str,
    running: &str,
    available: &[AgentRelease],
) -> Result<SoftwareOffer, SoftwareSkip> {
    let for_group = |g: Option<&str>| {
        policies
            .iter()
            .find(|p| p.spec.enabled && p.spec.platform == platform && p.spec.group.as_deref() == g)
    };
    let policy = group
        .and_then(|g| for_group(Some(g)))
        .or_else(|| for_group(None))
        .ok_or(SoftwareSkip::NoPolicy)?;
    let pid = policy.id.clone();
    let for_platform = available.iter().filter(|r| r.platform == platform);
    let (selected, package) = match &policy.spec.version {
        VersionSpec::Latest => {
            let best = for_platform
                .max_by(|a, b| {
                    a.version
                        .cmp(&b.version)
                        .then(a.package.is_some().cmp(&b.package.is_some()))
                })
                .ok_or_else(|| SoftwareSkip::NoRelease {
                    policy: pid.clone(),
                })?;
            (best.version.clone(), best.package.clone())
        }
        VersionSpec::Pinned(pin) => {
            let v = parse(pin).ok_or_else(|| SoftwareSkip::BadPin {
                policy: pid.clone(),
                version: pin.clone(),
            })?;
            let package = for_platform
                .filter(|r| r.version == v)
                .find_map(|r| r.package.clone());
            (v, package)
        }
    };
    let running_v = parse(running).ok_or_else(|| SoftwareSkip::UnknownRunningVersion {
        running: running.to_owned(),
    })?;
    if selected <= running_v {
        return Err(SoftwareSkip::NotNewer {
            policy: pid,
            selected: selected.as_str().to_owned(),
            running: running.to_owned(),
        });
    }
    Ok(SoftwareOffer {
        platform: platform.to_owned(),
        version: selected.as_str().to_owned(),
        package,
        deployment: policy.spec.deployment,
        policy: pid,
    })
}

#[cfg(test)]
#[path = "software_tests.rs"]
mod tests;
