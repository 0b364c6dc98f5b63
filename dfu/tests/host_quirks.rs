//! Every quirk: the model fails (or misbehaves) without it and works with it.

mod host_common;

use std::time::Duration;

use dfu::host::{
    flash, DfuError, DfuHost, DfuMode, DfuState, DfuStatus, FlashOutcome, ManifestOutcome,
    NoProgress, TransportError,
};
use dfu::quirks::{PollTimeoutPolicy, QuirkEntry, QuirkTable, Quirks};
use host_common::*;
use test_devices::ModelProfile;

fn run(
    profile: ModelProfile,
    with_quirks: bool,
) -> (
    Result<dfu::host::FlashReport, DfuError>,
    test_devices::VirtualBus,
    test_devices::DeviceId,
) {
    let img = image_for(&profile, V2, 4000);
    let (bus, id) = bus_with(profile);
    let opts = if with_quirks {
        options()
    } else {
        options_without_quirks()
    };
    let r = flash(bus.open_id(id).unwrap(), &img, &opts, &mut NoProgress);
    (r, bus, id)
}

#[test]
fn ignore_poll_timeout_skips_bogus_waits() {
    let (without, bus, _) = run(ModelProfile::bogus_poll_timeout(), false);
    let report = without.unwrap();
    // 4032 bytes in 1024-byte blocks: 4 blocks, each with a (useless) 2 s wait.
    assert_eq!(bus.sleeps(), vec![Duration::from_secs(2); 4]);
    assert_eq!(report.poll_wait, Duration::from_secs(8));

    let (with, bus, id) = run(ModelProfile::bogus_poll_timeout(), true);
    assert_eq!(with.unwrap().poll_wait, Duration::ZERO);
    assert!(bus.sleeps().is_empty());
    assert!(bus.device(id).unwrap().violations().is_empty());
}

#[test]
fn minimum_poll_timeout_for_devices_reporting_zero() {
    let (without, bus, id) = run(ModelProfile::zero_poll_timeout(), false);
    assert_eq!(
        without.unwrap_err(),
        DfuError::Transport {
            op: "GETSTATUS",
            source: TransportError::Stall
        }
    );
    let dev = bus.device(id).unwrap();
    assert_eq!(dev.violations().len(), 1);
    assert_eq!(
        (dev.state(), dev.status()),
        (DfuState::DfuError, DfuStatus::ErrStalledPkt)
    );

    let (with, bus, id) = run(ModelProfile::zero_poll_timeout(), true);
    assert_eq!(with.unwrap().outcome, FlashOutcome::Running);
    let mut expected = vec![Duration::from_millis(10); 4];
    expected.push(Duration::from_millis(100));
    assert_eq!(bus.sleeps(), expected);
    assert!(bus.device(id).unwrap().violations().is_empty());
}

#[test]
fn manifest_polling_is_needed_to_commit_the_firmware() {
    let (without, bus, id) = run(ModelProfile::manifest_polling(), false);
    let report = without.unwrap();
    assert_eq!(report.manifest, ManifestOutcome::NeedsReset);
    assert_eq!(report.outcome, FlashOutcome::InDfuMode);
    let dev = bus.device(id).unwrap();
    assert_eq!(dev.firmware_version(), None);
    assert_eq!(dev.status(), DfuStatus::ErrFirmware);

    let (with, bus, id) = run(ModelProfile::manifest_polling(), true);
    let report = with.unwrap();
    assert_eq!(report.manifest, ManifestOutcome::Complete);
    assert_eq!(report.outcome, FlashOutcome::Running);
    assert_eq!(bus.device(id).unwrap().firmware_version(), Some(V2));
}

#[test]
fn extra_reset_on_attach_gets_the_device_out_of_dfu_mode() {
    let (without, bus, id) = run(ModelProfile::extra_reset(), false);
    assert_eq!(without.unwrap().outcome, FlashOutcome::InDfuMode);
    assert_eq!(bus.info(id).unwrap().mode(), Some(DfuMode::Dfu));

    let (with, bus, id) = run(ModelProfile::extra_reset(), true);
    assert_eq!(with.unwrap().outcome, FlashOutcome::Running);
    assert_eq!(bus.info(id).unwrap().bcd_device, 0x020E);
}

#[test]
fn no_upload_skips_verification_on_devices_that_stall_upload() {
    let (without, bus, id) = run(ModelProfile::broken_upload(), false);
    assert_eq!(
        without.unwrap_err(),
        DfuError::Transport {
            op: "UPLOAD",
            source: TransportError::Stall
        }
    );
    assert_eq!(bus.device(id).unwrap().status(), DfuStatus::ErrStalledPkt);

    let (with, _, _) = run(ModelProfile::broken_upload(), true);
    let report = with.unwrap();
    assert!(!report.verified);
    assert_eq!(report.outcome, FlashOutcome::Running);
}

#[test]
fn forced_transfer_size_overrides_the_descriptor() {
    let (without, _, _) = run(ModelProfile::small_blocks(), false);
    assert_eq!(
        without.unwrap_err(),
        DfuError::Transport {
            op: "DNLOAD",
            source: TransportError::Stall
        }
    );
    let (with, bus, id) = run(ModelProfile::small_blocks(), true);
    assert_eq!(with.unwrap().outcome, FlashOutcome::Running);
    // 4032 bytes / 64 = 63 blocks, each with one 5 ms poll, then a 100 ms manifestation.
    let mut expected = vec![Duration::from_millis(5); 63];
    expected.push(Duration::from_millis(100));
    assert_eq!(bus.sleeps(), expected);
    assert_eq!(bus.device(id).unwrap().firmware_version(), Some(V2));
}

