//! Mirrors: the signed repository copied to a directory (a mounted SMB/NFS
//! share or a web server root) that agents download from without trusting it.
//!
//! ```text
//! <mirror>/metadata/   N.root.json, root.json, N.targets.json, N.snapshot.json, timestamp.json
//! <mirror>/targets/    <vendor>/<model>/<version>/<sha256>.<file>   (consistent-snapshot names)
//! ```
//!
//! Export is incremental: versioned metadata and blobs never change once
//! written, so only missing files are copied, each through a temp file and a
//! rename. `timestamp.json`, the only file that changes, is replaced last, so
//! a reader sees either the old or the new consistent snapshot, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::blob::BlobStore;
use crate::digest::Sha256Digest;
use crate::fsutil;
use crate::package::{HardwareId, TargetFirmware};
use crate::store::Catalog;
use crate::tuf::{self, FileFetcher, TargetFile, TufError, Updater, UpdaterConfig};

/// Errors that stop an export or a verification from running at all.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// IO on a mirror or catalog file.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Metadata problem in the catalog itself.
    #[error(transparent)]
    Tuf(#[from] TufError),
    /// A blob the catalog's metadata names is missing from its store.
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Progress of a long export or verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Files handled so far.
    pub files_done: u64,
    /// Files to handle.
    pub files_total: u64,
    /// Bytes handled so far.
    pub bytes_done: u64,
    /// Bytes to handle.
    pub bytes_total: u64,
}

/// Which targets an export copies.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only firmware for these `VID:PID`s (bcdDevice ranges ignored); all when empty.
    pub models: Vec<HardwareId>,
}

impl ExportFilter {
    fn wants(&self, target: &TargetFile) -> bool {
        if self.models.is_empty() {
            return true;
        }
        let Some(fw) = target.custom.as_ref().and_then(TargetFirmware::from_custom) else {
            return false;
        };
        fw.hardware_ids
            .iter()
            .any(|h| self.models.iter().any(|m| m.vid == h.vid && m.pid == h.pid))
    }
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Metadata files copied (including `timestamp.json`).
    pub metadata_copied: usize,
    /// Target files copied.
    pub targets_copied: usize,
    /// Target files already present and left alone.
    pub targets_present: usize,
    /// Targets left out by the filter.
    pub targets_filtered: usize,
    /// Bytes of target files copied.
    pub bytes_copied: u64,
}

