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
//! <keys>/{root,targets,snapshot,timestamp}.pem      ed25519 PKCS#8 PEM, mode 0600
//! ```
//!
//! Target files are not written here: the catalog stores blobs by sha256 and
//! serves them at [`consistent_target_path`](super::consistent_target_path).
//! A new repository has one ed25519 key and threshold 1 per role; root changes
//! ([`Repository::change_root`]) add, revoke and rotate keys and set k-of-n
//! thresholds. Root and targets keys can live offline ([`KeyPlacement`]): a
//! signing host signs targets, the serving host adopts them
//! ([`Repository::check_adoption`]) and signs snapshot and timestamp with the
//! only keys it holds. All writes are atomic (temp file, fsync, rename) and
//! `timestamp.json` is written last, so a reader never sees a timestamp that
//! points at missing files.

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

mod adopt;
mod keyring;
mod root_change;

pub use adopt::Adoption;
use keyring::{key_file, Keyring};
pub use root_change::{RootChange, RootChanged};

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

/// Where [`Repository::create_with_keys`] writes the keys it generates.
#[derive(Debug, Clone, Copy)]
pub struct KeyPlacement<'a> {
    /// The online keys (snapshot, timestamp): the serving host's key directory.
    pub online: &'a Path,
    /// The offline keys (root, targets); `None` puts them beside the online
    /// ones (a single host holding every key: development and demos).
    pub offline: Option<&'a Path>,
}

impl KeyPlacement<'_> {
    fn dir_for(&self, role: &str) -> &Path {
        match (self.offline, ONLINE_ROLES.contains(&role)) {
            (Some(offline), false) => offline,
            _ => self.online,
        }
    }
}

/// The roles the serving host signs with keys it holds: the others (root,
/// targets) can be kept offline.
pub const ONLINE_ROLES: [&str; 2] = ["snapshot", "timestamp"];

/// A TUF repository on disk with the signing keys found on this host.
#[derive(Debug)]
pub struct Repository {
    dir: PathBuf,
    config: RepositoryConfig,
    root: Signed<Root>,
    targets: Signed<Targets>,
    snapshot: Signed<Snapshot>,
    timestamp: Signed<Timestamp>,
    keys: Keyring,
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

fn check_keys_outside(repo_dir: &Path, keys_dirs: &[&Path]) -> Result<(), TufError> {
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| TufError::io(p, e));
    let repo = abs(repo_dir)?;
    for keys_dir in keys_dirs {
        if abs(keys_dir)?.starts_with(&repo) {
            return Err(TufError::Key {
                what: keys_dir.display().to_string(),
                reason: "a key directory must not be inside repo_dir (it would be published)"
                    .into(),
            });
        }
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
        let placement = KeyPlacement {
            online: keys_dir,
            offline: None,
        };
        Self::create_with_keys(repo_dir, placement, now, config)
    }

