//! Atomic file writes: temp file in the same directory, fsync, rename, fsync dir.

use std::io::Write;
use std::path::Path;

use super::error::TufError;

/// Writes `data` to `path` atomically with the given Unix permission bits.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), TufError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| TufError::io(dir, e))?;
    tmp.write_all(data)
        .map_err(|e| TufError::io(tmp.path(), e))?;
    set_mode(tmp.as_file(), mode).map_err(|e| TufError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| TufError::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| TufError::io(path, e.error))?;
    sync_dir(dir);
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &std::fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Best effort: make a rename durable.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
