//! The signing keys a repository can use on this host.
//!
//! Keys live in one or more directories, each holding at most one key per
//! role as `<role>.pem`: the server's own directory holds the online keys
//! (snapshot, timestamp), and each holder of an offline key (root, targets)
//! brings a directory of their own (a removable medium), so a k-of-n role is
//! signed by mounting k of them. A key file that the current root does not
//! authorise for its role is kept aside, never used, and named when signing
//! fails: after a rotation the new key may be put in place before the root
//! that names it is published.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::error::TufError;
use super::super::metadata::{Root, TOP_LEVEL_ROLES};
use super::super::signer::Ed25519Signer;

/// The key file of `role` in `dir`.
pub(crate) fn key_file(dir: &Path, role: &str) -> PathBuf {
    dir.join(format!("{role}.pem"))
}

/// One key file found on this host.
#[derive(Debug)]
pub(crate) struct KeyFile {
    pub(crate) path: PathBuf,
    pub(crate) signer: Ed25519Signer,
}

/// Every key file found in the key directories, by role.
#[derive(Debug, Default)]
pub(crate) struct Keyring {
    dirs: Vec<PathBuf>,
    by_role: BTreeMap<String, Vec<KeyFile>>,
}

impl Keyring {
    /// Loads `<role>.pem` from each directory (a missing file or directory is
    /// no error: that key is elsewhere).
    pub(crate) fn load(dirs: &[PathBuf]) -> Result<Self, TufError> {
        let mut ring = Keyring {
            dirs: dirs.to_vec(),
            by_role: BTreeMap::new(),
        };
        for dir in dirs {
            for role in TOP_LEVEL_ROLES {
                let path = key_file(dir, role);
                if !path.exists() {
                    continue;
                }
                let signer = Ed25519Signer::load(&path)?;
                ring.add(role, path, signer);
            }
        }
        Ok(ring)
    }

    pub(crate) fn add(&mut self, role: &str, path: PathBuf, signer: Ed25519Signer) {
        let files = self.by_role.entry(role.to_owned()).or_default();
        files.retain(|f| f.path != path);
        files.push(KeyFile { path, signer });
    }

    /// The directory new keys are written to when no other is named.
    pub(crate) fn home(&self) -> Option<&Path> {
        self.dirs.first().map(PathBuf::as_path)
    }

    /// The key files of `role` that `root` authorises for it.
    pub(crate) fn authorised<'a>(&'a self, root: &Root, role: &str) -> Vec<&'a KeyFile> {
        let Ok(keys) = root.role(role) else {
            return Vec::new();
        };
        self.by_role
            .get(role)
            .into_iter()
            .flatten()
            .filter(|f| keys.keyids.iter().any(|id| id == f.signer.key_id()))
            .collect()
    }

    /// Whether `root`'s threshold of `role` keys is on this host.
    pub(crate) fn can_sign(&self, root: &Root, role: &str) -> bool {
        root.role(role)
            .is_ok_and(|r| self.authorised(root, role).len() >= r.threshold as usize)
    }

    /// The signers for `role`: every authorised key present, and at least
    /// the threshold, else [`TufError::MissingKeys`].
    pub(crate) fn signers<'a>(
        &'a self,
        root: &Root,
        role: &str,
    ) -> Result<Vec<&'a Ed25519Signer>, TufError> {
        let threshold = root.role(role)?.threshold;
        let found: Vec<&Ed25519Signer> = self
            .authorised(root, role)
            .into_iter()
            .map(|f| &f.signer)
            .collect();
        if found.len() >= threshold as usize {
            return Ok(found);
        }
        Err(self.missing(root, role, found.len(), threshold))
    }

    pub(crate) fn missing(
        &self,
        root: &Root,
        role: &str,
        found: usize,
        threshold: u32,
    ) -> TufError {
        let foreign: Vec<String> = self
            .by_role
            .get(role)
            .into_iter()
            .flatten()
            .filter(|f| {
                root.role(role)
                    .is_ok_and(|r| !r.keyids.iter().any(|id| id == f.signer.key_id()))
            })
            .map(|f| {
                format!(
                    "{} holds key {} which root v{} does not name for {role}",
                    f.path.display(),
                    short(f.signer.key_id()),
                    root.version
                )
            })
            .collect();
        TufError::MissingKeys {
            role: role.to_owned(),
            found,
            threshold,
            searched: self
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            foreign: if foreign.is_empty() {
                String::new()
            } else {
                format!("; {}", foreign.join("; "))
            },
        }
    }

    /// Every key file of `role`, authorised or not.
    pub(crate) fn files(&self, role: &str) -> &[KeyFile] {
        self.by_role.get(role).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The first 8 hex digits of a key id, as commands print them.
pub(crate) fn short(key_id: &str) -> &str {
    &key_id[..key_id.len().min(8)]
}
