//! Shared helpers for the `tuf_*` integration tests (included with `#[path]`).
#![allow(dead_code, missing_debug_implementations)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use catalog::tuf::{
    consistent_target_path, Ed25519Signer, FileFetcher, MetaFile, Metadata, Repository,
    RepositoryConfig, Signed, Snapshot, TargetFile, Targets, Timestamp, Updater, UpdaterConfig,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use sha2::{Digest, Sha256};

/// The fixed creation time of every test repository.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// A repository, its keys and a client directory in one temp dir.
pub(crate) struct Env {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) repo: Repository,
}

impl Env {
    pub(crate) fn new() -> Self {
        Self::with_config(RepositoryConfig::default())
    }

    pub(crate) fn with_config(config: RepositoryConfig) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::create_with(
            &tmp.path().join("repo"),
            &tmp.path().join("keys"),
            t0(),
            config,
        )
        .unwrap();
        let env = Env { tmp, repo };
        std::fs::create_dir_all(env.client_dir()).unwrap();
        std::fs::copy(
            env.md().join("1.root.json"),
            env.client_dir().join("root.json"),
        )
        .unwrap();
        env
    }

    pub(crate) fn repo_dir(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }
    pub(crate) fn md(&self) -> PathBuf {
        self.repo_dir().join("metadata")
    }
    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.tmp.path().join("keys")
    }
    pub(crate) fn client_dir(&self) -> PathBuf {
        self.tmp.path().join("client")
    }
    pub(crate) fn out_dir(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    pub(crate) fn signer(&self, role: &str) -> Ed25519Signer {
        Ed25519Signer::load(&self.keys_dir().join(format!("{role}.pem"))).unwrap()
    }

    /// Publishes `files` (name -> content) and places each blob at its
    /// consistent-snapshot path under `repo/targets/`.
    pub(crate) fn publish(&mut self, files: &[(&str, &[u8])], now: DateTime<Utc>) {
        let mut map = BTreeMap::new();
        for (name, data) in files {
            let tf = TargetFile::from_data(data, Some(serde_json::json!({"hw": "1209:0001"})));
            self.place_blob(name, &tf, data);
            map.insert(name.to_string(), tf);
        }
        self.repo.publish_targets(map, now).unwrap();
    }

    pub(crate) fn place_blob(&self, name: &str, tf: &TargetFile, data: &[u8]) {
        let p = self
            .repo_dir()
            .join("targets")
            .join(consistent_target_path(name, tf).unwrap());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    /// Path of the blob a client requests for `name` in the current targets.
    pub(crate) fn blob_path(&self, name: &str) -> PathBuf {
        let tf = &self.repo.current_targets().targets[name];
        self.repo_dir()
            .join("targets")
            .join(consistent_target_path(name, tf).unwrap())
    }

    pub(crate) fn client(&self) -> Updater<FileFetcher> {
        self.client_with(UpdaterConfig::default())
    }

    pub(crate) fn client_with(&self, config: UpdaterConfig) -> Updater<FileFetcher> {
        Updater::new(
            &self.client_dir(),
            "metadata",
            FileFetcher::new(self.repo_dir()),
            config,
        )
        .unwrap()
    }

    /// Refresh, look up and download `name`; returns the downloaded bytes.
    pub(crate) fn fetch_target(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, catalog::tuf::TufError> {
        let mut c = self.client();
        c.refresh(now)?;
        let tf = c
            .target_info(name)?
            .ok_or_else(|| catalog::tuf::TufError::TargetNotFound(name.into()))?;
        let p = c.download_target(name, &tf, "targets", &self.out_dir())?;
        Ok(std::fs::read(p).unwrap())
    }

    pub(crate) fn read_md(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.md().join(file)).unwrap()
    }

    pub(crate) fn load<T: Metadata>(&self, file: &str) -> T {
        Signed::<T>::from_slice(file, &self.read_md(file))
            .unwrap()
            .signed
    }

    /// Signs `doc` with `signers` and writes it as `file`; returns the bytes.
    pub(crate) fn write_signed<T: Metadata>(
        &self,
        file: &str,
        doc: T,
        signers: &[&Ed25519Signer],
    ) -> Vec<u8> {
        let bytes = Signed::sign(doc, signers).unwrap().to_json_bytes().unwrap();
        std::fs::write(self.md().join(file), &bytes).unwrap();
        bytes
    }

    /// Writes a new snapshot (version+1) with `meta` entries merged in, and a new
    /// timestamp (version+1) pointing at it, signed with the genuine keys.
    pub(crate) fn resnapshot(&self, entries: BTreeMap<String, MetaFile>, now: DateTime<Utc>) {
        let ts: Timestamp = self.load("timestamp.json");
        let sv = ts.snapshot_meta().version;
        let mut snap: Snapshot = self.load(&format!("{sv}.snapshot.json"));
        snap.version += 1;
        snap.expires = now + Duration::days(7);
        snap.meta.extend(entries);
        let v = snap.version;
        let bytes = self.write_signed(
            &format!("{v}.snapshot.json"),
            snap,
            &[&self.signer("snapshot")],
        );
        self.retimestamp(meta_of(&bytes, v), now);
    }

    /// Writes timestamp version+1 pointing at `snapshot`.
    pub(crate) fn retimestamp(&self, snapshot: MetaFile, now: DateTime<Utc>) {
        let mut ts: Timestamp = self.load("timestamp.json");
        ts.version += 1;
        ts.expires = now + Duration::days(1);
        ts.meta.insert("snapshot.json".into(), snapshot);
        self.write_signed("timestamp.json", ts, &[&self.signer("timestamp")]);
    }

    /// Current top-level targets version and document.
    pub(crate) fn targets_doc(&self) -> Targets {
        self.repo.current_targets().clone()
    }
}

pub(crate) fn meta_of(bytes: &[u8], version: u64) -> MetaFile {
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(BTreeMap::from([(
            "sha256".to_string(),
            hex::encode(Sha256::digest(bytes)),
        )])),
        extra: BTreeMap::new(),
    }
}

pub(crate) fn version_only(version: u64) -> MetaFile {
    MetaFile {
        version,
        length: None,
        hashes: None,
        extra: BTreeMap::new(),
    }
}

pub(crate) fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}
