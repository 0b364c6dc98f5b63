//! Fault injection: every fault ends in a typed error (or a defined outcome) and the
//! device is recoverable afterwards.

mod host_common;

use std::time::Duration;

use dfu::host::{
    flash, Backend, DeviceError, DeviceMatcher, DfuError, DfuHost, DfuMode, DfuState, DfuStatus,
    FlashOutcome, ManifestOutcome, NoProgress, Request, TransportError,
};
use dfu::quirks::QuirkTable;
use host_common::*;
use test_devices::image::{self, FirmwareVersion};
use test_devices::{DeviceId, Fault, ModelProfile, VirtualBus};

fn tolerant() -> (VirtualBus, DeviceId, Vec<u8>) {
    let profile = ModelProfile::headset_tolerant();
    let img = image_for(&profile, V2, 9000);
    let (bus, id) = bus_with(profile);
    (bus, id, img)
}

fn reflash_ok(bus: &VirtualBus, img: &[u8]) {
    let t = bus
        .open(&DeviceMatcher::parse_selector("VH5200-0001"))
        .expect("device is on the bus");
    let report = flash(t, img, &options(), &mut NoProgress).expect("re-flash succeeds");
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert_eq!(report.device.bcd_device, 0x020E);
}

#[test]
fn power_loss_leaves_no_valid_app_and_reflashing_recovers() {
    let (bus, id, img) = tolerant();
    bus.with_device(id, |d| d.inject(Fault::PowerLossAfter { bytes: 4096 }));
    let err = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap_err();
    assert_eq!(
        err,
        DfuError::Transport {
            op: "GETSTATUS",
            source: TransportError::Disconnected
        }
    );
    assert!(!bus.is_attached(id));
    bus.advance(Duration::from_millis(500));
    let info = bus.info(id).unwrap();
    assert_eq!((info.product_id, info.mode()), (0x0004, Some(DfuMode::Dfu)));
    let dev = bus.device(id).unwrap();
    assert_eq!(dev.firmware_version(), None);
    assert_eq!(
        (dev.state(), dev.status()),
        (DfuState::DfuError, DfuStatus::ErrFirmware)
    );
    assert_eq!(dev.flash().len(), 4096);
    reflash_ok(&bus, &img);
}

#[test]
fn power_loss_then_replug_also_comes_back_in_dfu_mode() {
    let (bus, id, img) = tolerant();
    bus.with_device(id, |d| d.inject(Fault::PowerLossAfter { bytes: 2048 }));
    assert!(flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).is_err());
    bus.replug(id);
    assert_eq!(bus.info(id).unwrap().mode(), Some(DfuMode::Dfu));
    reflash_ok(&bus, &img);
}

#[test]
fn stalled_requests_become_errstalledpkt_and_recover_with_clrstatus() {
    let cases = [
        (Request::Dnload, 3, "DNLOAD"),
        (Request::GetStatus, 2, "GETSTATUS"),
        (Request::Upload, 1, "UPLOAD"),
    ];
    for (request, nth, op) in cases {
        let (bus, id, img) = tolerant();
        // Enter DFU mode first so the fault counts only DFU-mode requests.
        let mut host = DfuHost::new(bus.open_id(id).unwrap(), QuirkTable::new()).unwrap();
        host.enter_dfu_mode(&mut NoProgress).unwrap();
        bus.with_device(host.transport().id(), |d| {
            d.inject(Fault::Stall { request, nth })
        });
        let err = host
            .download(&img, &mut NoProgress)
            .and_then(|_| host.verify(&img, &mut NoProgress));
        assert_eq!(
            err.unwrap_err(),
            DfuError::Transport {
                op,
                source: TransportError::Stall
            },
            "{request:?}"
        );
        let dev = bus.device(id).unwrap();
        assert_eq!(
            (dev.state(), dev.status()),
            (DfuState::DfuError, DfuStatus::ErrStalledPkt),
            "{request:?}"
        );
        assert_eq!(host.recover().unwrap(), Some(DfuStatus::ErrStalledPkt));
        assert_eq!(host.get_state().unwrap(), DfuState::DfuIdle);
        drop(host);
        reflash_ok(&bus, &img);
    }
}

/// (case, image, status, what the device says through its iString, version after).
type ImageCase = (
    &'static str,
    Vec<u8>,
    DfuStatus,
    Option<&'static str>,
    Option<FirmwareVersion>,
);

#[test]
fn device_side_image_checks_give_typed_errors_and_keep_the_device_recoverable() {
    let profile = ModelProfile::headset_tolerant();
    let good = image_for(&profile, V2, 3000);
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xFF;
    let other_model = image::build(0x0099, V2, &image::test_payload(3000, 1));
    let truncated = good[..2000].to_vec();
    let too_big = image_for(&profile, V2, 600 * 1024);
    let not_an_image = b"MZ this is some other vendor's firmware".repeat(40);
    let cases: [ImageCase; 5] = [
        (
            "bad checksum",
            bad_crc,
            DfuStatus::ErrVerify,
            Some("the image's payload does not match its CRC-32"),
            None,
        ),
        (
            "image for another model",
            other_model,
            DfuStatus::ErrTarget,
            Some("the image is for product 0099, this device is 0003"),
            Some(FirmwareVersion::new(1, 0, 0)),
        ),
        (
            "not an image for simulated devices",
            not_an_image,
            DfuStatus::ErrVerify,
            Some(
                "not a simulated-device image: it does not start with the FWIM header \
                 (build one with `sim-firmware`)",
            ),
            None,
        ),
        (
            "truncated image",
            truncated,
            DfuStatus::ErrNotDone,
            None,
            None,
        ),
        (
            "image larger than flash",
            too_big,
            DfuStatus::ErrAddress,
            None,
            None,
        ),
    ];
    for (name, img, status, says, version_after) in cases {
        let (bus, id) = bus_with(profile.clone());
        let err = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap_err();
        assert_eq!(
            err,
            DfuError::Device(DeviceError {
                status,
                state: DfuState::DfuError,
                description: says.map(str::to_owned),
            }),
            "{name}"
        );
        assert!(err.to_string().contains(status.help()), "{name}: {err}");
        if let Some(says) = says {
            assert!(
                err.to_string()
                    .contains(&format!(" The device says: {says}. (device status ")),
                "{name}: {err}"
            );
        }
        assert_eq!(err.device_status(), Some(status));
        // errTARGET is detected before erasing: the old firmware survives.
        assert_eq!(
            bus.device(id).unwrap().firmware_version(),
            version_after,
            "{name}"
        );
        reflash_ok(&bus, &good);
    }
}

