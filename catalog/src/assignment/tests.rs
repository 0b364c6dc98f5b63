use chrono::{Duration, TimeZone};

use super::*;
use crate::protocol::DfuState;
use crate::tuf::Ed25519Signer;

/// The signed catalog entry of a Voyager 2.14.0 release for 047F:C056 rev 0100-01FF.
fn release_target(security_counter: u32) -> TargetFile {
    use crate::package::{
        FirmwareRelease, InstallCapabilities, SourceFormat, UpdateProtocol, Urgency, VersionFormat,
    };
    let image = b"voyager 2.14.0 image";
    let release = FirmwareRelease {
        target_name: "acme/voyager/2.14.0/fw.dfu".into(),
        vendor: "Acme".into(),
        model: "Voyager".into(),
        hardware_ids: vec!["047F:C056@0100-01FF".parse().unwrap()],
        version: Version::parse("2.14.0", VersionFormat::Plain).unwrap(),
        security_counter,
        protocol: UpdateProtocol::Dfu,
        capabilities: InstallCapabilities::default(),
        urgency: Urgency::Medium,
        release_notes: String::new(),
        size: image.len() as u64,
        sha256: Sha256Digest::of(image),
        source_format: SourceFormat::Dfu,
        lvfs: None,
        product_family: None,
        imported_at: now(),
    };
    TargetFile::new(
        release.size,
        *release.sha256.as_bytes(),
        Some(release.target_custom()),
    )
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn device(vid: u16, pid: u16, bcd: u16) -> DeviceReport {
    DeviceReport {
        vendor_id: vid,
        product_id: pid,
        bcd_device: bcd,
        serial: Some("SN-1".into()),
        port_path: Some("1-2".into()),
        manufacturer: None,
        product: None,
        firmware_version: Some("2.13.0".into()),
        dfu: DfuState::Runtime,
        telephony: true,
        battery: None,
        in_call: false,
    }
}

fn assignment(target: &TargetFile) -> Assignment {
    Assignment {
        device: device(0x047f, 0xc056, 0x0100).identity(),
        hardware_id: "047F:C056".parse().unwrap(),
        target_name: "acme/voyager/2.14.0/fw.dfu".into(),
        sha256: target.hashes["sha256"].parse().unwrap(),
        length: target.length,
        deployment: DeploymentType::Silent,
        window: Some(
            MaintenanceWindow::new("0 1 * * *", Duration::hours(4), "Europe/Berlin").unwrap(),
        ),
        source: DownloadSource::Share {
            path: "//fileserver/firmware".into(),
        },
        fallback_to_server: true,
        policy: "p-1".into(),
        allow_downgrade: false,
    }
}

fn signed_doc(key: &Ed25519Signer, set: AssignmentSet) -> Vec<u8> {
    sign_assignments(set, key).unwrap()
}

fn set(target: &TargetFile) -> AssignmentSet {
    AssignmentSet::new(
        "t-1",
        "agent-1",
        7,
        now() + Duration::days(7),
        21_600,
        vec![assignment(target)],
    )
}

#[test]
fn round_trip() {
    let key = Ed25519Signer::generate().unwrap();
    let target = release_target(3);
    let bytes = signed_doc(&key, set(&target));
    let got = verify_assignments(&bytes, key.public_key(), "agent-1", 7, now()).unwrap();
    assert_eq!(got.version, 7);
    assert_eq!(got.assignments, vec![assignment(&target)]);
    assert_eq!(got.poll_interval_secs, 21_600);
}

fn software_offer() -> SoftwareOffer {
    SoftwareOffer {
        platform: "linux".into(),
        version: "0.2.0".into(),
        package: Some(SoftwarePackage {
            target_name: "agent/linux/0.2.0/update-agent".into(),
            sha256: Sha256Digest::of(b"agent 0.2.0"),
            length: 11,
        }),
        deployment: DeploymentType::Optional,
        policy: "sw-1".into(),
    }
}

#[test]
fn software_offer_round_trip_and_old_documents() {
    let key = Ed25519Signer::generate().unwrap();
    let target = release_target(3);
    let mut s = set(&target);
    s.software = Some(software_offer());
    let bytes = signed_doc(&key, s);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v["signed"]["software"],
        serde_json::json!({
            "platform": "linux", "version": "0.2.0",
            "package": {"target_name": "agent/linux/0.2.0/update-agent",
                "sha256": Sha256Digest::of(b"agent 0.2.0").to_hex(), "length": 11},
            "deployment": "optional", "policy": "sw-1"})
    );
    let got = verify_assignments(&bytes, key.public_key(), "agent-1", 0, now()).unwrap();
    assert_eq!(got.software, Some(software_offer()));
    assert!(got.extra.is_empty(), "{:?}", got.extra);
    // Without an offer the field is absent (documents signed before it existed
    // verify unchanged).
    let plain = signed_doc(&key, set(&target));
    let v: Value = serde_json::from_slice(&plain).unwrap();
    assert!(v["signed"].get("software").is_none());
    let got = verify_assignments(&plain, key.public_key(), "agent-1", 0, now()).unwrap();
    assert_eq!(got.software, None);
}

