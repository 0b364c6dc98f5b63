//! The TUF client workflow (spec section 5, "Detailed client workflow").
//!
//! [`Updater::new`] loads the trusted `root.json` from the local metadata
//! directory; [`Updater::refresh`] updates root (chaining N→N+1), timestamp,
//! snapshot and top-level targets; [`Updater::target_info`] walks delegations;
//! [`Updater::download_target`] fetches and verifies a target file.
//!
//! Only verified metadata is written to the metadata directory, atomically,
//! under unversioned names (`root.json`, `timestamp.json`, `snapshot.json`,
//! `targets.json`, and `quote(role).json` for delegated roles).

mod fetch;
mod hashes;
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub use fetch::{copy_bounded, Fetcher, FileFetcher};

use super::error::{FetchError, TufError};
use super::fs::write_atomic;
use super::keys::PublicKey;
use super::metadata::{
    check_expiry, MetaFile, Metadata, Root, Signed, Snapshot, Targets, Timestamp,
};
use super::paths::{quote, role_file_name};
use super::verify::{verify_next_root, verify_self_signed_root};
use hashes::check_bytes;

/// Limits of the client.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Maximum root versions chained in one refresh (default 256).
    pub max_root_rotations: u32,
    /// Maximum targets roles visited in one target lookup (default 32).
    pub max_delegations: u32,
    /// Maximum size of a root file (default 512 000).
    pub root_max_length: u64,
    /// Maximum size of timestamp.json (default 16 384).
    pub timestamp_max_length: u64,
    /// Maximum size of snapshot when its length is not signed (default 2 000 000).
    pub snapshot_max_length: u64,
    /// Maximum size of a targets role when its length is not signed (default 5 000 000).
    pub targets_max_length: u64,
}

impl Default for UpdaterConfig {
    fn default() -> Self {
        UpdaterConfig {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_length: 512_000,
            timestamp_max_length: 16_384,
            snapshot_max_length: 2_000_000,
            targets_max_length: 5_000_000,
        }
    }
}

/// A TUF client bound to one repository and one local metadata directory.
#[derive(Debug)]
pub struct Updater<F> {
    dir: PathBuf,
    metadata_base: String,
    fetcher: F,
    config: UpdaterConfig,
    now: Option<DateTime<Utc>>,
    root: Signed<Root>,
    timestamp: Option<Signed<Timestamp>>,
    snapshot: Option<Signed<Snapshot>>,
    /// Verified targets roles of this refresh, by role name ("targets" + delegated).
    targets: BTreeMap<String, Signed<Targets>>,
}

