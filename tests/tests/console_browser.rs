//! The web console in a real browser: Debian's Chromium driven by
//! Playwright (`tests/console/console.test.mjs`), against the real server
//! with a real (simulated-device) agent checking in mid-test. Screenshots
//! of the main pages land in `target/console-screenshots/`.
//!
//! Peers: `node` (20 or newer), `chromium` (Debian's package) and
//! `playwright-core` installed by `npm ci` in `tests/console`;
//! `scripts/test-suite --install` sets all three up. A missing one fails
//! the test with the command that installs it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::{bin, import_headset, server_cli, tenant_with_admin, text, Server};

const PASSWORD: &str = "a long console test password";
const CHROMIUM: &str = "/usr/bin/chromium";

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// Fails with the command that installs whichever peer is missing.
fn check_peers() {
    let node = Command::new("node").arg("--version").output();
    let major = node
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            text(&o.stdout)
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
        });
    assert!(
        major.is_some_and(|m| m >= 20),
        "the console tests need Node.js 20 or newer (found {major:?}); install it, e.g. `apt-get install -y nodejs npm` on a release that ships 20+"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "the console tests need Debian's Chromium: `apt-get install -y chromium` (or `scripts/test-suite --install`)"
    );
    assert!(
        console_dir().join("node_modules/playwright-core").is_dir(),
        "the console tests need playwright-core: `cd tests/console && npm ci` (or `scripts/test-suite --install`)"
    );
}

/// A script that enrolls an agent with one simulated Voyage 5200 at 1.0.0
/// and checks in once.
fn checkin_script(dir: &Path, base: &str, tenant: &str, token: &str) -> PathBuf {
    let config = dir.join("agent.toml");
    fs::write(
        &config,
        format!(
            "backend = \"simulated\"\n[simulated]\nstate_dir = \"{}\"\n\
             [[simulated.devices]]\nprofile = \"headset_tolerant\"\nserial = \"VH5200-0001\"\nversion = \"1.0.0\"\n",
            dir.join("devices").display()
        ),
    )
    .unwrap();
    let agent = bin("update-agent");
    let state = dir.join("agent-state");
    let script = dir.join("checkin.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\n\
             unset TENANT_ID SERVER_URL TENANT_TOKEN UPDATE_AGENT_STATE_DIR UPDATE_AGENT_CONFIG\n\
             '{agent}' --config '{config}' --state-dir '{state}' enroll --tenant-id '{tenant}' --server-url '{base}' --tenant-token '{token}'\n\
             '{agent}' --config '{config}' --state-dir '{state}' check-now\n",
            agent = agent.display(),
            config = config.display(),
            state = state.display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn an_admin_runs_the_fleet_from_the_console_in_chromium() {
    check_peers();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tenant = tenant_with_admin(&data, "Acme Corp", "ann@example.com", PASSWORD);
    server_cli(
        &data,
        &[
            "admin",
            "create",
            "--tenant",
            &tenant.id,
            "--email",
            "rob@example.com",
            "--role",
            "read-only",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let fw = dir.path().join("voyage-1.2.0.bin");
    fs::write(&fw, vec![0x5a; 4096]).unwrap();
    import_headset(&data, &fw, "1.2.0", &["--silent-capable"]);
    // Acme may change the shared catalog, so the console offers the upload.
    let server = Server::start_with(
        &data,
        &["--listen", "127.0.0.1:0", "--catalog-managers", &tenant.id],
    );
    let script = checkin_script(
        dir.path(),
        &server.base,
        &tenant.id,
        &tenant.enrollment_token,
    );
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    let out = Command::new("node")
        .arg(console_dir().join("console.test.mjs"))
        .current_dir(console_dir())
        .env("CONSOLE_URL", &server.base)
        .env("TENANT_NAME", "acme corp")
        .env("TENANT_ID", &tenant.id)
        .env("FULL_EMAIL", "ann@example.com")
        .env("READONLY_EMAIL", "rob@example.com")
        .env("PASSWORD", PASSWORD)
        .env("CHECKIN_SCRIPT", &script)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", CHROMIUM)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("console tests: 15 steps passed"),
        "{stdout}"
    );
    for page in [
        "home",
        "devices",
        "device",
        "groups",
        "policy-preview",
        "report",
    ] {
        assert!(
            artifacts.join(format!("{page}.png")).is_file(),
            "screenshot {page}.png"
        );
    }
}
