//! docs/first-hour.md, run as written: every `sh` block in order, in one
//! shell, with the workspace's binaries first on `PATH`. Only the build
//! lines are left out (the test runs the binaries `cargo test` built), and
//! the server's foreground command becomes a background one on a free port,
//! so that the walk's second half runs against it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use tests::bin;

/// The address the page serves on, replaced by a free one.
const PAGE_ADDRESS: &str = "127.0.0.1:8080";
const SERVE_LINE: &str = "updater-server serve --listen 127.0.0.1:8080";

/// The page's `sh` blocks as one script, the build lines left out.
fn script_of(page: &str) -> String {
    let mut script = String::new();
    let mut in_sh = false;
    for line in page.lines() {
        match (in_sh, line.trim_end()) {
            (false, "```sh") => in_sh = true,
            (true, "```") => in_sh = false,
            (true, l) if l.starts_with("cargo ") || l.starts_with("export PATH=") => {}
            (true, l) => {
                script.push_str(l);
                script.push('\n');
            }
            (false, _) => {}
        }
    }
    script
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_first_hour_walk_updates_a_headset_with_documented_commands_only() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/first-hour.md"),
    )
    .unwrap();
    let script = script_of(&page);
    assert_eq!(
        script.matches(SERVE_LINE).count(),
        1,
        "the page starts the server with `{SERVE_LINE}`"
    );
    // In the foreground on the page; here in the background, the shell
    // going on once the server has said where it listens.
    let script = script.replace(
        SERVE_LINE,
        "exec 3< <(exec updater-server serve --listen 127.0.0.1:8080); SERVER_PID=$!\n\
         trap 'kill \"$SERVER_PID\"' EXIT\n\
         read -r -u 3 LISTENING; echo \"$LISTENING\"",
    );
    let script = script.replace(PAGE_ADDRESS, &format!("127.0.0.1:{}", free_port()));

    let dir = tempfile::tempdir().unwrap();
    let bins = bin("updater-server").parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("UPDATER_DATA_DIR")
        .env_remove("UPDATE_AGENT_CONFIG")
        .env_remove("UPDATE_AGENT_STATE_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    // Whatever happened, nothing the walk started outlives the test.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let shown = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(status.success(), "the walk failed:\n{shown}");

    // What the page says each step shows.
    let device = "1209/serial/VH5200-0001";
    let expected = [
        "enrollment token: upde_".to_owned(),
        "imported: acme-audio/voyage-5200-usb-headset/2.1.0/voyage-2.1.0.dfu".to_owned(),
        "updater-server listening on http://127.0.0.1:".to_owned(),
        format!("{device}: no policy: no enabled firmware policy for 1209:0003 in All Users ("),
        format!("{device}: installed 2.1.0 (read back)"),
        // `status`: the device at its new version, and the server's word on it.
        device.to_owned(),
        "2.1.0".to_owned(),
        "up to date: runs 2.1.0, the version policy \"Voyage silent\" selects".to_owned(),
    ];
    let mut from = 0;
    for want in &expected {
        let at = stdout[from..].find(want.as_str()).unwrap_or_else(|| {
            panic!("{want:?} is not in the walk's output after the previous step:\n{shown}")
        });
        from += at + want.len();
    }
    // The reports: the headset compliant, its model up to date.
    let compliance = stdout
        .lines()
        .find(|l| l.contains(",1209:0003,") && l.contains("Voyage silent"))
        .unwrap_or_else(|| panic!("no compliance row:\n{shown}"));
    assert!(
        compliance.contains(",2.1.0,2.1.0,true,compliant,"),
        "{compliance}"
    );
    assert!(
        stdout.contains("1209:0003,Voyage 5200 USB headset,2.1.0,2.1.0,up_to_date,1"),
        "{shown}"
    );
}
