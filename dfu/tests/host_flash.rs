//! End-to-end flashing of every model profile through the simulated bus.

mod host_common;

use std::time::Duration;

use dfu::host::{
    flash, flash_dfuse, Backend, DeviceMatcher, DfuMode, DfuseSegment, FlashOutcome,
    ManifestOutcome, Phase,
};
use host_common::*;
use test_devices::{BusEvent, ModelProfile, SimDevice, VirtualBus};

#[test]
fn tolerant_headset_flashes_verifies_and_runs_new_version() {
    let profile = ModelProfile::headset_tolerant();
    let img = image_for(&profile, V2, 10_000);
    let (bus, id) = bus_with(profile);
    let mut rec = Recorder::default();
    let report = flash(bus.open_id(id).unwrap(), &img, &options(), &mut rec).unwrap();
    assert_eq!(report.manifest, ManifestOutcome::Complete);
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert!(report.verified);
    assert_eq!(report.bytes, img.len());
    assert_eq!(report.device.product_id, 0x0003);
    assert_eq!(report.device.bcd_device, 0x020E);
    assert_eq!(bus.device(id).unwrap().firmware_version(), Some(V2));
    assert!(bus.device(id).unwrap().violations().is_empty());
    assert_eq!(
        rec.phases(),
        vec![
            Phase::Detach,
            Phase::Download,
            Phase::Manifest,
            Phase::Upload,
            Phase::Verify,
            Phase::Attach
        ]
    );
    let downloads: Vec<_> = rec
        .reports
        .iter()
        .filter(|r| r.0 == Phase::Download)
        .collect();
    // 10_032 bytes in 2048-byte blocks: 0, then 5 blocks.
    assert_eq!(downloads.len(), 6);
    assert_eq!(
        *downloads[5],
        (Phase::Download, img.len() as u64, img.len() as u64)
    );
}

