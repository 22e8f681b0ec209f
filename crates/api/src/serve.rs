//! The server loop: accepts connections up to a cap, serves each with hyper's HTTP/1 under a
//! header-read timeout, and shuts down gracefully.
//!
//! `axum::serve` has neither bound: it accepts whatever the kernel hands over and waits for a
//! request head without end, so a client that opens connections and sends part of a head
//! (slowloris) holds them until the process runs out of file descriptors. Here:
//! - a connection slot (a semaphore permit) is taken *before* `accept`: with
//!   `connections_max` connections open the loop waits until one closes, and new ones queue in
//!   the kernel's listen backlog meanwhile; the loop never spins;
//! - hyper's `header_read_timeout` closes a connection whose request head has not arrived in
//!   time. Hyper starts that clock whenever it waits for a head, so a keep-alive connection
//!   idle that long is closed too; a response being streamed (a live tail) is not limited;
//! - every request carries `ConnectInfo<SocketAddr>` as an extension, as
//!   `into_make_service_with_connect_info` gave it.

use std::{future::Future, io, net::SocketAddr, pin::pin, sync::Arc, time::Duration};

use axum::{Extension, Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, watch},
};
use tower::Service as _;

use crate::{ApiConfig, metrics::ApiMetrics, routes::stream::StopSignal};

/// How long the accept loop pauses after an accept error other than a connection's own (such
/// as running out of file descriptors), so that it does not spin on it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// How [`serve_with`] treats connections. [`ApiConfig::serve_options`] gives the configured
/// ones; [`Default`] the embedded defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long open connections may finish after shutdown is signalled.
    pub shutdown_grace: Duration,
    /// Time a connection has to deliver a whole request head, from its opening or the end of
    /// its previous response (zero turns the timeout off).
    pub header_read_timeout: Duration,
    /// Connections served at once (`0` counts as 1).
    pub connections_max: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ApiConfig::default().serve_options()
    }
}

/// Serves `router` on `listener` with the default [`ServeOptions`] and a shutdown grace of
/// `grace`; see [`serve_with`].
///
/// # Errors
/// None today; the result is kept for listener errors.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    shutdown: F,
    grace: Duration,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let options = ServeOptions { shutdown_grace: grace, ..ServeOptions::default() };
    serve_with(listener, router, shutdown, options).await
}

/// Serves `router` on `listener` until `shutdown` completes, then ends live tails (their
/// final event says `shutting_down`), stops accepting, and waits up to
/// `options.shutdown_grace` for open connections to finish their requests.
///
/// At most `options.connections_max` connections are open at once, and a connection that
/// does not deliver a request head within `options.header_read_timeout` is closed.
///
/// # Errors
/// None today: accept errors are logged and retried. The result is kept for listener errors.
pub async fn serve_with<F>(
    listener: TcpListener,
    router: Router,
    shutdown: F,
    options: ServeOptions,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = slot_count(options.connections_max);
    ApiMetrics::get().connections_max(slots);
    let server = Server {
        // `with_state(())` turns every route into a `Route` once, not per request.
        app: router.layer(Extension(StopSignal(stop_rx.clone()))).with_state(()),
        slots: Arc::new(Semaphore::new(slots)),
        header_read_timeout: options.header_read_timeout,
        stop: stop_rx,
    };
    let slots_held = Arc::clone(&server.slots);
    tokio::select! {
        () = shutdown => {}
        () = server.accept_loop(listener) => {}
    }
    // The listener is dropped with the loop: nothing more is accepted.
    tracing::info!("api shutting down");
    stop_tx.send_replace(true);
    // Every open connection holds a slot: all of them back means all connections closed.
    let all = u32::try_from(slots).unwrap_or(u32::MAX);
    if tokio::time::timeout(options.shutdown_grace, slots_held.acquire_many(all)).await.is_err() {
        let grace_ms = u64::try_from(options.shutdown_grace.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(grace_ms, "api connections still open after the grace period");
    }
    Ok(())
}

/// Slots for `max` connections: at least one, and no more than a semaphore (and
/// `acquire_many`'s `u32`) can count.
fn slot_count(max: usize) -> usize {
    let ceiling = Semaphore::MAX_PERMITS.min(usize::try_from(u32::MAX).unwrap_or(usize::MAX));
    max.clamp(1, ceiling)
}

/// What the accept loop hands every connection.
#[derive(Debug)]
struct Server {
    app: Router,
    slots: Arc<Semaphore>,
    header_read_timeout: Duration,
    /// Turns `true` at shutdown.
    stop: watch::Receiver<bool>,
}

impl Server {
    /// Accepts connections until the future is dropped, each once a slot is free.
    async fn accept_loop(self, listener: TcpListener) {
        loop {
            let permit = match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(permit) => permit,
                Err(TryAcquireError::NoPermits) => {
                    ApiMetrics::get().connections_limited();
                    tracing::debug!("api connection limit reached; accepting when one closes");
                    match Arc::clone(&self.slots).acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    }
                }
                Err(TryAcquireError::Closed) => return,
            };
            let (tcp, remote) = accept(&listener).await;
            self.spawn_connection(tcp, remote, permit);
        }
    }

    /// Serves one connection on its own task; its slot is released when the task ends.
    fn spawn_connection(&self, tcp: TcpStream, remote: SocketAddr, permit: OwnedSemaphorePermit) {
        // Replies and live-tail events go out as soon as they are written, not held back by
        // Nagle's algorithm waiting for the client's acknowledgement of the previous segment.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set on an API connection");
        }
        let app = self.app.clone();
        let service = service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            // A `Router` is always ready (its `poll_ready` answers `Ready` at once), so it is
            // called without waiting for readiness, as axum's own server does.
            app.clone().call(request)
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new());
        let timeout = self.header_read_timeout;
        builder.header_read_timeout((!timeout.is_zero()).then_some(timeout));
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            let _slot = permit;
            let metrics = ApiMetrics::get();
            metrics.connection_opened();
            let mut connection = pin!(builder.serve_connection(TokioIo::new(tcp), service));
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopped(&mut stop) => {
                    // Finish the request in flight (a live tail ends on the same signal),
                    // then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            match result {
                Ok(()) => {}
                Err(error) if error.is_timeout() => metrics.header_timeout(),
                Err(error) => tracing::debug!(%error, "api connection ended with an error"),
            }
            metrics.connection_closed();
        });
    }
}

/// Completes once shutdown is signalled; never when the signal's sender is gone without it.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The next connection. A connection's own failure (reset or aborted before it was accepted)
/// is skipped; any other error (out of file descriptors, …) is logged and retried after a
/// pause, as axum's server does.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::error!(%error, "api accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_at_least_one_and_countable() {
        assert_eq!(slot_count(0), 1);
        assert_eq!(slot_count(4096), 4096);
        assert!(u32::try_from(slot_count(usize::MAX)).is_ok());
        assert!(slot_count(usize::MAX) <= Semaphore::MAX_PERMITS);
    }
}
