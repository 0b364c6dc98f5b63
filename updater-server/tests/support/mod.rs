//! Running the real binary: CLI commands and a server on a loopback port.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use sha2::Digest;

/// The password every test admin gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running server, killed on drop.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
}

impl Server {
    /// The process's peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in /proc/{}/status", self.child.id()))
    }

    /// SIGKILL: the process gets no chance to flush or shut down.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `updater-server --data-dir <data>`, on the store [`store_env`] picks.
pub fn updater(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_updater-server"));
    c.arg("--data-dir").arg(data);
    c.env_remove("UPDATER_ADMIN_PASSWORD");
    store_env(&mut c, data);
    c
}

/// The store of every command on `data`: the embedded one, or with
/// `UPDATER_TEST_STORE=postgres` (the README's test command runs the server's
/// integration tests both ways) a PostgreSQL schema of the data directory's
/// own in the test database (`UPDATER_TEST_POSTGRES`, `.cargo/config.toml`).
pub fn store_env(c: &mut Command, data: &Path) {
    for var in [
        "UPDATER_STORE",
        "UPDATER_STORE_SCHEMA",
        "UPDATER_STORE_CONNECTIONS",
    ] {
        c.env_remove(var);
    }
    if store_is_postgres() {
        let url = std::env::var("UPDATER_TEST_POSTGRES")
            .expect("UPDATER_TEST_POSTGRES is unset (.cargo/config.toml sets it)");
        let path = std::path::absolute(data).unwrap();
        let digest = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
        c.env("UPDATER_STORE", url)
            .env(
                "UPDATER_STORE_SCHEMA",
                format!("test_{}", &hex::encode(digest)[..24]),
            )
            .env("UPDATER_STORE_CONNECTIONS", "4");
    }
}

/// Set by a test binary whose data directories must hold the embedded
/// store whatever `UPDATER_TEST_STORE` says ([`use_embedded_store`]).
static EMBEDDED_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every command of this test binary use the embedded store (the
/// migration tests copy it into PostgreSQL themselves).
pub fn use_embedded_store() {
    EMBEDDED_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the tests run on PostgreSQL (`UPDATER_TEST_STORE=postgres`)
/// rather than the embedded store (unset or `redb`).
pub fn store_is_postgres() -> bool {
    if EMBEDDED_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    match std::env::var("UPDATER_TEST_STORE").as_deref() {
        Err(_) | Ok("" | "redb") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("UPDATER_TEST_STORE={other}: use redb or postgres"),
    }
}

/// Starts `serve` (on `127.0.0.1:0` unless `args` has `--listen`) with extra
/// arguments and environment, and waits for its "listening" line (no sleeps).
/// A test installation holds every key (docs/security.md), so this passes
/// `--allow-online-root-key`; [`start_offline`] does not.
pub fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut all = vec!["--allow-online-root-key"];
    all.extend_from_slice(args);
    start_offline(data, &all, env)
}

/// [`start`] for a data directory holding only the online keys.
pub fn start_offline(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = updater(data);
    cmd.arg("serve");
    if !args.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("updater-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, base }
}

/// Runs a CLI command that must succeed and print JSON.
pub fn cli_json(data: &Path, args: &[&str]) -> Value {
    let out = updater(data)
        .args(args)
        .env("UPDATER_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Creates a tenant; returns its id and enrollment token.
pub fn create_tenant(data: &Path, name: &str) -> (String, String) {
    let t = cli_json(data, &["tenant", "create", "--name", name, "--json"]);
    (
        t["id"].as_str().unwrap().to_owned(),
        t["enrollment_token"].as_str().unwrap().to_owned(),
    )
}

/// Creates an admin with [`PASSWORD`]; returns its id.
pub fn create_admin(data: &Path, tenant: &str, email: &str, role: &str) -> String {
    let a = cli_json(
        data,
        &[
            "admin", "create", "--tenant", tenant, "--email", email, "--role", role, "--json",
        ],
    );
    a["id"].as_str().unwrap().to_owned()
}

/// Logs in; returns the session token.
pub fn login(http: &reqwest::blocking::Client, base: &str, tenant: &str, email: &str) -> String {
    let r = http
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "tenant": tenant, "email": email, "password": PASSWORD }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "login {email}");
    let body: Value = r.json().unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Enrolls an agent over HTTP; returns its id and credential.
pub fn enroll(
    http: &reqwest::blocking::Client,
    base: &str,
    tenant: &str,
    token: &str,
    system_id: &str,
) -> (String, String) {
    let r = http
        .post(format!("{base}/api/v1/enroll"))
        .json(&json!({
            "tenant": tenant, "token": token, "system_id": system_id,
            "machine_fingerprint": format!("fp-{system_id}"),
            "hostname": "ws-1", "os": "Linux",
        }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "enroll {system_id}");
    let body: Value = r.json().unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["credential"].as_str().unwrap().to_owned(),
    )
}

/// A cabinet packed by `gcab` from a metainfo and a DFU payload (hardware
/// id 047F:0CA1 from its suffix); `sha256` is what the metainfo claims.
pub fn gcab_cabinet(dir: &Path, payload: &[u8], sha256: &str) -> Vec<u8> {
    let src = dir.join("cab-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("firmware.bin"), payload).unwrap();
    let metainfo = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<component type="firmware">
  <id>com.acme.base.firmware</id>
  <name>Base 30</name>
  <developer_name>Acme Audio</developer_name>
  <provides><firmware type="flashed">2082b5e0-7a64-478a-b1b2-e3404fab6dad</firmware></provides>
  <releases>
    <release version="1.4.0" urgency="high">
      <checksum filename="firmware.bin" target="content" type="sha256">{sha256}</checksum>
      <description><p>Base fix.</p></description>
    </release>
  </releases>
</component>"#
    );
    std::fs::write(src.join("firmware.metainfo.xml"), metainfo).unwrap();
    let cab = dir.join("base.cab");
    let _ = std::fs::remove_file(&cab);
    let status = Command::new("gcab")
        .args(["--create", "--zip", "--nopath"])
        .arg(&cab)
        .arg(src.join("firmware.metainfo.xml"))
        .arg(src.join("firmware.bin"))
        .status()
        .unwrap_or_else(|e| panic!("gcab is required for this test (apt-get install gcab): {e}"));
    assert!(status.success(), "gcab failed");
    std::fs::read(cab).unwrap()
}

/// Imports `fw` as Acme Voyager 2.0 for `047F:C056` through the CLI.
pub fn import_voyager(data: &Path, fw: &Path) {
    let out = updater(data)
        .args(["catalog", "import"])
        .arg(fw)
        .args(["--vendor", "Acme", "--model", "Voyager"])
        .args(["--hardware-id", "047F:C056", "--version", "2.0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "catalog import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
