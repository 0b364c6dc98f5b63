//! Reading a file's fields where they are, instead of from one slice: what
//! lets [`DfuFile::inspect`](super::DfuFile::inspect) check a file of any
//! size in constant memory, with the very rules [`DfuFile::parse`](super::DfuFile::parse)
//! applies (both run the same code over a [`FileSource`]).
//!
//! The library still does no IO of its own: the caller implements
//! [`FileSource`] (over a `std::fs::File`, say) and its errors come back as
//! [`InspectError::Source`].

use std::convert::Infallible;

use super::FileError;

/// Random access to the bytes of a file being inspected.
pub trait FileSource {
    /// Why a read failed.
    type Error;

    /// The file's length in bytes.
    fn file_len(&self) -> u64;

    /// Fills `buf` with the bytes at `offset`. Callers never ask for bytes
    /// past [`FileSource::file_len`].
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
}

impl FileSource for &[u8] {
    type Error = Infallible;

    fn file_len(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Infallible> {
        // In range: the parsers check every read against `file_len` first.
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

/// Why [`DfuFile::inspect`](super::DfuFile::inspect) refused a file.
#[derive(Debug, thiserror::Error)]
pub enum InspectError<E> {
    /// The file is malformed.
    #[error(transparent)]
    File(#[from] FileError),
    /// Reading the file failed.
    #[error("reading the file: {0}")]
    Source(E),
}

impl InspectError<Infallible> {
    /// The format error (reading a slice cannot fail).
    pub(crate) fn into_file_error(self) -> FileError {
        match self {
            InspectError::File(e) => e,
            InspectError::Source(never) => match never {},
        }
    }
}

/// Reads fields front to back, naming each and knowing its absolute offset,
/// up to `end` (the end of the enclosing structure).
pub(crate) struct Reader<'s, S: FileSource> {
    pub(crate) src: &'s mut S,
    pub(crate) pos: usize,
    pub(crate) end: usize,
}

impl<S: FileSource> Reader<'_, S> {
    pub(crate) fn left(&self) -> usize {
        self.end - self.pos
    }

    /// Checks that `n` more bytes fit, then moves past them; returns their offset.
    pub(crate) fn skip(
        &mut self,
        field: &'static str,
        n: usize,
    ) -> Result<usize, InspectError<S::Error>> {
        if self.left() < n {
            return Err(FileError::Truncated {
                field,
                offset: self.pos,
                needed: n as u64,
                available: self.left(),
            }
            .into());
        }
        let at = self.pos;
        self.pos += n;
        Ok(at)
    }

    /// The next `n` bytes (allocated only once they are known to exist).
    pub(crate) fn take(
        &mut self,
        field: &'static str,
        n: usize,
    ) -> Result<Vec<u8>, InspectError<S::Error>> {
        let at = self.skip(field, n)?;
        let mut out = vec![0; n];
        self.src
            .read_at(at as u64, &mut out)
            .map_err(InspectError::Source)?;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, InspectError<S::Error>> {
        Ok(self.take(field, 1)?[0])
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, InspectError<S::Error>> {
        let b = self.take(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn signature(
        &mut self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<(), InspectError<S::Error>> {
        let offset = self.pos;
        let found = self.take(field, expected.len())?;
        if found != expected.as_bytes() {
            return Err(FileError::BadSignature {
                field,
                offset,
                expected,
                found: String::from_utf8_lossy(&found).into_owned(),
            }
            .into());
        }
        Ok(())
    }
}

/// The DFU CRC of the source's first `len` bytes, read in chunks.
pub(crate) fn crc_of<S: FileSource>(src: &mut S, len: u64) -> Result<u32, S::Error> {
    const CHUNK: usize = 64 << 10;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0; CHUNK.min(len as usize)];
    let mut at = 0;
    while at < len {
        let n = CHUNK.min((len - at) as usize);
        src.read_at(at, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(!hasher.finalize())
}
