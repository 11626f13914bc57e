//! A deadline on writes that make no progress, under hyper.
//!
//! A WebSocket session bounds its own writes (`--write-timeout-ms`,
//! `session.rs`), but before the upgrade hyper writes plain HTTP responses
//! with no time limit: a client that pipelines requests for the wallboard's
//! assets and never reads would hold its connection (and its slot among the
//! counted pending connections) forever. This wrapper fails a write or flush
//! that has made no progress for the timeout, which ends the connection.
//!
//! Written here rather than taken from a crate (`tokio-io-timeout` does this
//! and more) because it wraps every connection, keep-alive ones included:
//! it holds only the timeout and, while a write is actually stalled, one
//! boxed timer — no timer at all on an idle connection. An upgraded
//! connection leaves it behind ([`super::listener::upgraded_socket`]): the
//! session bounds its own writes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `S` with a deadline on stalled writes.
pub struct WriteDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Running while the peer has not taken a byte since a write stalled.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// The stream, once upgraded: a session bounds its own writes.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Passes a result through, starting the timer when the write stalls and
    /// clearing it on any progress; a timer that ran out fails the write.
    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took nothing within the write timeout",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.bounded(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.bounded(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.bounded(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.bounded(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::WriteDeadline;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_the_peer_never_takes_fails_after_the_timeout() {
        // A pipe whose other end is never read: it fills, then stalls.
        let (near, _far) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(near, Duration::from_millis(100));
        let outcome = tokio::time::timeout(Duration::from_secs(5), w.write_all(&[0u8; 4096])).await;
        let err = outcome.expect("ends by itself").expect_err("fails");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_taking_is_not_cut_off() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(near, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 32];
            let mut total = 0;
            while total < 4096 {
                // Each read is well within the timeout; the whole write is not.
                tokio::time::sleep(Duration::from_millis(5)).await;
                total += tokio::io::AsyncReadExt::read(&mut far, &mut buf)
                    .await
                    .expect("read");
            }
        });
        w.write_all(&[0u8; 4096]).await.expect("written");
        reader.await.expect("reader");
    }
}
