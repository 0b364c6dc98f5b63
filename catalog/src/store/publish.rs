//! `publish`: the serving host adopts what a signing host signed.
//!
//! The signing host keeps its own copy of the catalog (blobs, release index,
//! metadata) and the offline root and targets keys; an import there signs a
//! new targets version and cannot sign snapshot or timestamp. Its catalog
//! directory, carried over on a medium or synced, is the source of a
//! publish: every new root version, its newest targets, the release records
//! and the blobs the server lacks. Everything is checked before anything is
//! stored — the roots chain from the trusted one, the targets verify under
//! the newest root, every signed target has exactly one release record that
//! agrees with it (name, length, sha256 and the signed firmware fields) and
//! a blob whose bytes hash to it, or is an assignment key endorsement the
//! source index holds too — then blobs, index and metadata are written
//! in that order, as an import writes them.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::{io_err, lock, Catalog, CatalogError, Index};
use crate::assignment::KeyEndorsement;
use crate::blob::BlobStore;
use crate::tuf::{TargetFile, Targets, TufError};

/// What a publish changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The newest root version adopted, if root changed.
    pub root_version: Option<u64>,
    /// The targets version adopted, if targets changed.
    pub targets_version: Option<u64>,
    /// Target names added.
    pub added: Vec<String>,
    /// Target names removed.
    pub removed: Vec<String>,
}

fn bad(what: impl Into<String>, reason: impl Into<String>) -> CatalogError {
    CatalogError::Tuf(TufError::mismatch(what, reason))
}

/// The highest `N.targets.json` in `metadata`.
fn newest_targets(metadata: &Path) -> Result<Option<u64>, CatalogError> {
    let mut newest = None;
    for entry in fs::read_dir(metadata).map_err(io_err(metadata))? {
        let name = entry.map_err(io_err(metadata))?.file_name();
        let version = name
            .to_str()
            .and_then(|n| n.strip_suffix(".targets.json"))
            .and_then(|v| v.parse::<u64>().ok());
        newest = newest.max(version);
    }
    Ok(newest)
}

/// The source's index: its release records and key endorsements, each
/// checked against its signed target, and every signed target accounted for.
fn index_for(source: &Path, signed: &Targets) -> Result<Index, CatalogError> {
    let path = source.join("releases.json");
    let bytes = fs::read(&path).map_err(io_err(&path))?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| CatalogError::CorruptIndex {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let mut seen = BTreeSet::new();
    for r in &index.releases {
        let name = &r.target_name;
        if !seen.insert(name.clone()) {
            return Err(bad(
                name.as_str(),
                "two release records in the source index",
            ));
        }
        let target = signed.targets.get(name).ok_or_else(|| {
            bad(
                name.as_str(),
                "a release record in the source index that the signed targets do not list",
            )
        })?;
        let expected = TargetFile::new(r.size, *r.sha256.as_bytes(), Some(r.target_custom()));
        if target.length != expected.length
            || target.hashes.get("sha256") != expected.hashes.get("sha256")
            || target.custom != expected.custom
        {
            return Err(bad(
                name.as_str(),
                "the release record disagrees with its signed target (length, sha256 or firmware fields)",
            ));
        }
        r.validate().map_err(crate::import::ImportError::Model)?;
    }
    for e in &index.assignment_keys {
        let name = e.target_name();
        let signed_as = signed
            .targets
            .get(&name)
            .and_then(|t| KeyEndorsement::from_target(&name, t));
        if !matches!(signed_as, Some(Ok(ref s)) if s == e) || !seen.insert(name.clone()) {
            return Err(bad(
                name.as_str(),
                "the source index endorses an assignment key that the signed targets do not",
            ));
        }
    }
    if let Some(missing) = signed.targets.keys().find(|n| !seen.contains(n.as_str())) {
        return Err(bad(
            missing.as_str(),
            "a signed target without a record in the source index",
        ));
    }
    Ok(index)
}

impl Catalog {
    /// Adopts the roots, targets, releases and blobs of `source`, the
    /// signing host's catalog directory (see the module documentation).
    /// Publishing what is already published changes nothing.
    pub fn publish_from(
        &mut self,
        source: &Path,
        now: DateTime<Utc>,
    ) -> Result<Published, CatalogError> {
        let metadata = source.join("repo").join("metadata");
        if !metadata.join("1.root.json").is_file() {
            return Err(CatalogError::NotInitialised(source.to_owned()));
        }
        let _lock = lock(&self.root)?;
        self.reload()?;
        let mut repo = self.repository()?;
        let mut roots = Vec::new();
        let mut next = repo.root().version + 1;
        loop {
            let path = metadata.join(format!("{next}.root.json"));
            match fs::read(&path) {
                Ok(bytes) => roots.push(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_err(&path)(e)),
            }
            next += 1;
        }
        let targets = match newest_targets(&metadata)? {
            Some(v) => {
                let path = metadata.join(format!("{v}.targets.json"));
                Some(fs::read(&path).map_err(io_err(&path))?)
            }
            None => None,
        };
        let adoption = repo.check_adoption(roots, targets, now)?;
        let mut published = Published {
            root_version: adoption.root_version(),
            targets_version: adoption.targets().map(|t| t.version),
            ..Published::default()
        };
        let index = match adoption.targets() {
            Some(signed) => Some(index_for(source, signed)?),
            None => None,
        };
        if let Some(Index { releases, .. }) = &index {
            let source_blobs = BlobStore::open(source.join("blobs"))?;
            let mut staged = Vec::new();
            for r in releases.iter().filter(|r| !self.blobs.contains(&r.sha256)) {
                let blob = self.blobs.stage_file(&source_blobs.path_of(&r.sha256))?;
                if blob.digest() != r.sha256 || blob.len() != r.size {
                    return Err(bad(
                        r.target_name.as_str(),
                        format!(
                            "the source's blob is {} bytes with sha256 {}, not what was signed",
                            blob.len(),
                            blob.digest()
                        ),
                    ));
                }
                staged.push(blob);
            }
            for blob in staged {
                blob.commit()?;
            }
            let before: BTreeSet<&str> = self
                .index
                .releases
                .iter()
                .map(|r| r.target_name.as_str())
                .collect();
            let after: BTreeSet<&str> = releases.iter().map(|r| r.target_name.as_str()).collect();
            published.added = after.difference(&before).map(|s| s.to_string()).collect();
            published.removed = before.difference(&after).map(|s| s.to_string()).collect();
        }
        if let Some(index) = index {
            for e in &index.assignment_keys {
                self.blobs.put_bytes(&e.to_bytes()?)?;
            }
            self.index = index;
            self.write_index()?;
        }
        repo.adopt(adoption, now)?;
        Ok(published)
    }
}
