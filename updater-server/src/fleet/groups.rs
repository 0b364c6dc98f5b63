//! Custom groups: manual (a list of users) or LDAP (a filter the agent evaluates).

use catalog::checkin as wire;
use serde::{Deserialize, Serialize};

use super::{check_poll, check_text, FleetError, Stamps, DEFAULT_POLL_SECS};

/// Which directory server an LDAP group queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryKind {
    /// Active Directory.
    #[default]
    ActiveDirectory,
    /// OpenLDAP.
    OpenLdap,
}

/// LDAP server settings; every field may be blank (the agent auto-discovers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LdapServer {
    /// Host name.
    #[serde(default)]
    pub host: Option<String>,
    /// 389 or 636.
    #[serde(default)]
    pub port: Option<u16>,
    /// Use TLS.
    #[serde(default)]
    pub tls: bool,
    /// Search base.
    #[serde(default)]
    pub base_dn: Option<String>,
    /// Bind DN.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// AD or OpenLDAP.
    #[serde(default)]
    pub directory: DirectoryKind,
}

/// How users become members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Membership {
    /// Listed users (inventory names: `account` or `account@hostname`).
    Manual {
        /// The members.
        #[serde(default)]
        members: Vec<String>,
    },
    /// Users matching an LDAP filter, as the agent reports.
    Ldap {
        /// The filter; `$user$` stands for the logged-in account.
        filter: String,
        /// Server settings (blank: auto-discover).
        #[serde(default)]
        server: LdapServer,
    },
}

/// A custom group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The tenant.
    pub tenant: String,
    /// Random hex id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique within the tenant; 1 is the highest precedence.
    pub priority: u32,
    /// Seconds between check-ins for hosts whose users are in this group.
    pub poll_interval_secs: u64,
    /// Membership.
    pub membership: Membership,
    /// Timestamps.
    #[serde(flatten)]
    pub stamps: Stamps,
}

/// What an admin sends to create or replace a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// Display name.
    pub name: String,
    /// Priority (1 highest); omitted: after every existing group.
    #[serde(default)]
    pub priority: Option<u32>,
    /// Poll interval (default 6 h; 5 min to 7 days).
    #[serde(default)]
    pub poll_interval_secs: Option<u64>,
    /// Membership.
    pub membership: Membership,
}

/// Minimal LDAP filter syntax check: balanced parentheses (the whole filter
/// in one pair) and a `$user$` placeholder.
pub fn check_ldap_filter(filter: &str) -> Result<(), FleetError> {
    check_text("filter", filter, 4096)?;
    let bad = |why: &str| FleetError::invalid("filter", why);
    if !filter.contains("$user$") {
        return Err(bad("must contain $user$"));
    }
    let f = filter.trim();
    if !f.starts_with('(') || !f.ends_with(')') {
        return Err(bad("must be enclosed in parentheses"));
    }
    let mut depth = 0i32;
    let mut closed_early = false;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(bad("unbalanced parentheses"));
                }
                closed_early |= depth == 0 && i + 1 != f.len();
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad("unbalanced parentheses"));
    }
    if closed_early {
        return Err(bad("must be one filter in one pair of parentheses"));
    }
    Ok(())
}

impl GroupInput {
    /// Checks every field; returns the poll interval to store.
    pub fn validate(&self) -> Result<u64, FleetError> {
        check_text("name", &self.name, 200)?;
        if self.priority == Some(0) {
            return Err(FleetError::invalid("priority", "must be 1 or more"));
        }
        let poll = self.poll_interval_secs.unwrap_or(DEFAULT_POLL_SECS);
        check_poll(poll)?;
        match &self.membership {
            Membership::Manual { members } => check_members(members)?,
            Membership::Ldap { filter, server } => {
                check_ldap_filter(filter)?;
                if server.port.is_some_and(|p| p != 389 && p != 636) {
                    return Err(FleetError::invalid("port", "must be 389 or 636"));
                }
                for (field, v) in [
                    ("host", &server.host),
                    ("base_dn", &server.base_dn),
                    ("bind_dn", &server.bind_dn),
                ] {
                    if let Some(v) = v {
                        check_text(field, v, 1024)?;
                    }
                }
            }
        }
        Ok(poll)
    }
}

