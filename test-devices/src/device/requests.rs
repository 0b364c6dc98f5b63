//! Request handling: the DFU 1.1 state diagram, request by request.

use std::time::Duration;

use dfu::host::{
    DfuMode, DfuState, DfuStatus, Request, Setup, StatusResponse, REQUEST_TYPE_IN, REQUEST_TYPE_OUT,
};

use super::{BusAction, Failure, OnDisconnect, Pending, SimDevice, STATUS_STRING_INDEX};
use crate::fault::Fault;
use crate::image::{self, ImageHeader, HEADER_LEN};

impl SimDevice {
    /// Stalls the current request; in DFU mode this enters dfuERROR/errSTALLEDPKT.
    pub(crate) fn stall(&mut self) -> Failure {
        match self.mode {
            DfuMode::Runtime => {
                if self.state == DfuState::AppDetach {
                    self.set_state(DfuState::AppIdle);
                }
            }
            DfuMode::Dfu => self.fail(DfuStatus::ErrStalledPkt),
        }
        Failure::Stall
    }

    /// Common preamble: time-driven transitions, injected stalls, requests the device
    /// cannot take in its current state.
    fn begin(&mut self, request: Request, now: Duration) -> Result<(), Failure> {
        self.tick(now);
        let stall_armed = self.faults.iter().any(|f| matches!(f, Fault::Stall { .. }));
        let count = if stall_armed {
            let count = self.request_counts.entry(request).or_insert(0);
            *count += 1;
            *count
        } else {
            0
        };
        if let Some(i) = self.faults.iter().position(
            |f| matches!(f, Fault::Stall { request: r, nth } if *r == request && *nth == count),
        ) {
            self.faults.remove(i);
            return Err(self.stall());
        }
        match self.state {
            DfuState::DfuManifestWaitReset => Err(Failure::Stall),
            DfuState::DfuDnbusy | DfuState::DfuManifest => {
                self.violations.push(format!(
                    "{request:?} in {} before the poll timeout elapsed (t={now:?})",
                    self.state
                ));
                Err(self.stall())
            }
            _ => Ok(()),
        }
    }

    /// A host → device control transfer.
    pub fn control_out(
        &mut self,
        setup: Setup,
        data: &[u8],
        now: Duration,
    ) -> Result<usize, Failure> {
        let Some(request) = Request::from_u8(setup.request) else {
            return Err(self.stall());
        };
        if setup.request_type != REQUEST_TYPE_OUT {
            return Err(self.stall());
        }
        self.begin(request, now)?;
        match (self.mode, request, self.state) {
            (DfuMode::Runtime, Request::Detach, DfuState::AppIdle) => {
                self.detach_deadline = now + Duration::from_millis(u64::from(setup.value));
                self.set_state(DfuState::AppDetach);
                let delay = self.profile.reenumeration_delay;
                if self.profile.will_detach {
                    self.enter_dfu();
                    self.bus_action = Some(BusAction::Disconnect {
                        after: Duration::ZERO,
                        reattach_after: Some(delay),
                        then: OnDisconnect::Nothing,
                    });
                } else if self.profile.detaches_silently {
                    self.bus_action = Some(BusAction::Disconnect {
                        after: Duration::from_millis(1),
                        reattach_after: Some(delay),
                        then: OnDisconnect::EnterDfuIfDetaching,
                    });
                }
                Ok(0)
            }
            (DfuMode::Dfu, Request::Dnload, DfuState::DfuIdle | DfuState::DfuDnloadIdle) => {
                self.dnload(setup.value, data)
            }
            (DfuMode::Dfu, Request::ClrStatus, DfuState::DfuError) => {
                self.status = DfuStatus::Ok;
                self.status_text = None;
                self.set_state(DfuState::DfuIdle);
                Ok(0)
            }
            (
                DfuMode::Dfu,
                Request::Abort,
                DfuState::DfuIdle | DfuState::DfuDnloadIdle | DfuState::DfuUploadIdle,
            ) => {
                self.pending = None;
                self.upload_offset = 0;
                self.set_state(DfuState::DfuIdle);
                Ok(0)
            }
            _ => Err(self.stall()),
        }
    }

    fn dnload(&mut self, value: u16, data: &[u8]) -> Result<usize, Failure> {
        if data.is_empty() {
            if self.state == DfuState::DfuIdle {
                return Err(self.stall());
            }
            if self.dfuse.is_none() {
                match ImageHeader::parse(&self.flash) {
                    Ok(h) if self.flash.len() < h.image_len() => {
                        self.fail(DfuStatus::ErrNotDone);
                        return Ok(0);
                    }
                    _ => {}
                }
            }
            self.manifesting = false;
            self.set_state(DfuState::DfuManifestSync);
            return Ok(0);
        }
        if let Some(max) = self.profile.max_block {
            if data.len() > usize::from(max) {
                return Err(self.stall());
            }
        }
        if data.len() > usize::from(self.profile.transfer_size) {
            return Err(self.stall());
        }
        let pending = if self.dfuse.is_some() {
            match value {
                0 => Pending::Command(data.to_vec()),
                1 => return Err(self.stall()),
                _ => Pending::Data {
                    block: value,
                    data: data.to_vec(),
                },
            }
        } else {
            if self.state == DfuState::DfuIdle {
                self.received = 0;
                self.next_block = value;
            }
            Pending::Data {
                block: value,
                data: data.to_vec(),
            }
        };
        self.pending = Some(pending);
        self.set_state(DfuState::DfuDnloadSync);
        Ok(data.len())
    }

