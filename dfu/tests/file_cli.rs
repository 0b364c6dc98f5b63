//! The `dfu inspect` and `dfu build` commands, run as a real binary.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

use dfu::file::{DfuFile, DfuSeTarget, Firmware};
use serde_json::{json, Value};

fn dfu(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfu"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run dfu")
}

fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn inspect_json(path: &str) -> Value {
    let out = dfu(&["inspect", "--json", path], Path::new("."));
    assert!(out.status.success(), "{path}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

#[test]
fn inspect_json_reports_ids_and_content() {
    let table = [
        (
            "dfu-suffix-raw.dfu",
            json!({
                "format": "dfu", "vid": 0x047f, "pid": 0xc056, "bcd_device": 0x0102, "bcd_dfu": 0x0100,
                "has_suffix": true, "payload_len": 20,
                "payload_sha256": "0518d1f0ebc1515607339a8cceff44c92c995bcb69943e0da69454706f4ebdef",
            }),
        ),
        (
            "dfuse-pack-2-targets.dfu",
            json!({
                "format": "dfuse", "vid": 0x047f, "pid": 0xc056, "bcd_device": 0, "bcd_dfu": 0x011a,
                "has_suffix": true,
                "targets": [
                    {"alt": 0, "name": "ST...", "elements": [{"address": 0x0800_0000u32, "size": 16,
                        "sha256": "12f2fa73c549f406c3d7ae1ee4044c65a61acac96bfa907665d353d38e69a800"}]},
                    {"alt": 1, "name": "ST...", "elements": [{"address": 0x0800_4000u32, "size": 3,
                        "sha256": "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282"}]},
                ],
            }),
        ),
        (
            "fwupd-dfuse-named-unnamed.dfu",
            json!({
                "format": "dfuse", "vid": 0x047f, "pid": 0xc056, "bcd_device": 0x0102, "bcd_dfu": 0x011a,
                "has_suffix": true,
                "targets": [
                    {"alt": 0, "name": "Internal Flash", "elements": [{"address": 0x0800_0000u32, "size": 5,
                        "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}]},
                    {"alt": 1, "name": null, "elements": [{"address": 0x1000, "size": 5,
                        "sha256": "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7"}]},
                ],
            }),
        ),
    ];
    for (name, expected) in table {
        assert_eq!(inspect_json(&fixture_path(name)), expected, "{name}");
    }
}

#[test]
fn inspect_text_shows_targets() {
    let out = dfu(
        &["inspect", &fixture_path("fwupd-dfuse-named-unnamed.dfu")],
        Path::new("."),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "format:     DfuSe, 2 target(s)",
        "vendor:     0x047f",
        "device:     0x0102",
        "bcdDFU:     0x011a",
        "target 0:   alt 0 \"Internal Flash\", 1 element(s)",
        "target 1:   alt 1, 1 element(s)",
        "  0x08000000           5 bytes  sha256 2cf24dba",
    ] {
        assert!(text.contains(line), "lacks {line:?}:\n{text}");
    }
}

#[test]
fn inspect_refuses_invalid_files_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture_path("dfu-suffix-raw.dfu")).unwrap();
    bytes[3] ^= 0xff;
    std::fs::write(dir.path().join("bad.dfu"), &bytes).unwrap();
    std::fs::write(dir.path().join("plain.bin"), b"just some bytes, no suffix").unwrap();
    let table = [
        (
            "bad.dfu",
            "bad.dfu: dwCRC at offset 0x20: stored 0x3e7da9c2, computed 0x",
        ),
        (
            "plain.bin",
            "plain.bin: no DFU suffix: ucDfuSignature at offset 0x12",
        ),
        ("missing.dfu", "missing.dfu: "),
    ];
    for (name, expected) in table {
        for args in [&["inspect", name][..], &["inspect", "--json", name]] {
            let out = dfu(args, dir.path());
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            assert!(out.stdout.is_empty(), "{args:?}");
            assert!(
                stderr(&out).starts_with(&format!("dfu: {expected}")),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn build_writes_dfu_and_dfuse_files() {
    let dir = tempfile::tempdir().unwrap();
    let image: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
    std::fs::write(dir.path().join("fw.bin"), &image).unwrap();
    let table: &[(&[&str], DfuFile)] = &[
        (
            &[
                "--vid",
                "0x047f",
                "--pid",
                "0xc056",
                "--bcd-device",
                "0x0102",
            ],
            DfuFile::new_raw(0x047f, 0xc056, 0x0102, image.clone()),
        ),
        (&[], DfuFile::new_raw(0xffff, 0xffff, 0xffff, image.clone())),
        (
            &[
                "--vid",
                "1155",
                "--pid",
                "0xdf11",
                "--dfuse",
                "--address",
                "0x08000000",
            ],
            DfuFile::new_dfuse(
                1155,
                0xdf11,
                0xffff,
                vec![DfuSeTarget::new(0, None, [(0x0800_0000, image.clone())])],
            )
            .unwrap(),
        ),
        (
            &[
                "--vid",
                "0x0483",
                "--pid",
                "0xdf11",
                "--dfuse",
                "--address",
                "0x90000000",
                "--alt",
                "1",
                "--name",
                "External",
            ],
            DfuFile::new_dfuse(
                0x0483,
                0xdf11,
                0xffff,
                vec![DfuSeTarget::new(
                    1,
                    Some("External"),
                    [(0x9000_0000, image.clone())],
                )],
            )
            .unwrap(),
        ),
    ];
    for (i, (extra, expected)) in table.iter().enumerate() {
        let out_name = format!("out{i}.dfu");
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        args.extend(["fw.bin", "-o", &out_name]);
        let out = dfu(&args, dir.path());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let written = std::fs::read(dir.path().join(&out_name)).unwrap();
        assert_eq!(written, expected.to_bytes(), "{args:?}");
        assert_eq!(
            DfuFile::parse(&written).unwrap().firmware,
            expected.firmware,
            "{args:?}"
        );
    }
    // What build wrote, inspect reads.
    let json = inspect_json(dir.path().join("out3.dfu").to_str().unwrap());
    assert_eq!(json["targets"][0]["name"], "External");
    assert_eq!(json["targets"][0]["elements"][0]["address"], 0x9000_0000u32);
    assert!(matches!(
        DfuFile::parse(&std::fs::read(dir.path().join("out0.dfu")).unwrap())
            .unwrap()
            .firmware,
        Firmware::Raw(_)
    ));
}

#[test]
fn build_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw.bin"), b"firmware").unwrap();
    std::fs::copy(
        fixture_path("dfu-suffix-raw.dfu"),
        dir.path().join("has-suffix.bin"),
    )
    .unwrap();
    let table: &[(&[&str], i32, &str)] = &[
        (
            &["build", "--dfuse", "fw.bin", "-o", "x.dfu"],
            2,
            "--address",
        ),
        (
            &["build", "--address", "0x100", "fw.bin", "-o", "x.dfu"],
            2,
            "--dfuse",
        ),
        (
            &["build", "--vid", "0x10000", "fw.bin", "-o", "x.dfu"],
            2,
            "does not fit in 16 bits",
        ),
        (
            &["build", "--pid", "zz", "fw.bin", "-o", "x.dfu"],
            2,
            "is not a number",
        ),
        (
            &["build", "has-suffix.bin", "-o", "x.dfu"],
            1,
            "has-suffix.bin: already ends with a DFU suffix",
        ),
        (
            &[
                "build",
                "--dfuse",
                "--address",
                "0x100",
                "--name",
                &"n".repeat(300),
                "fw.bin",
                "-o",
                "x.dfu",
            ],
            1,
            "targets[0].name: 300 bytes",
        ),
        (
            &[
                "build",
                "--dfuse",
                "--address",
                "0xfffffffc",
                "fw.bin",
                "-o",
                "x.dfu",
            ],
            1,
            "8 bytes at 0xfffffffc",
        ),
    ];
    for (args, code, text) in table {
        let out = dfu(args, dir.path());
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(text), "{args:?}: {}", stderr(&out));
        assert!(!dir.path().join("x.dfu").exists(), "{args:?} wrote a file");
    }
}
