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
