use catalog::package::{UpdateProtocol, Version, VersionFormat};
use catalog::protocol::DfuState;
use dfu::file::{DfuFile, DfuSeTarget};
use dfu::host::{FlashOptions, NoProgress};
use test_devices::image::{build, test_payload};
use test_devices::profile::quirk_table;
use test_devices::{FirmwareVersion, HidTelephonyDevice, ModelProfile, SimDevice, VirtualBus};

use super::*;
use crate::devices::{DeviceBackend, SimDevices};

fn options() -> FlashOptions {
    FlashOptions {
        quirks: quirk_table(),
        ..FlashOptions::default()
    }
}

fn v(s: &str) -> Version {
    Version::parse(s, VersionFormat::Plain).unwrap()
}

/// A `.dfu` file carrying a simulator image for `profile` at `version`.
fn dfu_image(profile: &ModelProfile, version: FirmwareVersion) -> Vec<u8> {
    let image = build(profile.runtime_pid, version, &test_payload(20_000, 7));
    DfuFile::new_raw(profile.vendor_id, profile.runtime_pid, 0xffff, image).to_bytes()
}

fn setup(profile: ModelProfile) -> (SimDevices, test_devices::DeviceId, DeviceReport) {
    let bus = VirtualBus::new();
    let id = bus.attach(SimDevice::new(profile.clone()));
    let devices = SimDevices::new(bus);
    let report = devices
        .inventory()
        .unwrap()
        .into_iter()
        .find(|d| d.vendor_id == profile.vendor_id && d.dfu != DfuState::None)
        .unwrap();
    (devices, id, report)
}