    /// A device → host control transfer.
    pub fn control_in(
        &mut self,
        setup: Setup,
        buf: &mut [u8],
        now: Duration,
    ) -> Result<usize, Failure> {
        if setup.request_type == STANDARD_IN {
            return self.standard_in(setup, buf);
        }
        let Some(request) = Request::from_u8(setup.request) else {
            return Err(self.stall());
        };
        if setup.request_type != REQUEST_TYPE_IN {
            return Err(self.stall());
        }
        self.begin(request, now)?;
        match request {
            Request::GetStatus => {
                let poll = self.get_status(now)?;
                let resp = StatusResponse {
                    status: self.status,
                    poll_timeout: poll,
                    state: self.state,
                    string_index: if self.status_text.is_some() {
                        STATUS_STRING_INDEX
                    } else {
                        0
                    },
                }
                .to_bytes();
                let n = resp.len().min(buf.len());
                buf[..n].copy_from_slice(&resp[..n]);
                Ok(n)
            }
            Request::GetState => {
                if let Some(b) = buf.first_mut() {
                    *b = self.state as u8;
                }
                Ok(buf.len().min(1))
            }
            Request::Upload
                if self.mode == DfuMode::Dfu
                    && matches!(self.state, DfuState::DfuIdle | DfuState::DfuUploadIdle) =>
            {
                self.upload(setup.value, buf)
            }
            _ => Err(self.stall()),
        }
    }

    /// GETSTATUS side effects; returns the bwPollTimeout to report.
    fn get_status(&mut self, now: Duration) -> Result<Duration, Failure> {
        match self.state {
            DfuState::DfuDnloadSync => {
                if let Some(p) = self.pending.take() {
                    match p {
                        Pending::Data { block, data } => {
                            if self.dfuse.is_some() {
                                self.dfuse_data(block, &data);
                            } else {
                                self.write_block(&data);
                            }
                        }
                        Pending::Command(cmd) => self.dfuse_command(&cmd),
                    }
                    if let Some(BusAction::Disconnect { .. }) = self.bus_action {
                        return Err(Failure::Gone);
                    }
                    if self.state == DfuState::DfuError {
                        return Ok(Duration::ZERO);
                    }
                    self.busy_until = now + self.busy_time;
                    if self.busy_time.is_zero() && self.reported_poll.is_zero() {
                        self.set_state(DfuState::DfuDnloadIdle);
                        return Ok(Duration::ZERO);
                    }
                } else if now >= self.busy_until {
                    self.set_state(DfuState::DfuDnloadIdle);
                    return Ok(Duration::ZERO);
                }
                let poll = self.reported_poll;
                self.last_poll = poll;
                self.poll_deadline = now + poll;
                self.set_state(DfuState::DfuDnbusy);
                Ok(poll)
            }
            DfuState::DfuManifestSync => self.manifest_sync(now),
            _ => Ok(Duration::ZERO),
        }
    }

    fn manifest_sync(&mut self, now: Duration) -> Result<Duration, Failure> {
        if self.dfuse.is_some() {
            // DfuSe "leave": jump to the application.
            self.set_state(DfuState::DfuManifest);
            self.bus_action = Some(BusAction::Disconnect {
                after: Duration::ZERO,
                reattach_after: Some(self.profile.reenumeration_delay),
                then: OnDisconnect::PowerOn,
            });
            return Ok(Duration::ZERO);
        }
        if self.manifesting {
            // Back from dfuMANIFEST: tolerant (or polled) devices finish here.
            self.commit_manifest();
            self.set_state(DfuState::DfuIdle);
            return Ok(Duration::ZERO);
        }
        let header = match image::validate(&self.flash) {
            Ok(h) => h,
            Err(e) => {
                self.fail_saying(DfuStatus::ErrVerify, e.to_string());
                return Ok(Duration::ZERO);
            }
        };
        if !header.is_for(self.profile.runtime_pid) {
            let why = self.wrong_product(header.product_id);
            self.fail_saying(DfuStatus::ErrTarget, why);
            return Ok(Duration::ZERO);
        }
        self.manifest_header = Some(header);
        self.manifesting = true;
        if let Some(i) = self
            .faults
            .iter()
            .position(|f| matches!(f, Fault::VanishDuringManifest { .. }))
        {
            let comes_back = matches!(
                self.faults.remove(i),
                Fault::VanishDuringManifest { comes_back: true }
            );
            self.commit_manifest();
            self.bus_action = Some(BusAction::Disconnect {
                after: Duration::ZERO,
                reattach_after: comes_back.then_some(self.profile.reenumeration_delay),
                then: OnDisconnect::PowerOn,
            });
            return Err(Failure::Gone);
        }
        self.manifest_deadline = now + self.profile.manifest_time;
        self.set_state(DfuState::DfuManifest);
        Ok(self.profile.manifest_time)
    }

