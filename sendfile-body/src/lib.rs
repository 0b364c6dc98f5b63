//! Zero-copy file bodies for hyper on Linux.
//!
//! hyper writes whatever body it is given through the connection's stream;
//! it has no notion of a file. So a file range to serve is mapped into
//! memory ([`map`]) and handed to hyper as an ordinary [`Bytes`] body, and
//! the connection's stream ([`SendfileStream`]) recognises a slice of such a
//! mapping when hyper writes it and sends those bytes with `sendfile(2)` from
//! the file instead. The bytes then go from the page cache to the socket
//! without passing through user space, as nginx's `sendfile on` does, and
//! the mapping itself is never read (no page faults). Everything else
//! (headers, other bodies) is written as usual.
//!
//! hyper does not copy a body chunk into its own buffer when the stream
//! supports vectored writes (its "queue" write strategy), which
//! [`SendfileStream`] declares; that is what lets the slice arrive here as it
//! was made. Should a mapped body reach another writer (a TLS stream, a test
//! harness), it is read from the mapping and is still correct.
//!
//! The files must not change while mapped: the server maps only immutable
//! files (blobs and versioned metadata, written beside and renamed into
//! place). A file truncated under a mapping anyway makes `sendfile` send
//! fewer bytes than asked; the stream then fails the connection rather than
//! read the mapping (which would fault on the missing pages).
//!
//! This crate holds the server's only `unsafe` code: the call that maps a
//! file. The workspace forbids `unsafe` elsewhere.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bytes sent with `sendfile` since the process started.
static SENT: AtomicU64 = AtomicU64::new(0);

/// Bytes sent with `sendfile` by every [`SendfileStream`] so far (a metric,
/// and how a test knows the zero-copy path was taken).
pub fn bytes_sent() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// Where a live mapping's bytes come from.
#[derive(Debug, Clone)]
struct Region {
    /// One past its last byte in memory.
    end: usize,
    /// The file.
    file: Arc<File>,
    /// The file offset of its first byte.
    file_offset: u64,
}

/// Live mappings by the address of their first byte.
static REGIONS: RwLock<BTreeMap<usize, Region>> = RwLock::new(BTreeMap::new());

/// The file behind `slice` when it starts inside a live mapping: the file,
/// the file offset of the slice's first byte, and how many of the slice's
/// bytes the mapping holds.
fn lookup(slice: &[u8]) -> Option<(Arc<File>, u64, usize)> {
    if slice.is_empty() {
        return None;
    }
    let at = slice.as_ptr() as usize;
    let regions = REGIONS.read().unwrap_or_else(|e| e.into_inner());
    let (&start, region) = regions.range(..=at).next_back()?;
    (at < region.end).then(|| {
        let held = (region.end - at).min(slice.len());
        (
            Arc::clone(&region.file),
            region.file_offset + (at - start) as u64,
            held,
        )
    })
}

/// A read-only mapping, registered while it lives.
#[derive(Debug)]
struct Mapping(memmap2::Mmap);

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Unregistered before the field unmaps: the address may be reused
        // by the next mapping at once.
        REGIONS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(self.0.as_ptr() as usize));
    }
}

/// `len` bytes of `file` from `offset` as a body that a [`SendfileStream`]
/// sends from the file. On failure the file comes back, to be read the
/// ordinary way.
pub fn map(file: File, offset: u64, len: usize) -> Result<Bytes, (io::Error, File)> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    let options = {
        let mut o = memmap2::MmapOptions::new();
        o.offset(offset).len(len);
        o
    };
    // SAFETY: mapping a file is undefined behaviour if the file changes
    // while the mapping is read. The callers map immutable files only (the
    // crate docs), and a `SendfileStream` does not read the mapping: it
    // sends from the file descriptor.
    #[allow(unsafe_code)]
    let mapped = unsafe { options.map(&file) };
    let mapped = match mapped {
        Ok(m) => m,
        Err(e) => return Err((e, file)),
    };
    let start = mapped.as_ptr() as usize;
    let region = Region {
        end: start + mapped.len(),
        file: Arc::new(file),
        file_offset: offset,
    };
    REGIONS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(start, region);
    Ok(Bytes::from_owner(Mapping(mapped)))
}

/// A TCP connection whose writes of [`map`]ped bytes go by `sendfile`.
#[derive(Debug)]
pub struct SendfileStream {
    inner: TcpStream,
}

impl SendfileStream {
    /// Wraps a connection.
    pub fn new(inner: TcpStream) -> Self {
        Self { inner }
    }

    /// The connection.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }

    /// Sends up to `count` bytes of `file` from `offset`.
    fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        offset: u64,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            let sent = self.inner.try_io(Interest::WRITABLE, || {
                let mut at = offset;
                rustix::fs::sendfile(&self.inner, file, Some(&mut at), count)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file is shorter than its mapping: it changed while served",
                    )));
                }
                Ok(n) => {
                    SENT.fetch_add(n as u64, Ordering::Relaxed);
                    return Poll::Ready(Ok(n));
                }
                // Readiness was stale: `try_io` cleared it; wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Writes one run: the mapped bytes at the front (by `sendfile`), or the
    /// ordinary slices up to the next mapped one. The caller writes the rest
    /// with its next call, as after any partial write.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        let bufs = &bufs[first..];
        if let Some((file, offset, count)) = lookup(&bufs[0]) {
            return self.poll_sendfile(cx, &file, offset, count);
        }
        let plain = bufs
            .iter()
            .position(|b| lookup(b).is_some())
            .unwrap_or(bufs.len());
        Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..plain])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
