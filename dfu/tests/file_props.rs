//! Property tests: the parsers never panic, keep what they read within what
//! the input holds, and read back exactly what the writer wrote; inspecting
//! a file piece by piece decides exactly as parsing it whole.

use dfu::file::{
    dfu_crc, ContentSummary, DfuFile, DfuSeTarget, FileSource, Firmware, InspectError,
};
use proptest::prelude::*;

/// Bytes the parse result holds: payload, element data and names.
fn held_bytes(file: &DfuFile) -> usize {
    match &file.firmware {
        Firmware::Raw(data) => data.len(),
        Firmware::DfuSe(image) => image
            .targets
            .iter()
            .map(|t| {
                t.name.as_ref().map_or(0, String::len)
                    + t.elements.iter().map(|e| e.data.len()).sum::<usize>()
            })
            .sum(),
    }
}

/// What must hold for any input the parser accepts.
fn check_accepted(input: &[u8], file: &DfuFile) -> Result<(), TestCaseError> {
    // Names are decoded lossily (at most 3 bytes of text per input byte), so
    // bound the data by the input size and names by their fields.
    prop_assert!(held_bytes(file) <= input.len() * 3);
    if let Firmware::DfuSe(image) = &file.firmware {
        let data: usize = image.targets.iter().map(|t| t.data_len() as usize).sum();
        prop_assert!(data <= input.len());
        let elements: usize = image.targets.iter().map(|t| t.elements.len()).sum();
        prop_assert!(elements * 8 <= input.len());
    }
    // Whatever we accept, we can write, and read back the same content.
    let written = file
        .try_to_bytes()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let again = DfuFile::parse(&written).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again.firmware, &file.firmware);
    Ok(())
}

/// Bytes as a [`FileSource`] that fails any read past the end and records
/// the largest read.
struct Recording<'a> {
    bytes: &'a [u8],
    largest: usize,
}

impl FileSource for Recording<'_> {
    type Error = String;

    fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = usize::try_from(offset).map_err(|e| e.to_string())?;
        let end = start
            .checked_add(buf.len())
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("read of {} bytes at {offset} past the end", buf.len()))?;
        self.largest = self.largest.max(buf.len());
        buf.copy_from_slice(&self.bytes[start..end]);
        Ok(())
    }
}

/// [`DfuFile::inspect`] accepts what [`DfuFile::parse`] accepts, describes
/// it the same, refuses the rest with the same error, and reads in pieces.
fn check_inspect_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut src = Recording { bytes, largest: 0 };
    let inspected = DfuFile::inspect(&mut src);
    match (DfuFile::parse(bytes), inspected) {
        (Ok(file), Ok(summary)) => {
            prop_assert_eq!(summary.suffix, file.suffix);
            match (&file.firmware, &summary.content) {
                (Firmware::Raw(data), ContentSummary::Raw { len }) => {
                    prop_assert_eq!(*len, data.len() as u64)
                }
                (Firmware::DfuSe(image), ContentSummary::DfuSe(layout)) => {
                    prop_assert_eq!(image.targets.len(), layout.targets.len());
                    for (t, l) in image.targets.iter().zip(&layout.targets) {
                        prop_assert_eq!(t.alt_setting, l.alt_setting);
                        prop_assert_eq!(&t.name, &l.name);
                        let elements: Vec<(u32, u32)> = t
                            .elements
                            .iter()
                            .map(|e| (e.address, e.data.len() as u32))
                            .collect();
                        prop_assert_eq!(&elements, &l.elements);
                    }
                }
                (f, c) => {
                    return Err(TestCaseError::fail(format!(
                        "parsed {f:?}, inspected {c:?}"
                    )))
                }
            }
        }
        (Err(parsed), Err(InspectError::File(inspected))) => prop_assert_eq!(parsed, inspected),
        (parsed, inspected) => {
            return Err(TestCaseError::fail(format!(
                "parse: {parsed:?}\ninspect: {inspected:?}"
            )))
        }
    }
    prop_assert!(src.largest <= 64 << 10);
    Ok(())
}

fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 16 {
        let n = bytes.len();
        let crc = dfu_crc(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

fn target() -> impl Strategy<Value = DfuSeTarget> {
    (
        any::<u8>(),
        proptest::option::of("[ -~]{1,40}"),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..4),
    )
        .prop_map(|(alt, name, datas)| {
            // Lay the elements out without overlap.
            let elements = datas
                .into_iter()
                .enumerate()
                .map(|(i, d)| (0x0800_0000 + 0x1000 * i as u32, d));
            DfuSeTarget::new(alt, name.as_deref(), elements)
        })
}

fn dfu_file() -> impl Strategy<Value = DfuFile> {
    let ids = (any::<u16>(), any::<u16>(), any::<u16>());
    prop_oneof![
        (ids, proptest::collection::vec(any::<u8>(), 0..256))
            .prop_map(|((v, p, d), data)| DfuFile::new_raw(v, p, d, data)),
        (ids, proptest::collection::vec(target(), 1..4))
            .prop_map(|((v, p, d), targets)| DfuFile::new_dfuse(v, p, d, targets).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        for file in [DfuFile::parse(&bytes), DfuFile::parse_lenient(&bytes)].into_iter().flatten() {
            check_accepted(&bytes, &file)?;
        }
        check_inspect_agrees(&bytes)?;
        // With a valid CRC the parser gets past the suffix into the content.
        let bytes = with_crc(bytes);
        check_inspect_agrees(&bytes)?;
        if let Ok(file) = DfuFile::parse(&bytes) {
            check_accepted(&bytes, &file)?;
        }
    }

    #[test]
    fn dfuse_headers_with_arbitrary_fields_never_panic(
        targets in any::<u8>(),
        target_size in prop_oneof![Just(u32::MAX), Just(0u32), 0u32..600],
        elements in prop_oneof![Just(u32::MAX), 0u32..8],
        element_size in prop_oneof![Just(u32::MAX), 0u32..600],
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = b"DfuSe\x01\0\0\0\0".to_vec();
        bytes.push(targets);
        bytes.extend_from_slice(b"Target\0\x01\0\0\0");
        bytes.extend_from_slice(&[0; 255]);
        bytes.extend_from_slice(&target_size.to_le_bytes());
        bytes.extend_from_slice(&elements.to_le_bytes());
        bytes.extend_from_slice(&0x0800_0000u32.to_le_bytes());
        bytes.extend_from_slice(&element_size.to_le_bytes());
        bytes.extend_from_slice(&tail);
        let size = bytes.len() as u32;
        bytes[6..10].copy_from_slice(&size.to_le_bytes());
        for candidate in [bytes.clone(), with_crc([bytes, vec![0xff; 6], b"\x1a\x01UFD\x10\0\0\0\0".to_vec()].concat())] {
            check_inspect_agrees(&candidate)?;
            if let Ok(file) = DfuFile::parse(&candidate) {
                check_accepted(&candidate, &file)?;
            }
        }
    }

    #[test]
    fn written_files_read_back_identically(file in dfu_file()) {
        let bytes = file.to_bytes();
        check_inspect_agrees(&bytes)?;
        let back = DfuFile::parse(&bytes).unwrap();
        prop_assert_eq!(&back.firmware, &file.firmware);
        prop_assert_eq!(
            (back.suffix.id_vendor, back.suffix.id_product, back.suffix.bcd_device, back.suffix.length),
            (file.suffix.id_vendor, file.suffix.id_product, file.suffix.bcd_device, 16)
        );
        prop_assert_eq!(back.suffix.bcd_dfu, if file.is_dfuse() { 0x011a } else { 0x0100 });
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn damaged_files_never_panic(
        file in dfu_file(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        fix in any::<bool>(),
    ) {
        let mut bytes = file.to_bytes();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if cut.index(4) == 0 {
            bytes.truncate(cut.index(bytes.len()));
        }
        let bytes = if fix { with_crc(bytes) } else { bytes };
        check_inspect_agrees(&bytes)?;
        if let Ok(parsed) = DfuFile::parse(&bytes) {
            check_accepted(&bytes, &parsed)?;
        }
    }
}

/// Large files are checked in pieces: the CRC in 64 KiB reads, the DfuSe
/// headers where they are, the element data never read whole.
#[test]
fn inspecting_a_large_file_reads_it_in_pieces() {
    let big = vec![0x5a; 3 << 20];
    let raw = DfuFile::new_raw(0x047f, 0xc056, 0x0214, big.clone()).to_bytes();
    let target = DfuSeTarget::new(
        0,
        Some("Internal Flash"),
        [(0x0800_0000, big.clone()), (0x0900_0000, vec![1; 100])],
    );
    let dfuse = DfuFile::new_dfuse(0x0483, 0xdf11, 0xffff, vec![target])
        .unwrap()
        .to_bytes();
    for (bytes, dfuse_layout) in [
        (raw, None),
        (
            dfuse,
            Some(vec![(0x0800_0000, 3 << 20), (0x0900_0000, 100)]),
        ),
    ] {
        let mut src = Recording {
            bytes: &bytes,
            largest: 0,
        };
        let summary = DfuFile::inspect(&mut src).unwrap();
        assert_eq!(src.largest, 64 << 10);
        match (summary.content, dfuse_layout) {
            (ContentSummary::Raw { len }, None) => assert_eq!(len, 3 << 20),
            (ContentSummary::DfuSe(layout), Some(elements)) => {
                assert_eq!(layout.targets[0].elements, elements);
                assert_eq!(layout.targets[0].name.as_deref(), Some("Internal Flash"));
            }
            (other, _) => panic!("{other:?}"),
        }
    }
    // A damaged byte deep inside is found by the chunked CRC.
    let mut damaged = DfuFile::new_raw(1, 2, 3, big).to_bytes();
    damaged[2 << 20] ^= 1;
    let err = DfuFile::inspect(&mut Recording {
        bytes: &damaged,
        largest: 0,
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::File(dfu::file::FileError::CrcMismatch { .. })
        ),
        "{err}"
    );
}
