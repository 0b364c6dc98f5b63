//! `updater-server group …`: a tenant's custom groups.

use anyhow::{bail, Context};
use clap::Subcommand;

use super::DataDir;
use crate::auth::SessionPolicy;
use crate::fleet::{members_from_csv, Fleet, GroupInput, Membership};

/// Group commands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a manual group (--member, repeatable) or an LDAP group (--ldap-filter).
    Create {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Priority (1 is the highest); default: after every existing group.
        #[arg(long)]
        priority: Option<u32>,
        /// Seconds between check-ins (300 to 604800; default 21600).
        #[arg(long)]
        poll_interval_secs: Option<u64>,
        /// A member's account (or account@hostname for shared accounts).
        #[arg(long = "member", conflicts_with = "ldap_filter")]
        members: Vec<String>,
        /// An LDAP filter containing $user$ (server settings: use the API).
        #[arg(long)]
        ldap_filter: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's custom groups by priority.
    List {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a group: add or remove members of a manual group (also from
    /// a CSV file: its first column), rename it, move its priority, change
    /// its poll interval. Policies naming the group are not in the way.
    Edit {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The group: id or name.
        group: String,
        /// Add a member (account, or account@hostname); repeatable.
        #[arg(long = "add")]
        add: Vec<String>,
        /// Add every name in the first column of this CSV file (a header
        /// row named user, account, member, name or username is skipped).
        #[arg(long, value_name = "FILE")]
        add_csv: Option<std::path::PathBuf>,
        /// Remove a member; repeatable.
        #[arg(long = "remove")]
        remove: Vec<String>,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// New priority (1 is the highest).
        #[arg(long)]
        priority: Option<u32>,
        /// New poll interval in seconds.
        #[arg(long)]
        poll_interval_secs: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (refused while a policy names it).
    Delete {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The group id.
        id: String,
    },
}

/// Runs a group command.
pub(super) fn run(data: &DataDir, command: GroupCommand) -> anyhow::Result<()> {
    let accounts = data.accounts(SessionPolicy::default())?;
    let tenant = match &command {
        GroupCommand::Create { tenant, .. }
        | GroupCommand::List { tenant, .. }
        | GroupCommand::Edit { tenant, .. }
        | GroupCommand::Delete { tenant, .. } => tenant.clone(),
    };
    if accounts.records().tenant(&tenant)?.is_none() {
        bail!("no tenant {tenant}");
    }
    let fleet = Fleet::new(accounts, data.catalog(), data.keys());
    match command {
        GroupCommand::Create {
            name,
            priority,
            poll_interval_secs,
            members,
            ldap_filter,
            json,
            ..
        } => {
            let membership = match ldap_filter {
                Some(filter) => Membership::Ldap {
                    filter,
                    server: Default::default(),
                },
                None => Membership::Manual { members },
            };
            let g = fleet.create_group(
                &tenant,
                &GroupInput {
                    name,
                    priority,
                    poll_interval_secs,
                    membership,
                },
            )?;
            if json {
                println!("{:#}", serde_json::to_value(&g)?);
            } else {
                println!(
                    "group {} ({}) created with priority {}",
                    g.id, g.name, g.priority
                );
            }
        }
        GroupCommand::List { json, .. } => {
            let groups = fleet.groups(&tenant)?;
            if json {
                println!("{:#}", serde_json::to_value(&groups)?);
            } else {
                println!(
                    "{:<18} {:>8} {:>8} {:<7} NAME",
                    "ID", "PRIORITY", "POLL", "KIND"
                );
                for g in groups {
                    let kind = match g.membership {
                        Membership::Manual { .. } => "manual",
                        Membership::Ldap { .. } => "ldap",
                    };
                    println!(
                        "{:<18} {:>8} {:>8} {:<7} {}",
                        g.id, g.priority, g.poll_interval_secs, kind, g.name
                    );
                }
            }
        }
        GroupCommand::Edit {
            group,
            mut add,
            add_csv,
            remove,
            name,
            priority,
            poll_interval_secs,
            json,
            ..
        } => {
            if let Some(path) = add_csv {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                add.extend(members_from_csv(&bytes)?);
            }
            let id = fleet.group_id(&tenant, &group)?;
            let mut g = fleet
                .groups(&tenant)?
                .into_iter()
                .find(|g| g.id == id)
                .with_context(|| format!("no group {group}"))?;
            if !add.is_empty() || !remove.is_empty() {
                g = fleet.edit_members(&tenant, &g.id, &add, &remove)?;
            }
            if name.is_some() || priority.is_some() || poll_interval_secs.is_some() {
                g = fleet.update_group(
                    &tenant,
                    &g.id.clone(),
                    &GroupInput {
                        name: name.unwrap_or(g.name),
                        priority: priority.or(Some(g.priority)),
                        poll_interval_secs: poll_interval_secs.or(Some(g.poll_interval_secs)),
                        membership: g.membership,
                    },
                )?;
            }
            if json {
                println!("{:#}", serde_json::to_value(&g)?);
            } else {
                let members = match &g.membership {
                    Membership::Manual { members } => format!("{} members", members.len()),
                    Membership::Ldap { .. } => "LDAP members".to_owned(),
                };
                println!(
                    "group {} ({}): priority {}, poll {} s, {members}",
                    g.id, g.name, g.priority, g.poll_interval_secs
                );
            }
        }
        GroupCommand::Delete { id, .. } => {
            fleet.delete_group(&tenant, &id)?;
            println!("group {id} deleted");
        }
    }
    Ok(())
}
