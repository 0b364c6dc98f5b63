//! Table tests of the assignment computation.

use catalog::assignment::{DeploymentType, DownloadSource};
use catalog::digest::Sha256Digest;
use catalog::package::{
    HardwareId, InstallCapabilities, SourceFormat, UpdateProtocol, Urgency, VersionFormat,
};
use catalog::window::MaintenanceWindow;
use chrono::{TimeZone, Utc};

use super::*;
use crate::fleet::{FirmwarePolicyInput, Membership, Stamps, VersionSpec};

const VOYAGER: (u16, u16) = (0x047f, 0xc056);
const BLACKWIRE: (u16, u16) = (0x047f, 0x02ee);

fn release(
    model: (u16, u16),
    version: &str,
    counter: u32,
    silent: bool,
    auto: bool,
) -> FirmwareRelease {
    FirmwareRelease {
        target_name: format!("acme/{:04x}/{version}/fw.bin", model.1),
        vendor: "Acme".into(),
        model: format!("{:04X}", model.1),
        hardware_ids: vec![HardwareId::new(model.0, model.1)],
        version: Version::parse(version, VersionFormat::Plain).unwrap(),
        security_counter: counter,
        protocol: UpdateProtocol::Dfu,
        capabilities: InstallCapabilities {
            needs_replug: false,
            silent_capable: silent,
            automatic_capable: auto,
            install_duration_secs: 60,
        },
        urgency: Urgency::Medium,
        release_notes: String::new(),
        size: 4096,
        sha256: Sha256Digest::of(format!("{model:?}{version}").as_bytes()),
        source_format: SourceFormat::Raw,
        lvfs: None,
        product_family: None,
        imported_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

fn stamps() -> Stamps {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Stamps {
        created_at: t,
        updated_at: t,
    }
}

fn group(id: &str, priority: u32, membership: Membership) -> Group {
    Group {
        tenant: "t".into(),
        id: id.into(),
        name: id.into(),
        priority,
        poll_interval_secs: 3600,
        membership,
        stamps: stamps(),
    }
}

fn manual(members: &[&str]) -> Membership {
    Membership::Manual {
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    }
}

fn ldap() -> Membership {
    Membership::Ldap {
        filter: "(uid=$user$)".into(),
        server: Default::default(),
    }
}

fn policy(
    id: &str,
    model: (u16, u16),
    group: Option<&str>,
    version: &str,
    dep: DeploymentType,
) -> FirmwarePolicy {
    let window = (dep == DeploymentType::Silent)
        .then(|| MaintenanceWindow::new("0 2 * * *", chrono::Duration::hours(2), "UTC").unwrap());
    FirmwarePolicy {
        tenant: "t".into(),
        id: id.into(),
        spec: FirmwarePolicyInput {
            name: id.into(),
            model: HardwareId::new(model.0, model.1),
            group: group.map(str::to_owned),
            version: if version == "latest" {
                VersionSpec::Latest
            } else {
                VersionSpec::Pinned(version.into())
            },
            deployment: dep,
            window,
            source: DownloadSource::Server,
            fallback_to_server: true,
            enabled: true,
            max_deferrals: None,
            multi_piece_guard: true,
            allow_downgrade: false,
        },
        stamps: stamps(),
    }
}

fn device(model: (u16, u16), serial: &str, fw: Option<&str>) -> DeviceReport {
    DeviceReport {
        vendor_id: model.0,
        product_id: model.1,
        bcd_device: 0x0100,
        serial: Some(serial.into()),
        port_path: None,
        manufacturer: None,
        product: None,
        firmware_version: fw.map(str::to_owned),
        dfu: DfuState::Runtime,
        telephony: true,
        battery: None,
        in_call: false,
    }
}

/// What one row expects for the single device: the policy and version
/// assigned, or the skip reason's tag.
#[derive(Debug, PartialEq)]
enum Want {
    Assigned(&'static str, &'static str),
    Skipped(&'static str),
}

fn summarize(o: &Outcome, releases: &[FirmwareRelease]) -> Want {
    if let Some(a) = o.assignments.first() {
        let r = releases
            .iter()
            .find(|r| r.target_name == a.target_name)
            .unwrap();
        let policy: &'static str = Box::leak(a.policy.clone().into_boxed_str());
        let version: &'static str = Box::leak(r.version.as_str().to_owned().into_boxed_str());
        return Want::Assigned(policy, version);
    }
    let (_, reason) = o.skipped.first().unwrap();
    let tag = serde_json::to_value(reason).unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    Want::Skipped(Box::leak(tag.into_boxed_str()))
}

#[test]
fn precedence_versions_capabilities_and_downgrades() {
    use DeploymentType::{Automatic, Optional, Silent};
    let releases = vec![
        release(VOYAGER, "1.0", 1, true, false),
        release(VOYAGER, "1.10", 2, true, false),
        release(VOYAGER, "1.9", 2, true, false),
        release(BLACKWIRE, "3.0", 1, false, true),
    ];
    let groups = vec![
        group("sales", 2, manual(&["ann", "kiosk@ws-1"])),
        group("pilot", 1, ldap()),
        group("it", 3, manual(&["bob"])),
    ];
    let all_latest = policy("p-all", VOYAGER, None, "latest", Optional);
    let sales_pin = policy("p-sales", VOYAGER, Some("sales"), "1.0", Optional);
    let pilot_pin = policy("p-pilot", VOYAGER, Some("pilot"), "1.9", Optional);
    let it_pin_missing = policy("p-it", VOYAGER, Some("it"), "7.7", Optional);
    let everything = vec![
        all_latest.clone(),
        sales_pin.clone(),
        pilot_pin.clone(),
        it_pin_missing.clone(),
    ];
    let mut disabled_sales = sales_pin.clone();
    disabled_sales.spec.enabled = false;

    struct Row {
        name: &'static str,
        policies: Vec<FirmwarePolicy>,
        users: &'static [&'static str],
        ldap: &'static [(&'static str, &'static str)],
        device: DeviceReport,
        installed: Option<u32>,
        want: Want,
        group: &'static str,
    }
    let v = |fw: Option<&str>| device(VOYAGER, "V1", fw);
    let rows = vec![
        Row {
            name: "no users: All Users, latest by Version order (1.10 > 1.9)",
            policies: everything.clone(),
            users: &[],
            ldap: &[],
            device: v(Some("1.0")),
            installed: None,
            want: Want::Assigned("p-all", "1.10"),
            group: "all-users",
        },
        Row {
            name: "custom group beats All Users",
            policies: everything.clone(),
            users: &["ann"],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-sales", "1.0"),
            group: "sales",
        },
        Row {
            name: "manual membership ignores case",
            policies: everything.clone(),
            users: &["ANN"],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-sales", "1.0"),
            group: "sales",
        },
        Row {
            name: "shared account name",
            policies: everything.clone(),
            users: &["kiosk@ws-1"],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-sales", "1.0"),
            group: "sales",
        },
        Row {
            name: "LDAP group with better priority wins",
            policies: everything.clone(),
            users: &["ann"],
            ldap: &[("ann", "pilot")],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-pilot", "1.9"),
            group: "pilot",
        },
        Row {
            name: "reported id of a manual group does not make a member",
            policies: everything.clone(),
            users: &["carl"],
            ldap: &[("carl", "sales")],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-all", "1.10"),
            group: "all-users",
        },
        Row {
            name: "best group among the host's users",
            policies: everything.clone(),
            users: &["bob", "ann"],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-sales", "1.0"),
            group: "sales",
        },
        Row {
            name: "group without a policy for the model falls back to All Users",
            policies: vec![all_latest.clone()],
            users: &["ann"],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-all", "1.10"),
            group: "sales",
        },
        Row {
            name: "disabled group policy falls back to All Users",
            policies: vec![all_latest.clone(), disabled_sales],
            users: &["ann"],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-all", "1.10"),
            group: "sales",
        },
        Row {
            name: "pin not in the catalog",
            policies: everything.clone(),
            users: &["bob"],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Skipped("pinned_version_not_in_catalog"),
            group: "it",
        },
        Row {
            name: "pinned 1.0 equals 1.0.0",
            policies: everything.clone(),
            users: &["ann"],
            ldap: &[],
            device: v(Some("1.0.0")),
            installed: None,
            want: Want::Skipped("up_to_date"),
            group: "sales",
        },
        Row {
            name: "up to date on latest",
            policies: everything.clone(),
            users: &[],
            ldap: &[],
            device: v(Some("1.10")),
            installed: None,
            want: Want::Skipped("up_to_date"),
            group: "all-users",
        },
        Row {
            name: "pinned downgrade honoured when the counter allows",
            policies: everything.clone(),
            users: &["ann"],
            ldap: &[],
            device: v(Some("1.10")),
            installed: Some(1),
            want: Want::Assigned("p-sales", "1.0"),
            group: "sales",
        },
        Row {
            name: "downgrade below the installed counter refused",
            policies: everything.clone(),
            users: &["ann"],
            ldap: &[],
            device: v(Some("1.10")),
            installed: Some(2),
            want: Want::Skipped("downgrade"),
            group: "sales",
        },
        Row {
            name: "no policy for the model",
            policies: vec![sales_pin.clone()],
            users: &[],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Skipped("no_policy"),
            group: "all-users",
        },
        Row {
            name: "silent on a silent-capable release",
            policies: vec![policy("p-s", VOYAGER, None, "latest", Silent)],
            users: &[],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Assigned("p-s", "1.10"),
            group: "all-users",
        },
        Row {
            name: "silent refused when not silent-capable",
            policies: vec![policy("p-s", BLACKWIRE, None, "latest", Silent)],
            users: &[],
            ldap: &[],
            device: device(BLACKWIRE, "B1", None),
            installed: None,
            want: Want::Skipped("not_capable"),
            group: "all-users",
        },
        Row {
            name: "automatic refused when not automatic-capable",
            policies: vec![policy("p-a", VOYAGER, None, "latest", Automatic)],
            users: &[],
            ldap: &[],
            device: v(None),
            installed: None,
            want: Want::Skipped("not_capable"),
            group: "all-users",
        },
        Row {
            name: "automatic on an automatic-capable release",
            policies: vec![policy("p-a", BLACKWIRE, None, "3.0", Automatic)],
            users: &[],
            ldap: &[],
            device: device(BLACKWIRE, "B1", Some("2.0")),
            installed: None,
            want: Want::Assigned("p-a", "3.0"),
            group: "all-users",
        },
        Row {
            name: "model without a release",
            policies: vec![policy("p-x", (0x1209, 1), None, "latest", Optional)],
            users: &[],
            ldap: &[],
            device: device((0x1209, 1), "X1", None),
            installed: None,
            want: Want::Skipped("no_release"),
            group: "all-users",
        },
    ];
    for row in rows {
        let mut reported = Reported {
            users: row.users.iter().map(|u| (*u).to_owned()).collect(),
            devices: std::slice::from_ref(&row.device),
            ..Reported::default()
        };
        for (u, g) in row.ldap {
            reported
                .ldap
                .entry((*u).to_owned())
                .or_default()
                .push((*g).to_owned());
        }
        if let Some(c) = row.installed {
            reported.installed_counters.insert(row.device.identity(), c);
        }
        let o = compute(&groups, &row.policies, &releases, &reported);
        assert_eq!(summarize(&o, &releases), row.want, "{}", row.name);
        assert_eq!(o.group, row.group, "{}", row.name);
        assert_eq!(o.assignments.len() + o.skipped.len(), 1, "{}", row.name);
    }
}

#[test]
fn assignment_fields_and_inventory_only_devices() {
    let releases = vec![release(VOYAGER, "2.0", 4, true, true)];
    let p = policy("p-s", VOYAGER, None, "latest", DeploymentType::Silent);
    let mut other_vendor = device((0x0b0e, 0x0422), "J1", Some("1.0"));
    other_vendor.dfu = DfuState::None;
    let devices = vec![
        device(VOYAGER, "V1", Some("1.0")),
        other_vendor,
        device(VOYAGER, "V1", Some("1.0")),
    ];
    let reported = Reported {
        devices: &devices,
        ..Reported::default()
    };
    let o = compute(&[], std::slice::from_ref(&p), &releases, &reported);
    assert_eq!(
        o.assignments.len(),
        1,
        "the duplicate report is assigned once"
    );
    let a = &o.assignments[0];
    assert_eq!(a.device, "047f/serial/V1");
    assert_eq!(a.target_name, releases[0].target_name);
    assert_eq!(a.sha256, releases[0].sha256);
    assert_eq!(a.length, 4096);
    assert_eq!(a.deployment, DeploymentType::Silent);
    assert_eq!(a.window, p.spec.window);
    assert_eq!(a.hardware_id.to_string(), "047F:C056");
    assert_eq!(
        o.skipped,
        vec![("0b0e/serial/J1".to_owned(), SkipReason::NotUpdatable)]
    );
}

#[test]
fn persistent_assignments_carry_their_deferral_limit() {
    let releases = vec![release(VOYAGER, "2.0", 1, false, false)];
    let mut p = policy("p-p", VOYAGER, None, "latest", DeploymentType::Persistent);
    p.spec.max_deferrals = Some(3);
    let devices = vec![device(VOYAGER, "V1", Some("1.0"))];
    let reported = Reported {
        devices: &devices,
        ..Reported::default()
    };
    let o = compute(&[], std::slice::from_ref(&p), &releases, &reported);
    assert_eq!(o.assignments[0].deployment, DeploymentType::Persistent);
    assert_eq!(
        o.max_deferrals,
        BTreeMap::from([("047f/serial/V1".to_owned(), 3)])
    );
    p.spec.max_deferrals = None;
    let o = compute(&[], std::slice::from_ref(&p), &releases, &reported);
    assert!(o.max_deferrals.is_empty());
}
