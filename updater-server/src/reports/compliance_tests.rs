//! Table tests of the compliance classification and policy selection.

use catalog::checkin::UpdatePhase::{
    self, AwaitingReplug, Deferred, Failed, Flashing, Installed, Staged, Waiting,
};

use super::super::fixtures::*;
use super::*;

const SN: &str = "047f/serial/SN1";
const TARGET: &str = "acme/Voyager/2.0/fw.bin";

/// One case: the device's version, what its host last reported, the
/// policy's deployment and version, and the expected status and detail.
struct Case {
    name: &'static str,
    fw: Option<&'static str>,
    dfu: DfuState,
    /// Day of the host's last check-in (the policy changed on day 5).
    last_seen: u32,
    /// (target, phase, message, deferrals)
    state: Option<(&'static str, Option<UpdatePhase>, Option<&'static str>, u32)>,
    skipped: Option<SkipReason>,
    deployment: DeploymentType,
    version: &'static str,
    want: ComplianceStatus,
    detail: &'static str,
}

const fn case(name: &'static str, want: ComplianceStatus, detail: &'static str) -> Case {
    Case {
        name,
        fw: Some("1.0"),
        dfu: DfuState::Runtime,
        last_seen: 10,
        state: None,
        skipped: None,
        deployment: DeploymentType::Silent,
        version: "latest",
        want,
        detail,
    }
}

