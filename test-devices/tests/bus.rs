//! The virtual bus, HID inventory devices and the image format.

use std::sync::mpsc::TryRecvError;
use std::thread;
use std::time::Duration;

use dfu::host::{Backend, DeviceMatcher, DfuMode, HotplugEvent};
use test_devices::image::{self, FirmwareVersion, ImageError, HEADER_LEN};
use test_devices::profile::all_profiles;
use test_devices::{
    Battery, BusEvent, HidTelephonyDevice, ModelProfile, SimDevice, VirtualBus,
    TELEPHONY_USAGE_PAGE,
};

#[test]
fn image_header_roundtrip_and_rejections() {
    let v = FirmwareVersion::new(2, 14, 3);
    let img = image::build(0x0003, v, b"hello firmware");
    assert_eq!(img.len(), HEADER_LEN + 14);
    assert_eq!(&img[..4], b"FWIM");
    let h = image::validate(&img).unwrap();
    assert_eq!((h.product_id, h.version, h.payload_len), (0x0003, v, 14));
    assert!(h.is_for(0x0003) && !h.is_for(0x0004));
    assert!(image::ImageHeader::parse(&image::build(0xFFFF, v, b""))
        .unwrap()
        .is_for(0x1234));
    assert_eq!(v.to_string(), "2.14.3");
    assert_eq!(v.bcd_device(), 0x020E);

    let mut bad = img.clone();
    bad[HEADER_LEN] ^= 1;
    assert_eq!(image::validate(&bad), Err(ImageError::BadChecksum));
    assert_eq!(image::validate(&img[..20]), Err(ImageError::Truncated));
    assert_eq!(
        image::validate(&img[..HEADER_LEN + 3]),
        Err(ImageError::Truncated)
    );
    let mut magic = img.clone();
    magic[0] = b'X';
    assert_eq!(image::validate(&magic), Err(ImageError::BadHeader));
}

#[test]
fn attach_unplug_replug_and_reenumerate_emit_events() {
    let bus = VirtualBus::new();
    let rx = bus.subscribe();
    let id = bus.attach(SimDevice::new(ModelProfile::headset_tolerant()));
    bus.unplug(id);
    assert!(!bus.is_attached(id));
    assert_eq!(bus.info(id), None);
    bus.plug(id);
    bus.reenumerate(id);
    bus.replug(id);
    let kinds: Vec<&str> = rx
        .try_iter()
        .map(|e| match e {
            BusEvent::Attached { .. } => "attach",
            BusEvent::Detached { .. } => "detach",
        })
        .collect();
    assert_eq!(
        kinds,
        ["attach", "detach", "attach", "detach", "attach", "detach", "attach"]
    );
    assert_eq!(bus.history().len(), 7);
}

#[test]
fn backend_lists_and_opens_dfu_devices_only() {
    let bus = VirtualBus::new();
    for p in all_profiles() {
        bus.attach(SimDevice::new(p));
    }
    bus.attach_hid(HidTelephonyDevice::other_vendor_headset());
    let devices = bus.devices().unwrap();
    assert_eq!(devices.len(), all_profiles().len());
    assert!(devices.iter().all(|d| d.mode() == Some(DfuMode::Runtime)));
    let t = bus
        .open(&DeviceMatcher::parse_selector("1209:0005"))
        .unwrap();
    assert_eq!(
        dfu::host::Transport::device(&t).serial.as_deref(),
        Some("SP710-0001")
    );
    assert!(bus
        .open(&DeviceMatcher::parse_selector("dead:beef"))
        .is_err());
}

