//! Staged rollouts on the real binaries: one `updater-server` process (its
//! rollout evaluation runs every simulated minute) and `update-agent run`
//! processes with simulated devices on one accelerated clock
//! (`tests::sim_fleet`). What the test checks is what an admin sees: the
//! rollout's status over the API, and the devices' versions.

use chrono::Duration;
use fleet_sim::firmware::{FACTORY_VERSION, NEW_VERSION};
use serde_json::{json, Value};
use test_devices::FirmwareVersion;
use tests::sim_fleet::{at, SimAgent, SimFleet};
use update_agent::devices::{queue_action, SimAction};

/// Simulated seconds per real second: an hour takes 4 s.
const SPEED: u32 = 900;

/// Back-to-back hourly windows: silent updates may run at any time.
fn always_open() -> Value {
    json!({"cron": "0 * * * *", "duration_minutes": 60, "tz": "UTC"})
}

fn versions(agents: &[SimAgent]) -> Vec<Option<FirmwareVersion>> {
    agents
        .iter()
        .flat_map(|a| a.versions().into_values())
        .collect()
}

#[test]
fn a_wave_on_approval_a_late_device_and_a_pause_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = SimFleet::start(
        dir.path(),
        at("2026-05-04T08:00:00Z"),
        SPEED,
        &[NEW_VERSION],
    );
    fleet.admin().post(
        "groups",
        &json!({"name": "Pilot", "poll_interval_secs": 3600, "membership": {"kind": "manual", "members": ["user-pilot"]}}),
    );
    let mut agents: Vec<SimAgent> = ["pilot", "desk-1", "desk-2"]
        .iter()
        .map(|n| {
            fleet.agent(
                n,
                &format!("user-{n}"),
                &[("headset_tolerant", &format!("SN-{n}"))],
            )
        })
        .collect();
    for a in &mut agents {
        a.start();
    }
    fleet.wait_for_inventory(3);
    let model = fleet_sim::firmware::hardware_id(&tests::sim_fleet::model("headset_tolerant"));
    let r = fleet.admin().post(
        "rollouts",
        &json!({"name": "Voyage 5200 2.1", "model": model.to_string(), "version": "latest",
                "deployment": "silent", "window": always_open(),
                "waves": [{"group": "Pilot"}, {"rest": true, "start": "approval"}]}),
    );
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["status"]["waves"][0]["figures"]["devices"], 1);
    assert_eq!(r["status"]["waves"][1]["figures"]["devices"], 2);

    // The pilot's headset updates; the others are held back.
    fleet.wait_until(
        "the pilot updated",
        fleet.now() + Duration::hours(4),
        || match agents[0].versions().into_values().next().flatten() {
            Some(v) if v == NEW_VERSION => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    fleet.wait_until(
        "the pilot wave succeeded",
        fleet.now() + Duration::hours(2),
        || {
            let s = fleet.rollout_status(&id);
            match s["waves"][0]["succeeded_at"].as_str() {
                Some(_) => Ok(s),
                None => Err(s.to_string()),
            }
        },
    );

    // A desk that appears now joins the wave that has not begun (the only
    // share wave), and waits with it.
    let mut late = fleet.agent(
        "desk-3",
        "user-desk-3",
        &[("headset_tolerant", "SN-desk-3")],
    );
    late.start();
    fleet.wait_until(
        "the late desk joined wave 2",
        fleet.now() + Duration::hours(2),
        || {
            let s = fleet.rollout_status(&id);
            match s["waves"][1]["figures"]["devices"].as_u64() {
                Some(3) => Ok(()),
                _ => Err(s.to_string()),
            }
        },
    );
    agents.push(late);

    // Paused, then the server restarts: still paused; resume and approve.
    fleet
        .admin()
        .post(&format!("rollouts/{id}/pause"), &json!({}));
    fleet.kill_server();
    fleet.restart_server();
    let s = fleet.rollout_status(&id);
    assert_eq!(s["state"], "paused");
    assert!(s["waves"][1]["started_at"].is_null());
    let held_until = fleet.now() + Duration::hours(2);
    fleet.pass_time_until(held_until);
    assert_eq!(
        versions(&agents[1..]),
        vec![Some(FACTORY_VERSION); 3],
        "no device of wave 2 moved before its approval"
    );
    fleet
        .admin()
        .post(&format!("rollouts/{id}/resume"), &json!({}));
    let approved = fleet
        .admin()
        .post(&format!("rollouts/{id}/approve"), &json!({}));
    assert!(!approved["waves"][1]["started_at"].is_null(), "{approved}");

    fleet.wait_until(
        "every device updated",
        fleet.now() + Duration::hours(6),
        || {
            let v = versions(&agents);
            if v.iter().all(|v| *v == Some(NEW_VERSION)) {
                Ok(())
            } else {
                Err(format!("{v:?}"))
            }
        },
    );
    let done = fleet.wait_until(
        "the rollout completed",
        fleet.now() + Duration::hours(2),
        || {
            let s = fleet.rollout_status(&id);
            if s["state"] == "completed" {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    );
    assert_eq!(
        (done["devices"].as_u64(), done["installed"].as_u64()),
        (Some(4), Some(4))
    );
    // Every wave-2 device installed after the approval, none before.
    let approved_at = at(approved["waves"][1]["approved_at"].as_str().unwrap());
    for (device, times) in fleet.installs() {
        if !device.ends_with("SN-pilot") {
            assert!(
                times.iter().all(|t| *t >= approved_at),
                "{device}: {times:?}"
            );
        }
    }
}

#[test]
fn replug_failures_cross_the_error_threshold_and_later_waves_are_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(dir.path(), at("2026-05-04T08:00:00Z"), SPEED, &[]);
    // 2.2.0 is broken: its image is 1.0.0's, so a flashed headset comes
    // back from its replug still on 1.0.0.
    fleet.import_mislabelled("headset_needs_replug", FACTORY_VERSION, "2.2.0");
    fleet.admin().post(
        "groups",
        &json!({"name": "Canary", "poll_interval_secs": 3600, "membership": {"kind": "manual",
                "members": ["user-canary-1", "user-canary-2"]}}),
    );
    let names = ["canary-1", "canary-2", "desk-1", "desk-2", "desk-3"];
    let agents = fleet.start_desks(&names, "headset_needs_replug");
    fleet.wait_for_inventory(5);
    let model = fleet_sim::firmware::hardware_id(&tests::sim_fleet::model("headset_needs_replug"));
    // The rest would begin six hours from now, long after the canaries
    // failed: only the pause keeps it from beginning.
    let rest_at = fleet.now() + Duration::hours(6);
    let r = fleet.admin().post(
        "rollouts",
        &json!({"name": "Voyage 3200 2.2", "model": model.to_string(), "version": "2.2.0",
                "deployment": "silent", "window": always_open(),
                "waves": [{"group": "Canary", "error_threshold_percent": 50},
                          {"rest": true, "start": {"at": rest_at.to_rfc3339()}}]}),
    );
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["status"]["waves"][0]["figures"]["devices"], 2);

    // The user at each canary desk replugs when asked; the headset comes
    // back on 1.0.0.
    for a in &agents[..2] {
        let serial = format!("SN-{}", a.root().file_name().unwrap().to_string_lossy());
        fleet.wait_until(
            &format!("{serial} awaits its replug"),
            fleet.now() + Duration::hours(4),
            || match fleet.update_state(&serial) {
                Some(s) if s["phase"] == "awaiting_replug" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        queue_action(
            a.devices_dir(),
            &SimAction::Replug {
                serial: serial.clone(),
            },
        )
        .unwrap();
    }
    let paused = fleet.wait_until(
        "the rollout paused itself",
        fleet.now() + Duration::hours(4),
        || {
            let s = fleet.rollout_status(&id);
            if s["state"] == "paused" {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    );
    let pause = &paused["pause"];
    assert!(pause["by"].is_null(), "{pause}");
    assert_eq!(pause["wave"], 0);
    assert!(
        pause["failure"]
            .as_str()
            .unwrap()
            .contains("came back with version 1.0.0, not 2.2.0"),
        "{pause}"
    );
    assert!(!pause["failing_devices"].as_array().unwrap().is_empty());

    // Past the rest's start time: it did not begin, no device of it was
    // flashed, and the server's history has no update of them.
    fleet.pass_time_until(rest_at + Duration::hours(2));
    assert_eq!(versions(&agents[2..]), vec![Some(FACTORY_VERSION); 3]);
    for serial in ["SN-desk-1", "SN-desk-2", "SN-desk-3"] {
        let h = fleet.history(serial);
        assert!(
            h.iter()
                .all(|r| r["outcome"] != "started" && r["outcome"] != "succeeded"),
            "{serial}: {h:?}"
        );
    }
    let s = fleet.rollout_status(&id);
    assert_eq!(s["state"], "paused");
    assert!(s["waves"][1]["started_at"].is_null(), "{s}");
    assert_eq!(s["installed"], 0);
    assert_eq!(s["waves"][1]["figures"]["pending"], 3);
}
