use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::thread;

use catalog::assignment::KeyEndorsement;
use catalog::tuf::Ed25519Signer;
use catalog::Catalog;
use serde_json::{json, Value};

use super::*;

/// Reads one HTTP request (head and body) from `s`.
fn read_request(s: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Serves every request on its own connection until the test ends:
/// `POST /api/v1/enroll` answers `status` and `enroll` (each such request
/// is sent to the receiver), `GET /repo/metadata/<file>` answers
/// `files[<file>]` (404 otherwise).
fn serve(
    status: &'static str,
    enroll: String,
    files: Vec<(String, Vec<u8>)>,
) -> (String, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sent, requests) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let request = read_request(&mut s);
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let (status, body) = if path == "/api/v1/enroll" {
                let _ = sent.send(request);
                (status, enroll.clone().into_bytes())
            } else {
                let file = path.strip_prefix("/repo/metadata/").unwrap_or_default();
                match files.iter().find(|(name, _)| name == file) {
                    Some((_, bytes)) => ("200 OK", bytes.clone()),
                    None => ("404 Not Found", b"{}".to_vec()),
                }
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    (url, requests)
}

/// [`serve`] with no metadata files.
fn serve_once(status: &'static str, body: String) -> (String, Receiver<String>) {
    serve(status, body, vec![])
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn options(url: &str) -> EnrollOptions {
    EnrollOptions {
        params: InstallerParams {
            tenant_id: TENANT.into(),
            server_url: url.into(),
            tenant_token: "upde_t1_secret".into(),
            catalog_root_sha256: None,
            server_cert_sha256: None,
        },
        ca_cert: None,
        machine_fingerprint: "fp-1".into(),
        hostname: "ws-17".into(),
        os: "Debian".into(),
    }
}

/// The tenant of these tests.
const TENANT: &str = "00000000000000a1";

/// A catalog whose targets endorse `key` for [`TENANT`].
struct Fixture {
    _dir: tempfile::TempDir,
    catalog: Catalog,
    root_file: Vec<u8>,
    root: Value,
    key: Ed25519Signer,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::init(
        &dir.path().join("catalog"),
        &dir.path().join("keys"),
        chrono::Utc::now(),
    )
    .unwrap();
    let key = Ed25519Signer::generate().unwrap();
    let endorsement = KeyEndorsement::new(TENANT, key.public_key().clone()).unwrap();
    catalog.endorse(&endorsement, chrono::Utc::now()).unwrap();
    let root_file = std::fs::read(catalog.metadata_dir().join("1.root.json")).unwrap();
    let root = serde_json::from_slice(&root_file).unwrap();
    Fixture {
        _dir: dir,
        catalog,
        root_file,
        root,
        key,
    }
}

impl Fixture {
    /// Rotates the timestamp key: root v2 (returned).
    fn rotate(&self) -> Vec<u8> {
        self.catalog
            .repository()
            .unwrap()
            .rotate_root(&["timestamp"], chrono::Utc::now())
            .unwrap();
        self.metadata("2.root.json")
    }

    fn metadata(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.catalog.metadata_dir().join(file)).unwrap()
    }

    /// Every metadata file, as the server serves them.
    fn served(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(self.catalog.metadata_dir())
            .unwrap()
            .map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                let bytes = self.metadata(&name);
                (name, bytes)
            })
            .collect()
    }
}

