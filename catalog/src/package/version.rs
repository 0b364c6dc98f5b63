//! Firmware version strings and how to compare them.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a version string is written, and so how two of them compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VersionFormat {
    /// Dot-separated numbers (`2.14.0`); numeric parts compare as numbers.
    #[default]
    Plain,
    /// A USB `bcdDevice`-style binary-coded decimal, written `M.mm` (`2.14`)
    /// or as the raw value `0x0214`.
    Bcd,
    /// A hexadecimal number (`0x1a2b` or `1A2B`).
    Hex,
}

impl fmt::Display for VersionFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "plain",
            Self::Bcd => "bcd",
            Self::Hex => "hex",
        })
    }
}

impl FromStr for VersionFormat {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "plain" | "number" | "pair" | "triplet" | "quad" => Ok(Self::Plain),
            "bcd" => Ok(Self::Bcd),
            "hex" => Ok(Self::Hex),
            _ => Err(VersionError::UnknownFormat(s.chars().take(40).collect())),
        }
    }
}

/// A version string that does not fit its declared format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The format name is not one we know.
    #[error("unknown version format {0:?} (expected plain, bcd or hex)")]
    UnknownFormat(String),
    /// The string does not parse in the given format.
    #[error("{value:?} is not a valid {format} version: {why}")]
    Invalid {
        /// The offending string.
        value: String,
        /// The format it was parsed as.
        format: VersionFormat,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Longest version string accepted, so hostile metadata cannot bloat the catalog.
pub const MAX_VERSION_LEN: usize = 64;

/// A parsed firmware version. Equality and order follow the format's rules,
/// so `2.14` and `2.14.0` are the same plain version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "VersionRepr", into = "VersionRepr")]
pub struct Version {
    text: String,
    format: VersionFormat,
    key: Vec<Part>,
}

#[derive(Serialize, Deserialize)]
struct VersionRepr {
    version: String,
    format: VersionFormat,
}

impl TryFrom<VersionRepr> for Version {
    type Error = VersionError;

    fn try_from(r: VersionRepr) -> Result<Self, Self::Error> {
        Version::parse(&r.version, r.format)
    }
}

impl From<Version> for VersionRepr {
    fn from(v: Version) -> Self {
        Self {
            version: v.text,
            format: v.format,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Part {
    // Text sorts before numbers at the same position, so `1.0.beta` < `1.0.1`.
    Text(String),
    Num(u64),
}

impl Version {
    /// Parses `text` in `format`.
    pub fn parse(text: &str, format: VersionFormat) -> Result<Self, VersionError> {
        let invalid = |why| VersionError::Invalid {
            value: text.chars().take(MAX_VERSION_LEN).collect(),
            format,
            why,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if text.len() > MAX_VERSION_LEN {
            return Err(invalid("longer than 64 characters"));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+~".contains(&b))
        {
            return Err(invalid("only letters, digits and . _ - + ~ are allowed"));
        }
        let key = match format {
            VersionFormat::Plain => plain_key(text).ok_or_else(|| invalid("empty component"))?,
            VersionFormat::Bcd => bcd_key(text).ok_or_else(|| {
                invalid("expected M.mm (0-99 each) or 0xMMmm with decimal digits")
            })?,
            VersionFormat::Hex => hex_key(text)
                .ok_or_else(|| invalid("expected a hexadecimal number of at most 16 digits"))?,
        };
        Ok(Self {
            text: text.to_owned(),
            format,
            key,
        })
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its format.
    pub fn format(&self) -> VersionFormat {
        self.format
    }

    /// Builds the canonical text of a USB `bcdDevice` value (`0x0214` → `2.14`).
    pub fn from_bcd_device(bcd: u16) -> Self {
        let text = format!("{:x}.{:02x}", bcd >> 8, bcd & 0xff);
        Self::parse(&text, VersionFormat::Bcd).unwrap_or_else(|_| Self {
            // Not decimal digits: keep the raw value, ordered numerically.
            text: format!("0x{bcd:04x}"),
            format: VersionFormat::Hex,
            key: vec![Part::Num(u64::from(bcd))],
        })
    }
}

fn plain_key(text: &str) -> Option<Vec<Part>> {
    let mut out = Vec::new();
    for comp in text.split(['.', '-', '_', '+', '~']) {
        if comp.is_empty() {
            return None;
        }
        // Split runs of digits from runs of letters: `2b3` → 2, b, 3.
        let mut rest = comp;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (head, tail) = if digits > 0 {
                rest.split_at(digits)
            } else {
                let letters = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
                rest.split_at(letters)
            };
            out.push(match head.parse::<u64>() {
                Ok(n) => Part::Num(n),
                Err(_) if digits > 0 => return None,
                Err(_) => Part::Text(head.to_ascii_lowercase()),
            });
            rest = tail;
        }
    }
    // Trailing zeros do not make a version newer: 1.2 == 1.2.0.
    while matches!(out.last(), Some(Part::Num(0))) && out.len() > 1 {
        out.pop();
    }
    Some(out)
}

fn bcd_key(text: &str) -> Option<Vec<Part>> {
    let (major, minor) = if let Some(hex) =
        text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))
    {
        if hex.len() != 4 || !hex.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (hex[..2].parse::<u64>().ok()?, hex[2..].parse::<u64>().ok()?)
    } else {
        let (a, b) = text.split_once('.')?;
        let ok = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !ok(a) || !ok(b) {
            return None;
        }
        // `2.5` is the BCD minor 0x50, as the device would report it.
        let minor = if b.len() == 1 {
            b.parse::<u64>().ok()? * 10
        } else {
            b.parse().ok()?
        };
        (a.parse().ok()?, minor)
    };
    Some(vec![Part::Num(major), Part::Num(minor)])
}

fn hex_key(text: &str) -> Option<Vec<Part>> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16)
        .ok()
        .map(|n| vec![Part::Num(n)])
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    /// Versions of the same format compare by value; different formats
    /// compare by format name first so the order is still total.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.format as u8)
            .cmp(&(other.format as u8))
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.format as u8).hash(state);
        self.key.hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VersionFormat::*;

    fn v(s: &str, f: VersionFormat) -> Version {
        Version::parse(s, f).unwrap()
    }

    #[test]
    fn ordering_table() {
        let cases = [
            ("2.9", "2.14", Plain, Ordering::Less),
            ("2.14.0", "2.14", Plain, Ordering::Equal),
            ("10.0", "9.99.99", Plain, Ordering::Greater),
            ("1.0.beta", "1.0.1", Plain, Ordering::Less),
            ("1.2rc1", "1.2rc2", Plain, Ordering::Less),
            ("0225", "225", Plain, Ordering::Equal),
            ("2.5", "2.40", Bcd, Ordering::Greater),
            ("0x0214", "2.14", Bcd, Ordering::Equal),
            ("1.09", "1.10", Bcd, Ordering::Less),
            ("0x00ff", "0x0100", Hex, Ordering::Less),
            ("A", "0x9", Hex, Ordering::Greater),
            ("1a2b", "0X1A2B", Hex, Ordering::Equal),
        ];
        for (a, b, f, want) in cases {
            assert_eq!(v(a, f).cmp(&v(b, f)), want, "{a} vs {b} as {f}");
        }
    }

    #[test]
    fn rejects() {
        let cases = [
            ("", Plain),
            ("1..2", Plain),
            ("1.2 beta", Plain),
            ("../../etc", Plain),
            ("2.145", Bcd),
            ("0x1a00", Bcd),
            ("2", Bcd),
            ("0xzz", Hex),
            ("0x12345678901234567", Hex),
        ];
        for (s, f) in cases {
            assert!(Version::parse(s, f).is_err(), "{s:?} accepted as {f}");
        }
        let long = "1.".repeat(40) + "1";
        assert!(Version::parse(&long, Plain).is_err());
    }

    #[test]
    fn bcd_device_text() {
        assert_eq!(Version::from_bcd_device(0x0214).as_str(), "2.14");
        assert_eq!(Version::from_bcd_device(0x1009).as_str(), "10.09");
        assert_eq!(Version::from_bcd_device(0x00ab).as_str(), "0x00ab");
        assert!(Version::from_bcd_device(0x0215) > Version::from_bcd_device(0x0214));
    }

    #[test]
    fn format_names() {
        for (s, f) in [
            ("plain", Plain),
            ("triplet", Plain),
            ("BCD", Bcd),
            ("hex", Hex),
        ] {
            assert_eq!(s.parse::<VersionFormat>().unwrap(), f);
        }
        assert!("intel-me".parse::<VersionFormat>().is_err());
    }

    #[test]
    fn survives_serde_round_trip() {
        let a = v("2.9", Plain);
        let json = serde_json::to_string(&a).unwrap();
        let back: Version = serde_json::from_str(&json).unwrap();
        assert!(back < v("2.14", Plain));
        assert_eq!(back.as_str(), "2.9");
    }
}
