//! Helpers shared by the end-to-end tests in `tests/tests/`: finding the real
//! binaries the workspace built, and running a server on a loopback port.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use sha2::{Digest, Sha256};

pub mod balancer;
pub mod sim_fleet;

/// Set by a test binary whose servers keep their records in PostgreSQL
/// ([`use_postgres_store`]).
static POSTGRES_STORE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every `updater-server` this test binary runs keep its records in
/// the test database (`UPDATER_TEST_POSTGRES`, set in `.cargo/config.toml`;
/// `scripts/test-suite --install` creates it), in a schema of each data
/// directory's own, so that several server processes on one data
/// directory share one store.
pub fn use_postgres_store() {
    POSTGRES_STORE.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// `updater-server --data-dir DATA` on the store this test binary uses:
/// the embedded one, or after [`use_postgres_store`] the data directory's
/// schema in the test database.
pub fn server_command(data: &Path) -> Command {
    let mut c = Command::new(bin("updater-server"));
    c.arg("--data-dir").arg(data);
    for var in [
        "UPDATER_STORE",
        "UPDATER_STORE_SCHEMA",
        "UPDATER_STORE_CONNECTIONS",
    ] {
        c.env_remove(var);
    }
    if POSTGRES_STORE.load(std::sync::atomic::Ordering::Relaxed) {
        let url = std::env::var("UPDATER_TEST_POSTGRES").expect(
            "UPDATER_TEST_POSTGRES is unset (.cargo/config.toml sets it; \
             `scripts/test-suite --install` creates the database)",
        );
        let path = std::path::absolute(data).expect("absolute data path");
        let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
        c.env("UPDATER_STORE", url)
            .env(
                "UPDATER_STORE_SCHEMA",
                format!("e2e_{}", &hex::encode(digest)[..24]),
            )
            .env("UPDATER_STORE_CONNECTIONS", "4");
    }
    c
}

/// Path of a workspace binary, next to the test executable's `deps/` directory.
///
/// `cargo test --workspace` builds every package's binaries before it runs
/// any test; running one test crate alone needs `cargo build --workspace --bins` first.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build --workspace --bins` (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A running `updater-server`, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts `updater-server --data-dir DATA serve` on an ephemeral loopback
    /// port and returns once it has printed its listening address.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &["--listen", "127.0.0.1:0"])
    }

    /// Starts `updater-server --data-dir DATA serve SERVE_ARGS…` (which
    /// should name a loopback `--listen`) and returns once it listens.
    pub fn start_with(data: &Path, serve_args: &[&str]) -> Self {
        let mut child = server_command(data)
            .arg("serve")
            // A test installation holds every key (docs/security.md).
            .arg("--allow-online-root-key")
            .args(serve_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start updater-server");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("updater-server exited before listening")
                .expect("read server output");
            if let Some(base) = line.strip_prefix("updater-server listening on ") {
                break base.to_owned();
            }
        };
        Self { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lossy UTF-8 of a process's output, for messages and assertions.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `updater-server --data-dir DATA ARGS…` with `stdin` fed to it and
/// asserts that it succeeded.
pub fn server_cli(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = server_command(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start updater-server");
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(t) = stdin {
        input.write_all(t.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("wait for updater-server");
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    out
}

/// Imports `fw` as `version` of the end-to-end tests' headset (vendor
/// Acme, model Headset, `1209:0003`) with the admin CLI; `extra` adds
/// arguments (e.g. `--security-counter 2`).
pub fn import_headset(data: &Path, fw: &Path, version: &str, extra: &[&str]) -> Output {
    let fw = fw.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "catalog",
        "import",
        fw,
        "--vendor",
        "Acme",
        "--model",
        "Headset",
        "--hardware-id",
        "1209:0003",
        "--version",
        version,
    ];
    args.extend_from_slice(extra);
    server_cli(data, &args, None)
}

/// A tenant created with the admin CLI, with one full admin.
#[derive(Debug)]
pub struct Tenant {
    /// The tenant id.
    pub id: String,
    /// Its enrollment token.
    pub enrollment_token: String,
    /// Everything `tenant create --json` printed.
    pub json: serde_json::Value,
}

/// Creates tenant `name` and a full admin `email` with `password` through the CLI.
pub fn tenant_with_admin(data: &Path, name: &str, email: &str, password: &str) -> Tenant {
    let out = server_cli(data, &["tenant", "create", "--name", name, "--json"], None);
    let tenant: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("tenant create --json prints JSON");
    let field = |k: &str| {
        tenant[k]
            .as_str()
            .unwrap_or_else(|| panic!("tenant create --json has no {k}"))
            .to_owned()
    };
    let t = Tenant {
        id: field("id"),
        enrollment_token: field("enrollment_token"),
        json: tenant.clone(),
    };
    server_cli(
        data,
        &[
            "admin",
            "create",
            "--tenant",
            &t.id,
            "--email",
            email,
            "--role",
            "full",
            "--password-stdin",
        ],
        Some(&format!("{password}\n")),
    );
    t
}

/// One answer of a [`MirrorServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The request path.
    pub path: String,
    /// The first byte sent (the `Range` start, 0 without one).
    pub start: u64,
    /// How many body bytes were sent.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct MirrorShared {
    stall_at: std::sync::Mutex<Option<u64>>,
    changed: std::sync::Condvar,
    log: std::sync::Mutex<Vec<Served>>,
}

/// A web mirror on a loopback port serving a directory (a mirror export)
/// with `Range` support, that can stall target downloads at a byte offset
/// (the connection stays open, nothing more is sent) and logs every answer.
#[derive(Debug)]
pub struct MirrorServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: std::sync::Arc<MirrorShared>,
}

impl MirrorServer {
    /// Serves `root` until the test process ends.
    pub fn start(root: &Path) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind mirror");
        let base = format!("http://{}", listener.local_addr().expect("mirror address"));
        let shared = std::sync::Arc::new(MirrorShared::default());
        let (root, s) = (root.to_owned(), shared.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, s) = (root.clone(), s.clone());
                std::thread::spawn(move || serve_one(&root, &s, stream));
            }
        });
        Self { base, shared }
    }

    /// Target downloads stop after byte `offset` (absolute) until changed;
    /// `None` serves them whole. Stalled connections are closed on a change.
    pub fn stall_targets_at(&self, offset: Option<u64>) {
        *self
            .shared
            .stall_at
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = offset;
        self.shared.changed.notify_all();
    }

    /// Every answer so far, in order.
    pub fn served(&self) -> Vec<Served> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for MirrorServer {
    fn drop(&mut self) {
        self.stall_targets_at(None);
    }
}

