//! Reading and writing `.dfu` / DfuSe files: tool-made fixtures, refused
//! inputs (field and offset), and byte-exact output.

use dfu::file::{
    dfu_crc, has_dfu_suffix, DfuFile, DfuSeElement, DfuSeImage, DfuSeTarget, FileError, Firmware,
    Suffix,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One line per file: format, ids, bcdDFU, suffix length, then the content.
fn summary(file: &DfuFile) -> String {
    let s = &file.suffix;
    let mut out = format!(
        "{:04x}:{:04x} dev {:04x} dfu {:04x} len {}",
        s.id_vendor, s.id_product, s.bcd_device, s.bcd_dfu, s.length
    );
    match &file.firmware {
        Firmware::Raw(data) => out += &format!(" raw {:?}", String::from_utf8_lossy(data)),
        Firmware::DfuSe(image) => {
            for t in &image.targets {
                out += &format!(" | alt {} {:?}", t.alt_setting, t.name);
                for e in &t.elements {
                    out += &format!(" {:#x}={:?}", e.address, String::from_utf8_lossy(&e.data));
                }
            }
        }
    }
    out
}

#[test]
fn reads_files_made_by_the_tools() {
    let table = [
        (
            "dfu-suffix-raw.dfu",
            r#"047f:c056 dev 0102 dfu 0100 len 16 raw "hello world firmware""#,
        ),
        (
            "fwupd-raw.dfu",
            r#"1209:0001 dev ffff dfu 0100 len 16 raw "raw payload""#,
        ),
        (
            "dfuse-pack-2-targets.dfu",
            r#"047f:c056 dev 0000 dfu 011a len 16 | alt 0 Some("ST...") 0x8000000="ABCDEFGH12345678" | alt 1 Some("ST...") 0x8004000="xyz""#,
        ),
        (
            "dfu-suffix-on-dfuse-body.dfu",
            r#"1234:5678 dev ffff dfu 0100 len 16 | alt 0 Some("ST...") 0x8000000="ABCDEFGH12345678" | alt 1 Some("ST...") 0x8004000="xyz""#,
        ),
        (
            "dfuse-without-suffix.dfu",
            r#"ffff:ffff dev ffff dfu 0000 len 0 | alt 0 Some("ST...") 0x8000000="ABCDEFGH12345678" | alt 1 Some("ST...") 0x8004000="xyz""#,
        ),
        (
            "fwupd-dfuse-named-unnamed.dfu",
            r#"047f:c056 dev 0102 dfu 011a len 16 | alt 0 Some("Internal Flash") 0x8000000="hello" | alt 1 None 0x1000="world""#,
        ),
    ];
    for (name, expected) in table {
        let file = DfuFile::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary(&file), expected, "{name}");
    }
}

#[test]
fn suffix_fields_and_presence() {
    let bytes = fixture("dfu-suffix-raw.dfu");
    assert!(has_dfu_suffix(&bytes));
    assert_eq!(
        Suffix::parse(&bytes).unwrap(),
        Suffix {
            bcd_device: 0x0102,
            id_product: 0xc056,
            id_vendor: 0x047f,
            bcd_dfu: 0x0100,
            length: 16,
            crc: 0x3e7d_a9c2,
        }
    );
    assert!(!has_dfu_suffix(&fixture("dfuse-without-suffix.dfu")));
    assert!(!has_dfu_suffix(b""));
    assert!(!DfuFile::parse(&fixture("dfuse-without-suffix.dfu"))
        .unwrap()
        .suffix
        .is_present());
}

#[test]
fn crc_is_the_complement_of_crc32() {
    // crc32("123456789") = 0xcbf43926, the standard check value.
    for (input, expected) in [
        (&b""[..], 0xffff_ffff),
        (b"123456789", !0xcbf4_3926),
        (
            b"hello world firmware\x02\x01\x56\xc0\x7f\x04\x00\x01UFD\x10",
            0x3e7d_a9c2,
        ),
    ] {
        assert_eq!(dfu_crc(input), expected, "{input:?}");
    }
}

#[test]
fn suffix_matches_devices() {
    let s = Suffix::new(0x047f, 0xffff, 0x0102, 0x0100);
    let table = [
        ((0x047f, 0xc056, 0x0102), true),
        ((0x047f, 0x0001, 0x0102), true),
        ((0x047e, 0xc056, 0x0102), false),
        ((0x047f, 0xc056, 0x0103), false),
    ];
    for ((vid, pid, dev), expected) in table {
        assert_eq!(
            s.matches(vid, pid, dev),
            expected,
            "{vid:04x}:{pid:04x} {dev:04x}"
        );
    }
    assert!(Suffix::absent().matches(1, 2, 3));
}

