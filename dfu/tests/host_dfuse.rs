//! DfuSe: addressed writes, page/mass erase, targets (alternate settings), leave.

mod host_common;

use std::time::Duration;

use dfu::host::{
    flash_dfuse, DeviceError, DfuError, DfuHost, DfuMode, DfuState, DfuStatus, DfuseSegment,
    FlashOutcome, NoProgress, Request, Setup, Transport, REQUEST_TYPE_OUT,
};
use dfu::quirks::QuirkTable;
use host_common::*;
use test_devices::{BusTransport, Fault, ModelProfile, VirtualBus};

const BASE: u32 = 0x0800_0000;

fn dfu_host() -> (VirtualBus, test_devices::DeviceId, DfuHost<BusTransport>) {
    let (bus, id) = bus_with(ModelProfile::dfuse_speakerphone());
    let mut host = DfuHost::new(bus.open_id(id).unwrap(), QuirkTable::new()).unwrap();
    host.enter_dfu_mode(&mut NoProgress).unwrap();
    (bus, id, host)
}

fn raw_dnload(host: &mut DfuHost<BusTransport>, block: u16, data: &[u8]) {
    let setup = Setup {
        request_type: REQUEST_TYPE_OUT,
        request: Request::Dnload as u8,
        value: block,
        index: 0,
    };
    host.transport_mut()
        .control_out(setup, data, Duration::from_secs(1))
        .unwrap();
}

fn device_err(status: DfuStatus) -> DfuError {
    DfuError::Device(DeviceError {
        status,
        state: DfuState::DfuError,
        description: None,
    })
}

#[test]
fn dfu_mode_exposes_targets_with_layouts() {
    let (_bus, _id, mut host) = dfu_host();
    assert_eq!(host.mode(), DfuMode::Dfu);
    assert!(host.interface().functional.is_dfuse());
    assert_eq!(host.device().interfaces.len(), 2);
    let l = host.dfuse_layout().unwrap();
    assert_eq!((l.name.as_str(), l.sectors.len()), ("Internal Flash", 12));
    host.select_alt(1).unwrap();
    assert_eq!(host.dfuse_layout().unwrap().name, "Device ID");
    assert_eq!(
        host.select_alt(2).unwrap_err(),
        DfuError::NoDfuInterface { alt: Some(2) }
    );
}

#[test]
fn download_erases_exactly_the_touched_sectors() {
    // (address, length) -> erased sectors
    let cases: [(u32, usize, &[u32]); 3] = [
        (BASE, 100, &[BASE]),
        (BASE + 0x3000, 0x2000, &[BASE, BASE + 0x4000]),
        (
            BASE + 0xF000,
            0x1_2000,
            &[BASE + 0xC000, BASE + 0x10000, BASE + 0x20000],
        ),
    ];
    for (address, len, erased) in cases {
        let (bus, id, mut host) = dfu_host();
        let data = test_devices::image::test_payload(len, 3);
        host.dfuse_download(address, &data, &mut NoProgress)
            .unwrap();
        let dev = bus.device(id).unwrap();
        let log: Vec<u32> = dev
            .dfuse_memory()
            .unwrap()
            .erase_log()
            .iter()
            .map(|e| e.1)
            .collect();
        assert_eq!(log, erased, "{address:#x}+{len:#x}");
        assert_eq!(
            dev.dfuse_memory().unwrap().read(0, address, len).unwrap(),
            &data[..]
        );
        host.dfuse_verify(address, &data, &mut NoProgress).unwrap();
        assert_eq!(dev.state(), DfuState::DfuIdle);
        assert!(dev.violations().is_empty());
    }
}

#[test]
fn host_refuses_writes_outside_writable_memory() {
    let (_bus, _id, mut host) = dfu_host();
    assert_eq!(
        host.dfuse_download(0x0810_0000, &[1, 2, 3], &mut NoProgress),
        Err(DfuError::BadAddress {
            address: 0x0810_0000
        })
    );
    host.select_alt(1).unwrap();
    assert_eq!(
        host.dfuse_download(0x1FFF_7A10, &[1, 2, 3], &mut NoProgress),
        Err(DfuError::BadAddress {
            address: 0x1FFF_7A10
        })
    );
    // Reading the read-only target works.
    assert_eq!(
        host.dfuse_upload(0x1FFF_7A10, 12, &mut NoProgress).unwrap(),
        vec![0xFF; 12]
    );
}

