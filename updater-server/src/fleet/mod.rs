//! Groups, firmware and software policies, the inventory, and the agent
//! check-in that answers with signed assignments.
//!
//! The rules live here, over the [`Store`] of [`Accounts`]; the HTTP layer and
//! the CLI only translate. [`compute`] is the pure assignment computation,
//! [`software`] the pure agent-update offer.

pub mod compute;
pub mod explain;
mod groups;
pub mod inventory;
mod policies;
pub mod rollouts;
mod service;
pub mod software;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use self::groups::{
    check_ldap_filter, ldap_definitions, members_from_csv, DirectoryKind, Group, GroupInput,
    LdapServer, Membership, MAX_MEMBERS,
};
pub(crate) use self::policies::releases_of_model;
pub use self::policies::{
    FirmwarePolicy, FirmwarePolicyInput, SoftwarePolicy, SoftwarePolicyInput, VersionSpec,
};
pub use self::service::{CheckInAnswer, Fleet, TenantView};
use crate::store::{Key, Op, Store, StoreError, Table};

/// The id of the implicit group every user is in.
pub const ALL_USERS: &str = "all-users";
/// Default poll interval: six hours.
pub const DEFAULT_POLL_SECS: u64 = 6 * 3600;
/// Shortest poll interval accepted: five minutes.
pub const MIN_POLL_SECS: u64 = 5 * 60;
/// Longest poll interval accepted: seven days.
pub const MAX_POLL_SECS: u64 = 7 * 24 * 3600;

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such record in the tenant.
    #[error("not found")]
    NotFound,
    /// A field is invalid.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        why: String,
    },
    /// Another record holds a value that must be unique.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The policy asks for something the catalog release cannot do.
    #[error("{0}")]
    Capability(String),
    /// The catalog could not be read.
    #[error("catalog: {0}")]
    Catalog(#[from] catalog::CatalogError),
    /// The tenant's assignment key could not be loaded or used.
    #[error("assignment key: {0}")]
    Key(#[from] catalog::tuf::TufError),
}

impl FleetError {
    pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> Self {
        FleetError::Invalid {
            field,
            why: why.into(),
        }
    }
}

/// Per-tenant fleet settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Accounts recorded as `account@hostname` (one user per host).
    #[serde(default)]
    pub shared_accounts: Vec<String>,
    /// Accounts never recorded nor used for groups (service accounts, VDI logins).
    #[serde(default)]
    pub excluded_accounts: Vec<String>,
    /// Poll interval of All Users.
    #[serde(default = "default_poll")]
    pub all_users_poll_interval_secs: u64,
    /// Days agent events and update history are kept (1 to
    /// [`MAX_RETENTION_DAYS`]); `None`: the server's default
    /// (`serve --event-retention-days`; with neither, kept indefinitely).
    #[serde(default)]
    pub event_retention_days: Option<u32>,
}

/// Longest event retention a tenant may set: 100 years (in effect, keep).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

fn default_poll() -> u64 {
    DEFAULT_POLL_SECS
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            shared_accounts: Vec::new(),
            excluded_accounts: Vec::new(),
            all_users_poll_interval_secs: DEFAULT_POLL_SECS,
            event_retention_days: None,
        }
    }
}

impl Settings {
    /// Checks the lists and the poll interval.
    pub fn validate(&self) -> Result<(), FleetError> {
        check_poll(self.all_users_poll_interval_secs)?;
        if let Some(d) = self.event_retention_days {
            check_retention_days(d)?;
        }
        for list in [&self.shared_accounts, &self.excluded_accounts] {
            if list.len() > 1000 {
                return Err(FleetError::invalid("accounts", "at most 1000 per list"));
            }
            for a in list {
                check_text("account", a, 256)?;
            }
        }
        Ok(())
    }

    /// The inventory name of an account on a host: `None` when excluded,
    /// `account@hostname` for shared accounts, else the account. Matching
    /// ignores case.
    pub fn user_name(&self, account: &str, hostname: &str) -> Option<String> {
        let is = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(account));
        if is(&self.excluded_accounts) {
            None
        } else if is(&self.shared_accounts) {
            Some(format!("{account}@{hostname}"))
        } else {
            Some(account.to_owned())
        }
    }
}

