//! The inventory: users, hosts and devices as agents report them, and the
//! deletion rules.
//!
//! - A user is an account (or `account@hostname` for shared accounts);
//!   excluded accounts are never recorded.
//! - A host is an enrolled agent; suspected clones are flagged.
//! - A device is keyed by vendor and serial number (it follows the user from
//!   host to host), or by host, vendor and port path when it has no serial.
//!   Every device reported in a check-in is attributed to the host and to
//!   the users logged in at that time.
//!
//! Deleting a user deletes their hosts and devices that no other user has;
//! devices with a serial are then marked deleted (never erased; they return
//! when seen again), devices without one are erased. Deleting a host deletes
//! neither its devices nor its users.

use std::collections::BTreeSet;

use catalog::checkin::UpdateState;
use catalog::protocol::{Battery, DeviceReport, DfuState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::compute::SkipReason;
use super::{decode_text, derived_id, get, get_existing, list, to_value, upsert, FleetError};
use crate::store::{Key, Op, Store, Table};

/// An inventory user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The tenant.
    pub tenant: String,
    /// Derived from the lower-case name.
    pub id: String,
    /// `account` or `account@hostname`.
    pub name: String,
    /// First check-in that reported the user.
    pub first_seen: DateTime<Utc>,
    /// Last one.
    pub last_seen: DateTime<Utc>,
    /// Hosts (agent ids) the user was seen on.
    pub hosts: BTreeSet<String>,
    /// Devices (ids) attached while the user was logged in.
    pub devices: BTreeSet<String>,
}

/// An inventory host (one per agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// The tenant.
    pub tenant: String,
    /// The agent id.
    pub id: String,
    /// Host name at the last check-in.
    pub hostname: String,
    /// Platform.
    pub platform: String,
    /// Agent version.
    pub agent_version: String,
    /// The agent this one is a suspected clone of.
    pub suspected_clone_of: Option<String>,
    /// First check-in.
    pub first_seen: DateTime<Utc>,
    /// Last check-in.
    pub last_seen: DateTime<Utc>,
    /// User ids seen on it.
    pub users: BTreeSet<String>,
    /// Device ids seen on it.
    pub devices: BTreeSet<String>,
    /// The effective group at the last check-in.
    pub group: String,
    /// Devices left without an assignment at the last check-in, and why.
    pub skipped: Vec<(String, SkipReason)>,
    /// Update states the agent reported at the last check-in.
    #[serde(default)]
    pub update_states: Vec<UpdateState>,
}

/// An inventory device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The tenant.
    pub tenant: String,
    /// Derived from the natural key.
    pub id: String,
    /// `vid/serial/SN`, or `agent/vid/port/PATH` without a serial.
    pub key: String,
    /// USB ids.
    pub vendor_id: u16,
    /// USB idProduct.
    pub product_id: u16,
    /// USB bcdDevice.
    pub bcd_device: u16,
    /// Serial number.
    pub serial: Option<String>,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// Firmware version last reported.
    pub firmware_version: Option<String>,
    /// DFU capability.
    pub dfu: DfuState,
    /// Exposes HID telephony.
    pub telephony: bool,
    /// Battery.
    pub battery: Option<Battery>,
    /// First seen.
    pub first_seen: DateTime<Utc>,
    /// Last seen.
    pub last_seen: DateTime<Utc>,
    /// The host it was last seen on.
    pub host: String,
    /// User ids it was attributed to.
    pub users: BTreeSet<String>,
    /// Set when deleted (devices with a serial are never erased).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The inventory id of a device from its identity as an agent's events name
/// it ([`DeviceReport::identity`]): devices with a serial are the same on
/// every host, others are per host.
pub(crate) fn device_id_of_identity(agent: &str, identity: &str) -> String {
    if identity.contains("/serial/") {
        derived_id(identity)
    } else {
        derived_id(&format!("{agent}/{identity}"))
    }
}

/// The inventory id of a device an agent reports.
pub(crate) fn device_id(agent: &str, d: &DeviceReport) -> String {
    derived_id(&device_key(agent, d))
}

fn device_key(agent: &str, d: &DeviceReport) -> String {
    match d.serial {
        Some(_) => d.identity(),
        None => format!("{agent}/{}", d.identity()),
    }
}

/// The id of a user name.
pub fn user_id(name: &str) -> String {
    derived_id(&format!("user:{}", name.to_lowercase()))
}

