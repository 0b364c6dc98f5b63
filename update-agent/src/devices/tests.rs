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

mod actions {
    use std::path::Path;

    use catalog::assignment::DeploymentType;
    use catalog::package::{UpdateProtocol, Version, VersionFormat};
    use catalog::protocol::{DeviceReport, DfuState};
    use dfu::file::DfuFile;
    use dfu::host::{FlashOptions, NoProgress};
    use test_devices::image::{build, test_payload};
    use test_devices::profile::quirk_table;
    use test_devices::{BusEvent, FirmwareVersion, ModelProfile};

    use super::super::*;
    use crate::config::SimulatedDevice;
    use crate::flasher::{install, Installed};
    use crate::schedule::host::PowerState;

    /// A headset (DFU, telephony) `HS-1` and our wireless headset (HID only) `WH-1`.
    fn desk(state_dir: Option<&Path>) -> SimDevices {
        let devices = [
            SimulatedDevice {
                profile: Some("headset_tolerant".into()),
                serial: Some("HS-1".into()),
                ..SimulatedDevice::default()
            },
            SimulatedDevice {
                hid: Some("our_wireless_headset".into()),
                serial: Some("WH-1".into()),
                ..SimulatedDevice::default()
            },
        ];
        SimDevices::open(&devices, state_dir, None).unwrap()
    }

