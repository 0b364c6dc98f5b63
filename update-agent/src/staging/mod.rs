//! Staged firmware: downloads that resume after interruption, are bounded by
//! the signed length, are verified before they count as staged, and survive
//! restarts.
//!
//! ```text
//! <staging>/<sha256>.partial   bytes received so far (never trusted)
//! <staging>/<sha256>           verified image, renamed into place after the hash matched
//! ```
//!
//! How far a download got is recorded by the caller (the state database's
//! `downloads` table) at checkpoints: every [`CHECKPOINT_BYTES`] the partial
//! file is fsynced and the durable length handed to [`Resume::checkpoint`].
//! A resumed download starts at the recorded offset (bytes past it were
//! never known to be on disk and are cut off), with an HTTP `Range`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
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
    /// A staged image no longer hashes to its name (changed on disk since
    /// it was verified); it was removed, to be downloaded again.
    #[error("the staged image changed on disk since it was verified (expected sha256 {expected}, found {actual}); removed, it will be downloaded again")]
    StagedChanged {
        /// The signed digest (the file's name).
        expected: Sha256Digest,
        /// What the file hashes to now.
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
    /// The download's progress could not be recorded.
    #[error("recording download progress: {0}")]
    Checkpoint(String),
}

/// Bytes between two progress checkpoints of a download.
pub const CHECKPOINT_BYTES: u64 = 16 * 1024;

/// What the caller knows of a download and where it records its progress.
pub struct Resume<'a> {
    /// The durable offset recorded by an earlier attempt, if any.
    pub recorded: Option<u64>,
    /// Called with the partial file's length each time it was fsynced.
    pub checkpoint: &'a mut dyn FnMut(u64) -> Result<(), String>,
}

impl std::fmt::Debug for Resume<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume")
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

/// Writes into the partial file, fsyncing and reporting every `every` bytes.
struct CheckpointWriter<'a, 'b> {
    file: &'a File,
    len: u64,
    since: u64,
    every: u64,
    resume: &'a mut Resume<'b>,
}

impl CheckpointWriter<'_, '_> {
    fn checkpoint(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.since = 0;
        (self.resume.checkpoint)(self.len).map_err(io::Error::other)
    }
}

impl Write for CheckpointWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Never past a checkpoint boundary in one write, so checkpoints fall
        // on multiples of `every`.
        let room = usize::try_from(self.every - self.since).unwrap_or(usize::MAX);
        let n = (&*self.file).write(&buf[..buf.len().min(room)])?;
        self.len += n as u64;
        self.since += n as u64;
        if self.since >= self.every {
            self.checkpoint()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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

    /// The staged image's bytes, hashed again as they are read: what is
    /// flashed is what was verified, even if the file was changed since
    /// (another process, a disk fault). A file that no longer matches is
    /// removed and [`StageError::StagedChanged`] returned.
    pub fn read_verified(&self, digest: &Sha256Digest) -> Result<Vec<u8>, StageError> {
        let path = self.final_path(digest);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let actual = Sha256Digest::of(&bytes);
        if actual != *digest {
            fs::remove_file(&path).map_err(io_err(&path))?;
            return Err(StageError::StagedChanged {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
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
        let mut none = |_| Ok(());
        let mut resume = Resume {
            recorded: None,
            checkpoint: &mut none,
        };
        self.stage_resumable(source, url, target, &mut resume)
    }

    /// [`Staging::stage`] resuming at `resume.recorded` (when known; else at
    /// the partial file's length) and reporting checkpoints.
    pub fn stage_resumable(
        &self,
        source: &dyn RangeFetch,
        url: &str,
        target: &TargetFile,
        resume: &mut Resume<'_>,
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
        if let Some(recorded) = resume.recorded.filter(|r| *r < have) {
            // Bytes past the recorded offset were never known to be durable.
            let f = OpenOptions::new()
                .write(true)
                .open(&partial)
                .map_err(io_err(&partial))?;
            f.set_len(recorded).map_err(io_err(&partial))?;
            f.sync_all().map_err(io_err(&partial))?;
            have = recorded;
        }
        if have < target.length {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&partial)
                .map_err(io_err(&partial))?;
            let mut out = CheckpointWriter {
                file: &file,
                len: have,
                since: have % CHECKPOINT_BYTES,
                every: CHECKPOINT_BYTES,
                resume,
            };
            let result = source.fetch_from(url, have, target.length - have, &mut out);
            let received = out.len;
            match out.checkpoint() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Other && e.get_ref().is_some() => {
                    return Err(StageError::Checkpoint(e.to_string()))
                }
                Err(e) => return Err(io_err(&partial)(e)),
            }
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
