//! The replay: events in version order turned into time per status, per
//! agent and per channel, cut into buckets.
//!
//! Each agent has a *track*: the state in force (or "unknown") and the time
//! up to which it has been counted. An observation of a record — an agent
//! event's `previous`, a heartbeat's `current`, a record of
//! `records_at_end` — brings the track up to the observation's time; an
//! agent event's `current` then becomes the state from its `at_ms` on.
//!
//! Versions make the state before an observation exact rather than
//! guessed: a record last changed at version `v` held from that change
//! until it was observed. So an agent's first observed record held since
//! before the window (its version precedes the events, or was seen), unless
//! `v` is one of the versions a `gap` lost, in which case it held only from
//! the end of that gap. And an agent known before a gap keeps its state
//! across it when its next observed record has the same version (the loss
//! did not touch it); otherwise the time from the gap's start to what the
//! next observation can vouch for is `unknown`.

use super::buckets::BucketSpan;
use super::figures::*;
use super::input::{EventType, ReportEvent, ReportInput};
use crate::domain::permissions::in_scope;
use crate::domain::{AgentRecord, ChannelRef, Presence, Status};
use std::collections::{BTreeMap, BTreeSet};

/// What the report needs of a record: the rest of it does not move a figure.
#[derive(Clone, Debug, PartialEq)]
struct Snap {
    status: Status,
    reason: Option<String>,
    connected: Vec<ChannelRef>,
    overrun_since_ms: Option<u64>,
    version: u64,
}

impl Snap {
    fn of(r: &AgentRecord) -> Snap {
        Snap {
            status: r.status,
            // A reason only counts while paused: the hub clears it
            // otherwise, and a stray one must not split paused time.
            reason: (r.status == Status::Paused)
                .then(|| r.pause_reason.clone().unwrap_or_default()),
            // A set: a record listing a channel twice (never made by the
            // hub) must not count the agent twice on it.
            connected: r
                .channels
                .iter()
                .filter(|c| c.connected)
                .map(|c| c.channel_ref())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            overrun_since_ms: r
                .pause_overrun_since_ms
                .filter(|_| r.status == Status::Paused),
            version: r.version,
        }
    }
}

struct Track {
    /// `None`: unknown (not yet known, removed, or lost in a gap).
    state: Option<Snap>,
    /// Time is counted up to here.
    since: u64,
    /// Where the state in force began to be counted.
    state_from: u64,
    /// A gap began here while the state was known: the state may have
    /// changed in the lost versions.
    suspect_from: Option<u64>,
    in_scope: bool,
    figures: Vec<AgentFigures>,
}

struct OpenGap {
    note: GapNote,
    /// The first event time seen after it.
    t_after: Option<u64>,
}

pub(super) struct Engine<'a> {
    spans: &'a [BucketSpan],
    from: u64,
    until: u64,
    scope: Option<&'a [ChannelRef]>,
    agents: BTreeMap<String, Track>,
    channels: BTreeMap<ChannelRef, Vec<ChannelFigures>>,
    gaps: Vec<OpenGap>,
    /// The last version of the stream seen (agent, settings, directory).
    last_version: Option<u64>,
    last_event_t: Option<u64>,
    /// The clamped clock: `at_ms` never moves it back.
    clock: u64,
}

/// Adds `[a, b)`, clipped to the window, bucket by bucket.
fn spread(spans: &[BucketSpan], a: u64, b: u64, mut f: impl FnMut(usize, u64)) {
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return;
    };
    let (mut a, b) = (a.max(first.from_ms), b.min(last.until_ms));
    let mut i = spans.partition_point(|s| s.until_ms <= a);
    while a < b && i < spans.len() {
        let end = spans[i].until_ms.min(b);
        f(i, end - a);
        a = end;
        i += 1;
    }
}

/// The bucket holding instant `t`, if `t` is inside the window.
fn bucket_of(spans: &[BucketSpan], t: u64) -> Option<usize> {
    let i = spans.partition_point(|s| s.until_ms <= t);
    match spans.get(i) {
        Some(s) if s.from_ms <= t => Some(i),
        _ => None,
    }
}

impl<'a> Engine<'a> {
    pub(super) fn new(
        spans: &'a [BucketSpan],
        from: u64,
        until: u64,
        scope: Option<&'a [ChannelRef]>,
    ) -> Self {
        Engine {
            spans,
            from,
            until,
            scope,
            agents: BTreeMap::new(),
            channels: BTreeMap::new(),
            gaps: Vec::new(),
            last_version: None,
            last_event_t: None,
            clock: 0,
        }
    }

