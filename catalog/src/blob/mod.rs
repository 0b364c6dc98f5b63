//! Content-addressed blob store: files named by their SHA-256.
//!
//! Layout under the store root:
//!
//! ```text
//! sha256/ab/abcdef…(64 hex)   one file per blob, fan-out by the first two hex digits
//! tmp/                         in-flight writes; never read as blobs
//! ```
//!
//! Invariant: a file exists under its final name only if its content hashes to
//! that name. Writes go to `tmp/`, are hashed while streaming, fsynced, and only
//! then renamed into place (and the directory fsynced). A crash leaves at most
//! a stray temp file, which [`BlobStore::gc`] removes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

use crate::digest::Sha256Digest;

const CHUNK: usize = 1 << 20;

/// Temp files younger than this are assumed to belong to a put in progress.
const TMP_GRACE: Duration = Duration::from_secs(3600);

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// An IO error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The blob is not in the store.
    #[error("blob {0} is not in the store")]
    Missing(Sha256Digest),
    /// The stored bytes do not hash to the blob's name.
    #[error("blob {expected} is corrupt: its content hashes to {actual} ({len} bytes)")]
    Corrupt {
        /// The name (expected digest).
        expected: Sha256Digest,
        /// What the content actually hashes to.
        actual: Sha256Digest,
        /// The content length.
        len: u64,
    },
    /// The content does not match what the caller said it would be.
    #[error("content mismatch: expected {expected} ({expected_len} bytes), got {actual} ({actual_len} bytes)")]
    Mismatch {
        /// The digest the caller expected.
        expected: Sha256Digest,
        /// The length the caller expected.
        expected_len: u64,
        /// The digest of the received content.
        actual: Sha256Digest,
        /// The length of the received content.
        actual_len: u64,
    },
    /// The input was longer than the caller allowed.
    #[error("content exceeds the allowed length of {limit} bytes")]
    TooLong {
        /// The allowed length.
        limit: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What a put stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's name.
    pub digest: Sha256Digest,
    /// Its length in bytes.
    pub len: u64,
    /// False when the blob was already present (the put was a no-op).
    pub newly_stored: bool,
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed because nothing referenced them.
    pub removed: Vec<Sha256Digest>,
    /// Bytes those blobs took.
    pub bytes_freed: u64,
    /// Stale temp files of interrupted puts removed.
    pub stale_temp_files: usize,
}

