//! Property tests: any transfer size / image size flashes and verifies; a power loss at any
//! byte leaves a device that re-flashing recovers.

mod host_common;

use dfu::host::{flash, FlashOutcome, NoProgress};
use host_common::*;
use proptest::prelude::*;
use test_devices::{Fault, ModelProfile};

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_transfer_and_image_size_flashes_and_verifies(
        transfer_size in 1u16..=4096,
        payload in 0usize..20_000,
        busy_ms in 0u64..4,
    ) {
        let profile = ModelProfile {
            transfer_size,
            block_busy: std::time::Duration::from_millis(busy_ms),
            poll_timeout: std::time::Duration::from_millis(busy_ms),
            ..ModelProfile::headset_tolerant()
        };
        let img = image_for(&profile, V2, payload);
        let (bus, id) = bus_with(profile);
        let report = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap();
        prop_assert_eq!(report.outcome, FlashOutcome::Running);
        prop_assert!(report.verified);
        let blocks = img.len().div_ceil(usize::from(transfer_size));
        // One poll per block when the device is busy, plus the manifestation poll.
        let polls = if busy_ms > 0 { blocks } else { 0 } + 1;
        prop_assert_eq!(bus.sleeps().len(), polls);
        let dev = bus.device(id).unwrap();
        prop_assert_eq!(dev.flash(), &img[..]);
        prop_assert!(dev.violations().is_empty());
    }

    #[test]
    fn power_loss_at_any_byte_is_recoverable(cut in 1usize..9000) {
        let profile = ModelProfile::headset_tolerant();
        let img = image_for(&profile, V2, 9000);
        let (bus, id) = bus_with(profile);
        bus.with_device(id, |d| d.inject(Fault::PowerLossAfter { bytes: cut }));
        let first = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress);
        prop_assert!(first.is_err());
        prop_assert_eq!(bus.device(id).unwrap().firmware_version(), None);
        bus.replug(id);
        let report = flash(bus.open_id(id).unwrap(), &img, &options(), &mut NoProgress).unwrap();
        prop_assert_eq!(report.outcome, FlashOutcome::Running);
        prop_assert_eq!(bus.device(id).unwrap().firmware_version(), Some(V2));
    }
}
