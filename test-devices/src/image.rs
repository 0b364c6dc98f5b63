//! The simulated firmware image format: a 32-byte header followed by the payload.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `FWIM` |
//! | 4 | 1 | header format, 1 |
//! | 5 | 1 | reserved, 0 |
//! | 6 | 2 | product id (runtime PID) the image is for, LE; `0xFFFF` = any |
//! | 8 | 1 | version major |
//! | 9 | 1 | version minor |
//! | 10 | 2 | version patch, LE |
//! | 12 | 4 | payload length, LE |
//! | 16 | 4 | CRC-32 (IEEE) of the payload, LE |
//! | 20 | 12 | reserved, 0 |
//!
//! A device accepts an image only if the magic, length and CRC match and the product id
//! is its own (or `0xFFFF`); its firmware version afterwards is the header's version.

use std::fmt;

/// Header length in bytes.
pub const HEADER_LEN: usize = 32;
/// Header magic.
pub const MAGIC: [u8; 4] = *b"FWIM";
/// Product id meaning "any product".
pub const ANY_PRODUCT: u16 = 0xFFFF;

/// A firmware version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmwareVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Patch.
    pub patch: u16,
}

impl FirmwareVersion {
    /// Builds a version.
    pub const fn new(major: u8, minor: u8, patch: u16) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// The bcdDevice a running device reports: major in the high byte, minor in the low byte.
    pub fn bcd_device(self) -> u16 {
        u16::from(self.major) << 8 | u16::from(self.minor)
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why an image was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than the header, or the payload is shorter than the header says.
    Truncated,
    /// Wrong magic or header format.
    BadHeader,
    /// CRC mismatch.
    BadChecksum,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the image is shorter than its header says",
            Self::BadHeader => {
                "not a simulated-device image: it does not start with the FWIM header (build one with `sim-firmware`)"
            }
            Self::BadChecksum => "the image's payload does not match its CRC-32",
        })
    }
}

impl std::error::Error for ImageError {}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// The product id the image is for.
    pub product_id: u16,
    /// The firmware version.
    pub version: FirmwareVersion,
    /// Payload length.
    pub payload_len: u32,
    /// CRC-32 of the payload.
    pub crc: u32,
}

impl ImageHeader {
    /// Parses the header only (no payload check).
    pub fn parse(b: &[u8]) -> Result<Self, ImageError> {
        if b.len() < HEADER_LEN {
            return Err(ImageError::Truncated);
        }
        if b[..4] != MAGIC || b[4] != 1 {
            return Err(ImageError::BadHeader);
        }
        Ok(Self {
            product_id: u16::from_le_bytes([b[6], b[7]]),
            version: FirmwareVersion::new(b[8], b[9], u16::from_le_bytes([b[10], b[11]])),
            payload_len: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            crc: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
        })
    }

    /// Total image length (header + payload).
    pub fn image_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }

    /// Whether the image is for `product_id`.
    pub fn is_for(&self, product_id: u16) -> bool {
        self.product_id == ANY_PRODUCT || self.product_id == product_id
    }
}

/// Parses and checks a whole image (trailing bytes beyond the payload are ignored).
pub fn validate(b: &[u8]) -> Result<ImageHeader, ImageError> {
    let h = ImageHeader::parse(b)?;
    let payload = b
        .get(HEADER_LEN..h.image_len())
        .ok_or(ImageError::Truncated)?;
    if crc32fast::hash(payload) != h.crc {
        return Err(ImageError::BadChecksum);
    }
    Ok(h)
}

/// Builds an image for `product_id` with `version` and `payload`.
pub fn build(product_id: u16, version: FirmwareVersion, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&product_id.to_le_bytes());
    out.extend_from_slice(&[version.major, version.minor]);
    out.extend_from_slice(&version.patch.to_le_bytes());
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(payload);
    out
}

/// A deterministic payload of `len` bytes (for tests and demos).
pub fn test_payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}