#[test]
fn classification_table() {
    use ComplianceStatus as S;
    let window_msg =
        "silent update: outside the maintenance window (next opens 2026-01-21T02:00:00+00:00)";
    let cases = [
        Case {
            fw: Some("2.0"),
            ..case("runs the target", S::Compliant, "")
        },
        Case {
            fw: Some("2.0.0"),
            ..case("same version, other spelling", S::Compliant, "")
        },
        case(
            "assigned, nothing reported",
            S::Pending,
            "assigned; no progress reported yet",
        ),
        Case {
            state: Some((TARGET, Some(Failed), Some("verify failed: CRC mismatch"), 0)),
            ..case(
                "failed with the agent's error",
                S::Failed,
                "verify failed: CRC mismatch",
            )
        },
        Case {
            state: Some((TARGET, Some(Failed), None, 0)),
            ..case("failed without a message", S::Failed, "failed (no message)")
        },
        Case {
            state: Some((TARGET, Some(Staged), Some(window_msg), 0)),
            ..case("outside the window", S::WaitingForWindow, window_msg)
        },
        Case {
            state: Some((
                TARGET,
                Some(Staged),
                Some("waiting for user consent (optional update)"),
                0,
            )),
            deployment: DeploymentType::Optional,
            ..case(
                "waiting for consent",
                S::WaitingForConsent,
                "waiting for user consent (optional update)",
            )
        },
        Case {
            state: Some((
                TARGET,
                Some(Staged),
                Some("awaiting replug: flashed; unplug and replug the device to finish"),
                0,
            )),
            ..case(
                "awaiting replug",
                S::AwaitingReplug,
                "awaiting replug: flashed; unplug and replug the device to finish",
            )
        },
        Case {
            state: Some((
                TARGET,
                Some(Staged),
                Some("the device is in a call; no update starts during a call"),
                0,
            )),
            ..case(
                "waiting for another reason",
                S::Waiting,
                "the device is in a call; no update starts during a call",
            )
        },
        Case {
            state: Some((TARGET, Some(Waiting), Some(window_msg), 0)),
            ..case("waiting phase: the window", S::WaitingForWindow, window_msg)
        },
        Case {
            state: Some((
                TARGET,
                Some(Waiting),
                Some("waiting for user consent (persistent update): deferred 1 of 3 times"),
                0,
            )),
            deployment: DeploymentType::Persistent,
            ..case(
                "waiting phase: consent",
                S::WaitingForConsent,
                "waiting for user consent (persistent update): deferred 1 of 3 times",
            )
        },
        Case {
            state: Some((
                TARGET,
                Some(Waiting),
                Some("another piece of the same product is attached (047f/serial/B1, Base); a silent update of a multi-piece product waits until it is the only one, and is retried when it is unplugged (schedule the pieces in different windows, or turn the policy's multi-piece guard off)"),
                0,
            )),
            ..case(
                "waiting phase: another piece, although the reason names windows",
                S::Waiting,
                "another piece of the same product is attached (047f/serial/B1, Base); a silent update of a multi-piece product waits until it is the only one, and is retried when it is unplugged (schedule the pieces in different windows, or turn the policy's multi-piece guard off)",
            )
        },
        Case {
            state: Some((TARGET, Some(AwaitingReplug), Some("awaiting replug: flashed; unplug and replug the device to finish"), 0)),
            ..case(
                "awaiting-replug phase",
                S::AwaitingReplug,
                "awaiting replug: flashed; unplug and replug the device to finish",
            )
        },
        Case {
            state: Some((TARGET, Some(AwaitingReplug), None, 0)),
            ..case(
                "awaiting-replug phase without a message",
                S::AwaitingReplug,
                "flashed; unplug and replug the device to finish",
            )
        },
        Case {
            state: Some((TARGET, Some(Flashing), None, 0)),
            ..case("flashing", S::Pending, "being installed")
        },
        Case {
            state: Some((TARGET, Some(Staged), None, 0)),
            ..case("staged, silent policy", S::WaitingForWindow, "staged")
        },
        Case {
            state: Some((TARGET, Some(Staged), None, 0)),
            deployment: DeploymentType::Persistent,
            ..case("staged, persistent policy", S::WaitingForConsent, "staged")
        },
        Case {
            state: Some((TARGET, Some(Staged), None, 0)),
            deployment: DeploymentType::Automatic,
            ..case("staged, automatic policy", S::Pending, "staged")
        },
        Case {
            state: Some((TARGET, Some(Deferred), None, 2)),
            deployment: DeploymentType::Persistent,
            ..case("deferred", S::Deferred, "deferred by the user 2 time(s)")
        },
        Case {
            state: Some((TARGET, Some(Installed), None, 0)),
            ..case(
                "installed, old version still reported",
                S::Pending,
                "installed; the device has not reported the new version yet",
            )
        },
        Case {
            state: Some((
                "acme/Voyager/1.5/fw.bin",
                Some(Failed),
                Some("old failure"),
                0,
            )),
            ..case(
                "a state about another target is ignored",
                S::Pending,
                "assigned; no progress reported yet",
            )
        },
        Case {
            state: Some((TARGET, None, None, 0)),
            ..case(
                "a state without a phase",
                S::Pending,
                "assigned; no progress reported yet",
            )
        },
        Case {
            last_seen: 4,
            state: Some((TARGET, Some(Failed), Some("old failure"), 0)),
            ..case(
                "not seen since the policy changed",
                S::NotSeenSincePolicyChange,
                "last check-in 2026-01-04T00:00:00Z, policy changed 2026-01-05T00:00:00Z",
            )
        },
        Case {
            last_seen: 4,
            fw: Some("2.0"),
            ..case("compliant even if not seen since", S::Compliant, "")
        },
        Case {
            dfu: DfuState::None,
            ..case(
                "not updatable",
                S::NotUpdatable,
                "the device has no DFU interface",
            )
        },
        Case {
            version: "9.9",
            ..case(
                "pin not in the catalog",
                S::PinnedVersionNotInCatalog,
                "version 9.9 is not in the catalog",
            )
        },
        Case {
            skipped: Some(SkipReason::Downgrade {
                policy: "p".into(),
                target: TARGET.into(),
                offered: 1,
                installed: 4,
            }),
            ..case(
                "downgrade refused at check-in",
                S::DowngradeRefused,
                "release security counter 1 is below the installed 4",
            )
        },
        Case {
            skipped: Some(SkipReason::NotCapable {
                policy: "p".into(),
                message:
                    "acme/Voyager/2.0/fw.bin is not silent-capable: silent deployment is refused"
                        .into(),
            }),
            ..case(
                "not capable at check-in",
                S::NotCapable,
                "acme/Voyager/2.0/fw.bin is not silent-capable: silent deployment is refused",
            )
        },
        Case {
            skipped: Some(SkipReason::NoPolicy),
            ..case(
                "a stale skip reason is ignored",
                S::Pending,
                "assigned; no progress reported yet",
            )
        },
    ];
    let releases = [
        release(VOYAGER, "Voyager", "1.0"),
        release(VOYAGER, "Voyager", "2.0"),
    ];
    for c in cases {
        let mut d = device("d1", VOYAGER, Some("SN1"), c.fw);
        d.dfu = c.dfu;
        let mut h = host("h1", "ws-1", ALL_USERS, day(c.last_seen));
        if let Some((target, phase, message, deferrals)) = c.state {
            let mut st = state(SN, Some(target), phase, message);
            st.deferrals = deferrals;
            h.update_states.push(st);
        }
        // Another device's state never counts.
        h.update_states.push(state(
            "047f/serial/OTHER",
            Some(TARGET),
            Some(Failed),
            Some("not mine"),
        ));
        if let Some(reason) = c.skipped {
            h.skipped.push((SN.into(), reason));
        }
        let mut p = policy("p", VOYAGER, None, c.version, c.deployment);
        p.stamps.updated_at = day(5);
        let candidates: Vec<&FirmwareRelease> = releases.iter().collect();
        let target = p
            .spec
            .version
            .select(&candidates)
            .ok_or(ComplianceStatus::PinnedVersionNotInCatalog);
        let (status, detail) = classify(&d, Some(&h), &p, target);
        assert_eq!((status, detail.as_str()), (c.want, c.detail), "{}", c.name);
    }
}

