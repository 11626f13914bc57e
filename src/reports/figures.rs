//! The figures of a report, per agent or per channel and per bucket, in
//! milliseconds (renderers show whole seconds, see [`super::render`]).

use super::buckets::{Bucket, BucketSpan};
use crate::domain::{ChannelRef, Status};
use std::collections::BTreeMap;

/// Time in each status, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusTimes {
    pub offline_ms: u64,
    pub available_ms: u64,
    pub busy_ms: u64,
    pub wrap_up_ms: u64,
    pub paused_ms: u64,
    /// Time the report cannot place in a status: before the agent existed
    /// or was first seen, after it was removed, across lost versions (a
    /// gap). Always 0 for channels (a channel counts only known time).
    pub unknown_ms: u64,
    /// `paused_ms` split by pause reason (a pause without a reason, which
    /// the hub never makes, would count under `""`).
    pub paused_by_reason_ms: BTreeMap<String, u64>,
}

impl StatusTimes {
    pub(super) fn add(&mut self, status: Option<Status>, reason: Option<&str>, ms: u64) {
        // Saturating: a sum of clipped spans cannot overflow in practice,
        // and a report must never panic whatever its input.
        let slot = match status {
            None => &mut self.unknown_ms,
            Some(Status::Offline) => &mut self.offline_ms,
            Some(Status::Available) => &mut self.available_ms,
            Some(Status::Busy) => &mut self.busy_ms,
            Some(Status::WrapUp) => &mut self.wrap_up_ms,
            Some(Status::Paused) => {
                let r = self
                    .paused_by_reason_ms
                    .entry(reason.unwrap_or_default().to_string())
                    .or_default();
                *r = r.saturating_add(ms);
                &mut self.paused_ms
            }
        };
        *slot = slot.saturating_add(ms);
    }

    /// Every status and `unknown` together: for an agent, the bucket's length.
    pub fn sum_ms(&self) -> u64 {
        [
            self.offline_ms,
            self.available_ms,
            self.busy_ms,
            self.wrap_up_ms,
            self.paused_ms,
            self.unknown_ms,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }

    fn merge(&mut self, other: &StatusTimes) {
        for (a, b) in [
            (&mut self.offline_ms, other.offline_ms),
            (&mut self.available_ms, other.available_ms),
            (&mut self.busy_ms, other.busy_ms),
            (&mut self.wrap_up_ms, other.wrap_up_ms),
            (&mut self.paused_ms, other.paused_ms),
            (&mut self.unknown_ms, other.unknown_ms),
        ] {
            *a = a.saturating_add(b);
        }
        for (reason, ms) in &other.paused_by_reason_ms {
            let r = self.paused_by_reason_ms.entry(reason.clone()).or_default();
            *r = r.saturating_add(*ms);
        }
    }
}

/// One agent's figures over one bucket (or the whole window).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentFigures {
    pub times: StatusTimes,
    /// Interactions that ended in the bucket: ids held in `previous` and no
    /// longer in `current` (also when going offline ended them).
    pub interactions_handled: u64,
    /// When presence went offline → online (Unix ms), in order.
    pub sign_ins_ms: Vec<u64>,
    /// When presence went online → offline (Unix ms), in order.
    pub sign_outs_ms: Vec<u64>,
    /// Pauses whose overrun began in the bucket (`pause_overrun_since_ms`).
    pub pause_overruns: u64,
    /// Paused time past the reason's `max_minutes`, from
    /// `pause_overrun_since_ms` to the end of that pause.
    pub pause_overrun_ms: u64,
}

impl AgentFigures {
    pub(super) fn merge(&mut self, other: &AgentFigures) {
        self.times.merge(&other.times);
        self.interactions_handled = self
            .interactions_handled
            .saturating_add(other.interactions_handled);
        self.sign_ins_ms.extend_from_slice(&other.sign_ins_ms);
        self.sign_outs_ms.extend_from_slice(&other.sign_outs_ms);
        self.pause_overruns = self.pause_overruns.saturating_add(other.pause_overruns);
        self.pause_overrun_ms = self.pause_overrun_ms.saturating_add(other.pause_overrun_ms);
    }
}

/// One channel's figures over one bucket (or the whole window).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelFigures {
    /// Status times summed over the agents while they were connected to the
    /// channel (an agent connected to three channels counts on all three).
    pub times: StatusTimes,
    /// Interactions of this channel that ended in the bucket (whether or not
    /// the agent was connected to the channel).
    pub interactions_handled: u64,
}

impl ChannelFigures {
    pub(super) fn merge(&mut self, other: &ChannelFigures) {
        self.times.merge(&other.times);
        self.interactions_handled = self
            .interactions_handled
            .saturating_add(other.interactions_handled);
    }
}

/// One agent's row set: a figure per bucket and the window's total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentReport {
    pub agent_id: String,
    /// One per [`Report::buckets`], same order.
    pub buckets: Vec<AgentFigures>,
    pub total: AgentFigures,
}

/// One channel's row set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelReport {
    pub channel: ChannelRef,
    pub buckets: Vec<ChannelFigures>,
    pub total: ChannelFigures,
}

/// Versions the stream lost inside (or before) the window: figures around
/// it may be `unknown` time, and the report says it is incomplete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapNote {
    /// The `gap` event's id and `at_ms`.
    pub id: String,
    pub at_ms: u64,
    /// The last version seen before the loss, if any.
    pub after_version: Option<u64>,
    /// The first version seen after it, if any.
    pub before_version: Option<u64>,
}

/// A computed report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub from_ms: u64,
    pub until_ms: u64,
    /// The IANA name the buckets follow.
    pub time_zone: String,
    pub bucket: Bucket,
    pub buckets: Vec<BucketSpan>,
    /// Sorted by agent id.
    pub agents: Vec<AgentReport>,
    /// Sorted by kind then id.
    pub channels: Vec<ChannelReport>,
    /// Every `gap` the input held, in order; empty for a complete report.
    pub gaps: Vec<GapNote>,
}

impl Report {
    /// Whether every version of the input was seen (no `gap`).
    pub fn complete(&self) -> bool {
        self.gaps.is_empty()
    }
}
