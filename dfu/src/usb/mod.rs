//! The rusb (libusb) transport and backend: enumerate DFU-capable devices in runtime and
//! DFU mode, open them by VID:PID, serial or port path, and follow re-enumeration.
//!
//! Only the descriptor handling is testable without hardware; see [`interfaces_from_raw`]
//! and [`port_path`].

mod hotplug;

use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

use rusb::{Context, Device, DeviceHandle, UsbContext};

use crate::host::{
    Backend, DeviceInfo, DeviceMatcher, DfuInterface, DfuMode, FunctionalDescriptor, HotplugEvent,
    Setup, Transport, TransportError,
};

/// How often [`UsbTransport::wait_reenumeration`] rescans the bus.
const RESCAN_INTERVAL: Duration = Duration::from_millis(100);

/// One interface alternate setting as read from a configuration descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawInterface {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alt_setting: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
    /// The interface string, if read.
    pub name: Option<String>,
    /// Class-specific descriptors following the interface descriptor.
    pub extra: Vec<u8>,
}

/// Picks the DFU interfaces out of raw interface descriptors (pure; skips interfaces
/// whose functional descriptor is missing or malformed).
pub fn interfaces_from_raw(raw: &[RawInterface]) -> Vec<DfuInterface> {
    raw.iter()
        .filter_map(|r| {
            let mode = DfuMode::from_interface(r.class, r.subclass, r.protocol)?;
            let functional = FunctionalDescriptor::find_in(&r.extra).ok()?;
            Some(DfuInterface {
                number: r.number,
                alt_setting: r.alt_setting,
                mode,
                name: r.name.clone(),
                functional,
            })
        })
        .collect()
}

/// Formats a port path like the kernel does: `bus-port.port.port`.
pub fn port_path(bus: u8, ports: &[u8]) -> String {
    let ports: Vec<String> = ports.iter().map(u8::to_string).collect();
    format!("{bus}-{}", ports.join("."))
}

fn map_err(e: rusb::Error) -> TransportError {
    match e {
        rusb::Error::Pipe => TransportError::Stall,
        rusb::Error::NoDevice => TransportError::Disconnected,
        rusb::Error::Timeout => TransportError::Timeout,
        rusb::Error::NotFound => TransportError::NotFound,
        rusb::Error::Access => TransportError::Access,
        other => TransportError::Other(other.to_string()),
    }
}

/// Reads a device's descriptors; `None` if it has no DFU interface.
fn describe(device: &Device<Context>) -> Option<DeviceInfo> {
    let desc = device.device_descriptor().ok()?;
    let config = device
        .active_config_descriptor()
        .or_else(|_| device.config_descriptor(0))
        .ok()?;
    let handle = device.open().ok();
    let mut raw = Vec::new();
    for iface in config.interfaces() {
        for d in iface.descriptors() {
            let name = handle.as_ref().and_then(|h| {
                d.description_string_index()
                    .and_then(|i| h.read_string_descriptor_ascii(i).ok())
            });
            raw.push(RawInterface {
                number: d.interface_number(),
                alt_setting: d.setting_number(),
                class: d.class_code(),
                subclass: d.sub_class_code(),
                protocol: d.protocol_code(),
                name,
                extra: d.extra().to_vec(),
            });
        }
    }
    let interfaces = interfaces_from_raw(&raw);
    if interfaces.is_empty() {
        return None;
    }
    let version = desc.device_version();
    let bcd_device = (u16::from(version.major()) << 8)
        | (u16::from(version.minor()) << 4)
        | u16::from(version.sub_minor());
    let serial = handle
        .as_ref()
        .and_then(|h| h.read_serial_number_string_ascii(&desc).ok());
    let product = handle
        .as_ref()
        .and_then(|h| h.read_product_string_ascii(&desc).ok());
    let port = device
        .port_numbers()
        .ok()
        .map(|p| port_path(device.bus_number(), &p));
    Some(DeviceInfo {
        vendor_id: desc.vendor_id(),
        product_id: desc.product_id(),
        bcd_device,
        serial,
        product,
        port_path: port,
        interfaces,
    })
}