fn answer(f: &Fixture, system_id: &str, root: &Value) -> String {
    json!({
        "id": "agent-1", "system_id": system_id, "hostname": "ws-17", "os": "Debian",
        "enrolled_at": "2026-11-20T08:00:00Z", "credential_issued_at": "2026-11-20T08:00:00Z",
        "suspected_clone": false, "clone_of": null, "credential": "upda_agent-1_secret",
        "reenrolled": false, "tenant": TENANT,
        "assignment_key": {"keyid": f.key.key_id(), "key": f.key.public_key()},
        "catalog_root": {"version": 1, "sha256": "00", "url": "/repo/metadata/1.root.json"},
        "root": root,
    })
    .to_string()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn stores_credential_root_and_key() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let id = SystemId::load_or_create(&state).unwrap();
    let (url, server) = serve("201 Created", answer(&f, id.as_str(), &f.root), f.served());
    let e = enroll(&state, &options(&url), now()).unwrap();
    let request = server.recv().unwrap();
    assert!(
        request.starts_with("POST /api/v1/enroll HTTP/1.1"),
        "{request}"
    );
    let body: Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"tenant": TENANT, "token": "upde_t1_secret", "system_id": id.as_str(),
               "machine_fingerprint": "fp-1", "hostname": "ws-17", "os": "Debian"})
    );

    assert_eq!(e.agent_id, "agent-1");
    assert_eq!(e.pinned_root_version, 1);
    assert_eq!(e.assignment_key_id, f.key.key_id());
    // Targets v1 came with the catalog, v2 endorsed the key.
    assert_eq!(e.endorsed_in_targets, 2);
    assert_eq!(load(&state).unwrap(), Some(e));
    assert_eq!(credential(&state).unwrap(), "upda_agent-1_secret");
    // The pinned root is byte for byte the repository's file.
    assert_eq!(std::fs::read(state.join(ROOT_FILE)).unwrap(), f.root_file);
    let key: AssignmentKey =
        serde_json::from_slice(&std::fs::read(state.join(ASSIGNMENT_KEY_FILE)).unwrap()).unwrap();
    assert_eq!(&key.key, f.key.public_key());
    assert_eq!(mode(&state), 0o700);
    for file in [
        CREDENTIAL_FILE,
        ENROLLMENT_FILE,
        ASSIGNMENT_KEY_FILE,
        "system_id",
    ] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&state.join(ROOT_FILE)), 0o644);
}

#[test]
fn a_root_that_does_not_verify_is_not_stored() {
    let f = fixture();
    let cases: Vec<(&str, Value)> = vec![
        ("tampered", {
            let mut r = f.root.clone();
            r["signed"]["expires"] = json!("2099-01-01T00:00:00Z");
            r
        }),
        ("unsigned", {
            let mut r = f.root.clone();
            r["signatures"] = json!([]);
            r
        }),
        (
            "not a root",
            json!({"signed": {"_type": "targets"}, "signatures": []}),
        ),
    ];
    for (what, root) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let id = SystemId::load_or_create(&state).unwrap();
        let (url, server) = serve_once("201 Created", answer(&f, id.as_str(), &root));
        let err = enroll(&state, &options(&url), now()).unwrap_err();
        server.recv().unwrap();
        assert!(matches!(err, EnrollError::RootInvalid(_)), "{what}: {err}");
        assert!(
            err.to_string()
                .contains("does not verify, nothing was stored"),
            "{err}"
        );
        assert_eq!(listing(&state), ["system_id"], "{what}");
    }
}

#[test]
fn refusals_and_unreachable_servers_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let body =
        r#"{"code":"invalid_enrollment_token","message":"wrong tenant or enrollment token"}"#;
    let (url, server) = serve_once("401 Unauthorized", body.into());
    let err = enroll(&state, &options(&url), now()).unwrap_err();
    server.recv().unwrap();
    assert!(matches!(err, EnrollError::InvalidToken { .. }), "{err}");
    assert!(
        err.to_string().contains("check TENANT_ID and TENANT_TOKEN"),
        "{err}"
    );
    assert!(
        !state.exists(),
        "nothing stored, not even the state directory"
    );

    let (url, server) = serve_once(
        "422 Unprocessable Entity",
        r#"{"code":"invalid_request","message":"bad"}"#.into(),
    );
    let err = enroll(&state, &options(&url), now())
        .unwrap_err()
        .to_string();
    server.recv().unwrap();
    assert_eq!(err, "the server answered 422: invalid_request: bad");
    assert!(!state.exists());

    // Connection refused: a port nobody listens on any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = enroll(&state, &options(&format!("http://127.0.0.1:{port}")), now()).unwrap_err();
    assert!(matches!(err, EnrollError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot reach the server at http://127.0.0.1:{port}/api/v1/enroll"
        )),
        "{err}"
    );
    assert!(!state.exists());

    // A server error may follow a commit: the new SystemID is kept for the retry.
    let (url, server) = serve_once(
        "500 Internal Server Error",
        r#"{"code":"internal","message":"x"}"#.into(),
    );
    enroll(&state, &options(&url), now()).unwrap_err();
    server.recv().unwrap();
    assert_eq!(listing(&state), ["system_id"]);
}

