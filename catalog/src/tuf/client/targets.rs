//! Target lookup through delegations (spec 5.6.7) and verified download (5.7).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::fetch::BoundedWriter;
use super::hashes::MultiHasher;
use super::{join_url, Fetcher, Updater};
use crate::tuf::error::{FetchError, TufError};
use crate::tuf::fs::sync_dir;
use crate::tuf::metadata::{Signed, TargetFile, Targets};
use crate::tuf::paths::{
    quote, role_file_name, role_matches, target_request_path, validate_role_name,
    validate_target_name,
};

impl<F: Fetcher> Updater<F> {
    /// Finds the trusted entry for `name`: a preorder depth-first search from
    /// top-level targets through delegations, in listed order, following only
    /// roles whose `paths`/`path_hash_prefixes` match and stopping after a
    /// matching `terminating` role. Visits at most `max_delegations` roles.
    /// Delegated metadata is fetched, verified and persisted on the way.
    /// Returns `Ok(None)` if no visited role lists the target.
    pub fn target_info(&mut self, name: &str) -> Result<Option<TargetFile>, TufError> {
        validate_target_name(name)?;
        if !self.targets.contains_key("targets") {
            return Err(TufError::State(
                "target_info: refresh() has not completed".into(),
            ));
        }
        let mut stack: Vec<(String, String)> = vec![("targets".into(), String::new())];
        let mut visited = BTreeSet::new();
        while let Some((role, parent)) = stack.pop() {
            if visited.len() as u32 >= self.config.max_delegations {
                break;
            }
            if !visited.insert(role.clone()) {
                continue;
            }
            if !self.targets.contains_key(&role) {
                self.load_delegated(&role, &parent)?;
            }
            let doc = &self.targets[&role].signed;
            if let Some(t) = doc.targets.get(name) {
                return Ok(Some(t.clone()));
            }
            let Some(delegations) = &doc.delegations else {
                continue;
            };
            let mut children = Vec::new();
            for child in &delegations.roles {
                if role_matches(child, name) {
                    children.push((child.name.clone(), role.clone()));
                    if child.terminating {
                        stack.clear();
                        break;
                    }
                }
            }
            stack.extend(children.into_iter().rev());
        }
        Ok(None)
    }

    fn load_delegated(&mut self, role: &str, parent: &str) -> Result<(), TufError> {
        validate_role_name(role)?;
        let parent_doc = &self.targets[parent].signed;
        let delegations = parent_doc
            .delegations
            .as_ref()
            .ok_or_else(|| TufError::State(format!("{parent} has no delegations")))?;
        let entry = delegations
            .roles
            .iter()
            .find(|r| r.name == role)
            .ok_or_else(|| TufError::State(format!("{parent} does not delegate to {role}")))?;
        let (keyids, threshold) = (entry.keyids.clone(), entry.threshold);
        let keys = delegations.keys.clone();
        let local = std::fs::read(self.dir.join(role_file_name(role)))
            .ok()
            .and_then(|b| Signed::<Targets>::from_slice(role, &b).ok());
        self.load_targets_role(role, &keys, &keyids, threshold, local)
    }

    /// Whether `path` already holds exactly the signed target (length and hashes).
    pub fn is_cached(&self, target: &TargetFile, path: &Path) -> bool {
        let Ok(file) = std::fs::File::open(path) else {
            return false;
        };
        let Ok(m) = file.metadata() else { return false };
        if !m.is_file() || m.len() != target.length {
            return false;
        }
        let mut hasher = MultiHasher::new(&target.hashes);
        std::io::copy(&mut std::io::Read::take(file, target.length), &mut hasher).is_ok()
            && hasher.check("cached target", &target.hashes).is_ok()
    }

    /// Downloads target `name` (whose trusted entry is `target`) from
    /// `target_base` into `target_dir/<quote(name)>` (the file name python-tuf
    /// uses) and returns the path. See [`Updater::download_target_to`].
    pub fn download_target(
        &self,
        name: &str,
        target: &TargetFile,
        target_base: &str,
        target_dir: &Path,
    ) -> Result<PathBuf, TufError> {
        validate_target_name(name)?;
        let dest = target_dir.join(quote(name));
        self.download_target_to(name, target, target_base, &dest)?;
        Ok(dest)
    }

    /// Downloads a target to `dest`: requests `<target_base>/<dirs>/<hash>.<basename>`
    /// under consistent snapshots (the plain name otherwise), accepts at most
    /// the signed length, verifies length and hashes, and only then renames the
    /// temporary file (created next to `dest`) into place. If `dest` already
    /// holds the verified content nothing is fetched.
    pub fn download_target_to(
        &self,
        name: &str,
        target: &TargetFile,
        target_base: &str,
        dest: &Path,
    ) -> Result<(), TufError> {
        let what = format!("target {name}");
        let rel = target_request_path(name, target, self.root.signed.consistent_snapshot)?;
        if self.is_cached(target, dest) {
            return Ok(());
        }
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| TufError::io(dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-target-")
            .tempfile_in(dir)
            .map_err(|e| TufError::io(dir, e))?;
        let url = join_url(target_base, &rel);
        let mut hasher = MultiHasher::new(&target.hashes);
        let mut out = BoundedWriter {
            inner: Tee {
                file: tmp.as_file(),
                hasher: &mut hasher,
            },
            written: 0,
            max: target.length,
            overflow: false,
        };
        let res = self.fetcher.fetch_to(&url, target.length, &mut out);
        let (written, overflow) = (out.written, out.overflow);
        match res {
            _ if overflow => {
                return Err(TufError::Fetch {
                    what,
                    source: FetchError::TooLong {
                        url,
                        max_len: target.length,
                    },
                })
            }
            Err(source) => return Err(TufError::Fetch { what, source }),
            Ok(n) if n > target.length => {
                return Err(TufError::Fetch {
                    what,
                    source: FetchError::TooLong {
                        url,
                        max_len: target.length,
                    },
                })
            }
            Ok(_) => {}
        }
        if written != target.length {
            return Err(TufError::mismatch(
                &what,
                format!(
                    "length {written} differs from signed length {}",
                    target.length
                ),
            ));
        }
        hasher.check(&what, &target.hashes)?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| TufError::io(tmp.path(), e))?;
        tmp.persist(dest).map_err(|e| TufError::io(dest, e.error))?;
        sync_dir(dir);
        Ok(())
    }
}

struct Tee<'a> {
    file: &'a std::fs::File,
    hasher: &'a mut MultiHasher,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
