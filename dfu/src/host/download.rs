//! DFU 1.1 download (with manifestation) and upload.

use super::descriptor::DfuMode;
use super::error::DfuError;
use super::progress::{Phase, Progress};
use super::session::{DfuHost, MAX_POLLS};
use super::transport::{Transport, TransportError};
use super::types::{DfuState, Request};

/// How manifestation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestOutcome {
    /// The device is back in dfuIDLE (manifestation-tolerant, or polled via quirk).
    Complete,
    /// The device is in dfuMANIFEST-WAIT-RESET: it needs a USB reset, or an unplug/replug.
    NeedsReset,
    /// The device reset itself during manifestation and came back (see the transport's device).
    DeviceReset,
}

impl<T: Transport> DfuHost<T> {
    fn require_dfu_mode(&self, during: &'static str) -> Result<(), DfuError> {
        if self.mode() == DfuMode::Runtime {
            return Err(DfuError::UnexpectedState {
                during,
                state: DfuState::AppIdle,
            });
        }
        Ok(())
    }

    /// Sends one DNLOAD block and polls GETSTATUS (honouring bwPollTimeout) until the
    /// device is in dfuDNLOAD-IDLE again.
    pub(crate) fn download_block(&mut self, block: u16, data: &[u8]) -> Result<(), DfuError> {
        self.out(Request::Dnload, block, data, "DNLOAD")?;
        for _ in 0..MAX_POLLS {
            let st = self.get_status_checked()?;
            match st.state {
                DfuState::DfuDnloadIdle => return Ok(()),
                DfuState::DfuDnbusy | DfuState::DfuDnloadSync => self.poll_wait(st.poll_timeout),
                state => {
                    return Err(DfuError::UnexpectedState {
                        during: "downloading",
                        state,
                    })
                }
            }
        }
        Err(DfuError::UnexpectedState {
            during: "downloading (device stayed busy)",
            state: DfuState::DfuDnbusy,
        })
    }

    /// Downloads `image` in wTransferSize blocks, ends with a zero-length DNLOAD and runs
    /// manifestation. The device must be in DFU mode; it is first brought to dfuIDLE.
    pub fn download(
        &mut self,
        image: &[u8],
        progress: &mut dyn Progress,
    ) -> Result<ManifestOutcome, DfuError> {
        self.require_dfu_mode("starting a download")?;
        if image.is_empty() {
            return Err(DfuError::EmptyImage);
        }
        if !self.interface.functional.attributes.can_download {
            return Err(DfuError::NotSupported("firmware download"));
        }
        self.recover()?;
        let total = image.len() as u64;
        let size = self.transfer_size();
        progress.report(Phase::Download, 0, total);
        let mut block: u16 = 0;
        let mut done = 0u64;
        for chunk in image.chunks(size) {
            self.download_block(block, chunk)?;
            block = block.wrapping_add(1);
            done += chunk.len() as u64;
            progress.report(Phase::Download, done, total);
        }
        self.out(Request::Dnload, block, &[], "DNLOAD (end of download)")?;
        self.manifest(progress)
    }

    /// Polls through manifestation after the zero-length DNLOAD.
    pub fn manifest(&mut self, progress: &mut dyn Progress) -> Result<ManifestOutcome, DfuError> {
        progress.report(Phase::Manifest, 0, 1);
        let polling = self.polls_manifestation();
        for _ in 0..MAX_POLLS {
            let st = match self.get_status_checked() {
                Ok(st) => st,
                Err(DfuError::Transport {
                    source: TransportError::Disconnected | TransportError::Timeout,
                    ..
                }) => return self.after_vanish(progress),
                Err(DfuError::Transport {
                    source: TransportError::Stall,
                    ..
                }) if !polling => {
                    // Non-tolerant devices may stop answering once manifested.
                    return Ok(ManifestOutcome::NeedsReset);
                }
                Err(e) => return Err(e),
            };
            match st.state {
                DfuState::DfuIdle => {
                    progress.report(Phase::Manifest, 1, 1);
                    return Ok(ManifestOutcome::Complete);
                }
                DfuState::DfuManifestWaitReset => {
                    progress.report(Phase::Manifest, 1, 1);
                    return Ok(ManifestOutcome::NeedsReset);
                }
                DfuState::DfuManifestSync => self.poll_wait(st.poll_timeout),
                DfuState::DfuManifest => {
                    self.poll_wait(st.poll_timeout);
                    if !polling {
                        // After the poll timeout a non-tolerant device is in
                        // dfuMANIFEST-WAIT-RESET and need not answer any more.
                        progress.report(Phase::Manifest, 1, 1);
                        return Ok(ManifestOutcome::NeedsReset);
                    }
                }
                state => {
                    return Err(DfuError::UnexpectedState {
                        during: "installing the firmware",
                        state,
                    })
                }
            }
        }
        Err(DfuError::UnexpectedState {
            during: "installing the firmware (device stayed busy)",
            state: DfuState::DfuManifest,
        })
    }

