//! A virtual USB bus: attach/detach, re-enumeration, hotplug events, virtual time,
//! and the [`dfu::host::Transport`]/[`Backend`] implementations the DFU host uses.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dfu::host::{Backend, DeviceInfo, DeviceMatcher, HotplugEvent, TransportError};

use crate::device::{BusAction, OnDisconnect, SimDevice};
use crate::hid::{HidTelephonyDevice, HidTelephonyInfo};
use crate::persist::{DeviceStore, Fingerprint, PersistError};

pub use crate::transport::BusTransport;

/// A device's id on the bus (stable across re-enumerations and replugs).
pub type DeviceId = u32;

/// What is plugged into a slot.
#[derive(Debug, Clone)]
pub enum BusDevice {
    /// A DFU-capable device.
    Dfu(Box<SimDevice>),
    /// A HID-only telephony device.
    Hid(HidTelephonyDevice),
}

/// A bus event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A device enumerated.
    Attached {
        /// Which.
        id: DeviceId,
        /// Virtual time.
        at: Duration,
        /// Its descriptors (DFU devices) — `None` for HID-only devices.
        info: Option<DeviceInfo>,
    },
    /// A device left the bus.
    Detached {
        /// Which.
        id: DeviceId,
        /// Virtual time.
        at: Duration,
    },
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) device: BusDevice,
    pub(crate) port: String,
    pub(crate) attached: bool,
    pub(crate) generation: u64,
    pub(crate) in_call: bool,
    /// Descriptors as read at the last enumeration (they only change by re-enumerating).
    enumerated: Option<DeviceInfo>,
    /// The device's key in the bus's [`DeviceStore`] and what was last saved.
    persisted: Option<(String, Option<Fingerprint>)>,
}

impl Slot {
    /// The descriptors of the current (or last) enumeration; `None` for HID-only devices.
    pub(crate) fn dfu_info(&self) -> Option<DeviceInfo> {
        self.enumerated.clone()
    }
}

#[derive(Debug, Clone, Copy)]
enum Scheduled {
    Disconnect(OnDisconnect, Option<Duration>),
    Attach,
}

#[derive(Debug, Default)]
pub(crate) struct BusState {
    pub(crate) now: Duration,
    pub(crate) slots: BTreeMap<DeviceId, Slot>,
    scheduled: Vec<(Duration, DeviceId, Scheduled)>,
    subscribers: Vec<Sender<BusEvent>>,
    hotplug: Vec<Sender<HotplugEvent>>,
    history: Vec<BusEvent>,
    pub(crate) sleeps: Vec<Duration>,
    next_id: DeviceId,
    next_generation: u64,
    store: Option<DeviceStore>,
    persist_errors: Vec<String>,
}

impl BusState {
    /// Saves every persisted device whose durable state changed; freezes the
    /// bus if the store's threshold is reached (see [`DeviceStore`]).
    pub(crate) fn persist(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let mut wrote = false;
        let mut total = 0;
        for slot in self.slots.values_mut() {
            let (Some((key, saved)), BusDevice::Dfu(d)) = (&mut slot.persisted, &slot.device)
            else {
                continue;
            };
            total += d.bytes_written();
            let now = Fingerprint::of(d);
            if *saved == Some(now) {
                continue;
            }
            match crate::persist::DeviceSnapshot::of(d).write(&store.path(key)) {
                Ok(()) => {
                    *saved = Some(now);
                    wrote = true;
                }
                Err(e) => self.persist_errors.push(e.to_string()),
            }
        }
        if wrote && store.freeze_after().is_some_and(|limit| total >= limit) {
            store.freeze(total);
        }
    }

    fn emit(&mut self, event: BusEvent, dfu: Option<HotplugEvent>) {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
        if let Some(h) = dfu {
            self.hotplug.retain(|s| s.send(h.clone()).is_ok());
        }
        self.history.push(event);
    }

    pub(crate) fn attach(&mut self, id: DeviceId) {
        let now = self.now;
        self.next_generation += 1;
        let generation = self.next_generation;
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.attached {
            return;
        }
        slot.attached = true;
        slot.generation = generation;
        slot.enumerated = match &slot.device {
            BusDevice::Dfu(d) => Some(d.info(&slot.port)),
            BusDevice::Hid(_) => None,
        };
        let info = slot.dfu_info();
        let h = info.clone().map(HotplugEvent::Arrived);
        self.emit(BusEvent::Attached { id, at: now, info }, h);
    }

    pub(crate) fn detach(&mut self, id: DeviceId) {
        let now = self.now;
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if !slot.attached {
            return;
        }
        slot.attached = false;
        let h = slot.dfu_info().map(HotplugEvent::Left);
        self.emit(BusEvent::Detached { id, at: now }, h);
    }

    fn cancel(&mut self, id: DeviceId) {
        self.scheduled.retain(|(_, i, _)| *i != id);
    }

