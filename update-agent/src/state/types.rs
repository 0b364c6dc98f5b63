//! The records kept in the state database.

use catalog::package::TargetFirmware;
use catalog::protocol::DeviceReport;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a staged update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    /// Downloaded and verified; not yet scheduled.
    Staged,
    /// Waiting (for the window, consent, the device to be idle, …; see the reason).
    Waiting,
    /// Being flashed.
    Flashing,
    /// Written; the device must be unplugged and replugged.
    AwaitingReplug,
    /// Installed and verified (version read back).
    Installed,
    /// The last attempt failed (see the reason); retried later.
    Failed,
}

impl UpdateStatus {
    /// Not installed yet: still to be done or retried.
    pub fn is_pending(self) -> bool {
        self != UpdateStatus::Installed
    }
}

/// A verified image staged for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedUpdate {
    /// Hex SHA-256 of the image (its name in the staging directory).
    pub digest: String,
    /// The TUF target name (`vendor/model/version/file`).
    pub target: String,
    /// The device's identity ([`DeviceReport::identity`]).
    pub device: String,
    /// Where it stands.
    pub status: UpdateStatus,
    /// Why it waits or failed, for people.
    pub reason: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The signed firmware fields of the target (protocol, version), for
    /// flashing the staged image again without the network (recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<TargetFirmware>,
}

/// The verified assignment document the agent acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAssignments {
    /// The signed document, as received.
    pub document: String,
    /// Its version (the rollback floor for the next one).
    pub version: u64,
    /// The check-in answer's ETag (sent back as `If-None-Match`).
    pub etag: Option<String>,
    /// Seconds between check-ins the server asked for.
    pub poll_interval_secs: u64,
}

/// Firmware the agent installed on a device and read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledFirmware {
    /// The device.
    pub device: String,
    /// The TUF target.
    pub target: String,
    /// The version read back.
    pub version: String,
    /// The target's security counter (the floor for later installs).
    pub security_counter: u32,
    /// When.
    pub at: DateTime<Utc>,
}

/// How far a download got (the bytes are in the staging directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadProgress {
    /// Hex SHA-256 the image must have.
    pub digest: String,
    /// The TUF target name.
    pub target: String,
    /// The signed length.
    pub length: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An event for the server, spooled until acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id (128 random bits, hex); the server de-duplicates on it.
    pub id: String,
    /// What happened (`device_discovered`, `update_installed`, …).
    pub kind: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The device concerned, if any.
    pub device: Option<String>,
    /// Details.
    pub detail: serde_json::Value,
    /// Order in the spool (assigned when spooled).
    #[serde(default)]
    pub seq: u64,
}

impl Event {
    /// A new event with a fresh random id.
    pub fn new(
        kind: &str,
        device: Option<&str>,
        detail: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: crate::identity::random_hex128(),
            kind: kind.to_owned(),
            at,
            device: device.map(str::to_owned),
            detail,
            seq: 0,
        }
    }
}

/// What the agent remembers of a device it has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// [`DeviceReport::identity`].
    pub identity: String,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct when last seen.
    pub product_id: u16,
    /// Product string, if known.
    pub product: Option<String>,
    /// First scan that saw it.
    pub first_seen: DateTime<Utc>,
    /// Last scan that saw it.
    pub last_seen: DateTime<Utc>,
    /// Firmware version it last reported.
    pub last_version: Option<String>,
}

impl DeviceRecord {
    pub(super) fn first_seen(d: &DeviceReport, now: DateTime<Utc>) -> Self {
        Self {
            identity: d.identity(),
            vendor_id: d.vendor_id,
            product_id: d.product_id,
            product: d.product.clone(),
            first_seen: now,
            last_seen: now,
            last_version: d.firmware_version.clone(),
        }
    }

    pub(super) fn seen_again(mut self, d: &DeviceReport, now: DateTime<Utc>) -> Self {
        self.last_seen = self.last_seen.max(now);
        self.product_id = d.product_id;
        if d.product.is_some() {
            self.product = d.product.clone();
        }
        if d.firmware_version.is_some() {
            self.last_version = d.firmware_version.clone();
        }
        self
    }
}
