//! Several `serve` processes on one store (the embedded file, or with
//! `UPDATER_TEST_STORE=postgres` one PostgreSQL schema): any node answers any
//! agent or admin, and a node killed mid-stream loses nothing.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, enroll, login, start};

const AGENTS: usize = 6;
const BATCHES: usize = 8;
const EVENTS_PER_BATCH: usize = 5;

fn check_in_body() -> Value {
    json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-1",
        "users": [{"account": "ann"}],
        "devices": [{"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x0100,
            "serial": "S1", "port_path": "1-4", "firmware_version": "0.9",
            "dfu": "runtime", "telephony": true, "in_call": false}]})
}

fn poll_interval(http: &Client, base: &str, agent: &str, credential: &str) -> u64 {
    let r = http
        .post(format!("{base}/api/v1/agents/{agent}/checkin"))
        .bearer_auth(credential)
        .json(&check_in_body())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().unwrap();
    answer["poll_interval_secs"].as_u64().unwrap()
}

fn batch(agent: usize, n: usize) -> Value {
    let events: Vec<Value> = (0..EVENTS_PER_BATCH)
        .map(|i| {
            json!({"id": format!("a{agent}-b{n}-e{i}"), "at": "2026-01-02T03:04:05Z",
                   "kind": "agent_started"})
        })
        .collect();
    json!({ "events": events })
}

#[test]
fn nodes_share_sessions_answers_and_events_and_outlive_a_killed_node() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let image: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let fw = dir.path().join("fw.bin");
    std::fs::write(&fw, &image).unwrap();
    support::import_voyager(&data, &fw);
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let mut nodes: Vec<_> = (0..3).map(|_| start(&data, &[], &[])).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let http = Client::new();

    // The nodes serve one catalog from the shared data directory: the same
    // signed timestamp and the same image from each.
    let sha = support::cli_json(&data, &["catalog", "show", "acme/voyager", "--json"])["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let fetch = |base: &str, path: &str| {
        let r = http.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(r.status(), 200, "{base}{path}");
        r.bytes().unwrap().to_vec()
    };
    let timestamp = fetch(&bases[0], "/repo/metadata/timestamp.json");
    for base in &bases {
        assert_eq!(fetch(base, "/repo/metadata/timestamp.json"), timestamp);
        let target = format!("/repo/targets/acme/voyager/2.0/{sha}.fw.bin");
        assert_eq!(fetch(base, &target), image);
    }

    // A session opened on one node works on every node.
    let session = login(&http, &bases[0], &tenant, "ann@acme.example");
    for base in &bases {
        let r = http
            .get(format!("{base}/api/v1/tenants/{tenant}"))
            .bearer_auth(&session)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{base}");
    }

    // Agents enroll through different nodes; a setting changed through one
    // node is in the next answer of another (no node answers from a stale
    // cache).
    let agents: Vec<(String, String)> = (0..AGENTS)
        .map(|n| {
            enroll(
                &http,
                &bases[n % 3],
                &tenant,
                &token,
                &format!("{{SYS-{n}}}"),
            )
        })
        .collect();
    let (agent, credential) = &agents[0];
    let before = poll_interval(&http, &bases[1], agent, credential);
    assert_eq!(poll_interval(&http, &bases[1], agent, credential), before);
    let new_interval = before + 600;
    let r = http
        .put(format!("{}/api/v1/tenants/{tenant}/settings", bases[0]))
        .bearer_auth(&session)
        .json(&json!({ "all_users_poll_interval_secs": new_interval }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    assert_eq!(
        poll_interval(&http, &bases[1], agent, credential),
        new_interval
    );
    assert_eq!(
        poll_interval(&http, &bases[2], agent, credential),
        new_interval
    );

    // Every agent sends its batches round the nodes, each batch to the
    // next node too (a retry through another node), while node 2 is
    // SIGKILLed mid-stream. An agent whose node is gone tries the next one.
    let acknowledged = AtomicUsize::new(0);
    let dead = Mutex::new(BTreeSet::new());
    let (halfway, reached) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        for (a, (agent, credential)) in agents.iter().enumerate() {
            let (http, bases, acknowledged, dead) = (&http, &bases, &acknowledged, &dead);
            let halfway = halfway.clone();
            s.spawn(move || {
                for n in 0..BATCHES {
                    let body = batch(a, n);
                    let mut sent = 0;
                    let mut node = a + n;
                    while sent < 2 {
                        let base = &bases[node % 3];
                        node += 1;
                        if dead.lock().unwrap().contains(base) {
                            continue;
                        }
                        let r = http
                            .post(format!("{base}/api/v1/agents/{agent}/events"))
                            .bearer_auth(credential)
                            .json(&body)
                            .send();
                        match r {
                            Ok(r) => {
                                assert_eq!(r.status(), 200, "{}", r.text().unwrap());
                                let ack: Value = r.json().unwrap();
                                assert_eq!(
                                    ack["acknowledged"].as_array().map(Vec::len),
                                    Some(EVENTS_PER_BATCH),
                                    "{ack}"
                                );
                                sent += 1;
                            }
                            // The node died under this request: as a load
                            // balancer would, send it to the next node.
                            Err(_) => assert!(dead.lock().unwrap().contains(base)),
                        }
                    }
                    if acknowledged.fetch_add(1, Ordering::SeqCst) == AGENTS * BATCHES / 3 {
                        let _ = halfway.send(());
                    }
                }
            });
        }
        drop(halfway);
        reached.recv().unwrap();
        dead.lock().unwrap().insert(bases[2].clone());
        nodes[2].kill();
    });

    // Every event is stored once, numbered 1..N without a gap, and readable
    // through a surviving node.
    let mut items = Vec::new();
    let mut since = 0;
    loop {
        let page: Value = http
            .get(format!(
                "{}/api/v1/tenants/{tenant}/events?since={since}&limit=1000",
                bases[1]
            ))
            .bearer_auth(&session)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let got = page["items"].as_array().unwrap().clone();
        if got.is_empty() {
            break;
        }
        since = page["next_since"].as_u64().unwrap();
        items.extend(got);
    }
    let total = AGENTS * BATCHES * EVENTS_PER_BATCH;
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
    let stored: BTreeSet<(String, String)> = items
        .iter()
        .map(|e| {
            (
                e["agent"].as_str().unwrap().to_owned(),
                e["event"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let sent: BTreeSet<(String, String)> = agents
        .iter()
        .enumerate()
        .flat_map(|(a, (agent, _))| {
            (0..BATCHES).flat_map(move |n| {
                (0..EVENTS_PER_BATCH).map(move |i| (agent.clone(), format!("a{a}-b{n}-e{i}")))
            })
        })
        .collect();
    assert_eq!(stored, sent);

    // Signing out on one node ends the session on the others.
    let r = http
        .post(format!("{}/api/v1/logout", bases[1]))
        .bearer_auth(&session)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = http
        .get(format!("{}/api/v1/tenants/{tenant}", bases[0]))
        .bearer_auth(&session)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}
