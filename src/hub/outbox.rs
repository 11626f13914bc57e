//! A connection's outbox: what the hub has to say to one client, waiting for
//! the connection's task to write it.
//!
//! Two lanes. *Control* frames (welcome, replies, snapshots, commands) are
//! kept in order and bounded: a client that stops reading and keeps asking
//! is closed (4008) instead of growing memory. *Deltas* are coalesced by
//! agent: a newer record replaces the pending one in place, so a slow
//! wallboard holds at most one pending frame per agent in scope and never
//! lags without bound (PROTOCOL.md §5.3). Frames are shared, pre-serialized bytes:
//! pushing one to a thousand outboxes copies a pointer a thousand times.
//!
//! The writer drains control before deltas, which keeps every snapshot ahead
//! of the deltas that follow it.
//!
//! A subscription to the whole tenant does not get its deltas pushed here one
//! by one: the outbox *follows* the tenant's shared [`DeltaLog`] and takes
//! what was appended since its last batch (same coalescing for a reader that
//! falls behind; see `delta_log`).

use super::delta_log::DeltaLog;
use indexmap::IndexMap;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a frame is (the `type` of the message), for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Welcome,
    State,
    Reply,
    Error,
    Snapshot,
    Agent,
    AgentRemoved,
    Settings,
    Command,
    Draining,
    /// Channel counters (PROTOCOL.md §10.4).
    Channel,
    /// A channel deleted from the directory (PROTOCOL.md §7.1).
    ChannelRemoved,
    /// Signed out by a supervisor (PROTOCOL.md §10.6).
    SignedOut,
    /// A channel's queue statistics (PROTOCOL.md §10.7).
    QueueStats,
}

impl Kind {
    /// A delta about an agent (what "deltas delivered" counts).
    pub fn is_delta(self) -> bool {
        matches!(self, Kind::Agent | Kind::AgentRemoved | Kind::State)
    }
}

/// One serialized JSON text frame, cheap to clone (shared bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub text: Utf8Bytes,
    /// The tenant seq a delta carries (its record's `version`; 0 for frames
    /// that carry none). Coalescing replaces a pending delta in place, so a
    /// batch is put back in seq order before it is written: a client that
    /// resumes from the highest version it applied (PROTOCOL.md §5.1.1)
    /// then never skips a change that was still queued behind it.
    pub seq: u64,
}

impl Frame {
    pub fn new(kind: Kind, text: impl Into<Utf8Bytes>) -> Self {
        Frame {
            kind,
            text: text.into(),
            seq: 0,
        }
    }

    /// The same frame, carrying `seq`.
    pub fn at(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }
}

/// Why the hub wants a connection closed, with the close code to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: u16,
    pub reason: String,
}

#[derive(Default)]
struct Inner {
    control: VecDeque<Frame>,
    deltas: IndexMap<Arc<str>, Frame>,
    // The two rare ones boxed: every connection has an outbox, and most
    // never hold either (BENCHMARKS.md, memory per connection).
    settings: Option<Box<Frame>>,
    close: Option<Box<CloseRequest>>,
    /// The tenant log this outbox reads deltas from, and its reader id.
    feed: Option<(Arc<DeltaLog>, u64)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some((log, reader)) = self.feed.take() {
            log.detach(reader);
        }
    }
}

impl Inner {
    fn is_empty(&self) -> bool {
        self.control.is_empty()
            && self.deltas.is_empty()
            && self.settings.is_none()
            && self.close.is_none()
    }
}

/// What the writer takes in one go.
#[derive(Default)]
pub struct Batch {
    pub frames: Vec<Frame>,
    pub close: Option<CloseRequest>,
}

pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    max_control: usize,
    /// Deltas replaced before they were written (shown in metrics).
    coalesced: AtomicU64,
}

impl Outbox {
    pub fn new(max_control: usize) -> Arc<Self> {
        Arc::new(Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            max_control: max_control.max(1),
            coalesced: AtomicU64::new(0),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.inner.lock();
        let was_empty = inner.is_empty();
        let result = f(&mut inner);
        // One wake-up per batch: the writer drains everything it finds.
        if was_empty && !inner.is_empty() {
            self.notify.notify_one();
        }
        result
    }

    /// Queues an ordered frame (reply, snapshot, command).
    pub fn push(&self, frame: Frame) {
        let max = self.max_control;
        self.with(|inner| {
            if inner.close.is_some() {
                return;
            }
            if inner.control.len() >= max {
                crate::metrics::get().outbox_overflows.increment(1);
                inner.close = Some(Box::new(CloseRequest {
                    code: crate::protocol::close::POLICY,
                    reason: "outbox overflow: the client is not reading".into(),
                }));
                return;
            }
            inner.control.push_back(frame);
        });
    }

    /// Queues the newest frame about one agent, replacing an unsent older one.
    pub fn push_delta(&self, agent: &Arc<str>, frame: Frame) {
        let replaced = self.with(|inner| {
            if inner.close.is_some() {
                return false;
            }
            inner.deltas.insert(agent.clone(), frame).is_some()
        });
        if replaced {
            self.coalesced.fetch_add(1, Ordering::Relaxed);
            crate::metrics::get().deltas_coalesced.increment(1);
        }
    }

    /// Queues the newest settings frame (coalesced like a delta).
    pub fn push_settings(&self, frame: Frame) {
        self.with(|inner| inner.settings = Some(Box::new(frame)));
    }

    /// A new scope: pending deltas of the old one are obsolete, the snapshot
    /// (in `frames`) supersedes them. With `log`, the new scope's deltas are
    /// read from that log, from its current end on.
    pub fn restart_deltas(
        &self,
        log: Option<&Arc<DeltaLog>>,
        frames: impl IntoIterator<Item = Frame>,
    ) {
        self.with(|inner| {
            inner.deltas.clear();
            if let Some((old, reader)) = inner.feed.take() {
                old.detach(reader);
            }
            inner.feed = log.map(|log| (log.clone(), log.attach()));
            inner.control.extend(frames);
        });
    }

    /// Stops reading deltas from a tenant log (unsubscribed).
    pub fn unfollow(&self) {
        let feed = self.inner.lock().feed.take();
        if let Some((log, reader)) = feed {
            log.detach(reader);
        }
    }

    /// Tells the writer its log has new deltas (no lock: one atomic step,
    /// and nothing if a wake-up is already pending).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Asks the connection's task to close with `code`.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let reason = reason.into();
        self.with(|inner| {
            inner
                .close
                .get_or_insert_with(|| Box::new(CloseRequest { code, reason }));
        });
    }

