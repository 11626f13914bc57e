//! What a node answers before its store answers: it has bound its ports
//! but Redis is not reachable yet (`crate::node` keeps trying, with
//! backoff). An orchestrator sees a live process that is not ready —
//! `/healthz` 200, `/readyz` 503 — instead of a crash loop; a load
//! balancer sends it nobody; anything else gets 503 with `Retry-After`.
//!
//! Deliberately small: no hub exists yet, so no session, page or metric can
//! be served. Every response closes its connection, so nothing opened now
//! outlives the start (a keep-alive probe would otherwise go on hearing
//! "starting" from a node long ready); connections are bounded in number
//! ([`MAX_CONNECTIONS`]) and in time (the header-read timeout).

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Connections served at once while starting (probes and early clients);
/// more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Why the node is not ready yet: the last failure, for `/readyz`.
#[derive(Clone, Default)]
pub struct Waiting(Arc<parking_lot::Mutex<String>>);

impl Waiting {
    pub fn set(&self, why: impl Into<String>) {
        *self.0.lock() = why.into();
    }
    fn get(&self) -> String {
        self.0.lock().clone()
    }
}

/// Runs `work` to completion while answering on `listeners` as described
/// in the module docs; returns its output. The listeners are only
/// borrowed: the node serves on them once `work` is done.
pub async fn serve_while<F: Future>(
    listeners: &[&TcpListener],
    waiting: Waiting,
    header_timeout: Duration,
    work: F,
) -> F::Output {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut work = std::pin::pin!(work);
    loop {
        let accept = async {
            match listeners {
                [one] => one.accept().await,
                [one, two, ..] => tokio::select! {
                    a = one.accept() => a,
                    b = two.accept() => b,
                },
                [] => std::future::pending().await,
            }
        };
        tokio::select! {
            out = &mut work => return out,
            accepted = accept => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    continue; // dropped: closed at once
                };
                let waiting = waiting.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let answer = answer(request.uri().path(), &waiting.get());
                        async move { Ok::<_, std::convert::Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

fn answer(path: &str, why: &str) -> Response<Body> {
    let (status, body) = match path {
        "/healthz" => (StatusCode::OK, "ok\n".to_string()),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("starting: waiting for Redis ({why})\n"),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: waiting for Redis; retry shortly\n".to_string(),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if status != StatusCode::OK {
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}