#[test]
fn envelope_attacks_are_refused() {
    let key = Ed25519Signer::generate().unwrap();
    let other = Ed25519Signer::generate().unwrap();
    let target = release_target(3);
    let good = signed_doc(&key, set(&target));
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        f(&mut v);
        let out = serde_json::to_vec(&v).unwrap();
        assert_ne!(
            out,
            serde_json::to_vec(&serde_json::from_slice::<Value>(&good).unwrap()).unwrap()
        );
        out
    };

    let mut two_for_one = set(&target);
    two_for_one.assignments.push(assignment(&target));
    let mut zero_poll = set(&target);
    zero_poll.poll_interval_secs = 0;
    let mut escaping = set(&target);
    escaping.assignments[0].target_name = "../../etc/passwd".into();
    let mut silent_agent = set(&target);
    silent_agent.software = Some(software_offer());
    if let Some(s) = silent_agent.software.as_mut() {
        s.deployment = DeploymentType::Silent;
    }
    let mut escaping_package = set(&target);
    escaping_package.software = Some(software_offer());
    if let Some(p) = escaping_package
        .software
        .as_mut()
        .and_then(|s| s.package.as_mut())
    {
        p.target_name = "agent/../../x".into();
    }
    let mut with_offer = set(&target);
    with_offer.software = Some(software_offer());
    let offered = signed_doc(&key, with_offer);
    let bumped = {
        let mut v: Value = serde_json::from_slice(&offered).unwrap();
        v["signed"]["software"]["version"] = "9.9.9".into();
        serde_json::to_vec(&v).unwrap()
    };

    // (what, document, this agent, trusted version, now, expected error)
    type Case<'a> = (&'a str, Vec<u8>, &'a str, u64, DateTime<Utc>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "signed by another key",
            signed_doc(&other, set(&target)),
            "agent-1",
            0,
            now(),
            "threshold",
        ),
        (
            "field changed after signing",
            mutate(&|v| v["signed"]["assignments"][0]["deployment"] = "automatic".into()),
            "agent-1",
            0,
            now(),
            "threshold",
        ),
        (
            "replayed to another agent",
            good.clone(),
            "agent-2",
            0,
            now(),
            "for agent agent-1",
        ),
        (
            "expired",
            good.clone(),
            "agent-1",
            0,
            now() + Duration::days(8),
            "expired",
        ),
        (
            "rolled back",
            good.clone(),
            "agent-1",
            8,
            now(),
            "older than the trusted version 8",
        ),
        (
            "signatures removed",
            mutate(&|v| v["signatures"] = Value::Array(vec![])),
            "agent-1",
            0,
            now(),
            "threshold",
        ),
        (
            "signature repeated",
            mutate(&|v| {
                let sig = v["signatures"][0].clone();
                v["signatures"].as_array_mut().unwrap().push(sig);
            }),
            "agent-1",
            0,
            now(),
            "appears twice",
        ),
        (
            "device assigned twice",
            signed_doc(&key, two_for_one),
            "agent-1",
            0,
            now(),
            "assigned twice",
        ),
        (
            "no poll interval",
            signed_doc(&key, zero_poll),
            "agent-1",
            0,
            now(),
            "poll_interval_secs",
        ),
        (
            "target escaping",
            signed_doc(&key, escaping),
            "agent-1",
            0,
            now(),
            "`..` path component",
        ),
        (
            "software offer changed after signing",
            bumped,
            "agent-1",
            0,
            now(),
            "threshold",
        ),
        (
            "silent agent update",
            signed_doc(&key, silent_agent),
            "agent-1",
            0,
            now(),
            "software cannot be deployed silently",
        ),
        (
            "agent package escaping",
            signed_doc(&key, escaping_package),
            "agent-1",
            0,
            now(),
            "`..` path component",
        ),
        (
            "not JSON",
            b"{".to_vec(),
            "agent-1",
            0,
            now(),
            "assignments",
        ),
        (
            "wrong type",
            mutate(&|v| v["signed"]["_type"] = "targets".into()),
            "agent-1",
            0,
            now(),
            "targets",
        ),
    ];
    for (what, bytes, agent, trusted, at, want) in cases {
        let err = verify_assignments(&bytes, key.public_key(), agent, trusted, at)
            .expect_err(what)
            .to_string();
        assert!(err.contains(want), "{what}: {err}");
    }
}