#[test]
fn corrupted_write_is_caught_by_device_verification() {
    let (bus, id, img) = tolerant();
    bus.with_device(id, |d| d.inject(Fault::CorruptWrite));
    let err = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap_err();
    assert_eq!(
        err,
        DfuError::Device(DeviceError {
            status: DfuStatus::ErrVerify,
            state: DfuState::DfuError,
            description: Some("the image's payload does not match its CRC-32".into()),
        })
    );
    assert_eq!(bus.device(id).unwrap().firmware_version(), None);
    reflash_ok(&bus, &img);
}

#[test]
fn device_that_resets_itself_during_manifestation_is_followed() {
    let (bus, id, img) = tolerant();
    bus.with_device(id, |d| {
        d.inject(Fault::VanishDuringManifest { comes_back: true })
    });
    let report = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap();
    assert_eq!(report.manifest, ManifestOutcome::DeviceReset);
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert!(!report.verified);
    assert_eq!(report.device.bcd_device, 0x020E);
}

#[test]
fn device_vanishing_for_good_during_manifestation_is_a_typed_error() {
    let (bus, id, img) = tolerant();
    bus.with_device(id, |d| {
        d.inject(Fault::VanishDuringManifest { comes_back: false })
    });
    let err = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap_err();
    assert_eq!(err, DfuError::VanishedDuringManifestation);
    assert!(!bus.is_attached(id));
    bus.replug(id);
    assert_eq!(bus.info(id).unwrap().bcd_device, 0x020E);
}

#[test]
fn refused_upload_is_a_typed_error_and_recoverable() {
    let (bus, id, img) = tolerant();
    bus.with_device(id, |d| d.inject(Fault::RefuseUpload));
    let err = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap_err();
    assert_eq!(
        err,
        DfuError::Transport {
            op: "UPLOAD",
            source: TransportError::Stall
        }
    );
    // The download itself completed; the device is in dfuERROR after the stall.
    let dev = bus.device(id).unwrap();
    assert_eq!(dev.status(), DfuStatus::ErrStalledPkt);
    assert_eq!(dev.firmware_version(), Some(V2));
    let mut host = DfuHost::new(bus.open_id(id).unwrap(), QuirkTable::new()).unwrap();
    assert_eq!(host.recover().unwrap(), Some(DfuStatus::ErrStalledPkt));
    assert_eq!(host.upload(None, &mut NoProgress).unwrap(), img);
}

#[test]
fn upload_on_a_device_without_upload_support_is_refused_by_the_host() {
    let profile = ModelProfile::headset_needs_replug();
    let (bus, id) = bus_with(profile);
    let mut host = DfuHost::new(bus.open_id(id).unwrap(), QuirkTable::new()).unwrap();
    host.enter_dfu_mode(&mut NoProgress).unwrap();
    assert_eq!(
        host.upload(None, &mut NoProgress).unwrap_err(),
        DfuError::NotSupported("reading firmware back (upload)")
    );
}

#[test]
fn recovery_from_mid_transfer_states_uses_abort() {
    let (bus, id, img) = tolerant();
    let mut host = DfuHost::new(bus.open_id(id).unwrap(), QuirkTable::new()).unwrap();
    host.enter_dfu_mode(&mut NoProgress).unwrap();
    // Leave the device mid-upload (dfuUPLOAD-IDLE).
    let first = host.upload(Some(100), &mut NoProgress).unwrap();
    assert_eq!(first.len(), 100);
    // upload(Some) ABORTs itself; push the device into UPLOAD-IDLE by hand.
    let t = host.transport_mut();
    let mut buf = vec![0u8; 2048];
    dfu::host::Transport::control_in(
        t,
        dfu::host::Setup {
            request_type: dfu::host::REQUEST_TYPE_IN,
            request: Request::Upload as u8,
            value: 0,
            index: 0,
        },
        &mut buf,
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(bus.device(id).unwrap().state(), DfuState::DfuUploadIdle);
    assert_eq!(host.recover().unwrap(), None);
    assert_eq!(bus.device(id).unwrap().state(), DfuState::DfuIdle);
    // And from dfuDNLOAD-IDLE after a partial download.
    bus.with_device(id, |d| {
        d.inject(Fault::Stall {
            request: Request::Dnload,
            nth: 3,
        })
    });
    assert!(host.download(&img, &mut NoProgress).is_err());
    assert_eq!(host.recover().unwrap(), Some(DfuStatus::ErrStalledPkt));
    let outcome = host.download(&img, &mut NoProgress).unwrap();
    assert_eq!(outcome, ManifestOutcome::Complete);
}
