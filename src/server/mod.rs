//! The SCIM HTTPS listener: accepts TLS connections up to a limit, serves HTTP/1.1 with hyper,
//! closes connections that stall, and on shutdown stops accepting and lets in-flight requests
//! finish within a bounded time.

mod request_target;
mod write_deadline;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::tokens::TokenVerifier;
use crate::store::Store;

/// What every SCIM request handler reads.
pub struct AppState {
    pub config: ArcSwap<Config>,
    pub store: Store,
    pub tokens: Arc<TokenVerifier>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn public_url(&self) -> String {
        self.config.load().public_url().to_string()
    }
}

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets to send a request's headers, counted from when the connection is ready
/// for the next request, so an idle keep-alive connection also closes after it.
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Time a response write may wait for the client to read before the connection closes.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` turns true, then drains for at most `drain` before returning.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let max_connections = state.config.load().server.max_connections;
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // Small SCIM answers would otherwise wait for the client's delayed ACK (Nagle).
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls_stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => tls_stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(crate::scim::http::handle(state, request).await) }
            });
            let stream = request_target::RepairedRequestTargets::new(tls_stream);
            let io = TokioIo::new(write_deadline::WriteDeadline::new(stream, WRITE_STALL_TIMEOUT));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(io, service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Read now, so a value changed by a reload applies.
    let drain = Duration::from_secs(state.config.load().server.shutdown_timeout_secs);
    tracing::info!("stopped accepting SCIM connections; draining in-flight requests");
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(seconds = drain.as_secs(), "in-flight requests did not finish in time; closing them");
    }
}
