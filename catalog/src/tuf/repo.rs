//! The publishing side: a TUF repository in a directory.
//!
//! Layout (consistent snapshots):
//!
//! ```text
//! <repo_dir>/metadata/1.root.json, 2.root.json, …   every root version
//! <repo_dir>/metadata/root.json                      copy of the newest root
//! <repo_dir>/metadata/N.targets.json                 every targets version
//! <repo_dir>/metadata/N.snapshot.json                every snapshot version
//! <repo_dir>/metadata/timestamp.json                 the only file that changes in place
//! <keys_dir>/{root,targets,snapshot,timestamp}.pem  ed25519 PKCS#8 PEM, mode 0600
//! ```
//!
//! Target files are not written here: the catalog stores blobs by sha256 and
//! serves them at [`consistent_target_path`](super::consistent_target_path).
//! Every role has one ed25519 key and threshold 1. All writes are atomic
//! (temp file, fsync, rename) and `timestamp.json` is written last, so a reader
//! never sees a timestamp that points at missing files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::error::TufError;
use super::fs::write_atomic;
use super::metadata::{
    expiry_from, MetaFile, Metadata, RoleKeys, Root, Signed, Snapshot, TargetFile, Targets,
    Timestamp, SPEC_VERSION, TOP_LEVEL_ROLES,
};
use super::paths::consistent_target_path;
use super::signer::Ed25519Signer;

/// Expiry periods. A role is re-signed by [`Repository::refresh_timestamp`]
/// when less than half of its period remains.
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// Root expiry (default 365 days).
    pub root_expiry: Duration,
    /// Targets expiry (default 90 days).
    pub targets_expiry: Duration,
    /// Snapshot expiry (default 7 days).
    pub snapshot_expiry: Duration,
    /// Timestamp expiry (default 1 day).
    pub timestamp_expiry: Duration,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        RepositoryConfig {
            root_expiry: Duration::days(365),
            targets_expiry: Duration::days(90),
            snapshot_expiry: Duration::days(7),
            timestamp_expiry: Duration::days(1),
        }
    }
}

/// A TUF repository on disk with its signing keys.
#[derive(Debug)]
pub struct Repository {
    dir: PathBuf,
    keys_dir: PathBuf,
    config: RepositoryConfig,
    root: Signed<Root>,
    targets: Signed<Targets>,
    snapshot: Signed<Snapshot>,
    timestamp: Signed<Timestamp>,
    signers: BTreeMap<String, Ed25519Signer>,
}

fn key_file(keys_dir: &Path, role: &str) -> PathBuf {
    keys_dir.join(format!("{role}.pem"))
}

fn meta_for(bytes: &[u8], version: u64) -> MetaFile {
    let mut hashes = BTreeMap::new();
    hashes.insert("sha256".to_string(), hex::encode(Sha256::digest(bytes)));
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(hashes),
        extra: BTreeMap::new(),
    }
}

fn read_signed<T: Metadata>(dir: &Path, file: &str, role: &str) -> Result<Signed<T>, TufError> {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| TufError::io(&path, e))?;
    Signed::from_slice(role, &bytes)
}

fn check_keys_outside(repo_dir: &Path, keys_dir: &Path) -> Result<(), TufError> {
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| TufError::io(p, e));
    if abs(keys_dir)?.starts_with(abs(repo_dir)?) {
        return Err(TufError::Key {
            what: keys_dir.display().to_string(),
            reason: "keys_dir must not be inside repo_dir (it would be published)".into(),
        });
    }
    Ok(())
}

impl Repository {
    /// Creates `<repo_dir>/metadata/` with version 1 of all four roles (empty
    /// targets, consistent snapshots) and generates one ed25519 key per role
    /// into `keys_dir` (files mode 0600). Refuses to overwrite an existing
    /// repository or key files, and a `keys_dir` inside `repo_dir`.
    pub fn create(repo_dir: &Path, keys_dir: &Path, now: DateTime<Utc>) -> Result<Self, TufError> {
        Self::create_with(repo_dir, keys_dir, now, RepositoryConfig::default())
    }

