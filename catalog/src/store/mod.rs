//! The catalog on disk: blobs, the release index and the signed repository,
//! changed together under one lock.
//!
//! ```text
//! <root>/blobs/            content-addressed blob store
//! <root>/releases.json     the release index (written atomically)
//! <root>/repo/metadata/    TUF metadata, consistent snapshots
//! <root>/.lock             held while a change is made
//! <keys>/                  signing keys (mode 0600), outside <root>
//! ```
//!
//! Every change takes the lock, re-reads the index (another process may have
//! changed it), writes the index, and publishes new TUF metadata.
//!
//! With the targets key offline, releases are imported on a signing host
//! into its own copy of the catalog, and the serving host adopts what it
//! signed with [`Catalog::publish_from`] (`publish`).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::assignment::KeyEndorsement;
use crate::blob::{BlobError, BlobStore, GcReport};
use crate::digest::Sha256Digest;
use crate::import::{self, ImportError, ImportOptions, Payload};
use crate::package::{slug, FirmwareRelease};
use crate::tuf::{self, KeyPlacement, Repository, TargetFile, TufError};

mod backup;
mod endorse;
mod publish;

pub use backup::CatalogBackup;
pub use publish::Published;

/// Errors of catalog operations.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// IO on the catalog's own files.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A refused import.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A blob store problem.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A signing / metadata problem.
    #[error(transparent)]
    Tuf(#[from] TufError),
    /// The release index does not parse.
    #[error("{path}: corrupt release index: {why}")]
    CorruptIndex {
        /// The index file.
        path: PathBuf,
        /// The parser's message.
        why: String,
    },
    /// The same target name with other content or other metadata.
    #[error("{target} is already in the catalog with {what} ({existing}); import it under another version or file name")]
    Conflict {
        /// The target name.
        target: String,
        /// The digest already stored.
        existing: Sha256Digest,
        /// What differs: "different content", or the metadata fields.
        what: String,
    },
    /// No such release.
    #[error("no release matches {0:?}")]
    NotFound(String),
    /// More than one release matches.
    #[error("{query:?} matches {count} releases; be more specific")]
    Ambiguous {
        /// What was asked.
        query: String,
        /// How many matched.
        count: usize,
    },
    /// A change that needs the targets key, on a host without it.
    #[error("the targets key is not on this host, so releases are signed on the signing host: import or remove there (`--data <signing copy> catalog import …`), then `catalog publish <signing copy>/catalog` here ({0})")]
    SignedElsewhere(#[source] TufError),
    /// A trusted vendor key is unusable.
    #[error(transparent)]
    VendorKey(#[from] import::VendorKeyError),
    /// The catalog directory was never initialised.
    #[error("{0} is not an initialised catalog (run `catalog keys init` first)")]
    NotInitialised(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CatalogError + '_ {
    move |source| CatalogError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    releases: Vec<FirmwareRelease>,
    /// The tenants' assignment keys the targets role vouches for (see
    /// [`KeyEndorsement`]), one per tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    assignment_keys: Vec<KeyEndorsement>,
}

/// The firmware catalog.
#[derive(Debug)]
pub struct Catalog {
    root: PathBuf,
    keys_dirs: Vec<PathBuf>,
    blobs: BlobStore,
    index: Index,
}

/// Result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The release as stored.
    pub release: FirmwareRelease,
    /// False if an identical release was already there (nothing changed).
    pub added: bool,
}

impl Catalog {
    /// Creates a catalog (blob store, empty signed repository, fresh keys in
    /// `keys_dir`). Fails if one already exists at `root`.
    pub fn init(root: &Path, keys_dir: &Path, now: DateTime<Utc>) -> Result<Self, CatalogError> {
        let placement = KeyPlacement {
            online: keys_dir,
            offline: None,
        };
        Self::init_with_keys(root, placement, now)
    }

    /// [`Catalog::init`] with the root and targets keys written to their own
    /// (offline) directory; the catalog opened here has only the online keys.
    pub fn init_with_keys(
        root: &Path,
        keys: KeyPlacement<'_>,
        now: DateTime<Utc>,
    ) -> Result<Self, CatalogError> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        let _lock = lock(root)?;
        let repo_dir = root.join("repo");
        Repository::create_with_keys(&repo_dir, keys, now, Default::default())?;
        let blobs = BlobStore::open(root.join("blobs"))?;
        let catalog = Self {
            root: root.to_owned(),
            keys_dirs: vec![keys.online.to_owned()],
            blobs,
            index: Index::default(),
        };
        // The new repository already signs the (empty) release list.
        catalog.write_index()?;
        Ok(catalog)
    }

    /// Opens an existing catalog.
    pub fn open(root: &Path, keys_dir: &Path) -> Result<Self, CatalogError> {
        if !root
            .join("repo")
            .join("metadata")
            .join("1.root.json")
            .is_file()
        {
            return Err(CatalogError::NotInitialised(root.to_owned()));
        }
        let blobs = BlobStore::open(root.join("blobs"))?;
        let mut catalog = Self {
            root: root.to_owned(),
            keys_dirs: vec![keys_dir.to_owned()],
            blobs,
            index: Index::default(),
        };
        catalog.reload()?;
        Ok(catalog)
    }

    /// Opens the catalog, creating it first if it does not exist.
    pub fn open_or_init(
        root: &Path,
        keys_dir: &Path,
        now: DateTime<Utc>,
    ) -> Result<Self, CatalogError> {
        match Self::open(root, keys_dir) {
            Err(CatalogError::NotInitialised(_)) => Self::init(root, keys_dir, now),
            other => other,
        }
    }

    /// Adds key directories searched for signing keys after the catalog's
    /// own (the offline root and targets keys, mounted for a ceremony).
    pub fn with_signing_keys(mut self, dirs: &[PathBuf]) -> Self {
        self.keys_dirs.extend(dirs.iter().cloned());
        self
    }

    /// The catalog directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The signed repository directory (its `metadata/` is what mirrors copy).
    pub fn repo_dir(&self) -> PathBuf {
        self.root.join("repo")
    }

    /// The signed metadata directory.
    pub fn metadata_dir(&self) -> PathBuf {
        self.repo_dir().join("metadata")
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// All releases, in import order.
    pub fn releases(&self) -> &[FirmwareRelease] {
        &self.index.releases
    }

    /// `<root>/vendor-keys/`: the vendor keys trusted for cabinet
    /// signatures (`<name>.ed25519`, raw 32-byte ed25519 public keys).
    pub fn vendor_keys_dir(&self) -> PathBuf {
        self.root.join("vendor-keys")
    }

    /// The trusted vendor keys.
    pub fn vendor_keys(&self) -> Result<Vec<import::VendorKey>, CatalogError> {
        Ok(import::VendorKey::load_dir(&self.vendor_keys_dir())?)
    }

    /// Re-reads the index from disk.
    pub fn reload(&mut self) -> Result<(), CatalogError> {
        let path = self.root.join("releases.json");
        self.index = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| CatalogError::CorruptIndex {
                    path: path.clone(),
                    why: e.to_string(),
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(())
    }

    /// Finds one release by target name, name prefix or sha256 prefix
    /// (at least 8 hex characters).
    pub fn find(&self, query: &str) -> Result<&FirmwareRelease, CatalogError> {
        if let Some(r) = self.index.releases.iter().find(|r| r.target_name == query) {
            return Ok(r);
        }
        let matches: Vec<&FirmwareRelease> = self
            .index
            .releases
            .iter()
            .filter(|r| {
                r.target_name.starts_with(query)
                    || (query.len() >= 8 && r.sha256.to_hex().starts_with(query))
            })
            .collect();
        match matches[..] {
            [one] => Ok(one),
            [] => Err(CatalogError::NotFound(query.to_owned())),
            _ => Err(CatalogError::Ambiguous {
                query: query.to_owned(),
                count: matches.len(),
            }),
        }
    }

    /// The release with exactly this target name.
    pub fn get(&self, target_name: &str) -> Option<&FirmwareRelease> {
        self.index
            .releases
            .iter()
            .find(|r| r.target_name == target_name)
    }

    /// Imports a firmware file. Nothing is changed if the file is refused:
    /// every check (the importer's, the target name, a conflicting release,
    /// the release's bounds) is made before the payload leaves the blob
    /// store's temp area.
    ///
    /// Importing what is already there (same target name, same bytes, same
    /// metadata) changes nothing and answers `added: false`; the same target
    /// name with other bytes or other metadata is a [`CatalogError::Conflict`].
    pub fn import(
        &mut self,
        path: &Path,
        opts: &ImportOptions,
        now: DateTime<Utc>,
    ) -> Result<Imported, CatalogError> {
        let mut opts = opts.clone();
        if opts.vendor_keys.is_empty() {
            opts.vendor_keys = self.vendor_keys()?;
        }
        let prepared = import::prepare(path, &opts, &self.blobs)?;
        let target_name = format!(
            "{}/{}/{}/{}",
            slug(&prepared.vendor),
            slug(&prepared.model),
            slug(prepared.version.as_str()),
            slug(&prepared.file_name)
        );
        tuf::validate_target_name(&target_name)?;
        let _lock = lock(&self.root)?;
        self.reload()?;
        let mut repo = self.signing_targets()?;
        // Hashed into `blobs/tmp/`: not a blob until committed below.
        let staged = match &prepared.payload {
            Payload::WholeFile(p) => self.blobs.stage_file(p)?,
            Payload::Spooled(f) => self.blobs.stage_file(f.path())?,
        };
        let release = FirmwareRelease {
            target_name,
            vendor: prepared.vendor,
            model: prepared.model,
            hardware_ids: prepared.hardware_ids,
            version: prepared.version,
            security_counter: prepared.security_counter,
            protocol: prepared.protocol,
            capabilities: prepared.capabilities,
            urgency: prepared.urgency,
            release_notes: prepared.release_notes,
            size: staged.len(),
            sha256: staged.digest(),
            source_format: prepared.source_format,
            lvfs: prepared.lvfs,
            product_family: prepared.product_family,
            imported_at: now,
        };
        if let Some(existing) = self.get(&release.target_name) {
            if existing.sha256 != release.sha256 {
                return Err(CatalogError::Conflict {
                    target: release.target_name,
                    existing: existing.sha256,
                    what: "different content".to_owned(),
                });
            }
            let differ = differing_fields(existing, &release);
            if differ.is_empty() {
                return Ok(Imported {
                    release: existing.clone(),
                    added: false,
                });
            }
            return Err(CatalogError::Conflict {
                target: release.target_name,
                existing: existing.sha256,
                what: format!("the same content but a different {}", differ.join(", ")),
            });
        }
        release.validate().map_err(ImportError::Model)?;
        staged.commit()?;
        self.index.releases.push(release.clone());
        self.write_index()?;
        repo.publish_targets(self.targets()?, now)?;
        Ok(Imported {
            release,
            added: true,
        })
    }

    /// Removes a release found by [`Catalog::find`] (its blob stays until
    /// [`Catalog::gc`]).
    pub fn remove(
        &mut self,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<FirmwareRelease, CatalogError> {
        let _lock = lock(&self.root)?;
        self.reload()?;
        let name = self.find(query)?.target_name.clone();
        self.remove_locked(&name, now)
    }

    /// Removes the release with exactly this target name and publishes new
    /// metadata (its blob stays until [`Catalog::gc`]).
    pub fn remove_target(
        &mut self,
        target_name: &str,
        now: DateTime<Utc>,
    ) -> Result<FirmwareRelease, CatalogError> {
        let _lock = lock(&self.root)?;
        self.reload()?;
        self.remove_locked(target_name, now)
    }

    fn remove_locked(
        &mut self,
        target_name: &str,
        now: DateTime<Utc>,
    ) -> Result<FirmwareRelease, CatalogError> {
        let mut repo = self.signing_targets()?;
        let pos = self
            .index
            .releases
            .iter()
            .position(|r| r.target_name == target_name)
            .ok_or_else(|| CatalogError::NotFound(target_name.to_owned()))?;
        let removed = self.index.releases.remove(pos);
        self.write_index()?;
        repo.publish_targets(self.targets()?, now)?;
        Ok(removed)
    }

    /// The TUF targets for the current releases and key endorsements.
    pub fn targets(&self) -> Result<BTreeMap<String, TargetFile>, CatalogError> {
        let releases = self.index.releases.iter().map(|r| {
            Ok((
                r.target_name.clone(),
                TargetFile::new(r.size, *r.sha256.as_bytes(), Some(r.target_custom())),
            ))
        });
        let endorsements = self
            .index
            .assignment_keys
            .iter()
            .map(|e| Ok((e.target_name(), e.target_file()?)));
        releases.chain(endorsements).collect()
    }

    /// Publishes the current releases as new signed metadata.
    pub fn publish(&mut self, now: DateTime<Utc>) -> Result<(), CatalogError> {
        let _lock = lock(&self.root)?;
        self.reload()?;
        self.publish_locked(now)
    }

    fn publish_locked(&mut self, now: DateTime<Utc>) -> Result<(), CatalogError> {
        self.signing_targets()?
            .publish_targets(self.targets()?, now)?;
        Ok(())
    }

    /// The repository, if this host can sign targets; else
    /// [`CatalogError::SignedElsewhere`].
    fn signing_targets(&self) -> Result<Repository, CatalogError> {
        let repo = self.repository()?;
        repo.require_keys("targets")
            .map_err(CatalogError::SignedElsewhere)?;
        Ok(repo)
    }

    /// Re-signs the timestamp if it is close to expiry; returns whether it did.
    pub fn refresh_timestamp(&mut self, now: DateTime<Utc>) -> Result<bool, CatalogError> {
        let _lock = lock(&self.root)?;
        Ok(self.repository()?.refresh_timestamp(now)?)
    }

    /// Opens the signed repository with this catalog's keys, for key
    /// operations and to ask what this host can sign.
    pub fn repository(&self) -> Result<Repository, CatalogError> {
        Ok(Repository::open_with_keys(
            &self.repo_dir(),
            &self.keys_dirs,
        )?)
    }

    /// Deletes blobs that no signed target references.
    pub fn gc(&mut self, now: std::time::SystemTime) -> Result<GcReport, CatalogError> {
        let _lock = lock(&self.root)?;
        self.reload()?;
        let referenced = self
            .targets()?
            .iter()
            .map(|(name, t)| {
                t.hashes
                    .get("sha256")
                    .and_then(|h| h.parse().ok())
                    .ok_or_else(|| {
                        TufError::mismatch(name.as_str(), "no sha256 to keep its blob by")
                    })
            })
            .collect::<Result<HashSet<Sha256Digest>, TufError>>()?;
        Ok(self.blobs.gc(&referenced, now)?)
    }

    fn write_index(&self) -> Result<(), CatalogError> {
        let path = self.root.join("releases.json");
        let bytes =
            serde_json::to_vec_pretty(&self.index).map_err(|e| CatalogError::CorruptIndex {
                path: path.clone(),
                why: e.to_string(),
            })?;
        crate::fsutil::write_atomic(&path, &bytes).map_err(io_err(&path))
    }
}

/// The metadata fields in which two releases of the same target differ
/// (the import time aside), by name.
fn differing_fields(a: &FirmwareRelease, b: &FirmwareRelease) -> Vec<&'static str> {
    let checks = [
        (a.vendor == b.vendor, "vendor"),
        (a.model == b.model, "model"),
        (a.hardware_ids == b.hardware_ids, "hardware ids"),
        (
            a.version.as_str() == b.version.as_str() && a.version.format() == b.version.format(),
            "version",
        ),
        (a.security_counter == b.security_counter, "security counter"),
        (a.protocol == b.protocol, "protocol"),
        (a.capabilities == b.capabilities, "install capabilities"),
        (a.urgency == b.urgency, "urgency"),
        (a.release_notes == b.release_notes, "release notes"),
        (a.source_format == b.source_format, "source format"),
        (a.lvfs == b.lvfs, "LVFS metadata"),
        (a.product_family == b.product_family, "product family"),
    ];
    checks
        .iter()
        .filter(|(same, _)| !same)
        .map(|(_, name)| *name)
        .collect()
}

/// An exclusive advisory lock on the catalog, released on drop.
fn lock(root: &Path) -> Result<File, CatalogError> {
    let path = root.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.lock().map_err(io_err(&path))?;
    Ok(file)
}