#[test]
fn tolerant_headset_runs_the_new_version() {
    let profile = ModelProfile::headset_tolerant();
    let (devices, _, report) = setup(profile.clone());
    let image = dfu_image(&profile, FirmwareVersion::new(2, 14, 3));
    let got = install(
        &devices,
        &report,
        &image,
        UpdateProtocol::Dfu,
        &v("2.14.3"),
        &options(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(
        got,
        Installed::Running {
            version: "2.14.3".into()
        }
    );
}

#[test]
fn replug_headset_waits_for_the_user_then_confirms() {
    let profile = ModelProfile::headset_needs_replug();
    let (devices, id, report) = setup(profile.clone());
    let image = dfu_image(&profile, FirmwareVersion::new(3, 1, 0));
    let got = install(
        &devices,
        &report,
        &image,
        UpdateProtocol::Dfu,
        &v("3.1.0"),
        &options(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(got, Installed::AwaitingReplug);
    // Before the replug the old firmware (or the bootloader) is what is attached.
    assert!(confirm(&devices, &report, &v("3.1.0")).is_err());
    devices.bus().replug(id);
    assert_eq!(
        confirm(&devices, &report, &v("3.1.0")).unwrap(),
        Installed::Running {
            version: "3.1.0".into()
        }
    );
    // The same device with the old version would be a failed update.
    let err = confirm(&devices, &report, &v("3.2.0")).unwrap_err();
    assert!(
        err.to_string()
            .contains("reports version 3.1.0, expected 3.2.0"),
        "{err}"
    );
}

#[test]
fn dfuse_device_is_flashed_from_a_dfuse_file() {
    let profile = ModelProfile::dfuse_speakerphone();
    let (devices, _, report) = setup(profile.clone());
    let image = build(
        profile.runtime_pid,
        FirmwareVersion::new(5, 0, 1),
        &test_payload(40_000, 3),
    );
    let target = DfuSeTarget::new(0, Some("Internal Flash"), [(0x0800_0000, image)]);
    let file = DfuFile::new_dfuse(profile.vendor_id, profile.runtime_pid, 0xffff, vec![target])
        .unwrap()
        .to_bytes();
    let got = install(
        &devices,
        &report,
        &file,
        UpdateProtocol::Dfuse,
        &v("5.0.1"),
        &options(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(
        got,
        Installed::Running {
            version: "5.0.1".into()
        }
    );
}

#[test]
fn refusals_leave_the_device_untouched() {
    let profile = ModelProfile::headset_tolerant();
    let (devices, id, report) = setup(profile.clone());
    let good = dfu_image(&profile, FirmwareVersion::new(2, 0, 0));
    let mut other_pid = profile.clone();
    other_pid.runtime_pid ^= 0x00f0;
    let wrong_device = dfu_image(&other_pid, FirmwareVersion::new(2, 0, 0));
    let mut bad_crc = good.clone();
    bad_crc[40] ^= 1;
    let cases: Vec<(&[u8], UpdateProtocol, &str)> = vec![
        (&wrong_device, UpdateProtocol::Dfu, "is for 1209:"),
        (&good, UpdateProtocol::Dfuse, "signed target says dfuse"),
        (&bad_crc, UpdateProtocol::Dfu, "not a valid firmware file"),
    ];
    for (image, protocol, want) in cases {
        let err = install(
            &devices,
            &report,
            image,
            protocol,
            &v("2.0.0"),
            &options(),
            &mut NoProgress,
        )
        .unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert_eq!(devices.bus().device(id).unwrap().bytes_written(), 0);
    }
}

#[test]
fn corrupt_image_fails_with_a_device_error_and_the_device_recovers() {
    let profile = ModelProfile::headset_tolerant();
    let (devices, _, report) = setup(profile.clone());
    let mut image = build(
        profile.runtime_pid,
        FirmwareVersion::new(2, 1, 0),
        &test_payload(8_000, 1),
    );
    let n = image.len();
    image[n - 1] ^= 0xff; // payload no longer matches the header CRC: errVERIFY at manifestation
    let bad = DfuFile::new_raw(profile.vendor_id, profile.runtime_pid, 0xffff, image).to_bytes();
    let err = install(
        &devices,
        &report,
        &bad,
        UpdateProtocol::Dfu,
        &v("2.1.0"),
        &options(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, InstallError::Dfu(_)), "{err}");

    // The device is now in DFU mode without a valid application; the next scan shows it so.
    let stuck = devices
        .inventory()
        .unwrap()
        .into_iter()
        .find(|d| d.identity() == report.identity())
        .unwrap();
    assert_eq!(stuck.dfu, DfuState::DfuMode);
    let good = dfu_image(&profile, FirmwareVersion::new(2, 1, 0));
    let got = install(
        &devices,
        &stuck,
        &good,
        UpdateProtocol::Dfu,
        &v("2.1.0"),
        &options(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(
        got,
        Installed::Running {
            version: "2.1.0".into()
        }
    );
}

#[test]
fn inventory_only_devices_are_not_flashable() {
    let bus = VirtualBus::new();
    bus.attach_hid(HidTelephonyDevice::other_vendor_headset());
    let devices = SimDevices::new(bus);
    let report = devices.inventory().unwrap().remove(0);
    let err = install(
        &devices,
        &report,
        b"x",
        UpdateProtocol::Dfu,
        &v("1.0"),
        &options(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, InstallError::NotFlashable(_)), "{err}");
}

#[test]
fn version_readback_table() {
    let bcd = |s| Version::parse(s, VersionFormat::Bcd).unwrap();
    let hex = |s| Version::parse(s, VersionFormat::Hex).unwrap();
    let cases: &[(Version, Option<&str>, u16, bool)] = &[
        (v("2.14.3"), Some("2.14.3"), 0, true),
        (v("2.14"), Some("2.14.0"), 0, true),
        (v("2.14.3"), Some("2.14.2"), 0x020e, false),
        (v("2.14.3"), None, 0x020e, true), // major/minor as bytes
        (v("2.14.3"), None, 0x0214, true), // major/minor as BCD
        (v("2.14.3"), None, 0x0215, false),
        (v("7"), None, 0x0700, false), // no minor: cannot be confirmed from bcdDevice
        (bcd("2.14"), None, 0x0214, true),
        (bcd("2.14"), None, 0x020e, false),
        (hex("0x1a2b"), None, 0x1a2b, true),
        (hex("0x1a2b"), Some("0x1A2B"), 0, true),
    ];
    for (expected, reported, bcd_device, want) in cases {
        assert_eq!(
            version_matches(expected, *reported, *bcd_device),
            *want,
            "{expected} vs {reported:?} / {bcd_device:#06x}"
        );
    }
}
