//! The USB DFU 1.1 + DfuSe host protocol, sans-IO: a state machine over the
//! [`Transport`] trait. Time (bwPollTimeout waits) goes through
//! [`Transport::sleep`], so simulated transports run instantly.
//!
//! Entry points: [`flash`] and [`flash_dfuse`] for whole updates, [`DfuHost`] for
//! single steps (detach, download, upload, recover, DfuSe commands).

mod descriptor;
mod dfuse;
mod download;
mod error;
mod flash;
mod layout;
mod progress;
mod session;
mod transport;
mod types;

pub use descriptor::{
    DescriptorError, DeviceInfo, DeviceMatcher, DfuAttributes, DfuInterface, DfuMode,
    FunctionalDescriptor, DFU_CLASS, DFU_FUNCTIONAL_DESCRIPTOR_TYPE, DFU_SUBCLASS, DFU_VERSION_1_1,
    DFU_VERSION_DFUSE,
};
pub use dfuse::{DfuseSegment, DFUSE_ERASE, DFUSE_READ_UNPROTECT, DFUSE_SET_ADDRESS};
pub use download::ManifestOutcome;
pub use error::{DeviceError, DfuError};
pub use flash::{flash, flash_dfuse, FlashOptions, FlashOutcome, FlashReport};
pub use layout::{LayoutError, MemoryLayout, Sector};
pub use progress::{NoProgress, Phase, Progress};
pub use session::{DfuHost, DEFAULT_CONTROL_TIMEOUT};
pub use transport::{Backend, HotplugEvent, Setup, Transport, TransportError};
pub use types::{DfuState, DfuStatus, Request, StatusResponse, REQUEST_TYPE_IN, REQUEST_TYPE_OUT};

impl<T: Transport + ?Sized> Transport for &mut T {
    fn device(&self) -> &DeviceInfo {
        (**self).device()
    }
    fn control_in(
        &mut self,
        setup: Setup,
        buf: &mut [u8],
        timeout: std::time::Duration,
    ) -> Result<usize, TransportError> {
        (**self).control_in(setup, buf, timeout)
    }
    fn control_out(
        &mut self,
        setup: Setup,
        data: &[u8],
        timeout: std::time::Duration,
    ) -> Result<usize, TransportError> {
        (**self).control_out(setup, data, timeout)
    }
    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> Result<(), TransportError> {
        (**self).set_alt_setting(interface, alt)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn wait_reenumeration(
        &mut self,
        matcher: &DeviceMatcher,
        timeout: std::time::Duration,
    ) -> Result<(), TransportError> {
        (**self).wait_reenumeration(matcher, timeout)
    }
    fn sleep(&mut self, duration: std::time::Duration) {
        (**self).sleep(duration)
    }
}