/// Copies the catalog's current signed repository into `dest`.
pub fn export(
    catalog: &Catalog,
    dest: &Path,
    filter: &ExportFilter,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportReport, MirrorError> {
    let src_meta = catalog.metadata_dir();
    let dest_meta = dest.join("metadata");
    let dest_targets = dest.join("targets");
    fs::create_dir_all(&dest_meta).map_err(io_err(&dest_meta))?;
    fs::create_dir_all(&dest_targets).map_err(io_err(&dest_targets))?;
    let mut report = ExportReport::default();

    // What the current snapshot signs, read from the catalog's own metadata.
    let repo = catalog.repository().map_err(|e| match e {
        crate::CatalogError::Tuf(t) => MirrorError::Tuf(t),
        other => MirrorError::Io {
            path: src_meta.clone(),
            source: io::Error::other(other.to_string()),
        },
    })?;
    let targets: BTreeMap<String, TargetFile> = repo.current_targets().targets.clone();
    let (wanted, filtered): (Vec<_>, Vec<_>) = targets.iter().partition(|(_, t)| filter.wants(t));
    report.targets_filtered = filtered.len();

    let mut p = Progress {
        files_done: 0,
        files_total: wanted.len() as u64,
        bytes_done: 0,
        bytes_total: wanted.iter().map(|(_, t)| t.length).sum(),
    };
    progress(p);
    for (name, target) in wanted {
        let rel = tuf::consistent_target_path(name, target)?;
        let dest_path = dest_targets.join(&rel);
        let digest = target_digest(name, target)?;
        if fs::metadata(&dest_path).is_ok_and(|m| m.len() == target.length) {
            report.targets_present += 1;
        } else {
            let src = catalog.blobs().path_of(&digest);
            if !src.is_file() {
                return Err(crate::blob::BlobError::Missing(digest).into());
            }
            fsutil::copy_atomic(&src, &dest_path).map_err(io_err(&dest_path))?;
            report.targets_copied += 1;
            report.bytes_copied += target.length;
        }
        p.files_done += 1;
        p.bytes_done += target.length;
        progress(p);
    }

    // Versioned metadata is immutable: copy what the mirror lacks.
    let mut entries: Vec<PathBuf> = fs::read_dir(&src_meta)
        .map_err(io_err(&src_meta))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for src in entries {
        let Some(file_name) = src.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file_name == "timestamp.json" || file_name.starts_with('.') {
            continue;
        }
        let dest_path = dest_meta.join(file_name);
        let versioned = file_name
            .split('.')
            .next()
            .is_some_and(|v| v.parse::<u64>().is_ok());
        if versioned && dest_path.is_file() {
            continue;
        }
        let data = fs::read(&src).map_err(io_err(&src))?;
        if !versioned && fs::read(&dest_path).is_ok_and(|d| d == data) {
            continue;
        }
        fsutil::write_atomic(&dest_path, &data).map_err(io_err(&dest_path))?;
        report.metadata_copied += 1;
    }
    let ts_src = src_meta.join("timestamp.json");
    let ts = fs::read(&ts_src).map_err(io_err(&ts_src))?;
    let ts_dest = dest_meta.join("timestamp.json");
    fsutil::write_atomic(&ts_dest, &ts).map_err(io_err(&ts_dest))?;
    report.metadata_copied += 1;
    Ok(report)
}

fn target_digest(name: &str, target: &TargetFile) -> Result<Sha256Digest, TufError> {
    target
        .hashes
        .get("sha256")
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| TufError::malformed(name, "target has no valid sha256 hash"))
}

/// One thing wrong with a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The metadata does not verify against the trusted root (bad signature,
    /// expired, rolled back, inconsistent).
    Metadata(String),
    /// The metadata verifies but is older than the catalog's.
    Stale {
        /// Snapshot version the mirror serves.
        mirror_snapshot: u64,
        /// Snapshot version the catalog has.
        catalog_snapshot: u64,
    },
    /// A signed target is not in the mirror.
    Missing(String),
    /// A target file whose bytes do not match the signed length and hash.
    Corrupt {
        /// Path relative to the mirror.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A file in `targets/` that no signed target names.
    Extra(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Metadata(why) => write!(f, "metadata: {why}"),
            Problem::Stale {
                mirror_snapshot,
                catalog_snapshot,
            } => write!(
                f,
                "stale: mirror serves snapshot v{mirror_snapshot}, catalog is at v{catalog_snapshot}"
            ),
            Problem::Missing(p) => write!(f, "missing: {p}"),
            Problem::Corrupt { path, why } => write!(f, "corrupt: {path}: {why}"),
            Problem::Extra(p) => write!(f, "extra: {p}"),
        }
    }
}

/// The outcome of verifying a mirror.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Targets whose bytes verified.
    pub targets_ok: usize,
    /// Targets deliberately not mirrored (filtered export), not counted as missing.
    pub targets_skipped: usize,
    /// Everything wrong, in the order found.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether the mirror is complete and correct.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// How to verify a mirror.
#[derive(Debug, Clone)]
pub struct VerifyOptions<'a> {
    /// The trusted root (bytes of a root.json the verifier pins).
    pub trusted_root: &'a [u8],
    /// The current time, fixed for every expiry check.
    pub now: DateTime<Utc>,
    /// Snapshot version of the source catalog, to detect stale mirrors.
    pub catalog_snapshot: Option<u64>,
    /// Only these models are expected (a filtered export).
    pub filter: ExportFilter,
}

