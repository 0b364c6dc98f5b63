//! Staged rollouts at fleet scale on the embedded store: the status of a
//! rollout over N devices, and choosing the waves of N devices.
//!
//! `cargo bench -p updater-server --bench rollouts [-- DEVICES [ROUNDS]]`
//! (defaults: 1,000,000 devices, 5 rounds).
//!
//! Setup (timed, not a goal): N inventory devices of one model in a fresh
//! redb store, then a rollout of three waves (5 %, 25 %, the rest) created
//! over them — the server reads the inventory, chooses every device's wave
//! and writes one member row each.
//!
//! Measured, median of ROUNDS:
//! - `status`: the per-wave figures and the status report, read from the
//!   member rows (what `GET …/rollouts/{id}/status` and the evaluation job
//!   do). Reference: a scan of the same rows that decodes nothing (redb's
//!   own floor for reading them).
//! - `waves`: the wave of each of the N devices (stable hash and wave
//!   ranges), as rollout creation and check-ins compute it. Reference:
//!   SHA-256 of the same N ids alone.
//!
//! Goal (issue 14): status and wave assignment for 1,000,000 devices in
//! ≤ 1 s each.

mod common;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use common::{bench_fleet, inventory_device, median, positional};
use updater_server::fleet::rollouts::waves::{bucket, initial_wave};
use updater_server::fleet::rollouts::{report, RolloutInput};
use updater_server::store::{Key, Op, RedbStore, Store, Table};

fn main() {
    let pos = positional();
    let arg = |i: usize, default: usize| pos.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let n = arg(0, 1_000_000);
    let rounds = arg(1, 5);
    common::print_machine();
    println!("{n} devices, {rounds} rounds (median)");

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RedbStore::open(&dir.path().join("server.redb")).expect("store"));
    let (fleet, tenant) = bench_fleet(dir.path(), store.clone(), &[(0x047f, 0xc056, "Voyager")]);

    let t = Instant::now();
    let now = Utc::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100_000) {
        let ops = chunk
            .iter()
            .map(|&i| {
                let version = if i % 3 == 0 { "2.0" } else { "1.0" };
                let host = format!("h{}", i / 2);
                let d = inventory_device(&tenant, i, 0x047f, 0xc056, version, &host, now);
                Op::Insert(
                    Table::InventoryDevices,
                    Key::new(&tenant, &d.id),
                    serde_json::to_value(&d).expect("device JSON"),
                )
            })
            .collect();
        store.commit(ops).expect("inventory");
    }
    println!(
        "setup: {n} inventory devices written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let spec: RolloutInput = serde_json::from_str(
        r#"{"name":"bench","model":"047F:C056","version":"2.0","deployment":"persistent",
            "waves":[{"percent":5},{"percent":25,"start":"approval"},{"rest":true}]}"#,
    )
    .expect("spec");
    let t = Instant::now();
    let r = fleet
        .create_rollout(&tenant, spec.clone(), "bench")
        .expect("rollout");
    println!(
        "setup: rollout created over them (inventory read, waves chosen, member rows written) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut status = Vec::new();
    let mut floor = Vec::new();
    let mut waves = Vec::new();
    let mut hashing = Vec::new();
    let ids: Vec<String> = (0..n).map(|i| format!("{i:016x}")).collect();
    let mut check = (0u64, 0u64);
    for _ in 0..rounds {
        let t = Instant::now();
        let figures = fleet.rollout_figures(&r).expect("figures");
        let built = report::build(&r, &figures);
        status.push(t.elapsed().as_secs_f64());
        check.0 = built.devices;

        let t = Instant::now();
        let mut rows = 0u64;
        store
            .scan_prefix(
                Table::RolloutMembers,
                &tenant,
                &format!("{}/", r.id),
                &mut |_, _| {
                    rows += 1;
                    Ok(())
                },
            )
            .expect("scan");
        floor.push(t.elapsed().as_secs_f64());
        check.1 = rows;

        let t = Instant::now();
        let mut per_wave = [0u64; 3];
        for id in &ids {
            if let Some(w) = initial_wave(&spec.waves, "all-users", bucket(&r.id, id)) {
                per_wave[w] += 1;
            }
        }
        waves.push(t.elapsed().as_secs_f64());
        assert_eq!(per_wave.iter().sum::<u64>(), n as u64);

        let t = Instant::now();
        let mut x = 0u8;
        for id in &ids {
            x ^= catalog::digest::Sha256Digest::of(id.as_bytes()).as_bytes()[0];
        }
        hashing.push(t.elapsed().as_secs_f64());
        std::hint::black_box(x);
    }
    assert_eq!(check, (n as u64, n as u64), "every device counted");
    let (s, f, w, h) = (
        median(status),
        median(floor),
        median(waves),
        median(hashing),
    );
    println!(
        "status  {s:>7.3} s   reference (scan, no decoding) {f:>7.3} s   ratio {:.2}",
        s / f
    );
    println!(
        "waves   {w:>7.3} s   reference (SHA-256 of the ids)  {h:>7.3} s   ratio {:.2}",
        w / h
    );
    let goal = |v: f64| if v <= 1.0 { "met" } else { "MISSED" };
    println!(
        "goal: each ≤ 1 s for 1,000,000 devices — status {}, waves {}{}",
        goal(s),
        goal(w),
        if n == 1_000_000 {
            ""
        } else {
            " (scale the device count to 1,000,000 to compare)"
        }
    );
}
