//! Firmware download throughput against nginx serving the same file, same
//! machine, same run.
//!
//! `cargo bench -p updater-server --bench download [-- SIZE_MIB [CONNECTIONS [SECONDS [ROUNDS]]]]`
//! (defaults: a 64 MiB image, 2 connections, 2 s per phase, 3 rounds).
//!
//! The image is imported into the catalog of a real server (the release
//! binary); nginx (started by the bench with a generated configuration in a
//! temporary directory, `sendfile on`, as many workers as cores) serves a
//! copy of the same file. The load generator keeps CONNECTIONS keep-alive
//! connections busy in two phases:
//!
//! - `whole`: GET of the whole image, repeatedly.
//! - `range`: `Range: bytes=A-B` requests of 1 MiB at successive offsets
//!   (206), as a resuming agent sends them.
//!
//! Bodies are read and counted, not stored; one whole download from each
//! server is hashed first and must match. Phases alternate between the two
//! servers; the result is the median of ROUNDS phases each. Goal: ratio
//! (server MiB/s / nginx MiB/s) >= 0.9.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{import, median, positional, start_updater, Server};
use sha2::{Digest, Sha256};

const CHUNK: u64 = 1 << 20;

fn main() {
    let pos = positional();
    let arg = |i: usize, default: u64| pos.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let size_mib = arg(0, 64);
    let conns = arg(1, 2) as usize;
    let secs = arg(2, 2);
    let rounds = arg(3, 3) as usize;
    common::print_machine();
    println!(
        "{size_mib} MiB image, {conns} connections, {secs} s per phase, {rounds} rounds (median)"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let image = common::noise((size_mib * CHUNK) as usize, 0x5eed);
    let digest = hex::encode(Sha256::digest(&image));
    let data = dir.path().join("data");
    import(&data, dir.path(), "Voyager", "047F:C056", "9.9", &image);
    let server = start_updater(&data);
    let ours = format!(
        "{}/repo/targets/Acme/Voyager/9.9/{digest}.Voyager-9.9.bin",
        server.base
    );
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("image.bin"), &image).expect("copy for nginx");
    drop(image);
    let nginx = start_nginx(dir.path());
    let theirs = format!("{}/image.bin", nginx.base);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for url in [&ours, &theirs] {
        let got = rt.block_on(fetch_digest(url));
        assert_eq!(got, digest, "{url} serves the image");
    }
    let len = size_mib * CHUNK;
    let duration = Duration::from_secs(secs);
    println!();
    println!(
        "{:<7} {:<15} {:>10} {:>9} {:>12}",
        "phase", "server", "MiB/s", "req/s", "CPU ms/MiB"
    );
    for (phase, ranged) in [("whole", false), ("range", true)] {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..rounds {
            let phase = |server: &Server, url: &str| {
                let before = server.cpu_secs_with_children();
                let (mib_s, req_s, mib) = rt.block_on(load(url, len, ranged, conns, duration));
                let cpu_ms = (server.cpu_secs_with_children() - before) * 1e3 / mib.max(1.0);
                (mib_s, req_s, cpu_ms)
            };
            a.push(phase(&server, &ours));
            b.push(phase(&nginx, &theirs));
        }
        let summary = |v: &[(f64, f64, f64)]| {
            (
                median(v.iter().map(|x| x.0).collect()),
                median(v.iter().map(|x| x.1).collect()),
                median(v.iter().map(|x| x.2).collect()),
            )
        };
        let (ours_mib, ours_req, ours_cpu) = summary(&a);
        let (ref_mib, ref_req, ref_cpu) = summary(&b);
        println!(
            "{phase:<7} {:<15} {ours_mib:>10.1} {ours_req:>9.1} {ours_cpu:>12.2}",
            "updater-server"
        );
        println!(
            "{phase:<7} {:<15} {ref_mib:>10.1} {ref_req:>9.1} {ref_cpu:>12.2}",
            "nginx"
        );
        println!(
            "{phase:<7} ratio {:.2} (goal >= 0.9); server CPU per MiB, nginx / ours: {:.2}",
            ours_mib / ref_mib,
            ref_cpu / ours_cpu
        );
    }
}

/// Starts nginx on a free loopback port, serving `<dir>/www`.
fn start_nginx(dir: &Path) -> Server {
    let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("nginx is missing: apt-get install nginx"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let d = dir.display();
    // Workers drop to `nobody` when started as root: let them read the file.
    for p in [dir.to_owned(), dir.join("www"), dir.join("www/image.bin")] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let conf = format!(
        "worker_processes {cores};\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n\
           client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n\
           fastcgi_temp_path {d}/nginx-fastcgi;\n  uwsgi_temp_path {d}/nginx-uwsgi;\n\
           scgi_temp_path {d}/nginx-scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n  }}\n}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    // nginx prints nothing when it is ready: wait until the port accepts.
    let mut child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start nginx ({e}): apt-get install nginx"));
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default();
            panic!("nginx exited ({status}): {log}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server::adopt(child, format!("http://{addr}"))
}

async fn fetch_digest(url: &str) -> String {
    let mut r = reqwest::get(url)
        .await
        .and_then(|r| r.error_for_status())
        .expect("download");
    let mut h = Sha256::new();
    while let Some(chunk) = r.chunk().await.expect("body") {
        h.update(&chunk);
    }
    hex::encode(h.finalize())
}

/// Drives `conns` keep-alive connections for `duration`; returns MiB/s,
/// requests/s and the MiB transferred.
async fn load(
    url: &str,
    len: u64,
    ranged: bool,
    conns: usize,
    duration: Duration,
) -> (f64, f64, f64) {
    let url: Arc<str> = url.into();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let url = Arc::clone(&url);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let (mut bytes, mut requests) = (0u64, 0u64);
            let mut offset = c as u64 * CHUNK;
            while Instant::now() < deadline {
                let mut req = client.get(&*url);
                let want = if ranged {
                    let start = offset % len;
                    let end = (start + CHUNK).min(len) - 1;
                    offset += conns as u64 * CHUNK;
                    req = req.header("range", format!("bytes={start}-{end}"));
                    end - start + 1
                } else {
                    len
                };
                let mut r = req.send().await.expect("download");
                let status = r.status().as_u16();
                assert_eq!(status, if ranged { 206 } else { 200 }, "{url}");
                let mut got = 0u64;
                while let Some(chunk) = r.chunk().await.expect("body") {
                    got += chunk.len() as u64;
                }
                assert_eq!(got, want, "{url}: body length");
                bytes += got;
                requests += 1;
            }
            (bytes, requests)
        }));
    }
    let (mut bytes, mut requests) = (0u64, 0u64);
    for t in tasks {
        let (b, r) = t.await.expect("load task");
        bytes += b;
        requests += r;
    }
    let secs = start.elapsed().as_secs_f64();
    let mib = bytes as f64 / CHUNK as f64;
    (mib / secs, requests as f64 / secs, mib)
}
