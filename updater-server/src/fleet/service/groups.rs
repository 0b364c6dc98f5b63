//! The fleet service's groups: custom groups, their priorities and
//! members, and how a group is named (id or name) wherever one is taken.

use super::{claim_ops, priority_claim, Fleet};
use crate::auth::secret::new_id;
use crate::fleet::groups::{check_members, edited_members};
use crate::fleet::{
    get, get_existing, list, to_value, FleetError, Group, GroupInput, Membership, Stamps, ALL_USERS,
};
use crate::store::{Key, Op, Table};

impl Fleet {
    /// Custom groups by priority (All Users is implicit and not listed).
    pub fn groups(&self, tenant: &str) -> Result<Vec<Group>, FleetError> {
        let mut g: Vec<Group> = list(self.store(), Table::Groups, tenant)?;
        g.sort_by_key(|g| g.priority);
        Ok(g)
    }

    /// The id of the group `id_or_name` names, for every place that takes a
    /// group (API paths and bodies, CLI options): its id, or the name of
    /// exactly one group (case-insensitive). Anything else comes back as it
    /// is, for the caller to refuse as an unknown group.
    pub fn group_id(&self, tenant: &str, id_or_name: &str) -> Result<String, FleetError> {
        let groups = self.groups(tenant)?;
        if groups.iter().any(|g| g.id == id_or_name) {
            return Ok(id_or_name.to_owned());
        }
        let named: Vec<&Group> = groups
            .iter()
            .filter(|g| g.name.eq_ignore_ascii_case(id_or_name.trim()))
            .collect();
        match named.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Ok(id_or_name.to_owned()),
            _ => Err(FleetError::invalid(
                "group",
                format!("several groups are named {id_or_name:?}: give the group id"),
            )),
        }
    }

    /// `group` with a name replaced by the group's id.
    pub(super) fn group_ref(
        &self,
        tenant: &str,
        group: Option<String>,
    ) -> Result<Option<String>, FleetError> {
        match group {
            Some(g) if g != ALL_USERS => Ok(Some(self.group_id(tenant, &g)?)),
            other => Ok(other),
        }
    }

    /// Creates a group; without a priority it goes after every existing one.
    pub fn create_group(&self, tenant: &str, input: &GroupInput) -> Result<Group, FleetError> {
        let poll = input.validate()?;
        let priority = match input.priority {
            Some(p) => p,
            None => {
                self.groups(tenant)?
                    .iter()
                    .map(|g| g.priority)
                    .max()
                    .unwrap_or(0)
                    + 1
            }
        };
        let now = self.accounts.now();
        let g = Group {
            tenant: tenant.to_owned(),
            id: new_id(),
            name: input.name.trim().to_owned(),
            priority,
            poll_interval_secs: poll,
            membership: input.membership.clone(),
            stamps: Stamps {
                created_at: now,
                updated_at: now,
            },
        };
        let mut ops = vec![Op::Insert(
            Table::Groups,
            Key::new(tenant, &g.id),
            to_value(&g),
        )];
        ops.extend(claim_ops(
            tenant,
            &g.id,
            None,
            Some(priority_claim(priority)),
        ));
        self.commit(ops, || {
            format!("priority {priority} is taken by another group")
        })?;
        Ok(g)
    }

    /// Replaces a group's definition (the priority stays unless given).
    pub fn update_group(
        &self,
        tenant: &str,
        id: &str,
        input: &GroupInput,
    ) -> Result<Group, FleetError> {
        let poll = input.validate()?;
        let id = &self.group_id(tenant, id)?;
        let mut g: Group = get_existing(self.store(), Table::Groups, tenant, id)?;
        let old = g.priority;
        g.priority = input.priority.unwrap_or(old);
        g.name = input.name.trim().to_owned();
        g.poll_interval_secs = poll;
        g.membership = input.membership.clone();
        g.stamps.updated_at = self.accounts.now();
        let mut ops = vec![Op::Update(
            Table::Groups,
            Key::new(tenant, id),
            to_value(&g),
        )];
        ops.extend(claim_ops(
            tenant,
            id,
            Some(priority_claim(old)),
            Some(priority_claim(g.priority)),
        ));
        let p = g.priority;
        self.commit(ops, || format!("priority {p} is taken by another group"))?;
        Ok(g)
    }

    /// Adds and removes members of a manual group without replacing the
    /// rest (names compared without case); policies naming the group are
    /// not in the way.
    pub fn edit_members(
        &self,
        tenant: &str,
        id_or_name: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<Group, FleetError> {
        let id = &self.group_id(tenant, id_or_name)?;
        let mut g: Group = get_existing(self.store(), Table::Groups, tenant, id)?;
        let Membership::Manual { members } = &g.membership else {
            return Err(FleetError::invalid(
                "members",
                format!(
                    "{} is an LDAP group: its members come from the directory",
                    g.name
                ),
            ));
        };
        check_members(add)?;
        let members = edited_members(members, add, remove);
        check_members(&members)?;
        g.membership = Membership::Manual { members };
        g.stamps.updated_at = self.accounts.now();
        self.commit(
            vec![Op::Update(
                Table::Groups,
                Key::new(tenant, id),
                to_value(&g),
            )],
            String::new,
        )?;
        Ok(g)
    }

    /// Deletes a group; refused while a policy names it.
    pub fn delete_group(&self, tenant: &str, id: &str) -> Result<(), FleetError> {
        let id = &self.group_id(tenant, id)?;
        let g: Group = get_existing(self.store(), Table::Groups, tenant, id)?;
        let used = self
            .firmware_policies(tenant)?
            .iter()
            .any(|p| p.spec.group.as_deref() == Some(id))
            || self
                .software_policies(tenant)?
                .iter()
                .any(|p| p.spec.group.as_deref() == Some(id));
        if used {
            return Err(FleetError::Conflict(format!(
                "group {id} is used by a policy; delete or move the policy first"
            )));
        }
        let mut ops = vec![Op::Delete(Table::Groups, Key::new(tenant, id))];
        ops.extend(claim_ops(
            tenant,
            id,
            Some(priority_claim(g.priority)),
            None,
        ));
        self.commit(ops, String::new)
    }

    pub(in crate::fleet) fn check_group(
        &self,
        tenant: &str,
        group: Option<&str>,
    ) -> Result<(), FleetError> {
        match group {
            None => Ok(()),
            Some(ALL_USERS) => Err(FleetError::invalid("group", "omit the group for All Users")),
            Some(g) => match get::<Group>(self.store(), Table::Groups, tenant, g)? {
                Some(_) => Ok(()),
                None => Err(FleetError::invalid("group", format!("no group {g}"))),
            },
        }
    }
}
