//! A tenant's event log in the memory store: the newest events, bounded by
//! count and age (`--events-max-len`, `--events-max-age-s`), as the Redis
//! Stream is on a cluster.
//!
//! Events are kept as the records they point to (the `Arc`s the store
//! already holds), not as JSON: serializing happens when a consumer reads,
//! off the commit path. Events replayed from a data directory come back as
//! their JSON.

use super::event::Event;
use super::id::EventId;
use super::{Page, Retention};
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Kept {
    Live(Event),
    Json(Arc<str>),
}

impl Kept {
    pub fn json(&self, tenant: &str) -> Arc<str> {
        match self {
            Kept::Live(e) => e.to_json(tenant).into(),
            Kept::Json(j) => j.clone(),
        }
    }
}

#[derive(Default)]
pub struct EventLog {
    events: VecDeque<(EventId, Kept)>,
    /// The last id handed out (kept when trimming empties the log, so ids
    /// never go back).
    last: Option<EventId>,
}

impl EventLog {
    /// A log holding what a data directory kept, oldest first.
    pub fn restored(events: Vec<(EventId, Arc<str>)>) -> Self {
        let last = events.last().map(|(id, _)| *id);
        EventLog {
            events: events
                .into_iter()
                .map(|(id, j)| (id, Kept::Json(j)))
                .collect(),
            last,
        }
    }

    /// The ids the next `count` events appended at `now_ms` will get.
    pub fn next_ids(&self, count: usize, now_ms: u64) -> Vec<EventId> {
        let mut last = self.last;
        (0..count)
            .map(|_| {
                let id = EventId::next(last, now_ms);
                last = Some(id);
                id
            })
            .collect()
    }

    /// Appends events under the ids [`EventLog::next_ids`] gave, then trims.
    pub fn append(
        &mut self,
        events: impl IntoIterator<Item = (EventId, Event)>,
        retention: &Retention,
        now_ms: u64,
    ) {
        for (id, event) in events {
            self.last = Some(id);
            self.events.push_back((id, Kept::Live(event)));
        }
        self.trim(retention, now_ms);
    }

    fn trim(&mut self, retention: &Retention, now_ms: u64) {
        while self.events.len() > retention.max_len {
            self.events.pop_front();
        }
        if let Some(age) = retention.max_age_ms {
            let keep_from = now_ms.saturating_sub(age);
            while self.events.front().is_some_and(|(id, _)| id.ms < keep_from) {
                self.events.pop_front();
            }
        }
    }

    /// Up to `limit` events after `after` (from the oldest kept without).
    pub fn read(&self, tenant: &str, after: Option<EventId>, limit: usize) -> Page {
        // Ids are sorted: find the first one after `after` by bisection.
        let start = match after {
            Some(after) => self.events.partition_point(|(id, _)| *id <= after),
            None => 0,
        };
        let after_missing = after.is_some_and(|after| {
            self.events
                .binary_search_by(|(id, _)| id.cmp(&after))
                .is_err()
        });
        Page {
            after_missing,
            events: self
                .events
                .iter()
                .skip(start)
                .take(limit)
                .map(|(id, kept)| (*id, kept.json(tenant)))
                .collect(),
            oldest: self.events.front().map(|(id, _)| *id),
            last: self.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Actor;
    use crate::events::Body;

    fn gap(version: u64) -> Event {
        Event {
            version,
            event: "gap".into(),
            at_ms: 0,
            by: Actor::system(),
            body: Body::Gap { from: version },
        }
    }

    fn append(log: &mut EventLog, version: u64, now_ms: u64, retention: &Retention) -> EventId {
        let id = log.next_ids(1, now_ms)[0];
        log.append([(id, gap(version))], retention, now_ms);
        id
    }

    #[test]
    fn the_log_keeps_the_newest_within_its_length_and_age() {
        let by_len = Retention {
            max_len: 3,
            max_age_ms: None,
        };
        let mut log = EventLog::default();
        let ids: Vec<EventId> = (1..=5)
            .map(|v| append(&mut log, v, 1_000, &by_len))
            .collect();
        let page = log.read("t", None, 10);
        assert_eq!(
            page.events.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            ids[2..]
        );
        assert_eq!((page.oldest, page.last), (Some(ids[2]), Some(ids[4])));
        // Reading after an id the log no longer has says so.
        let trimmed = log.read("t", Some(ids[0]), 10);
        assert!(trimmed.after_missing);
        assert_eq!(trimmed.events.len(), 3);
        assert!(!log.read("t", Some(ids[3]), 10).after_missing);
        assert_eq!(log.read("t", Some(ids[3]), 10).events[0].0, ids[4]);
        assert!(log.read("t", Some(ids[4]), 10).events.is_empty());

        let by_age = Retention {
            max_len: 100,
            max_age_ms: Some(50),
        };
        let mut log = EventLog::default();
        append(&mut log, 1, 1_000, &by_age);
        let kept = append(&mut log, 2, 1_040, &by_age);
        let newest = append(&mut log, 3, 1_060, &by_age);
        let page = log.read("t", None, 10);
        assert_eq!(
            page.events.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [kept, newest]
        );
        // Trimmed empty, ids still never go back.
        append(
            &mut log,
            4,
            2_000,
            &Retention {
                max_len: 0,
                max_age_ms: None,
            },
        );
        assert!(log.read("t", None, 10).events.is_empty());
        assert!(log.next_ids(1, 1)[0] > newest);
    }
}
