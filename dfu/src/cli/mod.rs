//! Subcommands of the `dfu` tool, one module each, and what they share.

pub(crate) mod build;
pub(crate) mod device;
pub(crate) mod inspect;

use std::fmt;

/// Why a subcommand failed; printed as `dfu: <message>` with exit status 1.
#[derive(Debug)]
pub(crate) struct CliError(pub(crate) String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CliError {
    /// An error about `path`, e.g. `firmware.dfu: dwCRC at offset 0x24: ...`.
    pub(crate) fn about(path: &std::path::Path, what: impl fmt::Display) -> Self {
        CliError(format!("{}: {what}", path.display()))
    }
}

/// Parses a number given as `0x1234` (hex) or `4660` (decimal).
pub(crate) fn parse_u32(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("{s:?} is not a number (use 0x1234 or 4660): {e}"))
}

/// Like [`parse_u32`], for 16-bit fields.
pub(crate) fn parse_u16(s: &str) -> Result<u16, String> {
    let n = parse_u32(s)?;
    u16::try_from(n).map_err(|_| format!("{s} does not fit in 16 bits"))
}

/// Like [`parse_u32`], for 8-bit fields.
pub(crate) fn parse_u8(s: &str) -> Result<u8, String> {
    let n = parse_u32(s)?;
    u8::try_from(n).map_err(|_| format!("{s} does not fit in 8 bits"))
}

/// Lower-case hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
