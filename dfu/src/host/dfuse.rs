//! ST DfuSe extensions (bcdDFUVersion 0x011A): commands in DNLOAD block 0,
//! data blocks from wValue 2 at `address + (wValue - 2) * wTransferSize`.

use super::download::ManifestOutcome;
use super::error::DfuError;
use super::layout::{MemoryLayout, Sector};
use super::progress::{Phase, Progress};
use super::session::{DfuHost, MAX_POLLS};
use super::transport::{Transport, TransportError};
use super::types::{DfuState, Request};

/// DfuSe command byte: set the address pointer.
pub const DFUSE_SET_ADDRESS: u8 = 0x21;
/// DfuSe command byte: erase a page (with address) or everything (without).
pub const DFUSE_ERASE: u8 = 0x41;
/// DfuSe command byte: read unprotect (not used by the host here).
pub const DFUSE_READ_UNPROTECT: u8 = 0x92;

/// How many data blocks are sent before the address pointer is set again
/// (keeps wValue far from wrapping).
const BLOCKS_PER_ADDRESS: usize = 0x4000;

/// One piece of a DfuSe image: bytes for an address on an alternate setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuseSegment {
    /// The target's alternate setting.
    pub alt_setting: u8,
    /// The start address.
    pub address: u32,
    /// The bytes.
    pub data: Vec<u8>,
}

impl<T: Transport> DfuHost<T> {
    /// The selected interface's memory layout (its interface string).
    pub fn dfuse_layout(&self) -> Result<MemoryLayout, DfuError> {
        let name = self
            .interface
            .name
            .as_deref()
            .ok_or(DfuError::NotSupported("DfuSe (no memory layout string)"))?;
        Ok(MemoryLayout::parse(name)?)
    }

    /// Sends a DfuSe command in block 0 and polls it to completion.
    pub fn dfuse_command(&mut self, command: &[u8]) -> Result<(), DfuError> {
        self.out(Request::Dnload, 0, command, "DfuSe command")?;
        for _ in 0..MAX_POLLS {
            let st = self.get_status_checked()?;
            match st.state {
                DfuState::DfuDnloadIdle => return Ok(()),
                DfuState::DfuDnbusy | DfuState::DfuDnloadSync => self.poll_wait(st.poll_timeout),
                state => {
                    return Err(DfuError::UnexpectedState {
                        during: "a DfuSe command",
                        state,
                    })
                }
            }
        }
        Err(DfuError::UnexpectedState {
            during: "a DfuSe command (device stayed busy)",
            state: DfuState::DfuDnbusy,
        })
    }

    /// DfuSe SET_ADDRESS.
    pub fn dfuse_set_address(&mut self, address: u32) -> Result<(), DfuError> {
        let a = address.to_le_bytes();
        self.dfuse_command(&[DFUSE_SET_ADDRESS, a[0], a[1], a[2], a[3]])
    }

    /// DfuSe page ERASE of the page holding `address`.
    pub fn dfuse_erase_page(&mut self, address: u32) -> Result<(), DfuError> {
        let a = address.to_le_bytes();
        self.dfuse_command(&[DFUSE_ERASE, a[0], a[1], a[2], a[3]])
    }

    /// DfuSe mass erase.
    pub fn dfuse_mass_erase(&mut self) -> Result<(), DfuError> {
        self.dfuse_command(&[DFUSE_ERASE])
    }

    /// The sectors a write of `len` bytes at `address` touches; all must be writable.
    pub fn dfuse_sectors_for(&self, address: u32, len: usize) -> Result<Vec<Sector>, DfuError> {
        let layout = self.dfuse_layout()?;
        let sectors = layout
            .sectors_for(address, len)
            .ok_or(DfuError::BadAddress { address })?;
        if let Some(s) = sectors.iter().find(|s| !s.writable) {
            return Err(DfuError::BadAddress { address: s.address });
        }
        Ok(sectors)
    }