#[test]
fn assignment_and_catalog_must_agree() {
    let target = release_target(3);
    let dev = device(0x047f, 0xc056, 0x0100);
    let ok = assignment(&target);
    let (fw, version) = check_against_target(&ok, &target, &dev, 3).unwrap();
    assert_eq!(version.as_str(), "2.14.0");
    assert_eq!(fw.security_counter, 3);

    let mut wrong_sha = ok.clone();
    wrong_sha.sha256 = Sha256Digest::of(b"other image");
    let mut wrong_len = ok.clone();
    wrong_len.length += 1;
    let mut wrong_policy_hw = ok.clone();
    wrong_policy_hw.hardware_id = "047F:C057".parse().unwrap();
    let mut no_custom = target.clone();
    no_custom.custom = None;

    let cases: Vec<(&str, &Assignment, &TargetFile, DeviceReport, u32, &str)> = vec![
        (
            "sha256 differs",
            &wrong_sha,
            &target,
            dev.clone(),
            0,
            "assignment says sha256",
        ),
        (
            "length differs",
            &wrong_len,
            &target,
            dev.clone(),
            0,
            "assignment says length",
        ),
        (
            "other product",
            &ok,
            &target,
            device(0x047f, 0xc099, 0x0100),
            0,
            "not for the device 047F:C099",
        ),
        (
            "revision outside range",
            &ok,
            &target,
            device(0x047f, 0xc056, 0x0300),
            0,
            "rev 0300",
        ),
        (
            "policy for other hardware",
            &wrong_policy_hw,
            &target,
            dev.clone(),
            0,
            "not for the device",
        ),
        (
            "downgrade",
            &ok,
            &target,
            dev.clone(),
            4,
            "below the installed 4",
        ),
        (
            "not firmware",
            &ok,
            &no_custom,
            dev.clone(),
            0,
            "no firmware description",
        ),
    ];
    for (what, a, t, d, installed, want) in cases {
        let err = check_against_target(a, t, &d, installed)
            .expect_err(what)
            .to_string();
        assert!(err.contains(want), "{what}: {err}");
    }
}

#[test]
fn an_older_version_needs_a_signed_allowance() {
    use crate::package::VersionFormat as F;
    let target = TargetFile::from_data(b"x", None);
    let plain = |v: &str| Version::parse(v, F::Plain).unwrap();
    let with = |text: Option<&str>, bcd: u16| {
        let mut d = device(0x047f, 0xc056, bcd);
        d.firmware_version = text.map(str::to_owned);
        d
    };
    /// `Ok(the running version reported for an allowed downgrade)` or
    /// `Err(words of the refusal)`.
    type Expected = Result<Option<&'static str>, &'static str>;
    /// (offered, format, device text, bcdDevice, allowed?, expected)
    type Row = (&'static str, F, Option<&'static str>, u16, bool, Expected);
    let table: [Row; 9] = [
        ("2.14.0", F::Plain, Some("2.13.0"), 0, false, Ok(None)),
        ("2.13.0", F::Plain, Some("2.13.0"), 0, false, Ok(None)),
        (
            "2.12.9",
            F::Plain,
            Some("2.13.0"),
            0,
            false,
            Err("older than the 2.13.0"),
        ),
        (
            "2.12.9",
            F::Plain,
            Some("2.13.0"),
            0,
            true,
            Ok(Some("2.13.0")),
        ),
        (
            "2.9",
            F::Plain,
            Some("2.10"),
            0,
            false,
            Err("older than the 2.10"),
        ),
        // No text: bcdDevice stands for the version where the format says how.
        (
            "1.05",
            F::Bcd,
            None,
            0x0110,
            false,
            Err("older than the 1.10"),
        ),
        ("1.20", F::Bcd, None, 0x0110, false, Ok(None)),
        (
            "0x0100",
            F::Hex,
            None,
            0x0200,
            false,
            Err("older than the 0x200"),
        ),
        // Plain with no text: nothing to compare, the counter guards.
        ("0.1", F::Plain, None, 0x0900, false, Ok(None)),
    ];
    for (offered, format, text, bcd, allow, want) in table {
        let mut a = assignment(&target);
        a.allow_downgrade = allow;
        let offered_v = Version::parse(offered, format).unwrap();
        let got = check_not_older(&a, &offered_v, &with(text, bcd));
        match (got, want) {
            (Ok(v), Ok(w)) => {
                assert_eq!(v.map(|v| v.to_string()), w.map(str::to_owned), "{offered}")
            }
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{offered}: {e}"),
            (got, want) => panic!("{offered}: got {got:?}, wanted {want:?}"),
        }
    }
    assert_eq!(running_version(&with(Some("junk!"), 0), F::Plain), None);
    assert_eq!(
        running_version(&with(Some("3.1"), 0), F::Plain),
        Some(plain("3.1"))
    );
}

#[test]
fn allow_downgrade_is_signed_and_absent_when_false() {
    let target = TargetFile::from_data(b"x", None);
    let a = assignment(&target);
    let v = serde_json::to_value(&a).unwrap();
    assert!(v.get("allow_downgrade").is_none(), "{v}");
    let mut b = a.clone();
    b.allow_downgrade = true;
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["allow_downgrade"], true);
    let back: Assignment = serde_json::from_value(v).unwrap();
    assert!(back.allow_downgrade);
}