#[test]
fn no_release_and_missing_host() {
    let d = device("d1", BLACKWIRE, Some("SN1"), Some("1.0"));
    let p = policy("p", BLACKWIRE, None, "latest", DeploymentType::Automatic);
    assert_eq!(
        classify(&d, None, &p, Err(ComplianceStatus::NoRelease)),
        (
            ComplianceStatus::NoRelease,
            "the catalog has no release for the device".into()
        )
    );
    let r = release(BLACKWIRE, "Blackwire", "2.0");
    assert_eq!(
        classify(&d, None, &p, Ok(&r)),
        (
            ComplianceStatus::Pending,
            "the device's host is no longer in the inventory".into()
        )
    );
}

#[test]
fn rows_follow_the_hosts_group_and_list_devices_without_policy_apart() {
    let mut s = snapshot();
    s.releases = vec![
        release(VOYAGER, "Voyager", "1.0"),
        release(VOYAGER, "Voyager", "2.0"),
    ];
    s.groups = vec![group("sales", 1, manual(&["ann"]))];
    let mut pinned = policy(
        "p-sales",
        VOYAGER,
        Some("sales"),
        "1.0",
        DeploymentType::Optional,
    );
    pinned.spec.name = "=Sales pin".into();
    let mut disabled = policy("p-off", BLACKWIRE, None, "latest", DeploymentType::Optional);
    disabled.spec.enabled = false;
    s.policies = vec![
        policy("p-all", VOYAGER, None, "latest", DeploymentType::Silent),
        pinned,
        disabled,
    ];
    s.hosts = vec![
        host("h1", "ws-sales", "sales", day(10)),
        host("h2", "ws-other", ALL_USERS, day(10)),
    ];
    let mut on_h2 = device("d2", VOYAGER, Some("SN2"), Some("1.0"));
    on_h2.host = "h2".into();
    let mut gone = device("d9", VOYAGER, Some("SN9"), Some("1.0"));
    gone.deleted_at = Some(day(12));
    s.devices = vec![
        device("d1", VOYAGER, Some("SN1"), Some("1.0")),
        on_h2,
        device("d3", BLACKWIRE, Some("SN3"), Some("1.0")),
        device("d4", OTHER, None, None),
        gone,
    ];
    let mut no_dfu = device("d5", OTHER, Some("SN5"), None);
    no_dfu.dfu = DfuState::None;
    s.devices.push(no_dfu);
    let rows = rows(&s);
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.device_id.as_str(),
                r.group.as_str(),
                r.policy.as_deref(),
                r.target_version.as_deref(),
                r.compliant,
                r.status,
            )
        })
        .collect();
    // By model, host name, device: the Blackwire's policy is disabled, the
    // other vendor's devices have none.
    assert_eq!(
        got,
        [
            ("d3", "sales", None, None, false, ComplianceStatus::NoPolicy),
            (
                "d2",
                ALL_USERS,
                Some("p-all"),
                Some("2.0"),
                false,
                ComplianceStatus::Pending
            ),
            (
                "d1",
                "sales",
                Some("p-sales"),
                Some("1.0"),
                true,
                ComplianceStatus::Compliant
            ),
            ("d4", "sales", None, None, false, ComplianceStatus::NoPolicy),
            (
                "d5",
                "sales",
                None,
                None,
                false,
                ComplianceStatus::NotUpdatable
            ),
        ]
    );
    assert_eq!(
        rows[0].detail,
        "no enabled firmware policy for this model in the host's group or All Users"
    );
    let built = build(&s);
    assert_eq!(built.json()["devices"], 5);
    assert_eq!(built.json()["compliant"], 1);
    assert_eq!(built.json()["non_compliant"], 1);
    assert_eq!(built.json()["without_policy"], 3);
    assert_eq!(
        built.json()["by_status"],
        serde_json::json!({"compliant": 1, "pending": 1, "no_policy": 2, "not_updatable": 1})
    );
    assert_eq!(built.json()["rows"][2]["deployment"], "optional");
    assert_eq!(
        built.json()["rows"][0]["deployment"],
        serde_json::Value::Null
    );
    assert_eq!(
        built.rows()[2],
        [
            "d1",
            "047f/serial/SN1",
            "047F:C056",
            "SN1",
            "h1",
            "ws-sales",
            "",
            "sales",
            "p-sales",
            "=Sales pin",
            "optional",
            "1.0",
            "1.0",
            "true",
            "compliant",
            "",
            "2026-01-10T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ]
    );
    assert_eq!(
        built.rows()[0][8..12],
        ["", "", "", ""],
        "no policy, name, deployment or target"
    );
    let csv = String::from_utf8(built.render(super::super::Format::Csv).unwrap()).unwrap();
    assert!(csv.contains(",'=Sales pin,"), "{csv}");
}

