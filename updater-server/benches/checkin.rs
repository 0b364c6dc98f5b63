//! Agent check-ins per second against a bare hyper server answering a
//! constant of the same size, same machine, same run.
//!
//! `cargo bench -p updater-server --bench checkin [-- AGENTS [CONNECTIONS [SECONDS [ROUNDS [NODES]]]]]`
//! (defaults: 200 agents, 8 connections, 2 s per phase, 3 rounds, 1 node;
//! `CHECKIN_PHASES=poll` runs only the named phases, comma-separated).
//!
//! The store is the embedded one unless `UPDATER_STORE` (and
//! `UPDATER_STORE_SCHEMA`, an empty schema) name a PostgreSQL store; with
//! NODES > 1, that many `serve` processes share the store and the data
//! directory, and the connections are spread over them.
//!
//! The real server (the release binary) gets a catalog with
//! three releases of two models, a tenant with a custom group and three
//! firmware policies (one silent with a maintenance window), and AGENTS
//! enrolled agents, each reporting three devices. The load generator keeps
//! CONNECTIONS keep-alive connections busy, each cycling through its share
//! of the agents, in two phases:
//!
//! - `full`: check-ins without `If-None-Match`; each answer is the agent's
//!   signed assignment document (200).
//! - `304`: the same check-ins with the `ETag` of the agent's last answer, as
//!   an agent that already holds it sends them (304, no body).
//! - `poll`: every request a report that differs from the agent's last one
//!   (a battery level moves), as a scheduled poll brings: the full path with
//!   the durable inventory write before the answer (200).
//!
//! The reference is a bare hyper server (this binary started again with
//! `--bare-hyper SIZE`) that reads the request body and answers a constant
//! of SIZE bytes (the size of a real answer), or 304 when the request has
//! `If-None-Match`. Phases alternate between the two servers; the result is
//! the median of ROUNDS phases each. Goal: ratio >= 0.5.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog::assignment::verify_assignments;
use catalog::tuf::PublicKey;
use common::{median, percentile, positional, start_updater, Server};
use serde_json::Value;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare-hyper") {
        let size = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .expect("--bare-hyper SIZE");
        bare::run(size);
        return;
    }
    let pos = positional();
    let arg = |i: usize, default: u64| pos.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let agents = arg(0, 200) as usize;
    let conns = arg(1, 8) as usize;
    let secs = arg(2, 2);
    let rounds = arg(3, 3) as usize;
    let node_count = arg(4, 1).max(1) as usize;
    common::print_machine();
    let store = match std::env::var("UPDATER_STORE") {
        Ok(_) => "PostgreSQL (UPDATER_STORE)",
        Err(_) => "embedded",
    };
    println!(
        "{agents} agents, {conns} connections, {secs} s per phase, {rounds} rounds (median), \
         {node_count} node(s) on the {store} store"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = setup(dir.path(), agents);
    let more_nodes: Vec<Server> = (1..node_count)
        .map(|_| start_updater(&dir.path().join("data")))
        .collect();
    let nodes: Vec<&Server> = std::iter::once(&fleet.server).chain(&more_nodes).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let body_len = fleet.checkins[0].2.len();
    let answer_len = fleet.answer_len;
    println!("check-in request {body_len} bytes, signed answer {answer_len} bytes");
    let bare = Server::spawn({
        let mut c = Command::new(std::env::current_exe().expect("own path"));
        c.args(["--bare-hyper", &answer_len.to_string()]);
        c
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let duration = Duration::from_secs(secs);
    let mut results: Vec<(&str, &str, Vec<Stats>)> = Vec::new();
    // CHECKIN_PHASES=poll (or a comma-separated list) runs only those
    // phases, e.g. to profile one.
    let wanted = std::env::var("CHECKIN_PHASES").unwrap_or_default();
    let phases: Vec<(&str, Phase)> = [
        ("full (200)", Phase::Full, "full"),
        ("cached (304)", Phase::Cached, "cached"),
        ("poll (200)", Phase::Poll, "poll"),
    ]
    .into_iter()
    .filter(|(_, _, name)| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == *name))
    .map(|(mode, phase, _)| (mode, phase))
    .collect();
    for &(mode, phase) in &phases {
        let mut ours = Vec::new();
        let mut reference = Vec::new();
        for _ in 0..rounds {
            ours.push(measure(&nodes, || {
                rt.block_on(load(&bases, &fleet, phase, conns, duration))
            }));
            // The reference answers the poll like any full check-in.
            let bare_phase = if phase == Phase::Cached {
                phase
            } else {
                Phase::Full
            };
            reference.push(measure(&[&bare], || {
                rt.block_on(load(
                    std::slice::from_ref(&bare.base),
                    &fleet,
                    bare_phase,
                    conns,
                    duration,
                ))
            }));
        }
        results.push((mode, "updater-server", ours));
        results.push((mode, "bare hyper", reference));
    }

    println!();
    println!(
        "{:<13} {:<15} {:>10} {:>9} {:>9} {:>12}",
        "phase", "server", "req/s", "p50 ms", "p99 ms", "CPU us/req"
    );
    let mut rates = Vec::new();
    let mut cpus = Vec::new();
    for (mode, server, stats) in &results {
        let rate = median(stats.iter().map(|s| s.rate).collect());
        let p50 = median(stats.iter().map(|s| s.p50).collect());
        let p99 = median(stats.iter().map(|s| s.p99).collect());
        let cpu = median(stats.iter().map(|s| s.cpu_us).collect());
        println!("{mode:<13} {server:<15} {rate:>10.0} {p50:>9.2} {p99:>9.2} {cpu:>12.1}");
        rates.push(rate);
        cpus.push(cpu);
    }
    println!();
    for (i, (mode, _)) in phases.iter().enumerate() {
        let goal = if *mode == "poll (200)" { 0.25 } else { 0.5 };
        println!(
            "ratio {mode:<13} {:.2} (goal >= {goal}); server CPU per request, bare / ours: {:.2}",
            rates[2 * i] / rates[2 * i + 1],
            cpus[2 * i + 1] / cpus[2 * i],
        );
    }
    if store != "embedded" {
        println!("(the server's CPU excludes PostgreSQL's own)");
    }
}

/// What the requests of a phase are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The agent's last report again, without `If-None-Match`.
    Full,
    /// The agent's last report again, with its answer's `ETag`.
    Cached,
    /// A report that differs from the agent's last one.
    Poll,
}

