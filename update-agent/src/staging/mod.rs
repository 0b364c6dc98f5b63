//! Staged firmware: downloads that resume after interruption, are bounded by
//! the signed length, are verified before they count as staged, and survive
//! restarts.
//!
//! ```text
//! <staging>/<sha256>.partial   bytes received so far (never trusted)
//! <staging>/<sha256>           verified image, renamed into place after the hash matched
//! ```

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use catalog::digest::Sha256Digest;
use catalog::tuf::{FetchError, TargetFile};

use crate::fetch::RangeFetch;

/// Why an image could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Local IO.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The source failed; what was received so far is kept for a resume.
    #[error("download interrupted after {received} of {length} bytes: {source}")]
    Interrupted {
        /// Bytes held in the partial file.
        received: u64,
        /// The signed length.
        length: u64,
        /// The source's error.
        source: FetchError,
    },
    /// The complete download does not match the signed hash; it was discarded.
    #[error("downloaded image does not match its signed sha256 (expected {expected}, got {actual}); discarded")]
    HashMismatch {
        /// The signed digest.
        expected: Sha256Digest,
        /// What arrived.
        actual: Sha256Digest,
    },
    /// The source ended before the signed length.
    #[error("source ended after {received} of {length} signed bytes")]
    Short {
        /// Bytes received.
        received: u64,
        /// The signed length.
        length: u64,
    },
    /// The signed target carries no usable sha256.
    #[error("the signed target has no sha256 hash")]
    NoHash,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StageError + '_ {
    move |source| StageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The staging directory.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Opens (creating) a staging directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StageError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self { dir })
    }

    fn final_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join(digest.to_hex())
    }

    fn partial_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{}.partial", digest.to_hex()))
    }

    /// The verified image with this digest, if staged.
    pub fn staged(&self, digest: &Sha256Digest) -> Option<PathBuf> {
        let p = self.final_path(digest);
        p.is_file().then_some(p)
    }

    /// Bytes of an interrupted download waiting to be resumed.
    pub fn partial_len(&self, digest: &Sha256Digest) -> u64 {
        fs::metadata(self.partial_path(digest)).map_or(0, |m| m.len())
    }

    /// Downloads `url` for the signed `target` (resuming a partial download),
    /// verifies length and sha256, and returns the staged file.
    pub fn stage(
        &self,
        source: &dyn RangeFetch,
        url: &str,
        target: &TargetFile,
    ) -> Result<PathBuf, StageError> {
        let digest: Sha256Digest = target
            .hashes
            .get("sha256")
            .and_then(|h| h.parse().ok())
            .ok_or(StageError::NoHash)?;
        if let Some(done) = self.staged(&digest) {
            return Ok(done);
        }
        let partial = self.partial_path(&digest);
        let mut have = self.partial_len(&digest);
        if have > target.length {
            // Longer than anything signed: it cannot be a prefix. Start again.
            fs::remove_file(&partial).map_err(io_err(&partial))?;
            have = 0;
        }
        if have < target.length {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&partial)
                .map_err(io_err(&partial))?;
            let result = source.fetch_from(url, have, target.length - have, &mut file);
            file.sync_all().map_err(io_err(&partial))?;
            let received = fs::metadata(&partial).map_or(have, |m| m.len());
            match result {
                Ok(_) if received == target.length => {}
                Ok(_) => {
                    return Err(StageError::Short {
                        received,
                        length: target.length,
                    })
                }
                Err(source) => {
                    if matches!(source, FetchError::TooLong { .. }) {
                        let _ = fs::remove_file(&partial);
                    }
                    return Err(StageError::Interrupted {
                        received,
                        length: target.length,
                        source,
                    });
                }
            }
        }
        let (actual, _) = File::open(&partial)
            .and_then(|f| Sha256Digest::of_reader(BufReader::with_capacity(1 << 20, f)))
            .map_err(io_err(&partial))?;
        if actual != digest {
            // A poisoned prefix would poison every resume: discard all of it.
            fs::remove_file(&partial).map_err(io_err(&partial))?;
            return Err(StageError::HashMismatch {
                expected: digest,
                actual,
            });
        }
        let done = self.final_path(&digest);
        fs::rename(&partial, &done).map_err(io_err(&done))?;
        catalog::fsutil::sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(done)
    }

    /// Removes staged and partial images not in `keep` (superseded updates).
    /// Returns how many files were removed.
    pub fn retain(&self, keep: &HashSet<Sha256Digest>) -> Result<usize, StageError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let hex = name.strip_suffix(".partial").unwrap_or(name);
            let Ok(digest) = hex.parse::<Sha256Digest>() else {
                continue;
            };
            if !keep.contains(&digest) {
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