    pub(super) fn run(mut self, input: &ReportInput) -> Engine<'a> {
        for event in &input.events {
            self.event(event);
        }
        // The records as the caller last knew them vouch for the time since
        // the events end, unless they changed after (a newer version).
        let end = self.clock.max(self.until);
        for record in &input.records_at_end {
            if self.last_version.is_some_and(|v| record.version > v) {
                continue;
            }
            self.observe(&record.id, record, end);
        }
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        for id in ids {
            self.finish(&id, end);
        }
        self
    }

    fn event(&mut self, e: &ReportEvent) {
        let t = e.at_ms.max(self.clock);
        self.clock = t;
        match e.kind {
            EventType::Gap => {
                // The lost versions came after the last event seen.
                let t_before = self.last_event_t.unwrap_or(0);
                for track in self.agents.values_mut() {
                    if track.state.is_some() && track.suspect_from.is_none() {
                        track.suspect_from = Some(t_before.max(track.since));
                    }
                }
                self.gaps.push(OpenGap {
                    note: GapNote {
                        id: e.id.clone(),
                        at_ms: e.at_ms,
                        after_version: self.last_version,
                        before_version: None,
                    },
                    t_after: None,
                });
            }
            EventType::Heartbeat => {
                if let (Some(agent), Some(current)) = (e.agent(), &e.current) {
                    self.observe(agent, current, t);
                }
            }
            EventType::Agent | EventType::Settings | EventType::Directory => {
                // At-least-once delivery may repeat an event: a version not
                // above the last one seen was counted already.
                if self.last_version.is_some_and(|v| e.version <= v) {
                    return;
                }
                for gap in &mut self.gaps {
                    if gap.note.before_version.is_none() {
                        gap.note.before_version = Some(e.version);
                        gap.t_after = Some(t);
                    }
                }
                self.last_version = Some(e.version);
                self.last_event_t = Some(t);
                if e.kind == EventType::Agent {
                    if let Some(agent) = e.agent() {
                        self.change(agent, e.previous.as_ref(), e.current.as_ref(), t);
                    }
                }
            }
            EventType::Other => {}
        }
    }

    /// Since when a record of version `version`, observed at `t`, is known
    /// to have held: from before the window, unless a gap lost that version.
    fn known_from(&self, version: u64, t: u64) -> u64 {
        for gap in &self.gaps {
            let after_start = gap.note.after_version.is_none_or(|a| version > a);
            let before_end = gap.note.before_version.is_none_or(|b| version < b);
            if after_start && before_end {
                return gap.t_after.unwrap_or(t).min(t);
            }
        }
        0
    }

    fn track(&mut self, agent: &str) -> &mut Track {
        let buckets = self.spans.len();
        self.agents
            .entry(agent.to_string())
            .or_insert_with(|| Track {
                state: None,
                since: 0,
                state_from: 0,
                suspect_from: None,
                in_scope: false,
                figures: vec![AgentFigures::default(); buckets],
            })
    }

    fn note_scope(&mut self, agent: &str, record: &AgentRecord) {
        let hit = self.scope.is_none_or(|scope| in_scope(record, scope));
        if hit {
            self.track(agent).in_scope = true;
        }
    }

    /// Counts an agent's time up to `to` in the state it is in.
    fn advance(&mut self, agent: &str, to: u64) {
        let spans = self.spans;
        let Some(track) = self.agents.get_mut(agent) else {
            return;
        };
        if to <= track.since {
            return;
        }
        let (a, b) = (track.since, to);
        track.since = to;
        let state = track.state.as_ref();
        let (status, reason) = match state {
            Some(s) => (Some(s.status), s.reason.as_deref()),
            None => (None, None),
        };
        spread(spans, a, b, |i, ms| {
            track.figures[i].times.add(status, reason, ms)
        });
        let Some(s) = state else {
            return;
        };
        if let Some(mark) = s.overrun_since_ms {
            spread(spans, a.max(mark), b, |i, ms| {
                let f = &mut track.figures[i];
                f.pause_overrun_ms = f.pause_overrun_ms.saturating_add(ms);
            });
        }
        for channel in &s.connected {
            let figures = self
                .channels
                .entry(channel.clone())
                .or_insert_with(|| vec![ChannelFigures::default(); spans.len()]);
            spread(spans, a, b, |i, ms| {
                figures[i]
                    .times
                    .add(Some(s.status), s.reason.as_deref(), ms)
            });
        }
    }

    /// Sets the state from `at` on (time before `at` must be counted).
    fn set_state(&mut self, agent: &str, state: Option<Snap>, at: u64) {
        let track = self.track(agent);
        track.state = state;
        track.since = track.since.max(at);
        track.state_from = track.since;
        track.suspect_from = None;
    }

    /// Brings an agent's track up to `t` knowing `record` held just before it.
    fn observe(&mut self, agent: &str, record: &AgentRecord, t: u64) {
        self.note_scope(agent, record);
        let known_from = self.known_from(record.version, t);
        let track = self.track(agent);
        // An older record than the one in force (a heartbeat from a node
        // whose replica lags the stream by a moment) tells nothing new:
        // taking it would put back a state the agent already left. The
        // time up to `t` is still counted (a change at `t` takes over from
        // there): in the state in force, or unknown past a gap.
        if track
            .state
            .as_ref()
            .is_some_and(|s| record.version < s.version)
        {
            if let Some(stop) = track.suspect_from {
                self.advance(agent, stop);
                self.set_state(agent, None, 0);
            }
            self.advance(agent, t);
            return;
        }
        let continuous = track
            .state
            .as_ref()
            .is_some_and(|s| s.version == record.version);
        if !continuous {
            // The state we had (if any) held until a gap began (or as far
            // as it was counted); then unknown until the record is vouched for.
            if let Some(stop) = track.suspect_from {
                self.advance(agent, stop);
            }
            self.set_state(agent, None, 0);
            self.advance(agent, known_from.min(t));
            self.set_state(agent, Some(Snap::of(record)), known_from.min(t));
        }
        self.advance(agent, t);
        self.track(agent).suspect_from = None;
    }

    /// An agent event: `previous` held until `t`, `current` from `t` on.
    fn change(
        &mut self,
        agent: &str,
        previous: Option<&AgentRecord>,
        current: Option<&AgentRecord>,
        t: u64,
    ) {
        match previous {
            Some(p) => self.observe(agent, p, t),
            None => {
                // Created: nothing to know before. A known state here would
                // be an odd stream; count it up to the change all the same.
                self.track(agent);
                self.advance(agent, t);
            }
        }
        if let Some(c) = current {
            self.note_scope(agent, c);
        }
        let spans = self.spans;
        let bucket = bucket_of(spans, t);
        if let (Some(p), Some(c)) = (previous, current) {
            let still: BTreeSet<&str> = c.interactions.iter().map(|i| i.id.as_str()).collect();
            // One count per ended id, even if an odd record lists it twice.
            let mut counted = BTreeSet::new();
            for ended in p
                .interactions
                .iter()
                .filter(|i| !still.contains(i.id.as_str()))
            {
                if !counted.insert(ended.id.as_str()) {
                    continue;
                }
                let Some(i) = bucket else { continue };
                let f = &mut self.track(agent).figures[i];
                f.interactions_handled = f.interactions_handled.saturating_add(1);
                let figures = self
                    .channels
                    .entry(ended.channel.clone())
                    .or_insert_with(|| vec![ChannelFigures::default(); spans.len()]);
                figures[i].interactions_handled = figures[i].interactions_handled.saturating_add(1);
            }
            if let Some(i) = bucket {
                let f = &mut self.track(agent).figures[i];
                match (p.presence, c.presence) {
                    (Presence::Offline, Presence::Online) => f.sign_ins_ms.push(t),
                    (Presence::Online, Presence::Offline) => f.sign_outs_ms.push(t),
                    _ => {}
                }
            }
        }
        let next = current.map(Snap::of);
        // The mark of the state that was counted up to `t` (the tracked
        // one: a record of the same version is taken to be the same record).
        let before = self
            .agents
            .get(agent)
            .and_then(|t| t.state.as_ref())
            .and_then(|s| s.overrun_since_ms);
        if let Some(mark) = next.as_ref().and_then(|s| s.overrun_since_ms) {
            if before != Some(mark) {
                // The timer commits the mark a little after the limit
                // passed: the time since the limit is overrun too (unless
                // an earlier mark of the same pause counted it already).
                // Never before the pause began, nor before the time its
                // record was counted from, whatever a record says.
                let track = self.track(agent);
                let began = previous.map_or(t, |p| p.status_since_ms.max(track.state_from));
                let start = mark.max(began).min(t);
                if let Some(i) = bucket_of(spans, start) {
                    let f = &mut track.figures[i];
                    f.pause_overruns = f.pause_overruns.saturating_add(1);
                }
                if before.is_none() {
                    spread(spans, start, t, |i, ms| {
                        let f = &mut track.figures[i];
                        f.pause_overrun_ms = f.pause_overrun_ms.saturating_add(ms);
                    });
                }
            }
        }
        self.set_state(agent, next, t);
    }

    /// Counts an agent's time to the end.
    fn finish(&mut self, agent: &str, end: u64) {
        if let Some(stop) = self.agents.get(agent).and_then(|t| t.suspect_from) {
            self.advance(agent, stop);
            self.set_state(agent, None, 0);
        }
        self.advance(agent, end);
    }

    pub(super) fn into_report(self, time_zone: String, bucket: super::Bucket) -> Report {
        let agents = self
            .agents
            .into_iter()
            .filter(|(_, t)| t.in_scope)
            .map(|(agent_id, t)| {
                let mut total = AgentFigures::default();
                for f in &t.figures {
                    total.merge(f);
                }
                AgentReport {
                    agent_id,
                    buckets: t.figures,
                    total,
                }
            })
            .collect();
        let scope = self.scope;
        let channels = self
            .channels
            .into_iter()
            .filter(|(c, _)| scope.is_none_or(|s| s.contains(c)))
            .map(|(channel, buckets)| {
                let mut total = ChannelFigures::default();
                for f in &buckets {
                    total.merge(f);
                }
                ChannelReport {
                    channel,
                    buckets,
                    total,
                }
            })
            .collect();
        Report {
            from_ms: self.from,
            until_ms: self.until,
            time_zone,
            bucket,
            buckets: self.spans.to_vec(),
            agents,
            channels,
            gaps: self.gaps.into_iter().map(|g| g.note).collect(),
        }
    }
}