/// One phase's throughput, latency (milliseconds) and the server's CPU
/// time per request (microseconds).
#[derive(Debug, Clone, Copy)]
struct Stats {
    rate: f64,
    p50: f64,
    p99: f64,
    cpu_us: f64,
}

/// Runs a phase and adds the servers' CPU time per request.
fn measure(servers: &[&Server], phase: impl FnOnce() -> (Stats, usize)) -> Stats {
    let cpu = || servers.iter().map(|s| s.cpu_secs()).sum::<f64>();
    let before = cpu();
    let (mut stats, requests) = phase();
    stats.cpu_us = (cpu() - before) * 1e6 / requests.max(1) as f64;
    stats
}

/// One agent's check-in URL, credential, body, the `ETag` of its current
/// answer, and a second body that differs from the first (the poll phase
/// alternates them).
type AgentRequest = (String, String, Vec<u8>, String, Vec<u8>);

/// The server and its agents' check-ins.
struct Fleet {
    server: Server,
    checkins: Vec<AgentRequest>,
    answer_len: usize,
}

fn setup(dir: &std::path::Path, agents: usize) -> Fleet {
    let world = common::checkin_world(dir, agents);
    let (server, tenant, token) = (world.server, world.tenant, world.enrollment_token);
    let base = server.base.clone();
    let http = reqwest::blocking::Client::new();
    let mut checkins = Vec::with_capacity(agents);
    let mut answer_len = 0;
    for i in 0..agents {
        let e: Value = http
            .post(format!("{base}/api/v1/enroll"))
            .json(&common::enrollment(&tenant, &token, i))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .expect("enroll");
        let id = e["id"].as_str().expect("agent id").to_owned();
        let credential = e["credential"].as_str().expect("credential").to_owned();
        let (body, moved) = (common::report(i, 75), common::report(i, 74));
        let url = format!("{base}/api/v1/agents/{id}/checkin");
        let r = http
            .post(&url)
            .bearer_auth(&credential)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .and_then(|r| r.error_for_status())
            .expect("first check-in");
        let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
        let answer = r.bytes().expect("answer");
        if i == 0 {
            // The answer really is a signed assignment document for this agent.
            let key: PublicKey =
                serde_json::from_value(e["assignment_key"]["key"].clone()).expect("key");
            let v: Value = serde_json::from_slice(&answer).expect("answer JSON");
            let doc = serde_json::to_vec(&v["assignments"]).expect("JSON");
            let set = verify_assignments(&doc, &key, &id, 0, chrono::Utc::now())
                .expect("a valid signed assignment document");
            assert_eq!(set.assignments.len(), 2, "two Acme devices assigned");
            answer_len = answer.len();
        }
        checkins.push((url, credential, body, etag, moved));
    }
    Fleet {
        server,
        checkins,
        answer_len,
    }
}