/// Most members a manual group holds.
pub const MAX_MEMBERS: usize = 100_000;

/// The one rule for a manual group's member list.
pub(super) fn check_members(members: &[String]) -> Result<(), FleetError> {
    if members.len() > MAX_MEMBERS {
        return Err(FleetError::invalid(
            "members",
            format!("at most {MAX_MEMBERS} (this list has {})", members.len()),
        ));
    }
    for m in members {
        check_text("members", m, 300)?;
    }
    Ok(())
}

/// Member names from a CSV file (an export of a directory or a
/// spreadsheet): the first column of every row, trimmed; a first row whose
/// first cell is `user`, `account`, `member`, `name` or `username` is a
/// header and skipped, as are empty rows.
pub fn members_from_csv(bytes: &[u8]) -> Result<Vec<String>, FleetError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| FleetError::invalid("members", format!("CSV: {e}")))?;
        let Some(first) = row.get(0).filter(|c| !c.is_empty()) else {
            continue;
        };
        let header = ["user", "account", "member", "name", "username"]
            .iter()
            .any(|h| first.eq_ignore_ascii_case(h));
        if i == 0 && header {
            continue;
        }
        out.push(first.to_owned());
    }
    Ok(out)
}

/// `members` with `add` appended (names already there, in any case, are
/// not added twice) and `remove` taken out (in any case).
pub(super) fn edited_members(members: &[String], add: &[String], remove: &[String]) -> Vec<String> {
    let key = |m: &str| m.trim().to_lowercase();
    let removed: std::collections::HashSet<String> = remove.iter().map(|m| key(m)).collect();
    let mut seen = std::collections::HashSet::new();
    members
        .iter()
        .chain(add)
        .map(|m| m.trim())
        .filter(|m| !removed.contains(&key(m)) && seen.insert(key(m)))
        .map(str::to_owned)
        .collect()
}

impl Group {
    /// Whether `user` (inventory name) with these reported LDAP group ids is
    /// a member. Reported ids count only for LDAP groups.
    pub fn has_member(&self, user: &str, ldap_groups: &[String]) -> bool {
        match &self.membership {
            Membership::Manual { members } => members.iter().any(|m| m.eq_ignore_ascii_case(user)),
            Membership::Ldap { .. } => ldap_groups.iter().any(|g| g == &self.id),
        }
    }
}

