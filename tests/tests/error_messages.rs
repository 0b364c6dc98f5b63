//! Errors as the binaries print them: every cause once, however the error
//! types nest (each binary prints through `error_report::Report`).

use std::process::Command;

use tests::{agent_command, bin, text};

/// How often `needle` occurs in `haystack`.
fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn binaries_print_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tests::server_cli(&data, &["catalog", "keys", "init"], None);

    // A .dfu whose dwCRC is wrong: the DFU parser's message travels through
    // the importer's error and the CLI's.
    let mut bad_crc = dfu::file::DfuFile::new_raw(0x1209, 0x0003, 0x0100, vec![7; 64]).to_bytes();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let fw = dir.path().join("bad-crc.dfu");
    std::fs::write(&fw, &bad_crc).unwrap();
    let import = Command::new(bin("updater-server"))
        .arg("--data-dir")
        .arg(&data)
        .args(["catalog", "import"])
        .arg(&fw)
        .args(["--vendor", "Acme", "--model", "Headset"])
        .output()
        .unwrap();

    // An agent enrolling with a server that is not there: reqwest's message
    // and its cause (the refused connection).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("server_url = \"http://127.0.0.1:{port}/\"\nbackend = \"simulated\"\n"),
    )
    .unwrap();
    let enroll = agent_command(&config, &dir.path().join("state"), &["enroll"])
        .env("TENANT_ID", "0123456789abcdef")
        .env("TENANT_TOKEN", "not-a-token")
        .output()
        .unwrap();

    // (what, output, said exactly once, also said)
    let table = [
        ("import of a bad CRC", &import, "dwCRC", "bad-crc.dfu"),
        (
            "enroll with no server",
            &enroll,
            "error sending request for url",
            "refused",
        ),
    ];
    for (what, out, once, also) in table {
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{what}: succeeded: {stderr}");
        assert_eq!(count(&stderr, once), 1, "{what}: {once:?} in {stderr}");
        assert!(
            stderr.to_lowercase().contains(also),
            "{what}: no {also:?} in {stderr}"
        );
        let line = stderr.lines().find(|l| l.contains(once)).unwrap();
        let parts: Vec<&str> = line.split(": ").collect();
        for pair in parts.windows(2) {
            assert_ne!(pair[0], pair[1], "{what}: said twice in {line}");
        }
    }
}
