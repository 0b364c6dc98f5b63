//! Helpers shared by the end-to-end tests in `tests/tests/`: finding the real
//! binaries the workspace built, and running a server on a loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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
