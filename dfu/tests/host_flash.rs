//! End-to-end flashing of every model profile through the simulated bus.

mod host_common;

use std::time::Duration;

use dfu::host::{flash, DfuMode, FlashOutcome, ManifestOutcome, Phase};
use host_common::*;
use test_devices::ModelProfile;

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
    let last_dl = rec
        .reports
        .iter()
        .filter(|r| r.0 == Phase::Download)
        .last()
        .unwrap();
    assert_eq!(
        *last_dl,
        (Phase::Download, img.len() as u64, img.len() as u64)
    );
}
