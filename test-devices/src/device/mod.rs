//! The device side of DFU 1.1 and DfuSe, following the DFU 1.1 state diagram.

mod dfuse;
mod requests;

use std::collections::HashMap;
use std::time::Duration;

use dfu::host::{
    DeviceInfo, DfuAttributes, DfuInterface, DfuMode, DfuState, DfuStatus, FunctionalDescriptor,
    Request, DFU_VERSION_1_1, DFU_VERSION_DFUSE,
};

pub use dfuse::DfuseMemory;

use crate::fault::Fault;
use crate::image::{self, FirmwareVersion, ImageHeader};
use crate::profile::ModelProfile;

/// Why a simulated request did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// STALL handshake.
    Stall,
    /// The device dropped off the bus.
    Gone,
}

/// What the device does at the moment it drops off the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDisconnect {
    /// Nothing: its state was already set.
    Nothing,
    /// Enter DFU mode if still in appDETACH (a device detaching by itself).
    EnterDfuIfDetaching,
    /// Power cycle: boot the application if valid, else the bootloader.
    PowerOn,
}

/// What the bus must do after a request or reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusAction {
    /// Drop off the bus after `after`, and come back `reattach_after` later (or never).
    Disconnect {
        /// Delay before disconnecting.
        after: Duration,
        /// Delay from disconnect to re-attach; `None`: stays away.
        reattach_after: Option<Duration>,
        /// What happens to the device at the disconnect.
        then: OnDisconnect,
    },
}

/// The installed, valid application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Its version.
    pub version: FirmwareVersion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    Data { block: u16, data: Vec<u8> },
    Command(Vec<u8>),
}

/// The string descriptor index of the device's status description.
pub const STATUS_STRING_INDEX: u8 = 0x20;

/// A simulated DFU device.
#[derive(Debug, Clone)]
pub struct SimDevice {
    pub(crate) profile: ModelProfile,
    pub(crate) mode: DfuMode,
    pub(crate) state: DfuState,
    pub(crate) status: DfuStatus,
    pub(crate) app: Option<Installed>,
    pub(crate) flash: Vec<u8>,
    pub(crate) received: usize,
    pub(crate) next_block: u16,
    pub(crate) pending: Option<Pending>,
    pub(crate) busy_until: Duration,
    pub(crate) poll_deadline: Duration,
    pub(crate) manifest_deadline: Duration,
    pub(crate) manifest_header: Option<ImageHeader>,
    pub(crate) manifesting: bool,
    pub(crate) last_poll: Duration,
    pub(crate) busy_time: Duration,
    pub(crate) reported_poll: Duration,
    pub(crate) detach_deadline: Duration,
    pub(crate) upload_offset: usize,
    pub(crate) alt: u8,
    pub(crate) dfuse: Option<DfuseMemory>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) request_counts: HashMap<Request, usize>,
    pub(crate) transitions: Vec<(DfuState, DfuState)>,
    pub(crate) violations: Vec<String>,
    pub(crate) bus_action: Option<BusAction>,
    pub(crate) extra_resets_seen: u32,
    pub(crate) bytes_written_total: u64,
    /// Why the last error happened, in words: offered through GETSTATUS's
    /// `iString` (string descriptor [`STATUS_STRING_INDEX`]) until CLRSTATUS.
    pub(crate) status_text: Option<String>,
}

impl SimDevice {
    /// A device of `profile`, running its initial firmware (runtime mode, appIDLE).
    pub fn new(profile: ModelProfile) -> Self {
        let initial = image::build(
            profile.runtime_pid,
            profile.initial_version,
            &image::test_payload(4096, 7),
        );
        let dfuse = profile.dfuse.as_ref().map(|d| {
            let mut m = DfuseMemory::new(&d.layouts);
            m.store(0, &initial);
            m
        });
        Self {
            mode: DfuMode::Runtime,
            state: DfuState::AppIdle,
            status: DfuStatus::Ok,
            app: Some(Installed {
                version: profile.initial_version,
            }),
            flash: initial,
            received: 0,
            next_block: 0,
            pending: None,
            busy_until: Duration::ZERO,
            poll_deadline: Duration::ZERO,
            manifest_deadline: Duration::ZERO,
            manifest_header: None,
            manifesting: false,
            last_poll: Duration::ZERO,
            busy_time: Duration::ZERO,
            reported_poll: Duration::ZERO,
            detach_deadline: Duration::ZERO,
            upload_offset: 0,
            alt: 0,
            dfuse,
            faults: Vec::new(),
            request_counts: HashMap::new(),
            transitions: Vec::new(),
            violations: Vec::new(),
            bus_action: None,
            extra_resets_seen: 0,
            bytes_written_total: 0,
            status_text: None,
            profile,
        }
    }

    /// The profile.
    pub fn profile(&self) -> &ModelProfile {
        &self.profile
    }

