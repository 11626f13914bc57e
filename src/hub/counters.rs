//! Channel counters (PROTOCOL.md §10.4): per channel of a tenant, how many connected
//! agents are in each status, how many connections linger, and since when
//! the longest-waiting available agent waits.
//!
//! A replica keeps them incrementally: each delta takes the old record's
//! contribution out and puts the new one in, touching only the channels the
//! two records are connected to, so no change scans the tenant. Every node
//! computes them from its own replica; replicas converge, so do counters.

use crate::directory::ChannelInfo;
use crate::domain::{AgentRecord, ChannelRef, Status};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Agents connected to a channel, by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub available: u32,
    pub busy: u32,
    pub wrap_up: u32,
    pub paused: u32,
    pub offline: u32,
}

impl Counts {
    fn slot(&mut self, status: Status) -> &mut u32 {
        match status {
            Status::Available => &mut self.available,
            Status::Busy => &mut self.busy,
            Status::WrapUp => &mut self.wrap_up,
            Status::Paused => &mut self.paused,
            Status::Offline => &mut self.offline,
        }
    }
}

/// What a `channel` message says about one channel (besides its name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub counts: Counts,
    /// Connected agents, lingering connections included.
    pub connected: u32,
    pub lingering: u32,
    pub longest_available_since_ms: Option<u64>,
}

#[derive(Default)]
struct Counter {
    counts: Counts,
    connected: u32,
    lingering: u32,
    /// Available agents by `status_since_ms`: the first is the longest waiting.
    available: BTreeSet<(u64, Arc<str>)>,
}

impl Counter {
    fn summary(&self) -> Summary {
        Summary {
            counts: self.counts,
            connected: self.connected,
            lingering: self.lingering,
            longest_available_since_ms: self.available.first().map(|(since, _)| *since),
        }
    }
}

/// The counters of every channel of one tenant.
pub struct ChannelCounters {
    channels: HashMap<ChannelRef, Counter>,
    /// Channels whose summary may have changed since the last [`take_dirty`](Self::take_dirty).
    dirty: HashSet<ChannelRef>,
}

impl ChannelCounters {
    /// Zero counters for the directory's channels.
    pub fn new(channels: &[ChannelInfo]) -> Self {
        ChannelCounters {
            channels: channels
                .iter()
                .map(|c| (c.channel_ref(), Counter::default()))
                .collect(),
            dirty: HashSet::new(),
        }
    }

    /// Recounts from scratch (a replica loaded from the store).
    pub fn rebuild<'a>(&mut self, records: impl Iterator<Item = &'a AgentRecord>) {
        for counter in self.channels.values_mut() {
            *counter = Counter::default();
        }
        for record in records {
            self.add(record, 1);
        }
        self.dirty.extend(self.channels.keys().cloned());
    }

    /// Zero counters for a channel new to the directory (kept if it has some).
    pub fn add_channel(&mut self, channel: &ChannelRef) {
        self.channels.entry(channel.clone()).or_default();
    }

    /// Forgets a channel deleted from the directory.
    pub fn remove_channel(&mut self, channel: &ChannelRef) {
        self.channels.remove(channel);
        self.dirty.remove(channel);
    }

    /// Takes out the contribution of a record that left the tenant.
    pub fn remove(&mut self, old: &AgentRecord) {
        self.add(old, -1);
    }

    /// Replaces `old`'s contribution with `new`'s.
    pub fn update(&mut self, old: Option<&AgentRecord>, new: &AgentRecord) {
        if let Some(old) = old {
            self.add(old, -1);
        }
        self.add(new, 1);
    }

    fn add(&mut self, record: &AgentRecord, sign: i8) {
        let id: Arc<str> = Arc::from(record.id.as_str());
        for c in record.channels.iter().filter(|c| c.connected) {
            let key = c.channel_ref();
            let Some(counter) = self.channels.get_mut(&key) else {
                continue; // not a channel of the directory
            };
            let step = |n: &mut u32| {
                *n = if sign > 0 {
                    n.saturating_add(1)
                } else {
                    n.saturating_sub(1)
                }
            };
            step(counter.counts.slot(record.status));
            step(&mut counter.connected);
            if c.lingering {
                step(&mut counter.lingering);
            }
            if record.status == Status::Available {
                let entry = (record.status_since_ms, id.clone());
                if sign > 0 {
                    counter.available.insert(entry);
                } else {
                    counter.available.remove(&entry);
                }
            }
            self.dirty.insert(key);
        }
    }

    pub fn summary(&self, channel: &ChannelRef) -> Summary {
        self.channels
            .get(channel)
            .map(Counter::summary)
            .unwrap_or_default()
    }

    /// The channels touched since the last call.
    pub fn take_dirty(&mut self) -> HashSet<ChannelRef> {
        std::mem::take(&mut self.dirty)
    }
}

/// A channel's entry of a snapshot, or the body of a `channel` message.
pub fn channel_json(info: &ChannelInfo, summary: &Summary) -> serde_json::Value {
    serde_json::json!({
        "kind": info.kind, "id": info.id, "name": info.name,
        "counts": summary.counts, "connected": summary.connected,
        "lingering": summary.lingering,
        "longest_available_since_ms": summary.longest_available_since_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelKind, ChannelState, Role, Settings};

    fn info() -> Vec<ChannelInfo> {
        vec![ChannelInfo {
            kind: ChannelKind::Queue,
            id: "sales".into(),
            name: "Sales".into(),
            assigned: vec![],
        }]
    }

    fn sales() -> ChannelRef {
        ChannelRef::new(ChannelKind::Queue, "sales")
    }

    fn agent(id: &str, status: Status, since: u64, connected: bool) -> AgentRecord {
        let mut r = AgentRecord::new(id, id, &[Role::Agent], [sales()], &Settings::default());
        r.status = status;
        r.status_since_ms = since;
        r.channels = vec![ChannelState {
            kind: ChannelKind::Queue,
            id: "sales".into(),
            connected,
            assigned: false,
            lingering: connected,
        }];
        r
    }

    /// Incremental updates agree with a recount after any sequence.
    #[test]
    fn incremental_equals_recount() {
        let mut inc = ChannelCounters::new(&info());
        let steps = [
            agent("a", Status::Available, 5, true),
            agent("b", Status::Available, 3, true),
            agent("a", Status::Busy, 7, true),
            agent("c", Status::Offline, 1, true),
            agent("b", Status::Available, 3, false),
            agent("c", Status::Paused, 9, true),
            agent("a", Status::Available, 11, true),
        ];
        let mut current: HashMap<String, AgentRecord> = HashMap::new();
        for r in steps {
            inc.update(current.get(&r.id), &r);
            current.insert(r.id.clone(), r);
        }
        let mut full = ChannelCounters::new(&info());
        full.rebuild(current.values());
        assert_eq!(inc.summary(&sales()), full.summary(&sales()));
        let s = inc.summary(&sales());
        assert_eq!(
            (
                s.counts.available,
                s.counts.paused,
                s.connected,
                s.lingering
            ),
            (1, 1, 2, 2)
        );
        assert_eq!(s.longest_available_since_ms, Some(11));
    }
}