    /// [`Repository::create`] with the root and targets keys written to their
    /// own (offline) directory.
    pub fn create_with_keys(
        repo_dir: &Path,
        placement: KeyPlacement<'_>,
        now: DateTime<Utc>,
        config: RepositoryConfig,
    ) -> Result<Self, TufError> {
        let dirs: Vec<&Path> = [Some(placement.online), placement.offline]
            .into_iter()
            .flatten()
            .collect();
        check_keys_outside(repo_dir, &dirs)?;
        let meta_dir = repo_dir.join("metadata");
        if meta_dir.join("root.json").exists() {
            return Err(TufError::State(format!(
                "{}: repository already exists",
                meta_dir.display()
            )));
        }
        for role in TOP_LEVEL_ROLES {
            let path = key_file(placement.dir_for(role), role);
            if path.exists() {
                return Err(TufError::State(format!(
                    "{}: key file already exists",
                    path.display()
                )));
            }
        }
        std::fs::create_dir_all(&meta_dir).map_err(|e| TufError::io(&meta_dir, e))?;
        for dir in &dirs {
            crate::fsutil::create_private_dir(dir).map_err(|e| TufError::io(*dir, e))?;
        }
        let mut keys = Keyring::load(&dirs.iter().map(|d| d.to_path_buf()).collect::<Vec<_>>())?;
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
            let path = key_file(placement.dir_for(role), role);
            s.save(&path)?;
            root.keys.insert(s.key_id().into(), s.public_key().clone());
            root.roles.insert(role.into(), role_keys(&s));
            keys.add(role, path, s);
        }
        let root = Signed::sign(root.clone(), &keys.signers(&root, "root")?)?;
        let targets = Targets {
            type_: "targets".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires: expiry_from(now, config.targets_expiry),
            targets: BTreeMap::new(),
            delegations: None,
            extra: BTreeMap::new(),
        };
        let targets = Signed::sign(targets, &keys.signers(&root.signed, "targets")?)?;
        let mut repo = Repository {
            dir: repo_dir.to_path_buf(),
            config,
            // placeholders replaced by `write_snapshot_and_timestamp` below
            snapshot: Signed::sign(empty_snapshot(), &[])?,
            timestamp: Signed::sign(empty_timestamp(), &[])?,
            root,
            targets,
            keys,
        };
        repo.write_root()?;
        let bytes = repo.targets.to_json_bytes()?;
        repo.write("1.targets.json", &bytes)?;
        repo.write_snapshot_and_timestamp(meta_for(&bytes, 1), now, true)?;
        Ok(repo)
    }

    /// Opens an existing repository with the keys in `keys_dir`.
    pub fn open(repo_dir: &Path, keys_dir: &Path) -> Result<Self, TufError> {
        Self::open_with_keys(repo_dir, &[keys_dir.to_path_buf()])
    }

    /// Opens an existing repository with the keys found in `keys_dirs` (see
    /// the module documentation of `keyring`: `<role>.pem` in each). No key
    /// is required to open; signing without enough of a role's keys fails
    /// with [`TufError::MissingKeys`].
    ///
    /// On a host without a snapshot key (a signing host), targets newer than
    /// the snapshot names are picked up, so the next targets version follows
    /// them; a host with one goes by its snapshot.
    pub fn open_with_keys(repo_dir: &Path, keys_dirs: &[PathBuf]) -> Result<Self, TufError> {
        let dirs: Vec<&Path> = keys_dirs.iter().map(PathBuf::as_path).collect();
        check_keys_outside(repo_dir, &dirs)?;
        let md = repo_dir.join("metadata");
        let root: Signed<Root> = read_signed(&md, "root.json", "root")?;
        let timestamp: Signed<Timestamp> = read_signed(&md, "timestamp.json", "timestamp")?;
        let sv = timestamp.signed.snapshot_meta().version;
        let snapshot: Signed<Snapshot> =
            read_signed(&md, &format!("{sv}.snapshot.json"), "snapshot")?;
        let keys = Keyring::load(keys_dirs)?;
        let mut tv = snapshot.signed.meta["targets.json"].version;
        // Only a signing host (no snapshot key here) holds targets that no
        // snapshot names yet; a serving host goes by what it snapshotted,
        // whatever files appear beside it.
        if keys.files("snapshot").is_empty() {
            while md.join(format!("{}.targets.json", tv + 1)).is_file() {
                tv += 1;
            }
        }
        let targets: Signed<Targets> = read_signed(&md, &format!("{tv}.targets.json"), "targets")?;
        Ok(Repository {
            dir: repo_dir.to_path_buf(),
            config: RepositoryConfig::default(),
            root,
            targets,
            snapshot,
            timestamp,
            keys,
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

    /// Whether the root's threshold of `role` keys is on this host.
    pub fn can_sign(&self, role: &str) -> bool {
        self.keys.can_sign(&self.root.signed, role)
    }

    /// Fails with [`TufError::MissingKeys`] unless this host can sign `role`.
    pub fn require_keys(&self, role: &str) -> Result<(), TufError> {
        self.keys.signers(&self.root.signed, role).map(|_| ())
    }

    /// Key files on this host for `role` and whether root names each:
    /// `(path, key id, authorised)`.
    pub fn key_files(&self, role: &str) -> Vec<(PathBuf, String, bool)> {
        let authorised: Vec<&str> = self
            .root
            .signed
            .role(role)
            .map(|r| r.keyids.iter().map(String::as_str).collect())
            .unwrap_or_default();
        self.keys
            .files(role)
            .iter()
            .map(|f| {
                let id = f.signer.key_id();
                (f.path.clone(), id.to_owned(), authorised.contains(&id))
            })
            .collect()
    }

    /// Whether the snapshot names the newest targets (false on a signing host
    /// after it signed targets it cannot snapshot).
    pub fn targets_published(&self) -> bool {
        self.snapshot.signed.meta["targets.json"].version == self.targets.signed.version
    }

    /// When the targets metadata expires if it is due for re-signing at `now`
    /// and this host cannot sign it (its key is offline): someone must sign
    /// it on the signing host before then.
    pub fn targets_due_offline(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let expires = self.targets.signed.expires;
        (expires - now < self.config.targets_expiry / 2 && !self.can_sign("targets"))
            .then_some(expires)
    }

    /// Publishes `targets` (name → entry; every entry needs a `sha256` hash and a
    /// safe name) as targets version+1, then a new snapshot and timestamp when
    /// this host holds their keys. Delegations of the current targets are kept.
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
        let signed = Signed::sign(t, &self.keys.signers(&self.root.signed, "targets")?)?;
        let bytes = signed.to_json_bytes()?;
        let v = signed.signed.version;
        self.write(&format!("{v}.targets.json"), &bytes)?;
        self.targets = signed;
        // A host with no snapshot key file is a signing host: the serving
        // host snapshots these targets when it adopts them. Any other host
        // must snapshot them now, or fail saying which key is wrong.
        if !self.keys.files("snapshot").is_empty() {
            self.write_snapshot_and_timestamp(meta_for(&bytes, v), now, false)?;
        }
        Ok(())
    }

    /// Re-signs whatever is within half its period of expiry: targets (then
    /// snapshot and timestamp follow), snapshot (then timestamp), timestamp.
    /// Returns whether anything was published. Targets due while their key
    /// is offline are left to the signing host (see
    /// [`Repository::targets_due_offline`]) and the online roles are still
    /// refreshed. Root is only re-signed by a root change
    /// ([`Repository::change_root`]).
    pub fn refresh_timestamp(&mut self, now: DateTime<Utc>) -> Result<bool, TufError> {
        let due = |expires: DateTime<Utc>, period: Duration| expires - now < period / 2;
        if due(self.targets.signed.expires, self.config.targets_expiry) && self.can_sign("targets")
        {
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
        let signed = Signed::sign(s, &self.keys.signers(&self.root.signed, "snapshot")?)?;
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
        let signed = Signed::sign(t, &self.keys.signers(&self.root.signed, "timestamp")?)?;
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
