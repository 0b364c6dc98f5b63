//! Durable, atomic file writes for the state directory.

use std::fs;
use std::io;
use std::path::Path;

/// Mode of files holding secrets or private state.
pub(crate) const PRIVATE: u32 = 0o600;
/// Mode of files anyone may read (the pinned root).
pub(crate) const PUBLIC: u32 = 0o644;

/// Replaces `path` with `data` atomically (see [`catalog::fsutil::write_atomic_mode`]).
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    catalog::fsutil::write_atomic_mode(path, data, mode)
}

/// Creates `dir` (and parents) and makes it private to the owner (0700).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
