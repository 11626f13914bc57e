//! Reports (issue 25): time in each status and pause reason, interactions
//! handled, sign-in and sign-out times and pause overruns, per agent and per
//! channel, per 15 minutes, hour or day of a time zone — computed from the
//! agent event stream. Pure: no clock, no I/O; the HTTP handler reads the
//! events and the records, calls [`compute()`] and a renderer. The figures'
//! meaning, the JSON shape and the CSV columns are in `docs/REPORTS.md`.
//!
//! # Layout
//!
//! - [`input`]: the event format of issue 25 ([`ReportEvent`]) and what a
//!   report reads ([`ReportInput`]: the events, and the records now).
//! - [`buckets`]: cutting the window into local 15-minute, hour or day
//!   buckets, DST-correct.
//! - `compute`: the replay of events into time per status.
//! - [`figures`]: the computed [`Report`], in milliseconds.
//! - [`render`]: JSON and CSV, in whole seconds.
//! - [`query`]: the HTTP query string of the intended endpoints.
//!
//! # What a report can and cannot know
//!
//! Everything is derived from `previous` → `current` of each agent event
//! and its `at_ms`, never from the event's name. With every event of the
//! window, the state at `from_ms` is exact: the first event of an agent in
//! the window carries, as `previous`, the record that held since before it.
//! An agent with no event in the window is known from a heartbeat, or from
//! [`ReportInput::records_at_end`]. Time the report cannot place is counted
//! as `unknown`, never guessed: before an agent was created or first seen,
//! after it was removed, and across a `gap` (lost versions) until the
//! agent's next record is vouched for by its version (see `compute`). A
//! report whose input held a gap lists it in [`Report::gaps`]. `at_ms` is
//! clamped so that it never goes back, so no duration is negative.
//!
//! # Time zones: why `jiff`
//!
//! Buckets follow a local clock, and a local day is 23, 24 or 25 hours.
//! `jiff` (BurntSushi's) does zone arithmetic on instants with explicit
//! disambiguation of skipped and repeated local times, is actively kept,
//! and has no dependencies beyond its own crates. Built with
//! `tzdb-bundle-always`, it carries its own copy of the IANA database, so a
//! report is the same on every node and in the `debian:bookworm-slim` image
//! (which has no `/usr/share/zoneinfo`), and the DST tests do not depend on
//! the build machine. `chrono-tz` would also do, but compiles the database
//! into code through a build script (slower builds) and needs `chrono` with it.

pub mod buckets;
mod compute;
pub mod figures;
pub mod input;
pub mod query;
pub mod render;
#[cfg(test)]
mod tests;

pub use buckets::{Bucket, BucketSpan, MAX_BUCKETS};
pub use figures::*;
pub use input::{parse_ndjson, EventType, ReportEvent, ReportInput};

use crate::domain::ChannelRef;

/// Why a report could not be computed (or its input read).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the window is empty: `from` must be before `to`")]
    EmptyWindow,
    #[error("a time is outside the range reports handle")]
    TimeOutOfRange,
    #[error("unknown time zone {0:?} (an IANA name such as Europe/Paris)")]
    UnknownTimeZone(String),
    #[error(
        "the report would have more than {max} buckets: ask for a shorter window or larger buckets"
    )]
    TooManyBuckets { max: usize },
    #[error("event on line {line}: {message}")]
    BadEvent { line: usize, message: String },
}

/// What to report on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRequest {
    /// The window, `[from_ms, until_ms)` (Unix ms).
    pub from_ms: u64,
    pub until_ms: u64,
    pub bucket: Bucket,
    /// The IANA time zone the buckets follow (`Europe/Paris`).
    pub time_zone: String,
    /// A scoped supervisor's channels: only these channels, and only agents
    /// assigned or connected to one of them in some record the report saw.
    /// `None`: the whole tenant (admins, unscoped supervisors).
    pub scope: Option<Vec<ChannelRef>>,
}

/// Computes a report: pure, and total on any input (errors only for the
/// request itself).
pub fn compute(input: &ReportInput, request: &ReportRequest) -> Result<Report, ReportError> {
    let tz = buckets::time_zone(&request.time_zone)?;
    let spans = buckets::spans(request.from_ms, request.until_ms, request.bucket, &tz)?;
    let engine = compute::Engine::new(
        &spans,
        request.from_ms,
        request.until_ms,
        request.scope.as_deref(),
    );
    Ok(engine
        .run(input)
        .into_report(request.time_zone.clone(), request.bucket))
}
