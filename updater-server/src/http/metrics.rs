//! Prometheus metrics: requests by route and status, and process info, in the
//! text exposition format. Hand-written: a few counters need no registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    count: u64,
    seconds: f64,
}

/// Request counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: SystemTime,
    requests: Mutex<BTreeMap<(String, String, u16), Counter>>,
    events_ingested: AtomicU64,
    events_duplicate: AtomicU64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            started: SystemTime::now(),
            requests: Mutex::new(BTreeMap::new()),
            events_ingested: AtomicU64::new(0),
            events_duplicate: AtomicU64::new(0),
        }
    }

    /// Counts an acknowledged event batch: events newly stored, and events
    /// that were already stored (retries).
    pub(crate) fn events(&self, ingested: usize, duplicates: usize) {
        self.events_ingested
            .fetch_add(ingested as u64, Ordering::Relaxed);
        self.events_duplicate
            .fetch_add(duplicates as u64, Ordering::Relaxed);
    }

    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let c = m
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        c.count += 1;
        c.seconds += seconds;
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP updater_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE updater_http_requests_total counter\n");
        for ((method, route, status), c) in m.iter() {
            let _ = writeln!(
                out,
                "updater_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                c.count
            );
        }
        out.push_str(
            "# HELP updater_http_request_duration_seconds_sum Time spent answering, by route and status.\n",
        );
        out.push_str("# TYPE updater_http_request_duration_seconds_sum counter\n");
        for ((method, route, status), c) in m.iter() {
            let _ = writeln!(
                out,
                "updater_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                c.seconds
            );
        }
        drop(m);
        let _ = writeln!(
            out,
            "# HELP updater_events_ingested_total Agent events stored.\n# TYPE updater_events_ingested_total counter\nupdater_events_ingested_total {}",
            self.events_ingested.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP updater_events_duplicate_total Agent events received again after being stored (retries).\n# TYPE updater_events_duplicate_total counter\nupdater_events_duplicate_total {}",
            self.events_duplicate.load(Ordering::Relaxed)
        );
        #[cfg(target_os = "linux")]
        let _ = writeln!(
            out,
            "# HELP updater_download_sendfile_bytes_total File body bytes sent from the page cache with sendfile (plain HTTP).\n# TYPE updater_download_sendfile_bytes_total counter\nupdater_download_sendfile_bytes_total {}",
            sendfile_body::bytes_sent()
        );
        let start = self
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        out.push_str("# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(out, "process_start_time_seconds {start}");
        if let Some(rss) = resident_bytes() {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size.\n# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out.push_str(
            "# HELP updater_build_info Build information.\n# TYPE updater_build_info gauge\n",
        );
        let _ = writeln!(
            out,
            "updater_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Counts every request under its route template (never the raw path, so
/// ids do not blow up the label set).
pub(crate) async fn track(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn exposition() {
        let m = super::Metrics::new();
        m.record("GET", "/repo/metadata/{file}", 200, 0.5);
        m.record("GET", "/repo/metadata/{file}", 200, 0.25);
        m.record("GET", "unmatched", 404, 0.0);
        m.events(5, 0);
        m.events(2, 3);
        let text = m.render();
        assert!(
            text.contains("\nupdater_events_ingested_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("\nupdater_events_duplicate_total 3\n"),
            "{text}"
        );
        assert!(text.contains(
            "updater_http_requests_total{method=\"GET\",route=\"/repo/metadata/{file}\",status=\"200\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "updater_http_request_duration_seconds_sum{method=\"GET\",route=\"/repo/metadata/{file}\",status=\"200\"} 0.75\n"
        ), "{text}");
        assert!(text.contains("status=\"404\"} 1\n"));
        assert!(text.contains("process_start_time_seconds "));
    }
}