pub(crate) fn check_poll(secs: u64) -> Result<(), FleetError> {
    if !(MIN_POLL_SECS..=MAX_POLL_SECS).contains(&secs) {
        return Err(FleetError::invalid(
            "poll_interval_secs",
            format!("must be between {MIN_POLL_SECS} (5 min) and {MAX_POLL_SECS} (7 days)"),
        ));
    }
    Ok(())
}

/// Checks a retention period in days (1 to [`MAX_RETENTION_DAYS`]).
pub fn check_retention_days(days: u32) -> Result<(), FleetError> {
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(FleetError::invalid(
            "event_retention_days",
            format!("must be between 1 and {MAX_RETENTION_DAYS} days"),
        ));
    }
    Ok(())
}

pub(crate) fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), FleetError> {
    if s.trim().is_empty() || s.len() > max || s.chars().any(char::is_control) {
        return Err(FleetError::invalid(
            field,
            format!("must be 1 to {max} printable characters"),
        ));
    }
    Ok(())
}

/// A short, URL-safe id derived from a natural key (users, devices).
pub(crate) fn derived_id(natural: &str) -> String {
    catalog::digest::Sha256Digest::of(natural.as_bytes()).to_hex()[..16].to_owned()
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    // Records are plain structs: serialising cannot fail.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

pub(crate) fn get<T: DeserializeOwned>(
    store: &dyn Store,
    table: Table,
    tenant: &str,
    id: &str,
) -> Result<Option<T>, FleetError> {
    store
        .get(table, &Key::new(tenant, id))?
        .map(|v| decode(table, v))
        .transpose()
}

/// A record's stored JSON text (from [`Store::get_texts`]) decoded.
pub(crate) fn decode_text<T: DeserializeOwned>(
    table: Table,
    text: Option<String>,
) -> Result<Option<T>, FleetError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| FleetError::Store(corrupt(table, &e))))
        .transpose()
}

/// A record that must exist: [`FleetError::NotFound`] otherwise.
pub(crate) fn get_existing<T: DeserializeOwned>(
    store: &dyn Store,
    table: Table,
    tenant: &str,
    id: &str,
) -> Result<T, FleetError> {
    get(store, table, tenant, id)?.ok_or(FleetError::NotFound)
}

/// Insert when the record is new, update when it exists (the store refuses
/// the wrong one, which is how concurrent writers are detected).
pub(crate) fn upsert(table: Table, key: Key, value: serde_json::Value, exists: bool) -> Op {
    if exists {
        Op::Update(table, key, value)
    } else {
        Op::Insert(table, key, value)
    }
}

pub(crate) fn list<T: DeserializeOwned>(
    store: &dyn Store,
    table: Table,
    tenant: &str,
) -> Result<Vec<T>, FleetError> {
    // From the stored text straight into `T`: building a JSON value first
    // cost about half of reading a large inventory.
    let mut out = Vec::new();
    store.scan_prefix(table, tenant, "", &mut |_, text| {
        let record = serde_json::from_str(text).map_err(|e| corrupt(table, &e))?;
        out.push(record);
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(
    table: Table,
    v: serde_json::Value,
) -> Result<T, FleetError> {
    serde_json::from_value(v).map_err(|e| FleetError::Store(corrupt(table, &e)))
}

/// A stored record of `table` that does not decode.
fn corrupt(table: Table, e: &serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        table: table.name(),
        why: e.to_string(),
    }
}

/// Timestamps every record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamps {
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_excluded_accounts() {
        let s = Settings {
            shared_accounts: vec!["Kiosk".into()],
            excluded_accounts: vec!["svc-backup".into()],
            ..Settings::default()
        };
        assert_eq!(s.user_name("ann", "ws-1").as_deref(), Some("ann"));
        assert_eq!(s.user_name("kiosk", "ws-1").as_deref(), Some("kiosk@ws-1"));
        assert_eq!(s.user_name("SVC-BACKUP", "ws-1"), None);
        assert!(s.validate().is_ok());
        for (days, ok) in [
            (Some(1), true),
            (Some(36_500), true),
            (None, true),
            (Some(0), false),
            (Some(36_501), false),
        ] {
            let s = Settings {
                event_retention_days: days,
                ..Settings::default()
            };
            assert_eq!(s.validate().is_ok(), ok, "{days:?}");
        }
        let bad = Settings {
            all_users_poll_interval_secs: 60,
            ..Settings::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(FleetError::Invalid {
                field: "poll_interval_secs",
                ..
            })
        ));
    }
}
