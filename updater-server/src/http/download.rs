//! Serving immutable files (blobs, versioned metadata) with `ETag`,
//! `If-None-Match` and single `Range` requests.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::mapped_files;
use super::read_buffers::ReadBuffers;

/// A byte range to serve, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// What a `Range` header asks of a resource of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable range: serve everything (also for multi-range and other units,
    /// which RFC 9110 lets a server ignore).
    Full,
    /// One satisfiable range.
    Partial(ByteRange),
    /// A range that lies wholly outside the resource.
    Unsatisfiable,
}

/// Parses a `Range` header value against a resource length.
pub(crate) fn parse_range(value: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let range = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(b) {
            Some(0) => return RangeRequest::Unsatisfiable,
            Some(n) if len > 0 => ByteRange {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            Some(_) => return RangeRequest::Unsatisfiable,
            None => return RangeRequest::Full,
        },
        // bytes=N-: from N to the end.
        (false, true) => match parse(a) {
            Some(start) if start < len => ByteRange {
                start,
                end: len - 1,
            },
            Some(_) => return RangeRequest::Unsatisfiable,
            None => return RangeRequest::Full,
        },
        (false, false) => match (parse(a), parse(b)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= len {
                    return RangeRequest::Unsatisfiable;
                }
                ByteRange {
                    start,
                    end: end.min(len - 1),
                }
            }
            _ => return RangeRequest::Full,
        },
        (true, true) => return RangeRequest::Full,
    };
    RangeRequest::Partial(range)
}

/// Whether an `If-None-Match` header matches `etag` (a quoted strong tag).
pub(crate) fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// Ranges up to this size are read whole in one blocking call and sent as
/// one buffer; longer ones stream.
const READ_WHOLE_MAX: u64 = 1 << 20;

/// Bodies read whole below this size get a buffer of their own.
const POOLED_MIN: u64 = 64 * 1024;

/// Read size of a streamed body: large reads mean few hops to the blocking
/// pool (tokio reads files there); per download this is the memory held.
const STREAM_CHUNK: usize = 512 * 1024;

/// What the blocking part of [`serve_file`] found.
enum Opened {
    Missing,
    Failed(&'static str),
    /// Length, and the body: the requested bytes already read, or the file
    /// positioned at the start of the range.
    Ready(u64, Option<Bytes>, Option<std::fs::File>),
}

/// The requested bytes of a whole file held in memory (a mapping).
fn sliced(whole: &Bytes, range: Option<&str>) -> Opened {
    let len = whole.len() as u64;
    match parse_range(range, len) {
        RangeRequest::Full => Opened::Ready(len, Some(whole.clone()), None),
        RangeRequest::Partial(r) => Opened::Ready(
            len,
            Some(whole.slice(r.start as usize..=r.end as usize)),
            None,
        ),
        RangeRequest::Unsatisfiable => Opened::Ready(len, None, None),
    }
}

/// Opens `path`, and for a satisfiable range positions it (reading small
/// ranges whole): one hop to the blocking pool instead of one per step.
fn open_at(path: &Path, range: Option<&str>) -> Opened {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Opened::Missing,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "open failed");
            return Opened::Failed("cannot read file");
        }
    };
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(_) => return Opened::Failed("cannot stat file"),
    };
    let mut file = match mapped_files::map_whole(path, file, len) {
        Ok(whole) => return sliced(&whole, range),
        Err(file) => file,
    };
    let (start, count) = match parse_range(range, len) {
        RangeRequest::Full => (0, len),
        RangeRequest::Partial(r) => (r.start, r.end - r.start + 1),
        RangeRequest::Unsatisfiable => return Opened::Ready(len, None, None),
    };
    if start > 0 && file.seek(SeekFrom::Start(start)).is_err() {
        return Opened::Failed("cannot seek file");
    }
    if count <= READ_WHOLE_MAX {
        // Small bodies get a buffer of their own size: a slow client must
        // not hold a pooled 0.5 MiB buffer for a few bytes.
        let pool = (count >= POOLED_MIN).then(|| pool_for(count));
        let mut buf = pool.map_or_else(|| Vec::with_capacity(count as usize), |p| p.take());
        return match (&mut file).take(count).read_to_end(&mut buf) {
            Ok(n) if n as u64 == count => {
                let bytes = match pool {
                    Some(p) => p.frame(buf),
                    None => Bytes::from(buf),
                };
                Opened::Ready(len, Some(bytes), None)
            }
            _ => Opened::Failed("cannot read file"),
        };
    }
    Opened::Ready(len, None, Some(file))
}