    /// Erases exactly the sectors `data` will cover, then writes it at `address`.
    /// Leaves the device in dfuIDLE.
    pub fn dfuse_download(
        &mut self,
        address: u32,
        data: &[u8],
        progress: &mut dyn Progress,
    ) -> Result<(), DfuError> {
        if data.is_empty() {
            return Err(DfuError::EmptyImage);
        }
        let sectors = self.dfuse_sectors_for(address, data.len())?;
        self.recover()?;
        let erase: Vec<&Sector> = sectors.iter().filter(|s| s.erasable).collect();
        progress.report(Phase::Erase, 0, erase.len() as u64);
        for (i, s) in erase.iter().enumerate() {
            self.dfuse_erase_page(s.address)?;
            progress.report(Phase::Erase, i as u64 + 1, erase.len() as u64);
        }
        let size = self.transfer_size();
        let total = data.len() as u64;
        progress.report(Phase::Download, 0, total);
        let mut done = 0u64;
        for (group_index, group) in data.chunks(size * BLOCKS_PER_ADDRESS).enumerate() {
            let offset = group_index * size * BLOCKS_PER_ADDRESS;
            let group_address = u32::try_from(offset)
                .ok()
                .and_then(|o| address.checked_add(o))
                .ok_or(DfuError::BadAddress { address })?;
            self.dfuse_set_address(group_address)?;
            for (i, chunk) in group.chunks(size).enumerate() {
                // i < BLOCKS_PER_ADDRESS, so the block number fits.
                let block = u16::try_from(i + 2).unwrap_or(u16::MAX);
                self.download_block(block, chunk)?;
                done += chunk.len() as u64;
                progress.report(Phase::Download, done, total);
            }
        }
        self.abort()?;
        Ok(())
    }

    fn dfuse_prepare_read(&mut self, address: u32, len: usize) -> Result<(), DfuError> {
        if !self.can_upload() {
            return Err(DfuError::NotSupported("reading firmware back (upload)"));
        }
        let layout = self.dfuse_layout()?;
        let sectors = layout
            .sectors_for(address, len)
            .ok_or(DfuError::BadAddress { address })?;
        if let Some(s) = sectors.iter().find(|s| !s.readable) {
            return Err(DfuError::BadAddress { address: s.address });
        }
        self.recover()?;
        self.dfuse_set_address(address)?;
        self.abort()
    }

    /// Reads `len` bytes from `address`. Leaves the device in dfuIDLE.
    pub fn dfuse_upload(
        &mut self,
        address: u32,
        len: usize,
        progress: &mut dyn Progress,
    ) -> Result<Vec<u8>, DfuError> {
        self.dfuse_prepare_read(address, len)?;
        let data = self.upload_from(2, Some(len), progress)?;
        if data.len() < len {
            self.recover()?;
        }
        Ok(data)
    }

    /// Reads back `data.len()` bytes at `address` and compares, block by block.
    pub fn dfuse_verify(
        &mut self,
        address: u32,
        data: &[u8],
        progress: &mut dyn Progress,
    ) -> Result<(), DfuError> {
        self.dfuse_prepare_read(address, data.len())?;
        self.verify_from(2, data, progress)
    }

    /// Leaves DFU mode and starts the application at `address`: SET_ADDRESS then a
    /// zero-length DNLOAD; the device manifests by jumping to the application.
    pub fn dfuse_leave(&mut self, address: u32) -> Result<ManifestOutcome, DfuError> {
        self.recover()?;
        self.dfuse_set_address(address)?;
        self.out(Request::Dnload, 2, &[], "DfuSe leave")?;
        match self.get_status() {
            Ok(_)
            | Err(DfuError::Transport {
                source: TransportError::Disconnected | TransportError::Stall,
                ..
            }) => Ok(ManifestOutcome::DeviceReset),
            Err(e) => Err(e),
        }
    }
}
