//! The README's demo, run as a user runs it (a smaller fleet): it must
//! converge and exit 0, print the reports, and never clear a directory
//! that is not a previous demo's.

use std::process::Command;

fn demo(data: &std::path::Path, hosts: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fleet-sim"))
        .args(["demo", "--hosts", hosts, "--no-progress", "--data"])
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn a_small_fleet_converges_and_the_reports_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = demo(&data, "20");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("The fleet converged as expected."),
        "{stdout}"
    );
    assert!(stdout.contains("enrolled 20 agents"), "{stdout}");
    // The staged rollouts: the good one approved wave by wave and
    // completed, the broken one paused in its pilot wave.
    for line in [
        "  the admin approves wave 2",
        "  the admin approves wave 3",
        "the morning after night 5 (rollout: everyone):\nrollout Voyage 5200: completed;",
        "rollout Voyage 3200: paused; Pilot 0/1 installed, 1 failed;",
        "failed with \"the device came back with version 1.0.0, not 2.2.0: the update did not take\"",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    assert!(!stdout.contains("UNEXPECTED"), "{stdout}");
    // Version Status: the single-piece models are all up to date, the
    // two-piece product waits (multi-piece guard).
    for (model, status) in [
        ("1209:0001,Voyage 3200,2.1.0,2.1.0,up_to_date", true),
        ("1209:0003,Voyage 5200,2.1.0,2.1.0,up_to_date", true),
        ("1209:0005,Speak 710,2.1.0,2.1.0,up_to_date", true),
        ("1209:0007,Orbit 8200 base,2.1.0,1.0.0,outdated,3", true),
        ("1209:0009,Orbit BT600 dongle,2.1.0,1.0.0,outdated,3", true),
    ] {
        assert_eq!(stdout.contains(model), status, "{model}:\n{stdout}");
    }
    assert!(
        stdout.contains("two-piece product                   3 hosts     0/6"),
        "{stdout}"
    );
    // The data stays for the CLI, and a rerun replaces it.
    assert!(data.join("server/server.redb").is_file());
    assert!(data.join("agents/ws-0001/enrollment.json").is_file());
    let again = demo(&data, "12");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(!data.join("agents/ws-0013").exists());
}

#[test]
fn a_directory_that_is_not_a_demo_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("precious.txt");
    std::fs::write(&keep, "do not delete").unwrap();
    let out = demo(dir.path(), "12");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a previous demo's directory"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "do not delete");
}

#[test]
fn a_fleet_too_small_for_the_story_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(&dir.path().join("d"), "5");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 hosts"));
}

/// Kills the demo when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `demo --serve`: after the story the server stays up on the converged
/// fleet, and the URL and login it prints open the console on that fleet.
#[test]
fn demo_serve_keeps_the_console_up_on_the_converged_fleet() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Running(
        Command::new(env!("CARGO_BIN_EXE_fleet-sim"))
            .args([
                "demo",
                "--hosts",
                "12",
                "--no-progress",
                "--serve",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(dir.path().join("demo"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let mut printed = String::new();
    let (mut console, mut login) = (None, None);
    // The reader lives to the end of the test: a closed pipe would fail the
    // demo's next print.
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.strip_prefix("Web console: ") {
            console = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.trim().strip_prefix("sign in with tenant ") {
            // tenant "Demo Corp", e-mail it-admin@…, password "…"
            let quoted: Vec<&str> = rest.split('"').collect();
            let email = rest
                .split("e-mail ")
                .nth(1)
                .and_then(|s| s.split(',').next());
            login = Some((
                quoted[1].to_owned(),
                email.unwrap().to_owned(),
                quoted[3].to_owned(),
            ));
        }
        if line.contains("Ctrl-C stops it.") {
            break;
        }
    }
    assert!(
        printed.contains("The fleet converged as expected."),
        "{printed}"
    );
    let console = console.unwrap_or_else(|| panic!("no console URL printed:\n{printed}"));
    let (tenant, email, password) = login.unwrap_or_else(|| panic!("no login printed:\n{printed}"));
    assert_eq!(tenant, "Demo Corp");
    assert!(
        console.starts_with("http://127.0.0.1:") && console.ends_with("/console"),
        "{console}"
    );

    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = http
        .post(format!("{console}/signin"))
        .form(&[
            ("tenant", &tenant),
            ("email", &email),
            ("password", &password),
        ])
        .send()
        .unwrap();
    assert_eq!(signed_in.status(), 303, "the printed login signs in");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // The converged fleet is what the console shows: its hosts and models.
    for (page, expected) in [
        ("/hosts", "ws-0012"),
        ("/devices", "Voyage 5200"),
        ("/reports/versions", "Orbit 8200 base"),
        ("/rollouts", "Voyage 3200"),
    ] {
        let r = http
            .get(format!("{console}{page}"))
            .header("cookie", &cookie)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{page}");
        let body = r.text().unwrap();
        assert!(body.contains(expected), "{page} shows {expected}:\n{body}");
    }
    // Still serving until stopped: the process has not exited.
    assert!(
        demo.0.try_wait().unwrap().is_none(),
        "the demo keeps serving"
    );
}
