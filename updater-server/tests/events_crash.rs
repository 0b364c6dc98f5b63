//! Nothing acknowledged is lost when the server is killed: several agents'
//! worth of threads send event batches, the test SIGKILLs the server after a
//! chosen number of acknowledged batches, restarts it on the same data, and
//! checks every acknowledged event is there exactly once; re-sending every
//! batch (as agents retry) then leaves every event stored exactly once.

mod support;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, enroll, login, start};

const THREADS: usize = 4;
const BATCHES_PER_THREAD: usize = 25;
const EVENTS_PER_BATCH: usize = 20;
/// The server dies right after this many batches were acknowledged.
const KILL_AFTER: usize = 30;

fn batch_ids(thread: usize, batch: usize) -> Vec<String> {
    (0..EVENTS_PER_BATCH)
        .map(|i| format!("t{thread}-b{batch}-e{i}"))
        .collect()
}

fn batch(thread: usize, batch: usize) -> Value {
    let events: Vec<Value> = batch_ids(thread, batch)
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let mut e = json!({"id": id, "at": "2026-03-04T05:06:07Z", "device": format!("047f/serial/T{thread}")});
            if i % 4 == 0 {
                e["kind"] = json!("update_succeeded");
                e["target"] = json!("acme/voyager/2.0/fw.bin");
                e["version"] = json!("2.0");
            } else {
                e["kind"] = json!("device_attached");
            }
            e
        })
        .collect();
    json!({ "events": events })
}

/// Sends one batch; `true` only for a 2xx answer acknowledging its ids.
fn send(http: &Client, url: &str, cred: &str, thread: usize, b: usize) -> bool {
    let Ok(r) = http
        .post(url)
        .bearer_auth(cred)
        .json(&batch(thread, b))
        .send()
    else {
        return false;
    };
    if !r.status().is_success() {
        return false;
    }
    let Ok(ack) = r.json::<Value>() else {
        return false;
    };
    assert_eq!(ack["acknowledged"], json!(batch_ids(thread, b)));
    true
}

/// Every stored event, paged, as `(agent, event id) -> count`, checking the
/// sequence numbers run 1..=n without holes.
fn stored(
    http: &Client,
    base: &str,
    tenant: &str,
    token: &str,
    path: &str,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut since = 0u64;
    let mut expect_seq = 1u64;
    loop {
        let r = http
            .get(format!(
                "{base}/api/v1/tenants/{tenant}/{path}?since={since}&limit=1000"
            ))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let page: Value = r.json().unwrap();
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return counts;
        }
        for item in items {
            let seq = item["seq"].as_u64().unwrap();
            if path == "events" {
                assert_eq!(seq, expect_seq, "sequence numbers have no holes");
                expect_seq += 1;
            }
            let id = item["event"]["id"]
                .as_str()
                .or(item["event_id"].as_str())
                .unwrap();
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
        since = page["next_since"].as_u64().unwrap();
    }
}

#[test]
fn acknowledged_events_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let mut server = start(&data, &[], &[]);
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let agents: Vec<(String, String)> = (0..THREADS)
        .map(|t| {
            enroll(
                &http,
                &server.base,
                &tenant,
                &token,
                &format!("{{SYS-{t}}}"),
            )
        })
        .collect();

    let acked = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let workers: Vec<_> = agents
        .iter()
        .cloned()
        .enumerate()
        .map(|(t, (agent, cred))| {
            let url = format!("{}/api/v1/agents/{agent}/events", server.base);
            let (http, acked, tx) = (http.clone(), Arc::clone(&acked), tx.clone());
            std::thread::spawn(move || {
                for b in 0..BATCHES_PER_THREAD {
                    if send(&http, &url, &cred, t, b) {
                        acked.lock().unwrap().push((t, b));
                        let _ = tx.send(());
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for _ in 0..KILL_AFTER {
        rx.recv().unwrap();
    }
    server.kill();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let total = THREADS * BATCHES_PER_THREAD;
    eprintln!(
        "acknowledged before the kill: {} of {total} batches",
        acked.len()
    );
    assert!(acked.len() >= KILL_AFTER);
    assert!(
        acked.len() < total,
        "the kill came after every batch was acknowledged ({total}); nothing was tested"
    );

    // Restart on the same data: everything acknowledged is there, once.
    let server = start(&data, &[], &[]);
    let base = server.base.as_str();
    let ann = login(&http, base, &tenant, "ann@acme.example");
    let after_crash = stored(&http, base, &tenant, &ann, "events");
    for &(t, b) in &acked {
        for id in batch_ids(t, b) {
            assert_eq!(after_crash.get(&id), Some(&1), "acknowledged event {id}");
        }
    }
    assert!(after_crash.values().all(|&n| n == 1));
    assert!(after_crash.len() >= acked.len() * EVENTS_PER_BATCH);

    // Agents retry everything they hold: every event ends up stored once.
    for (t, (agent, cred)) in agents.iter().enumerate() {
        let url = format!("{base}/api/v1/agents/{agent}/events");
        for b in 0..BATCHES_PER_THREAD {
            let r = http
                .post(&url)
                .bearer_auth(cred)
                .json(&batch(t, b))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            let ack: Value = r.json().unwrap();
            assert_eq!(ack["acknowledged"], json!(batch_ids(t, b)));
            let (accepted, dups) = (
                ack["accepted"].as_u64().unwrap(),
                ack["duplicates"].as_u64().unwrap(),
            );
            assert_eq!(accepted + dups, EVENTS_PER_BATCH as u64);
            if acked.contains(&(t, b)) {
                assert_eq!(
                    accepted, 0,
                    "batch {t}/{b} was acknowledged before the crash"
                );
            }
        }
    }
    let all = stored(&http, base, &tenant, &ann, "events");
    assert_eq!(all.len(), total * EVENTS_PER_BATCH);
    assert!(all.values().all(|&n| n == 1));
    for t in 0..THREADS {
        for b in 0..BATCHES_PER_THREAD {
            for id in batch_ids(t, b) {
                assert_eq!(all.get(&id), Some(&1), "{id}");
            }
        }
    }
    let history = stored(&http, base, &tenant, &ann, "update-history");
    assert_eq!(history.len(), total * EVENTS_PER_BATCH / 4);
    assert!(history.values().all(|&n| n == 1));
    assert!(history.keys().all(|id| id.ends_with("-e0")
        || id.ends_with("-e4")
        || id.ends_with("-e8")
        || id.ends_with("-e12")
        || id.ends_with("-e16")));
}
