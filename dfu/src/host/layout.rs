//! DfuSe memory layout strings: `@Name/0xADDR/N*SSSUt,N*SSSUt/0xADDR/...`.
//!
//! `N` is a sector count, `SSS` a size, `U` the unit (` ` or `B` = bytes, `K` = KiB,
//! `M` = MiB) and `t` the sector type letter `a`..`g`: bit 0 readable, bit 1 erasable,
//! bit 2 writable (so `g` = read/erase/write, `a` = read only).

use std::fmt;
use std::ops::Range;
use thiserror::Error;

/// A run of equal sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sector {
    /// Start address of the sector.
    pub address: u32,
    /// Sector size in bytes.
    pub size: u32,
    /// Can be read (UPLOAD).
    pub readable: bool,
    /// Can be erased.
    pub erasable: bool,
    /// Can be written.
    pub writable: bool,
}

impl Sector {
    /// Address range covered.
    pub fn range(&self) -> Range<u64> {
        u64::from(self.address)..u64::from(self.address) + u64::from(self.size)
    }
}

/// A parsed memory layout: a name and its sectors in address order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLayout {
    /// The memory's name (trailing spaces trimmed).
    pub name: String,
    /// Every sector, expanded (one entry per sector).
    pub sectors: Vec<Sector>,
}

/// Errors from [`MemoryLayout::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayoutError {
    /// The string does not start with `@`.
    #[error("memory layout must start with '@'")]
    MissingAt,
    /// A region address is not `0x` hex.
    #[error("bad region address {0:?}")]
    BadAddress(String),
    /// A sector group is not `N*SSSUt`.
    #[error("bad sector group {0:?}")]
    BadSectors(String),
    /// The layout lists no sectors.
    #[error("memory layout has no sectors")]
    Empty,
}

impl MemoryLayout {
    /// Parses a layout string such as `@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg`.
    pub fn parse(s: &str) -> Result<Self, LayoutError> {
        let s = s.strip_prefix('@').ok_or(LayoutError::MissingAt)?;
        let mut parts = s.split('/');
        let name = parts.next().unwrap_or("").trim().to_owned();
        let mut sectors = Vec::new();
        while let Some(addr) = parts.next() {
            let addr = addr.trim();
            if addr.is_empty() {
                continue;
            }
            let hex = addr
                .strip_prefix("0x")
                .or_else(|| addr.strip_prefix("0X"))
                .ok_or_else(|| LayoutError::BadAddress(addr.to_owned()))?;
            let mut address = u32::from_str_radix(hex, 16)
                .map_err(|_| LayoutError::BadAddress(addr.to_owned()))?;
            let groups = parts.next().unwrap_or("");
            for group in groups.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                let (count, size, flags) = parse_group(group)?;
                for _ in 0..count {
                    sectors.push(Sector {
                        address,
                        size,
                        readable: flags & 1 != 0,
                        erasable: flags & 2 != 0,
                        writable: flags & 4 != 0,
                    });
                    address = address.wrapping_add(size);
                }
            }
        }
        if sectors.is_empty() {
            return Err(LayoutError::Empty);
        }
        Ok(Self { name, sectors })
    }

    /// The sector holding `address`.
    pub fn sector_at(&self, address: u32) -> Option<&Sector> {
        self.sectors
            .iter()
            .find(|s| s.range().contains(&u64::from(address)))
    }

    /// The sectors overlapping `[address, address + len)`, or `None` if part of the range
    /// is not covered by the layout.
    pub fn sectors_for(&self, address: u32, len: usize) -> Option<Vec<Sector>> {
        let end = u64::from(address) + len as u64;
        let mut out = Vec::new();
        let mut cursor = u64::from(address);
        while cursor < end {
            let s = self.sector_at(u32::try_from(cursor).ok()?)?;
            out.push(*s);
            cursor = s.range().end;
        }
        Some(out)
    }

    /// Total bytes covered.
    pub fn total_size(&self) -> u64 {
        self.sectors.iter().map(|s| u64::from(s.size)).sum()
    }
}

fn parse_group(g: &str) -> Result<(u32, u32, u8), LayoutError> {
    let bad = || LayoutError::BadSectors(g.to_owned());
    let (count, rest) = g.split_once('*').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let size: u32 = rest[..digits_end].parse().map_err(|_| bad())?;
    let mut tail = rest[digits_end..].chars();
    let (mult, flag_char) = match (tail.next(), tail.next()) {
        (Some('K'), Some(f)) => (1024, f),
        (Some('M'), Some(f)) => (1024 * 1024, f),
        (Some(' ' | 'B'), Some(f)) => (1, f),
        (Some(f), None) => (1, f),
        _ => return Err(bad()),
    };
    if !('a'..='g').contains(&flag_char) {
        return Err(bad());
    }
    let flags = flag_char as u8 - b'a' + 1;
    let size = size.checked_mul(mult).ok_or_else(bad)?;
    Ok((count, size, flags))
}

impl fmt::Display for MemoryLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} sectors, {} bytes",
            self.name,
            self.sectors.len(),
            self.total_size()
        )
    }
}
