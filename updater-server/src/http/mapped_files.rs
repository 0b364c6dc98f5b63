//! Blobs mapped for zero-copy sending, and kept mapped for a moment.
//!
//! On plain HTTP on Linux every connection is a
//! `sendfile_body::SendfileStream` ([`serve_zero_copy`] says so), and a file
//! body that is a slice of a mapping goes from the page cache to the socket
//! by `sendfile`. A blob is mapped whole once and the mapping kept for
//! [`FRESH`]: the requests of that moment (a fleet fetching the same image,
//! an agent resuming it in 1 MiB ranges) slice it, with no open, no mapping
//! and no hop to the blocking pool each. After [`FRESH`] the file is opened
//! again, so a blob removed from the store stops being served soon after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// Files from this size on are mapped; smaller ones cost less to read.
pub(crate) const MIN_LEN: u64 = 64 * 1024;

/// How long a mapping is reused before the file is opened again.
const FRESH: Duration = Duration::from_secs(2);

/// Mappings kept at most (each holds a file descriptor).
const KEPT: usize = 64;

/// Whether file bodies are mapped ([`serve_zero_copy`]).
static ZERO_COPY: AtomicBool = AtomicBool::new(false);

/// Mappings by path, with when each was made.
static KEPT_MAPPINGS: Mutex<BTreeMap<PathBuf, (Instant, Bytes)>> = Mutex::new(BTreeMap::new());

/// Maps large file bodies from now on, for the process's connections to send
/// them with `sendfile`: only for a process whose every connection is a
/// `SendfileStream` (plain HTTP on Linux).
pub(crate) fn serve_zero_copy() {
    ZERO_COPY.store(true, Ordering::Relaxed);
}

fn zero_copy() -> bool {
    ZERO_COPY.load(Ordering::Relaxed)
}

/// The whole of `path` as a mapping made less than [`FRESH`] ago.
pub(crate) fn kept(path: &Path) -> Option<Bytes> {
    if !zero_copy() {
        return None;
    }
    let kept = KEPT_MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
    kept.get(path)
        .filter(|(made, _)| made.elapsed() < FRESH)
        .map(|(_, whole)| whole.clone())
}

/// The whole of `file` (`len` bytes, read from `path`) mapped and kept,
/// when the process sends mappings and the file is large enough; else the
/// file back, to be read.
#[cfg(target_os = "linux")]
pub(crate) fn map_whole(
    path: &Path,
    file: std::fs::File,
    len: u64,
) -> Result<Bytes, std::fs::File> {
    if len < MIN_LEN || !zero_copy() {
        return Err(file);
    }
    let whole = sendfile_body::map(file, 0, len as usize).map_err(|(e, file)| {
        tracing::warn!(error = %e, "mapping a file body failed; reading it instead");
        file
    })?;
    let mut kept = KEPT_MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
    kept.retain(|_, (made, _)| made.elapsed() < FRESH);
    if kept.len() >= KEPT {
        if let Some(oldest) = kept
            .iter()
            .min_by_key(|(_, (made, _))| *made)
            .map(|(p, _)| p.clone())
        {
            kept.remove(&oldest);
        }
    }
    kept.insert(path.to_owned(), (Instant::now(), whole.clone()));
    Ok(whole)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn map_whole(_: &Path, file: std::fs::File, _: u64) -> Result<Bytes, std::fs::File> {
    Err(file)
}