/// Verifies every signature of a mirror's metadata against a trusted root and
/// every target file's length and hash.
pub fn verify(
    mirror: &Path,
    opts: &VerifyOptions<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport, MirrorError> {
    let mut report = VerifyReport::default();
    let scratch = tempfile::tempdir().map_err(io_err(mirror))?;
    let root_path = scratch.path().join("root.json");
    fs::write(&root_path, opts.trusted_root).map_err(io_err(&root_path))?;
    let mut updater = Updater::new(
        scratch.path(),
        "metadata",
        FileFetcher::new(mirror),
        UpdaterConfig::default(),
    )?;
    if let Err(e) = updater.refresh(opts.now) {
        report.problems.push(Problem::Metadata(e.to_string()));
        return Ok(report);
    }
    if let (Some(catalog), Some(snap)) = (opts.catalog_snapshot, updater.snapshot()) {
        if snap.version < catalog {
            report.problems.push(Problem::Stale {
                mirror_snapshot: snap.version,
                catalog_snapshot: catalog,
            });
        }
    }
    let targets: BTreeMap<String, TargetFile> = updater
        .targets()
        .map(|t| t.targets.clone())
        .unwrap_or_default();
    let mut expected_paths = BTreeSet::new();
    let mut p = Progress {
        files_done: 0,
        files_total: targets.len() as u64,
        bytes_done: 0,
        bytes_total: targets.values().map(|t| t.length).sum(),
    };
    progress(p);
    for (name, target) in &targets {
        let rel = match tuf::consistent_target_path(name, target) {
            Ok(r) => r,
            Err(e) => {
                report.problems.push(Problem::Metadata(e.to_string()));
                continue;
            }
        };
        expected_paths.insert(rel.clone());
        let path = mirror.join("targets").join(&rel);
        let shown = format!("targets/{rel}");
        match check_target(&path, target) {
            Ok(()) => report.targets_ok += 1,
            Err(None) if !opts.filter.wants(target) => report.targets_skipped += 1,
            Err(None) => report.problems.push(Problem::Missing(shown)),
            Err(Some(why)) => report.problems.push(Problem::Corrupt { path: shown, why }),
        }
        p.files_done += 1;
        p.bytes_done += target.length;
        progress(p);
    }
    let targets_dir = mirror.join("targets");
    let mut found = Vec::new();
    walk_files(&targets_dir, &targets_dir, &mut found).map_err(io_err(&targets_dir))?;
    for rel in found {
        if !expected_paths.contains(&rel) {
            report
                .problems
                .push(Problem::Extra(format!("targets/{rel}")));
        }
    }
    Ok(report)
}

/// `Err(None)`: missing; `Err(Some(why))`: present but wrong.
fn check_target(path: &Path, target: &TargetFile) -> Result<(), Option<String>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(e.to_string())),
    };
    let want = target
        .hashes
        .get("sha256")
        .ok_or_else(|| Some("no sha256 in the signed target".to_owned()))?;
    let (digest, len) = Sha256Digest::of_reader(io::BufReader::with_capacity(1 << 20, file))
        .map_err(|e| Some(e.to_string()))?;
    if len != target.length {
        return Err(Some(format!(
            "{len} bytes, signed length is {}",
            target.length
        )));
    }
    if digest.to_hex() != *want {
        return Err(Some(format!("sha256 is {digest}, signed sha256 is {want}")));
    }
    Ok(())
}

fn walk_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk_files(base, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Re-hashes every blob in a catalog's own store.
pub fn verify_blob_store(store: &BlobStore) -> Result<Vec<Problem>, MirrorError> {
    let mut problems = Vec::new();
    for digest in store.list()? {
        if let Err(e) = store.verify(&digest) {
            problems.push(Problem::Corrupt {
                path: store.path_of(&digest).display().to_string(),
                why: e.to_string(),
            });
        }
    }
    Ok(problems)
}
