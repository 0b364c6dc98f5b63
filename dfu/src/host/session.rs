//! [`DfuHost`]: one opened DFU device, its requests, recovery and mode switches.

use std::time::Duration;

use super::descriptor::{DeviceInfo, DeviceMatcher, DfuInterface, DfuMode};
use super::error::{DeviceError, DfuError};
use super::progress::{Phase, Progress};
use super::transport::{Setup, Transport, TransportError};
use super::types::{
    DfuState, DfuStatus, Request, StatusResponse, REQUEST_TYPE_IN, REQUEST_TYPE_OUT,
};
use crate::quirks::{QuirkTable, Quirks};

/// Default timeout of a single control transfer.
pub const DEFAULT_CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound on consecutive status polls before the host gives up on a busy device.
pub(crate) const MAX_POLLS: u32 = 100_000;

/// A DFU host session on one device, generic over the [`Transport`].
#[derive(Debug)]
pub struct DfuHost<T: Transport> {
    pub(crate) transport: T,
    pub(crate) table: QuirkTable,
    pub(crate) quirks: Quirks,
    pub(crate) interface: DfuInterface,
    pub(crate) control_timeout: Duration,
    pub(crate) runtime_product_id: Option<u16>,
    pub(crate) total_poll_wait: Duration,
}

impl<T: Transport> DfuHost<T> {
    /// Opens a session on the transport's device, with quirks from `table`.
    pub fn new(transport: T, table: QuirkTable) -> Result<Self, DfuError> {
        let d = transport.device();
        let quirks = table.lookup(d.vendor_id, d.product_id, d.bcd_device);
        let mut host = Self::with_quirks(transport, quirks)?;
        host.table = table;
        Ok(host)
    }

