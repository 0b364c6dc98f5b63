//! The DfuSe side: memories per alternate setting, SET_ADDRESS / ERASE commands,
//! addressed data blocks and uploads.

use dfu::host::{DfuStatus, MemoryLayout, DFUSE_ERASE, DFUSE_READ_UNPROTECT, DFUSE_SET_ADDRESS};

use super::SimDevice;
use crate::image::{self, FirmwareVersion};

/// Flash memories of a DfuSe device, one per alternate setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuseMemory {
    layouts: Vec<MemoryLayout>,
    mems: Vec<Vec<u8>>,
    pointer: u32,
    erased: Vec<(u8, u32)>,
    mass_erases: usize,
}

impl DfuseMemory {
    /// Memories for the given layout strings (all bytes erased, 0xFF).
    ///
    /// # Panics
    /// If a layout string does not parse (profiles are static test data).
    pub fn new(layouts: &[String]) -> Self {
        let layouts: Vec<MemoryLayout> = layouts
            .iter()
            .map(|l| MemoryLayout::parse(l).expect("profile layout strings are valid"))
            .collect();
        let mems = layouts
            .iter()
            .map(|l| vec![0xFF; usize::try_from(l.total_size()).unwrap_or(0)])
            .collect();
        Self {
            layouts,
            mems,
            pointer: 0,
            erased: Vec::new(),
            mass_erases: 0,
        }
    }

    /// The layout of an alternate setting.
    pub fn layout(&self, alt: u8) -> Option<&MemoryLayout> {
        self.layouts.get(usize::from(alt))
    }

    /// Start address of an alternate setting's memory.
    pub fn base(&self, alt: u8) -> u32 {
        self.layout(alt).map_or(0, |l| l.sectors[0].address)
    }

    /// The address pointer set by SET_ADDRESS.
    pub fn pointer(&self) -> u32 {
        self.pointer
    }

    /// Every page erase so far: (alternate setting, sector address).
    pub fn erase_log(&self) -> &[(u8, u32)] {
        &self.erased
    }

    /// How many mass erases were done.
    pub fn mass_erases(&self) -> usize {
        self.mass_erases
    }

    fn offset(&self, alt: u8, address: u32, len: usize) -> Option<usize> {
        let mem = self.mems.get(usize::from(alt))?;
        let off = usize::try_from(address.checked_sub(self.base(alt))?).ok()?;
        (off + len <= mem.len()).then_some(off)
    }

    /// Reads memory.
    pub fn read(&self, alt: u8, address: u32, len: usize) -> Option<&[u8]> {
        let off = self.offset(alt, address, len)?;
        Some(&self.mems[usize::from(alt)][off..off + len])
    }

    /// Stores bytes at the start of an alternate setting's memory (factory programming).
    pub fn store(&mut self, alt: u8, data: &[u8]) {
        if let Some(m) = self.mems.get_mut(usize::from(alt)) {
            let n = data.len().min(m.len());
            m[..n].copy_from_slice(&data[..n]);
        }
    }

    /// The memories' contents, one per alternate setting.
    pub fn memories(&self) -> &[Vec<u8>] {
        &self.mems
    }

    pub(crate) fn memories_mut(&mut self) -> &mut [Vec<u8>] {
        &mut self.mems
    }

    /// The version of a valid image at the start of memory 0, if any.
    pub fn app_version(&self) -> Option<FirmwareVersion> {
        image::validate(self.mems.first()?).ok().map(|h| h.version)
    }
}

