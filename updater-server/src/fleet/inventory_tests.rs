//! Inventory recording and the deletion rules, over the real redb store.

use catalog::protocol::{DeviceReport, DfuState};
use chrono::{TimeZone, Utc};

use super::*;
use crate::store::RedbStore;

fn dev(serial: Option<&str>, port: &str) -> DeviceReport {
    DeviceReport {
        vendor_id: 0x047f,
        product_id: 0xc056,
        bcd_device: 0x0100,
        serial: serial.map(str::to_owned),
        port_path: Some(port.into()),
        manufacturer: Some("Acme".into()),
        product: Some("Voyager".into()),
        firmware_version: Some("1.0".into()),
        dfu: DfuState::Runtime,
        telephony: true,
        battery: None,
        in_call: false,
    }
}

fn see(store: &dyn Store, agent: &str, users: &[&str], devices: &[DeviceReport], day: u32) {
    let users: Vec<String> = users.iter().map(|u| (*u).to_owned()).collect();
    let s = Sighting {
        agent,
        clone_of: None,
        hostname: agent,
        platform: "linux",
        agent_version: "0.1.0",
        users: &users,
        devices,
        group: "all-users",
        skipped: &[],
        update_states: &[],
    };
    let ops = sighting_ops(
        store,
        "t",
        &s,
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
    )
    .unwrap();
    store.commit(ops).unwrap();
}

fn by_serial<'a>(d: &'a [Device], serial: Option<&str>) -> &'a Device {
    d.iter().find(|d| d.serial.as_deref() == serial).unwrap()
}

#[test]
fn recording_and_deletion_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let headset = dev(Some("S1"), "1-1");
    let dongle = dev(None, "1-2");
    let shared = dev(Some("S2"), "1-3");
    see(
        &store,
        "h1",
        &["ann"],
        &[headset.clone(), dongle.clone()],
        1,
    );
    see(&store, "h1", &["ann"], std::slice::from_ref(&headset), 2);
    see(
        &store,
        "h2",
        &["ann", "bob"],
        std::slice::from_ref(&shared),
        3,
    );

    let devices = devices(&store, "t").unwrap();
    assert_eq!(devices.len(), 3);
    let h = by_serial(&devices, Some("S1"));
    assert_eq!((h.first_seen.day(), h.last_seen.day()), (1, 2));
    assert_eq!(hosts(&store, "t").unwrap().len(), 2);
    assert_eq!(users(&store, "t").unwrap().len(), 2);

    // Deleting a host keeps its devices and users.
    delete_host(&store, "t", "h1").unwrap();
    assert_eq!(hosts(&store, "t").unwrap().len(), 1);
    assert_eq!(super::devices(&store, "t").unwrap().len(), 3);
    let ann = users(&store, "t")
        .unwrap()
        .into_iter()
        .find(|u| u.name == "ann")
        .unwrap();
    assert_eq!(ann.hosts.iter().collect::<Vec<_>>(), ["h2"]);

    // Deleting ann: h2 and S2 stay (bob has them); S1 is marked deleted,
    // the serial-less dongle is erased.
    delete_user(&store, "t", &user_id("ann"), now).unwrap();
    let devices = super::devices(&store, "t").unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(by_serial(&devices, Some("S1")).deleted_at, Some(now));
    assert_eq!(by_serial(&devices, Some("S2")).deleted_at, None);
    assert!(devices.iter().all(|d| d.serial.is_some()));
    assert_eq!(hosts(&store, "t").unwrap().len(), 1);
    assert!(matches!(
        delete_user(&store, "t", &user_id("ann"), now),
        Err(FleetError::NotFound)
    ));

    // Seen again: revived, first-seen kept.
    see(&store, "h3", &["carl"], &[headset], 4);
    let revived = by_serial(&super::devices(&store, "t").unwrap(), Some("S1")).clone();
    assert_eq!(revived.deleted_at, None);
    assert_eq!((revived.first_seen.day(), revived.host.as_str()), (1, "h3"));

    // Deleting bob removes h2 (no other user) and marks S2 deleted.
    delete_user(&store, "t", &user_id("bob"), now).unwrap();
    assert_eq!(
        hosts(&store, "t")
            .unwrap()
            .iter()
            .map(|h| h.id.as_str())
            .collect::<Vec<_>>(),
        ["h3"]
    );
    assert!(by_serial(&super::devices(&store, "t").unwrap(), Some("S2"))
        .deleted_at
        .is_some());

    // Deleting a device directly; a deleted one is not found again.
    delete_device(&store, "t", &revived.id, now).unwrap();
    assert!(matches!(
        delete_device(&store, "t", &revived.id, now),
        Err(FleetError::NotFound)
    ));
}

use chrono::Datelike as _;