/// The tenant's LDAP groups as the agent evaluates them (best priority first).
/// The server stores no bind password (`bind_password` stays blank; the
/// agent then binds anonymously when no bind DN is set).
pub fn ldap_definitions(groups: &[Group]) -> Vec<wire::LdapGroupDefinition> {
    let mut out: Vec<wire::LdapGroupDefinition> = groups
        .iter()
        .filter_map(|g| match &g.membership {
            Membership::Ldap { filter, server } => Some(wire::LdapGroupDefinition {
                id: g.id.clone(),
                priority: g.priority,
                filter: filter.clone(),
                server: wire::LdapServerSettings {
                    host: server.host.clone(),
                    port: server.port,
                    tls: server.tls,
                    base_dn: server.base_dn.clone(),
                    bind_dn: server.bind_dn.clone(),
                    bind_password: None,
                    directory: match server.directory {
                        DirectoryKind::ActiveDirectory => wire::DirectoryKind::ActiveDirectory,
                        DirectoryKind::OpenLdap => wire::DirectoryKind::OpenLdap,
                    },
                },
            }),
            Membership::Manual { .. } => None,
        })
        .collect();
    out.sort_by_key(|d| d.priority);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_filters() {
        let ok = [
            "(sAMAccountName=$user$)",
            "(&(objectCategory=person)(objectClass=user)(sAMAccountName=$user$)(memberof=CN=Sales,OU=Groups,DC=x,DC=com))",
            "  (uid=$user$) ",
        ];
        for f in ok {
            assert!(check_ldap_filter(f).is_ok(), "{f}");
        }
        for (f, why) in [
            ("(sAMAccountName=bob)", "must contain $user$"),
            ("sAMAccountName=$user$", "must be enclosed in parentheses"),
            ("(&(uid=$user$)", "unbalanced parentheses"),
            ("(uid=$user$))", "unbalanced parentheses"),
            (
                "(uid=$user$)(cn=x)",
                "must be one filter in one pair of parentheses",
            ),
        ] {
            match check_ldap_filter(f) {
                Err(FleetError::Invalid { field, why: got }) => {
                    assert_eq!((field, got.as_str()), ("filter", why), "{f}");
                }
                other => panic!("{f}: {other:?}"),
            }
        }
    }

    #[test]
    fn member_edits_and_csv_lists() {
        let v = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // (members, add, remove, result)
        let edits = [
            (
                v(&["ann", "bob"]),
                v(&["cat"]),
                v(&[]),
                v(&["ann", "bob", "cat"]),
            ),
            (
                v(&["ann", "bob"]),
                v(&["ANN", " dan "]),
                v(&[]),
                v(&["ann", "bob", "dan"]),
            ),
            (v(&["ann", "bob"]), v(&[]), v(&["BOB", "zed"]), v(&["ann"])),
            (v(&["ann"]), v(&["bob"]), v(&["bob"]), v(&["ann"])),
            (
                v(&[]),
                v(&["kiosk@ws-1", "kiosk@ws-1"]),
                v(&[]),
                v(&["kiosk@ws-1"]),
            ),
        ];
        for (members, add, remove, want) in edits {
            assert_eq!(
                edited_members(&members, &add, &remove),
                want,
                "{add:?} {remove:?}"
            );
        }
        // (CSV, names)
        let lists: [(&str, Vec<String>); 5] = [
            ("ann\nbob\n", v(&["ann", "bob"])),
            (
                "User,Department\nann,Sales\n\n bob ,IT\n",
                v(&["ann", "bob"]),
            ),
            ("\"smith, j\",x\r\nann\r\n", v(&["smith, j", "ann"])),
            ("ann;Sales\nuser\n", v(&["ann;Sales", "user"])),
            ("", v(&[])),
        ];
        for (csv, want) in lists {
            assert_eq!(members_from_csv(csv.as_bytes()).unwrap(), want, "{csv:?}");
        }
        assert!(check_members(&v(&["ann", " "])).is_err());
        let many: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("u{i}")).collect();
        match check_members(&many) {
            Err(FleetError::Invalid { why, .. }) => {
                assert_eq!(why, "at most 100000 (this list has 100001)")
            }
            other => panic!("{other:?}"),
        }
        assert!(check_members(&many[..MAX_MEMBERS]).is_ok());
    }

    #[test]
    fn input_validation() {
        let mut g: GroupInput = serde_json::from_str(
            r#"{"name":"Sales","membership":{"kind":"ldap","filter":"(uid=$user$)","server":{"port":636,"tls":true,"directory":"open_ldap"}}}"#,
        )
        .unwrap();
        assert_eq!(g.validate().unwrap(), DEFAULT_POLL_SECS);
        g.poll_interval_secs = Some(299);
        assert!(g.validate().is_err());
        g.poll_interval_secs = Some(300);
        assert_eq!(g.validate().unwrap(), 300);
        g.membership = Membership::Ldap {
            filter: "(uid=$user$)".into(),
            server: LdapServer {
                port: Some(390),
                ..LdapServer::default()
            },
        };
        assert!(g.validate().is_err());
        g.priority = Some(0);
        assert!(g.validate().is_err());
    }
}