#[test]
fn a_device_in_dfu_mode_awaiting_its_replug_is_listed_under_the_model_it_is_installing() {
    // In DFU mode the headset enumerates with the bootloader's product id;
    // its host says which release it is installing.
    const DFU_PID: u16 = 0xdf11;
    let mut s = snapshot();
    s.releases = vec![
        release(VOYAGER, "Voyager", "1.0"),
        release(VOYAGER, "Voyager", "2.0"),
    ];
    // The release also fits another model of the vendor, which no policy
    // covers: the row is under the covered one.
    s.releases[1].hardware_ids.insert(
        0,
        catalog::package::HardwareId::new(BLACKWIRE.0, BLACKWIRE.1),
    );
    s.policies = vec![policy(
        "p-all",
        VOYAGER,
        None,
        "latest",
        DeploymentType::Silent,
    )];
    let mut h = host("h1", "ws-1", ALL_USERS, day(10));
    h.update_states.push(state(
        SN,
        Some(TARGET),
        Some(AwaitingReplug),
        Some("awaiting replug: flashed; unplug and replug the device to finish"),
    ));
    s.hosts = vec![h];
    let mut in_dfu = device("d1", (VOYAGER.0, DFU_PID), Some("SN1"), None);
    in_dfu.dfu = DfuState::DfuMode;
    // Another DFU-mode device whose host names no release is listed under
    // its bootloader's id, which no policy covers.
    let mut unknown = device("d2", (VOYAGER.0, DFU_PID), Some("SN2"), None);
    unknown.dfu = DfuState::DfuMode;
    s.devices = vec![in_dfu, unknown];
    let rows = rows(&s);
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.device_id.as_str(),
                r.model.as_str(),
                r.status,
                r.target_version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "d1",
                "047F:C056",
                ComplianceStatus::AwaitingReplug,
                Some("2.0")
            ),
            ("d2", "047F:DF11", ComplianceStatus::NoPolicy, None),
        ]
    );
}
