//! A replica's queue statistics (PROTOCOL.md §10.7): the latest the ACD
//! pushed per channel, whether they went stale, and what each supervisor
//! connection last got.
//!
//! Statistics arrive beside the versioned delta stream, not in it (they
//! take no seq, see `backplane::QueueStatsHandler`), so a replica keeps
//! them by `updated_ms` alone: newer wins, an older one (a load racing a
//! push) is dropped. Fan-out happens on the tenant's channel tick
//! (`--channel-update-ms`), like the counters: at most one `queue_stats`
//! message per connection and channel per tick, the newest, and the
//! outbox coalesces by channel if the connection is slow.

use crate::domain::queue_stats::ChannelStats;
use crate::domain::ChannelRef;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// What a connection last got of one channel: its stamp and staleness.
pub type Sent = (u64, bool);

struct Entry {
    stats: ChannelStats,
    stale: bool,
}

/// The statistics of every channel of one tenant that has some.
#[derive(Default)]
pub struct QueueBoard {
    entries: HashMap<ChannelRef, Entry>,
    /// Channels whose message changed since the last [`take_dirty`](Self::take_dirty).
    dirty: HashSet<ChannelRef>,
}

impl QueueBoard {
    /// Keeps `stats` if newer than what the channel has; whether it did.
    pub fn put(&mut self, stats: ChannelStats) -> bool {
        if self
            .entries
            .get(&stats.channel)
            .is_some_and(|e| e.stats.updated_ms >= stats.updated_ms)
        {
            return false;
        }
        self.dirty.insert(stats.channel.clone());
        self.entries.insert(
            stats.channel.clone(),
            Entry {
                stats,
                stale: false,
            },
        );
        true
    }

    /// Marks stale every channel not updated for `stale_ms` as of `now_ms`.
    pub fn mark_stale(&mut self, now_ms: u64, stale_ms: u64) {
        for (channel, e) in &mut self.entries {
            if !e.stale && now_ms.saturating_sub(e.stats.updated_ms) >= stale_ms {
                e.stale = true;
                self.dirty.insert(channel.clone());
            }
        }
    }

    /// Forgets a channel deleted from the directory.
    pub fn remove_channel(&mut self, channel: &ChannelRef) {
        self.entries.remove(channel);
        self.dirty.remove(channel);
    }

    pub fn take_dirty(&mut self) -> HashSet<ChannelRef> {
        std::mem::take(&mut self.dirty)
    }

    /// What a connection that got this channel's message now would hold.
    pub fn sent(&self, channel: &ChannelRef) -> Option<Sent> {
        self.entries
            .get(channel)
            .map(|e| (e.stats.updated_ms, e.stale))
    }

    /// The channel's entry of a snapshot's `queue_stats` (the message's
    /// body without its `type`).
    pub fn entry_json(&self, channel: &ChannelRef) -> Option<Value> {
        self.entries.get(channel).map(|e| {
            json!({
                "channel": e.stats.channel,
                "stats": e.stats.stats,
                "updated_ms": e.stats.updated_ms,
                "stale": e.stale,
            })
        })
    }

    /// The `queue_stats` message of one channel.
    pub fn message(&self, channel: &ChannelRef) -> Option<Value> {
        let mut body = self.entry_json(channel)?;
        body["type"] = json!("queue_stats");
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::queue_stats::QueueStats;
    use crate::domain::ChannelKind;

    fn at(ms: u64, waiting: u64) -> ChannelStats {
        ChannelStats {
            channel: ChannelRef::new(ChannelKind::Queue, "sales"),
            stats: QueueStats {
                waiting,
                longest_wait_s: 0,
                offered: None,
                answered: None,
                abandoned: None,
                service_level: None,
                service_level_s: None,
            },
            updated_ms: ms,
        }
    }

    #[test]
    fn newer_wins_and_an_older_one_is_dropped() {
        let mut b = QueueBoard::default();
        let sales = ChannelRef::new(ChannelKind::Queue, "sales");
        assert!(b.put(at(10, 1)));
        assert!(!b.put(at(9, 2)));
        assert!(!b.put(at(10, 3)));
        assert_eq!(b.message(&sales).expect("some")["stats"]["waiting"], 1);
        assert!(b.put(at(11, 4)));
        assert_eq!(b.take_dirty().len(), 1);
        assert_eq!(b.sent(&sales), Some((11, false)));
    }

    #[test]
    fn stale_is_marked_once_and_a_push_clears_it() {
        let mut b = QueueBoard::default();
        let sales = ChannelRef::new(ChannelKind::Queue, "sales");
        b.put(at(1_000, 1));
        b.take_dirty();
        b.mark_stale(1_999, 1_000);
        assert!(b.take_dirty().is_empty());
        b.mark_stale(2_000, 1_000);
        assert_eq!(b.take_dirty().len(), 1);
        assert_eq!(b.message(&sales).expect("some")["stale"], true);
        b.mark_stale(9_000, 1_000);
        assert!(b.take_dirty().is_empty(), "marked once");
        b.put(at(9_000, 2));
        assert_eq!(b.sent(&sales), Some((9_000, false)));
    }
}