    fn run(&mut self, id: DeviceId, what: Scheduled) {
        match what {
            Scheduled::Attach => self.attach(id),
            Scheduled::Disconnect(then, reattach) => {
                let now = self.now;
                if let Some(Slot {
                    device: BusDevice::Dfu(d),
                    ..
                }) = self.slots.get_mut(&id)
                {
                    d.tick(now);
                    d.on_disconnect(then);
                }
                self.detach(id);
                if let Some(after) = reattach {
                    self.scheduled.push((now + after, id, Scheduled::Attach));
                }
            }
        }
    }

    /// Advances virtual time to `t`, running scheduled bus events on the way.
    pub(crate) fn advance_to(&mut self, t: Duration) {
        loop {
            let next = self
                .scheduled
                .iter()
                .enumerate()
                .filter(|(_, (at, _, _))| *at <= t)
                .min_by_key(|(_, (at, _, _))| *at)
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let (at, id, what) = self.scheduled.remove(i);
            self.now = self.now.max(at);
            self.run(id, what);
        }
        self.now = self.now.max(t);
    }

    /// The time of the next scheduled event.
    pub(crate) fn next_event(&self) -> Option<Duration> {
        self.scheduled.iter().map(|(at, _, _)| *at).min()
    }

    /// Applies what a device asked for after a request.
    pub(crate) fn apply(&mut self, id: DeviceId, action: Option<BusAction>) {
        let Some(BusAction::Disconnect {
            after,
            reattach_after,
            then,
        }) = action
        else {
            return;
        };
        let what = Scheduled::Disconnect(then, reattach_after);
        if after.is_zero() {
            self.run(id, what);
        } else {
            let at = self.now + after;
            self.scheduled.push((at, id, what));
        }
    }

    /// A USB reset of device `id`.
    pub(crate) fn reset(&mut self, id: DeviceId) {
        let now = self.now;
        let Some(Slot {
            device: BusDevice::Dfu(d),
            ..
        }) = self.slots.get_mut(&id)
        else {
            return;
        };
        if let Some(delay) = d.on_reset(now) {
            self.cancel(id);
            self.detach(id);
            self.scheduled.push((now + delay, id, Scheduled::Attach));
        }
    }
}

/// The virtual bus. Cloning gives another handle to the same bus (thread-safe).
#[derive(Debug, Clone, Default)]
pub struct VirtualBus {
    pub(crate) inner: Arc<Mutex<BusState>>,
}

