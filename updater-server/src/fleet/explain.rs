//! Why a device got no assignment, in words an admin reads on the host: the
//! server signs these into the assignment document as `not_assigned`
//! (`{"<device>": "<why>"}`), and the agent's `check-now` and `status` print
//! them next to each attached device. The reasons themselves are
//! [`SkipReason`]s from [`super::compute`]; this only names the group,
//! policy and model they are about.

use std::collections::BTreeMap;

use catalog::protocol::DeviceReport;

use super::compute::{Outcome, SkipReason};
use super::rollouts::service::ROLLOUT_PREFIX;
use super::rollouts::Rollout;
use super::{FirmwarePolicy, Group};

/// The explanation for every device the outcome left out.
pub fn not_assigned(
    outcome: &Outcome,
    groups: &[Group],
    policies: &[FirmwarePolicy],
    rollouts: &[Rollout],
    devices: &[DeviceReport],
    users_reported: bool,
) -> BTreeMap<String, String> {
    let group = groups
        .iter()
        .find(|g| g.id == outcome.group)
        .map(|g| g.name.as_str());
    outcome
        .skipped
        .iter()
        .map(|(device, reason)| {
            let model = devices
                .iter()
                .find(|d| d.identity() == *device)
                .map(|d| format!("{:04X}:{:04X}", d.vendor_id, d.product_id));
            let why = explain(
                reason,
                &Context {
                    group,
                    users_reported,
                    model: model.as_deref().unwrap_or("this model"),
                    policy_name: &|id| match id.strip_prefix(ROLLOUT_PREFIX) {
                        Some(rid) => rollouts
                            .iter()
                            .find(|r| r.id == rid)
                            .map_or_else(|| id.to_owned(), |r| r.spec.name.clone()),
                        None => policies
                            .iter()
                            .find(|p| p.id == id)
                            .map_or_else(|| id.to_owned(), |p| p.spec.name.clone()),
                    },
                },
            );
            (device.clone(), why)
        })
        .collect()
}

/// What [`explain`] names.
struct Context<'a> {
    /// The host's custom group, if it is in one.
    group: Option<&'a str>,
    /// Whether the agent reported any logged-in user.
    users_reported: bool,
    /// `VID:PID` of the device.
    model: &'a str,
    /// A policy's name from its id.
    policy_name: &'a dyn Fn(&str) -> String,
}

fn explain(reason: &SkipReason, c: &Context<'_>) -> String {
    let policy = |id: &str| match id.starts_with(ROLLOUT_PREFIX) {
        true => format!("rollout \"{}\"", (c.policy_name)(id)),
        false => format!("policy \"{}\"", (c.policy_name)(id)),
    };
    match reason {
        SkipReason::NotUpdatable => {
            "not updatable: the device has no DFU interface (inventory only)".into()
        }
        SkipReason::NoPolicy => match c.group {
            Some(g) => format!(
                "no policy: no enabled firmware policy for {} in group \"{g}\" or All Users",
                c.model
            ),
            None if !c.users_reported => format!(
                "no policy: no enabled firmware policy for {} in All Users (this host reported \
                 no logged-in user, so its devices follow All Users)",
                c.model
            ),
            None => format!(
                "no policy: no enabled firmware policy for {} in All Users (the host's users \
                 are in no custom group)",
                c.model
            ),
        },
        SkipReason::NoRelease { policy: id } => format!(
            "no release: {} applies, but the catalog has no release for this device",
            policy(id)
        ),
        SkipReason::PinnedVersionNotInCatalog {
            policy: id,
            version,
        } => format!(
            "no release: {} pins version {version}, which the catalog does not have for this \
             device",
            policy(id)
        ),
        SkipReason::NotCapable {
            policy: id,
            message,
        } => {
            format!("not capable: {}: {message}", policy(id))
        }
        SkipReason::Downgrade {
            policy: id,
            target,
            offered,
            installed,
        } => format!(
            "downgrade refused: {} selects {target}, whose security counter {offered} is below \
             the installed {installed}",
            policy(id)
        ),
        SkipReason::RolloutHeld { why, .. } => format!("held back: {why}"),
        SkipReason::UpToDate {
            policy: id,
            version,
        } => {
            format!(
                "up to date: runs {version}, the version {} selects",
                policy(id)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_names_what_it_is_about() {
        let names = |id: &str| match id {
            "p1" => "Voyage silent".to_owned(),
            "rollout:r1" => "Voyage 2.2 staged".to_owned(),
            other => other.to_owned(),
        };
        let ctx = |group, users_reported| Context {
            group,
            users_reported,
            model: "1209:0003",
            policy_name: &names,
        };
        let p = || "p1".to_owned();
        // (reason, custom group, users reported, text)
        let cases = [
            (
                SkipReason::NoPolicy,
                Some("Sales"),
                true,
                "no policy: no enabled firmware policy for 1209:0003 in group \"Sales\" or All Users",
            ),
            (
                SkipReason::NoPolicy,
                None,
                false,
                "no policy: no enabled firmware policy for 1209:0003 in All Users (this host \
                 reported no logged-in user, so its devices follow All Users)",
            ),
            (
                SkipReason::NoPolicy,
                None,
                true,
                "no policy: no enabled firmware policy for 1209:0003 in All Users (the host's \
                 users are in no custom group)",
            ),
            (
                SkipReason::NotUpdatable,
                None,
                true,
                "not updatable: the device has no DFU interface (inventory only)",
            ),
            (
                SkipReason::NoRelease { policy: p() },
                None,
                true,
                "no release: policy \"Voyage silent\" applies, but the catalog has no release \
                 for this device",
            ),
            (
                SkipReason::PinnedVersionNotInCatalog {
                    policy: p(),
                    version: "2.9".into(),
                },
                None,
                true,
                "no release: policy \"Voyage silent\" pins version 2.9, which the catalog does \
                 not have for this device",
            ),
            (
                SkipReason::NotCapable {
                    policy: p(),
                    message: "acme/x/1/fw.dfu is not silent-capable".into(),
                },
                None,
                true,
                "not capable: policy \"Voyage silent\": acme/x/1/fw.dfu is not silent-capable",
            ),
            (
                SkipReason::Downgrade {
                    policy: "gone".into(),
                    target: "acme/x/1/fw.dfu".into(),
                    offered: 1,
                    installed: 3,
                },
                None,
                true,
                "downgrade refused: policy \"gone\" selects acme/x/1/fw.dfu, whose security \
                 counter 1 is below the installed 3",
            ),
            (
                SkipReason::UpToDate {
                    policy: p(),
                    version: "2.1.0".into(),
                },
                Some("Sales"),
                true,
                "up to date: runs 2.1.0, the version policy \"Voyage silent\" selects",
            ),
            (
                SkipReason::UpToDate {
                    policy: "rollout:r1".into(),
                    version: "2.2.0".into(),
                },
                None,
                true,
                "up to date: runs 2.2.0, the version rollout \"Voyage 2.2 staged\" selects",
            ),
            (
                SkipReason::RolloutHeld {
                    rollout: "rollout:r1".into(),
                    why: "rollout \"Voyage 2.2 staged\" is paused (paused by ann)".into(),
                },
                None,
                true,
                "held back: rollout \"Voyage 2.2 staged\" is paused (paused by ann)",
            ),
        ];
        for (reason, group, users, want) in cases {
            assert_eq!(explain(&reason, &ctx(group, users)), want, "{reason:?}");
        }
    }
}
