//! The real `updater-server` service, in this process, on a loopback port,
//! over its embedded store and reading the world's clock.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use catalog::Catalog;
use updater_server::auth::{Accounts, SessionPolicy};
use updater_server::http::{router, AppState, Limits};
use updater_server::store::RedbStore;

use crate::clock::FleetClock;

/// A running server. Dropping it stops the service.
#[derive(Debug)]
pub struct InProcessServer {
    url: String,
    address: SocketAddr,
    data: PathBuf,
    accounts: Accounts,
    latencies: CheckInLatencies,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcessServer {
    /// Starts a server over `data` (the layout `updater-server --data-dir`
    /// uses, so the admin CLI can explore it afterwards), on `address` or a
    /// free loopback port.
    pub fn start(
        data: &Path,
        clock: &FleetClock,
        address: Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        let catalog = open_catalog(data, clock)?;
        let store_path = data.join("server.redb");
        let store = RedbStore::open(&store_path)
            .with_context(|| format!("opening {}", store_path.display()))?;
        let accounts = Accounts::new(
            Arc::new(store),
            clock.for_server(),
            data.join("keys"),
            SessionPolicy::default(),
        );
        let latencies = CheckInLatencies::default();
        let recorder = latencies.clone();
        let app = router(
            AppState::new(&catalog, data.join("keys"), accounts.clone()),
            Limits::default(),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let recorder = recorder.clone();
                async move {
                    let check_in = req.uri().path().ends_with("/checkin");
                    let started = std::time::Instant::now();
                    let resp = next.run(req).await;
                    if check_in {
                        recorder.record(started.elapsed());
                    }
                    resp
                }
            },
        ));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("updater-server")
            .enable_all()
            .build()?;
        let bind = address.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(bind))
            .with_context(|| format!("listening on {bind}"))?;
        let address = listener.local_addr()?;
        let url = format!("http://{address}");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            let stopped = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!("server stopped: {e}");
            }
        });
        Ok(Self {
            url,
            address,
            data: data.to_owned(),
            accounts,
            latencies,
            shutdown: Some(tx),
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// How long the server took to answer each agent check-in so far.
    pub fn check_in_latencies(&self) -> &CheckInLatencies {
        &self.latencies
    }

    /// The tenants and admins (the admin CLI's view).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The catalog the server serves, for imports and timestamp refreshes.
    pub fn catalog(&self, clock: &FleetClock) -> anyhow::Result<Catalog> {
        open_catalog(&self.data, clock)
    }
}

fn open_catalog(data: &Path, clock: &FleetClock) -> anyhow::Result<Catalog> {
    let root = data.join("catalog");
    Catalog::open_or_init(&root, &data.join("keys"), clock.now())
        .with_context(|| format!("opening the catalog in {}", root.display()))
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// Server-side check-in latencies (request in to response head out).
#[derive(Debug, Clone, Default)]
pub struct CheckInLatencies {
    micros: Arc<std::sync::Mutex<Vec<u64>>>,
}

impl CheckInLatencies {
    fn record(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.micros
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(us);
    }

    /// Check-ins answered.
    pub fn count(&self) -> usize {
        self.micros.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The `q` quantile (0.0–1.0) in milliseconds; `None` before any check-in.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let mut v = self
            .micros
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1] as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let l = CheckInLatencies::default();
        assert_eq!(l.quantile_ms(0.99), None);
        for ms in 1..=100 {
            l.record(std::time::Duration::from_millis(ms));
        }
        assert_eq!(l.count(), 100);
        assert_eq!(l.quantile_ms(0.5), Some(50.0));
        assert_eq!(l.quantile_ms(0.99), Some(99.0));
        assert_eq!(l.quantile_ms(1.0), Some(100.0));
    }
}