    /// Writes one DFU 1.1 block to flash (checks, faults).
    fn write_block(&mut self, data: &[u8]) {
        self.busy_time = self.profile.block_busy;
        self.reported_poll = self.profile.poll_timeout;
        if self.received == 0 {
            if let Ok(h) = ImageHeader::parse(data) {
                if !h.is_for(self.profile.runtime_pid) {
                    let why = self.wrong_product(h.product_id);
                    self.fail_saying(DfuStatus::ErrTarget, why);
                    return;
                }
            }
            // Erase: the old application is gone from here on.
            self.app = None;
            self.flash.clear();
        }
        if self.received + data.len() > self.profile.flash_size {
            self.fail(DfuStatus::ErrAddress);
            return;
        }
        let start = self.flash.len();
        self.flash.extend_from_slice(data);
        if let Some(i) = self.faults.iter().position(|f| *f == Fault::CorruptWrite) {
            if self.flash.len() > HEADER_LEN {
                self.faults.remove(i);
                let last = self.flash.len() - 1;
                self.flash[last.max(start)] ^= 0x10;
            }
        }
        self.received += data.len();
        self.next_block = self.next_block.wrapping_add(1);
        self.bytes_written_total += data.len() as u64;
        self.check_power_loss();
    }

    pub(crate) fn check_power_loss(&mut self) {
        let hit = self
            .faults
            .iter()
            .position(|f| matches!(f, Fault::PowerLossAfter { bytes } if self.received >= *bytes));
        if let Some(i) = hit {
            self.faults.remove(i);
            self.app = None;
            self.bus_action = Some(BusAction::Disconnect {
                after: Duration::ZERO,
                reattach_after: Some(self.profile.reenumeration_delay),
                then: OnDisconnect::PowerOn,
            });
        }
    }

    fn upload(&mut self, value: u16, buf: &mut [u8]) -> Result<usize, Failure> {
        if !self.profile.can_upload || self.profile.upload_broken {
            return Err(self.stall());
        }
        if let Some(i) = self.faults.iter().position(|f| *f == Fault::RefuseUpload) {
            self.faults.remove(i);
            return Err(self.stall());
        }
        let n = if self.dfuse.is_some() {
            match self.dfuse_upload(value, buf) {
                Some(n) => n,
                None => return Err(self.stall()),
            }
        } else {
            if self.state == DfuState::DfuIdle {
                self.upload_offset = 0;
            }
            let rest = self.flash.len().saturating_sub(self.upload_offset);
            let n = rest.min(buf.len());
            buf[..n].copy_from_slice(&self.flash[self.upload_offset..self.upload_offset + n]);
            self.upload_offset += n;
            n
        };
        if n < buf.len() {
            self.upload_offset = 0;
            self.set_state(DfuState::DfuIdle);
        } else {
            self.set_state(DfuState::DfuUploadIdle);
        }
        Ok(n)
    }
}

/// bmRequestType of a standard device-to-host request to the device.
const STANDARD_IN: u8 = 0x80;
/// The standard GET_DESCRIPTOR request.
const GET_DESCRIPTOR: u8 = 6;
/// The string descriptor type.
const STRING_DESCRIPTOR: u16 = 3;

impl SimDevice {
    /// Standard requests: only the status description string is served
    /// here (the other descriptors travel in [`SimDevice::info`]). Others
    /// stall at the endpoint without touching the DFU state, as a USB device
    /// answers a standard request it does not support.
    fn standard_in(&mut self, setup: Setup, buf: &mut [u8]) -> Result<usize, Failure> {
        let wanted = STRING_DESCRIPTOR << 8 | u16::from(STATUS_STRING_INDEX);
        let text = match &self.status_text {
            Some(t) if setup.request == GET_DESCRIPTOR && setup.value == wanted => t,
            _ => return Err(Failure::Stall),
        };
        let mut d = vec![0u8, 3];
        for unit in text.encode_utf16().take(126) {
            d.extend_from_slice(&unit.to_le_bytes());
        }
        d[0] = u8::try_from(d.len()).unwrap_or(u8::MAX);
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(n)
    }

    fn wrong_product(&self, image_for: u16) -> String {
        format!(
            "the image is for product {image_for:04x}, this device is {:04x}",
            self.profile.runtime_pid
        )
    }
}
