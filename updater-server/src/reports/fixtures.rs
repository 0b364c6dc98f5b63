//! Records for the report tables: a small fleet built field by field.

use std::collections::BTreeSet;

use catalog::assignment::{DeploymentType, DownloadSource};
use catalog::checkin::{UpdatePhase, UpdateState};
use catalog::digest::Sha256Digest;
use catalog::package::{
    FirmwareRelease, HardwareId, InstallCapabilities, SourceFormat, UpdateProtocol, Urgency,
    Version, VersionFormat,
};
use catalog::protocol::DfuState;
use catalog::window::MaintenanceWindow;
use chrono::{DateTime, TimeZone, Utc};

use super::Snapshot;
use crate::fleet::inventory::{user_id, Device, Host, User};
use crate::fleet::{
    FirmwarePolicy, FirmwarePolicyInput, Group, Membership, Stamps, VersionSpec, ALL_USERS,
};

pub(crate) const VOYAGER: (u16, u16) = (0x047f, 0xc056);
pub(crate) const BLACKWIRE: (u16, u16) = (0x047f, 0x02ee);
pub(crate) const OTHER: (u16, u16) = (0x0b0e, 0x0422);

/// 2026-01-`d` 00:00 UTC.
pub(crate) fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap()
}

pub(crate) fn release(model: (u16, u16), name: &str, version: &str) -> FirmwareRelease {
    FirmwareRelease {
        target_name: format!("acme/{name}/{version}/fw.bin"),
        vendor: "Acme".into(),
        model: name.into(),
        hardware_ids: vec![HardwareId::new(model.0, model.1)],
        version: Version::parse(version, VersionFormat::Plain).unwrap(),
        security_counter: 1,
        protocol: UpdateProtocol::Dfu,
        capabilities: InstallCapabilities {
            needs_replug: false,
            silent_capable: true,
            automatic_capable: true,
            install_duration_secs: 60,
        },
        urgency: Urgency::Medium,
        release_notes: String::new(),
        size: 4096,
        sha256: Sha256Digest::of(format!("{name}{version}").as_bytes()),
        source_format: SourceFormat::Raw,
        lvfs: None,
        product_family: None,
        imported_at: day(1),
    }
}

/// A device with a serial (or without, when `serial` is `None`) seen on
/// host `h1` on day 2 and day 10.
pub(crate) fn device(
    id: &str,
    model: (u16, u16),
    serial: Option<&str>,
    fw: Option<&str>,
) -> Device {
    let identity = match serial {
        Some(s) => format!("{:04x}/serial/{s}", model.0),
        None => format!("h1/{:04x}/port/1-{id}", model.0),
    };
    Device {
        tenant: "t".into(),
        id: id.into(),
        key: identity,
        vendor_id: model.0,
        product_id: model.1,
        bcd_device: 0x0100,
        serial: serial.map(str::to_owned),
        manufacturer: Some("Acme".into()),
        product: Some(format!("Product {id}")),
        firmware_version: fw.map(str::to_owned),
        dfu: DfuState::Runtime,
        telephony: true,
        battery: None,
        first_seen: day(2),
        last_seen: day(10),
        host: "h1".into(),
        users: BTreeSet::new(),
        deleted_at: None,
    }
}

pub(crate) fn host(id: &str, hostname: &str, group: &str, last_seen: DateTime<Utc>) -> Host {
    Host {
        tenant: "t".into(),
        id: id.into(),
        hostname: hostname.into(),
        platform: "linux".into(),
        agent_version: "0.1.0".into(),
        suspected_clone_of: None,
        first_seen: day(2),
        last_seen,
        users: BTreeSet::new(),
        devices: BTreeSet::new(),
        group: group.into(),
        skipped: Vec::new(),
        update_states: Vec::new(),
    }
}

pub(crate) fn user(name: &str, hosts: &[&str], devices: &[&str]) -> User {
    User {
        tenant: "t".into(),
        id: user_id(name),
        name: name.into(),
        first_seen: day(2),
        last_seen: day(10),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        devices: devices.iter().map(|d| (*d).to_owned()).collect(),
    }
}

pub(crate) fn stamps(updated: DateTime<Utc>) -> Stamps {
    Stamps {
        created_at: day(1),
        updated_at: updated,
    }
}

pub(crate) fn group(id: &str, priority: u32, membership: Membership) -> Group {
    Group {
        tenant: "t".into(),
        id: id.into(),
        name: format!("Group {id}"),
        priority,
        poll_interval_secs: 3600,
        membership,
        stamps: stamps(day(1)),
    }
}

pub(crate) fn manual(members: &[&str]) -> Membership {
    Membership::Manual {
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    }
}

pub(crate) fn policy(
    id: &str,
    model: (u16, u16),
    group: Option<&str>,
    version: &str,
    deployment: DeploymentType,
) -> FirmwarePolicy {
    let window = (deployment == DeploymentType::Silent)
        .then(|| MaintenanceWindow::new("0 2 * * *", chrono::Duration::hours(2), "UTC").unwrap());
    FirmwarePolicy {
        tenant: "t".into(),
        id: id.into(),
        spec: FirmwarePolicyInput {
            name: format!("Policy {id}"),
            model: HardwareId::new(model.0, model.1),
            group: group.filter(|g| *g != ALL_USERS).map(str::to_owned),
            version: if version == "latest" {
                VersionSpec::Latest
            } else {
                VersionSpec::Pinned(version.into())
            },
            deployment,
            window,
            source: DownloadSource::Server,
            fallback_to_server: true,
            enabled: true,
            max_deferrals: None,
            multi_piece_guard: true,
            allow_downgrade: false,
        },
        stamps: stamps(day(1)),
    }
}

pub(crate) fn state(
    device: &str,
    target: Option<&str>,
    phase: Option<UpdatePhase>,
    message: Option<&str>,
) -> UpdateState {
    UpdateState {
        device: device.into(),
        installed_security_counter: None,
        target_name: target.map(str::to_owned),
        phase,
        deferrals: 0,
        message: message.map(str::to_owned),
    }
}

/// An empty snapshot of tenant `t` taken on day 20.
pub(crate) fn snapshot() -> Snapshot {
    Snapshot {
        tenant: "t".into(),
        now: day(20),
        ..Snapshot::default()
    }
}
