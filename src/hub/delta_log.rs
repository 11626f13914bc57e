//! A tenant's shared log of agent deltas, read by every subscription that
//! covers the whole tenant (`scope: {"all": true}`, the wallboard's usual
//! scope).
//!
//! Why: pushing each delta into each subscriber's own coalescing map costs a
//! lock, a hash-map insert and a wake-up per delta *per subscriber*; at
//! 20 000 changes/s × 100 wallboards that per-subscriber work, not the
//! sockets, was the limit (BENCHMARKS.md). Here a delta is appended once and
//! each reader keeps a cursor into the log, as a broadcast channel does; a
//! writer takes everything after its cursor in one go.
//!
//! Semantics are the outbox's: a take returns the newest frame of each
//! agent since the reader's last take, in seq order, so a wallboard busy
//! writing skips intermediate versions instead of queueing them; and a
//! reader that falls behind never makes the hub hold more. When the log is full and its oldest entry is one a reader
//! has not taken yet, that entry moves into the reader's own
//! newest-record-per-agent map (so a slow wallboard holds at most one pending
//! frame per agent, PROTOCOL.md §5.3) and the reader's cursor moves past it. Memory
//! is bounded by the log's capacity plus, per lagging reader, one frame per
//! agent.
//!
//! Lock order: the replica's lock, then an outbox's, then the log's. The
//! log never takes an outbox's lock.

use super::outbox::Frame;
use indexmap::IndexMap;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Frames the log keeps for readers that have not taken them yet. Readers
/// that keep up take their frames within a wake-up, so the log rarely holds
/// more than a batch; a full log means a slow reader, which then coalesces.
pub const LOG_CAPACITY: usize = 4096;

pub struct DeltaLog {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The position of `entries[0]`; positions only grow.
    start: u64,
    entries: VecDeque<Entry>,
    capacity: usize,
    /// The position of each agent's newest entry still in the log.
    newest: HashMap<Arc<str>, u64>,
    readers: HashMap<u64, Reader>,
    next_reader: u64,
}

struct Entry {
    agent: Arc<str>,
    frame: Frame,
    /// A newer entry about the same agent follows in the log. Every reader
    /// that has not taken this one will take that one in the same take, so
    /// a take skips it: coalescing costs one hash lookup per *append*,
    /// not one per entry per reader (the profile in BENCHMARKS.md).
    superseded: bool,
}

#[derive(Default)]
struct Reader {
    /// The position of the next entry this reader takes.
    cursor: u64,
    /// Entries the log dropped before this reader took them, newest per agent.
    behind: IndexMap<Arc<str>, Frame>,
}

impl Inner {
    fn end(&self) -> u64 {
        self.start + self.entries.len() as u64
    }

    /// Removes the oldest entry, forgetting it as its agent's newest.
    fn pop_oldest(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        if !entry.superseded {
            self.newest.remove(&entry.agent);
        }
        self.start += 1;
        Some(entry)
    }

    /// Drops the entries every reader has taken.
    fn trim(&mut self) {
        let min = self
            .readers
            .values()
            .map(|r| r.cursor)
            .min()
            .unwrap_or_else(|| self.end());
        while self.start < min && self.pop_oldest().is_some() {}
    }

    /// Drops the oldest entry; readers that had not taken it keep it in
    /// their per-agent map instead (unless a newer entry about the same
    /// agent is still in the log for them). Returns how many pending frames
    /// that replaced (coalesced).
    fn evict_oldest(&mut self) -> u64 {
        let at = self.start;
        let Some(entry) = self.pop_oldest() else {
            return 0;
        };
        let mut coalesced = 0;
        for reader in self.readers.values_mut() {
            if reader.cursor <= at {
                reader.cursor = at + 1;
                // Either way one pending frame of this agent gives way:
                // to the newer entry still in the log, or in `behind`.
                if entry.superseded
                    || reader
                        .behind
                        .insert(entry.agent.clone(), entry.frame.clone())
                        .is_some()
                {
                    coalesced += 1;
                }
            }
        }
        coalesced
    }
}