/// What a check-in reports, for the inventory.
#[derive(Debug)]
pub struct Sighting<'a> {
    /// The agent (host) id.
    pub agent: &'a str,
    /// Its clone flag.
    pub clone_of: Option<&'a str>,
    /// Host name, platform, agent version.
    pub hostname: &'a str,
    /// Platform.
    pub platform: &'a str,
    /// Agent version.
    pub agent_version: &'a str,
    /// Inventory user names (excluded accounts already removed).
    pub users: &'a [String],
    /// Devices.
    pub devices: &'a [DeviceReport],
    /// The effective group.
    pub group: &'a str,
    /// Devices without assignment.
    pub skipped: &'a [(String, SkipReason)],
    /// Update states as reported.
    pub update_states: &'a [UpdateState],
}

/// The writes that record a check-in's users, host and devices (the
/// caller commits them, with its own, in one transaction).
pub fn sighting_ops(
    store: &dyn Store,
    tenant: &str,
    s: &Sighting<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Op>, FleetError> {
    let mut ops = Vec::new();
    let user_ids: BTreeSet<String> = s.users.iter().map(|u| user_id(u)).collect();
    let mut device_ids = BTreeSet::new();
    let mut devices = Vec::new();
    for d in s.devices {
        let key = device_key(s.agent, d);
        let id = derived_id(&key);
        if device_ids.insert(id.clone()) {
            devices.push((key, id, d));
        }
    }
    // The devices, users and host as stored, in one read.
    let mut keys: Vec<(Table, Key)> = devices
        .iter()
        .map(|(_, id, _)| (Table::InventoryDevices, Key::new(tenant, id)))
        .collect();
    keys.extend(
        s.users
            .iter()
            .map(|name| (Table::InventoryUsers, Key::new(tenant, user_id(name)))),
    );
    keys.push((Table::InventoryHosts, Key::new(tenant, s.agent)));
    let mut stored = store.get_texts(&keys)?.into_iter();
    for (key, id, d) in devices {
        let old: Option<Device> = decode_text(Table::InventoryDevices, stored.next().flatten())?;
        let mut users = old.as_ref().map(|o| o.users.clone()).unwrap_or_default();
        users.extend(user_ids.iter().cloned());
        let rec = Device {
            tenant: tenant.to_owned(),
            id: id.clone(),
            key,
            vendor_id: d.vendor_id,
            product_id: d.product_id,
            bcd_device: d.bcd_device,
            serial: d.serial.clone(),
            manufacturer: d.manufacturer.clone(),
            product: d.product.clone(),
            firmware_version: d.firmware_version.clone(),
            dfu: d.dfu,
            telephony: d.telephony,
            battery: d.battery,
            first_seen: old.as_ref().map_or(now, |o| o.first_seen),
            last_seen: now,
            host: s.agent.to_owned(),
            users,
            deleted_at: None, // seen again: revived
        };
        ops.push(put(
            Table::InventoryDevices,
            tenant,
            &id,
            to_value(&rec),
            old.is_some(),
        ));
    }
    for name in s.users {
        let id = user_id(name);
        let old: Option<User> = decode_text(Table::InventoryUsers, stored.next().flatten())?;
        let exists = old.is_some();
        let mut u = old.unwrap_or_else(|| User {
            tenant: tenant.to_owned(),
            id: id.clone(),
            name: name.clone(),
            first_seen: now,
            last_seen: now,
            hosts: BTreeSet::new(),
            devices: BTreeSet::new(),
        });
        u.last_seen = now;
        u.hosts.insert(s.agent.to_owned());
        u.devices.extend(device_ids.iter().cloned());
        ops.push(put(
            Table::InventoryUsers,
            tenant,
            &id,
            to_value(&u),
            exists,
        ));
    }
    let old: Option<Host> = decode_text(Table::InventoryHosts, stored.next().flatten())?;
    let exists = old.is_some();
    let (first_seen, mut users, mut devices) = old
        .map(|h| (h.first_seen, h.users, h.devices))
        .unwrap_or((now, BTreeSet::new(), BTreeSet::new()));
    users.extend(user_ids);
    devices.extend(device_ids);
    let host = Host {
        tenant: tenant.to_owned(),
        id: s.agent.to_owned(),
        hostname: s.hostname.to_owned(),
        platform: s.platform.to_owned(),
        agent_version: s.agent_version.to_owned(),
        suspected_clone_of: s.clone_of.map(str::to_owned),
        first_seen,
        last_seen: now,
        users,
        devices,
        group: s.group.to_owned(),
        skipped: s.skipped.to_vec(),
        update_states: s.update_states.to_vec(),
    };
    ops.push(put(
        Table::InventoryHosts,
        tenant,
        s.agent,
        to_value(&host),
        exists,
    ));
    Ok(ops)
}

fn put(table: Table, tenant: &str, id: &str, v: serde_json::Value, exists: bool) -> Op {
    upsert(table, Key::new(tenant, id), v, exists)
}

/// The tenant's users.
pub fn users(store: &dyn Store, tenant: &str) -> Result<Vec<User>, FleetError> {
    list(store, Table::InventoryUsers, tenant)
}

/// The tenant's hosts.
pub fn hosts(store: &dyn Store, tenant: &str) -> Result<Vec<Host>, FleetError> {
    list(store, Table::InventoryHosts, tenant)
}

/// The tenant's devices (deleted ones included, flagged).
pub fn devices(store: &dyn Store, tenant: &str) -> Result<Vec<Device>, FleetError> {
    list(store, Table::InventoryDevices, tenant)
}

/// The op that deletes a device: a mark for devices with a serial, erasure
/// for the others.
fn delete_device_op(tenant: &str, mut d: Device, now: DateTime<Utc>) -> Op {
    if d.serial.is_some() {
        d.deleted_at = Some(now);
        d.users.clear();
        Op::Update(
            Table::InventoryDevices,
            Key::new(tenant, &d.id),
            to_value(&d),
        )
    } else {
        Op::Delete(Table::InventoryDevices, Key::new(tenant, &d.id))
    }
}

/// Deletes a user, and their hosts and devices no other user has.
pub fn delete_user(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), FleetError> {
    let u: User = get_existing(store, Table::InventoryUsers, tenant, id)?;
    let mut ops = vec![Op::Delete(Table::InventoryUsers, Key::new(tenant, id))];
    for h in &u.hosts {
        let Some(mut host) = get::<Host>(store, Table::InventoryHosts, tenant, h)? else {
            continue;
        };
        host.users.remove(id);
        ops.push(if host.users.is_empty() {
            Op::Delete(Table::InventoryHosts, Key::new(tenant, h))
        } else {
            Op::Update(Table::InventoryHosts, Key::new(tenant, h), to_value(&host))
        });
    }
    for d in &u.devices {
        let Some(mut dev) = get::<Device>(store, Table::InventoryDevices, tenant, d)? else {
            continue;
        };
        dev.users.remove(id);
        ops.push(if dev.users.is_empty() {
            delete_device_op(tenant, dev, now)
        } else {
            Op::Update(Table::InventoryDevices, Key::new(tenant, d), to_value(&dev))
        });
    }
    super::service::commit_changing(store, tenant, ops)?;
    Ok(())
}

/// Deletes a host; its devices and users stay.
pub fn delete_host(store: &dyn Store, tenant: &str, id: &str) -> Result<(), FleetError> {
    let h: Host = get_existing(store, Table::InventoryHosts, tenant, id)?;
    let mut ops = vec![Op::Delete(Table::InventoryHosts, Key::new(tenant, id))];
    for uid in &h.users {
        if let Some(mut u) = get::<User>(store, Table::InventoryUsers, tenant, uid)? {
            u.hosts.remove(id);
            ops.push(Op::Update(
                Table::InventoryUsers,
                Key::new(tenant, uid),
                to_value(&u),
            ));
        }
    }
    super::service::commit_changing(store, tenant, ops)?;
    Ok(())
}

/// Deletes a device (marked if it has a serial, erased otherwise).
pub fn delete_device(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), FleetError> {
    let d: Device = get(store, Table::InventoryDevices, tenant, id)?
        .filter(|d: &Device| d.deleted_at.is_none())
        .ok_or(FleetError::NotFound)?;
    let mut ops = Vec::new();
    for uid in &d.users {
        if let Some(mut u) = get::<User>(store, Table::InventoryUsers, tenant, uid)? {
            u.devices.remove(id);
            ops.push(Op::Update(
                Table::InventoryUsers,
                Key::new(tenant, uid),
                to_value(&u),
            ));
        }
    }
    ops.push(delete_device_op(tenant, d, now));
    super::service::commit_changing(store, tenant, ops)?;
    Ok(())
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
