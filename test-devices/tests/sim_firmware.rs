//! The `sim-firmware` tool, run as a binary: every profile gets a vendor
//! file whose image that simulated device accepts, and the import command it
//! prints describes the device.

use std::process::{Command, Output};

use dfu::file::{DfuFile, Firmware};
use dfu::host::{flash, FlashOptions, NoProgress};
use test_devices::image::{self, FirmwareVersion};
use test_devices::profile::{by_name, quirk_table, PROFILE_NAMES};
use test_devices::{SimDevice, VirtualBus};

fn sim_firmware(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim-firmware"))
        .args(args)
        .output()
        .expect("sim-firmware runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The simulated-device image inside a vendor file.
fn image_of(file: &DfuFile) -> &[u8] {
    match &file.firmware {
        Firmware::Raw(bytes) => bytes,
        Firmware::DfuSe(image) => &image.targets[0].elements[0].data,
    }
}

#[test]
fn every_profile_gets_a_file_its_device_accepts() {
    let dir = tempfile::tempdir().unwrap();
    for profile in PROFILE_NAMES {
        let device = by_name(profile).unwrap();
        let path = dir.path().join(format!("{profile}.dfu"));
        let out = sim_firmware(&[
            "--profile",
            profile,
            "--version",
            "2.1.7",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{profile}: {}", text(&out.stderr));
        let file = DfuFile::parse(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            (file.suffix.id_vendor, file.suffix.id_product),
            (device.vendor_id, device.runtime_pid),
            "{profile}"
        );
        assert_eq!(file.is_dfuse(), device.dfuse.is_some(), "{profile}");
        let header = image::validate(image_of(&file)).unwrap();
        assert_eq!(
            (header.product_id, header.version),
            (device.runtime_pid, FirmwareVersion::new(2, 1, 7)),
            "{profile}"
        );

        let stdout = text(&out.stdout);
        let command = stdout
            .lines()
            .find_map(|l| l.strip_prefix("import it with: "))
            .unwrap_or_else(|| panic!("{profile}: no import command in {stdout}"));
        assert!(
            command.starts_with(&format!(
                "updater-server catalog import {} --vendor \"Acme Audio\" --model \"{}\" --version 2.1.7 --silent-capable",
                path.display(),
                device.name
            )),
            "{profile}: {command}"
        );
        assert_eq!(
            command.contains(" --needs-replug"),
            device.needs_replug(),
            "{profile}: {command}"
        );
        assert_eq!(
            command.contains(" --product-family "),
            device.family.is_some(),
            "{profile}: {command}"
        );
    }
}

#[test]
fn a_simulated_headset_installs_the_file_and_reports_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fw.dfu");
    let out = sim_firmware(&[
        "--profile",
        "headset_tolerant",
        "--version",
        "3.2.1",
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = DfuFile::parse(&std::fs::read(&path).unwrap()).unwrap();

    let bus = VirtualBus::new();
    let id = bus.attach(SimDevice::new(by_name("headset_tolerant").unwrap()));
    let options = FlashOptions {
        quirks: quirk_table(),
        ..FlashOptions::default()
    };
    flash(
        bus.open_id(id).unwrap(),
        image_of(&file),
        &options,
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(
        bus.device(id).unwrap().firmware_version(),
        Some(FirmwareVersion::new(3, 2, 1))
    );
}

#[test]
fn bad_arguments_are_refused_with_what_would_work() {
    // (arguments, exit code, what stderr says)
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["--profile", "walkie_talkie", "--version", "1.0.0"],
            2,
            "unknown profile \"walkie_talkie\"; one of: headset_needs_replug, headset_tolerant",
        ),
        (
            &["--profile", "headset_tolerant", "--version", "2.1"],
            2,
            "\"2.1\" is not MAJOR.MINOR.PATCH",
        ),
        (
            &["--profile", "headset_tolerant", "--version", "256.0.0"],
            2,
            "\"256.0.0\" is not MAJOR.MINOR.PATCH",
        ),
        (&["--version", "1.0.0"], 2, "--profile <PROFILE>"),
    ];
    for (args, code, says) in cases {
        let out = sim_firmware(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/fw.dfu");
    let out = sim_firmware(&[
        "--profile",
        "headset_tolerant",
        "--version",
        "1.0.0",
        "-o",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("sim-firmware: {}: ", missing.display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn list_names_every_profile() {
    let out = sim_firmware(&["--list"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().collect::<Vec<_>>(), PROFILE_NAMES);
}
