//! A consistent copy of the catalog while it is in use: taken under the
//! catalog lock, so no import, publish or key change lands half-way.

use std::fs;
use std::io;
use std::path::Path;

use super::{io_err, lock, Catalog, CatalogError};

/// What a catalog backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogBackup {
    /// Release records.
    pub releases: usize,
    /// Blob files.
    pub blobs: usize,
    /// The targets version its metadata signs.
    pub targets_version: u64,
}

/// Copies `src` into `dest` recursively, modes kept; never hard links (a
/// backup must not share its bytes with the live catalog). Entries for
/// which `skip` is true are left out; symbolic links are not followed.
fn copy_tree(src: &Path, dest: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<usize, CatalogError> {
    let mut files = 0;
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    let entries = match fs::read_dir(src) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(src)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(src))?;
        let from = entry.path();
        if skip(&from) {
            continue;
        }
        let to = dest.join(entry.file_name());
        let kind = entry.file_type().map_err(io_err(&from))?;
        if kind.is_dir() {
            files += copy_tree(&from, &to, skip)?;
        } else if kind.is_file() {
            fs::copy(&from, &to).map_err(io_err(&from))?;
            files += 1;
        }
    }
    Ok(files)
}

impl Catalog {
    /// Copies the catalog (release index, signed metadata, trusted vendor
    /// keys, blobs) into `dest`, a directory that must not exist, holding
    /// the catalog lock throughout.
    pub fn backup_to(&mut self, dest: &Path) -> Result<CatalogBackup, CatalogError> {
        if dest.exists() {
            return Err(io_err(dest)(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the backup destination exists",
            )));
        }
        let _lock = lock(&self.root)?;
        self.reload()?;
        let targets_version = self.repository()?.current_targets().version;
        let none = |_: &Path| false;
        copy_tree(&self.repo_dir(), &dest.join("repo"), &none)?;
        copy_tree(&self.vendor_keys_dir(), &dest.join("vendor-keys"), &none)?;
        // Leftovers of interrupted imports in `blobs/tmp` are not blobs.
        let tmp = self.blobs.root().join("tmp");
        let blobs = copy_tree(self.blobs.root(), &dest.join("blobs"), &|p: &Path| p == tmp)?;
        let index = self.root.join("releases.json");
        fs::copy(&index, dest.join("releases.json")).map_err(io_err(&index))?;
        Ok(CatalogBackup {
            releases: self.index.releases.len(),
            blobs,
            targets_version,
        })
    }
}
