use catalog::protocol::{Battery, DfuState};
use test_devices::{HidTelephonyDevice, ModelProfile, SimDevice, VirtualBus};

use super::*;

#[test]
fn inventory_merges_dfu_and_telephony_views() {
    let bus = VirtualBus::new();
    let headset = bus.attach(SimDevice::new(ModelProfile::headset_tolerant()));
    bus.attach(SimDevice::new(ModelProfile::desk_phone_no_pid_change()));
    bus.attach_hid(HidTelephonyDevice::other_vendor_headset());
    bus.set_in_call(headset, true);
    let devices = SimDevices::new(bus.clone());

    let inv = devices.inventory().unwrap();
    let tolerant = ModelProfile::headset_tolerant();
    let ours: Vec<_> = inv
        .iter()
        .filter(|d| d.vendor_id == tolerant.vendor_id)
        .collect();
    let other: Vec<_> = inv
        .iter()
        .filter(|d| d.vendor_id != tolerant.vendor_id)
        .collect();
    assert_eq!(ours.len(), 2, "{inv:#?}");
    assert_eq!(other.len(), 1, "{inv:#?}");

    let h = ours
        .iter()
        .find(|d| d.product_id == tolerant.runtime_pid)
        .expect("tolerant headset");
    assert_eq!(h.dfu, DfuState::Runtime);
    assert!(h.in_call);
    assert_eq!(h.serial, tolerant.serial);
    assert!(
        tolerant.telephony,
        "the profile exposes a telephony interface"
    );
    assert!(h.telephony);
    assert_eq!(h.firmware_version.as_deref(), Some("1.0.0"));

    // The desk phone has no serial: it is identified by its port path.
    let phone = ours
        .iter()
        .find(|d| d.serial.is_none())
        .expect("desk phone");
    assert!(phone.port_path.is_some());
    assert!(phone.identity().contains("/port/"));

    // Another vendor's telephony device: inventory only, never flashed.
    let o = other[0];
    assert_eq!(o.dfu, DfuState::None);
    assert!(o.telephony);
    let expected = HidTelephonyDevice::other_vendor_headset().info;
    assert_eq!(o.product.as_deref(), Some(expected.product.as_str()));
    assert_eq!(
        o.firmware_version.as_deref(),
        Some(expected.version.as_str())
    );
    let battery = expected.battery.map(|b| match b {
        test_devices::Battery::TalkTimeMinutes(m) => Battery::TalkTimeMinutes(m),
        test_devices::Battery::RoughPercent(p) => Battery::RoughPercent(p),
    });
    assert!(battery.is_some(), "the sample reports a battery");
    assert_eq!(o.battery, battery);
}

#[test]
fn merge_table() {
    let hid = |serial: Option<&str>, port: Option<&str>| TelephonyDevice {
        vendor_id: 0x1209,
        product_id: 0x0003,
        bcd_device: 0,
        manufacturer: Some("Example".into()),
        product: Some("Headset".into()),
        serial: serial.map(Into::into),
        version: Some("2.1.0".into()),
        battery: Some(Battery::RoughPercent(50)),
        in_call: true,
        port_path: port.map(Into::into),
    };
    let dfu = |serial: Option<&str>, port: Option<&str>| DeviceInfo {
        vendor_id: 0x1209,
        product_id: 0x0003,
        bcd_device: 0x0201,
        serial: serial.map(Into::into),
        product: Some("Headset".into()),
        port_path: port.map(Into::into),
        interfaces: vec![],
    };
    // (DFU views, HID views, expected number of reports)
    let cases: Vec<(Vec<DeviceInfo>, Vec<TelephonyDevice>, usize)> = vec![
        (
            vec![dfu(Some("A"), Some("1-1"))],
            vec![hid(Some("A"), Some("1-1"))],
            1,
        ),
        (
            vec![dfu(Some("A"), Some("1-1"))],
            vec![hid(Some("B"), Some("1-2"))],
            2,
        ),
        (
            vec![dfu(None, Some("1-1"))],
            vec![hid(None, Some("1-1"))],
            1,
        ),
        (
            vec![dfu(None, Some("1-1"))],
            vec![hid(None, Some("1-2"))],
            2,
        ),
        (vec![], vec![hid(Some("A"), None)], 1),
        (vec![dfu(Some("A"), None)], vec![], 1),
    ];
    for (d, h, count) in cases {
        let merged = merge(&d, &h);
        assert_eq!(merged.len(), count, "{d:?} + {h:?}");
        if count == 1 && !d.is_empty() && !h.is_empty() {
            let m = &merged[0];
            assert!(m.telephony && m.in_call);
            assert_eq!(m.bcd_device, 0x0201, "the USB view's bcdDevice is kept");
            assert_eq!(m.firmware_version.as_deref(), Some("2.1.0"));
            assert_eq!(m.battery, Some(Battery::RoughPercent(50)));
        }
    }
}