/// Every model: (profile, expected manifest outcome, expected final outcome, verified).
#[test]
fn every_dfu11_model_flashes_to_the_expected_end_state() {
    let cases = [
        (
            ModelProfile::headset_needs_replug(),
            ManifestOutcome::NeedsReset,
            FlashOutcome::NeedsReplug,
            false,
        ),
        (
            ModelProfile::headset_tolerant(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::base_station(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::usb_dongle(),
            ManifestOutcome::NeedsReset,
            FlashOutcome::Running,
            false,
        ),
        (
            ModelProfile::desk_phone_no_pid_change(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::slow_conference_bar(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::bogus_poll_timeout(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::zero_poll_timeout(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::manifest_polling(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::extra_reset(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::broken_upload(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            false,
        ),
        (
            ModelProfile::small_blocks(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::silent_detach(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
        (
            ModelProfile::slow_reenumeration(),
            ManifestOutcome::Complete,
            FlashOutcome::Running,
            true,
        ),
    ];
    for (profile, manifest, outcome, verified) in cases {
        let name = profile.name.clone();
        let img = image_for(&profile, V2, 5000);
        let (bus, id) = bus_with(profile);
        let report = flash(
            bus.open_id(id).unwrap(),
            &img,
            &options(),
            &mut dfu::host::NoProgress,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.manifest, manifest, "{name}");
        assert_eq!(report.outcome, outcome, "{name}");
        assert_eq!(report.verified, verified, "{name}");
        let dev = bus.device(id).unwrap();
        assert!(
            dev.violations().is_empty(),
            "{name}: {:?}",
            dev.violations()
        );
        if outcome == FlashOutcome::Running {
            assert_eq!(dev.firmware_version(), Some(V2), "{name}");
            assert_eq!(report.device.bcd_device, 0x020E, "{name}");
            assert_eq!(report.device.mode(), Some(DfuMode::Runtime), "{name}");
        }
    }
}

#[test]
fn replug_headset_reports_needs_replug_then_runs_new_version_after_replug() {
    let profile = ModelProfile::headset_needs_replug();
    let img = image_for(&profile, V2, 3000);
    let (bus, id) = bus_with(profile);
    let report = flash(
        bus.open_id(id).unwrap(),
        &img,
        &options(),
        &mut dfu::host::NoProgress,
    )
    .unwrap();
    assert!(report.needs_replug());
    assert_eq!(report.manifest, ManifestOutcome::NeedsReset);
    let dev = bus.device(id).unwrap();
    assert_eq!(dev.state(), dfu::host::DfuState::DfuManifestWaitReset);
    assert_eq!(dev.firmware_version(), Some(V2));
    // Still in DFU mode on the bus with the DFU PID until the user replugs.
    assert_eq!(bus.info(id).unwrap().product_id, 0x0002);
    bus.replug(id);
    let info = bus.info(id).unwrap();
    assert_eq!(
        (info.product_id, info.bcd_device, info.mode()),
        (0x0001, 0x020E, Some(DfuMode::Runtime))
    );
}

#[test]
fn poll_waits_are_exactly_what_the_device_asked_for() {
    // Slow bar: 350 ms per block, 100 ms polls -> 4 polls of 100 ms per block (the 4th
    // poll finds it done at 400 ms), then a 3 s manifestation poll.
    let profile = ModelProfile::slow_conference_bar();
    let img = image_for(&profile, V2, 512 * 3 - 32);
    let (bus, id) = bus_with(profile);
    let report = flash(
        bus.open_id(id).unwrap(),
        &img,
        &options(),
        &mut dfu::host::NoProgress,
    )
    .unwrap();
    let sleeps = bus.sleeps();
    let ms = |n| Duration::from_millis(n);
    let mut expected = vec![ms(100); 4 * 3];
    expected.push(ms(3000));
    assert_eq!(sleeps, expected);
    assert_eq!(report.poll_wait, ms(4200));
    assert!(bus.device(id).unwrap().violations().is_empty());
}

#[test]
fn zero_latency_device_gets_no_waits_at_all() {
    let profile = ModelProfile::zero_latency(1 << 20);
    let img = image_for(&profile, V2, 100_000);
    let (bus, id) = bus_with(profile);
    flash(
        bus.open_id(id).unwrap(),
        &img,
        &options(),
        &mut dfu::host::NoProgress,
    )
    .unwrap();
    assert!(bus.sleeps().is_empty());
}

#[test]
fn two_piece_product_pieces_flash_independently_by_serial() {
    let bus = VirtualBus::new();
    let base = bus.attach(SimDevice::new(ModelProfile::base_station()));
    let dongle = bus.attach(SimDevice::new(ModelProfile::usb_dongle()));
    assert_eq!(
        bus.device(base).unwrap().profile().family,
        bus.device(dongle).unwrap().profile().family
    );
    let dongle_img = image_for(&ModelProfile::usb_dongle(), V2, 2000);
    let t = bus
        .open(&DeviceMatcher::parse_selector("OBT600-0001"))
        .unwrap();
    assert_eq!(t.id(), dongle);
    let report = flash(t, &dongle_img, &options(), &mut dfu::host::NoProgress).unwrap();
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert_eq!(bus.device(dongle).unwrap().firmware_version(), Some(V2));
    assert_eq!(
        bus.device(base).unwrap().firmware_version(),
        Some(test_devices::FirmwareVersion::new(1, 0, 0))
    );
}

#[test]
fn dfuse_device_flashes_erases_only_written_sectors_and_leaves() {
    let profile = ModelProfile::dfuse_speakerphone();
    // 20 KiB + header: sectors 0x08000000 (16K) and 0x08004000 (16K).
    let img = image_for(&profile, V2, 20 * 1024);
    let (bus, id) = bus_with(profile);
    let segs = [DfuseSegment {
        alt_setting: 0,
        address: 0x0800_0000,
        data: img.clone(),
    }];
    let mut rec = Recorder::default();
    let report = flash_dfuse(
        bus.open_id(id).unwrap(),
        &segs,
        Some(0x0800_0000),
        &options(),
        &mut rec,
    )
    .unwrap();
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert!(report.verified);
    let dev = bus.device(id).unwrap();
    assert_eq!(
        dev.dfuse_memory().unwrap().erase_log(),
        &[(0, 0x0800_0000), (0, 0x0800_4000)]
    );
    assert_eq!(dev.firmware_version(), Some(V2));
    assert_eq!(report.device.bcd_device, 0x020E);
    assert_eq!(
        rec.phases(),
        vec![
            Phase::Detach,
            Phase::Erase,
            Phase::Download,
            Phase::Upload,
            Phase::Verify
        ]
    );
    // Erase busy times are honoured: 25 ms per page.
    let sleeps = bus.sleeps();
    assert_eq!(
        sleeps
            .iter()
            .filter(|d| **d == Duration::from_millis(25))
            .count(),
        2
    );
    assert!(dev.violations().is_empty());
}

#[test]
fn hotplug_events_follow_the_device_through_an_update() {
    let profile = ModelProfile::headset_tolerant();
    let img = image_for(&profile, V2, 1000);
    let (bus, id) = bus_with(profile);
    let rx = bus.hotplug().unwrap();
    let events = bus.subscribe();
    flash(
        bus.open_id(id).unwrap(),
        &img,
        &options(),
        &mut dfu::host::NoProgress,
    )
    .unwrap();
    let pids: Vec<(bool, u16)> = rx
        .try_iter()
        .map(|e| match e {
            dfu::host::HotplugEvent::Arrived(i) => (true, i.product_id),
            dfu::host::HotplugEvent::Left(i) => (false, i.product_id),
        })
        .collect();
    // Runtime leaves; DFU-mode arrives; DFU-mode leaves on reset; runtime arrives.
    assert_eq!(
        pids,
        vec![
            (false, 0x0003),
            (true, 0x0004),
            (false, 0x0004),
            (true, 0x0003)
        ]
    );
    let bus_events: Vec<BusEvent> = events.try_iter().collect();
    assert_eq!(bus_events.len(), 4);
    // Re-enumeration took the profile's 500 ms each time.
    assert!(
        matches!(bus_events[1], BusEvent::Attached { at, .. } if at == Duration::from_millis(500))
    );
}
