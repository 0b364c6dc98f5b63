//! The compliance report and the check-in's assignment computation agree
//! on every device's policy (one rule: `fleet::compute::policy_for`).

use catalog::assignment::DeploymentType;

use super::compliance::rows;
use super::fixtures::*;
use crate::fleet::ALL_USERS;

/// The report finds each device's policy as the check-in does: on a
/// generated fleet (custom groups, enabled and disabled policies per group
/// and model, hosts in every group, models with and without releases), the
/// policy of every row is the one `fleet::compute` assigned the device, or
/// skipped it under.
#[test]
fn the_report_and_the_check_in_agree_on_every_devices_policy() {
    use crate::fleet::compute::{compute, Reported, SkipReason};
    use catalog::protocol::DeviceReport;

    const LEGACY: (u16, u16) = (0x047f, 0x0100);
    let models = [VOYAGER, BLACKWIRE, OTHER, LEGACY];
    let groups = [None, Some("g1"), Some("g2"), Some("g3")];
    // A fixed xorshift: the same fleet every run.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut pick = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut s = snapshot();
    s.releases = vec![
        release(VOYAGER, "Voyager", "2.0"),
        release(BLACKWIRE, "Blackwire", "3.0"),
    ];
    s.groups = vec![
        group("g1", 1, manual(&["u-g1"])),
        group("g2", 2, manual(&["u-g2"])),
        group("g3", 3, manual(&["u-g3"])),
    ];
    for (m, model) in models.iter().enumerate() {
        for g in groups {
            if pick(3) > 0 {
                let id = format!("p{m}-{}", g.unwrap_or("all"));
                let mut p = policy(&id, *model, g, "latest", DeploymentType::Optional);
                p.spec.enabled = pick(4) > 0;
                s.policies.push(p);
            }
        }
    }
    let mut by_host: Vec<(Option<&str>, Vec<DeviceReport>)> = Vec::new();
    for h in 0..60 {
        let g = groups[pick(groups.len())];
        let host_id = format!("h{h}");
        s.hosts.push(host(
            &host_id,
            &format!("ws-{h}"),
            g.unwrap_or(ALL_USERS),
            day(10),
        ));
        let mut reports = Vec::new();
        for n in 0..=pick(3) {
            let model = models[pick(models.len())];
            let version = ["1.0", "2.0", "3.0"][pick(3)];
            let serial = format!("SN-{h}-{n}");
            let mut d = device(&format!("d{h}-{n}"), model, Some(&serial), Some(version));
            d.host = host_id.clone();
            reports.push(DeviceReport {
                vendor_id: d.vendor_id,
                product_id: d.product_id,
                bcd_device: d.bcd_device,
                serial: d.serial.clone(),
                port_path: None,
                manufacturer: None,
                product: None,
                firmware_version: d.firmware_version.clone(),
                dfu: d.dfu,
                telephony: true,
                battery: None,
                in_call: false,
            });
            s.devices.push(d);
        }
        by_host.push((g, reports));
    }

    // What the check-in decides, per device: the policy it assigned or
    // skipped under (`None`: no policy).
    let mut assigned = std::collections::BTreeMap::new();
    for (g, reports) in &by_host {
        let reported = Reported {
            users: g.map(|g| vec![format!("u-{g}")]).unwrap_or_default(),
            devices: reports,
            ..Reported::default()
        };
        let outcome = compute(&s.groups, &s.policies, &s.releases, &reported);
        let expected_group = g.unwrap_or(ALL_USERS);
        assert_eq!(outcome.group, expected_group);
        for a in &outcome.assignments {
            assigned.insert(a.device.clone(), Some(a.policy.clone()));
        }
        for (device, reason) in &outcome.skipped {
            let policy = match reason {
                SkipReason::NotUpdatable | SkipReason::NoPolicy => None,
                SkipReason::NoRelease { policy }
                | SkipReason::PinnedVersionNotInCatalog { policy, .. }
                | SkipReason::NotCapable { policy, .. }
                | SkipReason::Downgrade { policy, .. }
                | SkipReason::UpToDate { policy, .. } => Some(policy.clone()),
                SkipReason::RolloutHeld { rollout, .. } => Some(rollout.clone()),
            };
            assigned.insert(device.clone(), policy);
        }
    }
    let rows = rows(&s);
    assert_eq!(rows.len(), s.devices.len(), "every device has a row");
    let mut with_policy = 0;
    for r in &rows {
        assert_eq!(
            Some(&r.policy),
            assigned.get(&r.identity),
            "{} on {} ({})",
            r.identity,
            r.hostname,
            r.group
        );
        with_policy += usize::from(r.policy.is_some());
    }
    // The generated fleet exercises both sides of the rule.
    assert!(
        with_policy > 20 && with_policy < rows.len(),
        "{with_policy}"
    );
}