    /// Asks the connection's task to close with `code` right after `last`,
    /// which goes out after everything already queued — the pending deltas
    /// too, which `take` would otherwise put after it (a `signed_out` comes
    /// after the agent's own offline `state`, then the close). Nothing
    /// queued afterwards is sent.
    pub fn close_after(&self, last: Frame, code: u16, reason: impl Into<String>) {
        let reason = reason.into();
        self.with(|inner| {
            if inner.close.is_some() {
                return;
            }
            let settings = inner.settings.take();
            let mut pending: Vec<Frame> = std::mem::take(&mut inner.deltas).into_values().collect();
            pending.sort_by_key(|f| f.seq);
            inner.control.extend(settings.map(|s| *s));
            inner.control.extend(pending);
            inner.control.push_back(last);
            inner.close = Some(Box::new(CloseRequest { code, reason }));
        });
    }

    /// Takes everything pending: control frames first, then deltas.
    pub fn take(&self) -> Batch {
        let mut inner = self.inner.lock();
        let mut frames = Vec::with_capacity(inner.control.len() + inner.deltas.len() + 1);
        // Moved out rather than drained: an idle connection then holds no
        // capacity left from its last burst (memory per idle connection,
        // BENCHMARKS.md); a busy one allocates per batch, as `frames` does.
        frames.extend(std::mem::take(&mut inner.control));
        frames.extend(inner.settings.take().map(|s| *s));
        let deltas = frames.len();
        frames.extend(std::mem::take(&mut inner.deltas).into_values());
        frames[deltas..].sort_by_key(|f| f.seq);
        if let Some((log, reader)) = &inner.feed {
            log.take(*reader, &mut frames);
        }
        Batch {
            frames,
            close: inner.close.take().map(|c| *c),
        }
    }

    /// Resolves when something was queued since the last `take`.
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Frame {
        Frame::new(Kind::Reply, s)
    }

    #[test]
    fn deltas_coalesce_per_agent_and_keep_first_position() {
        let outbox = Outbox::new(8);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        outbox.push_delta(&a, f("a1"));
        outbox.push_delta(&b, f("b1"));
        outbox.push_delta(&a, f("a2"));
        outbox.push(f("reply"));
        let batch = outbox.take();
        let got: Vec<&str> = batch.frames.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(got, ["reply", "a2", "b1"]);
        assert_eq!(outbox.coalesced(), 1);
    }

    #[test]
    fn a_batch_of_deltas_is_written_in_seq_order_after_coalescing() {
        // X@41 queued, then Y@45, then X@55 replaces X@41 in place: the
        // batch must still carry Y@45 before X@55, or a client that drops
        // after X@55 and resumes from 55 would never see Y@45.
        let outbox = Outbox::new(8);
        let (x, y): (Arc<str>, Arc<str>) = ("x".into(), "y".into());
        outbox.push_delta(&x, f("x41").at(41));
        outbox.push_delta(&y, f("y45").at(45));
        outbox.push_delta(&x, f("x55").at(55));
        let got: Vec<u64> = outbox.take().frames.iter().map(|f| f.seq).collect();
        assert_eq!(got, [45, 55]);
    }

    #[test]
    fn a_followed_log_comes_after_the_snapshot_and_stops_when_unfollowed() {
        let log = DeltaLog::new(16);
        let outbox = Outbox::new(8);
        let a: Arc<str> = "a".into();
        log.append(&a, f("before"));
        outbox.restart_deltas(Some(&log), [f("snapshot")]);
        log.append(&a, f("a1"));
        let got: Vec<String> = outbox
            .take()
            .frames
            .iter()
            .map(|f| f.text.to_string())
            .collect();
        assert_eq!(got, ["snapshot", "a1"]);
        outbox.unfollow();
        log.append(&a, f("a2"));
        assert!(outbox.take().frames.is_empty());
        assert!(log.is_empty(), "no reader left: the log holds nothing");
    }

    #[test]
    fn a_last_frame_goes_out_after_pending_deltas_and_nothing_after_it() {
        let outbox = Outbox::new(8);
        let a: Arc<str> = "a".into();
        outbox.push(f("reply"));
        outbox.push_delta(&a, f("offline").at(7));
        outbox.close_after(f("signed_out"), 4010, "signed out");
        outbox.push_delta(&a, f("later").at(8));
        outbox.push(f("later reply"));
        let batch = outbox.take();
        let got: Vec<&str> = batch.frames.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(got, ["reply", "offline", "signed_out"]);
        assert_eq!(batch.close.map(|c| c.code), Some(4010));
    }

    #[test]
    fn control_overflow_asks_to_close_instead_of_growing() {
        let outbox = Outbox::new(2);
        for _ in 0..10 {
            outbox.push(f("x"));
        }
        let batch = outbox.take();
        assert_eq!(batch.frames.len(), 2);
        assert_eq!(
            batch.close.map(|c| c.code),
            Some(crate::protocol::close::POLICY)
        );
    }
}
