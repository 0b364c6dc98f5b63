//! The key ceremony on the real binary: a serving host with only the online
//! keys, a signing medium with root and targets, releases signed there and
//! published here; the server refuses the root key and cannot sign firmware.

mod support;

use std::fs;
use std::path::Path;

use support::{create_admin, create_tenant, login, start_offline, updater};

fn run(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = updater(data).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(data: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(data, args);
    assert!(success, "{args:?}: {stderr}");
    stdout
}

fn fails(data: &Path, args: &[&str]) -> String {
    let (success, _, stderr) = run(data, args);
    assert!(!success, "{args:?} should fail");
    stderr
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

const IMPORT: &[&str] = &[
    "--vendor",
    "Acme",
    "--model",
    "Voyager",
    "--hardware-id",
    "047F:C056",
    "--version",
    "2.14",
    "--security-counter",
    "1",
];

#[test]
fn serve_refuses_the_root_key_and_a_catalog_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    let err = fails(&data, &serve);
    assert!(err.contains("catalog keys init --offline"), "{err}");
    assert!(!data.join("keys").exists(), "refusing created keys");
    ok(&data, &["catalog", "keys", "init"]);
    let err = fails(&data, &serve);
    assert!(err.contains("root.pem is on the serving host"), "{err}");
    assert!(err.contains("--allow-online-root-key"), "{err}");
}

#[test]
fn releases_are_signed_on_the_medium_and_published_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let medium = dir.path().join("medium");
    let out = ok(
        &data,
        &[
            "catalog",
            "keys",
            "init",
            "--offline",
            medium.to_str().unwrap(),
        ],
    );
    assert!(out.contains("offline keys (root, targets)"), "{out}");
    assert_eq!(names(&data.join("keys")), ["snapshot.pem", "timestamp.pem"]);
    assert_eq!(names(&medium.join("keys")), ["root.pem", "targets.pem"]);
    let fw = dir.path().join("voyager-2.14.bin");
    fs::write(&fw, vec![0x5a; 8192]).unwrap();
    let fw = fw.to_str().unwrap();

    // The server cannot sign a release.
    let mut import = vec!["catalog", "import", fw];
    import.extend_from_slice(IMPORT);
    let err = fails(&data, &import);
    assert!(err.contains("the targets key is not on this host"), "{err}");
    assert!(ok(&data, &["catalog", "list", "--json"]).trim() == "[]");

    // Signed on the medium, published on the server.
    let out = ok(&medium, &import);
    assert!(
        out.contains("imported: acme/voyager/2.14/voyager-2.14.bin"),
        "{out}"
    );
    let signing_copy = medium.join("catalog");
    let out = ok(
        &data,
        &["catalog", "publish", signing_copy.to_str().unwrap()],
    );
    assert!(out.contains("targets v2"), "{out}");
    assert!(
        out.contains("added: acme/voyager/2.14/voyager-2.14.bin"),
        "{out}"
    );
    let out = ok(
        &data,
        &["catalog", "publish", signing_copy.to_str().unwrap()],
    );
    assert!(out.contains("nothing to publish"), "{out}");

    // A second targets holder: 2-of-2 from now on.
    let holder = dir.path().join("holder-2");
    let holder_arg = holder.to_str().unwrap();
    let out = ok(
        &medium,
        &[
            "catalog", "keys", "add", "--role", "targets", "--to", holder_arg,
        ],
    );
    assert!(out.contains("published root v2"), "{out}");
    let err = fails(
        &medium,
        &["catalog", "keys", "threshold", "--role", "targets", "2"],
    );
    assert!(err.contains("needs 2 targets key(s)"), "{err}");
    ok(
        &medium,
        &[
            "catalog",
            "keys",
            "threshold",
            "--role",
            "targets",
            "2",
            "--keys",
            holder_arg,
        ],
    );
    let list = ok(&medium, &["catalog", "keys", "list", "--keys", holder_arg]);
    assert!(list.contains("targets    threshold 2"), "{list}");
    assert!(list.contains("holder-2/targets.pem"), "{list}");
    let out = ok(
        &data,
        &["catalog", "publish", signing_copy.to_str().unwrap()],
    );
    assert!(out.contains("root v3"), "{out}");

    // The server serves without any offline key, answers uploads with 409,
    // and its metadata names the published targets.
    let (tenant, _) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "it@acme.example", "full");
    let server = start_offline(&data, &["--catalog-managers", &tenant], &[]);
    let http = reqwest::blocking::Client::new();
    let token = login(&http, &server.base, &tenant, "it@acme.example");
    let r = http
        .post(format!(
            "{}/api/v1/tenants/{tenant}/catalog/releases?vendor=Acme&model=Voyager&hardware-id=047F:C056&version=3.0&file-name=v3.bin",
            server.base
        ))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; 100])
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["code"], "signed_offline", "{body}");
    let root: serde_json::Value = http
        .get(format!("{}/repo/metadata/root.json", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(root["signed"]["version"], 3);
    assert_eq!(root["signed"]["roles"]["targets"]["threshold"], 2);
    let releases: serde_json::Value = http
        .get(format!(
            "{}/api/v1/tenants/{tenant}/catalog/releases",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        releases[0]["target_name"],
        "acme/voyager/2.14/voyager-2.14.bin"
    );
}