#[test]
fn profiles_by_name_match_their_constructors() {
    let table = [
        ("headset_needs_replug", ModelProfile::headset_needs_replug()),
        ("headset_tolerant", ModelProfile::headset_tolerant()),
        ("dfuse_speakerphone", ModelProfile::dfuse_speakerphone()),
        ("base_station", ModelProfile::base_station()),
        ("usb_dongle", ModelProfile::usb_dongle()),
        (
            "desk_phone_no_pid_change",
            ModelProfile::desk_phone_no_pid_change(),
        ),
        ("slow_conference_bar", ModelProfile::slow_conference_bar()),
        ("bogus_poll_timeout", ModelProfile::bogus_poll_timeout()),
        ("zero_poll_timeout", ModelProfile::zero_poll_timeout()),
        ("manifest_polling", ModelProfile::manifest_polling()),
        ("extra_reset", ModelProfile::extra_reset()),
        ("broken_upload", ModelProfile::broken_upload()),
        ("small_blocks", ModelProfile::small_blocks()),
        ("silent_detach", ModelProfile::silent_detach()),
        ("slow_reenumeration", ModelProfile::slow_reenumeration()),
    ];
    assert_eq!(table.len(), PROFILE_NAMES.len());
    for (name, profile) in table {
        assert_eq!(profile_by_name(name), Some(profile), "{name}");
    }
    assert_eq!(profile_by_name("nope"), None);
    for name in HID_NAMES {
        assert!(hid_by_name(name).is_some(), "{name}");
    }
}

#[test]
fn simulated_bus_from_config() {
    use crate::config::SimulatedDevice;
    let dev =
        |profile: Option<&str>, hid: Option<&str>, serial: Option<&str>, version: Option<&str>| {
            SimulatedDevice {
                profile: profile.map(Into::into),
                hid: hid.map(Into::into),
                serial: serial.map(Into::into),
                version: version.map(Into::into),
            }
        };
    let sim = SimDevices::from_config(&[
        dev(Some("headset_tolerant"), None, Some("SN-9"), Some("1.2.0")),
        dev(None, Some("other_vendor_headset"), None, None),
    ])
    .unwrap();
    let inv = sim.inventory().unwrap();
    assert_eq!(inv.len(), 2, "{inv:#?}");
    let h = inv
        .iter()
        .find(|d| d.serial.as_deref() == Some("SN-9"))
        .unwrap();
    assert_eq!(h.firmware_version.as_deref(), Some("1.2.0"));
    assert_eq!(h.dfu, DfuState::Runtime);
    assert!(inv
        .iter()
        .any(|d| d.product.as_deref() == Some("Wireless headset 45")));

    let bad = [
        (
            dev(Some("nope"), None, None, None),
            "unknown profile \"nope\"",
        ),
        (dev(None, Some("nope"), None, None), "unknown hid device"),
        (dev(None, None, None, None), "exactly one of profile or hid"),
        (
            dev(Some("usb_dongle"), Some("x"), None, None),
            "exactly one of profile or hid",
        ),
        (
            dev(Some("usb_dongle"), None, None, Some("1.2")),
            "not major.minor.patch",
        ),
    ];
    for (d, msg) in bad {
        let e = SimDevices::from_config(&[d]).unwrap_err().to_string();
        assert!(e.contains(msg), "{e}");
    }
}
