//! The 16-byte DFU suffix (USB DFU 1.1, appendix B) and its CRC.

use super::source::{crc_of, FileSource, InspectError};
use super::FileError;

/// Size of the DFU 1.1 suffix, and the value of `bLength` we write.
pub const SUFFIX_LEN: usize = 16;

/// The value of the `idVendor`, `idProduct` and `bcdDevice` fields that
/// matches any device.
pub const ANY: u16 = 0xFFFF;

/// `bcdDFU` of a plain DFU 1.0/1.1 file.
pub const BCD_DFU_1_0: u16 = 0x0100;

/// `bcdDFU` of an ST DfuSe file (DfuSe 1.1a).
pub const BCD_DFU_DFUSE: u16 = 0x011A;

// Offsets of the fields inside the suffix.
const SIGNATURE_AT: usize = 8;
const LENGTH_AT: usize = 11;
const CRC_AT: usize = 12;

/// The DFU suffix at the end of a `.dfu` file.
///
/// Fields are stored in file order; all are little-endian in the file. A value
/// of [`ANY`] (`0xFFFF`) in `bcd_device`, `id_product` or `id_vendor` means
/// "any". When a file is written ([`DfuFile::to_bytes`](super::DfuFile::to_bytes)),
/// `bcd_dfu`, `length` and `crc` are derived from the content, not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Suffix {
    /// `bcdDevice`: firmware release the file is for, [`ANY`] for any.
    pub bcd_device: u16,
    /// `idProduct`, [`ANY`] for any.
    pub id_product: u16,
    /// `idVendor`, [`ANY`] for any.
    pub id_vendor: u16,
    /// `bcdDFU`: `0x0100` for DFU files, `0x011A` for DfuSe files.
    pub bcd_dfu: u16,
    /// `bLength`: 16 in every file written to the specification; 0 when the
    /// file had no suffix at all (see [`Suffix::is_present`]).
    pub length: u8,
    /// `dwCRC` as stored in the file (0 when there was no suffix).
    pub crc: u32,
}

impl Suffix {
    /// A suffix for the given ids; `bcd_dfu` is set for the format, `length`
    /// to 16 and `crc` to 0 (it is computed when the file is written).
    pub fn new(id_vendor: u16, id_product: u16, bcd_device: u16, bcd_dfu: u16) -> Self {
        Suffix {
            bcd_device,
            id_product,
            id_vendor,
            bcd_dfu,
            length: SUFFIX_LEN as u8,
            crc: 0,
        }
    }

    /// What a file without any suffix is taken to mean, as dfu-util does:
    /// every id is [`ANY`], `bcd_dfu`, `length` and `crc` are 0.
    pub fn absent() -> Self {
        Suffix {
            bcd_device: ANY,
            id_product: ANY,
            id_vendor: ANY,
            bcd_dfu: 0,
            length: 0,
            crc: 0,
        }
    }

    /// Whether the file this came from really had a suffix (`length != 0`).
    pub fn is_present(&self) -> bool {
        self.length != 0
    }

    /// Whether a device with these ids may take this file: each of the
    /// suffix's ids is either [`ANY`] or equal to the device's.
    pub fn matches(&self, id_vendor: u16, id_product: u16, bcd_device: u16) -> bool {
        let ok = |want: u16, have: u16| want == ANY || want == have;
        ok(self.id_vendor, id_vendor)
            && ok(self.id_product, id_product)
            && ok(self.bcd_device, bcd_device)
    }

    /// Reads and checks the suffix at the end of `file`.
    ///
    /// Checks, in order: the file holds 16 bytes, `ucDfuSignature` is `UFD`,
    /// `dwCRC` matches, and `bLength` is at least 16 and at most the file
    /// length (dfu-util accepts a `bLength` above 16 and strips that many
    /// bytes; fwupd insists on exactly 16).
    pub fn parse(file: &[u8]) -> Result<Self, FileError> {
        Self::read(&mut &file[..]).map_err(InspectError::into_file_error)
    }

