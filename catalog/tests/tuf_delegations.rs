//! Delegation walk: preorder depth-first order, `paths` and
//! `path_hash_prefixes`, `terminating`, and the bound on visited roles.

#[path = "interop/tuf_common.rs"]
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;

use catalog::tuf::{
    Ed25519Signer, FetchError, Fetcher, FileFetcher, TargetFile, Targets, Updater, UpdaterConfig,
    SPEC_VERSION,
};
use chrono::Duration;
use common::{meta_of, t0, Env};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Records every URL asked for.
struct Recording {
    inner: FileFetcher,
    log: RefCell<Vec<String>>,
}

impl Fetcher for Recording {
    fn fetch(&self, url: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        self.log.borrow_mut().push(url.to_string());
        self.inner.fetch(url, max)
    }
    fn fetch_to(&self, url: &str, max: u64, out: &mut dyn Write) -> Result<u64, FetchError> {
        self.log.borrow_mut().push(url.to_string());
        self.inner.fetch_to(url, max, out)
    }
}

fn targets_doc(entries: &[(&str, &[u8])]) -> Targets {
    Targets {
        type_: "targets".into(),
        spec_version: SPEC_VERSION.into(),
        version: 1,
        expires: t0() + Duration::days(30),
        targets: entries
            .iter()
            .map(|(n, d)| (n.to_string(), TargetFile::from_data(d, None)))
            .collect(),
        delegations: None,
        extra: BTreeMap::new(),
    }
}

fn role(
    name: &str,
    key: &Ed25519Signer,
    terminating: bool,
    paths: serde_json::Value,
) -> serde_json::Value {
    let mut r =
        json!({"name": name, "keyids": [key.key_id()], "threshold": 1, "terminating": terminating});
    r.as_object_mut()
        .unwrap()
        .extend(paths.as_object().unwrap().clone());
    r
}

fn keys(signers: &[&Ed25519Signer]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for s in signers {
        m.insert(
            s.key_id().into(),
            serde_json::to_value(s.public_key()).unwrap(),
        );
    }
    serde_json::Value::Object(m)
}

/// targets -> [a (fw/*) -> [a1 (fw/x*)], b (fw/*, terminating), c (*, fw/*),
/// d (hash prefix of hp/z.bin)]
fn delegated_env() -> Env {
    let env = Env::new();
    let ka = Ed25519Signer::generate().unwrap();
    let kb = Ed25519Signer::generate().unwrap();
    let prefix = &hex::encode(Sha256::digest(b"hp/z.bin"))[..4];

    let mut top = env.targets_doc();
    top.version += 1;
    top.delegations = Some(
        serde_json::from_value(json!({
            "keys": keys(&[&ka, &kb]),
            "roles": [
                role("a", &ka, false, json!({"paths": ["fw/*"]})),
                role("b", &kb, true, json!({"paths": ["fw/*"]})),
                role("c", &ka, false, json!({"paths": ["*", "fw/*"]})),
                role("d", &kb, false, json!({"path_hash_prefixes": [prefix]})),
            ]
        }))
        .unwrap(),
    );
    let mut a = targets_doc(&[]);
    a.delegations = Some(
        serde_json::from_value(json!({
            "keys": keys(&[&kb]),
            "roles": [role("a1", &kb, false, json!({"paths": ["fw/x*"]}))]
        }))
        .unwrap(),
    );
    let a1 = targets_doc(&[("fw/x.bin", b"from a1")]);
    let b = targets_doc(&[("fw/x.bin", b"from b"), ("fw/only-b.bin", b"b")]);
    let c = targets_doc(&[("fw/y.bin", b"from c"), ("other.bin", b"other from c")]);
    let d = targets_doc(&[("hp/z.bin", b"hashed")]);

    let mut meta = BTreeMap::new();
    let tv = top.version;
    let bytes = env.write_signed(
        &format!("{tv}.targets.json"),
        top,
        &[&env.signer("targets")],
    );
    meta.insert("targets.json".to_string(), meta_of(&bytes, tv));
    for (name, doc, key) in [
        ("a", a, &ka),
        ("a1", a1, &kb),
        ("b", b, &kb),
        ("c", c, &ka),
        ("d", d, &kb),
    ] {
        let bytes = env.write_signed(&format!("1.{name}.json"), doc, &[key]);
        meta.insert(format!("{name}.json"), meta_of(&bytes, 1));
    }
    env.resnapshot(meta, t0());
    env
}

