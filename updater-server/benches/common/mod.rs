//! What both server benchmarks share: the real binary's CLI, a server on a
//! loopback port, and latency statistics.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The password of the benchmark's admin.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A child process serving HTTP, killed on drop.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Spawns `cmd` (stdout piped) and waits for its first line, which must
    /// end with the URL it listens on (`... listening on http://ADDR`).
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, base }
    }

    /// A child already known to listen on `base`.
    pub(crate) fn adopt(child: Child, base: String) -> Self {
        Self { child, base }
    }

    /// CPU time (user + system) the child has used so far, from
    /// `/proc/PID/stat` (Linux reports it in units of 1/100 s).
    pub(crate) fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name: state is field 3,
        // utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    /// CPU time of the child and its own children (nginx's workers).
    pub(crate) fn cpu_secs_with_children(&self) -> f64 {
        let me = self.child.id().to_string();
        let mut total = self.cpu_secs();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(1) == Some(&me.as_str()) {
                let ticks = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|f| f.parse::<f64>().ok())
                        .unwrap_or(0.0)
                };
                total += (ticks(11) + ticks(12)) / 100.0;
            }
        }
        total
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// `updater-server --data-dir <data>` (the release binary cargo built for
/// this bench).
pub(crate) fn updater(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_updater-server"));
    c.arg("--data-dir").arg(data);
    c.env("UPDATER_ADMIN_PASSWORD", PASSWORD);
    c.env("UPDATER_LOG", "warn");
    c
}

/// `updater-server serve` on a free loopback port.
pub(crate) fn start_updater(data: &Path) -> Server {
    let mut cmd = updater(data);
    cmd.args([
        "serve",
        "--allow-online-root-key",
        "--listen",
        "127.0.0.1:0",
    ]);
    Server::spawn(cmd)
}

/// Runs a CLI command that must succeed and print JSON.
pub(crate) fn cli_json(data: &Path, args: &[&str]) -> Value {
    let out = updater(data)
        .args(args)
        .output()
        .expect("run updater-server");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Imports `bytes` as a raw firmware image of `model` (hardware id `hwid`).
pub(crate) fn import(
    data: &Path,
    dir: &Path,
    model: &str,
    hwid: &str,
    version: &str,
    bytes: &[u8],
) {
    let fw = dir.join(format!("{model}-{version}.bin"));
    std::fs::write(&fw, bytes).expect("write firmware");
    let out = updater(data)
        .args(["catalog", "import"])
        .arg(&fw)
        .args(["--vendor", "Acme", "--model", model, "--hardware-id", hwid])
        .args(["--version", version, "--silent-capable"])
        .output()
        .expect("run updater-server");
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deterministic incompressible bytes (xorshift).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    let mut x = seed | 1;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    data
}

/// The `p`-th percentile (0..=100) of sorted samples.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of a few measurements.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Positional arguments (cargo bench adds `--bench`).
pub(crate) fn positional() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// Prints the machine the run is on.
pub(crate) fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cores} cores, {cpu}");
}

