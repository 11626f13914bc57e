//! The accept loop: every TCP connection is counted from `accept`, not only
//! once it is a WebSocket, and must send its request headers within
//! `--http-header-timeout-ms`.
//!
//! A client that opens sockets and sends half a request (or nothing) would
//! otherwise hold a file descriptor forever without counting against
//! `--max-connections`, and a few hundred of them would starve new clients
//! and `/healthz`. Here, connections not yet upgraded count beside the
//! sessions: an upgrade is refused with 503 once sessions plus other
//! pending connections reach `--max-connections`, while plain requests
//! (`/healthz`, `/readyz`) are still served; past that by
//! [`HTTP_OVERFLOW`], a new connection gets a canned 503 at once and is
//! closed without reading anything. The header deadline (for the first
//! request counted here from the opening; hyper's for the next ones on a
//! kept-alive connection) frees every pending slot in bounded time. Each
//! connection waits for its turn (`super::handshakes`) before hyper reads
//! it.
//!
//! The peer's address is attached to each request as
//! `ConnectInfo<SocketAddr>`, read through [`super::client_addr`].

use super::client_addr::ClientAddrs;
use super::handshakes::{Turn, Turns};
use super::write_deadline::WriteDeadline;
use crate::hub::Hub;
use crate::ws::Socket;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Connections beyond `--max-connections` still served as HTTP (so a full
/// node answers `/healthz` and refuses upgrades with a proper 503); fits in
/// the open files the node keeps beside its connections.
pub const HTTP_OVERFLOW: usize = 64;

/// The hub's WebSocket on a connection [`serve_http`] upgraded: its TCP
/// stream, with what hyper read past the handshake, reading messages of at
/// most `max_message` bytes. `None` (logged) for a connection served some
/// other way: never, as the routes are only served by [`serve_http`].
pub fn upgraded_socket(upgraded: hyper::upgrade::Upgraded, max_message: usize) -> Option<Socket> {
    match upgraded.downcast::<TokioIo<WriteDeadline<TcpStream>>>() {
        Ok(parts) => Some(Socket::new(
            parts.io.into_inner().into_inner(),
            parts.read_buf,
            max_message,
        )),
        Err(_) => {
            tracing::error!("an upgraded connection that is not the listener's TCP stream");
            None
        }
    }
}

/// HTTP connections accepted and not (yet) upgraded to a session.
#[derive(Debug, Default)]
pub struct Pending(AtomicUsize);

impl Pending {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn enter(self: &Arc<Self>) -> PendingGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        PendingGuard(self.clone())
    }
}

struct PendingGuard(Arc<Pending>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a full node writes to a connection it will not serve.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n";

/// What a connection past `--max-connections-per-ip` (not yet upgraded,
/// from one untrusted peer) is told.
const FULL_FROM_ADDRESS: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 39\r\nconnection: close\r\n\r\ntoo many connections from this address\n";

/// Accepts and serves HTTP until `shutdown` resolves, then lets every
/// connection finish its current request (upgraded ones are sessions and
/// end on their own) and returns.
pub async fn serve_http(
    hub: Arc<Hub>,
    listener: TcpListener,
    router: Router,
    addrs: Arc<ClientAddrs>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let pending = Arc::new(Pending::default());
    let router = router.layer(axum::Extension(pending.clone()));
    // Signalled at shutdown: every connection task then shuts down gracefully.
    let (stop_tx, stop_rx) = watch::channel(());
    let turns = Arc::new(Turns::new(&hub.config));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a transient error: back
                    // off briefly rather than spin.
                    tracing::warn!(error = ?e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // The hub batches its own writes (many frames, one flush): Nagle's
        // algorithm would only add delay to small replies and commands.
        let _ = stream.set_nodelay(true);
        let open = hub.connections.load(Ordering::Relaxed) + pending.count();
        if open >= hub.config.max_connections.saturating_add(HTTP_OVERFLOW) {
            crate::metrics::get().rejected_connections.increment(1);
            // Whatever fits in the socket buffer at once; never waits.
            let _ = stream.try_write(FULL);
            continue;
        }
        // One address may not hold every pending slot (half-sent requests
        // from one host): it gets as many as `--max-connections-per-ip`.
        let Ok(from_peer) = addrs.admit_pending(peer.ip()) else {
            crate::metrics::get().rejected_connections.increment(1);
            let _ = stream.try_write(FULL_FROM_ADDRESS);
            continue;
        };
        let guard = (pending.enter(), from_peer);
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let header_timeout = hub.config.http_header_timeout();
        let write_timeout = hub.config.write_timeout();
        let turns = turns.clone();
        let opened = tokio::time::Instant::now();
        tokio::spawn(async move {
            let _guard = guard;
            let mut stopping = false;
            let turn = tokio::select! {
                turn = turns.take(&stream, opened) => match turn {
                    Some(turn) => turn,
                    None => return,
                },
                // Closing while it waits: no turn, but what it sent is read
                // and answered below (an upgrade: 503 draining).
                _ = stop.changed() => {
                    stopping = true;
                    Turn::none(opened + header_timeout)
                }
            };
            // Set once hyper has read the first request's headers.
            let headed = Arc::new(AtomicBool::new(false));
            let read = headed.clone();
            let slot = turn.slot();
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    read.store(true, Ordering::Relaxed);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let answer = router.clone().oneshot(request);
                    let slot = slot.clone();
                    async move {
                        let answer = answer.await;
                        // Answered (a WebSocket: its 101): the turn is
                        // the next connection's.
                        slot.release();
                        answer
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                // Responses too are bounded in time (a peer that never
                // reads is dropped, not waited on; `write_deadline`).
                .serve_connection(
                    TokioIo::new(WriteDeadline::new(stream, write_timeout)),
                    service,
                )
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut headers_due = true;
            let mut shut = false;
            // Biased, the connection first: hyper reads what arrived before
            // a deadline, or the shutdown, is looked at.
            loop {
                tokio::select! {
                    biased;
                    _ = conn.as_mut() => return,
                    // A slow request goes on without its turn (`handshakes`).
                    _ = tokio::time::sleep_until(turn.ends_at), if turn.held() => turn.end(),
                    // The first request's headers, due from the opening
                    // (hyper's deadline covers the next ones).
                    _ = tokio::time::sleep_until(turn.headers_by), if headers_due => {
                        if !headed.load(Ordering::Relaxed) {
                            return;
                        }
                        headers_due = false;
                    }
                    // Closing, the connection polled once more above: a
                    // request that arrived is read and answered, then the
                    // connection ends; the deadlines still hold meanwhile.
                    _ = std::future::ready(()), if stopping && !shut => {
                        turn.end();
                        conn.as_mut().graceful_shutdown();
                        shut = true;
                    }
                    _ = stop.changed(), if !stopping => stopping = true,
                }
            }
        });
    }
    drop(listener);
    drop(stop_rx);
    // Each connection task holds a receiver: tell them all, then wait until
    // every one has finished.
    let _ = stop_tx.send(());
    stop_tx.closed().await;
    Ok(())
}
