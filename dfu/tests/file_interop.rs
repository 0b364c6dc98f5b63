//! Round trips with the real tools: dfu-util's `dfu-suffix` and `dfuse-pack`,
//! and fwupd's `fwupdtool`. Files they make must read correctly; files we
//! write must pass `dfu-suffix -c`, `dfuse-pack -d` and
//! `fwupdtool firmware-parse`.
//!
//! The tools are required: CI installs `dfu-util` and `fwupd` (see `.ci/run`),
//! and a missing tool fails the test rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dfu::file::{DfuFile, DfuSeTarget, Firmware};

/// The path of `name` on `PATH`, or a failed test saying what to install.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: install the `{package}` package (apt-get install {package}); these interop tests do not skip")
        })
}

/// Runs a tool in `dir` with no stdin and returns its output, whatever its status.
///
/// `fwupdtool` keeps a state database (`pending.db`) and caches under its
/// local state directory, `/var` by default: parallel tests sharing it fail
/// with "database is locked", and a non-root user cannot write it at all.
/// `FWUPD_LOCALSTATEDIR` gives each call the test's own directory; the DFU
/// tools ignore it.
fn run(dir: &Path, program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("FWUPD_LOCALSTATEDIR", dir.join("fwupd-localstate"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a tool and insists it succeeds.
fn run_ok(dir: &Path, program: &Path, args: &[&str]) -> String {
    let output = run(dir, program, args);
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn dfu_suffix() -> PathBuf {
    tool("dfu-suffix", "dfu-util")
}
fn dfuse_pack() -> PathBuf {
    tool("dfuse-pack", "dfu-util")
}
fn fwupdtool() -> PathBuf {
    tool("fwupdtool", "fwupd")
}

/// `fwupdtool firmware-parse FILE KIND` output (an XML dump); fails on error.
fn fwupd_parse(dir: &Path, file: &str, kind: &str) -> String {
    let out = run_ok(dir, &fwupdtool(), &["firmware-parse", file, kind]);
    assert!(
        out.contains("<firmware gtype="),
        "fwupdtool printed no firmware:\n{out}"
    );
    out
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn we_read_what_dfu_suffix_writes() {
    let dir = tempfile::tempdir().unwrap();
    // (extra dfu-suffix arguments, expected vid, pid, bcdDevice, bcdDFU)
    let table: &[(&[&str], u16, u16, u16, u16)] = &[
        (&[], 0xffff, 0xffff, 0xffff, 0x0100),
        (
            &["-v", "0x047f", "-p", "0xc056", "-d", "0x0102"],
            0x047f,
            0xc056,
            0x0102,
            0x0100,
        ),
        (
            &["-v", "0x0483", "-p", "0xdf11", "-S", "0x0100"],
            0x0483,
            0xdf11,
            0xffff,
            0x0100,
        ),
    ];
    for (i, (args, vid, pid, dev, bcd_dfu)) in table.iter().enumerate() {
        let payload = data(1000 + i, i as u8);
        let name = format!("suffixed{i}.bin");
        write(dir.path(), &name, &payload);
        let mut full = args.to_vec();
        full.extend(["-a", name.as_str()]);
        run_ok(dir.path(), &dfu_suffix(), &full);
        let file =
            DfuFile::parse(&read(dir.path(), &name)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let s = file.suffix;
        assert_eq!(
            (s.id_vendor, s.id_product, s.bcd_device, s.bcd_dfu, s.length),
            (*vid, *pid, *dev, *bcd_dfu, 16),
            "{args:?}"
        );
        assert_eq!(file.firmware, Firmware::Raw(payload), "{args:?}");
    }

    // `-S 0x011a` on a plain image claims DfuSe without a DfuSe prefix;
    // dfu-util itself will not download that, and we refuse it.
    write(dir.path(), "claims-dfuse.bin", &data(64, 0));
    run_ok(
        dir.path(),
        &dfu_suffix(),
        &["-S", "0x011a", "-a", "claims-dfuse.bin"],
    );
    let err = DfuFile::parse(&read(dir.path(), "claims-dfuse.bin")).unwrap_err();
    assert_eq!(
        (err.field(), err.offset()),
        ("bcdDFU", Some(64 + 6)),
        "{err}"
    );
}

#[test]
fn we_read_what_dfuse_pack_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (data(3000, 1), data(17, 2), data(256, 3));
    write(dir.path(), "a.bin", &a);
    write(dir.path(), "b.bin", &b);
    write(dir.path(), "c.bin", &c);
    run_ok(
        dir.path(),
        &dfuse_pack(),
        &[
            "-b",
            "0x08000000:a.bin",
            "-b",
            "0x08010000:b.bin",
            "-b",
            "0x1fff7800@1:c.bin",
            "-D",
            "0x0483:0xdf11",
            "packed.dfu",
        ],
    );
    let bytes = read(dir.path(), "packed.dfu");
    // dfuse-pack counts the suffix in DFUImageSize (fwupd does not): we take both.
    assert_eq!(
        u32::from_le_bytes(bytes[6..10].try_into().unwrap()) as usize,
        bytes.len()
    );
    let file = DfuFile::parse(&bytes).unwrap();
    assert_eq!(
        (
            file.suffix.id_vendor,
            file.suffix.id_product,
            file.suffix.bcd_device,
            file.suffix.bcd_dfu
        ),
        (0x0483, 0xdf11, 0, 0x011a)
    );
    let expected = vec![
        DfuSeTarget::new(0, Some("ST..."), [(0x0800_0000, a), (0x0801_0000, b)]),
        DfuSeTarget::new(1, Some("ST..."), [(0x1fff_7800, c)]),
    ];
    match file.firmware {
        Firmware::DfuSe(image) => assert_eq!(image.targets, expected),
        other => panic!("expected DfuSe, got {other:?}"),
    }
}

#[test]
fn we_read_what_fwupd_writes() {
    let dir = tempfile::tempdir().unwrap();
    // "aGVsbG8=" is "hello", "d29ybGQ=" is "world".
    let dfuse_xml = r#"<firmware gtype="FuDfuseFirmware">
  <vendor>0x2fe3</vendor><product>0x0100</product><release>0x0203</release>
  <firmware><id>Internal Flash</id><idx>0x0</idx>
    <chunks><chunk><addr>0x08000000</addr><data>aGVsbG8=</data></chunk>
            <chunk><addr>0x08020000</addr><data>d29ybGQ=</data></chunk></chunks></firmware>
  <firmware><idx>0x2</idx>
    <chunks><chunk><addr>0x90000000</addr><data>d29ybGQ=</data></chunk></chunks></firmware>
</firmware>"#;
    write(dir.path(), "dfuse.xml", dfuse_xml.as_bytes());
    run_ok(
        dir.path(),
        &fwupdtool(),
        &["firmware-build", "dfuse.xml", "fwupd-dfuse.dfu"],
    );
    let file = DfuFile::parse(&read(dir.path(), "fwupd-dfuse.dfu")).unwrap();
    assert_eq!(
        (
            file.suffix.id_vendor,
            file.suffix.id_product,
            file.suffix.bcd_device,
            file.suffix.bcd_dfu
        ),
        (0x2fe3, 0x0100, 0x0203, 0x011a)
    );
    let expected = vec![
        DfuSeTarget::new(
            0,
            Some("Internal Flash"),
            [
                (0x0800_0000, b"hello".to_vec()),
                (0x0802_0000, b"world".to_vec()),
            ],
        ),
        DfuSeTarget::new(2, None, [(0x9000_0000, b"world".to_vec())]),
    ];
    assert_eq!(
        file.firmware,
        Firmware::DfuSe(dfu::file::DfuSeImage { targets: expected })
    );

    let dfu_xml = r#"<firmware gtype="FuDfuFirmware"><vendor>0x1209</vendor><product>0x0001</product><data>aGVsbG8=</data></firmware>"#;
    write(dir.path(), "dfu.xml", dfu_xml.as_bytes());
    run_ok(
        dir.path(),
        &fwupdtool(),
        &["firmware-build", "dfu.xml", "fwupd.dfu"],
    );
    let file = DfuFile::parse(&read(dir.path(), "fwupd.dfu")).unwrap();
    assert_eq!(
        (
            file.suffix.id_vendor,
            file.suffix.id_product,
            file.suffix.bcd_device,
            file.suffix.bcd_dfu
        ),
        (0x1209, 0x0001, 0xffff, 0x0100)
    );
    assert_eq!(file.firmware, Firmware::Raw(b"hello".to_vec()));
}

#[test]
fn we_read_a_dfuse_body_suffixed_by_dfu_suffix() {
    // dfu-suffix -a knows nothing of DfuSe and writes bcdDFU 0x0100.
    let dir = tempfile::tempdir().unwrap();
    let ours = DfuFile::new_dfuse(
        0x0483,
        0xdf11,
        0x2200,
        vec![DfuSeTarget::new(
            0,
            Some("Flash"),
            [(0x0800_0000, data(64, 9))],
        )],
    )
    .unwrap();
    let bytes = ours.to_bytes();
    write(dir.path(), "body.dfu", &bytes[..bytes.len() - 16]);
    run_ok(
        dir.path(),
        &dfu_suffix(),
        &[
            "-v", "0x0483", "-p", "0xdf11", "-d", "0x2200", "-a", "body.dfu",
        ],
    );
    let file = DfuFile::parse(&read(dir.path(), "body.dfu")).unwrap();
    assert_eq!(file.suffix.bcd_dfu, 0x0100);
    assert_eq!(file.firmware, ours.firmware);
}

/// A raw and a DfuSe file of ours, with names for the tools.
fn our_files() -> (DfuFile, DfuFile) {
    let raw = DfuFile::new_raw(0x047f, 0xc056, 0x0102, data(5000, 4));
    let dfuse = DfuFile::new_dfuse(
        0x0483,
        0xdf11,
        0x0200,
        vec![
            DfuSeTarget::new(
                0,
                Some("Internal Flash"),
                [(0x0800_0000, data(200_000, 5)), (0x0805_0000, data(7, 6))],
            ),
            DfuSeTarget::new(1, None, [(0x1fff_7800, data(16, 7))]),
            DfuSeTarget::new(
                3,
                Some("@External /0x90000000/8*4Kg"),
                [(0x9000_0000, data(300, 8))],
            ),
        ],
    )
    .unwrap();
    (raw, dfuse)
}

#[test]
fn dfu_suffix_accepts_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, dfuse) = our_files();
    for (name, file) in [("raw.dfu", &raw), ("dfuse.dfu", &dfuse)] {
        write(dir.path(), name, &file.to_bytes());
        let out = run_ok(dir.path(), &dfu_suffix(), &["-c", name]);
        let s = file.suffix;
        let bcd_dfu = if file.is_dfuse() { 0x011a } else { 0x0100 };
        for line in [
            format!("BCD device:\t0x{:04X}", s.bcd_device),
            format!("Product ID:\t0x{:04X}", s.id_product),
            format!("Vendor ID:\t0x{:04X}", s.id_vendor),
            format!("BCD DFU:\t0x{bcd_dfu:04X}"),
            "Length:\t\t16".to_owned(),
        ] {
            assert!(
                out.contains(&line),
                "{name}: dfu-suffix -c lacks {line:?}:\n{out}"
            );
        }
        // Removing the suffix leaves exactly the content.
        run_ok(dir.path(), &dfu_suffix(), &["-D", name]);
        let bytes = file.to_bytes();
        assert_eq!(read(dir.path(), name), bytes[..bytes.len() - 16], "{name}");
    }
}

#[test]
fn dfuse_pack_dumps_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let (_, dfuse) = our_files();
    let bytes = dfuse.to_bytes();
    write(dir.path(), "ours.dfu", &bytes);
    let out = run_ok(dir.path(), &dfuse_pack(), &["-d", "ours.dfu"]);
    // dfuse-pack reports problems on stdout and still exits 0.
    assert!(!out.contains("ERROR"), "dfuse-pack -d found errors:\n{out}");
    for line in [
        format!("v1, image size: {}, targets: 3", bytes.len() - 16),
        "alt setting: 0, name: \"b'Internal Flash'\", size: 200023, elements: 2".to_owned(),
        "alt setting: 1, name: \"\", size: 24, elements: 1".to_owned(),
        "usb: 0483:df11, device: 0x0200, dfu: 0x011a, b'UFD', 16".to_owned(),
    ] {
        assert!(
            out.contains(&line),
            "dfuse-pack -d output lacks {line:?}:\n{out}"
        );
    }
    let Firmware::DfuSe(image) = &dfuse.firmware else {
        unreachable!()
    };
    for (t, target) in image.targets.iter().enumerate() {
        for (e, element) in target.elements.iter().enumerate() {
            let dumped = read(dir.path(), &format!("ours.dfu.target{t}.image{e}.bin"));
            assert_eq!(dumped, element.data, "target {t} element {e}");
        }
    }
}

#[test]
fn fwupd_parses_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, dfuse) = our_files();
    write(dir.path(), "raw.dfu", &raw.to_bytes());
    write(dir.path(), "dfuse.dfu", &dfuse.to_bytes());

    let out = fwupd_parse(dir.path(), "raw.dfu", "dfu");
    for needle in [
        "<vendor>0x47f</vendor>",
        "<product>0xc056</product>",
        "<release>0x102</release>",
        "<dfu_version>0x100</dfu_version>",
        "size=\"0x1388\"",
    ] {
        assert!(
            out.contains(needle),
            "fwupdtool output lacks {needle:?}:\n{out}"
        );
    }

    let out = fwupd_parse(dir.path(), "dfuse.dfu", "dfuse");
    for needle in [
        "gtype=\"FuDfuseFirmware\"",
        "<vendor>0x483</vendor>",
        "<product>0xdf11</product>",
        "<dfu_version>0x11a</dfu_version>",
        "<id>Internal Flash</id>",
        "<id>@External /0x90000000/8*4Kg</id>",
        "<idx>0x3</idx>",
        "<addr>0x8000000</addr>",
        "<addr>0x8050000</addr>",
        "<addr>0x1fff7800</addr>",
        "<addr>0x90000000</addr>",
        "size=\"0x30d40\"",
        "size=\"0x12c\"",
    ] {
        assert!(
            out.contains(needle),
            "fwupdtool output lacks {needle:?}:\n{out}"
        );
    }
}

#[test]
fn fwupd_and_dfuse_pack_disagree_on_dfu_image_size() {
    // Documents why we accept both DFUImageSize readings: fwupd refuses a
    // file straight from dfuse-pack, and takes the same file once the size
    // excludes the suffix (which is how we write it).
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.bin", &data(100, 1));
    run_ok(
        dir.path(),
        &dfuse_pack(),
        &["-b", "0x08000000:a.bin", "packed.dfu"],
    );
    let output = run(
        dir.path(),
        &fwupdtool(),
        &["firmware-parse", "packed.dfu", "dfuse"],
    );
    let all = text(&output);
    assert!(
        !output.status.success(),
        "fwupd now accepts dfuse-pack's DFUImageSize:\n{all}"
    );
    assert!(all.contains("invalid DfuSe image size"), "{all}");

    let rewritten = DfuFile::parse(&read(dir.path(), "packed.dfu"))
        .unwrap()
        .to_bytes();
    write(dir.path(), "rewritten.dfu", &rewritten);
    fwupd_parse(dir.path(), "rewritten.dfu", "dfuse");
}
