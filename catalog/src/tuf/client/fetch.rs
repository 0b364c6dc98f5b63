//! The [`Fetcher`] trait through which the client gets bytes, and a
//! [`FileFetcher`] reading a local directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::tuf::error::FetchError;

/// Source of repository bytes. Implemented by callers (HTTP in the agent, file
/// paths for mirrors and tests); the catalog itself does no networking.
///
/// `url` is the metadata or target base URL joined with a relative path
/// (e.g. `https://host/metadata/2.root.json`, or `metadata/2.root.json` when
/// the base is a relative directory name).
pub trait Fetcher {
    /// Returns the whole resource. Must fail with [`FetchError::NotFound`] for a
    /// missing resource (the end of the root chain) and with
    /// [`FetchError::TooLong`] instead of returning more than `max_len` bytes.
    fn fetch(&self, url: &str, max_len: u64) -> Result<Vec<u8>, FetchError>;

    /// Streams the resource into `out` and returns the number of bytes written.
    /// Must never write more than `max_len` bytes (the caller enforces this too
    /// and reports "endless data").
    fn fetch_to(&self, url: &str, max_len: u64, out: &mut dyn Write) -> Result<u64, FetchError>;
}

impl<F: Fetcher + ?Sized> Fetcher for &F {
    fn fetch(&self, url: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        (**self).fetch(url, max_len)
    }
    fn fetch_to(&self, url: &str, max_len: u64, out: &mut dyn Write) -> Result<u64, FetchError> {
        (**self).fetch_to(url, max_len, out)
    }
}

/// Reads `url` as a relative path under a base directory (a mirror on disk).
/// URLs with `..`, absolute paths, backslashes or NUL are refused.
#[derive(Debug, Clone)]
pub struct FileFetcher {
    base: PathBuf,
}

impl FileFetcher {
    /// A fetcher reading below `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        FileFetcher { base: base.into() }
    }

    fn path(&self, url: &str) -> Result<PathBuf, FetchError> {
        let invalid = |reason: &str| FetchError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url.starts_with('/') || url.contains('\\') || url.contains('\0') {
            return Err(invalid("absolute path, backslash or NUL"));
        }
        let mut p = self.base.clone();
        for comp in url.split('/') {
            match comp {
                "" | "." => continue,
                ".." => return Err(invalid("`..` component")),
                c => p.push(percent_decode(c).ok_or_else(|| invalid("bad percent-encoding"))?),
            }
        }
        Ok(p)
    }

    fn open(&self, url: &str, max_len: u64) -> Result<std::fs::File, FetchError> {
        let path = self.path(url)?;
        let file = std::fs::File::open(&path).map_err(|e| io_err(url, &path, e))?;
        let len = file.metadata().map_err(|e| io_err(url, &path, e))?.len();
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(FetchError::NotFound {
                url: url.to_string(),
            });
        }
        if len > max_len {
            return Err(FetchError::TooLong {
                url: url.to_string(),
                max_len,
            });
        }
        Ok(file)
    }
}

fn io_err(url: &str, path: &Path, e: std::io::Error) -> FetchError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FetchError::NotFound {
            url: url.to_string(),
        }
    } else {
        FetchError::Transport {
            url: url.to_string(),
            message: format!("{}: {e}", path.display()),
        }
    }
}

/// Decodes `%XX` escapes (the client quotes role names in URLs).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains('/') && s != ".." && !s.contains('\0')).then_some(s)
}

impl Fetcher for FileFetcher {
    fn fetch(&self, url: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let mut buf = Vec::new();
        self.fetch_to(url, max_len, &mut buf)?;
        Ok(buf)
    }

    fn fetch_to(&self, url: &str, max_len: u64, out: &mut dyn Write) -> Result<u64, FetchError> {
        let file = self.open(url, max_len)?;
        copy_bounded(url, file, max_len, out)
    }
}

/// Copies at most `max_len` bytes from `r` to `out`; fails with
/// [`FetchError::TooLong`] if `r` has more. For use by fetcher implementations.
pub fn copy_bounded(
    url: &str,
    r: impl Read,
    max_len: u64,
    out: &mut dyn Write,
) -> Result<u64, FetchError> {
    let transport = |e: std::io::Error| FetchError::Transport {
        url: url.to_string(),
        message: e.to_string(),
    };
    let mut limited = r.take(max_len.saturating_add(1));
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(transport(e)),
        };
        total += n as u64;
        if total > max_len {
            return Err(FetchError::TooLong {
                url: url.to_string(),
                max_len,
            });
        }
        out.write_all(&buf[..n]).map_err(transport)?;
    }
    Ok(total)
}

/// A writer that refuses to accept more than `max` bytes in total.
pub(crate) struct BoundedWriter<W> {
    pub(crate) inner: W,
    pub(crate) written: u64,
    pub(crate) max: u64,
    pub(crate) overflow: bool,
}

impl<W: Write> Write for BoundedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.max {
            self.overflow = true;
            return Err(std::io::Error::other(
                "endless data: more bytes than the signed length",
            ));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_fetcher_bounds_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("m")).unwrap();
        std::fs::write(dir.path().join("m/a b.json"), b"0123456789").unwrap();
        let f = FileFetcher::new(dir.path());
        assert_eq!(f.fetch("m/a%20b.json", 10).unwrap(), b"0123456789");
        assert!(matches!(
            f.fetch("m/a%20b.json", 9),
            Err(FetchError::TooLong { max_len: 9, .. })
        ));
        assert!(matches!(
            f.fetch("m/nope", 9),
            Err(FetchError::NotFound { .. })
        ));
        assert!(matches!(
            f.fetch("m/../x", 9),
            Err(FetchError::InvalidUrl { .. })
        ));
        assert!(matches!(
            f.fetch("/etc/passwd", 9),
            Err(FetchError::InvalidUrl { .. })
        ));
        assert!(matches!(
            f.fetch("m/%2E%2E", 9),
            Err(FetchError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn copy_bounded_refuses_endless_data() {
        let mut out = Vec::new();
        let r = copy_bounded("u", std::io::repeat(7).take(100), 50, &mut out);
        assert!(matches!(r, Err(FetchError::TooLong { max_len: 50, .. })));
        assert!(out.len() <= 50);
        let mut out = Vec::new();
        assert_eq!(copy_bounded("u", &b"abc"[..], 3, &mut out).unwrap(), 3);
    }
}
