//! The TUF code's view of [`crate::fsutil`]: atomic writes with errors that
//! name the file.

use std::path::Path;

use super::error::TufError;

/// Writes `data` to `path` atomically with the given Unix permission bits.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), TufError> {
    crate::fsutil::write_atomic_mode(path, data, mode).map_err(|e| TufError::io(path, e))
}

/// Best effort: make a rename durable.
pub(crate) fn sync_dir(dir: &Path) {
    let _ = crate::fsutil::sync_dir(dir);
}
