//! Table tests of the software offer.

use catalog::assignment::DeploymentType;
use catalog::digest::Sha256Digest;
use chrono::{TimeZone, Utc};

use super::*;
use crate::fleet::{SoftwarePolicyInput, Stamps};

fn policy(id: &str, platform: &str, group: Option<&str>, version: &str) -> SoftwarePolicy {
    policy_with(id, platform, group, version, true, DeploymentType::Optional)
}

fn policy_with(
    id: &str,
    platform: &str,
    group: Option<&str>,
    version: &str,
    enabled: bool,
    deployment: DeploymentType,
) -> SoftwarePolicy {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    SoftwarePolicy {
        tenant: "t".into(),
        id: id.into(),
        spec: SoftwarePolicyInput {
            name: id.into(),
            platform: platform.into(),
            group: group.map(str::to_owned),
            version: if version == "latest" {
                VersionSpec::Latest
            } else {
                VersionSpec::Pinned(version.into())
            },
            deployment,
            enabled,
        },
        stamps: Stamps {
            created_at: t,
            updated_at: t,
        },
    }
}

fn package(platform: &str, version: &str) -> SoftwarePackage {
    SoftwarePackage {
        target_name: format!("agent/{platform}/{version}/update-agent"),
        sha256: Sha256Digest::of(format!("{platform} {version}").as_bytes()),
        length: 1000,
    }
}

fn release(platform: &str, version: &str, with_package: bool) -> AgentRelease {
    AgentRelease {
        platform: platform.into(),
        version: parse(version).unwrap(),
        package: with_package.then(|| package(platform, version)),
    }
}

