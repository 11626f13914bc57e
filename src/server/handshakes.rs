//! Turns: how many connections the node reads and answers the first
//! request of at once (`--max-handshakes`), the rest waiting in order.
//!
//! Why: memory. A connection being served holds hyper's 8 KiB read buffer,
//! its request and, for an upgrade, the session's first allocations, all
//! freed a moment later. In a reconnect storm every agent's handshake is in
//! flight at once: a thousand of them make ten megabytes that the allocator
//! keeps once they are freed, between the sessions' own allocations made
//! meanwhile. Serving them a bounded number at a time keeps that peak, and
//! so what a node holds after a storm, bounded (BENCHMARKS.md, "Handshakes
//! in turn"); the storm is not slower, as the node's cores were the limit.
//!
//! A turn must not become a way to stall sign-ins, so:
//! - a connection takes a turn only once it has sent something (one that
//!   sends nothing is closed after `--http-header-timeout-ms`, as before:
//!   the first request's headers are still due that long after the
//!   connection opened, whatever it waited);
//! - a turn lasts at most `--handshake-turn-ms`: a peer that sends its
//!   request slowly, and a kept-alive connection, go on without one, so a
//!   few slow hosts hold the turns for that long, not for the header
//!   deadline;
//! - a connection that has waited `--http-header-timeout-ms` for a turn
//!   goes on without one: the bound never makes a request slower than that.

use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The node's turns.
pub struct Turns {
    slots: Arc<Semaphore>,
    longest: Duration,
    header_deadline: Duration,
}

/// What a connection got: its turn (held until [`Turn::ends_at`] or until
/// the connection is dropped, whichever comes first), or none.
pub struct Turn {
    slot: Option<Slot>,
    pub ends_at: Instant,
    /// When the first request's headers must have arrived, counted from
    /// the connection's opening: waiting for the turn does not extend it
    /// (hyper's own deadline starts only once it reads).
    pub headers_by: Instant,
}

/// A turn held: counted in `presence_hub_handshakes` while it exists.
struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Slot {
    fn counted(permit: OwnedSemaphorePermit) -> Self {
        crate::metrics::get().handshakes.increment(1.0);
        Slot(permit)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        crate::metrics::get().handshakes.decrement(1.0);
    }
}

impl Turn {
    /// Whether the connection still holds a turn.
    pub fn held(&self) -> bool {
        self.slot.is_some()
    }

    /// Gives the turn back (its time is up).
    pub fn end(&mut self) {
        self.slot = None;
    }
}

impl Turns {
    pub fn new(config: &Config) -> Self {
        Turns {
            // At least 1 (the configuration refuses 0, which would make
            // every connection wait out the header deadline).
            slots: Arc::new(Semaphore::new(config.max_handshakes.max(1) as usize)),
            longest: Duration::from_millis(config.handshake_turn_ms),
            header_deadline: config.http_header_timeout(),
        }
    }

    /// Waits until `stream` has sent something, then for a turn. `None`: it
    /// sent nothing within the header deadline (close it).
    pub async fn take(&self, stream: &TcpStream) -> Option<Turn> {
        let deadline = Instant::now() + self.header_deadline;
        // A peek, not `readable()`, which may report a socket ready that
        // has nothing to read.
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
            Ok(Ok(n)) if n > 0 => {}
            // Silent for the header deadline, closed, or broken.
            _ => return None,
        }
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                let _waiting = Waiting::counted();
                let permit =
                    tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
                // Waited the header deadline: go on without one. The
                // semaphore is never closed, so `Err` from it cannot be.
                permit.ok().and_then(Result::ok)
            }
        };
        Some(Turn {
            slot: permit.map(Slot::counted),
            ends_at: Instant::now() + self.longest,
            headers_by: deadline,
        })
    }
}

/// One connection counted in `presence_hub_handshakes_waiting` while it
/// exists (also when the wait is dropped: the node is closing).
struct Waiting;

impl Waiting {
    fn counted() -> Self {
        crate::metrics::get().handshakes_waiting.increment(1.0);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        crate::metrics::get().handshakes_waiting.decrement(1.0);
    }
}
