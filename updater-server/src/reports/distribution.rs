//! Device Distribution: per group, its users and their devices per model.
//!
//! Each user is counted in one group, their effective one: the custom group
//! with the best priority among the manual groups listing them and the LDAP
//! groups agents reported for them (seen as the effective group of the hosts
//! the user was on), else All Users. Users without a device are listed with
//! zero devices. Deleted devices are left out; a device shared by users of
//! one group counts once in the group's totals.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use super::{model_key, Built, ReportKind, Snapshot};
use crate::fleet::inventory::{Device, User};
use crate::fleet::{Group, Membership, ALL_USERS};

/// Devices of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCount {
    /// `VID:PID`.
    pub model: String,
    /// Model name.
    pub model_name: String,
    /// How many devices.
    pub devices: usize,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRow {
    /// `all-users` or the custom group's id.
    pub group: String,
    /// Display name.
    pub name: String,
    /// Priority (`None` for All Users).
    pub priority: Option<u32>,
    /// Users whose effective group this is.
    pub users: usize,
    /// Of which without any device.
    pub users_without_devices: usize,
    /// Distinct devices of those users.
    pub devices: usize,
    /// Devices per model.
    pub models: Vec<ModelCount>,
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    /// Inventory name.
    pub user: String,
    /// Effective group id.
    pub group: String,
    /// Its name.
    pub group_name: String,
    /// Devices of the user.
    pub devices: usize,
    /// Per model.
    pub models: Vec<ModelCount>,
}

/// The CSV columns: one row per group, user and model (a user without a
/// device has one row with an empty model and 0 devices).
pub const COLUMNS: &[&str] = &[
    "group",
    "group_name",
    "user",
    "model",
    "model_name",
    "devices",
];

/// The user's effective group (see the module docs).
pub fn effective_group<'g>(
    groups: &'g [Group],
    hosts_groups: &BTreeSet<&str>,
    u: &User,
) -> Option<&'g Group> {
    groups
        .iter()
        .filter(|g| match &g.membership {
            Membership::Manual { .. } => g.has_member(&u.name, &[]),
            Membership::Ldap { .. } => hosts_groups.contains(g.id.as_str()),
        })
        .min_by_key(|g| g.priority)
}

fn model_counts(s: &Snapshot, devices: &[&Device]) -> Vec<ModelCount> {
    let mut by: BTreeMap<(u16, u16), usize> = BTreeMap::new();
    for d in devices {
        *by.entry((d.vendor_id, d.product_id)).or_default() += 1;
    }
    by.into_iter()
        .map(|((vid, pid), n)| ModelCount {
            model: model_key(vid, pid),
            model_name: s.model_name(vid, pid),
            devices: n,
        })
        .collect()
}

/// Groups (All Users first, then by priority) and users (by group, then name).
pub fn tables(s: &Snapshot) -> (Vec<GroupRow>, Vec<UserRow>) {
    let hosts = s.hosts_by_id();
    let devices: BTreeMap<&str, &Device> = s
        .devices
        .iter()
        .filter(|d| d.deleted_at.is_none())
        .map(|d| (d.id.as_str(), d))
        .collect();
    let mut groups: Vec<(String, String, Option<u32>)> =
        vec![(ALL_USERS.to_owned(), "All Users".to_owned(), None)];
    let mut custom: Vec<&Group> = s.groups.iter().collect();
    custom.sort_by_key(|g| g.priority);
    groups.extend(
        custom
            .iter()
            .map(|g| (g.id.clone(), g.name.clone(), Some(g.priority))),
    );
    let group_name: BTreeMap<&str, &str> = groups
        .iter()
        .map(|(id, name, _)| (id.as_str(), name.as_str()))
        .collect();

    let mut users: Vec<(usize, UserRow, Vec<&Device>)> = Vec::new();
    for u in &s.users {
        let host_groups: BTreeSet<&str> = u
            .hosts
            .iter()
            .filter_map(|h| hosts.get(h.as_str()).map(|h| h.group.as_str()))
            .collect();
        let g = effective_group(&s.groups, &host_groups, u).map_or(ALL_USERS, |g| g.id.as_str());
        let mine: Vec<&Device> = u
            .devices
            .iter()
            .filter_map(|id| devices.get(id.as_str()).copied())
            .collect();
        let order = groups.iter().position(|(id, _, _)| id == g).unwrap_or(0);
        users.push((
            order,
            UserRow {
                user: u.name.clone(),
                group: g.to_owned(),
                group_name: group_name.get(g).copied().unwrap_or_default().to_owned(),
                devices: mine.len(),
                models: model_counts(s, &mine),
            },
            mine,
        ));
    }
    users.sort_by(|a, b| (a.0, &a.1.user).cmp(&(b.0, &b.1.user)));

    let group_rows = groups
        .into_iter()
        .map(|(id, name, priority)| {
            let members: Vec<&(usize, UserRow, Vec<&Device>)> =
                users.iter().filter(|(_, u, _)| u.group == id).collect();
            let mut distinct: BTreeMap<&str, &Device> = BTreeMap::new();
            for (_, _, ds) in &members {
                for d in ds {
                    distinct.insert(d.id.as_str(), d);
                }
            }
            let all: Vec<&Device> = distinct.into_values().collect();
            GroupRow {
                group: id,
                name,
                priority,
                users: members.len(),
                users_without_devices: members.iter().filter(|(_, u, _)| u.devices == 0).count(),
                devices: all.len(),
                models: model_counts(s, &all),
            }
        })
        .collect();
    (group_rows, users.into_iter().map(|(_, u, _)| u).collect())
}