fn serve_one(root: &Path, s: &MirrorShared, stream: std::net::TcpStream) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(r) => r,
        Err(_) => return,
    });
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut start = 0u64;
    let mut ranged = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(r) = lower.strip_prefix("range: bytes=") {
            if let Some(n) = r.trim().strip_suffix('-').and_then(|n| n.parse().ok()) {
                start = n;
                ranged = true;
            }
        }
    }
    let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut out = stream;
    let rel = path.trim_start_matches('/');
    let safe = !rel.split('/').any(|c| c == ".." || c.is_empty());
    let data = if safe {
        std::fs::read(root.join(rel)).ok()
    } else {
        None
    };
    let Some(data) = data else {
        let _ = out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let len = data.len() as u64;
    if start > len {
        let _ = out.write_all(
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let head = if ranged {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\nConnection: close\r\n\r\n",
            len - start,
            len.saturating_sub(1)
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let stall = *s.stall_at.lock().unwrap_or_else(|e| e.into_inner());
    let end = match stall {
        Some(k) if path.starts_with("/targets/") && k > start => k.min(len),
        _ => len,
    };
    let ok = out.write_all(head.as_bytes()).is_ok()
        && out.write_all(&data[start as usize..end as usize]).is_ok()
        && out.flush().is_ok();
    s.log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Served {
            path,
            start,
            bytes: if ok { end - start } else { 0 },
        });
    if end < len {
        // Stalled: keep the connection open until the test changes the stall.
        let guard = s.stall_at.lock().unwrap_or_else(|e| e.into_inner());
        let _ = s
            .changed
            .wait_timeout(guard, std::time::Duration::from_secs(300));
    }
}

/// `update-agent --config CONFIG --state-dir STATE ARGS…` without the
/// installer variables of the test's own environment.
pub fn agent_command(config: &Path, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("update-agent"));
    cmd.arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(args);
    for var in [
        "TENANT_ID",
        "SERVER_URL",
        "TENANT_TOKEN",
        "CATALOG_ROOT_SHA256",
        "UPDATE_AGENT_STATE_DIR",
        "UPDATE_AGENT_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A logged-in tenant admin over the API; every call must succeed.
#[derive(Debug)]
pub struct Admin {
    /// The HTTP client.
    pub http: reqwest::blocking::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Tenant id.
    pub tenant: String,
    /// Session token.
    pub token: String,
}

impl Admin {
    /// Logs in at `base` (`http://127.0.0.1:<port>`) as `email` of `tenant`.
    pub fn login(base: &str, tenant: &str, email: &str, password: &str) -> Self {
        let http = reqwest::blocking::Client::new();
        let resp = http
            .post(format!("{base}/api/v1/login"))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"tenant": tenant, "email": email, "password": password})
                    .to_string(),
            )
            .send()
            .expect("login request");
        let status = resp.status();
        assert!(status.is_success(), "login: {status}");
        let answer: serde_json::Value =
            serde_json::from_slice(&resp.bytes().expect("login answer")).expect("login JSON");
        Self {
            http,
            base: base.to_owned(),
            tenant: tenant.to_owned(),
            token: answer["token"].as_str().expect("session token").to_owned(),
        }
    }

    /// `GET /api/v1/tenants/{tenant}/{path}` as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let resp = self
            .http
            .get(format!(
                "{}/api/v1/tenants/{}/{path}",
                self.base, self.tenant
            ))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        serde_json::from_slice(&resp.bytes().unwrap()).unwrap()
    }

    /// `POST /api/v1/tenants/{tenant}/{path}` with a JSON body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        self.send(reqwest::Method::POST, path, body)
    }

    /// `PUT /api/v1/tenants/{tenant}/{path}` with a JSON body.
    pub fn put(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        self.send(reqwest::Method::PUT, path, body)
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let resp = self
            .http
            .request(
                method.clone(),
                format!("{}/api/v1/tenants/{}/{path}", self.base, self.tenant),
            )
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = resp.status();
        let answer: serde_json::Value = serde_json::from_slice(&resp.bytes().unwrap()).unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    /// Every item of a paged list (`events` or `update-history`).
    pub fn all(&self, list: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut since = 0;
        loop {
            let page = self.get(&format!("{list}?since={since}&limit=1000"));
            let items = page["items"].as_array().unwrap().clone();
            if items.is_empty() {
                return out;
            }
            since = page["next_since"].as_u64().unwrap();
            out.extend(items);
        }
    }
}
