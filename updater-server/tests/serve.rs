//! The HTTP service, run as the real binary on a loopback port.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use reqwest::blocking::Client;
use reqwest::StatusCode;
use support::{start, updater, Server};

fn seeded() -> (tempfile::TempDir, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let image: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let fw = dir.path().join("fw.bin");
    std::fs::write(&fw, &image).unwrap();
    let out = updater(&data)
        .args(["catalog", "import"])
        .arg(&fw)
        .args([
            "--vendor",
            "Acme",
            "--model",
            "Voyager",
            "--hardware-id",
            "047F:C056",
            "--version",
            "1.0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = updater(&data)
        .args(["catalog", "show", "acme/voyager", "--json"])
        .output()
        .unwrap();
    let release: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let sha = release["sha256"].as_str().unwrap().to_owned();
    (dir, image, sha)
}

#[test]
fn serves_metadata_and_blobs_with_ranges_and_etags() {
    let (dir, image, sha) = seeded();
    let server = start(&dir.path().join("data"), &[], &[]);
    let http = Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.base));

    let health: serde_json::Value =
        serde_json::from_slice(&get("/healthz").send().unwrap().bytes().unwrap()).unwrap();
    assert_eq!(health["status"], "ok");

    let ts = get("/repo/metadata/timestamp.json").send().unwrap();
    assert_eq!(ts.status(), StatusCode::OK);
    assert_eq!(ts.headers()["cache-control"], "no-cache");
    let etag = ts.headers()["etag"].to_str().unwrap().to_owned();
    let ts_json: serde_json::Value = serde_json::from_slice(&ts.bytes().unwrap()).unwrap();
    assert_eq!(ts_json["signed"]["_type"], "timestamp");
    let again = get("/repo/metadata/timestamp.json")
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let root = get("/repo/metadata/1.root.json").send().unwrap();
    assert!(root.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));

    let target = format!("/repo/targets/acme/voyager/1.0/{sha}.fw.bin");
    let full = get(&target).send().unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.bytes().unwrap().as_ref(), &image[..]);

    let part = get(&target)
        .header("range", "bytes=1000-1999")
        .send()
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1999/100000");
    assert_eq!(part.bytes().unwrap().as_ref(), &image[1000..2000]);

    // Bodies from 64 KiB on go from the page cache by sendfile (plain HTTP
    // on Linux): whole or ranged, at any offset, byte for byte the same.
    let sendfile_bytes = || -> u64 {
        let text = get("/metrics").send().unwrap().text().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("updater_download_sendfile_bytes_total "))
            .expect("the sendfile counter")
            .parse()
            .unwrap()
    };
    let before = sendfile_bytes();
    let large = get(&target)
        .header("range", "bytes=1234-71233")
        .send()
        .unwrap();
    assert_eq!(large.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(large.headers()["content-length"], "70000");
    assert_eq!(large.bytes().unwrap().as_ref(), &image[1234..71_234]);
    let whole = get(&target).send().unwrap().bytes().unwrap();
    assert_eq!(whole.as_ref(), &image[..]);
    assert_eq!(sendfile_bytes() - before, 170_000);

    let tail = get(&target).header("range", "bytes=99990-").send().unwrap();
    assert_eq!(tail.bytes().unwrap().as_ref(), &image[99_990..]);

    let beyond = get(&target)
        .header("range", "bytes=100000-")
        .send()
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()["content-range"], "bytes */100000");

    let cached = get(&target)
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    // Bad paths never reach the filesystem.
    for (path, code) in [
        ("/repo/metadata/..%2Fkeys%2Froot.pem", "not_found"),
        ("/repo/metadata/.lock", "not_found"),
        ("/repo/targets/acme/notahash.fw.bin", "not_found"),
        (
            "/repo/targets/0000000000000000000000000000000000000000000000000000000000000000.x",
            "not_found",
        ),
        ("/nothing", "not_found"),
    ] {
        let r = get(path).send().unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
        assert_eq!(body["code"], code, "{path}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[test]
fn refuses_plain_http_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = updater(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only loopback addresses"));
}

#[test]
fn demo_seeds_sample_firmware_and_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = updater(&data)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut imported = Vec::new();
    let base = loop {
        let line = lines.next().expect("demo exited early").unwrap();
        if let Some(name) = line.strip_prefix("imported ") {
            imported.push(name.split(' ').next().unwrap().to_owned());
        }
        if let Some(base) = line.strip_prefix("updater-server listening on ") {
            break base.to_owned();
        }
    };
    let server = Server { child, base };
    assert_eq!(
        imported,
        [
            "acme-audio/voyage-5200/2.1.0/headset_tolerant-2.1.0.dfu",
            "acme-audio/voyage-3200/2.1.0/headset_needs_replug-2.1.0.dfu",
            "acme-audio/speak-710/2.1.0/dfuse_speakerphone-2.1.0.dfu",
            "acme-audio/orbit-8200-base/2.1.0/base_station-2.1.0.dfu",
            "acme-audio/orbit-bt600-dongle/2.1.0/usb_dongle-2.1.0.dfu",
        ]
    );
    let snapshot = Client::new()
        .get(format!("{}/repo/metadata/timestamp.json", server.base))
        .send()
        .unwrap();
    assert_eq!(snapshot.status(), StatusCode::OK);
    drop(server);
    let list = updater(&data)
        .args(["catalog", "list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    // The sample models of the simulated devices (`sim-firmware --list`),
    // with the ids, protocol, replug need and product family they have.
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert_eq!(list[0]["hardware_ids"], serde_json::json!(["1209:0003"]));
    assert_eq!(list[2]["protocol"], "dfuse");
    assert_eq!(list[1]["capabilities"]["needs_replug"], true);
    assert_eq!(list[0]["capabilities"]["needs_replug"], false);
    assert_eq!(
        (&list[3]["product_family"], &list[4]["product_family"]),
        (&serde_json::json!("Orbit"), &serde_json::json!("Orbit"))
    );
    assert_eq!(list[0].get("product_family"), None);
}