/// The report.
pub fn build(s: &Snapshot) -> Built {
    let (groups, users) = tables(s);
    let mut rows = Vec::new();
    for u in &users {
        if u.models.is_empty() {
            rows.push(vec![
                u.group.clone(),
                u.group_name.clone(),
                u.user.clone(),
                String::new(),
                String::new(),
                "0".to_owned(),
            ]);
        }
        for m in &u.models {
            rows.push(vec![
                u.group.clone(),
                u.group_name.clone(),
                u.user.clone(),
                m.model.clone(),
                m.model_name.clone(),
                m.devices.to_string(),
            ]);
        }
    }
    let json = json!({
        "report": ReportKind::Distribution,
        "tenant": s.tenant,
        "generated_at": s.now,
        "groups": groups,
        "users": users,
    });
    Built::tabled(ReportKind::Distribution, COLUMNS, json, rows)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn users_by_effective_group_with_and_without_devices() {
        let mut s = snapshot();
        s.releases = vec![release(VOYAGER, "Voyager", "1.0")];
        let ldap = Membership::Ldap {
            filter: "(uid=$user$)".into(),
            server: Default::default(),
        };
        s.groups = vec![
            group("sales", 2, manual(&["ann", "bob"])),
            group("vip", 1, manual(&["ANN"])),
            group("eng", 3, ldap),
            group("empty", 4, manual(&[])),
        ];
        s.hosts = vec![
            host("h1", "ws-1", "vip", day(10)),
            host("h2", "ws-2", "eng", day(10)),
            host("h3", "ws-3", ALL_USERS, day(10)),
        ];
        let mut gone = device("d9", VOYAGER, Some("S9"), None);
        gone.deleted_at = Some(day(11));
        s.devices = vec![
            device("d1", VOYAGER, Some("S1"), None),
            device("d2", BLACKWIRE, Some("S2"), None),
            device("d3", VOYAGER, Some("S3"), None),
            device("d4", OTHER, None, None),
            gone,
        ];
        s.users = vec![
            user("ann", &["h1"], &["d1", "d2"]),
            user("bob", &["h3"], &["d2"]),
            user("carol", &["h2"], &["d3", "d9"]),
            user("dave", &["h3"], &[]),
            user("erin", &[], &["d4"]),
        ];
        let (groups, users) = tables(&s);
        let g: Vec<_> = groups
            .iter()
            .map(|g| {
                (
                    g.group.as_str(),
                    g.priority,
                    g.users,
                    g.users_without_devices,
                    g.devices,
                )
            })
            .collect();
        assert_eq!(
            g,
            [
                (ALL_USERS, None, 2, 1, 1),
                ("vip", Some(1), 1, 0, 2),
                ("sales", Some(2), 1, 0, 1),
                ("eng", Some(3), 1, 0, 1),
                ("empty", Some(4), 0, 0, 0),
            ]
        );
        let u: Vec<_> = users
            .iter()
            .map(|u| (u.user.as_str(), u.group.as_str(), u.devices))
            .collect();
        assert_eq!(
            u,
            [
                ("dave", ALL_USERS, 0),
                ("erin", ALL_USERS, 1),
                ("ann", "vip", 2),
                ("bob", "sales", 1),
                ("carol", "eng", 1),
            ]
        );
        let built = build(&s);
        assert_eq!(
            built.rows(),
            [
                ["all-users", "All Users", "dave", "", "", "0"],
                [
                    "all-users",
                    "All Users",
                    "erin",
                    "0B0E:0422",
                    "Product d4",
                    "1"
                ],
                ["vip", "Group vip", "ann", "047F:02EE", "Product d2", "1"],
                ["vip", "Group vip", "ann", "047F:C056", "Voyager", "1"],
                [
                    "sales",
                    "Group sales",
                    "bob",
                    "047F:02EE",
                    "Product d2",
                    "1"
                ],
                ["eng", "Group eng", "carol", "047F:C056", "Voyager", "1"],
            ]
        );
        assert_eq!(
            built.json()["groups"][1]["models"][1]["model_name"],
            "Voyager"
        );
        assert_eq!(built.json()["users"][0]["models"], serde_json::json!([]));
    }

    #[test]
    fn a_tenant_without_users_still_lists_all_users() {
        let (groups, users) = tables(&snapshot());
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].group.as_str(), groups[0].users), (ALL_USERS, 0));
        assert!(users.is_empty());
    }
}