    /// [`Repository::create`] with explicit expiry periods.
    pub fn create_with(
        repo_dir: &Path,
        keys_dir: &Path,
        now: DateTime<Utc>,
        config: RepositoryConfig,
    ) -> Result<Self, TufError> {
        check_keys_outside(repo_dir, keys_dir)?;
        let meta_dir = repo_dir.join("metadata");
        if meta_dir.join("root.json").exists() {
            return Err(TufError::State(format!(
                "{}: repository already exists",
                meta_dir.display()
            )));
        }
        for role in TOP_LEVEL_ROLES {
            if key_file(keys_dir, role).exists() {
                return Err(TufError::State(format!(
                    "{}: key file already exists",
                    key_file(keys_dir, role).display()
                )));
            }
        }
        std::fs::create_dir_all(&meta_dir).map_err(|e| TufError::io(&meta_dir, e))?;
        std::fs::create_dir_all(keys_dir).map_err(|e| TufError::io(keys_dir, e))?;
        let mut signers = BTreeMap::new();
        let mut root = Root {
            type_: "root".into(),
            spec_version: SPEC_VERSION.into(),
            consistent_snapshot: true,
            version: 1,
            expires: expiry_from(now, config.root_expiry),
            keys: BTreeMap::new(),
            roles: BTreeMap::new(),
            extra: BTreeMap::new(),
        };
        for role in TOP_LEVEL_ROLES {
            let s = Ed25519Signer::generate()?;
            s.save(&key_file(keys_dir, role))?;
            root.keys.insert(s.key_id().into(), s.public_key().clone());
            root.roles.insert(role.into(), role_keys(&s));
            signers.insert(role.to_string(), s);
        }
        let root = Signed::sign(root, &[&signers["root"]])?;
        let targets = Targets {
            type_: "targets".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires: expiry_from(now, config.targets_expiry),
            targets: BTreeMap::new(),
            delegations: None,
            extra: BTreeMap::new(),
        };
        let targets = Signed::sign(targets, &[&signers["targets"]])?;
        let mut repo = Repository {
            dir: repo_dir.to_path_buf(),
            keys_dir: keys_dir.to_path_buf(),
            config,
            // placeholders replaced by `commit` below
            snapshot: Signed::sign(empty_snapshot(), &[])?,
            timestamp: Signed::sign(empty_timestamp(), &[])?,
            root,
            targets,
            signers,
        };
        repo.write_root()?;
        let bytes = repo.targets.to_json_bytes()?;
        repo.write("1.targets.json", &bytes)?;
        repo.write_snapshot_and_timestamp(meta_for(&bytes, 1), now, true)?;
        Ok(repo)
    }

    /// Opens an existing repository and loads its keys, checking that each key
    /// is the one the current root authorises for its role.
    pub fn open(repo_dir: &Path, keys_dir: &Path) -> Result<Self, TufError> {
        check_keys_outside(repo_dir, keys_dir)?;
        let md = repo_dir.join("metadata");
        let root: Signed<Root> = read_signed(&md, "root.json", "root")?;
        let timestamp: Signed<Timestamp> = read_signed(&md, "timestamp.json", "timestamp")?;
        let sv = timestamp.signed.snapshot_meta().version;
        let snapshot: Signed<Snapshot> =
            read_signed(&md, &format!("{sv}.snapshot.json"), "snapshot")?;
        let tv = snapshot.signed.meta["targets.json"].version;
        let targets: Signed<Targets> = read_signed(&md, &format!("{tv}.targets.json"), "targets")?;
        let mut signers = BTreeMap::new();
        for role in TOP_LEVEL_ROLES {
            let s = Ed25519Signer::load(&key_file(keys_dir, role))?;
            if !root
                .signed
                .role(role)?
                .keyids
                .iter()
                .any(|k| k == s.key_id())
            {
                return Err(TufError::Key {
                    what: key_file(keys_dir, role).display().to_string(),
                    reason: format!(
                        "key {} is not a {role} key of root v{}",
                        s.key_id(),
                        root.signed.version
                    ),
                });
            }
            signers.insert(role.to_string(), s);
        }
        Ok(Repository {
            dir: repo_dir.to_path_buf(),
            keys_dir: keys_dir.to_path_buf(),
            config: RepositoryConfig::default(),
            root,
            targets,
            snapshot,
            timestamp,
            signers,
        })
    }