fn scan(context: &Context) -> Result<Vec<(Device<Context>, DeviceInfo)>, TransportError> {
    let list = context.devices().map_err(map_err)?;
    Ok(list
        .iter()
        .filter_map(|d| describe(&d).map(|info| (d, info)))
        .collect())
}

/// Real USB via libusb.
#[derive(Debug, Clone)]
pub struct UsbBackend {
    context: Context,
}

impl UsbBackend {
    /// Opens a libusb context.
    pub fn new() -> Result<Self, TransportError> {
        Ok(Self {
            context: Context::new().map_err(map_err)?,
        })
    }
}

impl Backend for UsbBackend {
    type Transport = UsbTransport;

    fn devices(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        Ok(scan(&self.context)?.into_iter().map(|(_, i)| i).collect())
    }

    fn open(&self, matcher: &DeviceMatcher) -> Result<UsbTransport, TransportError> {
        let (device, info) = scan(&self.context)?
            .into_iter()
            .find(|(_, i)| matcher.matches(i))
            .ok_or(TransportError::NotFound)?;
        UsbTransport::open(self.context.clone(), &device, info)
    }

    fn hotplug(&self) -> Option<Receiver<HotplugEvent>> {
        hotplug::watch(&self.context)
    }
}

/// An opened USB device with its DFU interface claimed.
#[derive(Debug)]
pub struct UsbTransport {
    context: Context,
    handle: DeviceHandle<Context>,
    info: DeviceInfo,
    address: (u8, u8),
    claimed: Option<u8>,
}

impl UsbTransport {
    fn open(
        context: Context,
        device: &Device<Context>,
        info: DeviceInfo,
    ) -> Result<Self, TransportError> {
        let handle = device.open().map_err(map_err)?;
        let _ = handle.set_auto_detach_kernel_driver(true);
        let mut t = Self {
            context,
            handle,
            address: (device.bus_number(), device.address()),
            info,
            claimed: None,
        };
        if let Some(i) = t.info.interfaces.first().map(|i| i.number) {
            t.handle.claim_interface(i).map_err(map_err)?;
            t.claimed = Some(i);
        }
        Ok(t)
    }
}

impl Transport for UsbTransport {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn control_in(
        &mut self,
        setup: Setup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        self.handle
            .read_control(
                setup.request_type,
                setup.request,
                setup.value,
                setup.index,
                buf,
                timeout,
            )
            .map_err(map_err)
    }

    fn control_out(
        &mut self,
        setup: Setup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        self.handle
            .write_control(
                setup.request_type,
                setup.request,
                setup.value,
                setup.index,
                data,
                timeout,
            )
            .map_err(map_err)
    }

    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> Result<(), TransportError> {
        if self.claimed != Some(interface) {
            self.handle.claim_interface(interface).map_err(map_err)?;
            self.claimed = Some(interface);
        }
        self.handle
            .set_alternate_setting(interface, alt)
            .map_err(map_err)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        match self.handle.reset() {
            // libusb reports NotFound when the device re-enumerated during the reset.
            Ok(()) | Err(rusb::Error::NotFound) | Err(rusb::Error::NoDevice) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    fn wait_reenumeration(
        &mut self,
        matcher: &DeviceMatcher,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        loop {
            for (device, info) in scan(&self.context)? {
                let addr = (device.bus_number(), device.address());
                if addr != self.address && matcher.matches(&info) {
                    *self = Self::open(self.context.clone(), &device, info)?;
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(TransportError::Timeout);
            }
            thread::sleep(RESCAN_INTERVAL);
        }
    }

    fn sleep(&mut self, duration: Duration) {
        thread::sleep(duration);
    }
}
