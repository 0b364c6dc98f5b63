//! The demo's second part: a staged rollout of 2.2.0 — the Pilot group
//! (5 % of the users), then 25 %, then everyone, each wave in its own night, the admin
//! approving the next wave each morning once the last one succeeded — while
//! a broken 2.2.0 of another model (its image is the factory firmware's, so
//! a flashed headset never comes back with 2.2.0) pauses its own rollout in the pilot
//! wave at the error threshold, and no device of its later waves is
//! touched.

use std::collections::BTreeSet;

use anyhow::Context;
use catalog::window::{MaintenanceWindow, Occurrence};
use serde_json::{json, Value};
use test_devices::FirmwareVersion;

use crate::demo::{next_window, run_night, window_json};
use crate::firmware::{hardware_id, models, Model, FACTORY_VERSION};
use crate::fleet::Fleet;
use crate::progress::Progress;
use crate::scenario::PlannedHost;
use crate::world::{Tenant, World};

/// The staged release's firmware.
pub const STAGED_VERSION: FirmwareVersion = FirmwareVersion::new(2, 2, 0);
/// The model whose 2.2.0 is good.
pub const GOOD_MODEL: &str = "headset_tolerant";
/// The model whose 2.2.0 is broken.
pub const BROKEN_MODEL: &str = "headset_needs_replug";

/// What the second part needs from the first.
pub(crate) struct Setting<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// The Pilot group's id.
    pub pilot_group: &'a str,
    /// The hosts as planned (same order as the fleet's).
    pub planned: &'a [PlannedHost],
    /// The nightly window and its zone.
    pub window: &'a MaintenanceWindow,
    /// The zone's name.
    pub zone: &'a str,
    /// The last night of the first part.
    pub after: Occurrence,
}

fn model(profile: &str) -> anyhow::Result<Model> {
    models()
        .into_iter()
        .find(|m| m.profile == profile)
        .with_context(|| format!("no model {profile}"))
}

/// One line per wave: name, devices, installed, failed, began.
fn summary(name: &str, s: &Value) -> String {
    let mut out = format!("rollout {name}: {}", s["state"].as_str().unwrap_or("?"));
    for w in s["waves"].as_array().into_iter().flatten() {
        let f = &w["figures"];
        let failed: u64 = f["failed"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, n)| n.as_u64())
            .sum();
        out.push_str(&format!(
            "; {} {}/{} installed{}{}",
            w["name"].as_str().unwrap_or("?"),
            f["installed"],
            f["devices"],
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            },
            if w["started_at"].is_null() {
                " (not begun)"
            } else {
                ""
            },
        ));
    }
    if let Some(why) = s["pause"]["reason"].as_str() {
        out.push_str(&format!("\n  paused: {why}"));
    }
    out
}

/// The number of the wave an admin would approve now: the first that has
/// not begun, starts on approval, and follows a wave that succeeded.
fn approvable(s: &Value) -> Option<u64> {
    if s["state"] != "running" {
        return None;
    }
    let waves = s["waves"].as_array()?;
    let i = waves.iter().position(|w| w["started_at"].is_null())?;
    let previous_succeeded = i > 0 && !waves[i - 1]["succeeded_at"].is_null();
    (waves[i]["start"] == "on approval" && previous_succeeded)
        .then(|| waves[i]["number"].as_u64())?
}

