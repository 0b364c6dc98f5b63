//! The simulated backend: devices on a `test-devices` virtual bus.

use catalog::protocol::Battery;
use test_devices::VirtualBus;

use super::{BackendError, DeviceBackend, TelephonyDevice};

/// Devices on a virtual bus (tests, the demo, the fleet simulator).
#[derive(Debug, Clone)]
pub struct SimDevices {
    bus: VirtualBus,
}

impl SimDevices {
    /// Reads devices from `bus`.
    pub fn new(bus: VirtualBus) -> Self {
        Self { bus }
    }

    /// The bus, for tests that plug and unplug devices.
    pub fn bus(&self) -> &VirtualBus {
        &self.bus
    }
}

impl DeviceBackend for SimDevices {
    type Dfu = VirtualBus;

    fn dfu(&self) -> &VirtualBus {
        &self.bus
    }

    fn telephony(&self) -> Result<Vec<TelephonyDevice>, BackendError> {
        Ok(self
            .bus
            .telephony_devices()
            .into_iter()
            .map(|(_, t)| TelephonyDevice {
                vendor_id: t.vendor_id,
                product_id: t.product_id,
                bcd_device: 0,
                manufacturer: Some(t.manufacturer),
                product: Some(t.product),
                serial: t.serial,
                version: Some(t.version),
                battery: t.battery.map(|b| match b {
                    test_devices::Battery::TalkTimeMinutes(m) => Battery::TalkTimeMinutes(m),
                    test_devices::Battery::RoughPercent(p) => Battery::RoughPercent(p),
                }),
                in_call: t.in_call,
                port_path: t.port_path,
            })
            .collect())
    }
}