#[test]
fn hotplug_channel_reports_arrivals_and_departures() {
    let bus = VirtualBus::new();
    let rx = bus.hotplug().unwrap();
    let id = bus.attach(SimDevice::new(ModelProfile::usb_dongle()));
    bus.unplug(id);
    match rx.try_recv().unwrap() {
        HotplugEvent::Arrived(i) => assert_eq!(i.serial.as_deref(), Some("OBT600-0001")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(rx.try_recv().unwrap(), HotplugEvent::Left(i) if i.product_id == 0x0009));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn telephony_inventory_covers_our_and_other_vendors_devices() {
    let bus = VirtualBus::new();
    let ours = bus.attach(SimDevice::new(
        ModelProfile::headset_tolerant().with_version(FirmwareVersion::new(1, 2, 3)),
    ));
    let wireless = bus.attach_hid(HidTelephonyDevice::our_wireless_headset());
    let other = bus.attach_hid(HidTelephonyDevice::other_vendor_headset().with_in_call(true));
    let no_serial = bus.attach_hid(HidTelephonyDevice::other_vendor_speakerphone_no_serial());
    bus.set_in_call(ours, true);
    let inv = bus.telephony_devices();
    assert_eq!(inv.len(), 4);
    assert!(inv
        .iter()
        .all(|(_, i)| i.usage_page == TELEPHONY_USAGE_PAGE));
    let get = |id| inv.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    let o = get(ours);
    assert_eq!(
        (o.version.as_str(), o.serial.as_deref(), o.in_call),
        ("1.2.3", Some("VH5200-0001"), true)
    );
    assert_eq!(get(wireless).battery, Some(Battery::TalkTimeMinutes(540)));
    let x = get(other);
    assert_eq!(
        (x.vendor_id, x.battery, x.in_call),
        (0x0B0E, Some(Battery::RoughPercent(75)), true)
    );
    assert_eq!(get(no_serial).serial, None);
    // In DFU mode our device is not a telephony device.
    let t = bus.open_id(ours).unwrap();
    let mut host = dfu::host::DfuHost::with_quirks(t, Default::default()).unwrap();
    host.enter_dfu_mode(&mut dfu::host::NoProgress).unwrap();
    assert_eq!(bus.telephony_devices().len(), 3);
}

#[test]
fn bus_is_usable_from_several_threads() {
    let bus = VirtualBus::new();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let bus = bus.clone();
            thread::spawn(move || {
                let serial = format!("VH5200-{i:04}");
                let id = bus.attach(SimDevice::new(
                    ModelProfile::headset_tolerant().with_serial(&serial),
                ));
                let img = image::build(0x0003, FirmwareVersion::new(9, i, 0), &[i; 3000]);
                let t = bus.open_id(id).unwrap();
                let opts = dfu::host::FlashOptions {
                    quirks: dfu::quirks::QuirkTable::new(),
                    ..Default::default()
                };
                dfu::host::flash(t, &img, &opts, &mut dfu::host::NoProgress).unwrap();
                (id, i)
            })
        })
        .collect();
    for h in handles {
        let (id, i) = h.join().unwrap();
        assert_eq!(
            bus.device(id).unwrap().firmware_version(),
            Some(FirmwareVersion::new(9, i, 0))
        );
    }
}

#[test]
fn advancing_time_runs_scheduled_reattachments() {
    let bus = VirtualBus::new();
    let id = bus.attach(SimDevice::new(ModelProfile::slow_conference_bar()));
    let mut t = bus.open_id(id).unwrap();
    let mut host = dfu::host::DfuHost::with_quirks(&mut t, Default::default()).unwrap();
    host.detach(1000).unwrap();
    dfu::host::Transport::reset(host.transport_mut()).unwrap();
    assert!(!bus.is_attached(id));
    bus.advance(Duration::from_secs(19));
    assert!(!bus.is_attached(id));
    bus.advance(Duration::from_secs(1));
    assert_eq!(bus.info(id).unwrap().product_id, 0x000D);
}

#[test]
fn every_profile_is_consistent() {
    for p in all_profiles() {
        assert!(p.transfer_size > 0, "{}", p.name);
        assert!(
            p.reenumeration_delay <= Duration::from_secs(60),
            "{}",
            p.name
        );
        let d = SimDevice::new(p.clone());
        assert_eq!(d.firmware_version(), Some(p.initial_version));
        let info = d.info("1-1");
        assert_eq!(
            (info.product_id, info.mode()),
            (p.runtime_pid, Some(DfuMode::Runtime))
        );
        assert_eq!(info.interfaces[0].functional.transfer_size, p.transfer_size);
    }
}
