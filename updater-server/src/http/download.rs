//! Serving immutable files (blobs, versioned metadata) with `ETag`,
//! `If-None-Match` and single `Range` requests.

use std::io::SeekFrom;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

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

/// Serves `path` with the given strong `etag` (already quoted).
pub(crate) async fn serve_file(
    path: &Path,
    etag: &str,
    content_type: &'static str,
    cache_control: &'static str,
    headers: &HeaderMap,
) -> Response {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return super::error(StatusCode::NOT_FOUND, "not_found", "no such file")
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "open failed");
            return super::error(StatusCode::INTERNAL_SERVER_ERROR, "io", "cannot read file");
        }
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(_) => return super::error(StatusCode::INTERNAL_SERVER_ERROR, "io", "cannot stat file"),
    };
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    let mut builder = Response::builder()
        .header(header::ETAG, etag_value)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, cache_control);
    if none_match(headers, etag) {
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
    let (status, start, count) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial(r) => {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{len}", r.start, r.end),
            );
            (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1)
        }
        RangeRequest::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::RANGE_NOT_SATISFIABLE.into_response());
        }
    };
    if start > 0 && file.seek(SeekFrom::Start(start)).await.is_err() {
        return super::error(StatusCode::INTERNAL_SERVER_ERROR, "io", "cannot seek file");
    }
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(count), 256 * 1024));
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