    /// [`Suffix::parse`] over any [`FileSource`].
    pub(crate) fn read<S: FileSource>(src: &mut S) -> Result<Self, InspectError<S::Error>> {
        let file_len = src.file_len();
        if file_len < SUFFIX_LEN as u64 {
            return Err(FileError::Truncated {
                field: "DFU suffix",
                offset: 0,
                needed: SUFFIX_LEN as u64,
                available: file_len as usize,
            }
            .into());
        }
        let start = file_len - SUFFIX_LEN as u64;
        let mut s = [0; SUFFIX_LEN];
        src.read_at(start, &mut s).map_err(InspectError::Source)?;
        let start = start as usize;
        let signature = &s[SIGNATURE_AT..SIGNATURE_AT + 3];
        if signature != b"UFD" {
            return Err(FileError::MissingSuffix {
                offset: start + SIGNATURE_AT,
                found: String::from_utf8_lossy(signature).into_owned(),
            }
            .into());
        }
        let stored = u32::from_le_bytes([s[CRC_AT], s[CRC_AT + 1], s[CRC_AT + 2], s[CRC_AT + 3]]);
        let computed = crc_of(src, file_len - 4).map_err(InspectError::Source)?;
        if stored != computed {
            return Err(FileError::CrcMismatch {
                offset: start + CRC_AT,
                stored,
                computed,
            }
            .into());
        }
        let length = s[LENGTH_AT];
        if u64::from(length) < SUFFIX_LEN as u64 || u64::from(length) > file_len {
            return Err(FileError::invalid(
                "bLength",
                start + LENGTH_AT,
                format!("{length} is not between 16 and the file length {file_len}"),
            )
            .into());
        }
        let u16_at = |i: usize| u16::from_le_bytes([s[i], s[i + 1]]);
        Ok(Suffix {
            bcd_device: u16_at(0),
            id_product: u16_at(2),
            id_vendor: u16_at(4),
            bcd_dfu: u16_at(6),
            length,
            crc: stored,
        })
    }

    /// Appends this suffix to `out` (which holds the file content so far):
    /// the ids, the given `bcd_dfu`, `bLength` 16 and the CRC of everything
    /// before the CRC field. `self.bcd_dfu`, `self.length` and `self.crc` are
    /// not used.
    pub(crate) fn append_to(&self, out: &mut Vec<u8>, bcd_dfu: u16) {
        out.extend_from_slice(&self.bcd_device.to_le_bytes());
        out.extend_from_slice(&self.id_product.to_le_bytes());
        out.extend_from_slice(&self.id_vendor.to_le_bytes());
        out.extend_from_slice(&bcd_dfu.to_le_bytes());
        out.extend_from_slice(b"UFD");
        out.push(SUFFIX_LEN as u8);
        let crc = dfu_crc(out);
        out.extend_from_slice(&crc.to_le_bytes());
    }
}

/// The CRC that `dwCRC` holds: CRC-32 (IEEE 802.3, reflected, initial value
/// `0xFFFFFFFF`) *without* the final inversion, i.e. the bitwise complement of
/// the usual zlib/PNG `crc32`. Both dfu-util and fwupd ("JAMCRC") compute it so.
pub fn dfu_crc(data: &[u8]) -> u32 {
    !crc32fast::hash(data)
}

/// Whether `bytes` ends with a valid DFU suffix: `UFD` signature, matching
/// CRC and a plausible `bLength`. Never panics.
pub fn has_dfu_suffix(bytes: &[u8]) -> bool {
    Suffix::parse(bytes).is_ok()
}

/// [`has_dfu_suffix`] for a file read piece by piece; `Err` only when
/// reading fails.
pub fn has_dfu_suffix_in<S: FileSource>(src: &mut S) -> Result<bool, S::Error> {
    match Suffix::read(src) {
        Ok(_) => Ok(true),
        Err(InspectError::File(_)) => Ok(false),
        Err(InspectError::Source(e)) => Err(e),
    }
}