/// Buffers for streamed pieces and for whole reads up to 1 MiB.
static PIECES: ReadBuffers = ReadBuffers::new(STREAM_CHUNK);
static WHOLE: ReadBuffers = ReadBuffers::new(READ_WHOLE_MAX as usize);

/// The smallest pool whose buffers hold `count` bytes (`count` ≤ 1 MiB).
fn pool_for(count: u64) -> &'static ReadBuffers {
    if count <= PIECES.capacity() as u64 {
        &PIECES
    } else {
        &WHOLE
    }
}

/// What a blocking read hands back: the file (for the next read) and the bytes.
type ChunkRead = (std::fs::File, std::io::Result<Bytes>);

/// Reads the next `n` (≤ [`STREAM_CHUNK`]) bytes of `file` on the blocking
/// pool into a pooled buffer that becomes the body frame as it is (no
/// second copy).
fn read_chunk(mut file: std::fs::File, n: u64) -> tokio::task::JoinHandle<ChunkRead> {
    tokio::task::spawn_blocking(move || {
        let mut buf = PIECES.take();
        let read = match (&mut file).take(n).read_to_end(&mut buf) {
            Ok(got) if got as u64 == n => Ok(PIECES.frame(buf)),
            Ok(_) => Err(std::io::ErrorKind::UnexpectedEof.into()),
            Err(e) => Err(e),
        };
        (file, read)
    })
}

/// `count` bytes from `file`'s position as a streamed body: read in
/// [`STREAM_CHUNK`] pieces, each on the blocking pool and one piece ahead of
/// the socket, so reading the file and writing the socket overlap while
/// memory stays at two pieces per download and no thread waits on a slow
/// client between pieces.
fn file_body(file: std::fs::File, count: u64) -> Body {
    let piece = |left: u64| left.min(STREAM_CHUNK as u64);
    let first = (read_chunk(file, piece(count)), count);
    Body::from_stream(futures_util::stream::unfold(
        Some(first),
        move |state| async move {
            let (pending, left) = state?;
            let (file, read) = match pending.await {
                Ok(done) => done,
                Err(e) => return Some((Err(std::io::Error::other(e)), None)),
            };
            let bytes = match read {
                Ok(b) => b,
                Err(e) => return Some((Err(e), None)),
            };
            let left = left - bytes.len() as u64;
            let next = (left > 0).then(|| (read_chunk(file, piece(left)), left));
            Some((Ok(bytes), next))
        },
    ))
}