#[test]
fn device_side_dfuse_errors_are_typed_and_recoverable() {
    // Write without erase -> errCHECK_ERASED.
    let (_bus, _id, mut host) = dfu_host();
    host.dfuse_set_address(BASE).unwrap();
    raw_dnload(&mut host, 2, &[0u8; 64]);
    assert_eq!(
        host.get_status_checked(),
        Err(device_err(DfuStatus::ErrCheckErased))
    );
    assert_eq!(host.recover().unwrap(), Some(DfuStatus::ErrCheckErased));

    // Wrong target: write or erase on the read-only alternate setting -> errTARGET.
    host.select_alt(1).unwrap();
    host.dfuse_set_address(0x1FFF_7A10).unwrap();
    raw_dnload(&mut host, 2, &[0u8; 4]);
    assert_eq!(
        host.get_status_checked(),
        Err(device_err(DfuStatus::ErrTarget))
    );
    host.recover().unwrap();
    assert_eq!(
        host.dfuse_erase_page(0x1FFF_7A10),
        Err(device_err(DfuStatus::ErrTarget))
    );
    host.recover().unwrap();

    // Address outside the memory -> errADDRESS.
    host.select_alt(0).unwrap();
    assert_eq!(
        host.dfuse_set_address(0x2000_0000),
        Err(device_err(DfuStatus::ErrAddress))
    );
    host.recover().unwrap();
    host.dfuse_download(BASE, &[5; 300], &mut NoProgress)
        .unwrap();
}

#[test]
fn mass_erase_then_leave_without_application_comes_back_in_dfu_mode() {
    let (bus, id, mut host) = dfu_host();
    host.dfuse_mass_erase().unwrap();
    assert_eq!(
        bus.device(id)
            .unwrap()
            .dfuse_memory()
            .unwrap()
            .mass_erases(),
        1
    );
    // Mass erase reports 4 x 25 ms busy.
    assert_eq!(bus.sleeps().last(), Some(&Duration::from_millis(100)));
    host.dfuse_leave(BASE).unwrap();
    bus.advance(Duration::from_secs(1));
    let info = bus.info(id).unwrap();
    assert_eq!((info.mode(), info.product_id), (Some(DfuMode::Dfu), 0x0006));
    assert_eq!(bus.device(id).unwrap().status(), DfuStatus::ErrFirmware);
}

#[test]
fn multi_segment_image_on_one_target() {
    let profile = ModelProfile::dfuse_speakerphone();
    let app = image_for(&profile, V2, 1000);
    let (bus, id) = bus_with(profile);
    let segs = [
        DfuseSegment {
            alt_setting: 0,
            address: BASE,
            data: app,
        },
        DfuseSegment {
            alt_setting: 0,
            address: BASE + 0x2_0000,
            data: vec![0xA5; 5000],
        },
    ];
    let report = flash_dfuse(
        bus.open_id(id).unwrap(),
        &segs,
        Some(BASE),
        &options(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert_eq!(report.bytes, 1032 + 5000);
    let dev = bus.device(id).unwrap();
    let log: Vec<u32> = dev
        .dfuse_memory()
        .unwrap()
        .erase_log()
        .iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(log, vec![BASE, BASE + 0x2_0000]);
    assert_eq!(dev.firmware_version(), Some(V2));
}

#[test]
fn dfuse_power_loss_is_recovered_by_reflashing() {
    let profile = ModelProfile::dfuse_speakerphone();
    let app = image_for(&profile, V2, 30_000);
    let (bus, id) = bus_with(profile);
    bus.with_device(id, |d| d.inject(Fault::PowerLossAfter { bytes: 8192 }));
    let segs = [DfuseSegment {
        alt_setting: 0,
        address: BASE,
        data: app,
    }];
    let err = flash_dfuse(
        bus.open_id(id).unwrap(),
        &segs,
        Some(BASE),
        &options(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, DfuError::Transport { .. }), "{err}");
    bus.advance(Duration::from_secs(1));
    assert_eq!(bus.info(id).unwrap().mode(), Some(DfuMode::Dfu));
    assert_eq!(bus.device(id).unwrap().firmware_version(), None);
    let report = flash_dfuse(
        bus.open_id(id).unwrap(),
        &segs,
        Some(BASE),
        &options(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert_eq!(report.device.bcd_device, 0x020E);
}