impl DeltaLog {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(DeltaLog {
            inner: Mutex::new(Inner {
                start: 0,
                entries: VecDeque::new(),
                capacity: capacity.max(1),
                newest: HashMap::new(),
                readers: HashMap::new(),
                next_reader: 0,
            }),
        })
    }

    /// Appends the newest frame about `agent` for every reader.
    pub fn append(&self, agent: &Arc<str>, frame: Frame) {
        let mut inner = self.inner.lock();
        if inner.readers.is_empty() {
            // Nobody to read it: keep nothing (positions stay consistent).
            inner.trim();
            return;
        }
        let mut coalesced = 0;
        if inner.entries.len() >= inner.capacity {
            inner.trim();
            while inner.entries.len() >= inner.capacity {
                coalesced += inner.evict_oldest();
            }
        }
        let at = inner.end();
        if let Some(older) = inner.newest.insert(agent.clone(), at) {
            let start = inner.start;
            if let Some(entry) = older
                .checked_sub(start)
                .and_then(|i| inner.entries.get_mut(i as usize))
            {
                entry.superseded = true;
            }
        }
        inner.entries.push_back(Entry {
            agent: agent.clone(),
            frame,
            superseded: false,
        });
        drop(inner);
        if coalesced > 0 {
            crate::metrics::get().deltas_coalesced.increment(coalesced);
        }
    }

    /// A new reader, positioned after everything appended so far.
    pub fn attach(&self) -> u64 {
        let mut inner = self.inner.lock();
        let id = inner.next_reader;
        inner.next_reader += 1;
        let cursor = inner.end();
        inner.readers.insert(
            id,
            Reader {
                cursor,
                ..Reader::default()
            },
        );
        id
    }

    pub fn detach(&self, reader: u64) {
        let mut inner = self.inner.lock();
        inner.readers.remove(&reader);
        inner.trim();
    }

    /// Moves everything `reader` has not taken into `out`, newest frame
    /// per agent, in seq order: what it fell behind on, then the log after
    /// its cursor. A reader that keeps up takes one or two frames; one that
    /// was busy writing takes everything that piled up meanwhile, and skips
    /// the intermediate versions of each agent, as a per-connection outbox
    /// does (PROTOCOL.md §5.3: at most one pending record per agent).
    pub fn take(&self, reader: u64, out: &mut Vec<Frame>) {
        let mut inner = self.inner.lock();
        let (start, end) = (inner.start, inner.end());
        let Some(r) = inner.readers.get_mut(&reader) else {
            return;
        };
        let behind = std::mem::take(&mut r.behind);
        let from = r.cursor.max(start);
        r.cursor = end;
        let skip = (from - start) as usize;
        let first = out.len();
        let mut coalesced = 0u64;
        // Agents the log has a frame of for this reader: what it fell
        // behind on about them is older (only filled when there is some).
        let mut fresh: HashSet<Arc<str>> = HashSet::new();
        for entry in inner.entries.range(skip..) {
            if entry.superseded {
                coalesced += 1;
            } else {
                if !behind.is_empty() {
                    fresh.insert(entry.agent.clone());
                }
                out.push(entry.frame.clone());
            }
        }
        drop(inner);
        if !behind.is_empty() {
            // It fell behind the log (rare: a slow reader). What it missed
            // comes first, except agents the log has newer frames of.
            let missed: Vec<Frame> = behind
                .into_iter()
                .filter_map(|(agent, frame)| {
                    if fresh.contains(&agent) {
                        coalesced += 1;
                        None
                    } else {
                        Some(frame)
                    }
                })
                .collect();
            out.splice(first..first, missed);
        }
        // Log entries come in append order; a replica applying deltas from
        // several nodes may append them out of seq order, and `behind` kept
        // a replaced frame's first place. Readers resume from the highest
        // seq they applied (PROTOCOL.md §5.1.1), so a batch goes out in seq order.
        if !out[first..].is_sorted_by_key(|f| f.seq) {
            out[first..].sort_by_key(|f| f.seq);
        }
        if coalesced > 0 {
            crate::metrics::get().deltas_coalesced.increment(coalesced);
        }
    }

    /// Entries held now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbox::Kind;

    fn f(s: &str) -> Frame {
        Frame::new(Kind::Agent, s.to_string())
    }

    fn texts(frames: &[Frame]) -> Vec<&str> {
        frames.iter().map(|f| f.text.as_str()).collect()
    }

    #[test]
    fn every_reader_gets_the_newest_frame_per_agent_in_order_from_where_it_attached() {
        let log = DeltaLog::new(8);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let first = log.attach();
        log.append(&a, f("a1").at(1));
        let second = log.attach();
        log.append(&b, f("b1").at(2));
        log.append(&a, f("a2").at(3));
        let mut out = Vec::new();
        log.take(first, &mut out);
        // a1 is superseded by a2 before the reader took it.
        assert_eq!(texts(&out), ["b1", "a2"]);
        out.clear();
        log.take(second, &mut out);
        assert_eq!(texts(&out), ["b1", "a2"]);
        // Both took everything: the log holds nothing once it trims.
        log.append(&b, f("b2"));
        out.clear();
        log.take(first, &mut out);
        assert_eq!(texts(&out), ["b2"]);
    }

    #[test]
    fn a_reader_that_falls_behind_gets_the_newest_frame_per_agent_and_memory_stays_bounded() {
        let log = DeltaLog::new(4);
        let ids: Vec<Arc<str>> = (0..3).map(|i| Arc::from(format!("ag{i}"))).collect();
        let slow = log.attach();
        let fast = log.attach();
        let mut out = Vec::new();
        for round in 0..100 {
            for id in &ids {
                log.append(id, f(&format!("{id}-{round}")));
            }
            out.clear();
            log.take(fast, &mut out);
            assert_eq!(out.len(), 3, "the reader that keeps up misses nothing");
            assert!(log.len() <= 4, "the log never grows past its capacity");
        }
        out.clear();
        log.take(slow, &mut out);
        // Three agents: one frame each, the newest (what it fell behind on
        // is older than the log's tail, which has all three).
        for id in &ids {
            let of: Vec<&str> = texts(&out)
                .into_iter()
                .filter(|t| t.starts_with(&format!("{id}-")))
                .collect();
            assert_eq!(of, [format!("{id}-99")], "{out:?}");
        }
    }

    #[test]
    fn without_readers_the_log_keeps_nothing() {
        let log = DeltaLog::new(4);
        let a: Arc<str> = "a".into();
        let r = log.attach();
        log.detach(r);
        for _ in 0..10 {
            log.append(&a, f("a"));
        }
        assert!(log.is_empty());
        let late = log.attach();
        let mut out = Vec::new();
        log.take(late, &mut out);
        assert!(
            out.is_empty(),
            "a new reader starts after what was appended"
        );
    }

    #[test]
    fn readers_at_any_pace_end_with_every_agents_newest_frame() {
        // A fixed pseudo-random workload: 50 agents, 4 readers taking at
        // different paces, a small log so that slow readers fall behind it.
        let log = DeltaLog::new(16);
        let ids: Vec<Arc<str>> = (0..50).map(|i| Arc::from(format!("ag{i}"))).collect();
        let readers: Vec<u64> = (0..4).map(|_| log.attach()).collect();
        let mut seen: Vec<HashMap<String, u64>> = vec![HashMap::new(); readers.len()];
        let mut truth: HashMap<String, u64> = HashMap::new();
        let mut x: u64 = 12345;
        let mut out = Vec::new();
        for seq in 1..=5_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = &ids[(x >> 33) as usize % ids.len()];
            log.append(id, f(&format!("{id}")).at(seq));
            truth.insert(id.to_string(), seq);
            for (k, r) in readers.iter().enumerate() {
                // Reader k takes every 1, 7, 60 or 400 appends.
                if seq % [1, 7, 60, 400][k] == 0 {
                    out.clear();
                    log.take(*r, &mut out);
                    assert!(out.windows(2).all(|w| w[0].seq < w[1].seq), "seq order");
                    for fr in &out {
                        let v = seen[k].entry(fr.text.to_string()).or_default();
                        assert!(fr.seq > *v, "newer versions only");
                        *v = fr.seq;
                    }
                }
            }
        }
        for (k, r) in readers.iter().enumerate() {
            out.clear();
            log.take(*r, &mut out);
            for fr in &out {
                seen[k].insert(fr.text.to_string(), fr.seq);
            }
            assert_eq!(seen[k], truth, "reader {k}");
        }
    }
}