    fn after_vanish(&mut self, progress: &mut dyn Progress) -> Result<ManifestOutcome, DfuError> {
        let mut m = self.reenumeration_matcher(DfuMode::Runtime);
        m.mode = None;
        m.product_id = None;
        match self.follow(&m, "installing the firmware") {
            Ok(()) => {
                progress.report(Phase::Manifest, 1, 1);
                Ok(ManifestOutcome::DeviceReset)
            }
            Err(DfuError::Reenumeration { .. }) => Err(DfuError::VanishedDuringManifestation),
            Err(e) => Err(e),
        }
    }

    /// Reads the firmware back with UPLOAD until the device sends a short block, or until
    /// `max_len` bytes were read (then ABORT). Ends in dfuIDLE.
    pub fn upload(
        &mut self,
        max_len: Option<usize>,
        progress: &mut dyn Progress,
    ) -> Result<Vec<u8>, DfuError> {
        self.upload_from(0, max_len, progress)
    }

    /// Like [`upload`](Self::upload) but numbering blocks from `first_block`
    /// (DfuSe data blocks start at 2).
    pub(crate) fn upload_from(
        &mut self,
        first_block: u16,
        max_len: Option<usize>,
        progress: &mut dyn Progress,
    ) -> Result<Vec<u8>, DfuError> {
        let mut out = Vec::with_capacity(max_len.unwrap_or_else(|| self.transfer_size()));
        self.upload_each(first_block, max_len, progress, &mut |block: &[u8]| {
            out.extend_from_slice(block);
            Ok(())
        })?;
        Ok(out)
    }

    /// Uploads block by block, handing each block to `sink`; returns the byte count.
    pub(crate) fn upload_each(
        &mut self,
        first_block: u16,
        max_len: Option<usize>,
        progress: &mut dyn Progress,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), DfuError>,
    ) -> Result<usize, DfuError> {
        self.require_dfu_mode("reading firmware")?;
        if !self.can_upload() {
            return Err(DfuError::NotSupported("reading firmware back (upload)"));
        }
        if first_block == 0 {
            self.recover()?;
        }
        let size = self.transfer_size();
        let total = max_len.map_or(0, |m| m as u64);
        progress.report(Phase::Upload, 0, total);
        let mut buf = vec![0u8; size];
        let mut done = 0usize;
        let mut block = first_block;
        loop {
            let want = max_len.map_or(size, |m| (m - done).min(size));
            let n = self.input(Request::Upload, block, &mut buf[..want], "UPLOAD")?;
            sink(&buf[..n])?;
            done += n;
            progress.report(Phase::Upload, done as u64, total);
            if n < want {
                // A short block ends the upload; the device is back in dfuIDLE.
                return Ok(done);
            }
            if max_len == Some(done) {
                self.abort()?;
                return Ok(done);
            }
            block = block.wrapping_add(1);
        }
    }

    /// Reads `image.len()` bytes back and compares them with `image` block by block.
    pub fn verify(&mut self, image: &[u8], progress: &mut dyn Progress) -> Result<(), DfuError> {
        self.verify_from(0, image, progress)
    }

    pub(crate) fn verify_from(
        &mut self,
        first_block: u16,
        image: &[u8],
        progress: &mut dyn Progress,
    ) -> Result<(), DfuError> {
        let total = image.len() as u64;
        let mut offset = 0usize;
        let read = self.upload_each(
            first_block,
            Some(image.len()),
            progress,
            &mut |block: &[u8]| {
                compare(&image[offset..offset + block.len()], block).map_err(|e| match e {
                    DfuError::VerifyMismatch { offset: o } => {
                        DfuError::VerifyMismatch { offset: offset + o }
                    }
                    e => e,
                })?;
                offset += block.len();
                Ok(())
            },
        )?;
        if read < image.len() {
            return Err(DfuError::VerifyMismatch { offset: read });
        }
        progress.report(Phase::Verify, total, total);
        Ok(())
    }
}

pub(crate) fn compare(image: &[u8], read: &[u8]) -> Result<(), DfuError> {
    if image == read {
        return Ok(());
    }
    if let Some(offset) = image.iter().zip(read).position(|(a, b)| a != b) {
        return Err(DfuError::VerifyMismatch { offset });
    }
    if image.len() != read.len() {
        return Err(DfuError::VerifyMismatch {
            offset: image.len().min(read.len()),
        });
    }
    Ok(())
}