/// Runs the second part; returns what did not go as the story expects.
pub(crate) fn run(
    world: &mut World,
    fleet: &mut Fleet,
    progress: &Progress,
    s: &Setting<'_>,
) -> anyhow::Result<Vec<String>> {
    let label = STAGED_VERSION.to_string();
    let good_target = world.import_release(GOOD_MODEL, STAGED_VERSION, &label)?;
    let broken_target = world.import_release(BROKEN_MODEL, FACTORY_VERSION, &label)?;
    println!(
        "\nimported {good_target}, and {broken_target} (broken: its image is {FACTORY_VERSION}'s)"
    );
    let admin = world.admin(s.tenant)?;
    let mut rollouts = Vec::new();
    for profile in [GOOD_MODEL, BROKEN_MODEL] {
        let m = model(profile)?;
        let r = admin.post(
            "rollouts",
            &json!({
                "name": format!("{} {label}", m.name),
                "model": hardware_id(&m).to_string(),
                "version": label,
                "deployment": "silent",
                "window": window_json(s.zone),
                "waves": [
                    {"name": "Pilot", "group": s.pilot_group},
                    {"name": "25 %", "percent": 25, "start": "approval"},
                    {"name": "Everyone", "rest": true, "start": "approval"},
                ],
            }),
        )?;
        let id = r["id"].as_str().context("rollout id")?.to_owned();
        println!("{}", summary(m.name, &r["status"]));
        rollouts.push((m.name, id));
    }

    let mut night = s.after;
    for title in [
        "night 3 (rollout: pilot)",
        "night 4 (rollout: 25 %)",
        "night 5 (rollout: everyone)",
    ] {
        night = next_window(s.window, night.end);
        run_night(world, fleet, progress, title, night, s.zone, &mut |_, _| {
            Ok(())
        })?;
        let admin = world.admin(s.tenant)?;
        println!("the morning after {title}:");
        for (name, id) in &rollouts {
            let status = admin.get(&format!("rollouts/{id}/status"))?;
            println!("{}", summary(name, &status));
            if let Some(n) = approvable(&status) {
                admin.post(&format!("rollouts/{id}/approve"), &json!({}))?;
                println!("  the admin approves wave {n}");
            }
        }
    }
    check(world, fleet, s, &rollouts, &broken_target)
}

fn check(
    world: &World,
    fleet: &Fleet,
    s: &Setting<'_>,
    rollouts: &[(&str, String)],
    broken_target: &str,
) -> anyhow::Result<Vec<String>> {
    let admin = world.admin(s.tenant)?;
    let mut unexpected = Vec::new();
    let good = admin.get(&format!("rollouts/{}/status", rollouts[0].1))?;
    if good["state"] != "completed" {
        unexpected.push(format!(
            "the good rollout is {}, not completed",
            good["state"]
        ));
    }
    let behind = fleet
        .hosts()
        .iter()
        .flat_map(|h| h.versions())
        .filter(|(m, v)| m.profile == GOOD_MODEL && *v != Some(STAGED_VERSION))
        .count();
    if behind > 0 {
        unexpected.push(format!(
            "{behind} {GOOD_MODEL} devices are not on {STAGED_VERSION}"
        ));
    }

    let broken = admin.get(&format!("rollouts/{}/status", rollouts[1].1))?;
    let failure = broken["pause"]["failure"].as_str().unwrap_or_default();
    if broken["state"] != "paused" || broken["pause"]["wave"] != 0 || !failure.contains("came back")
    {
        unexpected.push(format!(
            "the broken rollout should have paused itself in the pilot wave: {broken}"
        ));
    }
    let later_begun = broken["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(1)
        .any(|w| !w["started_at"].is_null());
    if later_begun {
        unexpected.push("a later wave of the broken rollout began".into());
    }
    // No device outside the pilot was ever flashed with the broken image.
    let mut pilots = BTreeSet::new();
    for (p, h) in s.planned.iter().zip(fleet.hosts()) {
        if p.pilot {
            let e = update_agent::enroll::load(h.state_dir())?.context("enrollment")?;
            pilots.insert(e.agent_id);
        }
    }
    let mut since = 0;
    loop {
        let page = admin.get(&format!("update-history?since={since}&limit=1000"))?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        for r in &items {
            let agent = r["agent"].as_str().unwrap_or_default();
            if r["target"] == broken_target && r["outcome"] == "started" && !pilots.contains(agent)
            {
                unexpected.push(format!(
                    "agent {agent} outside the pilot started the broken update"
                ));
            }
        }
        since = page["next_since"].as_u64().context("next_since")?;
    }
    Ok(unexpected)
}
