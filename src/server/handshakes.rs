//! Turns: how many connections the node reads and answers the first
//! request of at once (`--max-handshakes`), the rest waiting in order.
//!
//! Why: memory. A connection being read holds hyper's 8 KiB read buffer
//! and its request, freed a moment later. In a reconnect storm every
//! agent's handshake is in flight at once: a thousand of them make ten
//! megabytes that the allocator keeps once they are freed, between the
//! sessions' own allocations made meanwhile. Reading them a bounded number
//! at a time keeps that peak, and so what a node holds after a storm,
//! bounded (BENCHMARKS.md, "Handshakes in turn"); the storm is not slower,
//! as the node's cores were the limit.
//!
//! A turn must not become a way to stall others, so:
//! - a connection takes a turn only once it has sent something (one that
//!   sends nothing holds none, and is closed after
//!   `--http-header-timeout-ms`, as before);
//! - a turn ends once the first request's response is ready (a WebSocket:
//!   its `101`), and at the latest after `--handshake-turn-ms`: a request
//!   sent more slowly goes on without it;
//! - a connection waits for a turn at most `--handshake-turn-ms` too, then
//!   goes on without one: slow peers, however many, delay the others by
//!   that much at most (so what is bounded is the turns: a connection that
//!   goes on without one is read beside them);
//! - the first request's headers are due `--http-header-timeout-ms` after
//!   the connection opened, whatever it waited, also while the node drains
//!   (the listener checks it: hyper's own deadline starts only once it
//!   reads).

use crate::config::Config;
use metrics::Gauge;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The turns of one listener.
pub struct Turns {
    slots: Arc<Semaphore>,
    longest: Duration,
    header_deadline: Duration,
}

/// What a connection got: its turn, held until [`Turn::end`] (its time is
/// up), [`Slot::release`] (its first request answered) or the connection's
/// end; or none.
pub struct Turn {
    slot: Arc<Slot>,
    pub ends_at: Instant,
    /// When the first request's headers must have arrived.
    pub headers_by: Instant,
}

/// A turn, shared with the connection's service, which gives it back once
/// the first request is answered.
#[derive(Default)]
pub struct Slot(Mutex<Option<(OwnedSemaphorePermit, Counted)>>);

impl Slot {
    pub fn release(&self) {
        self.0.lock().take();
    }
}

impl Turn {
    /// No turn (the node is closing): only the header deadline.
    pub fn none(headers_by: Instant) -> Self {
        Turn {
            slot: Arc::default(),
            ends_at: headers_by,
            headers_by,
        }
    }

    /// Whether the connection still holds a turn.
    pub fn held(&self) -> bool {
        self.slot.0.lock().is_some()
    }

    /// Gives the turn back: its time is up.
    pub fn end(&self) {
        self.slot.release();
    }

    /// The turn, for the service that answers the first request.
    pub fn slot(&self) -> Arc<Slot> {
        self.slot.clone()
    }
}

impl Turns {
    pub fn new(config: &Config) -> Self {
        Turns {
            // At least 1 (the configuration refuses 0, which would make
            // every connection wait).
            slots: Arc::new(Semaphore::new(config.max_handshakes.max(1) as usize)),
            longest: Duration::from_millis(config.handshake_turn_ms),
            header_deadline: config.http_header_timeout(),
        }
    }

    /// Waits until `stream` (accepted at `opened`) has sent something,
    /// then for a turn. `None`: it sent nothing within the header deadline,
    /// or closed (close it).
    pub async fn take(&self, stream: &TcpStream, opened: Instant) -> Option<Turn> {
        let headers_by = opened + self.header_deadline;
        // A peek, not `readable()`, which may report a socket ready that
        // has nothing to read.
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(headers_by, stream.peek(&mut first)).await {
            Ok(Ok(n)) if n > 0 => {}
            // Silent for the header deadline, closed, or broken.
            _ => return None,
        }
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                let _waiting = Counted::on(&crate::metrics::get().handshakes_waiting);
                let until = headers_by.min(Instant::now() + self.longest);
                let permit =
                    tokio::time::timeout_at(until, self.slots.clone().acquire_owned()).await;
                // Waited a turn's length: go on without one. The semaphore
                // is never closed, so `Err` from it cannot be.
                permit.ok().and_then(Result::ok)
            }
        };
        let slot = permit.map(|p| (p, Counted::on(&crate::metrics::get().handshakes)));
        Some(Turn {
            slot: Arc::new(Slot(Mutex::new(slot))),
            ends_at: Instant::now() + self.longest,
            headers_by,
        })
    }
}

/// One more on a gauge while it exists (also when the future holding it
/// is dropped: the node is closing).
struct Counted(&'static Gauge);

impl Counted {
    fn on(gauge: &'static Gauge) -> Self {
        gauge.increment(1.0);
        Counted(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