impl VirtualBus {
    /// An empty bus at virtual time zero.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, BusState> {
        // A panic while holding the lock (a failing test) must not hide other results.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, device: BusDevice) -> DeviceId {
        self.insert_keyed(device, None)
    }

    fn insert_keyed(&self, device: BusDevice, key: Option<String>) -> DeviceId {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        let port = format!("1-{id}");
        let in_call = match &device {
            BusDevice::Hid(h) => h.info.in_call,
            BusDevice::Dfu(_) => false,
        };
        s.slots.insert(
            id,
            Slot {
                device,
                port,
                attached: false,
                generation: 0,
                in_call,
                enumerated: None,
                persisted: key.map(|k| (k, None)),
            },
        );
        s.attach(id);
        s.persist();
        id
    }

    /// A bus whose DFU devices attached with [`VirtualBus::attach_persistent`]
    /// keep their state in `store` (see [`crate::persist`]).
    pub fn with_store(store: DeviceStore) -> Self {
        let bus = Self::new();
        bus.lock().store = Some(store);
        bus
    }

    /// Plugs in a DFU device that keeps its state under `key` in the bus's
    /// store: a state saved earlier (by another process) is loaded into it
    /// first. Without a store this is [`VirtualBus::attach`].
    pub fn attach_persistent(
        &self,
        mut device: SimDevice,
        key: &str,
    ) -> Result<DeviceId, PersistError> {
        let store = self.lock().store.clone();
        let Some(store) = store else {
            return Ok(self.attach(device));
        };
        if let Some(saved) = store.load(key)? {
            saved.apply(&store.path(key), &mut device)?;
        }
        Ok(self.insert_keyed(BusDevice::Dfu(Box::new(device)), Some(key.to_owned())))
    }

    /// Errors writing device states so far (a device cannot fail to keep its
    /// flash; the simulation records the failure for the test to see).
    pub fn persist_errors(&self) -> Vec<String> {
        self.lock().persist_errors.clone()
    }

    /// Plugs in a DFU device; returns its id.
    pub fn attach(&self, device: SimDevice) -> DeviceId {
        self.insert(BusDevice::Dfu(Box::new(device)))
    }

    /// Plugs in a HID-only telephony device.
    pub fn attach_hid(&self, device: HidTelephonyDevice) -> DeviceId {
        self.insert(BusDevice::Hid(device))
    }

    /// The user pulls the cable: the device loses power and leaves the bus.
    pub fn unplug(&self, id: DeviceId) {
        let mut s = self.lock();
        let now = s.now;
        s.cancel(id);
        if let Some(Slot {
            device: BusDevice::Dfu(d),
            ..
        }) = s.slots.get_mut(&id)
        {
            d.tick(now);
        }
        s.detach(id);
        s.persist();
    }

    /// The user plugs the device back in: it powers on (application if valid, else
    /// bootloader) and enumerates.
    pub fn plug(&self, id: DeviceId) {
        let mut s = self.lock();
        if let Some(Slot {
            device: BusDevice::Dfu(d),
            attached: false,
            ..
        }) = s.slots.get_mut(&id)
        {
            d.power_on();
        }
        s.attach(id);
        s.persist();
    }

    /// "The user unplugs and replugs the device."
    pub fn replug(&self, id: DeviceId) {
        self.unplug(id);
        self.plug(id);
    }

    /// Re-enumerates a device without a power cycle (same state, new enumeration).
    pub fn reenumerate(&self, id: DeviceId) {
        let mut s = self.lock();
        s.detach(id);
        s.attach(id);
    }

    /// Virtual time now.
    pub fn now(&self) -> Duration {
        self.lock().now
    }

    /// Advances virtual time, running scheduled events (re-attachments).
    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        let t = s.now + by;
        s.advance_to(t);
        s.persist();
    }

    /// Every wait requested through a transport's `sleep`, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    /// Every bus event so far.
    pub fn history(&self) -> Vec<BusEvent> {
        self.lock().history.clone()
    }

    /// Subscribes to bus events.
    pub fn subscribe(&self) -> Receiver<BusEvent> {
        let (tx, rx) = channel();
        self.lock().subscribers.push(tx);
        rx
    }

    /// Whether device `id` is attached.
    pub fn is_attached(&self, id: DeviceId) -> bool {
        self.lock().slots.get(&id).is_some_and(|s| s.attached)
    }

    /// Runs `f` on DFU device `id` (inspection, fault injection). `None` if no such device.
    pub fn with_device<R>(&self, id: DeviceId, f: impl FnOnce(&mut SimDevice) -> R) -> Option<R> {
        let mut s = self.lock();
        let r = match s.slots.get_mut(&id) {
            Some(Slot {
                device: BusDevice::Dfu(d),
                ..
            }) => Some(f(d)),
            _ => None,
        };
        s.persist();
        r
    }

    /// A snapshot of DFU device `id`.
    pub fn device(&self, id: DeviceId) -> Option<SimDevice> {
        self.with_device(id, |d| d.clone())
    }

    /// The descriptors of attached DFU device `id`.
    pub fn info(&self, id: DeviceId) -> Option<DeviceInfo> {
        let s = self.lock();
        s.slots
            .get(&id)
            .filter(|slot| slot.attached)
            .and_then(Slot::dfu_info)
    }

    /// Attached DFU devices with their ids.
    pub fn dfu_devices(&self) -> Vec<(DeviceId, DeviceInfo)> {
        let s = self.lock();
        s.slots
            .iter()
            .filter(|(_, slot)| slot.attached)
            .filter_map(|(id, slot)| slot.dfu_info().map(|i| (*id, i)))
            .collect()
    }

    /// Sets whether a call is active on device `id`.
    pub fn set_in_call(&self, id: DeviceId, in_call: bool) {
        if let Some(slot) = self.lock().slots.get_mut(&id) {
            slot.in_call = in_call;
        }
    }

    /// Inventory: every attached device exposing the telephony usage page, ours (DFU
    /// devices in runtime mode with a telephony interface) and other vendors'.
    pub fn telephony_devices(&self) -> Vec<(DeviceId, HidTelephonyInfo)> {
        let s = self.lock();
        s.slots
            .iter()
            .filter(|(_, slot)| slot.attached)
            .filter_map(|(id, slot)| {
                let info = match &slot.device {
                    BusDevice::Hid(h) => HidTelephonyInfo {
                        in_call: slot.in_call,
                        port_path: Some(slot.port.clone()),
                        ..h.info.clone()
                    },
                    BusDevice::Dfu(d) => crate::transport::telephony_view(d, slot)?,
                };
                Some((*id, info))
            })
            .collect()
    }

    /// Opens DFU device `id` as a transport.
    pub fn open_id(&self, id: DeviceId) -> Result<BusTransport, TransportError> {
        let s = self.lock();
        let slot = s.slots.get(&id).ok_or(TransportError::NotFound)?;
        if !slot.attached {
            return Err(TransportError::NotFound);
        }
        let info = slot.dfu_info().ok_or(TransportError::NotFound)?;
        Ok(BusTransport::new(self.clone(), id, slot.generation, info))
    }
}

impl Backend for VirtualBus {
    type Transport = BusTransport;

    fn devices(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        Ok(self.dfu_devices().into_iter().map(|(_, i)| i).collect())
    }

    fn open(&self, matcher: &DeviceMatcher) -> Result<BusTransport, TransportError> {
        let id = self
            .dfu_devices()
            .into_iter()
            .find(|(_, i)| matcher.matches(i))
            .map(|(id, _)| id)
            .ok_or(TransportError::NotFound)?;
        self.open_id(id)
    }

    fn hotplug(&self) -> Option<Receiver<HotplugEvent>> {
        let (tx, rx) = channel();
        self.lock().hotplug.push(tx);
        Some(rx)
    }
}
