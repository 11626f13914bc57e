//! What became of a change whose answer a node did not get (PROTOCOL.md §3.1).
//!
//! A change sent to Redis may sit unanswered: Redis is frozen, the link is
//! slow, this node was frozen itself. Giving up and answering `unavailable`
//! would be a lie when the request is still in a socket buffer and runs
//! later, and it would be one as soon as Redis wakes. So every change
//! carries two guards, both checked by the script that applies it:
//!
//! - a **deadline** on the Redis server's own clock, past which the script
//!   refuses it. The node learns that clock at every lease renewal
//!   ([`RedisClock`]) and sets the deadline so that it has passed on Redis
//!   by the time the node stops waiting: a change is then applied before
//!   the node answers, or never.
//! - an **attempt id**, which the script records with the change. A node
//!   that stopped waiting asks Redis what became of the attempt
//!   (`lua/settle.lua`) and, if it was not applied, fences it: the attempt
//!   is refused whenever it arrives, even on a server whose clock is off.
//!
//! The node answers `ok` when the attempt was applied, `unavailable` when
//! it was not, and `outcome_unknown` only when Redis cannot be asked (it is
//! the one that is frozen) or the agent changed again since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a fence outlives the attempt it guards: a request can wait in
/// a frozen server's socket buffer no longer than this. Fences exist only
/// for changes whose answer was lost, so they are few.
pub const FENCE_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a settings change's attempt is remembered (the key `settle.lua`
/// reads): far longer than a node waits for an answer. Settings change
/// rarely, so these keys are few.
pub const SETTINGS_ATTEMPT_TTL: Duration = Duration::from_secs(600);

/// Attempt ids unique across nodes and restarts: a random prefix per
/// process, then a counter.
pub struct Attempts {
    prefix: String,
    next: AtomicU64,
}

impl Attempts {
    pub fn new() -> Self {
        Attempts {
            prefix: format!("{:016x}", rand::random::<u64>()),
            next: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl Default for Attempts {
    fn default() -> Self {
        Self::new()
    }
}

/// A lower bound of the Redis server's clock, as of one reading.
///
/// `TIME` answered `server_ms` at some moment between sending it and
/// `received`; so at any later local instant `t` the server's clock shows
/// at least `server_ms + (t - received)`, assuming it does not run slower
/// than this node's monotonic clock or step back. A reading that took long
/// is loose (the server's clock may be that much ahead of the bound, so
/// deadlines would bite early) and is not kept.
#[derive(Default)]
pub struct RedisClock {
    reading: parking_lot::Mutex<Option<(u64, Instant)>>,
}

impl RedisClock {
    /// Records a `TIME` answer (`seconds`, `microseconds`) to a request sent
    /// at `sent`, received now; ignored when the round trip exceeded `max_rtt`.
    pub fn observe(&self, time: (u64, u64), sent: Instant, max_rtt: Duration) {
        let received = Instant::now();
        if received.duration_since(sent) > max_rtt {
            return;
        }
        let server_ms = time.0.saturating_mul(1000) + time.1 / 1000;
        *self.reading.lock() = Some((server_ms, received));
    }

    /// The deadline, on the server's clock, of a change sent at `sent` that
    /// the node waits for until `sent + wait`: when the node stops waiting
    /// the server's clock shows at least this. `margin` is taken off for
    /// servers whose clocks may differ from the one read (a Redis Cluster's
    /// shards, a Sentinel failover's new master). 0 (no deadline) before
    /// the first reading.
    pub fn deadline(&self, sent: Instant, wait: Duration, margin: Duration) -> u64 {
        let Some((server_ms, received)) = *self.reading.lock() else {
            return 0;
        };
        let since = (sent + wait).saturating_duration_since(received);
        // Never 0 (that means "none"), even with a reading from the future.
        (server_ms + since.as_millis() as u64)
            .saturating_sub(margin.as_millis() as u64)
            .max(1)
    }
}

/// What `settle.lua` found out.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// Applied, with this seq.
    Applied(u64),
    /// Not applied, and fenced: it never will be.
    NotApplied,
    /// Not applied now and never will be, but it may have been applied and
    /// overwritten by a later change.
    Unknown,
}

impl Settled {
    /// Reads the script's `{code, seq}` answer.
    pub fn parse(code: i64, seq: Option<String>) -> Option<Settled> {
        match code {
            1 => seq.and_then(|s| s.parse().ok()).map(Settled::Applied),
            0 => Some(Settled::NotApplied),
            2 => Some(Settled::Unknown),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_has_passed_on_the_server_when_the_node_stops_waiting() {
        let clock = RedisClock::default();
        let sent = Instant::now();
        assert_eq!(
            clock.deadline(sent, Duration::from_secs(1), Duration::ZERO),
            0
        );
        clock.observe((1_000, 500_000), sent, Duration::from_secs(1));
        let (server_ms, received) = clock.reading.lock().expect("kept");
        assert_eq!(server_ms, 1_000_500);
        let later = received + Duration::from_millis(300);
        let wait = Duration::from_millis(1000);
        // At `later + wait` the server shows at least 1_000_500 + 1300.
        assert_eq!(clock.deadline(later, wait, Duration::ZERO), 1_001_800);
        assert_eq!(
            clock.deadline(later, wait, Duration::from_millis(100)),
            1_001_700
        );
    }

    #[test]
    fn a_slow_reading_is_not_kept() {
        let clock = RedisClock::default();
        let sent = Instant::now() - Duration::from_millis(50);
        clock.observe((1, 0), sent, Duration::from_millis(10));
        assert!(clock.reading.lock().is_none());
    }

    #[test]
    fn attempt_ids_differ_across_processes_and_calls() {
        let (a, b) = (Attempts::new(), Attempts::new());
        assert_ne!(a.next(), b.next());
        assert_ne!(a.next(), a.next());
    }

    #[test]
    fn settle_answers_parse() {
        assert_eq!(
            Settled::parse(1, Some("42".into())),
            Some(Settled::Applied(42))
        );
        assert_eq!(Settled::parse(0, None), Some(Settled::NotApplied));
        assert_eq!(Settled::parse(2, None), Some(Settled::Unknown));
        assert_eq!(Settled::parse(1, None), None);
    }
}