impl SimDevice {
    pub(crate) fn dfuse_command(&mut self, cmd: &[u8]) {
        let alt = self.alt;
        let erase_time = self
            .profile
            .dfuse
            .as_ref()
            .map(|d| d.erase_time)
            .unwrap_or_default();
        self.busy_time = std::time::Duration::ZERO;
        self.reported_poll = std::time::Duration::ZERO;
        let Some(mem) = self.dfuse.as_mut() else {
            return;
        };
        let layout = mem.layouts[usize::from(alt)].clone();
        let address =
            (cmd.len() == 5).then(|| u32::from_le_bytes([cmd[1], cmd[2], cmd[3], cmd[4]]));
        let status = match (cmd.first().copied(), address) {
            (Some(DFUSE_SET_ADDRESS), Some(a)) => {
                if layout.sector_at(a).is_some() {
                    mem.pointer = a;
                    None
                } else {
                    Some(DfuStatus::ErrAddress)
                }
            }
            (Some(DFUSE_ERASE), Some(a)) => match layout.sector_at(a) {
                None => Some(DfuStatus::ErrAddress),
                Some(s) if !s.erasable => Some(DfuStatus::ErrTarget),
                Some(s) => {
                    let off = mem.offset(alt, s.address, s.size as usize).unwrap_or(0);
                    mem.mems[usize::from(alt)][off..off + s.size as usize].fill(0xFF);
                    mem.erased.push((alt, s.address));
                    self.busy_time = erase_time;
                    self.reported_poll = erase_time;
                    None
                }
            },
            (Some(DFUSE_ERASE), None) if cmd.len() == 1 => {
                for s in layout.sectors.iter().filter(|s| s.erasable) {
                    let off = mem.offset(alt, s.address, s.size as usize).unwrap_or(0);
                    mem.mems[usize::from(alt)][off..off + s.size as usize].fill(0xFF);
                }
                mem.mass_erases += 1;
                self.busy_time = erase_time * 4;
                self.reported_poll = erase_time * 4;
                None
            }
            (Some(DFUSE_READ_UNPROTECT), _) => Some(DfuStatus::ErrVendor),
            _ => Some(DfuStatus::ErrStalledPkt),
        };
        if let Some(s) = status {
            self.fail(s);
        }
    }

    pub(crate) fn dfuse_data(&mut self, block: u16, data: &[u8]) {
        self.busy_time = self.profile.block_busy;
        self.reported_poll = self.profile.poll_timeout;
        let alt = self.alt;
        let size = u32::from(self.profile.transfer_size);
        let Some(mem) = self.dfuse.as_mut() else {
            return;
        };
        let address = mem
            .pointer
            .wrapping_add(u32::from(block.saturating_sub(2)) * size);
        let layout = &mem.layouts[usize::from(alt)];
        let status = match layout.sectors_for(address, data.len()) {
            None => Some(DfuStatus::ErrAddress),
            Some(sectors) if sectors.iter().any(|s| !s.writable) => Some(DfuStatus::ErrTarget),
            Some(_) => {
                let off = mem.offset(alt, address, data.len()).unwrap_or(0);
                let target = &mut mem.mems[usize::from(alt)][off..off + data.len()];
                if target.iter().any(|b| *b != 0xFF) {
                    Some(DfuStatus::ErrCheckErased)
                } else {
                    target.copy_from_slice(data);
                    None
                }
            }
        };
        if let Some(s) = status {
            self.fail(s);
            return;
        }
        if alt == 0 {
            self.app = None;
        }
        self.received += data.len();
        self.bytes_written_total += data.len() as u64;
        self.check_power_loss();
    }

    pub(crate) fn dfuse_upload(&mut self, value: u16, buf: &mut [u8]) -> Option<usize> {
        let alt = self.alt;
        let size = u32::from(self.profile.transfer_size);
        let mem = self.dfuse.as_ref()?;
        if value == 0 {
            let cmds = [0x00, DFUSE_SET_ADDRESS, DFUSE_ERASE, DFUSE_READ_UNPROTECT];
            let n = cmds.len().min(buf.len());
            buf[..n].copy_from_slice(&cmds[..n]);
            return Some(n);
        }
        if value < 2 {
            return None;
        }
        let address = mem.pointer.wrapping_add(u32::from(value - 2) * size);
        let layout = mem.layout(alt)?;
        if layout.sector_at(address).is_some_and(|s| !s.readable) {
            return None;
        }
        let end = u64::from(mem.base(alt)) + layout.total_size();
        let avail = usize::try_from(end.saturating_sub(u64::from(address))).unwrap_or(0);
        let n = avail.min(buf.len());
        if n > 0 {
            buf[..n].copy_from_slice(mem.read(alt, address, n)?);
        }
        Some(n)
    }
}