    /// Runtime or DFU mode.
    pub fn mode(&self) -> DfuMode {
        self.mode
    }

    /// The DFU state.
    pub fn state(&self) -> DfuState {
        self.state
    }

    /// The DFU status.
    pub fn status(&self) -> DfuStatus {
        self.status
    }

    /// The running/installed firmware version, `None` if there is no valid application.
    pub fn firmware_version(&self) -> Option<FirmwareVersion> {
        self.app.as_ref().map(|a| a.version)
    }

    /// Whether a valid application is installed.
    pub fn has_valid_app(&self) -> bool {
        self.app.is_some()
    }

    /// Every state change so far, in order.
    pub fn transitions(&self) -> &[(DfuState, DfuState)] {
        &self.transitions
    }

    /// Protocol violations by the host (e.g. polling before bwPollTimeout elapsed).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// The DfuSe memories, if this is a DfuSe device.
    pub fn dfuse_memory(&self) -> Option<&DfuseMemory> {
        self.dfuse.as_ref()
    }

    /// The DFU 1.1 flash contents (the last image written, possibly partial).
    pub fn flash(&self) -> &[u8] {
        &self.flash
    }

    /// Total bytes written to flash over the device's life.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written_total
    }

    /// Injects a fault.
    pub fn inject(&mut self, fault: Fault) {
        if matches!(fault, Fault::Stall { .. }) {
            self.request_counts.clear();
        }
        self.faults.push(fault);
    }

    /// Takes the pending bus action, if any (the bus calls this after every operation).
    pub fn take_bus_action(&mut self) -> Option<BusAction> {
        self.bus_action.take()
    }

    pub(crate) fn set_state(&mut self, s: DfuState) {
        if s != self.state {
            self.transitions.push((self.state, s));
            self.state = s;
        }
    }

    pub(crate) fn fail(&mut self, status: DfuStatus) {
        self.status = status;
        self.set_state(DfuState::DfuError);
    }

    /// [`Self::fail`], saying why in a status string a host can read.
    pub(crate) fn fail_saying(&mut self, status: DfuStatus, why: String) {
        self.status_text = Some(why);
        self.fail(status);
    }

    /// The descriptors the device presents in its current mode, on `port_path`.
    pub fn info(&self, port_path: &str) -> DeviceInfo {
        let p = &self.profile;
        let attributes = DfuAttributes {
            can_download: true,
            can_upload: p.can_upload,
            manifestation_tolerant: p.manifestation_tolerant,
            will_detach: p.will_detach,
        };
        let functional = FunctionalDescriptor {
            attributes,
            detach_timeout_ms: p.detach_timeout_ms,
            transfer_size: p.transfer_size,
            dfu_version: if p.dfuse.is_some() {
                DFU_VERSION_DFUSE
            } else {
                DFU_VERSION_1_1
            },
        };
        let (product_id, bcd_device, interfaces) = match self.mode {
            DfuMode::Runtime => (
                p.runtime_pid,
                self.app.as_ref().map_or(0, |a| a.version.bcd_device()),
                vec![DfuInterface {
                    number: 3,
                    alt_setting: 0,
                    mode: DfuMode::Runtime,
                    name: None,
                    functional,
                }],
            ),
            DfuMode::Dfu => {
                let names: Vec<Option<String>> = match &p.dfuse {
                    Some(d) => d.layouts.iter().cloned().map(Some).collect(),
                    None => vec![Some("Firmware".to_owned())],
                };
                let ifaces = names
                    .into_iter()
                    .enumerate()
                    .map(|(alt, name)| DfuInterface {
                        number: 0,
                        alt_setting: alt as u8,
                        mode: DfuMode::Dfu,
                        name,
                        functional,
                    })
                    .collect();
                (p.dfu_pid, p.bootloader_bcd, ifaces)
            }
        };
        DeviceInfo {
            vendor_id: p.vendor_id,
            product_id,
            bcd_device,
            serial: p.serial.clone(),
            product: Some(p.name.clone()),
            port_path: Some(port_path.to_owned()),
            interfaces,
        }
    }

    /// Selects an alternate setting (stalls if it does not exist).
    pub fn set_alt_setting(&mut self, alt: u8) -> Result<(), Failure> {
        let count = match (&self.mode, &self.profile.dfuse) {
            (DfuMode::Dfu, Some(d)) => d.layouts.len(),
            _ => 1,
        };
        if usize::from(alt) >= count {
            return Err(Failure::Stall);
        }
        self.alt = alt;
        Ok(())
    }

    /// Applies what happens at the moment the device drops off the bus.
    pub fn on_disconnect(&mut self, then: OnDisconnect) {
        match then {
            OnDisconnect::Nothing => {}
            OnDisconnect::EnterDfuIfDetaching => {
                if self.state == DfuState::AppDetach {
                    self.enter_dfu();
                }
            }
            OnDisconnect::PowerOn => self.power_on(),
        }
    }

    fn boot(&mut self) {
        if let Some(m) = &self.dfuse {
            self.app = m.app_version().map(|version| Installed { version });
        }
        self.manifesting = false;
        self.manifest_header = None;
        self.pending = None;
        self.upload_offset = 0;
        self.alt = 0;
        self.extra_resets_seen = 0;
        if self.app.is_some() {
            self.mode = DfuMode::Runtime;
            self.status = DfuStatus::Ok;
            self.set_state(DfuState::AppIdle);
        } else {
            self.mode = DfuMode::Dfu;
            self.status = DfuStatus::ErrFirmware;
            self.set_state(DfuState::DfuError);
        }
    }

    /// The state a new host process finds a device in that was left in DFU
    /// mode (or has no valid application): the bootloader, dfuIDLE with a
    /// valid application, else dfuERROR/errFIRMWARE. Transfers in flight are gone.
    pub(crate) fn restore_in_dfu_mode(&mut self) {
        self.pending = None;
        self.manifesting = false;
        self.manifest_header = None;
        self.upload_offset = 0;
        self.alt = 0;
        self.extra_resets_seen = 0;
        self.mode = DfuMode::Dfu;
        if self.app.is_some() {
            self.status = DfuStatus::Ok;
            self.set_state(DfuState::DfuIdle);
        } else {
            self.status = DfuStatus::ErrFirmware;
            self.set_state(DfuState::DfuError);
        }
    }

    pub(crate) fn enter_dfu(&mut self) {
        self.mode = DfuMode::Dfu;
        self.status = DfuStatus::Ok;
        self.pending = None;
        self.alt = 0;
        self.set_state(DfuState::DfuIdle);
    }

    /// A USB reset. Returns the delay after which the device is back on the bus, or `None`
    /// if it ignores the reset (stays attached and unchanged).
    pub fn on_reset(&mut self, now: Duration) -> Option<Duration> {
        self.tick(now);
        let delay = self.profile.reenumeration_delay;
        match self.state {
            DfuState::AppIdle => {}
            DfuState::AppDetach => {
                if self.profile.detaches_silently || now > self.detach_deadline {
                    // Confused by a reset while detaching by itself, or too late.
                    self.set_state(DfuState::AppIdle);
                } else {
                    self.enter_dfu();
                }
            }
            DfuState::DfuManifestWaitReset if !self.profile.reset_after_manifest => return None,
            DfuState::DfuManifestWaitReset => self.boot(),
            _ => {
                if self.app.is_some()
                    && self.profile.needs_extra_reset
                    && self.extra_resets_seen == 0
                {
                    self.extra_resets_seen = 1;
                    self.enter_dfu();
                } else {
                    self.boot();
                }
            }
        }
        Some(delay)
    }

    /// Power comes back (after a replug or a power loss): boots the application if valid,
    /// else stays in the bootloader (DFU mode, dfuERROR/errFIRMWARE).
    pub fn power_on(&mut self) {
        if self.manifesting
            && (self.state == DfuState::DfuManifest || self.state == DfuState::DfuManifestSync)
        {
            // Manifestation cut short: nothing valid was committed.
            self.app = None;
        }
        self.faults
            .retain(|f| !matches!(f, Fault::VanishDuringManifest { .. }));
        self.boot();
    }

    /// Advances time-driven transitions (dfuDNBUSY and dfuMANIFEST poll timeouts,
    /// appDETACH timeout) to `now`.
    pub fn tick(&mut self, now: Duration) {
        match self.state {
            DfuState::DfuDnbusy if !self.early(now) => {
                self.set_state(DfuState::DfuDnloadSync);
            }
            DfuState::DfuManifest if now >= self.manifest_deadline => {
                if self.profile.manifestation_tolerant || self.profile.manifest_needs_polling {
                    self.set_state(DfuState::DfuManifestSync);
                } else {
                    self.commit_manifest();
                    self.set_state(DfuState::DfuManifestWaitReset);
                }
            }
            DfuState::AppDetach if now > self.detach_deadline => {
                self.set_state(DfuState::AppIdle);
            }
            _ => {}
        }
    }

    /// Installs the manifested image as the application.
    pub(crate) fn commit_manifest(&mut self) {
        self.manifesting = false;
        if let Some(h) = self.manifest_header.take() {
            self.app = Some(Installed { version: h.version });
        }
    }

    /// Whether a request now would come before the device is ready (the host did not
    /// honour bwPollTimeout, or the device reported zero while it is still busy).
    pub(crate) fn early(&self, now: Duration) -> bool {
        now < self.busy_until && (now < self.poll_deadline || self.last_poll.is_zero())
    }
}