    fn find<'a>(inv: &'a [DeviceReport], serial: &str) -> Option<&'a DeviceReport> {
        inv.iter().find(|d| d.serial.as_deref() == Some(serial))
    }

    /// `(serial, attached, in_call)` for both devices, as a scan sees them.
    fn seen(sim: &SimDevices) -> Vec<(&'static str, bool, bool)> {
        let inv = sim.inventory().unwrap();
        ["HS-1", "WH-1"]
            .into_iter()
            .map(|s| {
                let d = find(&inv, s);
                (s, d.is_some(), d.is_some_and(|d| d.in_call))
            })
            .collect()
    }

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn write(dir: &Path, name: &str, content: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), content).unwrap();
    }

    #[test]
    fn action_lines_round_trip_and_bad_lines_say_why() {
        let a = |s: &str| s.to_owned();
        let good = [
            ("unplug HS-1", SimAction::Unplug { serial: a("HS-1") }),
            ("plug HS-1", SimAction::Plug { serial: a("HS-1") }),
            ("replug HS-1", SimAction::Replug { serial: a("HS-1") }),
            (
                "call HS-1 on",
                SimAction::Call {
                    serial: a("HS-1"),
                    active: true,
                },
            ),
            (
                "call HS-1 off",
                SimAction::Call {
                    serial: a("HS-1"),
                    active: false,
                },
            ),
        ];
        for (line, action) in &good {
            assert_eq!(action.to_string(), *line);
            assert_eq!(line.parse::<SimAction>().as_ref(), Ok(action), "{line}");
            // As a file holds it: a trailing newline, stray blanks.
            let padded = format!("  {}\n\n", line.replace(' ', "  "));
            assert_eq!(
                padded.parse::<SimAction>().as_ref(),
                Ok(action),
                "{padded:?}"
            );
        }
        let usage = |line: &str, usage| ParseActionError::Usage {
            line: line.into(),
            usage,
        };
        let bad = [
            ("", ParseActionError::Empty),
            (" \n\t\n", ParseActionError::Empty),
            (
                "wiggle HS-1",
                ParseActionError::UnknownVerb("wiggle".into()),
            ),
            (
                "Unplug HS-1",
                ParseActionError::UnknownVerb("Unplug".into()),
            ),
            ("unplug", usage("unplug", "unplug SERIAL")),
            ("plug A B", usage("plug A B", "plug SERIAL")),
            ("replug", usage("replug", "replug SERIAL")),
            ("call HS-1", usage("call HS-1", "call SERIAL on|off")),
            (
                "call HS-1 maybe",
                usage("call HS-1 maybe", "call SERIAL on|off"),
            ),
            ("unplug HS-1\nplug HS-1", ParseActionError::SeveralLines),
        ];
        for (line, err) in bad {
            assert_eq!(line.parse::<SimAction>(), Err(err), "{line:?}");
        }
    }

    #[test]
    fn queued_actions_reach_the_bus_at_the_next_scan() {
        let unplug = |s: &str| SimAction::Unplug { serial: s.into() };
        let plug = |s: &str| SimAction::Plug { serial: s.into() };
        let replug = |s: &str| SimAction::Replug { serial: s.into() };
        let call = |s: &str, active| SimAction::Call {
            serial: s.into(),
            active,
        };
        // (actions queued, then (serial, attached, in_call) as the scan sees them)
        let table = [
            (vec![], [("HS-1", true, false), ("WH-1", true, false)]),
            (
                vec![unplug("HS-1")],
                [("HS-1", false, false), ("WH-1", true, false)],
            ),
            (
                vec![unplug("HS-1"), plug("HS-1")],
                [("HS-1", true, false), ("WH-1", true, false)],
            ),
            (
                vec![replug("HS-1")],
                [("HS-1", true, false), ("WH-1", true, false)],
            ),
            (
                vec![unplug("WH-1")],
                [("HS-1", true, false), ("WH-1", false, false)],
            ),
            (
                vec![call("HS-1", true)],
                [("HS-1", true, true), ("WH-1", true, false)],
            ),
            (
                vec![call("HS-1", true), call("HS-1", false)],
                [("HS-1", true, false), ("WH-1", true, false)],
            ),
            (
                vec![call("WH-1", true)],
                [("HS-1", true, false), ("WH-1", true, true)],
            ),
            // A call on an unplugged headset shows once it is back.
            (
                vec![unplug("HS-1"), call("HS-1", true), plug("HS-1")],
                [("HS-1", true, true), ("WH-1", true, false)],
            ),
        ];
        for (actions, expected) in table {
            let dir = tempfile::tempdir().unwrap();
            let sim = desk(Some(dir.path()));
            for a in &actions {
                queue_action(dir.path(), a).unwrap();
            }
            assert_eq!(seen(&sim), expected, "{actions:?}");
            if !actions.is_empty() {
                assert_eq!(dir_names(&actions_dir(dir.path())), Vec::<String>::new());
            }
            // Seeing the directory again applies nothing twice.
            assert_eq!(sim.apply_actions(), Vec::new(), "{actions:?}");
            assert_eq!(seen(&sim), expected, "{actions:?}");
        }
    }

    #[test]
    fn a_call_holds_the_update_back_through_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        let sim = desk(Some(dir.path()));
        let held = |sim: &SimDevices| {
            let inv = sim.inventory().unwrap();
            let hs = find(&inv, "HS-1").unwrap();
            crate::pipeline::guard(DeploymentType::Automatic, hs, None, PowerState::Awake)
        };
        assert_eq!(held(&sim), None);
        let on = SimAction::Call {
            serial: "HS-1".into(),
            active: true,
        };
        queue_action(dir.path(), &on).unwrap();
        let why = held(&sim).expect("held back during the call");
        assert!(why.contains("in a call"), "{why}");
        let off = SimAction::Call {
            serial: "HS-1".into(),
            active: false,
        };
        queue_action(dir.path(), &off).unwrap();
        assert_eq!(held(&sim), None);
    }

    #[test]
    fn a_replug_reenumerates_and_runs_what_the_flash_holds() {
        let dir = tempfile::tempdir().unwrap();
        let config = [SimulatedDevice {
            profile: Some("headset_needs_replug".into()),
            serial: Some("HS-R".into()),
            ..SimulatedDevice::default()
        }];
        let sim = SimDevices::open(&config, Some(dir.path()), None).unwrap();
        let report = find(&sim.inventory().unwrap(), "HS-R").unwrap().clone();
        assert_eq!(report.firmware_version.as_deref(), Some("1.0.0"));
        let profile = ModelProfile::headset_needs_replug();
        let image = build(
            profile.runtime_pid,
            FirmwareVersion::new(3, 1, 0),
            &test_payload(20_000, 7),
        );
        let file = DfuFile::new_raw(profile.vendor_id, profile.runtime_pid, 0xffff, image);
        let options = FlashOptions {
            quirks: quirk_table(),
            ..FlashOptions::default()
        };
        let got = install(
            &sim,
            &report,
            &file.to_bytes(),
            UpdateProtocol::Dfu,
            &Version::parse("3.1.0", VersionFormat::Plain).unwrap(),
            &options,
            &mut NoProgress,
        )
        .unwrap();
        assert_eq!(got, Installed::AwaitingReplug);
        let before = find(&sim.inventory().unwrap(), "HS-R").map(|d| d.firmware_version.clone());
        assert_ne!(
            before,
            Some(Some("3.1.0".into())),
            "not running it before the replug"
        );

        let events = sim.bus().history().len();
        queue_action(
            dir.path(),
            &SimAction::Replug {
                serial: "HS-R".into(),
            },
        )
        .unwrap();
        let inv = sim.inventory().unwrap();
        let after = find(&inv, "HS-R").expect("back on the bus");
        assert_eq!(after.dfu, DfuState::Runtime);
        assert_eq!(after.firmware_version.as_deref(), Some("3.1.0"));
        let new: Vec<&'static str> = sim.bus().history()[events..]
            .iter()
            .map(|e| match e {
                BusEvent::Detached { .. } => "detached",
                BusEvent::Attached { .. } => "attached",
            })
            .collect();
        assert_eq!(
            new,
            ["detached", "attached"],
            "one power cycle, one enumeration"
        );
        // The next scan sees the same device, not a second replug.
        sim.inventory().unwrap();
        assert_eq!(sim.bus().history().len(), events + 2);
    }

    #[test]
    fn actions_apply_in_file_name_order() {
        // (file name, line) written in this order; the names decide.
        let table: [(&[(&str, &str)], bool); 3] = [
            (
                &[
                    ("0002-b.action", "plug HS-1"),
                    ("0001-a.action", "unplug HS-1"),
                ],
                true,
            ),
            (
                &[
                    ("0001-a.action", "plug HS-1"),
                    ("0002-b.action", "unplug HS-1"),
                ],
                false,
            ),
            (
                &[("10-b.action", "unplug HS-1"), ("09-a.action", "plug HS-1")],
                false,
            ),
        ];
        for (files, attached) in table {
            let dir = tempfile::tempdir().unwrap();
            let sim = desk(Some(dir.path()));
            for (name, line) in files {
                write(&actions_dir(dir.path()), name, line.as_bytes());
            }
            assert_eq!(seen(&sim)[0], ("HS-1", attached, false), "{files:?}");
        }
        // queue_action numbers files after everything there, in queue order.
        let dir = tempfile::tempdir().unwrap();
        write(&actions_dir(dir.path()), "000041-x.action.rejected", b"x");
        let queued: Vec<String> = ["A", "B", "C"]
            .into_iter()
            .map(|s| {
                let p = queue_action(dir.path(), &SimAction::Replug { serial: s.into() }).unwrap();
                p.file_name().unwrap().to_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            queued,
            [
                "000042-replug.action",
                "000043-replug.action",
                "000044-replug.action"
            ]
        );
        let e = queue_action(
            dir.path(),
            &SimAction::Plug {
                serial: "A B".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, QueueActionError::Serial(_)), "{e}");
        let e = queue_action(
            dir.path(),
            &SimAction::Plug {
                serial: String::new(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, QueueActionError::Serial(_)), "{e}");
    }

    #[test]
    fn bad_action_files_are_rejected_and_the_rest_applied() {
        let dir = tempfile::tempdir().unwrap();
        let sim = desk(Some(dir.path()));
        let actions = actions_dir(dir.path());
        let files: [(&str, &[u8]); 7] = [
            ("0001-ok.action", b"unplug HS-1\n"),
            ("0002-typo.action", b"wiggle HS-1\n"),
            ("0003-unknown.action", b"unplug NOPE\n"),
            ("0004-bad-call.action", b"call WH-1 maybe\n"),
            ("0005-two.action", b"plug HS-1\nunplug HS-1\n"),
            ("0006-binary.action", b"\xff\xfe call WH-1 on"),
            ("0007-ok.action", b"call WH-1 on"),
        ];
        for (name, content) in files {
            write(&actions, name, content);
        }
        // Not (yet) an action: a queuer's temporary file, and a directory
        // someone named like one (unreadable as a file).
        write(&actions, ".tmpXYZ", b"plug HS-1");
        std::fs::create_dir(actions.join("0008-dir.action")).unwrap();
        // A link out of the directory is never followed (its target keeps
        // its content), and a long file is not read whole.
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, b"unplug HS-1").unwrap();
        std::os::unix::fs::symlink(&outside, actions.join("0009-link.action")).unwrap();
        write(&actions, "0010-long.action", &[b'x'; 4096]);

        assert_eq!(seen(&sim), [("HS-1", false, false), ("WH-1", true, true)]);
        assert_eq!(
            dir_names(&actions),
            [
                ".tmpXYZ",
                "0002-typo.action.rejected",
                "0003-unknown.action.rejected",
                "0004-bad-call.action.rejected",
                "0005-two.action.rejected",
                "0006-binary.action.rejected",
                "0008-dir.action.rejected",
                "0009-link.action.rejected",
                "0010-long.action.rejected",
            ]
        );
        // Rejected files are never retried.
        assert_eq!(sim.apply_actions(), Vec::new());
        assert_eq!(dir_names(&actions).len(), 9);
        assert_eq!(std::fs::read(&outside).unwrap(), b"unplug HS-1");
    }

    #[test]
    fn a_serial_two_devices_share_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let devices = [
            SimulatedDevice {
                profile: Some("headset_tolerant".into()),
                serial: Some("SAME".into()),
                ..SimulatedDevice::default()
            },
            SimulatedDevice {
                hid: Some("other_vendor_headset".into()),
                serial: Some("SAME".into()),
                ..SimulatedDevice::default()
            },
        ];
        let sim = SimDevices::open(&devices, Some(dir.path()), None).unwrap();
        queue_action(
            dir.path(),
            &SimAction::Unplug {
                serial: "SAME".into(),
            },
        )
        .unwrap();
        assert_eq!(sim.inventory().unwrap().len(), 2, "nothing unplugged");
        assert_eq!(
            dir_names(&actions_dir(dir.path())),
            ["000001-unplug.action.rejected"]
        );
    }

    #[test]
    fn without_an_actions_directory_nothing_happens() {
        // A state directory without actions: scans work, nothing is created.
        let dir = tempfile::tempdir().unwrap();
        let sim = desk(Some(dir.path()));
        assert_eq!(seen(&sim), [("HS-1", true, false), ("WH-1", true, false)]);
        assert!(!actions_dir(dir.path()).exists());
        assert_eq!(sim.apply_actions(), Vec::new());

        // No state directory: no channel, whatever is on disk.
        let sim = desk(None);
        assert_eq!(sim.apply_actions(), Vec::new());
        assert_eq!(seen(&sim), [("HS-1", true, false), ("WH-1", true, false)]);
    }
}
