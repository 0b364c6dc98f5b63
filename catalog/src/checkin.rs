//! Check-in wire types: what an agent reports at every poll
//! (`POST /api/v1/agents/{agent}/checkin`) and what the server answers.
//!
//! The answer carries the agent's signed assignment document as a JSON value
//! (the envelope of [`crate::assignment::sign_assignments`]); signatures cover
//! the canonical form of `signed`, so the agent re-serialises the value and
//! checks it with [`crate::assignment::verify_assignments`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::DeviceReport;

/// Most users one check-in may report.
pub const MAX_USERS: usize = 64;
/// Most devices one check-in may report.
pub const MAX_DEVICES: usize = 256;
/// Most LDAP group ids reported for one account.
pub const MAX_GROUPS_PER_USER: usize = 256;
/// Most update states one check-in may report.
pub const MAX_UPDATE_STATES: usize = 256;
/// Longest text field (account, hostname, platform, version, message).
pub const MAX_TEXT: usize = 256;

/// One account logged in on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserReport {
    /// The account name as the OS knows it (`DOMAIN\name` or `name`).
    pub account: String,
    /// Display name, if the agent knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Where an assigned update stands on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdatePhase {
    /// Downloaded and verified, waiting (for the user or the window).
    Staged,
    /// Installed and read back.
    Installed,
    /// The last attempt failed.
    Failed,
    /// The user deferred it.
    Deferred,
}

/// The state of one device's update, and what the device has installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateState {
    /// The device ([`DeviceReport::identity`]).
    pub device: String,
    /// The security counter of the firmware installed on the device, when the
    /// agent knows it (from its own history); the server never assigns a
    /// release below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_security_counter: Option<u32>,
    /// The assignment's target, if one is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// Its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<UpdatePhase>,
    /// How often the user deferred it.
    #[serde(default)]
    pub deferrals: u32,
    /// A short message (the failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `POST /api/v1/agents/{agent}/checkin`: the body. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    /// The agent's own version.
    pub agent_version: String,
    /// Its platform (`windows`, `macos`, `linux`).
    pub platform: String,
    /// Current host name.
    pub hostname: String,
    /// Accounts logged in now.
    #[serde(default)]
    pub users: Vec<UserReport>,
    /// Attached devices (the vendor's and other vendors' telephony devices).
    #[serde(default)]
    pub devices: Vec<DeviceReport>,
    /// LDAP groups (server group ids) each account matched, as the agent
    /// evaluated them.
    #[serde(default)]
    pub ldap_memberships: BTreeMap<String, Vec<String>>,
    /// Per-device update states.
    #[serde(default)]
    pub update_states: Vec<UpdateState>,
}

/// Why a check-in body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckInError {
    /// A list is longer than allowed.
    #[error("{field}: at most {max} entries")]
    TooMany {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A text field is empty, too long or has control characters.
    #[error("{field}: must be 1 to 256 printable characters")]
    BadText {
        /// The field.
        field: &'static str,
    },
}

fn text(field: &'static str, s: &str) -> Result<(), CheckInError> {
    if s.is_empty() || s.len() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(CheckInError::BadText { field });
    }
    Ok(())
}

fn most(field: &'static str, n: usize, max: usize) -> Result<(), CheckInError> {
    if n > max {
        return Err(CheckInError::TooMany { field, max });
    }
    Ok(())
}

fn opt_text(field: &'static str, s: Option<&String>) -> Result<(), CheckInError> {
    s.map_or(Ok(()), |s| text(field, s))
}

impl CheckIn {
    /// Checks the size limits and text fields.
    pub fn validate(&self) -> Result<(), CheckInError> {
        text("agent_version", &self.agent_version)?;
        text("platform", &self.platform)?;
        text("hostname", &self.hostname)?;
        most("users", self.users.len(), MAX_USERS)?;
        most("devices", self.devices.len(), MAX_DEVICES)?;
        most("update_states", self.update_states.len(), MAX_UPDATE_STATES)?;
        most("ldap_memberships", self.ldap_memberships.len(), MAX_USERS)?;
        for u in &self.users {
            text("users.account", &u.account)?;
            opt_text("users.display_name", u.display_name.as_ref())?;
        }
        for d in &self.devices {
            opt_text("devices.serial", d.serial.as_ref())?;
            opt_text("devices.port_path", d.port_path.as_ref())?;
            opt_text("devices.manufacturer", d.manufacturer.as_ref())?;
            opt_text("devices.product", d.product.as_ref())?;
            opt_text("devices.firmware_version", d.firmware_version.as_ref())?;
        }
        for (account, groups) in &self.ldap_memberships {
            text("ldap_memberships.account", account)?;
            most("ldap_memberships.groups", groups.len(), MAX_GROUPS_PER_USER)?;
            for g in groups {
                text("ldap_memberships.group", g)?;
            }
        }
        for s in &self.update_states {
            text("update_states.device", &s.device)?;
            opt_text("update_states.target_name", s.target_name.as_ref())?;
            opt_text("update_states.message", s.message.as_ref())?;
        }
        Ok(())
    }
}

/// The answer to a check-in (200; 304 without a body when the agent's
/// `If-None-Match` names the current answer's `ETag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckInResponse {
    /// The signed assignment document (`{"signed": …, "signatures": […]}`).
    pub assignments: serde_json::Value,
    /// Seconds until the next check-in.
    pub poll_interval_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> CheckIn {
        serde_json::from_str(r#"{"agent_version":"0.1.0","platform":"linux","hostname":"ws-1"}"#)
            .unwrap()
    }

    #[test]
    fn defaults_unknown_fields_and_limits() {
        let c = minimal();
        assert!(c.users.is_empty() && c.devices.is_empty());
        assert_eq!(c.validate(), Ok(()));
        assert!(serde_json::from_str::<CheckIn>(
            r#"{"agent_version":"0.1.0","platform":"linux","hostname":"ws-1","admin":1}"#
        )
        .is_err());
        let mut many = minimal();
        many.users = vec![
            UserReport {
                account: "u".into(),
                display_name: None
            };
            MAX_USERS + 1
        ];
        assert_eq!(
            many.validate(),
            Err(CheckInError::TooMany {
                field: "users",
                max: MAX_USERS
            })
        );
        let mut bad = minimal();
        bad.hostname = "a\nb".into();
        assert_eq!(
            bad.validate(),
            Err(CheckInError::BadText { field: "hostname" })
        );
        let mut long = minimal();
        long.ldap_memberships
            .insert("ann".into(), vec!["g".repeat(MAX_TEXT + 1)]);
        assert_eq!(
            long.validate(),
            Err(CheckInError::BadText {
                field: "ldap_memberships.group"
            })
        );
    }

    #[test]
    fn update_state_wire_format() {
        let s: UpdateState = serde_json::from_str(
            r#"{"device":"047f/serial/S1","installed_security_counter":3,"phase":"staged"}"#,
        )
        .unwrap();
        assert_eq!(s.installed_security_counter, Some(3));
        assert_eq!(s.phase, Some(UpdatePhase::Staged));
        assert_eq!(s.deferrals, 0);
    }
}
