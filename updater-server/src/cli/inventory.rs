//! `updater-server inventory …`: a tenant's users, hosts and devices, and
//! the deletion rules (a host's deletion keeps its devices and users; a
//! device with a serial is marked deleted, one without is erased), over the
//! same functions as the HTTP API.

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;

use super::DataDir;
use crate::fleet::inventory;

/// Inventory commands.
#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// List the users.
    Users {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the hosts (one per enrolled agent that checked in).
    Hosts {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the devices (deleted ones are flagged).
    Devices {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user, and their hosts and devices no other user has.
    DeleteUser {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The user id.
        id: String,
    },
    /// Delete a host (its devices and users stay).
    DeleteHost {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The host (agent) id.
        id: String,
    },
    /// Delete a device (marked deleted if it has a serial, erased otherwise).
    DeleteDevice {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The device id.
        id: String,
    },
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn json_out<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{:#}", serde_json::to_value(v)?);
    Ok(())
}

/// Runs an inventory command.
pub(super) fn run(data: &DataDir, command: InventoryCommand) -> anyhow::Result<()> {
    let accounts = data.accounts(crate::auth::SessionPolicy::default())?;
    let tenant = match &command {
        InventoryCommand::Users { tenant, .. }
        | InventoryCommand::Hosts { tenant, .. }
        | InventoryCommand::Devices { tenant, .. }
        | InventoryCommand::DeleteUser { tenant, .. }
        | InventoryCommand::DeleteHost { tenant, .. }
        | InventoryCommand::DeleteDevice { tenant, .. } => tenant.clone(),
    };
    if accounts.records().tenant(&tenant)?.is_none() {
        anyhow::bail!("no tenant {tenant}");
    }
    let store = accounts.store();
    let not_found = |what: &str, id: &str| anyhow::anyhow!("no {what} {id} in tenant {tenant}");
    match command {
        InventoryCommand::Users { json, .. } => {
            let users = inventory::users(store, &tenant)?;
            if json {
                return json_out(&users);
            }
            println!(
                "{:<18} {:<22} {:<22} {:>5} {:>7} NAME",
                "ID", "FIRST SEEN", "LAST SEEN", "HOSTS", "DEVICES"
            );
            for u in users {
                println!(
                    "{:<18} {:<22} {:<22} {:>5} {:>7} {}",
                    u.id,
                    when(u.first_seen),
                    when(u.last_seen),
                    u.hosts.len(),
                    u.devices.len(),
                    u.name
                );
            }
        }
        InventoryCommand::Hosts { json, .. } => {
            let hosts = inventory::hosts(store, &tenant)?;
            if json {
                return json_out(&hosts);
            }
            println!(
                "{:<18} {:<20} {:<8} {:<10} {:<22} {:<18} CLONE OF",
                "ID", "HOSTNAME", "PLATFORM", "AGENT", "LAST SEEN", "GROUP"
            );
            for h in hosts {
                println!(
                    "{:<18} {:<20} {:<8} {:<10} {:<22} {:<18} {}",
                    h.id,
                    h.hostname,
                    h.platform,
                    h.agent_version,
                    when(h.last_seen),
                    h.group,
                    h.suspected_clone_of.as_deref().unwrap_or("-")
                );
            }
        }
        InventoryCommand::Devices { json, .. } => {
            let devices = inventory::devices(store, &tenant)?;
            if json {
                return json_out(&devices);
            }
            println!(
                "{:<18} {:<10} {:<16} {:<12} {:<22} {:<18} STATE",
                "ID", "MODEL", "SERIAL", "FIRMWARE", "LAST SEEN", "HOST"
            );
            for d in devices {
                println!(
                    "{:<18} {:04X}:{:04X}  {:<16} {:<12} {:<22} {:<18} {}",
                    d.id,
                    d.vendor_id,
                    d.product_id,
                    d.serial.as_deref().unwrap_or("-"),
                    d.firmware_version.as_deref().unwrap_or("-"),
                    when(d.last_seen),
                    d.host,
                    if d.deleted_at.is_some() {
                        "deleted"
                    } else {
                        "active"
                    }
                );
            }
        }
        InventoryCommand::DeleteUser { id, .. } => {
            match inventory::delete_user(store, &tenant, &id, accounts.now()) {
                Err(crate::fleet::FleetError::NotFound) => return Err(not_found("user", &id)),
                other => other?,
            }
            println!("user {id} deleted");
        }
        InventoryCommand::DeleteHost { id, .. } => {
            match inventory::delete_host(store, &tenant, &id) {
                Err(crate::fleet::FleetError::NotFound) => return Err(not_found("host", &id)),
                other => other?,
            }
            println!("host {id} deleted (its devices and users stay)");
        }
        InventoryCommand::DeleteDevice { id, .. } => {
            match inventory::delete_device(store, &tenant, &id, accounts.now()) {
                Err(crate::fleet::FleetError::NotFound) => return Err(not_found("device", &id)),
                other => other?,
            }
            println!("device {id} deleted");
        }
    }
    Ok(())
}