#[test]
fn an_answer_for_another_system_id_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    SystemId::load_or_create(&state).unwrap();
    let (url, server) = serve_once("201 Created", answer(&f, "someone-else", &f.root));
    let err = enroll(&state, &options(&url), now())
        .unwrap_err()
        .to_string();
    server.recv().unwrap();
    assert!(err.contains("not ours"), "{err}");
    assert_eq!(listing(&state), ["system_id"]);
}

#[test]
fn a_newer_pinned_root_is_not_rolled_back() {
    // The TUF client followed a rotation to root v2; re-enrolling against a
    // server answer carrying v1 keeps v2.
    let f = fixture();
    let v2 = f.rotate();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let id = SystemId::load_or_create(&state).unwrap();
    std::fs::create_dir_all(state.join("metadata")).unwrap();
    std::fs::write(state.join(ROOT_FILE), &v2).unwrap();
    let (url, server) = serve("200 OK", answer(&f, id.as_str(), &f.root), f.served());
    let e = enroll(&state, &options(&url), now()).unwrap();
    server.recv().unwrap();
    assert_eq!(e.pinned_root_version, 2);
    assert_eq!(e.catalog_root.version, 1);
    assert_eq!(std::fs::read(state.join(ROOT_FILE)).unwrap(), v2);
}

/// A catalog with roots v1 and v2 (a timestamp key rotation).
struct Rotated {
    fx: Fixture,
    v1: Vec<u8>,
    v2: Vec<u8>,
}

fn rotated() -> Rotated {
    let fx = fixture();
    let v2 = fx.rotate();
    Rotated {
        v1: fx.root_file.clone(),
        v2,
        fx,
    }
}

fn answer_with(f: &Fixture, system_id: &str, root_file: &[u8]) -> String {
    let root: Value = serde_json::from_slice(root_file).unwrap();
    let mut a: Value = serde_json::from_str(&answer(f, system_id, &root)).unwrap();
    a["catalog_root"]["version"] = root["signed"]["version"].clone();
    a.to_string()
}

fn fingerprint(root_file: &[u8]) -> String {
    catalog::tuf::root_fingerprint(&Signed::<Root>::from_slice("root", root_file).unwrap())
}

fn pinned(url: &str, pin: &str) -> EnrollOptions {
    let mut o = options(url);
    o.params.catalog_root_sha256 = Some(pin.to_owned());
    o
}

#[test]
fn a_pinned_first_root_is_chained_to_the_answered_root() {
    let r = rotated();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let id = SystemId::load_or_create(&state).unwrap();
    let (url, _) = serve(
        "201 Created",
        answer_with(&r.fx, id.as_str(), &r.v2),
        r.fx.served(),
    );
    let e = enroll(&state, &pinned(&url, &fingerprint(&r.v1)), now()).unwrap();
    assert_eq!(e.pinned_root_version, 2);
    let stored = std::fs::read(state.join(ROOT_FILE)).unwrap();
    assert_eq!(fingerprint(&stored), fingerprint(&r.v2));
}

