//! Many server nodes on the real binaries: three `updater-server` processes
//! on one PostgreSQL database and one data directory, behind nginx (as
//! docs/scale.md deploys them), and `update-agent run` processes with
//! simulated devices on one accelerated clock. One node is SIGKILLed in the
//! middle of a staged rollout; the agents carry on through the others.
//!
//! Needs the test database (`scripts/test-suite --install` creates it) and
//! nginx (`apt-get install -y nginx`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use fleet_sim::firmware::NEW_VERSION;
use serde_json::{json, Value};
use tests::sim_fleet::{at, SimFleet};

/// Simulated seconds per real second: an hour takes 4 s.
const SPEED: u32 = 900;

const NODES: usize = 3;

/// The node killed mid-rollout.
const KILLED: usize = 1;

#[test]
fn three_nodes_one_killed_mid_rollout_update_every_device_once_and_store_every_event_once() {
    tests::use_postgres_store();
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = SimFleet::start_nodes(
        dir.path(),
        at("2026-05-04T08:00:00Z"),
        SPEED,
        &[NEW_VERSION],
        NODES,
    );
    // Every node serves the one tenant (records in the shared database).
    for node in 0..NODES {
        let url = format!("{}/healthz", fleet.node_base(node));
        let status = reqwest::blocking::get(&url).map(|r| r.status().as_u16());
        assert_eq!(status.ok(), Some(200), "{url}");
    }
    fleet.admin().post(
        "groups",
        &json!({"name": "Pilot", "poll_interval_secs": 3600,
                "membership": {"kind": "manual", "members": ["user-pilot-0", "user-pilot-1"]}}),
    );
    let names: Vec<String> = (0..2)
        .map(|i| format!("pilot-{i}"))
        .chain((0..7).map(|i| format!("desk-{i}")))
        .collect();
    let mut agents = fleet.start_desks(&names, "headset_tolerant");
    fleet.wait_for_inventory(names.len());
    let model = fleet_sim::firmware::hardware_id(&tests::sim_fleet::model("headset_tolerant"));
    let r = fleet.admin().post(
        "rollouts",
        &json!({"name": "three nodes", "model": model.to_string(), "version": "latest",
                "deployment": "silent",
                "window": {"cron": "0 * * * *", "duration_minutes": 60, "tz": "UTC"},
                "waves": [{"group": "Pilot"}, {"percent": 50}, {"rest": true}]}),
    );
    let id = r["id"].as_str().unwrap().to_owned();

    // Mid-rollout: the pilots are done and the next wave has begun.
    fleet.wait_until(
        "the second wave began",
        fleet.now() + Duration::hours(6),
        || {
            let s = fleet.rollout_status(&id);
            match s["waves"][1]["started_at"].as_str() {
                Some(_) => Ok(()),
                None => Err(s.to_string()),
            }
        },
    );
    fleet.kill_node(KILLED);
    let killed_at = fleet.now();

    fleet.wait_until(
        "the rollout completed",
        killed_at + Duration::hours(8),
        || {
            let s = fleet.rollout_status(&id);
            if s["state"] == "completed" {
                Ok(())
            } else {
                Err(s.to_string())
            }
        },
    );
    // The balancer sent requests to the dead node and passed them on.
    let log = fleet.balancer().expect("a balancer").log();
    assert!(
        log.contains("Connection refused"),
        "no request met the killed node: {log}"
    );

    // Every device updated, once.
    for a in &agents {
        let versions = a.versions();
        assert!(
            versions.values().all(|v| *v == Some(NEW_VERSION)),
            "{}: {versions:?}",
            a.root().display()
        );
    }
    let installs = fleet.wait_for_installs(names.len(), killed_at + Duration::hours(10));
    for (device, times) in &installs {
        assert_eq!(times.len(), 1, "{device} installed {times:?}");
    }

    // The events on the server are exactly the events the agents sent.
    for a in &mut agents {
        a.stop();
    }
    let stored: Vec<Value> = fleet.admin().all("events");
    let mut by_agent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &stored {
        by_agent
            .entry(e["agent"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["event"]["id"].as_str().unwrap().to_owned());
    }
    let ids: BTreeSet<&String> = by_agent.values().flatten().collect();
    assert_eq!(ids.len(), stored.len(), "an event was stored twice");
    let succeeded = stored
        .iter()
        .filter(|e| e["event"]["kind"] == "update_succeeded")
        .count();
    assert_eq!(succeeded, names.len());
    for a in &agents {
        let status = a.status();
        assert_eq!(status["pending_events"], 0, "{}", a.root().display());
        let agent_id = status["enrollment"]["agent_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let sent: BTreeSet<String> = a.acknowledged_events().into_iter().collect();
        let on_server: BTreeSet<String> = by_agent
            .remove(&agent_id)
            .unwrap_or_default()
            .into_iter()
            .collect();
        assert!(!sent.is_empty(), "{agent_id} sent nothing");
        assert_eq!(on_server, sent, "{agent_id}");
    }
    assert!(
        by_agent.is_empty(),
        "events of unknown agents: {by_agent:?}"
    );
}
