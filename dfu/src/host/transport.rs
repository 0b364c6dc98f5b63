//! The IO boundary: everything the host protocol needs from USB, and nothing more.

use std::sync::mpsc::Receiver;
use std::time::Duration;
use thiserror::Error;

use super::descriptor::{DeviceInfo, DeviceMatcher};

/// A USB control request's setup packet, without wLength (given by the buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// bmRequestType.
    pub request_type: u8,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex (the interface number for DFU requests).
    pub index: u16,
}

/// Errors a transport reports.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransportError {
    /// The device answered the request with a STALL handshake.
    #[error("the device refused the request (stall)")]
    Stall,
    /// The device is no longer attached.
    #[error("the device was disconnected")]
    Disconnected,
    /// The transfer or wait timed out.
    #[error("timed out waiting for the device")]
    Timeout,
    /// No device matched.
    #[error("no matching device found")]
    NotFound,
    /// Access to the device was denied by the operating system.
    #[error("access to the device was denied (permissions)")]
    Access,
    /// Any other IO failure.
    #[error("USB error: {0}")]
    Other(String),
}

/// What the DFU host protocol needs from a USB stack. Implemented by the rusb
/// transport (feature `usb`) and by the simulator in `test-devices`.
///
/// Time goes through [`Transport::sleep`], so a simulated transport can make
/// poll timeouts virtual (and record them) while a real one sleeps.
pub trait Transport {
    /// The currently opened device, as last enumerated.
    fn device(&self) -> &DeviceInfo;

    /// A class/vendor control transfer device → host; returns bytes read into `buf`.
    fn control_in(
        &mut self,
        setup: Setup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError>;

    /// A control transfer host → device; returns bytes written.
    fn control_out(
        &mut self,
        setup: Setup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransportError>;

    /// Claims `interface` and selects alternate setting `alt`.
    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> Result<(), TransportError>;

    /// Issues a USB port reset. The device may disappear afterwards; that is not an error.
    fn reset(&mut self) -> Result<(), TransportError>;

    /// Waits up to `timeout` for a device matching `matcher` to (re-)enumerate, then opens
    /// it in place of the current one. A device handle opened before the call does not count:
    /// the device must have enumerated anew (after a detach or reset).
    fn wait_reenumeration(
        &mut self,
        matcher: &DeviceMatcher,
        timeout: Duration,
    ) -> Result<(), TransportError>;

    /// Waits `duration` (e.g. bwPollTimeout). Simulators advance virtual time instead.
    fn sleep(&mut self, duration: Duration);
}

/// A hotplug notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HotplugEvent {
    /// A device arrived.
    Arrived(DeviceInfo),
    /// A device left.
    Left(DeviceInfo),
}

/// A source of DFU devices: real USB or a virtual bus.
pub trait Backend {
    /// The transport this backend opens.
    type Transport: Transport;

    /// Every DFU-capable device (runtime or DFU mode) currently attached.
    fn devices(&self) -> Result<Vec<DeviceInfo>, TransportError>;

    /// Opens the first device matching `matcher`.
    fn open(&self, matcher: &DeviceMatcher) -> Result<Self::Transport, TransportError>;

    /// A channel of hotplug events, if the platform supports them.
    fn hotplug(&self) -> Option<Receiver<HotplugEvent>>;
}