#[test]
fn writes_byte_for_byte_what_the_tools_write() {
    // dfu-suffix -a: same ids, bcdDFU 0x0100.
    let raw = DfuFile::new_raw(0x047f, 0xc056, 0x0102, b"hello world firmware".to_vec());
    assert_eq!(raw.to_bytes(), fixture("dfu-suffix-raw.dfu"));

    // fwupd: bTargetNamed 1 only for named targets, DFUImageSize without suffix.
    let dfuse = DfuFile::new_dfuse(
        0x047f,
        0xc056,
        0x0102,
        vec![
            DfuSeTarget::new(
                0,
                Some("Internal Flash"),
                [(0x0800_0000, b"hello".to_vec())],
            ),
            DfuSeTarget::new(1, None, [(0x1000, b"world".to_vec())]),
        ],
    )
    .unwrap();
    assert_eq!(dfuse.to_bytes(), fixture("fwupd-dfuse-named-unnamed.dfu"));
}

#[test]
fn rewriting_tool_files_normalises_to_the_spec() {
    // dfuse-pack counts the suffix in DFUImageSize; we write 594, not 610.
    let bytes = DfuFile::parse(&fixture("dfuse-pack-2-targets.dfu"))
        .unwrap()
        .to_bytes();
    assert_eq!(bytes.len(), 610);
    assert_eq!(u32::from_le_bytes(bytes[6..10].try_into().unwrap()), 594);
    // dfu-suffix -a on a DfuSe body says bcdDFU 0x0100; we write 0x011a.
    let bytes = DfuFile::parse(&fixture("dfu-suffix-on-dfuse-body.dfu"))
        .unwrap()
        .to_bytes();
    assert_eq!(bytes[bytes.len() - 10..bytes.len() - 8], [0x1a, 0x01]);
    // A DfuSe image without suffix gets one, with "any" ids.
    let bytes = DfuFile::parse(&fixture("dfuse-without-suffix.dfu"))
        .unwrap()
        .to_bytes();
    assert_eq!(bytes.len(), 594 + 16);
    assert_eq!(Suffix::parse(&bytes).unwrap().id_vendor, 0xffff);
}

#[test]
fn lenient_parse_takes_a_bare_image() {
    let file = DfuFile::parse_lenient(b"no suffix at all, just bytes").unwrap();
    assert_eq!(file.suffix, Suffix::absent());
    assert_eq!(
        file.firmware,
        Firmware::Raw(b"no suffix at all, just bytes".to_vec())
    );
    // A damaged suffix is still an error.
    let mut bytes = fixture("dfu-suffix-raw.dfu");
    bytes[0] ^= 1;
    assert!(matches!(
        DfuFile::parse_lenient(&bytes),
        Err(FileError::CrcMismatch { .. })
    ));
}

