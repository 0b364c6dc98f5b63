use std::path::Path;
use std::time::{Duration, Instant};

use dfu::host::{flash, DfuMode, DfuState, FlashOptions, NoProgress};

use super::*;
use crate::image::{build, test_payload};
use crate::profile::{quirk_table, ModelProfile};
use crate::{Fault, VirtualBus};

fn options() -> FlashOptions {
    FlashOptions {
        quirks: quirk_table(),
        ..FlashOptions::default()
    }
}

/// Bytes written once `at_least` were: whole blocks of the profile's transfer size.
fn whole_blocks(p: &ModelProfile, at_least: u64) -> u64 {
    let block = u64::from(p.transfer_size);
    at_least.div_ceil(block) * block
}

fn image(p: &ModelProfile, v: (u8, u8, u16), len: usize) -> Vec<u8> {
    build(
        p.runtime_pid,
        FirmwareVersion::new(v.0, v.1, v.2),
        &test_payload(len, 3),
    )
}

#[test]
fn snapshots_round_trip() {
    let dfu11 = SimDevice::new(ModelProfile::headset_tolerant());
    let dfuse = SimDevice::new(ModelProfile::dfuse_speakerphone());
    let mut erased = DeviceSnapshot::of(&dfu11);
    erased.mode = DfuMode::Dfu;
    erased.app = None;
    erased.received = 7;
    erased.flash.truncate(7);
    for snap in [
        DeviceSnapshot::of(&dfu11),
        DeviceSnapshot::of(&dfuse),
        erased,
    ] {
        let back = DeviceSnapshot::decode(Path::new("x"), &snap.encode()).unwrap();
        assert_eq!(back, snap);
    }
    assert_eq!(DeviceSnapshot::of(&dfuse).dfuse.len(), 2);
    assert!(DeviceSnapshot::of(&dfu11).dfuse.is_empty());
}

#[test]
fn corrupt_files_are_refused_with_the_reason() {
    let good = DeviceSnapshot::of(&SimDevice::new(ModelProfile::headset_tolerant())).encode();
    let text = String::from_utf8_lossy(&good).into_owned();
    let header_end = text.find("\n\n").unwrap();
    let header = &text[..header_end];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "no end of header"),
        (b"something else\n\n".to_vec(), "unknown format"),
        (
            header.replace("mode runtime", "mode sleeping").into_bytes(),
            "",
        ),
        (
            [
                header.replace("mode runtime", "mode sleeping").as_bytes(),
                &good[header_end..],
            ]
            .concat(),
            "unknown mode",
        ),
        (
            [
                header.replace("app 1.0.0", "app 1.x").as_bytes(),
                &good[header_end..],
            ]
            .concat(),
            "bad version",
        ),
        (good[..good.len() - 1].to_vec(), "file holds"),
        ([&good[..], b"!"].concat(), "file holds"),
        (
            [
                header.replace("dfuse 0", "dfuse 1").as_bytes(),
                &good[header_end..],
            ]
            .concat(),
            "do not match their count",
        ),
    ];
    for (bytes, why) in cases {
        let e = DeviceSnapshot::decode(Path::new("dev.simdev"), &bytes).unwrap_err();
        assert!(matches!(e, PersistError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains(why), "{e} (want {why:?})");
        assert!(e.to_string().starts_with("dev.simdev: "), "{e}");
    }
}

#[test]
fn a_state_saved_for_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.simdev");
    DeviceSnapshot::of(&SimDevice::new(ModelProfile::dfuse_speakerphone()))
        .write(&path)
        .unwrap();
    let saved = DeviceSnapshot::read(&path).unwrap();
    let mut other = SimDevice::new(ModelProfile::headset_tolerant());
    let e = saved.apply(&path, &mut other).unwrap_err();
    assert!(e.to_string().contains("DfuSe memories saved"), "{e}");
}

#[test]
fn file_keys_are_plain_names() {
    for (key, file) in [
        ("1209-0003-HS-1", "1209-0003-HS-1"),
        ("../etc/passwd", ".._etc_passwd"),
        ("a b/c\\d", "a_b_c_d"),
    ] {
        assert_eq!(file_key(key), file);
    }
}