    /// Replaces the expiry periods used for future signing.
    pub fn set_config(&mut self, config: RepositoryConfig) {
        self.config = config;
    }

    /// `<repo_dir>/metadata`: the directory to serve as the metadata URL.
    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// The current root.
    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    /// The current top-level targets metadata.
    pub fn current_targets(&self) -> &Targets {
        &self.targets.signed
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot.signed
    }

    /// The current timestamp.
    pub fn timestamp(&self) -> &Timestamp {
        &self.timestamp.signed
    }

    /// Publishes `targets` (name → entry; every entry needs a `sha256` hash and a
    /// safe name) as targets version+1, then a new snapshot and timestamp.
    /// Delegations of the current targets are kept.
    pub fn publish_targets(
        &mut self,
        targets: BTreeMap<String, TargetFile>,
        now: DateTime<Utc>,
    ) -> Result<(), TufError> {
        for (name, t) in &targets {
            consistent_target_path(name, t)?;
        }
        let mut t = self.targets.signed.clone();
        t.targets = targets;
        self.commit_targets(t, now)
    }

    fn commit_targets(&mut self, mut t: Targets, now: DateTime<Utc>) -> Result<(), TufError> {
        t.version += 1;
        t.expires = expiry_from(now, self.config.targets_expiry);
        let signed = Signed::sign(t, &[&self.signers["targets"]])?;
        let bytes = signed.to_json_bytes()?;
        let v = signed.signed.version;
        self.write(&format!("{v}.targets.json"), &bytes)?;
        self.targets = signed;
        self.write_snapshot_and_timestamp(meta_for(&bytes, v), now, false)
    }

