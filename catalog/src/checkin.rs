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
    /// Downloaded and verified, about to be scheduled.
    Staged,
    /// Staged and held back; the message says by what (the maintenance
    /// window, the user's consent, a call, another piece of the product …).
    Waiting,
    /// Being flashed.
    Flashing,
    /// Flashed; the device must be unplugged and replugged to finish.
    AwaitingReplug,
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
/// `If-None-Match` names the current answer's `ETag`). The tenant's LDAP
/// group definitions are inside the signed document
/// ([`AssignmentSet::ldap_groups`](crate::assignment::AssignmentSet::ldap_groups)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckInResponse {
    /// The signed assignment document (`{"signed": …, "signatures": […]}`).
    pub assignments: serde_json::Value,
    /// Seconds until the next check-in.
    pub poll_interval_secs: u64,
    /// The tenant's shared and excluded accounts, which the agent applies to
    /// the accounts it reports.
    #[serde(default, skip_serializing_if = "AccountRules::is_empty")]
    pub accounts: AccountRules,
}

/// Which directory server an LDAP group queries (attribute conventions differ:
/// `sAMAccountName` / `memberOf` on Active Directory, `uid` / `groupOfNames`
/// on OpenLDAP; the admin's filter names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryKind {
    /// Active Directory.
    #[default]
    ActiveDirectory,
    /// OpenLDAP (or another RFC 4511 server).
    OpenLdap,
}

/// Where and how the agent queries the directory; blank fields are
/// discovered by the agent (DNS SRV `_ldap._tcp.<domain>`, the rootDSE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LdapServerSettings {
    /// Host name; blank: discovered from DNS SRV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// 389 (plain, or StartTLS with `tls`) or 636 (LDAPS); blank: 636 with
    /// `tls`, else 389.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Use TLS.
    #[serde(default)]
    pub tls: bool,
    /// Search base; blank: the rootDSE's naming context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dn: Option<String>,
    /// Bind DN; blank: anonymous bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// Bind password for `bind_dn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password: Option<String>,
    /// AD or OpenLDAP.
    #[serde(default)]
    pub directory: DirectoryKind,
}

/// One LDAP group as the agent evaluates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapGroupDefinition {
    /// The server's group id (what the agent reports back).
    pub id: String,
    /// The group's priority (1 is the highest).
    pub priority: u32,
    /// The filter; `$user$` stands for the account name, escaped per RFC 4515.
    pub filter: String,
    /// Server settings.
    #[serde(default)]
    pub server: LdapServerSettings,
}

/// The tenant's account lists (names compared ignoring case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AccountRules {
    /// Accounts recorded as `account@hostname`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    /// Accounts never reported nor evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
}

impl AccountRules {
    /// No lists.
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.excluded.is_empty()
    }

    /// The name to report for `account` on `hostname`: `None` when excluded,
    /// `account@hostname` when shared, else the account (the server's rule).
    pub fn user_name(&self, account: &str, hostname: &str) -> Option<String> {
        let is = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(account));
        if is(&self.excluded) {
            None
        } else if is(&self.shared) {
            Some(format!("{account}@{hostname}"))
        } else {
            Some(account.to_owned())
        }
    }
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
    fn response_accounts_and_ldap_definitions() {
        // An older server's answer (no accounts) still parses.
        let old: CheckInResponse =
            serde_json::from_str(r#"{"assignments":{},"poll_interval_secs":60}"#).unwrap();
        assert!(old.accounts.is_empty());
        // LDAP definitions travel signed, in the assignment document; beside
        // it (where an older server put them) they are dropped unread.
        let r: CheckInResponse = serde_json::from_str(
            r#"{"assignments":{},"poll_interval_secs":60,
                "ldap_groups":[{"id":"g1","priority":2,"filter":"(uid=$user$)"}],
                "accounts":{"shared":["kiosk"],"excluded":["svc"]}}"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap().get("ldap_groups"), None);
        let g: LdapGroupDefinition = serde_json::from_str(
            r#"{"id":"g1","priority":2,"filter":"(uid=$user$)",
                "server":{"port":636,"tls":true,"directory":"open_ldap"}}"#,
        )
        .unwrap();
        assert_eq!((g.id.as_str(), g.priority), ("g1", 2));
        assert_eq!(g.server.port, Some(636));
        assert_eq!(g.server.directory, DirectoryKind::OpenLdap);
        assert_eq!(g.server.bind_dn, None);
        // Empty lists are not sent, so an older agent sees the old shape.
        let back = serde_json::to_value(&old).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"assignments":{},"poll_interval_secs":60})
        );
        for (account, want) in [
            ("kiosk", Some("kiosk@ws-1")),
            ("KIOSK", Some("KIOSK@ws-1")),
            ("svc", None),
            ("ann", Some("ann")),
        ] {
            assert_eq!(
                r.accounts.user_name(account, "ws-1").as_deref(),
                want,
                "{account}"
            );
        }
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
