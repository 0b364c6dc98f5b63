//! Agent enrollment end to end: the real `updater-server` and the real
//! `update-agent` binary, over loopback HTTP.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tests::{agent_command, bin, copy_dir, text, Server};

const PASSWORD: &str = "correct horse battery staple";

/// `update-agent` with a clean installer environment.
fn agent(config: &Path, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = agent_command(config, state, args);
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn agent_enrolls_pins_the_root_and_clones_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let created = tests::tenant_with_admin(&data, "Acme", "ann@acme.example", PASSWORD);
    let (tenant_id, token) = (created.id, created.enrollment_token);
    let tenant = created.json;
    let server = Server::start(&data);

    // SERVER_URL from the installer's config file, TENANT_ID from the
    // command line, TENANT_TOKEN from the environment.
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "server_url = \"{}/\"\nbackend = \"simulated\"\n\n\
             [[simulated.devices]]\nprofile = \"headset_tolerant\"\n\n\
             [[simulated.devices]]\nhid = \"other_vendor_headset\"\n",
            server.base
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let out = agent(
        &config,
        &state,
        &["enroll", "--tenant-id", &tenant_id],
        &[("TENANT_TOKEN", &token)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("enrolled as agent "), "{stdout}");

    // What is stored, and how.
    assert_eq!(mode(&state), 0o700);
    for file in [
        "credential",
        "enrollment.json",
        "assignment_key.json",
        "system_id",
    ] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    let credential = fs::read_to_string(state.join("credential")).unwrap();
    assert!(credential.starts_with("upda_"), "{credential}");
    let enrollment: Value =
        serde_json::from_slice(&fs::read(state.join("enrollment.json")).unwrap()).unwrap();
    let agent_id = enrollment["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(enrollment["tenant"], tenant_id.as_str());
    assert_eq!(
        enrollment["server_url"],
        server.base.as_str(),
        "trailing slash trimmed"
    );
    assert_eq!(enrollment["suspected_clone"], false);
    assert_eq!(enrollment["assignment_key_id"], tenant["assignment_key_id"]);
    let system_id = fs::read_to_string(state.join("system_id")).unwrap();
    assert_eq!(enrollment["system_id"], system_id.trim());
    // The pinned root is the catalog's root.json, byte for byte, and its
    // fingerprint is what `tenant create` prints for the installer.
    let root = fs::read(state.join("metadata/root.json")).unwrap();
    assert_eq!(
        root,
        fs::read(data.join("catalog/repo/metadata/root.json")).unwrap()
    );
    let root = catalog::tuf::verify_self_signed_root("root", &root).unwrap();
    assert_eq!(
        catalog::tuf::root_fingerprint(&root),
        tenant["catalog_root_sha256"].as_str().unwrap()
    );
    // …and the TUF client the agent ships accepts it and refreshes from the server.
    let refresh = Command::new(bin("tuf-client"))
        .arg("--metadata-dir")
        .arg(state.join("metadata"))
        .args([
            "--metadata-url",
            &format!("{}/repo/metadata", server.base),
            "refresh",
        ])
        .output()
        .unwrap();
    assert!(refresh.status.success(), "{}", text(&refresh.stderr));

    // Status with the simulated backend.
    let out = agent(&config, &state, &["status", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["enrollment"]["agent_id"], agent_id.as_str());
    assert_eq!(status["backend"], "simulated");
    let mut products: Vec<&str> = status["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["product"].as_str().unwrap())
        .collect();
    products.sort();
    assert_eq!(products, ["Voyage 5200 USB headset", "Wireless headset 45"]);
    assert_eq!(status["pending_updates"], json!([]));

    // Same machine again: the same agent, a new credential.
    let out = agent(
        &config,
        &state,
        &["enroll"],
        &[("TENANT_ID", &tenant_id), ("TENANT_TOKEN", &token)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("re-enrolled as agent {agent_id}")));
    assert_ne!(
        fs::read_to_string(state.join("credential")).unwrap(),
        credential
    );

    // A wrong token: a clear message, nothing stored.
    let wrong_state = dir.path().join("wrong");
    let out = agent(
        &config,
        &wrong_state,
        &["enroll"],
        &[("TENANT_ID", &tenant_id), ("TENANT_TOKEN", "upde_wrong")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("refused the enrollment token") && err.contains("invalid_enrollment_token"),
        "{err}"
    );
    assert!(!wrong_state.exists(), "nothing stored");

    // The state directory copied to another machine (a base image): flagged.
    let clone_state = dir.path().join("clone");
    copy_dir(&state, &clone_state);
    let out = agent(
        &config,
        &clone_state,
        &["enroll", "--machine-fingerprint", "another-machine"],
        &[("TENANT_ID", &tenant_id), ("TENANT_TOKEN", &token)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("suspected clone of agent {agent_id}")),
        "{}",
        text(&out.stderr)
    );
    let clone: Value =
        serde_json::from_slice(&fs::read(clone_state.join("enrollment.json")).unwrap()).unwrap();
    assert_eq!(clone["suspected_clone"], true);
    assert_eq!(clone["clone_of"], agent_id.as_str());
    assert_ne!(clone["agent_id"], agent_id.as_str());
    assert_eq!(clone["system_id"], system_id.trim());

    // The admin sees both agents, the clone flagged.
    let http = reqwest::blocking::Client::new();
    let login: Value = serde_json::from_slice(
        &http
            .post(format!("{}/api/v1/login", server.base))
            .header("content-type", "application/json")
            .body(
                json!({"tenant": tenant_id, "email": "ann@acme.example", "password": PASSWORD})
                    .to_string(),
            )
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    let session = login["token"].as_str().expect("login token");
    let agents: Value = serde_json::from_slice(
        &http
            .get(format!("{}/api/v1/tenants/{tenant_id}/agents", server.base))
            .bearer_auth(session)
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    let agents = agents.as_array().expect("a list of agents");
    assert_eq!(agents.len(), 2, "{agents:#?}");
    let original = agents
        .iter()
        .find(|a| a["id"] == agent_id.as_str())
        .unwrap();
    assert_eq!(original["suspected_clone"], false);
    let flagged = agents
        .iter()
        .find(|a| a["id"] != agent_id.as_str())
        .unwrap();
    assert_eq!(flagged["suspected_clone"], true);
    assert_eq!(flagged["clone_of"], agent_id.as_str());
    assert_eq!(flagged["system_id"], system_id.trim());

    // Server gone: unreachable, said so.
    let base = server.base.clone();
    drop(server);
    let gone_state = dir.path().join("gone");
    let out = agent(
        &config,
        &gone_state,
        &["enroll", "--server-url", &base],
        &[("TENANT_ID", &tenant_id), ("TENANT_TOKEN", &token)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot reach the server at {base}/api/v1/enroll")),
        "{err}"
    );
    assert!(!gone_state.exists());
}

#[test]
fn the_installer_pins_the_catalog_root_and_plain_http_beyond_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = tests::tenant_with_admin(&data, "Acme", "ann@acme.example", PASSWORD);
    let server = Server::start(&data);
    let list = text(&tests::server_cli(&data, &["catalog", "keys", "list"], None).stdout);
    let pin = list
        .lines()
        .find_map(|l| l.strip_prefix("CATALOG_ROOT_SHA256="))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fingerprint in {list}"))
        .to_owned();
    assert_eq!(pin.len(), 64, "{pin}");
    let config = dir.path().join("agent.toml");
    fs::write(&config, "backend = \"simulated\"\n").unwrap();
    let enroll = |state: &str, url: &str, pin: &str| {
        agent(
            &config,
            &dir.path().join(state),
            &["enroll"],
            &[
                ("SERVER_URL", url),
                ("TENANT_ID", &created.id),
                ("TENANT_TOKEN", &created.enrollment_token),
                ("CATALOG_ROOT_SHA256", pin),
            ],
        )
    };
    // The right fingerprint: enrolled, the root pinned is the catalog's.
    let out = enroll("good", &server.base, &pin);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read(dir.path().join("good/metadata/root.json")).unwrap(),
        fs::read(data.join("catalog/repo/metadata/1.root.json")).unwrap()
    );
    // Another catalog's fingerprint (a man in the middle's root): refused.
    let other = "0".repeat(64);
    let out = enroll("mitm", &server.base, &other);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("is not trusted, nothing was stored"), "{err}");
    assert!(err.contains(&pin), "names the fingerprint found: {err}");
    assert!(!dir.path().join("mitm/credential").exists());
    // Plain http to a non-loopback address never sends the token.
    let out = enroll("plain", "http://updates.example.com", &pin);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("plain http is allowed only to a loopback address"),
        "{err}"
    );
    assert!(!dir.path().join("plain").exists());
}

/// With the targets key offline, the serving host cannot hand agents an
/// assignment key of its own: agents enroll only once the signing host has
/// endorsed the tenant's key, and a key swapped on the server afterwards is
/// refused at re-enrollment with nothing stored.
#[test]
fn only_an_assignment_key_the_offline_targets_key_endorsed_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let medium = dir.path().join("medium");
    let cli = |data: &Path, args: &[&str]| {
        let out = tests::server_cli(data, args, None);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    cli(
        &data,
        &[
            "catalog",
            "keys",
            "init",
            "--offline",
            medium.to_str().unwrap(),
        ],
    );
    let created = tests::tenant_with_admin(&data, "Acme", "ann@acme.example", PASSWORD);
    assert_eq!(created.json["assignment_key_endorsed"], false);
    let key_id = created.json["assignment_key_id"].as_str().unwrap();
    let config = dir.path().join("agent.toml");
    fs::write(&config, "backend = \"simulated\"\n").unwrap();
    let state = dir.path().join("state");
    let enroll = |base: &str| {
        agent(
            &config,
            &state,
            &["enroll"],
            &[
                ("SERVER_URL", base),
                ("TENANT_ID", &created.id),
                ("TENANT_TOKEN", &created.enrollment_token),
            ],
        )
    };

    let refused = |base: &str| {
        let out = enroll(base);
        assert!(!out.status.success());
        text(&out.stderr)
    };

    // Not endorsed yet: refused, and the error says what to do.
    let server = Server::start(&data);
    let err = refused(&server.base);
    assert!(
        err.contains(&format!(
            "do not endorse assignment key {} for tenant {}",
            key_id, created.id
        )) && err.contains("catalog endorse"),
        "{err}"
    );
    assert!(!state.join("credential").exists());

    // Endorsed on the signing host, published: taken.
    let doc = cli(&data, &["tenant", "assignment-key", &created.id]);
    let doc_file = dir.path().join("acme.key.json");
    fs::write(&doc_file, &doc).unwrap();
    let endorsed = cli(&medium, &["catalog", "endorse", doc_file.to_str().unwrap()]);
    assert!(
        endorsed.starts_with(&format!(
            "endorsed: assignment key {key_id} for tenant {}",
            created.id
        )),
        "{endorsed}"
    );
    cli(
        &data,
        &[
            "catalog",
            "publish",
            medium.join("catalog").to_str().unwrap(),
        ],
    );
    let out = enroll(&server.base);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pinned_key = fs::read(state.join("assignment_key.json")).unwrap();
    drop(server);

    // The serving host is taken over and its tenant key replaced: the
    // re-enrollment is refused and the pinned key stays.
    let key_file = data.join(format!("keys/tenants/{}/assignments.pem", created.id));
    let theirs = catalog::tuf::Ed25519Signer::generate().unwrap();
    fs::remove_file(&key_file).unwrap();
    theirs.save(&key_file).unwrap();
    let server = Server::start(&data);
    let err = refused(&server.base);
    assert!(
        err.contains(&format!(
            "do not endorse assignment key {} for tenant {} (they endorse key {key_id} instead)",
            theirs.key_id(),
            created.id,
        )),
        "{err}"
    );
    assert_eq!(
        fs::read(state.join("assignment_key.json")).unwrap(),
        pinned_key
    );
}

/// `SERVER_CERT_SHA256` pins the server's certificate for enrollment: the
/// right pin enrolls over TLS, another certificate's is refused before the
/// token is sent, with the fingerprint found in the message.
#[test]
fn the_installer_pins_the_server_certificate() {
    use rustls::pki_types::pem::PemObject;
    use sha2::Digest;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = tests::tenant_with_admin(&data, "Acme", "ann@acme.example", PASSWORD);
    let tls = dir.path().join("tls");
    let out = tests::server_cli(
        &data,
        &["tls", "self-signed", "--out", tls.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cert = tls.join("cert.pem");
    let der = rustls::pki_types::CertificateDer::from_pem_file(&cert).unwrap();
    let pin = hex::encode(sha2::Sha256::digest(der.as_ref()));
    let server = Server::start_with(
        &data,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            tls.join("key.pem").to_str().unwrap(),
        ],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "backend = \"simulated\"\nca_cert = {:?}\n",
            cert.to_str().unwrap()
        ),
    )
    .unwrap();
    let enroll = |state: &str, pin: &str| {
        agent(
            &config,
            &dir.path().join(state),
            &["enroll"],
            &[
                ("SERVER_URL", &server.base),
                ("TENANT_ID", &created.id),
                ("TENANT_TOKEN", &created.enrollment_token),
                ("SERVER_CERT_SHA256", pin),
            ],
        )
    };
    let out = enroll("pinned", &pin.to_ascii_uppercase());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("pinned/credential").exists());

    let other = "ab".repeat(32);
    let out = enroll("intercepted", &other);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "the server's certificate has SHA-256 {pin}, the installer pins {other}"
        )),
        "{err}"
    );
    assert!(!dir.path().join("intercepted/credential").exists());
}