/// Recomputes the suffix CRC so that a mutation is judged on its own.
fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = dfu_crc(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// A DfuSe file with one target (alt 0, "Flash") holding two elements:
/// 4 bytes at 0x100 and 2 bytes at 0x200. Offsets: prefix 0..11, target
/// prefix 11..285 (name at 22, dwTargetSize at 277, dwNbElements at 281),
/// element 0 at 285 (size field 289, data 293..297), element 1 at 297
/// (size field 301, data 305..307), suffix 307..323.
fn sample_dfuse() -> Vec<u8> {
    let target = DfuSeTarget::new(
        0,
        Some("Flash"),
        [(0x100, vec![1, 2, 3, 4]), (0x200, vec![5, 6])],
    );
    DfuFile::new_dfuse(0x0483, 0xdf11, 0x0200, vec![target])
        .unwrap()
        .to_bytes()
}

/// A refused input: name, how to make it, the expected field, offset and
/// part of the message.
type Case = (
    &'static str,
    fn() -> Vec<u8>,
    &'static str,
    usize,
    &'static str,
);

fn raw() -> Vec<u8> {
    DfuFile::new_raw(1, 2, 3, b"payload!".to_vec()).to_bytes() // 24 bytes, suffix at 8
}

/// `sample_dfuse` with `edit` applied and the CRC fixed.
fn dfuse_with(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = sample_dfuse();
    edit(&mut b);
    fix_crc(&mut b);
    b
}

fn raw_with(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = raw();
    edit(&mut b);
    fix_crc(&mut b);
    b
}

#[rustfmt::skip]
const REFUSED: &[Case] = &[
    ("empty", Vec::new, "DFU suffix", 0, "needs 16 bytes but only 0 are left"),
    ("no suffix", || { let mut b = raw(); b[16..19].copy_from_slice(b"XYZ"); b }, "ucDfuSignature", 16, "\"XYZ\""),
    ("payload changed", || { let mut b = raw(); b[0] ^= 0x80; b }, "dwCRC", 20, "stored 0x"),
    ("bLength 15", || raw_with(|b| b[19] = 15), "bLength", 19, "15 is not between 16"),
    ("bLength > file", || raw_with(|b| b[19] = 200), "bLength", 19, "file length 24"),
    ("bcdDFU 0x011a on raw", || raw_with(|b| b[14] = 0x1a), "bcdDFU", 14, "does not start with \"DfuSe\""),
    ("bVersion 2", || dfuse_with(|b| b[5] = 2), "bVersion", 5, "2 is not a known"),
    ("DFUImageSize", || dfuse_with(|b| put_u32(b, 6, 300)), "DFUImageSize", 6, "300 matches neither the file without suffix (307) nor the whole file (323)"),
    ("bTargets 0", || dfuse_with(|b| b[10] = 0), "bTargets", 10, "no firmware"),
    ("bTargets 2", || dfuse_with(|b| b[10] = 2), "szSignature (target)", 307, "needs 6 bytes but only 0 are left"),
    ("target signature", || dfuse_with(|b| b[14] = b'X'), "szSignature (target)", 11, "\"TarXet\""),
    ("unterminated name", || dfuse_with(|b| b[22..277].fill(b'a')), "szTargetName", 22, "not NUL-terminated"),
    ("dwTargetSize too big", || dfuse_with(|b| put_u32(b, 277, 23)), "dwTargetSize", 277, "needs 23 bytes but only 22 are left"),
    ("dwTargetSize too small", || dfuse_with(|b| put_u32(b, 277, 20)), "dwElementSize", 301, "2 bytes exceed the 0 bytes left"),
    ("dwNbElements 0", || dfuse_with(|b| put_u32(b, 281, 0)), "dwNbElements", 281, "is 0"),
    ("dwNbElements 1", || dfuse_with(|b| put_u32(b, 281, 1)), "dwTargetSize", 277, "declares 22 bytes but the 1 elements occupy 12"),
    ("dwNbElements 3", || dfuse_with(|b| put_u32(b, 281, 3)), "dwNbElements", 281, "declares 3 elements but dwTargetSize (22) holds only 2"),
    ("dwElementSize", || dfuse_with(|b| put_u32(b, 289, 100)), "dwElementSize", 289, "100 bytes exceed the 14 bytes left"),
    ("overlap", || dfuse_with(|b| put_u32(b, 297, 0x102)), "dwElementAddress", 297, "element 1 (0x00000102, 2 bytes) overlaps element 0 (0x00000100, 4 bytes)"),
    ("address overflow", || dfuse_with(|b| put_u32(b, 297, 0xffff_ffff)), "dwElementSize", 301, "run past the end of the 32-bit address space"),
    ("bytes after the last target", || { let mut b = sample_dfuse(); b.splice(307..307, [0; 4]); put_u32(&mut b, 6, 311); fix_crc(&mut b); b }, "bTargets", 10, "1 targets end at offset 0x133, but 4 more bytes follow"),
    ("DfuSe without suffix, truncated", || { let mut b = sample_dfuse(); b.truncate(300); put_u32(&mut b, 6, 300); b }, "dwTargetSize", 277, "needs 22 bytes but only 15 are left"),
];

#[test]
fn refuses_inconsistent_files_naming_field_and_offset() {
    for (name, make, field, offset, text) in REFUSED {
        let bytes = make();
        let err = DfuFile::parse(&bytes).expect_err(name);
        let message = err.to_string();
        assert_eq!(
            (err.field(), err.offset()),
            (*field, Some(*offset)),
            "{name}: {message}"
        );
        assert!(message.contains(text), "{name}: {message:?} lacks {text:?}");
        assert!(
            message.contains(&format!("{offset:#x}")),
            "{name}: {message:?} lacks the offset"
        );
    }
}

#[test]
fn refuses_to_write_what_the_format_cannot_hold() {
    let target =
        |name: Option<&str>, elements: Vec<(u32, Vec<u8>)>| DfuSeTarget::new(0, name, elements);
    let ok = || target(None, vec![(0, vec![1])]);
    let long_name = "n".repeat(255);
    let cases: Vec<(&str, Vec<DfuSeTarget>, &str)> = vec![
        (
            "no targets",
            vec![],
            "cannot write targets: a DfuSe file holds 1 to 255 targets, not 0",
        ),
        ("256 targets", (0..256).map(|_| ok()).collect(), "not 256"),
        (
            "long name",
            vec![target(Some(&long_name), vec![(0, vec![1])])],
            "targets[0].name: 255 bytes; at most 254",
        ),
        (
            "NUL in name",
            vec![ok(), target(Some("a\0b"), vec![(0, vec![1])])],
            "targets[1].name: contains a NUL",
        ),
        (
            "no elements",
            vec![target(None, vec![])],
            "targets[0].elements: a target needs at least one element",
        ),
        (
            "overlap",
            vec![target(None, vec![(0x10, vec![0; 16]), (0x1f, vec![0])])],
            "targets[0].elements[1]: overlaps elements[0]",
        ),
        (
            "past 4 GiB",
            vec![target(None, vec![(0xffff_fff0, vec![0; 17])])],
            "17 bytes at 0xfffffff0",
        ),
    ];
    for (name, targets, text) in cases {
        let err = DfuFile::new_dfuse(1, 2, 3, targets).expect_err(name);
        assert!(err.to_string().contains(text), "{name}: {err}");
        assert_eq!(err.offset(), None, "{name}");
    }
    // The same checks guard to_bytes on a hand-made value.
    let file = DfuFile {
        suffix: Suffix::new(1, 2, 3, 0x011a),
        firmware: Firmware::DfuSe(DfuSeImage {
            targets: vec![DfuSeTarget {
                alt_setting: 0,
                name: None,
                elements: vec![],
            }],
        }),
    };
    assert!(file.try_to_bytes().is_err());
    let zero = DfuSeElement {
        address: 0xffff_ffff,
        data: vec![],
    };
    let edge = DfuFile::new_dfuse(
        1,
        2,
        3,
        vec![DfuSeTarget {
            alt_setting: 7,
            name: None,
            elements: vec![zero],
        }],
    );
    assert!(
        edge.is_ok(),
        "an empty element at the top address fits: {edge:?}"
    );
}

#[test]
fn longer_suffix_is_stripped_as_dfu_util_does() {
    // bLength 20: the 4 bytes before the standard 16 belong to the suffix.
    let mut bytes = b"payload!XTRA".to_vec();
    bytes.extend_from_slice(&DfuFile::new_raw(1, 2, 3, vec![]).to_bytes());
    let n = bytes.len();
    bytes[n - 5] = 20;
    fix_crc(&mut bytes);
    let file = DfuFile::parse(&bytes).unwrap();
    assert_eq!(file.suffix.length, 20);
    assert_eq!(file.firmware, Firmware::Raw(b"payload!".to_vec()));
}

#[test]
fn target_names_are_read_whatever_the_flag_and_encoding() {
    // (bTargetNamed, szTargetName bytes, expected name)
    let table: &[(u32, &[u8], Option<&str>)] = &[
        (1, b"Flash", Some("Flash")),
        (0, b"Flash", Some("Flash")),
        (0x100, b"Flash", Some("Flash")),
        (1, b"", None),
        (0, b"", None),
        (1, b"Fl\xffsh", Some("Fl\u{fffd}sh")),
    ];
    for (flag, raw_name, expected) in table {
        let mut b = sample_dfuse();
        put_u32(&mut b, 18, *flag);
        b[22..277].fill(0);
        b[22..22 + raw_name.len()].copy_from_slice(raw_name);
        fix_crc(&mut b);
        let file = DfuFile::parse(&b).unwrap_or_else(|e| panic!("{flag} {raw_name:?}: {e}"));
        let Firmware::DfuSe(image) = &file.firmware else {
            panic!("not DfuSe")
        };
        assert_eq!(
            image.targets[0].name.as_deref(),
            *expected,
            "{flag} {raw_name:?}"
        );
        file.validate().unwrap();
    }
    // 254 invalid bytes decode to 254 U+FFFD (762 bytes), cut to fit 254 bytes.
    let b = dfuse_with(|b| b[22..276].fill(0xff));
    let file = DfuFile::parse(&b).unwrap();
    let Firmware::DfuSe(image) = &file.firmware else {
        panic!("not DfuSe")
    };
    assert_eq!(
        image.targets[0].name.as_deref(),
        Some("\u{fffd}".repeat(84).as_str())
    );
    assert!(file.try_to_bytes().is_ok());
}
