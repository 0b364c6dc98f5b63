//! libusb hotplug callbacks forwarded to a channel by a background thread.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::Duration;

use rusb::{Context, Device, Hotplug, HotplugBuilder, UsbContext};

use super::describe;
use crate::host::{DeviceInfo, HotplugEvent};

struct Forward {
    tx: Sender<HotplugEvent>,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Forward")
    }
}

fn minimal(device: &Device<Context>) -> DeviceInfo {
    let (vendor_id, product_id) = device
        .device_descriptor()
        .map(|d| (d.vendor_id(), d.product_id()))
        .unwrap_or((0, 0));
    DeviceInfo {
        vendor_id,
        product_id,
        bcd_device: 0,
        serial: None,
        product: None,
        port_path: device
            .port_numbers()
            .ok()
            .map(|p| super::port_path(device.bus_number(), &p)),
        interfaces: Vec::new(),
    }
}

impl Hotplug<Context> for Forward {
    fn device_arrived(&mut self, device: Device<Context>) {
        if let Some(info) = describe(&device) {
            let _ = self.tx.send(HotplugEvent::Arrived(info));
        }
    }

    fn device_left(&mut self, device: Device<Context>) {
        // A departed device cannot be opened; only its IDs and port are known.
        let _ = self.tx.send(HotplugEvent::Left(minimal(&device)));
    }
}

/// Starts forwarding hotplug events; `None` if the platform has no hotplug support.
pub(super) fn watch(context: &Context) -> Option<Receiver<HotplugEvent>> {
    if !rusb::has_hotplug() {
        return None;
    }
    let (tx, rx) = channel();
    let ctx = context.clone();
    let registration = HotplugBuilder::new()
        .enumerate(false)
        .register(&ctx, Box::new(Forward { tx }))
        .ok()?;
    thread::Builder::new()
        .name("dfu-usb-hotplug".into())
        .spawn(move || {
            let _keep = registration;
            // Lives as long as the process (or until libusb fails): std channels give no
            // way to notice a dropped receiver without sending.
            while ctx.handle_events(Some(Duration::from_millis(500))).is_ok() {}
        })
        .ok()?;
    Some(rx)
}
