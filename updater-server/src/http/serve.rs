//! Running the service: plain HTTP (loopback only, checked by the CLI) or
//! HTTPS with rustls on the ring provider.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use catalog::Catalog;

use super::{router, AppState, CatalogUploads, Limits};
use crate::auth::{Accounts, Clock};
use crate::fleet::Fleet;

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (leaf first).
    pub cert: PathBuf,
    /// PKCS#8, PKCS#1 or SEC1 private key.
    pub key: PathBuf,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Serve HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Request limits.
    pub limits: Limits,
    /// The catalog's signing keys directory.
    pub keys_dir: PathBuf,
    /// Who may upload and remove releases over the API, and the size limit.
    pub catalog_uploads: CatalogUploads,
}

/// Serves until Ctrl-C / SIGTERM, re-signing the timestamp before it expires
/// and evaluating staged rollouts every minute.
/// Prints `updater-server listening on <url>` once the socket is bound.
pub async fn serve(catalog: Catalog, accounts: Accounts, opts: ServeOptions) -> anyhow::Result<()> {
    let sweeper = tokio::spawn(sweep_sessions(accounts.clone()));
    let accounts_clock = accounts.clock();
    let fleet = Fleet::new(
        accounts.clone(),
        catalog.root().to_owned(),
        opts.keys_dir.clone(),
    );
    let rollouts = tokio::spawn(crate::fleet::rollouts::service::run(
        fleet,
        accounts.clock(),
    ));
    let state_accounts = accounts.clone();
    let state = AppState::new(&catalog, opts.keys_dir.clone(), accounts)
        .with_catalog_uploads(opts.catalog_uploads.clone())
        .with_secure_cookies(opts.tls.is_some());
    let app = router(state, opts.limits);
    let refresher = tokio::spawn(refresh_timestamps(catalog, state_accounts, accounts_clock));
    let result = match &opts.tls {
        None => serve_plain(app, opts.listen).await,
        Some(tls) => serve_tls(app, opts.listen, tls).await,
    };
    refresher.abort();
    sweeper.abort();
    rollouts.abort();
    result
}

/// The process-wide rustls provider: ring, the only one in the dependency graph.
pub(crate) fn install_crypto_provider() {
    // Fails only if a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Plain HTTP; on Linux, file bodies go from the page cache to the socket
/// (`zero_copy`).
async fn serve_plain(app: axum::Router, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("updater-server listening on http://{addr}");
    let server = axum_server::from_tcp(listener)?.handle(shutdown_handle());
    #[cfg(target_os = "linux")]
    let server = {
        super::mapped_files::serve_zero_copy();
        server.acceptor(SendfileAcceptor)
    };
    server
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    Ok(())
}

/// Wraps every accepted connection in a `SendfileStream`, which sends
/// mapped file bodies from the page cache.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
struct SendfileAcceptor;

#[cfg(target_os = "linux")]
impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for SendfileAcceptor {
    type Stream = sendfile_body::SendfileStream;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        std::future::ready(Ok((sendfile_body::SendfileStream::new(stream), service)))
    }
}

/// A server handle that shuts down gracefully on Ctrl-C / SIGTERM, giving
/// requests in flight ten seconds.
fn shutdown_handle() -> axum_server::Handle<SocketAddr> {
    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    handle
}

async fn serve_tls(app: axum::Router, listen: SocketAddr, tls: &TlsFiles) -> anyhow::Result<()> {
    install_crypto_provider();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .with_context(|| {
            format!(
                "loading TLS certificate {} and key {}",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening (TLS)");
    println!("updater-server listening on https://{addr}");
    axum_server::from_tcp_rustls(listener, config)?
        .handle(shutdown_handle())
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    Ok(())
}

/// Deletes expired sessions every ten minutes, one node at a time.
async fn sweep_sessions(accounts: Accounts) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let a = accounts.clone();
        let pass = tokio::task::spawn_blocking(move || {
            crate::store::run_exclusively(a.store(), "sessions", || a.sweep_sessions())
        });
        match pass.await {
            Ok(Ok(None | Some(Ok(0)))) => {}
            Ok(Ok(Some(Ok(n)))) => tracing::info!(sessions = n, "removed expired sessions"),
            Ok(Ok(Some(Err(e)))) => tracing::error!(error = %e, "session sweep failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "session sweep: store"),
            Err(e) => tracing::error!(error = %e, "session sweep task failed"),
        }
    }
}

/// Every ten minutes of `clock` time (a simulation's accelerated clock
/// re-signs as often in its own time as a real server does), one node at a
/// time.
async fn refresh_timestamps(catalog: Catalog, accounts: Accounts, clock: Arc<dyn Clock>) {
    let catalog = Arc::new(std::sync::Mutex::new(catalog));
    let period = clock
        .real_wait(chrono::TimeDelta::minutes(10))
        .max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let c = Arc::clone(&catalog);
        let now = clock.now();
        let store = accounts.clone();
        let result = tokio::task::spawn_blocking(move || {
            let refresh = || {
                let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
                let did = c.refresh_timestamp(now)?;
                Ok::<_, anyhow::Error>((did, c.repository()?.targets_due_offline(now)))
            };
            // Another node re-signing the shared catalog now: nothing to do.
            crate::store::run_exclusively(store.store(), "timestamp", refresh)?
                .unwrap_or(Ok((false, None)))
        })
        .await;
        if let Ok(Ok((_, Some(expires)))) = &result {
            tracing::warn!(
                %expires,
                "the signed targets expire soon and their key is offline: re-sign them on the signing host (`catalog refresh-timestamp` there), then `catalog publish <its catalog>` here"
            );
        }
        match result {
            Ok(Ok((true, _))) => tracing::info!("re-signed timestamp"),
            Ok(Ok((false, _))) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "timestamp refresh failed"),
            Err(e) => tracing::error!(error = %e, "timestamp refresh task failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
