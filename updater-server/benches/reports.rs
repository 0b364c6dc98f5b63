//! Fleet reports over a large inventory, on the embedded store or on
//! PostgreSQL: what `GET …/reports/version-status` and `…/compliance` do
//! before rendering (read the tenant's snapshot, build the report).
//!
//! `cargo bench -p updater-server --bench reports [-- DEVICES [ROUNDS]]`
//! (defaults: 1,000,000 devices, 3 rounds). The store is the embedded one
//! unless `UPDATER_STORE` (and `UPDATER_STORE_SCHEMA`, an empty schema)
//! name a PostgreSQL store.
//!
//! Setup (timed, not a goal): DEVICES inventory devices of two models,
//! three per host (DEVICES / 3 hosts), a third of them on the catalog's
//! latest version, every host in a custom group with a policy, All Users
//! with another.
//!
//! Measured, median of ROUNDS: the snapshot read (`Snapshot::load`: every
//! device, host and user decoded), and each report built from it and
//! rendered as JSON and as CSV; a report over the API costs the read, the
//! build and one rendering. Reference: a scan of the same
//! device rows that decodes nothing (the store's own floor). Also the
//! process's peak resident memory (`VmHWM`).
//!
//! Goal: each report (read + build + render) ≤ 1 s for 1,000,000 devices, on either
//! store.

mod common;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use common::{bench_fleet, inventory_device, median, positional};
use updater_server::fleet::inventory::Host;
use updater_server::fleet::{FirmwarePolicyInput, GroupInput};
use updater_server::reports::{self, Format, ReportKind, Snapshot};
use updater_server::store::{Key, Op, PgStore, RedbStore, Store, Table};

/// The two models: (vid, pid).
const MODELS: [(u16, u16); 2] = [(0x047f, 0xc056), (0x0b0e, 0x2480)];