fn client(env: &Env, config: UpdaterConfig) -> Updater<Recording> {
    let mut c = Updater::new(
        &env.client_dir(),
        "metadata",
        Recording {
            inner: FileFetcher::new(env.repo_dir()),
            log: RefCell::new(Vec::new()),
        },
        config,
    )
    .unwrap();
    c.refresh(t0() + Duration::hours(1)).unwrap();
    c
}

fn hash_of(t: &TargetFile) -> &str {
    &t.hashes["sha256"]
}

#[test]
fn preorder_depth_first_order() {
    let env = delegated_env();
    let mut c = client(&env, UpdaterConfig::default());
    let t = c.target_info("fw/x.bin").unwrap().unwrap();
    // a1 (child of a) is searched before b.
    assert_eq!(hash_of(&t), hex::encode(Sha256::digest(b"from a1")));
    let fetched: Vec<String> = c_log(&c);
    assert!(
        fetched.ends_with(&[
            "metadata/1.a.json".to_string(),
            "metadata/1.a1.json".to_string()
        ]),
        "{fetched:?}"
    );
    assert!(!fetched.iter().any(|u| u.contains(".b.json")));
    for f in ["a.json", "a1.json"] {
        assert!(env.client_dir().join(f).exists(), "{f} not persisted");
    }
}

fn c_log(c: &Updater<Recording>) -> Vec<String> {
    c.fetcher().log.borrow().clone()
}

#[test]
fn terminating_role_stops_the_search() {
    let env = delegated_env();
    let mut c = client(&env, UpdaterConfig::default());
    // Only b (terminating) among the fw/* roles has it.
    let t = c.target_info("fw/only-b.bin").unwrap().unwrap();
    assert_eq!(hash_of(&t), hex::encode(Sha256::digest(b"b")));
    // c lists fw/y.bin and its paths match, but b comes first, matches and is
    // terminating: the search ends without visiting c.
    assert_eq!(c.target_info("fw/y.bin").unwrap(), None);
    assert!(
        !c_log(&c).iter().any(|u| u.contains(".c.json")),
        "{:?}",
        c_log(&c)
    );
}

#[test]
fn paths_and_hash_prefixes_select_roles() {
    let env = delegated_env();
    let mut c = client(&env, UpdaterConfig::default());
    let t = c.target_info("other.bin").unwrap().unwrap();
    assert_eq!(hash_of(&t), hex::encode(Sha256::digest(b"other from c")));
    // a and b do not match "other.bin": never fetched.
    let log = c_log(&c);
    assert!(
        !log.iter()
            .any(|u| u.contains(".a.json") || u.contains(".b.json")),
        "{log:?}"
    );
    let t = c.target_info("hp/z.bin").unwrap().unwrap();
    assert_eq!(hash_of(&t), hex::encode(Sha256::digest(b"hashed")));
}

#[test]
fn max_delegations_bounds_the_walk() {
    let env = delegated_env();
    let cfg = UpdaterConfig {
        max_delegations: 2,
        ..UpdaterConfig::default()
    };
    let mut c = client(&env, cfg);
    // Needs targets, a, a1 (3 roles): not reached with a bound of 2.
    assert_eq!(c.target_info("fw/x.bin").unwrap(), None);
    assert!(!c_log(&c).iter().any(|u| u.contains(".a1.json")));
}

#[test]
fn delegated_role_signed_by_wrong_key_is_refused() {
    let env = delegated_env();
    // Replace a1 with a version signed by an unknown key (same version).
    let evil = Ed25519Signer::generate().unwrap();
    let bytes = env.write_signed("1.a1.json", targets_doc(&[("fw/x.bin", b"evil")]), &[&evil]);
    env.resnapshot(
        BTreeMap::from([("a1.json".to_string(), meta_of(&bytes, 1))]),
        t0(),
    );
    let mut c = client(&env, UpdaterConfig::default());
    let err = c.target_info("fw/x.bin").unwrap_err();
    assert!(
        matches!(&err, catalog::tuf::TufError::Threshold { role, valid: 0, .. } if role == "a1"),
        "{err}"
    );
}