/// Inventory device `i` of a generated fleet: model `vid:pid` at `version`,
/// on host `host`, seen `now` (ids and serials from `i`).
pub(crate) fn inventory_device(
    tenant: &str,
    i: usize,
    vid: u16,
    pid: u16,
    version: &str,
    host: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> updater_server::fleet::inventory::Device {
    updater_server::fleet::inventory::Device {
        tenant: tenant.to_owned(),
        id: format!("{i:016x}"),
        key: format!("{vid:04x}/serial/SN{i}"),
        vendor_id: vid,
        product_id: pid,
        bcd_device: 0x100,
        serial: Some(format!("SN{i}")),
        manufacturer: None,
        product: None,
        firmware_version: Some(version.to_owned()),
        dfu: catalog::protocol::DfuState::Runtime,
        telephony: true,
        battery: None,
        first_seen: now,
        last_seen: now,
        host: host.to_owned(),
        users: Default::default(),
        deleted_at: None,
    }
}

/// A fleet service over `store` for the in-process benchmarks: a catalog in
/// `dir` with version 2.0 of each `(vid, pid, model name)`, and one tenant
/// (its id returned).
pub(crate) fn bench_fleet(
    dir: &Path,
    store: std::sync::Arc<dyn updater_server::store::Store>,
    models: &[(u16, u16, &str)],
) -> (updater_server::fleet::Fleet, String) {
    use updater_server::auth::{Accounts, SessionPolicy, SystemClock};
    let keys = dir.join("keys");
    let accounts = Accounts::new(
        store,
        std::sync::Arc::new(SystemClock),
        keys.clone(),
        SessionPolicy::default(),
    );
    let cat_dir = dir.join("catalog");
    let now = chrono::Utc::now();
    let mut catalog = catalog::Catalog::init(&cat_dir, &keys, now).expect("catalog");
    let image = dir.join("fw.bin");
    std::fs::write(&image, vec![0x5a; 4096]).expect("image");
    for (vid, pid, model) in models {
        let options = catalog::import::ImportOptions {
            vendor: Some("Acme".into()),
            model: Some((*model).to_owned()),
            hardware_ids: vec![catalog::package::HardwareId::new(*vid, *pid)],
            version: Some("2.0".into()),
            ..Default::default()
        };
        catalog.import(&image, &options, now).expect("import");
    }
    let (tenant, _) = accounts.create_tenant("Bench").expect("tenant");
    (
        updater_server::fleet::Fleet::new(accounts, cat_dir, keys),
        tenant.id,
    )
}

/// A device as an agent reports it at check-in.
pub(crate) fn device(vid: u16, pid: u16, serial: Option<&str>, fw: &str) -> Value {
    serde_json::json!({"vendor_id": vid, "product_id": pid, "bcd_device": 0x0100, "serial": serial,
        "port_path": "1-4", "manufacturer": "Vendor", "product": "Headset",
        "firmware_version": fw, "dfu": "runtime", "telephony": true,
        "battery": {"kind": "rough_percent", "value": 75}, "in_call": false})
}

/// Agent `i`'s enrollment request.
pub(crate) fn enrollment(tenant: &str, token: &str, i: usize) -> Value {
    serde_json::json!({"tenant": tenant, "token": token, "system_id": format!("{{SYS-{i}}}"),
        "machine_fingerprint": format!("fp-{i}"), "hostname": format!("ws-{i}"), "os": "Linux"})
}

/// Agent `i`'s check-in report: three devices (two of the catalog's models
/// and another vendor's), its user, the Voyager's battery at `battery`.
pub(crate) fn report(i: usize, battery: u8) -> Vec<u8> {
    let mut v = device(0x047f, 0xc056, Some(&format!("V{i}")), "1.0");
    v["battery"]["value"] = serde_json::json!(battery);
    let body = serde_json::json!({"agent_version": "0.1.0", "platform": "linux",
        "hostname": format!("ws-{i}"), "users": [{"account": format!("user{i}")}],
        "devices": [v,
                    device(0x047f, 0x02ee, Some(&format!("B{i}")), "2.0"),
                    device(0x0b0e, 0x0422, Some(&format!("J{i}")), "2.0")],
        "update_states": [{"device": format!("047f/serial/V{i}"), "installed_security_counter": 0}]});
    serde_json::to_vec(&body).expect("JSON")
}

/// The check-in benchmarks' server and tenant.
pub(crate) struct CheckinWorld {
    /// The server (release binary), serving `dir/data`.
    pub(crate) server: Server,
    /// The tenant's id.
    pub(crate) tenant: String,
    /// Its enrollment token.
    pub(crate) enrollment_token: String,
}

/// A catalog of three releases of two models; a tenant with an admin, a
/// pilot group (every tenth of the first 10,000 agents' users) pinned to
/// 1.1 silently at night, and the latest of both models for everyone else;
/// its server started. Agents `0..agents` enroll with
/// [`enrollment`] and report with [`report`].
pub(crate) fn checkin_world(dir: &Path, agents: usize) -> CheckinWorld {
    let data = dir.join("data");
    for (i, (model, hwid, version)) in [
        ("Voyager", "047F:C056", "1.0"),
        ("Voyager", "047F:C056", "1.1"),
        ("Blackwire", "047F:02EE", "3.0"),
    ]
    .into_iter()
    .enumerate()
    {
        import(
            &data,
            dir,
            model,
            hwid,
            version,
            &noise(64 * 1024, i as u64 + 7),
        );
    }
    let (tenant, token) = tenant_with_admin(&data, "ann@bench.example");
    let server = start_updater(&data);
    let base = server.base.clone();
    let http = reqwest::blocking::Client::new();
    let r: Value = http
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"tenant": tenant, "email": "ann@bench.example", "password": PASSWORD}))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("login");
    let session = r["token"].as_str().expect("session").to_owned();
    let api = |path: &str, body: Value| -> Value {
        http.post(format!("{base}/api/v1/tenants/{tenant}/{path}"))
            .bearer_auth(&session)
            .json(&body)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    };
    let pilots: Vec<String> = (0..agents.min(10_000))
        .step_by(10)
        .map(|i| format!("user{i}"))
        .collect();
    let pilot = api(
        "groups",
        serde_json::json!({"name": "Pilot", "membership": {"kind": "manual", "members": pilots}}),
    );
    let pilot = pilot["id"].as_str().expect("group id").to_owned();
    api(
        "policies/firmware",
        serde_json::json!({"name": "Pilot Voyager", "model": "047F:C056", "group": pilot, "version": "1.1",
        "deployment": "silent",
        "window": {"cron": "0 2 * * *", "duration_minutes": 120, "tz": "Europe/Berlin"}}),
    );
    api(
        "policies/firmware",
        serde_json::json!({"name": "Voyager latest", "model": "047F:C056", "version": "latest"}),
    );
    api(
        "policies/firmware",
        serde_json::json!({"name": "Blackwire latest", "model": "047F:02EE", "version": "latest"}),
    );
    CheckinWorld {
        server,
        tenant,
        enrollment_token: token,
    }
}

/// A process's resident memory now and at its peak (`VmRSS`, `VmHWM`), in
/// MiB.
pub(crate) fn resident_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Tenant "Bench" with a full admin `email` (password [`PASSWORD`]), by the
/// CLI: its id and enrollment token.
pub(crate) fn tenant_with_admin(data: &Path, email: &str) -> (String, String) {
    let t = cli_json(data, &["tenant", "create", "--name", "Bench", "--json"]);
    let tenant = t["id"].as_str().expect("tenant id").to_owned();
    let token = t["enrollment_token"].as_str().expect("token").to_owned();
    cli_json(
        data,
        &[
            "admin", "create", "--tenant", &tenant, "--email", email, "--role", "full", "--json",
        ],
    );
    (tenant, token)
}