fn main() {
    let pos = positional();
    let arg = |i: usize, default: usize| pos.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let n = arg(0, 1_000_000);
    let rounds = arg(1, 3);
    common::print_machine();
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, which): (Arc<dyn Store>, String) = match std::env::var("UPDATER_STORE") {
        Ok(url) => {
            let schema = std::env::var("UPDATER_STORE_SCHEMA").ok();
            let store = PgStore::open(&url, schema.as_deref(), 4).expect("PostgreSQL store");
            (Arc::new(store), "PostgreSQL".into())
        }
        Err(_) => {
            let store = RedbStore::open(&dir.path().join("server.redb")).expect("store");
            (Arc::new(store), "the embedded store".into())
        }
    };
    println!("{n} devices, {rounds} rounds (median), on {which}");

    let (fleet, tenant) = bench_fleet(
        dir.path(),
        store.clone(),
        &[
            (MODELS[0].0, MODELS[0].1, "Model 0"),
            (MODELS[1].0, MODELS[1].1, "Model 1"),
        ],
    );
    let group: GroupInput = serde_json::from_value(serde_json::json!({
        "name": "Desks", "membership": {"kind": "manual", "members": ["user-0"]}
    }))
    .expect("group");
    let group = fleet.create_group(&tenant, &group).expect("group").id;
    for (model, group) in [(MODELS[0], Some(group.clone())), (MODELS[1], None)] {
        let policy: FirmwarePolicyInput = serde_json::from_value(serde_json::json!({
            "name": format!("{:04x}", model.1), "model": format!("{:04X}:{:04X}", model.0, model.1),
            "group": group, "version": "latest", "deployment": "optional"
        }))
        .expect("policy");
        fleet
            .put_firmware_policy(&tenant, None, policy)
            .expect("policy");
    }

    let t = Instant::now();
    let now = Utc::now();
    let hosts = n.div_ceil(3);
    for chunk in (0..n).collect::<Vec<_>>().chunks(50_000) {
        let ops = chunk
            .iter()
            .map(|&i| {
                let (vid, pid) = MODELS[i % 2];
                let version = if i % 3 == 0 { "2.0" } else { "1.0" };
                let d =
                    inventory_device(&tenant, i, vid, pid, version, &format!("h{}", i / 3), now);
                Op::Insert(
                    Table::InventoryDevices,
                    Key::new(&tenant, &d.id),
                    serde_json::to_value(&d).expect("device JSON"),
                )
            })
            .collect();
        store.commit(ops).expect("devices");
    }
    for chunk in (0..hosts).collect::<Vec<_>>().chunks(50_000) {
        let ops = chunk
            .iter()
            .map(|&h| {
                let id = format!("h{h}");
                let host = Host {
                    tenant: tenant.clone(),
                    id: id.clone(),
                    hostname: format!("desk-{h}"),
                    platform: "linux".into(),
                    agent_version: "0.1.0".into(),
                    suspected_clone_of: None,
                    first_seen: now,
                    last_seen: now,
                    users: Default::default(),
                    devices: (3 * h..(3 * h + 3).min(n))
                        .map(|i| format!("{i:016x}"))
                        .collect(),
                    group: if h % 2 == 0 {
                        group.clone()
                    } else {
                        "all-users".into()
                    },
                    skipped: Vec::new(),
                    update_states: Vec::new(),
                };
                Op::Insert(
                    Table::InventoryHosts,
                    Key::new(&tenant, &id),
                    serde_json::to_value(&host).expect("host JSON"),
                )
            })
            .collect();
        store.commit(ops).expect("hosts");
    }
    println!(
        "setup: {n} devices and {hosts} hosts written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut load = Vec::new();
    let mut floor = Vec::new();
    // Per report: build, render as JSON, render as CSV.
    type Times = (Vec<f64>, Vec<f64>, Vec<f64>);
    let mut built: Vec<(ReportKind, Times)> = [ReportKind::Versions, ReportKind::Compliance]
        .into_iter()
        .map(|k| (k, Default::default()))
        .collect();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut rows = 0usize;
        store
            .scan_prefix(Table::InventoryDevices, &tenant, "", &mut |_, _| {
                rows += 1;
                Ok(())
            })
            .expect("scan");
        floor.push(t.elapsed().as_secs_f64());
        assert_eq!(rows, n, "every device scanned");

        let t = Instant::now();
        let snapshot =
            Snapshot::load(store.as_ref(), &fleet, &tenant, Utc::now()).expect("snapshot");
        load.push(t.elapsed().as_secs_f64());
        assert_eq!(snapshot.devices.len(), n);
        for (kind, (build, json, csv)) in &mut built {
            let t = Instant::now();
            let report = reports::build(*kind, &snapshot).expect("a fleet report");
            build.push(t.elapsed().as_secs_f64());
            for (format, times) in [(Format::Json, &mut *json), (Format::Csv, &mut *csv)] {
                let t = Instant::now();
                let bytes = report.render(format).expect("rendered");
                times.push(t.elapsed().as_secs_f64());
                std::hint::black_box(&bytes);
            }
        }
    }
    let (l, f) = (median(load), median(floor));
    println!(
        "read    {l:>7.3} s   reference (scan, no decoding) {f:>7.3} s   ratio {:.2}",
        l / f
    );
    let goal = |v: f64| if v <= 1.0 { "met" } else { "MISSED" };
    for (kind, (build, json, csv)) in built {
        let (b, j, c) = (median(build), median(json), median(csv));
        println!(
            "{:<11} build {b:>6.3} s, render JSON {j:>6.3} s / CSV {c:>6.3} s   read + build + render {:>6.3} s / {:>6.3} s   goal ≤ 1 s: {}",
            kind.as_str(),
            l + b + j,
            l + b + c,
            goal(l + b + j.max(c))
        );
    }
    println!(
        "peak resident memory: {} MiB",
        common::resident_mib(std::process::id()).1
    );
}