#[test]
fn will_detach_quirk_avoids_the_reset_that_confuses_the_device() {
    let (without, bus, id) = run(ModelProfile::silent_detach(), false);
    assert!(matches!(
        without.unwrap_err(),
        DfuError::Reenumeration {
            during: "switching to update mode",
            source: TransportError::Timeout
        }
    ));
    assert_eq!(bus.info(id).unwrap().mode(), Some(DfuMode::Runtime));

    let (with, _, _) = run(ModelProfile::silent_detach(), true);
    assert_eq!(with.unwrap().outcome, FlashOutcome::Running);
}

#[test]
fn long_reenumeration_needs_a_longer_wait() {
    let (without, bus, _) = run(ModelProfile::slow_reenumeration(), false);
    assert!(matches!(
        without.unwrap_err(),
        DfuError::Reenumeration {
            source: TransportError::Timeout,
            ..
        }
    ));
    // The host gave up after the default 5 s (virtual time).
    assert_eq!(bus.now(), Duration::from_secs(5));

    let (with, bus, _) = run(ModelProfile::slow_reenumeration(), true);
    assert_eq!(with.unwrap().outcome, FlashOutcome::Running);
    // Two re-enumerations of 45 s each (plus 4 polls of 5 ms and a 100 ms manifest).
    assert_eq!(bus.now(), Duration::from_millis(90_000 + 20 + 100));
}

#[test]
fn no_pid_change_matches_the_dfu_mode_device_by_the_same_pid() {
    let profile = ModelProfile::desk_phone_no_pid_change();
    let (bus, id) = bus_with(profile.clone());
    let t = bus.open_id(id).unwrap();
    let quirked = DfuHost::new(t.clone(), test_devices::profile::quirk_table()).unwrap();
    let m = quirked.reenumeration_matcher(DfuMode::Dfu);
    assert_eq!(m.product_id, Some(0x000B));
    assert_eq!(m.serial, None);
    assert_eq!(m.port_path.as_deref(), Some("1-1"));
    let plain = DfuHost::new(t, QuirkTable::new()).unwrap();
    assert_eq!(plain.reenumeration_matcher(DfuMode::Dfu).product_id, None);

    let (with, _, _) = run(profile, true);
    let report = with.unwrap();
    assert_eq!(report.device.product_id, 0x000B);
    assert_eq!(report.outcome, FlashOutcome::Running);
}

#[test]
fn quirk_table_lookup_respects_vid_pid_and_bcd_range() {
    let mut t = QuirkTable::new();
    t.add(QuirkEntry {
        vendor_id: 0x1209,
        product_id: 0x0042,
        bcd_device: Some(0x0100..=0x01FF),
        quirks: Quirks {
            no_upload: true,
            ..Quirks::default()
        },
    });
    t.add(QuirkEntry {
        vendor_id: 0x1209,
        product_id: 0x0042,
        bcd_device: None,
        quirks: Quirks {
            transfer_size: Some(64),
            ..Quirks::default()
        },
    });
    let cases = [
        (0x1209, 0x0042, 0x0150, true, Some(64)),
        (0x1209, 0x0042, 0x0200, false, Some(64)),
        (0x1209, 0x0043, 0x0150, false, None),
        (0x1208, 0x0042, 0x0150, false, None),
    ];
    for (vid, pid, bcd, no_upload, ts) in cases {
        let q = t.lookup(vid, pid, bcd);
        assert_eq!(
            (q.no_upload, q.transfer_size),
            (no_upload, ts),
            "{vid:04x}:{pid:04x} {bcd:04x}"
        );
    }
}

#[test]
fn poll_policy_and_reenumeration_cap() {
    let ms = Duration::from_millis;
    let cases = [
        (PollTimeoutPolicy::AsReported, ms(0), ms(0)),
        (PollTimeoutPolicy::AsReported, ms(7), ms(7)),
        (PollTimeoutPolicy::Ignore, ms(2000), ms(0)),
        (PollTimeoutPolicy::AtLeast(ms(10)), ms(0), ms(10)),
        (PollTimeoutPolicy::AtLeast(ms(10)), ms(25), ms(25)),
    ];
    for (policy, reported, waited) in cases {
        let q = Quirks {
            poll_timeout: policy,
            ..Quirks::default()
        };
        assert_eq!(q.poll_wait(reported), waited, "{policy:?}");
    }
    let q = Quirks {
        reenumeration_timeout: Some(Duration::from_secs(600)),
        ..Quirks::default()
    };
    assert_eq!(q.reenumeration_timeout(), Duration::from_secs(60));
    assert_eq!(
        Quirks::default().reenumeration_timeout(),
        Duration::from_secs(5)
    );
}

#[test]
fn builtin_table_has_entries_for_known_field_quirks() {
    let t = QuirkTable::builtin();
    assert_eq!(
        t.lookup(0x1d50, 0x6001, 0).poll_timeout,
        PollTimeoutPolicy::Ignore
    );
    assert!(t.lookup(0x0483, 0xdf11, 0x2200).no_pid_change);
    assert_eq!(t.lookup(0x1234, 0x5678, 0), Quirks::default());
}