/// Joins a base URL (possibly empty) and a relative path with one `/`.
pub(crate) fn join_url(base: &str, rel: &str) -> String {
    if base.is_empty() {
        rel.to_string()
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}

impl<F: Fetcher> Updater<F> {
    /// Loads and self-verifies `<metadata_dir>/root.json`. `metadata_base` is the
    /// URL (or relative path for [`FileFetcher`]) of the repository's metadata.
    pub fn new(
        metadata_dir: &Path,
        metadata_base: &str,
        fetcher: F,
        config: UpdaterConfig,
    ) -> Result<Self, TufError> {
        let path = metadata_dir.join("root.json");
        let bytes = std::fs::read(&path).map_err(|e| TufError::io(&path, e))?;
        let root = verify_self_signed_root("root (trusted)", &bytes)?;
        Ok(Updater {
            dir: metadata_dir.to_path_buf(),
            metadata_base: metadata_base.to_string(),
            fetcher,
            config,
            now: None,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
        })
    }

    /// The fetcher this client uses.
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }

    /// The trusted root.
    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    /// The trusted timestamp, after a successful refresh.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.timestamp.as_ref().map(|s| &s.signed)
    }

    /// The trusted snapshot, after a successful refresh.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref().map(|s| &s.signed)
    }

    /// The trusted top-level targets, after a successful refresh.
    pub fn targets(&self) -> Option<&Targets> {
        self.targets.get("targets").map(|s| &s.signed)
    }

    /// Runs the refresh workflow with `now` as the fixed reference time for all
    /// expiry checks. On error nothing unverified has been persisted.
    pub fn refresh(&mut self, now: DateTime<Utc>) -> Result<(), TufError> {
        self.now = Some(now);
        self.timestamp = None;
        self.snapshot = None;
        self.targets.clear();
        self.update_root(now)?;
        let (local_ts, local_snap, local_targets) = self.load_local_top_level();
        self.update_timestamp(local_ts, now)?;
        self.update_snapshot(local_snap, now)?;
        let role = self.root.signed.role("targets")?.clone();
        let keys = self.root.signed.keys.clone();
        self.load_targets_role(
            "targets",
            &keys,
            &role.keyids,
            role.threshold,
            local_targets,
        )?;
        Ok(())
    }

    fn fetch_meta(&self, what: &str, rel: &str, max_len: u64) -> Result<Vec<u8>, TufError> {
        let url = join_url(&self.metadata_base, rel);
        let data = self
            .fetcher
            .fetch(&url, max_len)
            .map_err(|source| TufError::Fetch {
                what: what.to_string(),
                source,
            })?;
        if data.len() as u64 > max_len {
            return Err(TufError::Fetch {
                what: what.to_string(),
                source: FetchError::TooLong { url, max_len },
            });
        }
        Ok(data)
    }

    fn persist(&self, role: &str, data: &[u8]) -> Result<(), TufError> {
        write_atomic(&self.dir.join(role_file_name(role)), data, 0o644)
    }

    fn remove_local(&self, role: &str) {
        let _ = std::fs::remove_file(self.dir.join(role_file_name(role)));
    }

    /// 5.3: chain root versions N→N+1 while the repository has them.
    fn update_root(&mut self, now: DateTime<Utc>) -> Result<(), TufError> {
        for _ in 0..self.config.max_root_rotations {
            let next = self.root.signed.version + 1;
            let what = format!("root v{next}");
            let bytes = match self.fetch_meta(
                &what,
                &format!("{next}.root.json"),
                self.config.root_max_length,
            ) {
                Ok(b) => b,
                Err(TufError::Fetch {
                    source: FetchError::NotFound { .. },
                    ..
                }) => break,
                Err(e) => return Err(e),
            };
            let new = verify_next_root(&self.root.signed, &bytes)?;
            self.persist("root", &bytes)?;
            self.root = new;
        }
        check_expiry("root", &self.root.signed, now)
    }

    /// Loads local top-level metadata that still verifies under the trusted
    /// root. Implements fast-forward attack recovery: metadata whose keys were
    /// rotated away no longer verifies and is deleted, with its dependants
    /// (targets → snapshot → timestamp), so that its fast-forwarded versions
    /// no longer block the recovered repository.
    fn load_local_top_level(&self) -> LocalTopLevel {
        let keys = &self.root.signed.keys;
        let targets = self.load_local::<Targets>("targets", keys);
        let mut snapshot = self.load_local::<Snapshot>("snapshot", keys);
        if matches!(targets, Local::Rejected) {
            self.remove_local("targets");
            self.remove_local("snapshot");
            snapshot = Local::Missing;
        }
        let mut timestamp = self.load_local::<Timestamp>("timestamp", keys);
        if matches!(snapshot, Local::Rejected) {
            self.remove_local("snapshot");
            self.remove_local("timestamp");
            timestamp = Local::Missing;
        }
        if matches!(timestamp, Local::Rejected) {
            self.remove_local("timestamp");
        }
        (timestamp.ok(), snapshot.ok(), targets.ok())
    }

    fn load_local<T: Metadata>(&self, role: &str, keys: &BTreeMap<String, PublicKey>) -> Local<T> {
        let Ok(bytes) = std::fs::read(self.dir.join(role_file_name(role))) else {
            return Local::Missing;
        };
        let Ok(doc) = Signed::<T>::from_slice(role, &bytes) else {
            return Local::Rejected;
        };
        let Ok(r) = self.root.signed.role(role) else {
            return Local::Rejected;
        };
        match doc.verify(role, keys, &r.keyids, r.threshold) {
            Ok(()) => Local::Valid(doc),
            Err(_) => Local::Rejected,
        }
    }

    /// 5.4: timestamp.
    fn update_timestamp(
        &mut self,
        trusted: Option<Signed<Timestamp>>,
        now: DateTime<Utc>,
    ) -> Result<(), TufError> {
        let bytes = self.fetch_meta(
            "timestamp",
            "timestamp.json",
            self.config.timestamp_max_length,
        )?;
        let new = Signed::<Timestamp>::from_slice("timestamp", &bytes)?;
        let r = self.root.signed.role("timestamp")?;
        new.verify("timestamp", &self.root.signed.keys, &r.keyids, r.threshold)?;
        let mut keep_trusted = false;
        if let Some(old) = &trusted {
            if new.signed.version < old.signed.version {
                return Err(TufError::Rollback {
                    role: "timestamp".into(),
                    trusted: old.signed.version,
                    new: new.signed.version,
                });
            }
            let (o, n) = (old.signed.snapshot_meta(), new.signed.snapshot_meta());
            if n.version < o.version {
                return Err(TufError::Rollback {
                    role: "snapshot.json in timestamp".into(),
                    trusted: o.version,
                    new: n.version,
                });
            }
            keep_trusted = new.signed.version == old.signed.version;
        }
        let ts = match (keep_trusted, trusted) {
            (true, Some(old)) => old,
            _ => new,
        };
        check_expiry("timestamp", &ts.signed, now)?;
        if !keep_trusted {
            self.persist("timestamp", &bytes)?;
        }
        self.timestamp = Some(ts);
        Ok(())
    }

    /// 5.5: snapshot.
    fn update_snapshot(
        &mut self,
        local: Option<Signed<Snapshot>>,
        now: DateTime<Utc>,
    ) -> Result<(), TufError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or_else(|| TufError::State("snapshot before timestamp".into()))?;
        let meta = ts.signed.snapshot_meta().clone();
        if let Some(l) = &local {
            if l.signed.version == meta.version && check_expiry("snapshot", &l.signed, now).is_ok()
            {
                self.snapshot = local;
                return Ok(());
            }
        }
        let rel = if self.root.signed.consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            "snapshot.json".to_string()
        };
        let max = meta.length.unwrap_or(self.config.snapshot_max_length);
        let bytes = self.fetch_meta("snapshot", &rel, max)?;
        check_bytes("snapshot", &bytes, meta.length, meta.hashes.as_ref())?;
        let new = Signed::<Snapshot>::from_slice("snapshot", &bytes)?;
        let r = self.root.signed.role("snapshot")?;
        new.verify("snapshot", &self.root.signed.keys, &r.keyids, r.threshold)?;
        expect_version("snapshot", &new.signed, &meta)?;
        if let Some(old) = &local {
            for (name, m) in &old.signed.meta {
                let Some(n) = new.signed.meta.get(name) else {
                    return Err(TufError::Rollback {
                        role: format!("{name} in snapshot (removed)"),
                        trusted: m.version,
                        new: 0,
                    });
                };
                if n.version < m.version {
                    return Err(TufError::Rollback {
                        role: format!("{name} in snapshot"),
                        trusted: m.version,
                        new: n.version,
                    });
                }
            }
        }
        check_expiry("snapshot", &new.signed, now)?;
        self.persist("snapshot", &bytes)?;
        self.snapshot = Some(new);
        Ok(())
    }

    /// 5.6 (top-level) and 5.6.7 (delegated): loads and verifies a targets role
    /// listed in the trusted snapshot, signed by `threshold` of `keyids`.
    fn load_targets_role(
        &mut self,
        role: &str,
        keys: &BTreeMap<String, PublicKey>,
        keyids: &[String],
        threshold: u32,
        local: Option<Signed<Targets>>,
    ) -> Result<(), TufError> {
        let now = self
            .now
            .ok_or_else(|| TufError::State("refresh() must run first".into()))?;
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or_else(|| TufError::State("targets before snapshot".into()))?;
        let meta = snapshot
            .signed
            .meta
            .get(&format!("{role}.json"))
            .cloned()
            .ok_or_else(|| TufError::malformed(role, "role not listed in snapshot meta"))?;
        if let Some(l) = local {
            if l.signed.version == meta.version
                && l.verify(role, keys, keyids, threshold).is_ok()
                && check_expiry(role, &l.signed, now).is_ok()
            {
                self.targets.insert(role.to_string(), l);
                return Ok(());
            }
        }
        let rel = if self.root.signed.consistent_snapshot {
            format!("{}.{}.json", meta.version, quote(role))
        } else {
            role_file_name(role)
        };
        let max = meta.length.unwrap_or(self.config.targets_max_length);
        let bytes = self.fetch_meta(role, &rel, max)?;
        check_bytes(role, &bytes, meta.length, meta.hashes.as_ref())?;
        let new = Signed::<Targets>::from_slice(role, &bytes)?;
        new.verify(role, keys, keyids, threshold)?;
        expect_version(role, &new.signed, &meta)?;
        check_expiry(role, &new.signed, now)?;
        self.persist(role, &bytes)?;
        self.targets.insert(role.to_string(), new);
        Ok(())
    }
}

type LocalTopLevel = (
    Option<Signed<Timestamp>>,
    Option<Signed<Snapshot>>,
    Option<Signed<Targets>>,
);

enum Local<T> {
    Missing,
    Rejected,
    Valid(Signed<T>),
}

impl<T> Local<T> {
    fn ok(self) -> Option<Signed<T>> {
        match self {
            Local::Valid(v) => Some(v),
            _ => None,
        }
    }
}

fn expect_version<T: Metadata>(role: &str, doc: &T, meta: &MetaFile) -> Result<(), TufError> {
    if doc.version() != meta.version {
        return Err(TufError::WrongVersion {
            role: role.to_string(),
            found: doc.version(),
            expected: meta.version,
        });
    }
    Ok(())
}
