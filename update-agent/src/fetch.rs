//! Where the agent gets bytes: the server or an internal web mirror over
//! HTTP(S), or an IT share mounted as a directory. Every source is untrusted;
//! the TUF client and [`crate::staging`] verify whatever they return.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use catalog::tuf::{copy_bounded, FetchError, Fetcher};

/// A source that can also resume: return the bytes of `url` from `offset` on.
pub trait RangeFetch {
    /// Writes at most `max_len` bytes of `url` starting at byte `offset` into
    /// `out` and returns how many it wrote. A source that cannot start at
    /// `offset` must fail with [`FetchError::Transport`] rather than send
    /// bytes from another position.
    fn fetch_from(
        &self,
        url: &str,
        offset: u64,
        max_len: u64,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError>;
}

/// A web mirror: its images with resume ([`RangeFetch`]) and its TUF
/// metadata ([`Fetcher`]) from the same place.
pub trait MirrorFetch: RangeFetch + Fetcher {}

impl<T: RangeFetch + Fetcher + ?Sized> MirrorFetch for T {}

/// HTTP(S) with bounded reads, for the server and web mirrors.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::blocking::Client,
}

impl HttpFetcher {
    /// A client with connect and overall timeouts (slow-retrieval protection).
    pub fn new() -> Result<Self, FetchError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| FetchError::Transport {
                url: String::new(),
                message: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self { client })
    }

    /// Uses `client` (its TLS settings, e.g. the extra CA of the config).
    pub fn with_client(client: reqwest::blocking::Client) -> Self {
        Self { client }
    }

    fn get(
        &self,
        url: &str,
        offset: u64,
        max_len: u64,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError> {
        let transport = |message: String| FetchError::Transport {
            url: url.to_owned(),
            message,
        };
        let mut req = self.client.get(url);
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let resp = req.send().map_err(|e| transport(error_report::chain(&e)))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Err(FetchError::NotFound {
                url: url.to_owned(),
            });
        }
        if offset > 0 && status != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(transport(format!(
                "asked to resume at byte {offset}, got HTTP {status} instead of 206"
            )));
        }
        if !status.is_success() {
            return Err(transport(format!("HTTP status {status}")));
        }
        if resp.content_length().is_some_and(|n| n > max_len) {
            return Err(FetchError::TooLong {
                url: url.to_owned(),
                max_len,
            });
        }
        copy_bounded(url, resp, max_len, out)
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let mut buf = Vec::new();
        self.get(url, 0, max_len, &mut buf)?;
        Ok(buf)
    }

    fn fetch_to(&self, url: &str, max_len: u64, out: &mut dyn Write) -> Result<u64, FetchError> {
        self.get(url, 0, max_len, out)
    }
}

impl RangeFetch for HttpFetcher {
    fn fetch_from(
        &self,
        url: &str,
        offset: u64,
        max_len: u64,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError> {
        self.get(url, offset, max_len, out)
    }
}

/// A mounted network share (SMB/NFS) or any directory: `url` is a path
/// relative to the share's root and may not leave it.
#[derive(Debug, Clone)]
pub struct ShareFetcher {
    root: PathBuf,
}

impl ShareFetcher {
    /// A fetcher reading below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, url: &str) -> Result<PathBuf, FetchError> {
        let bad = |reason: &str| FetchError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.contains('\\') || url.contains('\0') {
            return Err(bad("backslash or NUL in a share path"));
        }
        let rel = Path::new(url);
        if !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad("share paths must stay inside the share"));
        }
        Ok(self.root.join(rel))
    }

    fn open(&self, url: &str) -> Result<(File, u64), FetchError> {
        let path = self.path(url)?;
        let transport = |e: std::io::Error| FetchError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FetchError::NotFound {
                    url: url.to_owned(),
                })
            }
            Err(e) => return Err(transport(e)),
        };
        let len = file.metadata().map_err(transport)?.len();
        Ok((file, len))
    }
}

impl Fetcher for ShareFetcher {
    fn fetch(&self, url: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let mut buf = Vec::new();
        self.fetch_to(url, max_len, &mut buf)?;
        Ok(buf)
    }

    fn fetch_to(&self, url: &str, max_len: u64, out: &mut dyn Write) -> Result<u64, FetchError> {
        self.fetch_from(url, 0, max_len, out)
    }
}

impl RangeFetch for ShareFetcher {
    fn fetch_from(
        &self,
        url: &str,
        offset: u64,
        max_len: u64,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError> {
        let (mut file, len) = self.open(url)?;
        if len.saturating_sub(offset) > max_len {
            return Err(FetchError::TooLong {
                url: url.to_owned(),
                max_len,
            });
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| FetchError::Transport {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
        copy_bounded(url, file, max_len, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_paths_stay_inside_the_share() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("share/targets")).unwrap();
        std::fs::write(dir.path().join("share/targets/fw.bin"), b"0123456789").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        let share = ShareFetcher::new(dir.path().join("share"));
        assert_eq!(share.fetch("targets/fw.bin", 10).unwrap(), b"0123456789");
        assert_eq!(share.fetch("./targets/fw.bin", 10).unwrap(), b"0123456789");
        for bad in [
            "../secret",
            "targets/../../secret",
            "/etc/passwd",
            "targets\\fw.bin",
            "a\0b",
        ] {
            assert!(
                matches!(share.fetch(bad, 10), Err(FetchError::InvalidUrl { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            share.fetch("targets/none", 10),
            Err(FetchError::NotFound { .. })
        ));
    }

    #[test]
    fn share_ranges_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fw.bin"), b"0123456789").unwrap();
        let share = ShareFetcher::new(dir.path());
        type Case<'a> = (u64, u64, Result<&'a [u8], &'a str>);
        let cases: &[Case<'_>] = &[
            (0, 10, Ok(b"0123456789")),
            (4, 6, Ok(b"456789")),
            (10, 0, Ok(b"")),
            (0, 9, Err("endless data")),
            (3, 6, Err("endless data")),
        ];
        for (offset, max, want) in cases {
            let mut out = Vec::new();
            let got = share.fetch_from("fw.bin", *offset, *max, &mut out);
            match want {
                Ok(bytes) => {
                    assert_eq!(got.unwrap(), bytes.len() as u64);
                    assert_eq!(&out[..], *bytes);
                }
                Err(msg) => assert!(got.unwrap_err().to_string().contains(msg)),
            }
        }
    }
}
