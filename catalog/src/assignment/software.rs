//! The agent's own update, offered inside the signed assignment document
//! (so it is authenticated like the firmware assignments).
//!
//! The server computes at most one offer per agent from the software policy
//! of the agent's effective group and platform; it never offers a version
//! lower than or equal to the one the agent reported running.

use serde::{Deserialize, Serialize};

use super::DeploymentType;
use crate::digest::Sha256Digest;

/// The agent package as the catalog signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwarePackage {
    /// The catalog target.
    pub target_name: String,
    /// Its sha256.
    pub sha256: Sha256Digest,
    /// Its length.
    pub length: u64,
}

/// An agent update offered to one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareOffer {
    /// The platform it is for (`windows`, `macos`, `linux`).
    pub platform: String,
    /// The version to install (always newer than the agent's).
    pub version: String,
    /// The package, when the catalog holds one for this version and
    /// platform; absent, the agent knows the version to get but has no
    /// signed image to install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<SoftwarePackage>,
    /// How it is deployed (never silent: that is for firmware only).
    pub deployment: DeploymentType,
    /// The software policy that produced it (for reports).
    pub policy: String,
}