    /// Re-signs whatever is within half its period of expiry: targets (then
    /// snapshot and timestamp follow), snapshot (then timestamp), timestamp.
    /// Returns whether anything was published. Root is only re-signed by
    /// [`Repository::rotate_root`].
    pub fn refresh_timestamp(&mut self, now: DateTime<Utc>) -> Result<bool, TufError> {
        let due = |expires: DateTime<Utc>, period: Duration| expires - now < period / 2;
        if due(self.targets.signed.expires, self.config.targets_expiry) {
            self.commit_targets(self.targets.signed.clone(), now)?;
            return Ok(true);
        }
        if due(self.snapshot.signed.expires, self.config.snapshot_expiry) {
            let m = self.snapshot.signed.meta["targets.json"].clone();
            self.write_snapshot_and_timestamp(m, now, false)?;
            return Ok(true);
        }
        if due(self.timestamp.signed.expires, self.config.timestamp_expiry) {
            self.write_timestamp(now)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Root rotation: generates new keys for each role in `rotate` (any of
    /// `root`, `targets`, `snapshot`, `timestamp`; empty = just re-sign root
    /// with a new expiry) and publishes root version N+1, signed by the old
    /// root key AND the new root key, so clients can chain N→N+1. Old key files
    /// are kept as `<role>.pem.retired-v<N>`. Roles whose key changed are
    /// re-signed (targets → snapshot → timestamp) so the repository stays
    /// consistent.
    pub fn rotate_root(&mut self, rotate: &[&str], now: DateTime<Utc>) -> Result<(), TufError> {
        for r in rotate {
            if !TOP_LEVEL_ROLES.contains(r) {
                return Err(TufError::State(format!("rotate_root: unknown role {r:?}")));
            }
        }
        let old_version = self.root.signed.version;
        let mut root = self.root.signed.clone();
        root.version += 1;
        root.expires = expiry_from(now, self.config.root_expiry);
        let mut new_signers = BTreeMap::new();
        for role in rotate {
            let s = Ed25519Signer::generate()?;
            root.roles.insert(role.to_string(), role_keys(&s));
            new_signers.insert(role.to_string(), s);
        }
        // Keep exactly the keys some role still uses.
        let used: Vec<String> = root.roles.values().flat_map(|r| r.keyids.clone()).collect();
        root.keys.retain(|id, _| used.contains(id));
        for s in new_signers.values() {
            root.keys.insert(s.key_id().into(), s.public_key().clone());
        }
        let old_root_signer = &self.signers["root"];
        let new_root_signer = new_signers.get("root").unwrap_or(old_root_signer);
        let mut signers = vec![old_root_signer];
        if new_root_signer.key_id() != old_root_signer.key_id() {
            signers.push(new_root_signer);
        }
        let signed = Signed::sign(root, &signers)?;
        for (role, s) in &new_signers {
            let path = key_file(&self.keys_dir, role);
            let retired = self
                .keys_dir
                .join(format!("{role}.pem.retired-v{old_version}"));
            std::fs::rename(&path, &retired).map_err(|e| TufError::io(&path, e))?;
            s.save(&path)?;
        }
        self.root = signed;
        self.write_root()?;
        self.signers.extend(new_signers);
        if rotate.contains(&"targets") {
            self.commit_targets(self.targets.signed.clone(), now)?;
        } else if rotate.contains(&"snapshot") {
            let m = self.snapshot.signed.meta["targets.json"].clone();
            self.write_snapshot_and_timestamp(m, now, false)?;
        } else if rotate.contains(&"timestamp") {
            self.write_timestamp(now)?;
        }
        Ok(())
    }

    fn write(&self, file: &str, bytes: &[u8]) -> Result<(), TufError> {
        write_atomic(&self.metadata_dir().join(file), bytes, 0o644)
    }

    fn write_root(&self) -> Result<(), TufError> {
        let bytes = self.root.to_json_bytes()?;
        self.write(&format!("{}.root.json", self.root.signed.version), &bytes)?;
        self.write("root.json", &bytes)
    }

    fn write_snapshot_and_timestamp(
        &mut self,
        targets_meta: MetaFile,
        now: DateTime<Utc>,
        first: bool,
    ) -> Result<(), TufError> {
        let mut s = if first {
            empty_snapshot()
        } else {
            self.snapshot.signed.clone()
        };
        s.version += 1;
        s.expires = expiry_from(now, self.config.snapshot_expiry);
        s.meta.insert("targets.json".into(), targets_meta);
        let signed = Signed::sign(s, &[&self.signers["snapshot"]])?;
        let bytes = signed.to_json_bytes()?;
        let v = signed.signed.version;
        self.write(&format!("{v}.snapshot.json"), &bytes)?;
        self.snapshot = signed;
        if first {
            self.timestamp = Signed::sign(empty_timestamp(), &[])?;
        }
        self.timestamp.signed.meta =
            BTreeMap::from([("snapshot.json".into(), meta_for(&bytes, v))]);
        self.write_timestamp(now)
    }

    fn write_timestamp(&mut self, now: DateTime<Utc>) -> Result<(), TufError> {
        let mut t = self.timestamp.signed.clone();
        t.version += 1;
        t.expires = expiry_from(now, self.config.timestamp_expiry);
        let signed = Signed::sign(t, &[&self.signers["timestamp"]])?;
        self.write("timestamp.json", &signed.to_json_bytes()?)?;
        self.timestamp = signed;
        Ok(())
    }
}

fn role_keys(s: &Ed25519Signer) -> RoleKeys {
    RoleKeys {
        keyids: vec![s.key_id().to_string()],
        threshold: 1,
        extra: BTreeMap::new(),
    }
}

fn empty_snapshot() -> Snapshot {
    Snapshot {
        type_: "snapshot".into(),
        spec_version: SPEC_VERSION.into(),
        version: 0,
        expires: DateTime::<Utc>::UNIX_EPOCH,
        meta: BTreeMap::new(),
        extra: BTreeMap::new(),
    }
}

fn empty_timestamp() -> Timestamp {
    Timestamp {
        type_: "timestamp".into(),
        spec_version: SPEC_VERSION.into(),
        version: 0,
        expires: DateTime::<Utc>::UNIX_EPOCH,
        meta: BTreeMap::new(),
        extra: BTreeMap::new(),
    }
}
