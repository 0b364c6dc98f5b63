//! Fleet convergence: N simulated agents (default 10,000) against one server
//! in one silent maintenance window. Reports the share of devices updated
//! inside the window (goal 100 %) and the server's p50 / p99 check-in
//! latency (goal p99 < 50 ms).
//!
//! `cargo bench -p fleet-sim --bench convergence -- [AGENTS] [THREADS]`
//! Needs one file descriptor per agent and a few more: `ulimit -n 65536`.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use fleet_sim::firmware::{hardware_id, models, NEW_VERSION};
use fleet_sim::fleet::Fleet;
use fleet_sim::host::HostSpec;
use fleet_sim::world::World;
use serde_json::json;
use update_agent::daemon::Timings;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let agents: usize = args.first().map_or(Ok(10_000), |a| a.parse())?;
    let threads: usize = args.get(1).map_or(Ok(2), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let start: DateTime<Utc> = "2027-06-01T18:00:00Z".parse()?;
    let world_started = Instant::now();
    let mut world = World::start(dir.path(), start)?;
    world.import(NEW_VERSION)?;
    let tenant = world.create_tenant("Convergence")?;
    // One model for everyone, so every agent competes for the same window.
    let model = models()
        .into_iter()
        .find(|m| m.profile == "headset_tolerant")
        .ok_or_else(|| anyhow::anyhow!("model"))?;
    let window_start: DateTime<Utc> = "2027-06-02T01:00:00Z".parse()?;
    let window_end = window_start + Duration::hours(4);
    world.admin(&tenant)?.post(
        "policies/firmware",
        &json!({"name": "everyone", "model": hardware_id(&model).to_string(), "version": "latest",
                "deployment": "silent", "enabled": true,
                "window": {"cron": "0 1 * * *", "duration_minutes": 240, "tz": "UTC"}}),
    )?;
    let specs: Vec<HostSpec> = (0..agents)
        .map(|i| HostSpec {
            name: format!("h{i:05}"),
            user: format!("u{i:05}"),
            models: vec![model.clone()],
        })
        .collect();
    let timings = Timings {
        poll_interval: Duration::hours(6),
        scan_interval: Duration::hours(1),
    };
    let enrolled = Instant::now();
    let hosts = world.enroll(&tenant, &specs, timings, 0, &mut || {})?;
    eprintln!(
        "enrolled {agents} agents in {:.1} s",
        enrolled.elapsed().as_secs_f64()
    );
    let mut fleet = Fleet::new(hosts, world.clock().clone(), threads);
    let simulated = Instant::now();
    // Until the window closes; whatever is not installed by then missed it.
    fleet.run_until(window_end, &mut |_, _| world.refresh_timestamp())?;
    let wall = simulated.elapsed().as_secs_f64();
    let inside = fleet
        .hosts()
        .iter()
        .flat_map(|h| h.versions())
        .filter(|(_, v)| *v == Some(NEW_VERSION))
        .count();
    let latencies = world.check_in_latencies()?;
    let p50 = latencies.quantile_ms(0.5).unwrap_or(f64::NAN);
    let p99 = latencies.quantile_ms(0.99).unwrap_or(f64::NAN);
    println!("agents                         {agents}");
    println!(
        "updated inside the window      {inside} / {agents} = {:.2} % (goal 100 %)",
        100.0 * inside as f64 / agents as f64
    );
    println!("check-ins answered             {}", latencies.count());
    println!("server check-in latency        p50 {p50:.2} ms, p99 {p99:.2} ms (goal p99 < 50 ms)");
    println!(
        "simulated 18:00 -> window end  {wall:.1} s wall ({:.1} s in all)",
        world_started.elapsed().as_secs_f64()
    );
    Ok(())
}