    /// Opens a session with explicit quirks (no table lookups on re-enumeration).
    pub fn with_quirks(transport: T, quirks: Quirks) -> Result<Self, DfuError> {
        let interface = transport
            .device()
            .interfaces
            .first()
            .cloned()
            .ok_or(DfuError::NoDfuInterface { alt: None })?;
        let runtime_product_id =
            (interface.mode == DfuMode::Runtime).then(|| transport.device().product_id);
        Ok(Self {
            transport,
            table: QuirkTable::new(),
            quirks,
            interface,
            control_timeout: DEFAULT_CONTROL_TIMEOUT,
            runtime_product_id,
            total_poll_wait: Duration::ZERO,
        })
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Ends the session, returning the transport.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// The device as last enumerated.
    pub fn device(&self) -> &DeviceInfo {
        self.transport.device()
    }

    /// The selected DFU interface.
    pub fn interface(&self) -> &DfuInterface {
        &self.interface
    }

    /// The quirks in effect.
    pub fn quirks(&self) -> &Quirks {
        &self.quirks
    }

    /// Runtime or DFU mode.
    pub fn mode(&self) -> DfuMode {
        self.interface.mode
    }

    /// Sum of all poll waits the host performed in this session.
    pub fn total_poll_wait(&self) -> Duration {
        self.total_poll_wait
    }

    /// Sets the timeout of single control transfers.
    pub fn set_control_timeout(&mut self, timeout: Duration) {
        self.control_timeout = timeout;
    }

    /// Block size: the quirk override or wTransferSize (at least 1).
    pub fn transfer_size(&self) -> usize {
        usize::from(
            self.quirks
                .transfer_size
                .unwrap_or(self.interface.functional.transfer_size)
                .max(1),
        )
    }

    /// Whether UPLOAD may be used.
    pub fn can_upload(&self) -> bool {
        self.interface.functional.attributes.can_upload && !self.quirks.no_upload
    }

    /// Whether the device detaches by itself after DETACH.
    pub fn will_detach(&self) -> bool {
        self.quirks
            .will_detach
            .unwrap_or(self.interface.functional.attributes.will_detach)
    }

    /// Whether the host polls through manifestation back to dfuIDLE.
    pub fn polls_manifestation(&self) -> bool {
        self.interface.functional.attributes.manifestation_tolerant || self.quirks.manifest_polling
    }

    /// Selects a DFU alternate setting (a DfuSe target).
    pub fn select_alt(&mut self, alt: u8) -> Result<(), DfuError> {
        let iface = self
            .transport
            .device()
            .interfaces
            .iter()
            .find(|i| i.alt_setting == alt)
            .cloned()
            .ok_or(DfuError::NoDfuInterface { alt: Some(alt) })?;
        self.transport
            .set_alt_setting(iface.number, alt)
            .map_err(DfuError::transport("select alternate setting"))?;
        self.interface = iface;
        Ok(())
    }

    fn setup(&self, request_type: u8, request: Request, value: u16) -> Setup {
        Setup {
            request_type,
            request: request as u8,
            value,
            index: u16::from(self.interface.number),
        }
    }

    pub(crate) fn out(
        &mut self,
        request: Request,
        value: u16,
        data: &[u8],
        op: &'static str,
    ) -> Result<(), DfuError> {
        let setup = self.setup(REQUEST_TYPE_OUT, request, value);
        self.transport
            .control_out(setup, data, self.control_timeout)
            .map_err(DfuError::transport(op))?;
        Ok(())
    }

    pub(crate) fn input(
        &mut self,
        request: Request,
        value: u16,
        buf: &mut [u8],
        op: &'static str,
    ) -> Result<usize, DfuError> {
        let setup = self.setup(REQUEST_TYPE_IN, request, value);
        self.transport
            .control_in(setup, buf, self.control_timeout)
            .map_err(DfuError::transport(op))
    }

    /// DFU_GETSTATUS, returned as is (error statuses are not turned into errors).
    pub fn get_status(&mut self) -> Result<StatusResponse, DfuError> {
        let mut buf = [0u8; StatusResponse::LEN];
        let n = self.input(Request::GetStatus, 0, &mut buf, "GETSTATUS")?;
        StatusResponse::parse(&buf[..n]).ok_or(DfuError::Protocol("GETSTATUS"))
    }

    /// DFU_GETSTATUS; a non-OK status or dfuERROR becomes [`DfuError::Device`].
    pub fn get_status_checked(&mut self) -> Result<StatusResponse, DfuError> {
        let st = self.get_status()?;
        if st.status != DfuStatus::Ok || st.state == DfuState::DfuError {
            let status = if st.status == DfuStatus::Ok {
                DfuStatus::ErrUnknown
            } else {
                st.status
            };
            let description = match st.string_index {
                0 => None,
                index => self.string_descriptor(index),
            };
            return Err(DeviceError {
                status,
                state: st.state,
                description,
            }
            .into());
        }
        Ok(st)
    }

    /// The string descriptor `index` in US English, best effort: a device
    /// that stalls or answers garbage gives `None` (it is only ever extra
    /// detail on an error already being reported).
    pub fn string_descriptor(&mut self, index: u8) -> Option<String> {
        const GET_DESCRIPTOR: u8 = 6;
        const STRING: u16 = 3;
        const LANG_EN_US: u16 = 0x0409;
        let setup = Setup {
            request_type: REQUEST_TYPE_STANDARD_IN,
            request: GET_DESCRIPTOR,
            value: STRING << 8 | u16::from(index),
            index: LANG_EN_US,
        };
        let mut buf = [0u8; 255];
        let n = self
            .transport
            .control_in(setup, &mut buf, self.control_timeout)
            .ok()?;
        parse_string_descriptor(&buf[..n])
    }

    /// DFU_GETSTATE.
    pub fn get_state(&mut self) -> Result<DfuState, DfuError> {
        let mut buf = [0u8; 1];
        let n = self.input(Request::GetState, 0, &mut buf, "GETSTATE")?;
        if n < 1 {
            return Err(DfuError::Protocol("GETSTATE"));
        }
        DfuState::from_u8(buf[0]).ok_or(DfuError::Protocol("GETSTATE"))
    }

    /// DFU_CLRSTATUS (dfuERROR → dfuIDLE).
    pub fn clear_status(&mut self) -> Result<(), DfuError> {
        self.out(Request::ClrStatus, 0, &[], "CLRSTATUS")
    }

    /// DFU_ABORT (idle download/upload states → dfuIDLE).
    pub fn abort(&mut self) -> Result<(), DfuError> {
        self.out(Request::Abort, 0, &[], "ABORT")
    }

    /// DFU_DETACH with the given timeout in milliseconds.
    pub fn detach(&mut self, timeout_ms: u16) -> Result<(), DfuError> {
        self.out(Request::Detach, timeout_ms, &[], "DETACH")
    }

    /// Waits the poll timeout `reported` by the device, as adjusted by quirks.
    pub fn poll_wait(&mut self, reported: Duration) {
        let d = self.quirks.poll_wait(reported);
        self.total_poll_wait += d;
        if !d.is_zero() {
            self.transport.sleep(d);
        }
    }

    /// Brings a DFU-mode device back to dfuIDLE from dfuERROR (CLRSTATUS) or from an
    /// interrupted download/upload (ABORT). Returns the status code that was cleared, if any.
    pub fn recover(&mut self) -> Result<Option<DfuStatus>, DfuError> {
        let mut cleared = None;
        let mut stalls = 0;
        for _ in 0..MAX_POLLS {
            let st = match self.get_status() {
                // A host that lost track may poll a busy device too early; the device then
                // stalls and enters dfuERROR, which the next round clears.
                Err(DfuError::Transport {
                    source: TransportError::Stall,
                    ..
                }) if stalls < 2 => {
                    stalls += 1;
                    continue;
                }
                other => other?,
            };
            match st.state {
                DfuState::DfuIdle => return Ok(cleared),
                DfuState::DfuError => {
                    cleared = Some(st.status);
                    self.clear_status()?;
                }
                DfuState::DfuDnloadIdle | DfuState::DfuUploadIdle => self.abort()?,
                DfuState::DfuDnbusy
                | DfuState::DfuDnloadSync
                | DfuState::DfuManifest
                | DfuState::DfuManifestSync => self.poll_wait(st.poll_timeout),
                state => {
                    return Err(DfuError::UnexpectedState {
                        during: "recovering to dfuIDLE",
                        state,
                    })
                }
            }
        }
        Err(DfuError::UnexpectedState {
            during: "recovering to dfuIDLE (device stayed busy)",
            state: DfuState::DfuDnbusy,
        })
    }

    /// A matcher for this device after it re-enumerates in `mode`: by serial number if it
    /// has one, else by port path; by PID only when the quirks say the PID does not change.
    pub fn reenumeration_matcher(&self, mode: DfuMode) -> DeviceMatcher {
        let d = self.transport.device();
        let product_id = if self.quirks.no_pid_change {
            Some(d.product_id)
        } else if mode == DfuMode::Runtime {
            self.runtime_product_id
        } else {
            None
        };
        DeviceMatcher {
            vendor_id: Some(d.vendor_id),
            product_id,
            serial: d.serial.clone(),
            port_path: if d.serial.is_some() {
                None
            } else {
                d.port_path.clone()
            },
            mode: Some(mode),
        }
    }

    /// Waits for the device to come back matching `matcher`, then re-reads its interface.
    pub(crate) fn follow(
        &mut self,
        matcher: &DeviceMatcher,
        during: &'static str,
    ) -> Result<(), DfuError> {
        let timeout = self.quirks.reenumeration_timeout();
        self.transport
            .wait_reenumeration(matcher, timeout)
            .map_err(|source| DfuError::Reenumeration { during, source })?;
        let d = self.transport.device();
        // Quirks keyed by the new identity (e.g. the DFU-mode PID) add to the ones in effect.
        let more = self.table.lookup(d.vendor_id, d.product_id, d.bcd_device);
        self.quirks.merge(&more);
        self.interface = d
            .interfaces
            .first()
            .cloned()
            .ok_or(DfuError::NoDfuInterface { alt: None })?;
        Ok(())
    }

    /// Runtime → DFU mode: DETACH, then a USB reset unless the device detaches by itself,
    /// then follows the device through re-enumeration. No-op in DFU mode.
    pub fn enter_dfu_mode(&mut self, progress: &mut dyn Progress) -> Result<(), DfuError> {
        if self.mode() == DfuMode::Dfu {
            return Ok(());
        }
        progress.report(Phase::Detach, 0, 1);
        self.runtime_product_id = Some(self.device().product_id);
        let timeout = self.interface.functional.detach_timeout_ms;
        self.detach(timeout)?;
        if !self.will_detach() {
            match self.transport.reset() {
                Ok(()) | Err(TransportError::Disconnected) => {}
                Err(e) => {
                    return Err(DfuError::Transport {
                        op: "USB reset",
                        source: e,
                    })
                }
            }
        }
        let matcher = self.reenumeration_matcher(DfuMode::Dfu);
        self.follow(&matcher, "switching to update mode")?;
        progress.report(Phase::Detach, 1, 1);
        Ok(())
    }

    /// DFU → runtime: USB reset (twice with `extra_reset_on_attach`), then waits for the
    /// device in runtime mode. Returns `Ok(false)` if it came back in DFU mode instead
    /// (e.g. no valid application), `Err(Reenumeration)` if it did not come back.
    pub fn reset_to_runtime(&mut self, progress: &mut dyn Progress) -> Result<bool, DfuError> {
        progress.report(Phase::Attach, 0, 1);
        self.usb_reset()?;
        if self.quirks.extra_reset_on_attach {
            let m = self.reenumeration_matcher(DfuMode::Dfu);
            self.follow(&m, "the first reset")?;
            self.usb_reset()?;
        }
        let mut any = self.reenumeration_matcher(DfuMode::Runtime);
        any.mode = None;
        any.product_id = None;
        self.follow(&any, "restarting the device")?;
        progress.report(Phase::Attach, 1, 1);
        Ok(self.mode() == DfuMode::Runtime)
    }

    pub(crate) fn usb_reset(&mut self) -> Result<(), DfuError> {
        match self.transport.reset() {
            Ok(()) | Err(TransportError::Disconnected) => Ok(()),
            Err(source) => Err(DfuError::Transport {
                op: "USB reset",
                source,
            }),
        }
    }
}

/// bmRequestType of a standard device-to-host request to the device.
const REQUEST_TYPE_STANDARD_IN: u8 = 0x80;

/// Longest status description kept, in characters.
const MAX_DESCRIPTION_CHARS: usize = 126;

/// Decodes a USB string descriptor (bLength, bDescriptorType 3, UTF-16LE);
/// control characters are dropped so a device cannot forge log lines.
fn parse_string_descriptor(b: &[u8]) -> Option<String> {
    let (&len, rest) = b.split_first()?;
    let (&kind, body) = rest.split_first()?;
    let len = usize::from(len);
    if kind != 3 || len < 2 || len > b.len() || len % 2 != 0 {
        return None;
    }
    let units = body[..len - 2]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    let text: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod string_descriptor_tests {
    use super::parse_string_descriptor;

    fn descriptor(text: &str) -> Vec<u8> {
        let mut b = vec![0, 3];
        for u in text.encode_utf16() {
            b.extend_from_slice(&u.to_le_bytes());
        }
        b[0] = b.len() as u8;
        b
    }

    #[test]
    fn string_descriptors_table() {
        let mut wrong_type = descriptor("abc");
        wrong_type[1] = 2;
        let mut too_long = descriptor("abc");
        too_long[0] = 40;
        let mut odd = descriptor("abc");
        odd[0] = 7;
        let table: Vec<(Vec<u8>, Option<&str>)> = vec![
            (descriptor("no FWIM header"), Some("no FWIM header")),
            (descriptor("Größe ✓"), Some("Größe ✓")),
            (descriptor("line\nforged\u{1b}[31m"), Some("lineforged[31m")),
            (descriptor("  "), None),
            (descriptor(""), None),
            (wrong_type, None),
            (too_long, None),
            (odd, None),
            (vec![], None),
            (vec![2], None),
        ];
        for (bytes, want) in table {
            assert_eq!(
                parse_string_descriptor(&bytes).as_deref(),
                want,
                "{bytes:?}"
            );
        }
        let long = descriptor(&"x".repeat(126));
        assert_eq!(parse_string_descriptor(&long).unwrap().len(), 126);
    }
}