/// Opens `path` on the blocking pool (or only checks it exists, for a
/// matching `If-None-Match`).
async fn open_blocking(path: PathBuf, not_modified: bool, range: Option<String>) -> Opened {
    tokio::task::spawn_blocking(move || {
        if not_modified {
            return match std::fs::metadata(&path) {
                Ok(m) => Opened::Ready(m.len(), None, None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Opened::Missing,
                Err(_) => Opened::Failed("cannot stat file"),
            };
        }
        open_at(&path, range.as_deref())
    })
    .await
    .unwrap_or(Opened::Failed("cannot read file"))
}

/// Serves `path` with the given strong `etag` (already quoted).
pub(crate) async fn serve_file(
    path: &Path,
    etag: &str,
    content_type: &'static str,
    cache_control: &'static str,
    headers: &HeaderMap,
) -> Response {
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A matching If-None-Match needs no body: only check that the file exists.
    let not_modified = none_match(headers, etag);
    let owned = path.to_owned();
    let kept = (!not_modified).then(|| mapped_files::kept(path)).flatten();
    let opened = match kept {
        Some(whole) => sliced(&whole, range_header.as_deref()),
        None => open_blocking(owned, not_modified, range_header).await,
    };
    let (len, bytes, file) = match opened {
        Opened::Ready(len, bytes, file) => (len, bytes, file),
        Opened::Missing => return super::error(StatusCode::NOT_FOUND, "not_found", "no such file"),
        Opened::Failed(what) => {
            return super::error(StatusCode::INTERNAL_SERVER_ERROR, "io", what);
        }
    };
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    let mut builder = Response::builder()
        .header(header::ETAG, etag_value)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, cache_control);
    if not_modified {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::NOT_MODIFIED.into_response());
    }
    builder = builder.header(header::CONTENT_TYPE, content_type);
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, count) = match range {
        RangeRequest::Full => (StatusCode::OK, len),
        RangeRequest::Partial(r) => {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{len}", r.start, r.end),
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start + 1)
        }
        RangeRequest::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::RANGE_NOT_SATISFIABLE.into_response());
        }
    };
    let body = match (bytes, file) {
        (Some(bytes), _) => Body::from(bytes),
        (None, Some(file)) => file_body(file, count),
        (None, None) => Body::empty(),
    };
    builder
        .status(status)
        .header(header::CONTENT_LENGTH, count)
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_table() {
        use RangeRequest::*;
        let p = |start, end| Partial(ByteRange { start, end });
        let cases: &[(Option<&str>, u64, RangeRequest)] = &[
            (None, 100, Full),
            (Some("bytes=0-9"), 100, p(0, 9)),
            (Some("bytes=90-"), 100, p(90, 99)),
            (Some("bytes=-10"), 100, p(90, 99)),
            (Some("bytes=-500"), 100, p(0, 99)),
            (Some("bytes=50-500"), 100, p(50, 99)),
            (Some("bytes=100-"), 100, Unsatisfiable),
            (Some("bytes=100-200"), 100, Unsatisfiable),
            (Some("bytes=-0"), 100, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=9-0"), 100, Full),
            (Some("bytes=0-1,5-6"), 100, Full),
            (Some("items=0-1"), 100, Full),
            (Some("bytes=x-1"), 100, Full),
            (Some("bytes=-"), 100, Full),
            (Some(" bytes= 3 - 4 "), 100, p(3, 4)),
        ];
        for (header, len, want) in cases {
            assert_eq!(parse_range(*header, *len), *want, "{header:?} of {len}");
        }
    }

    #[tokio::test]
    async fn streamed_ranges_carry_exactly_the_requested_bytes() {
        use http_body_util::BodyExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        // 2.5 pieces and a bit: every piece boundary is crossed.
        let content: Vec<u8> = (0..(STREAM_CHUNK * 5 / 2 + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &content).unwrap();
        let len = content.len() as u64;
        // (Range header, expected first byte, expected length, status)
        let cases: Vec<(Option<String>, usize, usize, u16)> = vec![
            (None, 0, content.len(), 200),
            (Some("bytes=3-".into()), 3, content.len() - 3, 206),
            (
                Some(format!("bytes={}-", STREAM_CHUNK - 1)),
                STREAM_CHUNK - 1,
                content.len() - STREAM_CHUNK + 1,
                206,
            ),
            (
                Some(format!("bytes=10-{}", READ_WHOLE_MAX + 20)),
                10,
                READ_WHOLE_MAX as usize + 11,
                206,
            ),
            (Some("bytes=-100".into()), content.len() - 100, 100, 206),
            (Some("bytes=5-9".into()), 5, 5, 206),
        ];
        for (range, start, count, status) in cases {
            let mut headers = HeaderMap::new();
            if let Some(r) = &range {
                headers.insert(header::RANGE, HeaderValue::from_str(r).unwrap());
            }
            let resp = serve_file(
                &path,
                "\"e\"",
                "application/octet-stream",
                "no-cache",
                &headers,
            )
            .await;
            assert_eq!(resp.status().as_u16(), status, "{range:?}");
            assert_eq!(
                resp.headers()[header::CONTENT_LENGTH].to_str().unwrap(),
                count.to_string(),
                "{range:?}"
            );
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body.len(), count, "{range:?} of {len}");
            assert!(body[..] == content[start..start + count], "{range:?}");
        }
        // The file shrinking under a download ends the body with an error,
        // never with other bytes.
        let resp = serve_file(
            &path,
            "\"e\"",
            "application/octet-stream",
            "no-cache",
            &HeaderMap::new(),
        )
        .await;
        std::fs::write(&path, &content[..STREAM_CHUNK + 10]).unwrap();
        assert!(resp.into_body().collect().await.is_err());
    }

    #[test]
    fn if_none_match_table() {
        let etag = "\"abc\"";
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            (&["\"abc\""], true),
            (&["W/\"abc\""], true),
            (&["\"x\", \"abc\""], true),
            (&["*"], true),
            (&["\"abcd\""], false),
            (&["\"x\"", "\"abc\""], true),
        ];
        for (values, want) in cases {
            let mut h = HeaderMap::new();
            for v in *values {
                h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(none_match(&h, etag), *want, "{values:?}");
        }
    }
}