/// A directory of blobs named by their SHA-256.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        for dir in [root.join("sha256"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(Self { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path_of(&self, digest: &Sha256Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Sha256Digest) -> bool {
        self.path_of(digest).is_file()
    }

    /// Length of a stored blob.
    pub fn len_of(&self, digest: &Sha256Digest) -> Result<u64, BlobError> {
        let path = self.path_of(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BlobError::Missing(*digest)),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Streams `reader` into the store. Memory use is one buffer, whatever the size.
    pub fn put_reader(&self, reader: impl Read) -> Result<BlobInfo, BlobError> {
        self.put_inner(reader, None)
    }

    /// Streams `reader` into the store, refusing content that is longer than
    /// `expected_len` or does not hash to `expected`. Nothing is stored on refusal.
    pub fn put_expected(
        &self,
        reader: impl Read,
        expected: Sha256Digest,
        expected_len: u64,
    ) -> Result<BlobInfo, BlobError> {
        self.put_inner(reader, Some((expected, expected_len)))
    }

    /// Stores a file's content.
    pub fn put_file(&self, path: &Path) -> Result<BlobInfo, BlobError> {
        let file = File::open(path).map_err(io_err(path))?;
        self.put_reader(file)
    }

    /// Stores an in-memory buffer.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobInfo, BlobError> {
        self.put_reader(bytes)
    }

    fn put_inner(
        &self,
        reader: impl Read,
        expected: Option<(Sha256Digest, u64)>,
    ) -> Result<BlobInfo, BlobError> {
        self.stage_inner(reader, expected)?.commit()
    }

    /// Streams `reader` into the store's temp area and hashes it, without
    /// storing it: the caller looks at [`StagedBlob::digest`] and
    /// [`StagedBlob::len`], then [`StagedBlob::commit`]s it or drops it
    /// (which deletes the temp file). Memory use is one buffer.
    pub fn stage(&self, reader: impl Read) -> Result<StagedBlob, BlobError> {
        self.stage_inner(reader, None)
    }

    /// [`Self::stage`] for a file's content.
    pub fn stage_file(&self, path: &Path) -> Result<StagedBlob, BlobError> {
        let file = File::open(path).map_err(io_err(path))?;
        self.stage(file)
    }

    /// A new empty file in the store's in-flight area (`tmp/`, on the
    /// blobs' filesystem), named `<prefix>…`: for content that arrives in
    /// pieces before it is imported. Deleted when dropped; one left by a
    /// crash is removed by [`BlobStore::gc`] an hour after it last changed.
    pub fn temp_file(&self, prefix: &str) -> Result<tempfile::NamedTempFile, BlobError> {
        let tmp_dir = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(&tmp_dir)
            .map_err(io_err(&tmp_dir))
    }

    fn stage_inner(
        &self,
        mut reader: impl Read,
        expected: Option<(Sha256Digest, u64)>,
    ) -> Result<StagedBlob, BlobError> {
        let mut tmp = self.temp_file("put-")?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut len = 0u64;
        let limit = expected.map(|(_, l)| l);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(tmp.path())(e)),
            };
            len += n as u64;
            if let Some(limit) = limit {
                if len > limit {
                    return Err(BlobError::TooLong { limit });
                }
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io_err(tmp.path()))?;
        }
        let digest = Sha256Digest::from_bytes(hasher.finalize().into());
        if let Some((want, want_len)) = expected {
            if want != digest || want_len != len {
                return Err(BlobError::Mismatch {
                    expected: want,
                    expected_len: want_len,
                    actual: digest,
                    actual_len: len,
                });
            }
        }
        Ok(StagedBlob {
            final_path: self.path_of(&digest),
            tmp,
            digest,
            len,
        })
    }

    /// Opens a blob for reading without verifying it.
    pub fn open_unverified(&self, digest: &Sha256Digest) -> Result<File, BlobError> {
        let path = self.path_of(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                BlobError::Missing(*digest)
            } else {
                io_err(&path)(e)
            }
        })
    }

    /// Opens a blob for reading; the reader fails at end of file if the
    /// content does not hash to the blob's name.
    pub fn open_verified(&self, digest: &Sha256Digest) -> Result<VerifyingReader<File>, BlobError> {
        let file = self.open_unverified(digest)?;
        Ok(VerifyingReader::new(file, *digest))
    }

    /// Re-hashes a blob and checks it against its name.
    pub fn verify(&self, digest: &Sha256Digest) -> Result<u64, BlobError> {
        let path = self.path_of(digest);
        let file = self.open_unverified(digest)?;
        let (actual, len) = Sha256Digest::of_reader(BufReader::with_capacity(CHUNK, file))
            .map_err(io_err(&path))?;
        if actual != *digest {
            return Err(BlobError::Corrupt {
                expected: *digest,
                actual,
                len,
            });
        }
        Ok(len)
    }

    /// All blobs in the store, in digest order. Files whose names are not
    /// digests are skipped.
    pub fn list(&self) -> Result<Vec<Sha256Digest>, BlobError> {
        let base = self.root.join("sha256");
        let mut out = Vec::new();
        for fan in fs::read_dir(&base).map_err(io_err(&base))? {
            let fan = fan.map_err(io_err(&base))?;
            let fan_path = fan.path();
            if !fan_path.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&fan_path).map_err(io_err(&fan_path))? {
                let entry = entry.map_err(io_err(&fan_path))?;
                if let Some(d) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<Sha256Digest>().ok())
                {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes every blob not in `referenced`, and temp files of interrupted
    /// puts that are older than an hour as of `now`.
    pub fn gc(
        &self,
        referenced: &HashSet<Sha256Digest>,
        now: SystemTime,
    ) -> Result<GcReport, BlobError> {
        let mut report = GcReport::default();
        for digest in self.list()? {
            if referenced.contains(&digest) {
                continue;
            }
            let path = self.path_of(&digest);
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {
                    report.removed.push(digest);
                    report.bytes_freed += len;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let tmp_dir = self.root.join("tmp");
        for entry in fs::read_dir(&tmp_dir).map_err(io_err(&tmp_dir))? {
            let entry = entry.map_err(io_err(&tmp_dir))?;
            let modified = entry.metadata().and_then(|m| m.modified());
            let stale = match modified {
                Ok(m) => now.duration_since(m).is_ok_and(|age| age >= TMP_GRACE),
                Err(_) => false,
            };
            if stale && fs::remove_file(entry.path()).is_ok() {
                report.stale_temp_files += 1;
            }
        }
        Ok(report)
    }
}

/// Content hashed into the store's temp area and not yet stored: it exists
/// under its final name only after [`StagedBlob::commit`]. Dropping it
/// deletes the temp file, so a caller that refuses the content after seeing
/// its digest leaves nothing behind.
#[derive(Debug)]
pub struct StagedBlob {
    tmp: tempfile::NamedTempFile,
    final_path: PathBuf,
    digest: Sha256Digest,
    len: u64,
}

impl StagedBlob {
    /// The content's SHA-256 (its name once committed).
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// The content's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores the content under its name: fsync, rename, fsync the
    /// directory. A no-op (`newly_stored: false`) when the blob is already
    /// there.
    pub fn commit(self) -> Result<BlobInfo, BlobError> {
        let Self {
            tmp,
            final_path,
            digest,
            len,
        } = self;
        if final_path.is_file() {
            // Same content already stored: the temp file is dropped (deleted).
            return Ok(BlobInfo {
                digest,
                len,
                newly_stored: false,
            });
        }
        tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
        let dir = final_path
            .parent()
            .expect("blob paths have a fan-out parent");
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        // A concurrent put of the same content may rename first; replacing a
        // file with identical bytes is harmless, and rename is atomic.
        tmp.persist(&final_path)
            .map_err(|e| io_err(&final_path)(e.error))?;
        sync_dir(dir)?;
        Ok(BlobInfo {
            digest,
            len,
            newly_stored: true,
        })
    }
}

fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    crate::fsutil::sync_dir(dir).map_err(io_err(dir))
}

/// A reader that hashes what passes through it and fails at end of input if
/// the content does not match the expected digest.
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    expected: Sha256Digest,
    hasher: Sha256,
    len: u64,
    checked: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, expecting its content to hash to `expected`.
    pub fn new(inner: R, expected: Sha256Digest) -> Self {
        Self {
            inner,
            expected,
            hasher: Sha256::new(),
            len: 0,
            checked: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.checked {
            self.checked = true;
            let actual = Sha256Digest::from_bytes(self.hasher.clone().finalize().into());
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    BlobError::Corrupt {
                        expected: self.expected,
                        actual,
                        len: self.len,
                    },
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
