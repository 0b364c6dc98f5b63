//! Helpers shared by the end-to-end tests in `tests/tests/`: finding the real
//! binaries the workspace built, and running a server on a loopback port.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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
        let mut child = Command::new(bin("updater-server"))
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
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
    let mut child = Command::new(bin("updater-server"))
        .arg("--data-dir")
        .arg(data)
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
