//! The signed repository end to end: firmware imported with the admin CLI,
//! served by `updater-server`, fetched and verified over HTTP by the TUF
//! client the agent ships, through key rotation and tampering.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use tests::{bin, Server};

fn admin(data: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin("updater-server"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn client(meta: &Path, args: &[&str]) -> Output {
    Command::new(bin("tuf-client"))
        .arg("--metadata-dir")
        .arg(meta)
        .args(args)
        .output()
        .unwrap()
}

fn import(data: &Path, file: &Path, version: &str) {
    admin(
        data,
        &[
            "catalog",
            "import",
            file.to_str().unwrap(),
            "--vendor",
            "Acme",
            "--model",
            "Voyager",
            "--hardware-id",
            "047F:C056",
            "--version",
            version,
        ],
    );
}

#[test]
fn agent_client_downloads_verified_firmware_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let image: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let fw = dir.path().join("fw.bin");
    fs::write(&fw, &image).unwrap();
    import(&data, &fw, "1.0");
    let server = Server::start(&data);
    let meta_url = format!("{}/repo/metadata", server.base);
    let target_url = format!("{}/repo/targets", server.base);

    // The agent pins root v1 at enrollment.
    let meta = dir.path().join("agent-meta");
    fs::create_dir(&meta).unwrap();
    let root = data.join("catalog/repo/metadata/1.root.json");
    assert!(client(&meta, &["init", root.to_str().unwrap()])
        .status
        .success());
    let out = client(&meta, &["--metadata-url", &meta_url, "refresh"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let download = |name: &str, out_dir: &Path| {
        client(
            &meta,
            &[
                "--metadata-url",
                &meta_url,
                "--target-name",
                name,
                "--target-base-url",
                &target_url,
                "--target-dir",
                out_dir.to_str().unwrap(),
                "download",
            ],
        )
    };
    let out_dir = dir.path().join("downloads");
    fs::create_dir(&out_dir).unwrap();
    let out = download("acme/voyager/1.0/fw.bin", &out_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(fs::read(&files[0]).unwrap(), image);

    // Root rotation on the server: the pinned client chains v1 -> v2.
    admin(
        &data,
        &[
            "catalog",
            "keys",
            "rotate",
            "--role",
            "root",
            "--role",
            "timestamp",
        ],
    );
    let out = client(&meta, &["--metadata-url", &meta_url, "refresh"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trusted: serde_json::Value =
        serde_json::from_slice(&fs::read(meta.join("root.json")).unwrap()).unwrap();
    assert_eq!(trusted["signed"]["version"], 2);

    // A blob swapped on the server's disk is refused by the client.
    let fw2 = dir.path().join("fw2.bin");
    fs::write(&fw2, b"second release").unwrap();
    import(&data, &fw2, "1.1");
    let show = admin(&data, &["catalog", "show", "acme/voyager/1.1", "--json"]);
    let release: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let sha = release["sha256"].as_str().unwrap();
    let blob = data.join(format!("catalog/blobs/sha256/{}/{sha}", &sha[..2]));
    fs::write(&blob, b"evil release!!").unwrap();
    let out_dir2 = dir.path().join("downloads2");
    fs::create_dir(&out_dir2).unwrap();
    let out = download("acme/voyager/1.1/fw2.bin", &out_dir2);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        fs::read_dir(&out_dir2).unwrap().next().is_none(),
        "nothing unverified may be left in the target dir"
    );

    // A target the repository never signed does not exist for the client.
    let out = download("acme/voyager/9.9/fw.bin", &out_dir2);
    assert_eq!(out.status.code(), Some(1));
}

/// The agent's staging resumes an interrupted download from the server with
/// `Range`, and from a mirror on a share, and verifies both.
#[test]
fn staging_resumes_over_http_and_from_a_share() {
    use catalog::digest::Sha256Digest;
    use catalog::tuf::TargetFile;
    use update_agent::fetch::{HttpFetcher, ShareFetcher};
    use update_agent::staging::Staging;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let image: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let fw = dir.path().join("fw.bin");
    fs::write(&fw, &image).unwrap();
    import(&data, &fw, "1.0");
    let digest = Sha256Digest::of(&image);
    let target = TargetFile::from_data(&image, None);
    let rel = format!("acme/voyager/1.0/{digest}.fw.bin");

    // Over HTTP: 64 KiB arrived before the interruption.
    let server = Server::start(&data);
    let staging_dir = dir.path().join("staging-http");
    fs::create_dir(&staging_dir).unwrap();
    fs::write(
        staging_dir.join(format!("{digest}.partial")),
        &image[..65_536],
    )
    .unwrap();
    let staging = Staging::open(&staging_dir).unwrap();
    let url = format!("{}/repo/targets/{rel}", server.base);
    let staged = staging
        .stage(&HttpFetcher::new().unwrap(), &url, &target)
        .unwrap();
    assert_eq!(fs::read(staged).unwrap(), image);

    // From a share exported with the admin CLI.
    let share = dir.path().join("share");
    admin(&data, &["catalog", "mirror", share.to_str().unwrap()]);
    let staging_dir = dir.path().join("staging-share");
    fs::create_dir(&staging_dir).unwrap();
    fs::write(
        staging_dir.join(format!("{digest}.partial")),
        &image[..1000],
    )
    .unwrap();
    let staging = Staging::open(&staging_dir).unwrap();
    let staged = staging
        .stage(&ShareFetcher::new(share.join("targets")), &rel, &target)
        .unwrap();
    assert_eq!(fs::read(staged).unwrap(), image);
}
