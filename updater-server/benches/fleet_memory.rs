//! The server's memory with a large fleet enrolled and checked in.
//!
//! `cargo bench -p updater-server --bench fleet_memory [-- AGENTS [CONNECTIONS]]`
//! (defaults: 1,000,000 agents, 16 connections). The store is the embedded
//! one unless `UPDATER_STORE` (and `UPDATER_STORE_SCHEMA`, an empty schema)
//! name a PostgreSQL store.
//!
//! The world of the check-in benchmark (`common::checkin_world`: the real
//! server, three releases, a tenant with a group and three policies); then
//! AGENTS agents enroll over HTTP and check in once each with three devices
//! (3 × AGENTS inventory devices), CONNECTIONS requests in flight. Printed
//! as it goes and at the end: the server process's resident memory
//! (`VmRSS`) and its peak (`VmHWM`), and the requests per second.
//!
//! Goal: ≤ 2 GiB resident with 1,000,000 agents and 3,000,000 devices.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::{positional, resident_mib};
use serde_json::Value;

fn main() {
    let pos = positional();
    let arg = |i: usize, default: usize| pos.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let agents = arg(0, 1_000_000);
    let conns = arg(1, 16);
    common::print_machine();
    println!("{agents} agents × 3 devices, {conns} connections");

    let dir = tempfile::tempdir().expect("temp dir");
    let world = common::checkin_world(dir.path(), agents);
    let pid = world.server.pid();
    let (rss, _) = resident_mib(pid);
    println!("server started: {rss} MiB resident");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let world = Arc::new(world);
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (next, done, world) = (next.clone(), done.clone(), world.clone());
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let base = &world.server.base;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= agents {
                        return;
                    }
                    let e: Value = client
                        .post(format!("{base}/api/v1/enroll"))
                        .json(&common::enrollment(
                            &world.tenant,
                            &world.enrollment_token,
                            i,
                        ))
                        .send()
                        .await
                        .and_then(|r| r.error_for_status())
                        .expect("enroll")
                        .json()
                        .await
                        .expect("enrollment answer");
                    let id = e["id"].as_str().expect("agent id");
                    let credential = e["credential"].as_str().expect("credential");
                    let status = client
                        .post(format!("{base}/api/v1/agents/{id}/checkin"))
                        .bearer_auth(credential)
                        .header("content-type", "application/json")
                        .body(common::report(i, 75))
                        .send()
                        .await
                        .expect("check-in")
                        .status();
                    assert_eq!(status.as_u16(), 200, "check-in of agent {i}");
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % 100_000 == 0 {
                        let (rss, peak) = resident_mib(world.server.pid());
                        println!(
                            "{n:>9} agents: {rss} MiB resident (peak {peak} MiB), {:.0} agents/s",
                            n as f64 / start.elapsed().as_secs_f64()
                        );
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("load task");
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let (rss, peak) = resident_mib(pid);
    println!(
        "{agents} agents enrolled and checked in ({} devices) in {secs:.0} s ({:.0} agents/s)",
        3 * agents,
        agents as f64 / secs
    );
    let goal = if peak <= 2048 { "met" } else { "MISSED" };
    println!("server resident memory: {rss} MiB now, {peak} MiB peak; goal ≤ 2048 MiB: {goal}");
}