/// Drives `conns` keep-alive connections for `duration`, spread over the
/// servers at `bases`; each cycles through its share of the agents'
/// check-ins.
async fn load(
    bases: &[String],
    fleet: &Fleet,
    phase: Phase,
    conns: usize,
    duration: Duration,
) -> (Stats, usize) {
    let port_base = &fleet.server.base;
    let checkins: Arc<Vec<Vec<AgentRequest>>> = Arc::new(
        bases
            .iter()
            .map(|base| {
                fleet
                    .checkins
                    .iter()
                    .map(|(url, c, b, e, m)| {
                        let url = url.replacen(port_base, base, 1);
                        (url, c.clone(), b.clone(), e.clone(), m.clone())
                    })
                    .collect()
            })
            .collect(),
    );
    let expect = if phase == Phase::Cached { 304 } else { 200 };
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let checkins = Arc::clone(&checkins);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let node = &checkins[c % checkins.len()];
            let mut latencies = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let (url, credential, body, etag, moved) = &node[i % node.len()];
                // Each visit of an agent in the poll phase sends the other
                // of its two reports: never the same as its last.
                let body = match phase {
                    Phase::Poll if (i / node.len()).is_multiple_of(2) => moved,
                    _ => body,
                };
                i += conns;
                let mut req = client
                    .post(url)
                    .bearer_auth(credential)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if phase == Phase::Cached {
                    req = req.header("if-none-match", etag);
                }
                let t = Instant::now();
                let r = req.send().await.expect("check-in");
                let status = r.status().as_u16();
                let _ = r.bytes().await.expect("answer body");
                latencies.push(t.elapsed());
                assert_eq!(status, expect, "check-in status");
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let stats = Stats {
        rate: all.len() as f64 / elapsed,
        p50: ms(percentile(&all, 50.0)),
        p99: ms(percentile(&all, 99.0)),
        cpu_us: 0.0,
    };
    (stats, all.len())
}

/// The reference: hyper alone, answering a constant.
mod bare {
    use std::convert::Infallible;

    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;

    const ETAG: &str = "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"";

    pub(super) fn run(size: usize) {
        let body = Bytes::from(vec![b'x'; size]);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            println!(
                "bare hyper listening on http://{}",
                listener.local_addr().expect("address")
            );
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let body = body.clone();
                        async move {
                            let cached = req.headers().contains_key("if-none-match");
                            // Read the request like the real server does.
                            let _ = req.into_body().collect().await;
                            let mut r = Response::builder().header("etag", ETAG);
                            let out = if cached {
                                r = r.status(StatusCode::NOT_MODIFIED);
                                Full::new(Bytes::new())
                            } else {
                                r = r.header("content-type", "application/json");
                                Full::new(body)
                            };
                            Ok::<_, Infallible>(r.body(out).expect("response"))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
}