/// What the table expects: the offered (version, policy, version of the
/// attached package), or the skip.
type Expect = Result<(&'static str, &'static str, Option<&'static str>), SoftwareSkip>;

fn not_newer(policy: &str, selected: &str, running: &str) -> Expect {
    Err(SoftwareSkip::NotNewer {
        policy: policy.into(),
        selected: selected.into(),
        running: running.into(),
    })
}

#[test]
fn offers_follow_group_platform_and_never_downgrade() {
    let available = vec![
        release("linux", "0.2.0", true),
        release("linux", "0.3.0", false),
        release("linux", "0.1.0", true),
        release("windows", "0.9.0", true),
    ];
    let all_latest = policy("all-linux", "linux", None, "latest");
    let all_pinned = policy("all-pin", "linux", None, "0.2.0");
    let sales_pin = policy("sales-linux", "linux", Some("sales"), "0.2");
    let sales_disabled = policy_with(
        "sales-off",
        "linux",
        Some("sales"),
        "0.3.0",
        false,
        DeploymentType::Automatic,
    );
    let win_persistent = policy_with(
        "all-win",
        "windows",
        None,
        "latest",
        true,
        DeploymentType::Persistent,
    );
    let mac_pin = policy("all-mac", "macos", None, "1.0.0");
    let bad_pin = policy("bad", "linux", None, "1..0");

    // (what, policies, group, platform, running, expected)
    type Case<'a> = (
        &'a str,
        Vec<SoftwarePolicy>,
        Option<&'a str>,
        &'a str,
        &'a str,
        Expect,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "no policy at all",
            vec![],
            None,
            "linux",
            "0.1.0",
            Err(SoftwareSkip::NoPolicy),
        ),
        (
            "policy for another platform only",
            vec![win_persistent.clone()],
            None,
            "linux",
            "0.1.0",
            Err(SoftwareSkip::NoPolicy),
        ),
        (
            "latest: the highest version, even without a package",
            vec![all_latest.clone()],
            None,
            "linux",
            "0.1.0",
            Ok(("0.3.0", "all-linux", None)),
        ),
        (
            "latest equal to the running version: nothing",
            vec![all_latest.clone()],
            None,
            "linux",
            "0.3.0",
            not_newer("all-linux", "0.3.0", "0.3.0"),
        ),
        (
            "latest equal in another spelling (0.3 = 0.3.0): nothing",
            vec![all_latest.clone()],
            None,
            "linux",
            "0.3",
            not_newer("all-linux", "0.3.0", "0.3"),
        ),
        (
            "agent newer than latest: never downgraded",
            vec![all_latest.clone()],
            None,
            "linux",
            "1.0.0",
            not_newer("all-linux", "0.3.0", "1.0.0"),
        ),
        (
            "pin with its package",
            vec![all_pinned.clone()],
            None,
            "linux",
            "0.1.0",
            Ok(("0.2.0", "all-pin", Some("0.2.0"))),
        ),
        (
            "pin below the running version: never downgraded",
            vec![all_pinned.clone()],
            None,
            "linux",
            "0.2.5",
            not_newer("all-pin", "0.2.0", "0.2.5"),
        ),
        (
            "pin without any known release: the version alone",
            vec![mac_pin.clone()],
            None,
            "macos",
            "0.9.9",
            Ok(("1.0.0", "all-mac", None)),
        ),
        (
            "the group's policy beats All Users (pin 0.2 finds the 0.2.0 package)",
            vec![all_latest.clone(), sales_pin.clone()],
            Some("sales"),
            "linux",
            "0.1.0",
            Ok(("0.2", "sales-linux", Some("0.2.0"))),
        ),
        (
            "another group falls back to All Users",
            vec![all_latest.clone(), sales_pin.clone()],
            Some("pilot"),
            "linux",
            "0.1.0",
            Ok(("0.3.0", "all-linux", None)),
        ),
        (
            "a disabled group policy is ignored",
            vec![all_pinned.clone(), sales_disabled],
            Some("sales"),
            "linux",
            "0.1.0",
            Ok(("0.2.0", "all-pin", Some("0.2.0"))),
        ),
        (
            "latest on a platform with no release",
            vec![policy("all-mac-latest", "macos", None, "latest")],
            None,
            "macos",
            "0.1.0",
            Err(SoftwareSkip::NoRelease {
                policy: "all-mac-latest".into(),
            }),
        ),
        (
            "an unreadable running version gets nothing",
            vec![all_latest.clone()],
            None,
            "linux",
            "dev build",
            Err(SoftwareSkip::UnknownRunningVersion {
                running: "dev build".into(),
            }),
        ),
        (
            "a pin that is not a version",
            vec![bad_pin],
            None,
            "linux",
            "0.1.0",
            Err(SoftwareSkip::BadPin {
                policy: "bad".into(),
                version: "1..0".into(),
            }),
        ),
        (
            "deployment type comes from the policy",
            vec![win_persistent],
            None,
            "windows",
            "0.8",
            Ok(("0.9.0", "all-win", Some("0.9.0"))),
        ),
    ];
    for (what, policies, group, platform, running, want) in cases {
        let got = compute_software(&policies, group, platform, running, &available);
        match (got, want) {
            (Ok(offer), Ok((version, policy, package_version))) => {
                assert_eq!(
                    (
                        offer.version.as_str(),
                        offer.policy.as_str(),
                        offer.platform.as_str()
                    ),
                    (version, policy, platform),
                    "{what}"
                );
                assert_eq!(
                    offer.package,
                    package_version.map(|v| package(platform, v)),
                    "{what}"
                );
                let p = policies.iter().find(|p| p.id == policy).unwrap();
                assert_eq!(offer.deployment, p.spec.deployment, "{what}");
            }
            (got, want) => assert_eq!(
                got.map(|o| o.version),
                want.map(|w| w.0.to_owned()),
                "{what}"
            ),
        }
    }
}

#[test]
fn this_build_is_the_workspace_version() {
    let r = AgentRelease::this_build("linux");
    assert_eq!(
        (r.platform.as_str(), r.version.as_str(), r.package),
        ("linux", env!("CARGO_PKG_VERSION"), None)
    );
}