#[test]
fn a_root_that_does_not_match_the_pin_or_chain_is_refused() {
    let ours = rotated();
    let f = &ours.fx;
    let theirs = rotated();
    /// Files the server serves, by name.
    type Served<'a> = Vec<(&'a str, &'a [u8])>;
    /// (what, installer pin, root pinned by an earlier enrollment, answered
    /// root, files the server serves, expected words)
    type Case<'a> = (
        &'a str,
        Option<String>,
        Option<&'a [u8]>,
        &'a [u8],
        Served<'a>,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "another catalog's first root behind the pin",
            Some(fingerprint(&ours.v1)),
            None,
            &theirs.v1,
            vec![("1.root.json", &theirs.v1)],
            "the installer pins",
        ),
        (
            "a root v2 not signed by the pinned first root",
            Some(fingerprint(&ours.v1)),
            None,
            &theirs.v2,
            vec![("1.root.json", &ours.v1), ("2.root.json", &theirs.v2)],
            "root v2 does not chain from v1",
        ),
        (
            "re-enrollment answered by another catalog's root v1",
            None,
            Some(&ours.v1),
            &theirs.v1,
            vec![],
            "is not the one reached from the trusted root",
        ),
        (
            "re-enrollment answered by a replaced root v2",
            None,
            Some(&ours.v1),
            &theirs.v2,
            vec![("2.root.json", &theirs.v2)],
            "root v2 does not chain from v1",
        ),
        (
            "re-enrollment where the chain is missing",
            None,
            Some(&ours.v1),
            &ours.v2,
            vec![],
            "fetching root v2",
        ),
    ];
    for (what, pin, earlier, answered, files, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let id = SystemId::load_or_create(&state).unwrap();
        if let Some(root) = earlier {
            std::fs::create_dir_all(state.join("metadata")).unwrap();
            std::fs::write(state.join(ROOT_FILE), root).unwrap();
        }
        let before = listing(&state);
        let (url, _) = serve(
            "201 Created",
            answer_with(f, id.as_str(), answered),
            files
                .into_iter()
                .map(|(n, b)| (n.to_owned(), b.to_vec()))
                .collect(),
        );
        let mut opts = options(&url);
        opts.params.catalog_root_sha256 = pin;
        let err = enroll(&state, &opts, now()).unwrap_err();
        assert!(
            matches!(err, EnrollError::RootNotTrusted(_)),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(words), "{what}: {err}");
        assert_eq!(listing(&state), before, "{what}: nothing stored");
        if let Some(root) = earlier {
            assert_eq!(
                std::fs::read(state.join(ROOT_FILE)).unwrap(),
                root,
                "{what}"
            );
        }
    }
}

#[test]
fn re_enrollment_follows_a_genuine_rotation() {
    let r = rotated();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let id = SystemId::load_or_create(&state).unwrap();
    std::fs::create_dir_all(state.join("metadata")).unwrap();
    std::fs::write(state.join(ROOT_FILE), &r.v1).unwrap();
    let (url, _) = serve(
        "201 Created",
        answer_with(&r.fx, id.as_str(), &r.v2),
        r.fx.served(),
    );
    let e = enroll(&state, &options(&url), now()).unwrap();
    assert_eq!(e.pinned_root_version, 2);
    assert_eq!(
        fingerprint(&std::fs::read(state.join(ROOT_FILE)).unwrap()),
        fingerprint(&r.v2)
    );
}

/// The key in the answer is taken only when the targets verified from the
/// trusted root endorse it for the tenant; otherwise nothing is stored.
#[test]
fn an_assignment_key_the_catalog_does_not_endorse_is_refused() {
    let f = fixture();
    let mut unendorsed = fixture();
    let swapped = |a: String| {
        let mut v: Value = serde_json::from_str(&a).unwrap();
        let k = Ed25519Signer::generate().unwrap();
        v["assignment_key"] = json!({"keyid": k.key_id(), "key": k.public_key()});
        v.to_string()
    };
    let without_timestamp: Vec<_> = f
        .served()
        .into_iter()
        .filter(|(n, _)| n != "timestamp.json")
        .collect();
    unendorsed
        .catalog
        .withdraw_endorsement(TENANT, now())
        .unwrap();
    type Case<'a> = (&'a str, &'a Fixture, bool, Vec<(String, Vec<u8>)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "a key swapped in the answer",
            &f,
            true,
            f.served(),
            "do not endorse assignment key",
        ),
        (
            "a catalog that endorses no key for the tenant",
            &unendorsed,
            false,
            unendorsed.served(),
            "they list no assignment-keys/00000000000000a1.json",
        ),
        (
            "metadata that does not refresh",
            &f,
            false,
            without_timestamp,
            "the catalog metadata does not verify from the trusted root",
        ),
    ];
    for (what, fx, swap, files, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let id = SystemId::load_or_create(&state).unwrap();
        let mut body = answer(fx, id.as_str(), &fx.root);
        if swap {
            body = swapped(body);
        }
        let (url, _) = serve("201 Created", body, files);
        let err = enroll(&state, &options(&url), now()).unwrap_err();
        assert!(
            matches!(
                err,
                EnrollError::KeyNotEndorsed(_) | EnrollError::Metadata(_)
            ),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(words), "{what}: {err}");
        assert!(
            err.to_string().contains("nothing was stored"),
            "{what}: {err}"
        );
        assert_eq!(listing(&state), ["system_id"], "{what}: nothing stored");
    }
}