#[test]
fn an_interrupted_flash_survives_the_process_and_is_recovered_by_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let profile = ModelProfile::headset_tolerant();
    let img = image(&profile, (2, 0, 0), 8000);
    {
        let bus = VirtualBus::with_store(DeviceStore::open(dir.path()).unwrap());
        let id = bus
            .attach_persistent(SimDevice::new(profile.clone()), "hs")
            .unwrap();
        let saved = DeviceStore::open(dir.path()).unwrap().load("hs").unwrap();
        let saved = saved.expect("saved at attach");
        assert_eq!(
            (saved.mode, saved.app),
            (DfuMode::Runtime, Some(FirmwareVersion::new(1, 0, 0)))
        );
        // The power goes after 3000 bytes: the device drops off mid-download.
        bus.with_device(id, |d| d.inject(Fault::PowerLossAfter { bytes: 3000 }));
        let e = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress);
        assert!(e.is_err());
        assert!(
            bus.persist_errors().is_empty(),
            "{:?}",
            bus.persist_errors()
        );
    }
    // "The host process is gone": only the files remain.
    let store = DeviceStore::open(dir.path()).unwrap();
    let saved = store.load("hs").unwrap().unwrap();
    assert_eq!(saved.mode, DfuMode::Dfu);
    assert_eq!(saved.app, None);
    let cut = whole_blocks(&profile, 3000);
    assert_eq!(saved.received, cut);
    assert_eq!(saved.bytes_written, cut);

    let bus = VirtualBus::with_store(store);
    let id = bus
        .attach_persistent(SimDevice::new(profile.clone()), "hs")
        .unwrap();
    let d = bus.device(id).unwrap();
    assert_eq!(
        (d.mode(), d.state(), d.has_valid_app()),
        (DfuMode::Dfu, DfuState::DfuError, false)
    );
    let report = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap();
    assert_eq!(report.device.bcd_device, 0x0200);
    let saved = DeviceStore::open(dir.path())
        .unwrap()
        .load("hs")
        .unwrap()
        .unwrap();
    assert_eq!(saved.mode, DfuMode::Runtime);
    assert_eq!(saved.app, Some(FirmwareVersion::new(2, 0, 0)));
    assert_eq!(saved.bytes_written, cut + img.len() as u64);
    assert_eq!(saved.flash, img);
}

#[test]
fn a_device_left_in_dfu_mode_with_its_application_comes_back_in_dfu_idle() {
    let dir = tempfile::tempdir().unwrap();
    let profile = ModelProfile::headset_tolerant();
    let path = dir.path().join("hs.simdev");
    let mut snap = DeviceSnapshot::of(&SimDevice::new(profile.clone()));
    snap.mode = DfuMode::Dfu;
    snap.write(&path).unwrap();
    let bus = VirtualBus::with_store(DeviceStore::open(dir.path()).unwrap());
    let id = bus
        .attach_persistent(SimDevice::new(profile), "hs")
        .unwrap();
    let d = bus.device(id).unwrap();
    assert_eq!(
        (d.mode(), d.state(), d.firmware_version()),
        (
            DfuMode::Dfu,
            DfuState::DfuIdle,
            Some(FirmwareVersion::new(1, 0, 0))
        )
    );
}

#[test]
fn the_freeze_hook_stops_the_bus_right_after_the_threshold_state_was_saved() {
    let dir = tempfile::tempdir().unwrap();
    let profile = ModelProfile::headset_tolerant();
    let img = image(&profile, (2, 0, 0), 8000);
    let store = DeviceStore::open(dir.path())
        .unwrap()
        .freeze_after_bytes_written(2500);
    let bus = VirtualBus::with_store(store);
    let cut = whole_blocks(&profile, 2500);
    let id = bus
        .attach_persistent(SimDevice::new(profile), "hs")
        .unwrap();
    let transport = bus.open_id(id).unwrap();
    // The flashing thread blocks for good once frozen; it is left behind.
    std::thread::spawn(move || {
        let _ = flash(transport, &img, &options(), &mut NoProgress);
    });
    let marker = dir.path().join(FROZEN_MARKER);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the bus never froze");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(fs::read_to_string(&marker).unwrap(), format!("{cut}\n"));
    let saved = DeviceStore::open(dir.path())
        .unwrap()
        .load("hs")
        .unwrap()
        .unwrap();
    assert_eq!(
        (saved.mode, saved.app, saved.received),
        (DfuMode::Dfu, None, cut)
    );
}
