//! [`BusTransport`]: the DFU host's [`Transport`] onto a simulated device.

use std::time::Duration;

use dfu::host::{DeviceInfo, DeviceMatcher, DfuMode, Setup, Transport, TransportError};

use crate::bus::{BusDevice, DeviceId, Slot, VirtualBus};
use crate::device::{Failure, SimDevice};
use crate::hid::{HidTelephonyInfo, TELEPHONY_USAGE_PAGE};

/// An open handle to one enumeration of a simulated device. Poll waits advance the bus's
/// virtual time (and are recorded, see [`VirtualBus::sleeps`]); nothing really sleeps.
#[derive(Debug, Clone)]
pub struct BusTransport {
    bus: VirtualBus,
    id: DeviceId,
    generation: u64,
    info: DeviceInfo,
}

impl BusTransport {
    pub(crate) fn new(bus: VirtualBus, id: DeviceId, generation: u64, info: DeviceInfo) -> Self {
        Self {
            bus,
            id,
            generation,
            info,
        }
    }

    /// The bus device id this handle is bound to.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// The bus.
    pub fn bus(&self) -> &VirtualBus {
        &self.bus
    }

    fn with<R>(
        &mut self,
        f: impl FnOnce(&mut SimDevice, Duration) -> Result<R, Failure>,
    ) -> Result<R, TransportError> {
        let mut s = self.bus.lock();
        let now = s.now;
        let slot = s
            .slots
            .get_mut(&self.id)
            .ok_or(TransportError::Disconnected)?;
        if !slot.attached || slot.generation != self.generation {
            return Err(TransportError::Disconnected);
        }
        let BusDevice::Dfu(d) = &mut slot.device else {
            return Err(TransportError::Disconnected);
        };
        let r = f(d, now);
        let action = d.take_bus_action();
        s.apply(self.id, action);
        s.persist();
        r.map_err(|e| match e {
            Failure::Stall => TransportError::Stall,
            Failure::Gone => TransportError::Disconnected,
        })
    }
}

impl Transport for BusTransport {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn control_in(
        &mut self,
        setup: Setup,
        buf: &mut [u8],
        _timeout: Duration,
    ) -> Result<usize, TransportError> {
        self.with(|d, now| d.control_in(setup, buf, now))
    }

    fn control_out(
        &mut self,
        setup: Setup,
        data: &[u8],
        _timeout: Duration,
    ) -> Result<usize, TransportError> {
        self.with(|d, now| d.control_out(setup, data, now))
    }

    fn set_alt_setting(&mut self, _interface: u8, alt: u8) -> Result<(), TransportError> {
        self.with(|d, _| d.set_alt_setting(alt))
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        let mut s = self.bus.lock();
        let ok = s
            .slots
            .get(&self.id)
            .is_some_and(|slot| slot.attached && slot.generation == self.generation);
        if !ok {
            return Err(TransportError::Disconnected);
        }
        s.reset(self.id);
        s.persist();
        Ok(())
    }

    fn wait_reenumeration(
        &mut self,
        matcher: &DeviceMatcher,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let mut s = self.bus.lock();
        let deadline = s.now + timeout;
        loop {
            let found = s.slots.iter().find_map(|(id, slot)| {
                if !slot.attached || (*id == self.id && slot.generation == self.generation) {
                    return None;
                }
                let info = slot.dfu_info()?;
                matcher
                    .matches(&info)
                    .then_some((*id, slot.generation, info))
            });
            if let Some((id, generation, info)) = found {
                s.persist();
                self.id = id;
                self.generation = generation;
                self.info = info;
                return Ok(());
            }
            match s.next_event() {
                Some(at) if at <= deadline => s.advance_to(at),
                _ => {
                    s.advance_to(deadline);
                    s.persist();
                    return Err(TransportError::Timeout);
                }
            }
        }
    }

    fn sleep(&mut self, duration: Duration) {
        let mut s = self.bus.lock();
        s.sleeps.push(duration);
        let t = s.now + duration;
        s.advance_to(t);
        s.persist();
    }
}

/// The telephony HID view of a DFU device in runtime mode (`None` in DFU mode or if the
/// model has no telephony interface).
pub(crate) fn telephony_view(d: &SimDevice, slot: &Slot) -> Option<HidTelephonyInfo> {
    let p = d.profile();
    if !p.telephony || d.mode() != DfuMode::Runtime {
        return None;
    }
    Some(HidTelephonyInfo {
        vendor_id: p.vendor_id,
        product_id: p.runtime_pid,
        usage_page: TELEPHONY_USAGE_PAGE,
        manufacturer: "Example Audio".to_owned(),
        product: p.name.clone(),
        serial: p.serial.clone(),
        version: d.firmware_version()?.to_string(),
        battery: None,
        in_call: slot.in_call,
        port_path: Some(slot.port.clone()),
    })
}
