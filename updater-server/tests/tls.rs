//! HTTPS with rustls (ring) and a certificate from `tls self-signed`.

mod support;

use std::process::Command;

use reqwest::blocking::Client;
use support::{start, updater};

fn self_signed(dir: &std::path::Path, hosts: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = dir.join("tls");
    let mut cmd = updater(&dir.join("data"));
    cmd.args(["tls", "self-signed", "--out"]).arg(&out);
    for h in hosts {
        cmd.args(["--host", h]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (out.join("cert.pem"), out.join("key.pem"))
}

#[test]
fn serves_https_to_a_client_trusting_the_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), &[]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pem = std::fs::read(&cert).unwrap();
    // With TLS, any address may be used (plain HTTP is loopback only).
    let server = start(
        &dir.path().join("data"),
        &[
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    assert!(server.base.starts_with("https://"), "{}", server.base);

    let trusting = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let r = trusting
            .get(format!("https://{host}:{port}/healthz"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
        assert_eq!(r.text().unwrap(), r#"{"status":"ok"}"#);
    }
    // A client that does not trust the certificate refuses the connection.
    let strict = Client::new();
    let err = strict
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(strict
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .map(|r| !r.status().is_success())
        .unwrap_or(true));
}

#[test]
fn certificate_for_another_host_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), &["updates.example.org"]);
    let pem = std::fs::read(&cert).unwrap();
    let server = start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let client = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let err = client
        .get(format!("{}/healthz", server.base))
        .send()
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[test]
fn bad_certificate_files_fail_startup_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a pem file").unwrap();
    let out = updater(&dir.path().join("data"))
        .args([
            "serve",
            "--allow-online-root-key",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
        ])
        .arg(&bogus)
        .arg("--tls-key")
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loading TLS certificate"), "{stderr}");
    // --tls-cert without --tls-key is a usage error.
    let out = updater(&dir.path().join("data"))
        .args(["serve", "--tls-cert"])
        .arg(&bogus)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_simulated_clock_is_refused_with_tls_or_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), &["localhost"]);
    let clock = "2026-03-28T21:00:00Z,2026-11-23T04:00:00Z,600";
    // With TLS on loopback, and with TLS on every address.
    let refused = ["127.0.0.1:0", "0.0.0.0:0"].map(|listen| {
        updater(&dir.path().join("data"))
            .args(["serve", "--listen", listen, "--simulated-clock", clock])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .output()
            .unwrap()
    });
    for out in refused {
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--simulated-clock is a test hook"),
            "{stderr}"
        );
    }
    let bad = updater(&dir.path().join("data"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--simulated-clock",
            "tomorrow,now,0",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("START: \"tomorrow\""), "{stderr}");
}

/// ring is the only rustls crypto provider in the dependency graph.
#[test]
fn aws_lc_rs_is_not_in_the_dependency_graph() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |package: &str| {
        Command::new(&cargo)
            .args([
                "tree",
                "--offline",
                "--workspace",
                "-e",
                "all",
                "-i",
                package,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let aws = run("aws-lc-rs");
    assert!(
        aws.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&aws.stdout)
    );
    assert!(
        String::from_utf8_lossy(&aws.stderr).contains("did not match any packages"),
        "{}",
        String::from_utf8_lossy(&aws.stderr)
    );
    let ring = run("ring");
    assert!(ring.status.success());
    assert!(String::from_utf8_lossy(&ring.stdout).contains("rustls"));
}
