//! Tests of the whole module: a scripted day whose answer is known to the
//! second (on Paris's spring-forward day, 23 hours long), gaps, scope, and
//! properties over random and odd event streams.

use super::*;
use crate::domain::{
    Actor, AgentRecord, ChannelKind, ChannelRef, Device, Interaction, Presence, Role, Settings,
    Status,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// An instant given as RFC 3339 (test input only).
fn ms(rfc3339: &str) -> u64 {
    let ts: jiff::Timestamp = rfc3339.parse().expect("an instant");
    u64::try_from(ts.as_millisecond()).expect("after 1970")
}

fn sales() -> ChannelRef {
    ChannelRef::new(ChannelKind::Queue, "sales")
}
fn support() -> ChannelRef {
    ChannelRef::new(ChannelKind::Queue, "support")
}
fn outbound() -> ChannelRef {
    ChannelRef::new(ChannelKind::Campaign, "outbound")
}

/// Writes an event stream the way the hub would commit it: one version per
/// change, `previous` and `current` records, status times kept.
#[derive(Default)]
struct Script {
    events: Vec<ReportEvent>,
    version: u64,
    records: BTreeMap<String, AgentRecord>,
}

impl Script {
    /// An agent as it stood before the stream starts (version `version`).
    fn existing(
        &mut self,
        id: &str,
        version: u64,
        f: impl FnOnce(&mut AgentRecord),
    ) -> AgentRecord {
        let mut r = AgentRecord::new(id, id, &[Role::Agent], [], &Settings::default());
        f(&mut r);
        r.version = version;
        self.records.insert(id.into(), r.clone());
        r
    }

    fn push(
        &mut self,
        at: u64,
        agent: &str,
        previous: Option<AgentRecord>,
        current: Option<AgentRecord>,
    ) {
        self.events.push(ReportEvent {
            id: format!("{}-0", self.version),
            tenant: "acme".into(),
            version: self.version,
            kind: EventType::Agent,
            event: "change".into(),
            at_ms: at,
            by: Some(Actor::system()),
            agent_id: Some(agent.into()),
            previous,
            current,
        });
    }

    fn create(&mut self, id: &str, at: u64) {
        self.version += 1;
        let mut r = AgentRecord::new(id, id, &[Role::Agent], [], &Settings::default());
        r.version = self.version;
        self.records.insert(id.into(), r.clone());
        self.push(at, id, None, Some(r));
    }

    fn delete(&mut self, id: &str, at: u64) {
        self.version += 1;
        let previous = self.records.remove(id);
        self.push(at, id, previous, None);
    }

    fn change(&mut self, id: &str, at: u64, f: impl FnOnce(&mut AgentRecord)) {
        self.version += 1;
        let previous = self.records.get(id).cloned().expect("a known agent");
        let mut current = previous.clone();
        f(&mut current);
        if current.status != previous.status || current.pause_reason != previous.pause_reason {
            current.status_since_ms = at;
        }
        current.version = self.version;
        self.records.insert(id.into(), current.clone());
        self.push(at, id, Some(previous), Some(current));
    }

    fn heartbeat(&mut self, id: &str, at: u64) {
        let current = self.records.get(id).cloned();
        self.events.push(ReportEvent {
            id: format!("hb-{id}-{at}"),
            tenant: "acme".into(),
            version: self.version,
            kind: EventType::Heartbeat,
            event: "heartbeat".into(),
            at_ms: at,
            by: None,
            agent_id: Some(id.into()),
            previous: None,
            current,
        });
    }

    /// `lost` versions committed but missing from the stream.
    fn gap(&mut self, at: u64, lost: u64) {
        self.events.push(ReportEvent {
            id: format!("gap-{}", self.version),
            tenant: "acme".into(),
            version: 0,
            kind: EventType::Gap,
            event: "gap".into(),
            at_ms: at,
            by: None,
            agent_id: None,
            previous: None,
            current: None,
        });
        self.version += lost;
    }

    /// A change committed but lost from the stream (inside a gap).
    fn lost_change(&mut self, id: &str, at: u64, f: impl FnOnce(&mut AgentRecord)) {
        let before = self.events.len();
        self.change(id, at, f);
        self.events.truncate(before);
    }
}

fn connect(c: ChannelRef) -> impl FnOnce(&mut AgentRecord) {
    move |r| match r.channels.iter_mut().find(|s| s.is(&c)) {
        Some(s) => s.connected = true,
        None => r.channels.push(crate::domain::ChannelState {
            kind: c.kind,
            id: c.id,
            connected: true,
            assigned: true,
            lingering: false,
        }),
    }
}

fn sign_in(r: &mut AgentRecord) {
    r.presence = Presence::Online;
    r.status = Status::Available;
    r.devices = vec![Device {
        id: "d1".into(),
        kind: "softphone".into(),
        label: None,
        active: true,
        node: "n1".into(),
        since_ms: 0,
    }];
}

fn sign_out(r: &mut AgentRecord) {
    r.presence = Presence::Offline;
    r.status = Status::Offline;
    r.devices.iter_mut().for_each(|d| d.active = false);
    r.interactions.clear();
    r.interaction = None;
    r.pause_reason = None;
    r.pause_overrun_since_ms = None;
}

fn start(id: &'static str, c: ChannelRef, at: u64) -> impl FnOnce(&mut AgentRecord) {
    move |r| {
        r.status = Status::Busy;
        let i = Interaction {
            id: id.into(),
            channel: c,
            since_ms: at,
        };
        r.interactions.push(i.clone());
        r.interaction = Some(Box::new(i));
    }
}

fn end(id: &'static str) -> impl FnOnce(&mut AgentRecord) {
    move |r| {
        r.interactions.retain(|i| i.id != id);
        r.interaction = r.interactions.first().cloned().map(Box::new);
        if r.interactions.is_empty() {
            r.status = Status::WrapUp;
        }
    }
}

fn available(r: &mut AgentRecord) {
    r.status = Status::Available;
    r.pause_reason = None;
    r.pause_overrun_since_ms = None;
}

fn pause(reason: &'static str) -> impl FnOnce(&mut AgentRecord) {
    move |r| {
        r.status = Status::Paused;
        r.pause_reason = Some(reason.into());
    }
}

fn overrun(mark: u64) -> impl FnOnce(&mut AgentRecord) {
    move |r| r.pause_overrun_since_ms = Some(mark)
}

const DAY_FROM: &str = "2026-03-29T00:00:00+01:00";
const DAY_UNTIL: &str = "2026-03-30T00:00:00+02:00";

/// Paris, Sunday 29 March 2026: clocks jump from 02:00 to 03:00, the day is
/// 23 hours (82 800 s). `break` allows 15 minutes, `lunch` 60.
///
/// - a1 (sales + support, connected since before): signs in 08:00:00; k1 on
///   sales 08:10–08:25, wrap-up 30 s; k2 on support 09:00–09:20, wrap-up 30
///   s; break 10:00–10:20 (overrun marked at 10:15:00, committed 10:15:02);
///   lunch 12:00–12:45; signs out 17:00.
/// - a2 (sales): signed in the evening before (an event before the window);
///   k3 on sales 00:30–00:50 +01:00, wrap-up ended by hand at 00:51; break
///   01:30 +01:00 to 03:10 +02:00 across the skipped hour (40 min: overrun
///   from 01:45 +01:00, 25 min); signs out 06:00.
/// - a3 (support): signs in 21:30:00, connects support 21:30:10, k4 on
///   support at 23:00 still open at midnight (ends the next day, outside).
/// - a4: no event at all, offline in `records_at_end`.
/// - a5 (outbound): paused "training" since the day before; only heartbeats.
fn scripted_day() -> ReportInput {
    let mut s = Script::default();
    let a1_before = s.existing("a1", 10, |r| {
        connect(sales())(r);
        connect(support())(r);
    });
    s.existing("a2", 11, connect(sales()));
    s.existing("a3", 12, |r| {
        r.channels.push(crate::domain::ChannelState {
            kind: ChannelKind::Queue,
            id: "support".into(),
            connected: false,
            assigned: true,
            lingering: false,
        })
    });
    let a4 = s.existing("a4", 13, |r| {
        r.channels.push(crate::domain::ChannelState {
            kind: ChannelKind::Queue,
            id: "sales".into(),
            connected: false,
            assigned: true,
            lingering: false,
        })
    });
    s.existing("a5", 14, |r| {
        connect(outbound())(r);
        sign_in(r);
        pause("training")(r);
    });
    s.version = 100;
    let _ = a1_before;

    // The evening before: in the input, outside the window.
    s.change("a2", ms("2026-03-28T22:00:00+01:00"), sign_in);
    // a2 across midnight and the skipped hour.
    let k3 = ms("2026-03-29T00:30:00+01:00");
    s.change("a2", k3, start("k3", sales(), k3));
    s.change("a2", ms("2026-03-29T00:50:00+01:00"), end("k3"));
    s.change("a2", ms("2026-03-29T00:51:00+01:00"), available);
    s.change("a2", ms("2026-03-29T01:30:00+01:00"), pause("break"));
    let mark2 = ms("2026-03-29T01:45:00+01:00");
    s.change("a2", mark2, overrun(mark2));
    s.change("a2", ms("2026-03-29T03:10:00+02:00"), available);
    s.change("a2", ms("2026-03-29T06:00:00+02:00"), sign_out);
    // a1's day.
    s.change("a1", ms("2026-03-29T08:00:00+02:00"), sign_in);
    let k1 = ms("2026-03-29T08:10:00+02:00");
    s.change("a1", k1, start("k1", sales(), k1));
    s.change("a1", ms("2026-03-29T08:25:00+02:00"), end("k1"));
    s.change("a1", ms("2026-03-29T08:25:30+02:00"), available);
    let k2 = ms("2026-03-29T09:00:00+02:00");
    s.change("a1", k2, start("k2", support(), k2));
    s.change("a1", ms("2026-03-29T09:20:00+02:00"), end("k2"));
    s.change("a1", ms("2026-03-29T09:20:30+02:00"), available);
    s.heartbeat("a5", ms("2026-03-29T10:00:00+02:00"));
    s.change("a1", ms("2026-03-29T10:00:00+02:00"), pause("break"));
    let mark1 = ms("2026-03-29T10:15:00+02:00");
    s.change("a1", mark1 + 2_000, overrun(mark1));
    s.change("a1", ms("2026-03-29T10:20:00+02:00"), available);
    s.change("a1", ms("2026-03-29T12:00:00+02:00"), pause("lunch"));
    s.change("a1", ms("2026-03-29T12:45:00+02:00"), available);
    s.change("a1", ms("2026-03-29T17:00:00+02:00"), sign_out);
    s.heartbeat("a5", ms("2026-03-29T20:00:00+02:00"));
    // a3 into the next day.
    s.change("a3", ms("2026-03-29T21:30:00+02:00"), sign_in);
    s.change("a3", ms("2026-03-29T21:30:10+02:00"), connect(support()));
    let k4 = ms("2026-03-29T23:00:00+02:00");
    s.change("a3", k4, start("k4", support(), k4));
    s.change("a3", ms("2026-03-30T00:20:00+02:00"), end("k4"));
    ReportInput {
        events: s.events,
        records_at_end: vec![a4],
    }
}

fn request(bucket: Bucket) -> ReportRequest {
    ReportRequest {
        from_ms: ms(DAY_FROM),
        until_ms: ms(DAY_UNTIL),
        bucket,
        time_zone: "Europe/Paris".into(),
        scope: None,
    }
}

fn agent<'r>(r: &'r Report, id: &str) -> &'r AgentReport {
    r.agents
        .iter()
        .find(|a| a.agent_id == id)
        .expect("agent in report")
}

fn channel<'r>(r: &'r Report, c: &ChannelRef) -> &'r ChannelReport {
    r.channels
        .iter()
        .find(|x| &x.channel == c)
        .expect("channel in report")
}

/// Seconds: offline, available, busy, wrap_up, paused, unknown.
fn secs(t: &StatusTimes) -> [u64; 6] {
    [
        t.offline_ms,
        t.available_ms,
        t.busy_ms,
        t.wrap_up_ms,
        t.paused_ms,
        t.unknown_ms,
    ]
    .map(|ms| {
        assert_eq!(ms % 1000, 0, "whole seconds in the scripted day");
        ms / 1000
    })
}

fn reasons(t: &StatusTimes) -> Vec<(&str, u64)> {
    t.paused_by_reason_ms
        .iter()
        .map(|(r, ms)| (r.as_str(), ms / 1000))
        .collect()
}

fn assert_buckets_add_up(r: &Report) {
    for a in &r.agents {
        for (b, f) in r.buckets.iter().zip(&a.buckets) {
            assert_eq!(
                f.times.sum_ms(),
                b.until_ms - b.from_ms,
                "{} at {}",
                a.agent_id,
                b.start
            );
        }
        assert_eq!(a.total.times.sum_ms(), r.until_ms - r.from_ms);
    }
}

#[test]
fn the_scripted_day_to_the_second() {
    let r = compute(&scripted_day(), &request(Bucket::Day)).expect("report");
    assert_eq!(r.buckets.len(), 1);
    assert_eq!(
        r.buckets[0].until_ms - r.buckets[0].from_ms,
        82_800_000,
        "23 hours"
    );
    assert!(r.complete());
    let ids: Vec<&str> = r.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2", "a3", "a4", "a5"]);
    assert_buckets_add_up(&r);

    let a1 = &agent(&r, "a1").total;
    assert_eq!(secs(&a1.times), [50_400, 26_340, 2_100, 60, 3_900, 0]);
    assert_eq!(reasons(&a1.times), [("break", 1_200), ("lunch", 2_700)]);
    assert_eq!(a1.interactions_handled, 2);
    assert_eq!(a1.sign_ins_ms, [ms("2026-03-29T08:00:00+02:00")]);
    assert_eq!(a1.sign_outs_ms, [ms("2026-03-29T17:00:00+02:00")]);
    assert_eq!((a1.pause_overruns, a1.pause_overrun_ms), (1, 300_000));

    let a2 = &agent(&r, "a2").total;
    assert_eq!(secs(&a2.times), [64_800, 14_340, 1_200, 60, 2_400, 0]);
    assert_eq!(reasons(&a2.times), [("break", 2_400)]);
    assert_eq!(a2.interactions_handled, 1);
    assert!(a2.sign_ins_ms.is_empty(), "signed in the day before");
    assert_eq!(a2.sign_outs_ms, [ms("2026-03-29T06:00:00+02:00")]);
    assert_eq!((a2.pause_overruns, a2.pause_overrun_ms), (1, 1_500_000));

    let a3 = &agent(&r, "a3").total;
    assert_eq!(secs(&a3.times), [73_800, 5_400, 3_600, 0, 0, 0]);
    assert_eq!(a3.interactions_handled, 0, "k4 ends the next day");
    assert_eq!(a3.sign_ins_ms, [ms("2026-03-29T21:30:00+02:00")]);

    let a4 = &agent(&r, "a4").total;
    assert_eq!(secs(&a4.times), [82_800, 0, 0, 0, 0, 0]);
    let a5 = &agent(&r, "a5").total;
    assert_eq!(secs(&a5.times), [0, 0, 0, 0, 82_800, 0]);
    assert_eq!(reasons(&a5.times), [("training", 82_800)]);
    assert_eq!(a5.pause_overruns, 0);

    let chans: Vec<String> = r.channels.iter().map(|c| c.channel.to_string()).collect();
    assert_eq!(chans, ["queue sales", "queue support", "campaign outbound"]);
    let s = &channel(&r, &sales()).total;
    assert_eq!(secs(&s.times), [115_200, 40_680, 3_300, 120, 6_300, 0]);
    assert_eq!(reasons(&s.times), [("break", 3_600), ("lunch", 2_700)]);
    assert_eq!(s.interactions_handled, 2);
    let s = &channel(&r, &support()).total;
    assert_eq!(secs(&s.times), [50_400, 31_730, 5_700, 60, 3_900, 0]);
    assert_eq!(s.interactions_handled, 1);
    let s = &channel(&r, &outbound()).total;
    assert_eq!(secs(&s.times), [0, 0, 0, 0, 82_800, 0]);
}

#[test]
fn the_scripted_day_hour_by_hour() {
    let r = compute(&scripted_day(), &request(Bucket::Hour)).expect("report");
    assert_eq!(r.buckets.len(), 23);
    assert_buckets_add_up(&r);
    let at = |start: &str| {
        r.buckets
            .iter()
            .position(|b| b.start == start)
            .unwrap_or_else(|| panic!("no bucket {start}"))
    };
    assert!(r
        .buckets
        .iter()
        .all(|b| !b.start.starts_with("2026-03-29T02:")));
    let a2 = agent(&r, "a2");
    let f = &a2.buckets[at("2026-03-29T00:00:00+01:00")];
    assert_eq!(secs(&f.times), [0, 1_800 + 540, 1_200, 60, 0, 0]);
    assert_eq!(f.interactions_handled, 1);
    let f = &a2.buckets[at("2026-03-29T01:00:00+01:00")];
    assert_eq!(secs(&f.times), [0, 1_800, 0, 0, 1_800, 0]);
    assert_eq!((f.pause_overruns, f.pause_overrun_ms), (1, 900_000));
    let f = &a2.buckets[at("2026-03-29T03:00:00+02:00")];
    assert_eq!(secs(&f.times), [0, 3_000, 0, 0, 600, 0]);
    assert_eq!((f.pause_overruns, f.pause_overrun_ms), (0, 600_000));
    let f = &a2.buckets[at("2026-03-29T06:00:00+02:00")];
    assert_eq!(secs(&f.times), [3_600, 0, 0, 0, 0, 0]);
    assert_eq!(f.sign_outs_ms, [ms("2026-03-29T06:00:00+02:00")]);
    assert!(a2.buckets[at("2026-03-29T05:00:00+02:00")]
        .sign_outs_ms
        .is_empty());

    let a1 = agent(&r, "a1");
    let f = &a1.buckets[at("2026-03-29T07:00:00+02:00")];
    assert_eq!(secs(&f.times), [3_600, 0, 0, 0, 0, 0]);
    assert!(
        f.sign_ins_ms.is_empty(),
        "08:00:00 belongs to the 08:00 bucket"
    );
    let f = &a1.buckets[at("2026-03-29T08:00:00+02:00")];
    assert_eq!(secs(&f.times), [0, 2_670, 900, 30, 0, 0]);
    assert_eq!((f.interactions_handled, f.sign_ins_ms.len()), (1, 1));
    let f = &a1.buckets[at("2026-03-29T10:00:00+02:00")];
    assert_eq!(secs(&f.times), [0, 2_400, 0, 0, 1_200, 0]);
    assert_eq!((f.pause_overruns, f.pause_overrun_ms), (1, 300_000));
    let f = &a1.buckets[at("2026-03-29T12:00:00+02:00")];
    assert_eq!(reasons(&f.times), [("lunch", 2_700)]);
    let f = &a1.buckets[at("2026-03-29T11:00:00+02:00")];
    assert_eq!(
        reasons(&f.times),
        [],
        "a pause from 12:00:00 leaves 11:00 alone"
    );
    let f = &a1.buckets[at("2026-03-29T16:00:00+02:00")];
    assert_eq!(secs(&f.times), [0, 3_600, 0, 0, 0, 0]);
    assert!(
        f.sign_outs_ms.is_empty(),
        "17:00:00 belongs to the 17:00 bucket"
    );

    let support = channel(&r, &support());
    let f = &support.buckets[at("2026-03-29T21:00:00+02:00")];
    assert_eq!(
        secs(&f.times),
        [3_600, 1_790, 0, 0, 0, 0],
        "a1 offline, a3 from 21:30:10"
    );
    let f = &support.buckets[at("2026-03-29T23:00:00+02:00")];
    assert_eq!(secs(&f.times), [3_600, 0, 3_600, 0, 0, 0]);

    // Totals are the sums of the buckets.
    for a in &r.agents {
        let mut sum = AgentFigures::default();
        a.buckets.iter().for_each(|f| sum.merge(f));
        assert_eq!(sum, a.total);
    }
}

#[test]
fn the_overrun_counts_where_the_limit_passed_not_where_the_mark_was_committed() {
    let r = compute(&scripted_day(), &request(Bucket::Minutes15)).expect("report");
    assert_eq!(r.buckets.len(), 92);
    assert_buckets_add_up(&r);
    let a1 = agent(&r, "a1");
    let i = r
        .buckets
        .iter()
        .position(|b| b.start == "2026-03-29T10:15:00+02:00")
        .expect("bucket");
    assert_eq!(
        (a1.buckets[i].pause_overruns, a1.buckets[i].pause_overrun_ms),
        (1, 300_000)
    );
    assert_eq!(a1.buckets[i - 1].pause_overrun_ms, 0);
    assert_eq!(a1.buckets[i - 1].pause_overruns, 0);
}

#[test]
fn renderers_show_the_scripted_day_in_seconds() {
    let r = compute(&scripted_day(), &request(Bucket::Day)).expect("report");
    let j = render::agents_json(&r);
    assert_eq!(j["time_zone"], "Europe/Paris");
    assert_eq!(j["bucket"], "1d");
    assert_eq!(j["complete"], true);
    assert_eq!(j["buckets"][0]["start"], "2026-03-29T00:00:00+01:00");
    let a1 = &j["agents"][0];
    assert_eq!(a1["agent_id"], "a1");
    assert_eq!(
        a1["total"],
        serde_json::json!({
            "offline_s": 50_400, "available_s": 26_340, "busy_s": 2_100, "wrap_up_s": 60,
            "paused_s": 3_900, "unknown_s": 0,
            "paused_by_reason_s": {"break": 1_200, "lunch": 2_700},
            "interactions_handled": 2,
            "sign_ins_ms": [ms("2026-03-29T08:00:00+02:00")],
            "sign_outs_ms": [ms("2026-03-29T17:00:00+02:00")],
            "pause_overruns": 1, "pause_overrun_s": 300
        })
    );
    assert_eq!(a1["buckets"][0], a1["total"]);
    let c = render::channels_json(&r);
    assert_eq!(c["channels"][0]["kind"], "queue");
    assert_eq!(c["channels"][0]["id"], "sales");
    assert_eq!(c["channels"][0]["total"]["available_s"], 40_680);
    assert!(c["channels"][0]["total"].get("unknown_s").is_none());

    let csv = render::agents_csv(&r);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "row,agent_id,bucket_start,from,until,offline_s,available_s,busy_s,wrap_up_s,paused_s,unknown_s,\
         paused_s:break,paused_s:lunch,paused_s:training,interactions_handled,sign_ins,sign_outs,\
         pause_overruns,pause_overrun_s"
    );
    assert_eq!(
        lines[1],
        "bucket,a1,2026-03-29T00:00:00+01:00,2026-03-29T00:00:00+01:00,2026-03-30T00:00:00+02:00,\
         50400,26340,2100,60,3900,0,1200,2700,0,2,2026-03-29T08:00:00+02:00,2026-03-29T17:00:00+02:00,1,300"
    );
    assert!(lines[2].starts_with("total,a1,,2026-03-29T00:00:00+01:00,"));
    assert_eq!(
        lines.len(),
        1 + 5 * 2 + 1,
        "header, 2 rows per agent, the final CRLF"
    );
    let csv = render::channels_csv(&r);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "row,kind,id,bucket_start,from,until,offline_s,available_s,busy_s,wrap_up_s,paused_s,\
         paused_s:break,paused_s:lunch,paused_s:training,interactions_handled"
    );
    assert_eq!(
        lines[1],
        "bucket,queue,sales,2026-03-29T00:00:00+01:00,2026-03-29T00:00:00+01:00,\
         2026-03-30T00:00:00+02:00,115200,40680,3300,120,6300,3600,2700,0,2"
    );
}

#[test]
fn a_supervisor_scoped_to_support_sees_its_agents_and_channel_only() {
    let mut req = request(Bucket::Day);
    req.scope = Some(vec![support()]);
    let r = compute(&scripted_day(), &req).expect("report");
    let ids: Vec<&str> = r.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["a1", "a3"]);
    let chans: Vec<String> = r.channels.iter().map(|c| c.channel.to_string()).collect();
    assert_eq!(chans, ["queue support"]);
}

#[test]
fn a_gap_is_reported_and_only_what_it_may_have_changed_is_unknown() {
    let mut s = Script::default();
    s.existing("a", 1, sign_in);
    s.existing("b", 2, sign_in);
    s.version = 10;
    let t = |h: u32| ms(&format!("2026-06-01T{h:02}:00:00+00:00"));
    s.change("a", t(1), pause("break"));
    s.change("b", t(2), pause("break"));
    // Lost: a's unpause at 04:00 (and b untouched).
    s.gap(t(5), 0);
    s.lost_change("a", t(4), available);
    s.change("a", t(6), pause("lunch"));
    s.change("b", t(7), available);
    let req = ReportRequest {
        from_ms: t(0),
        until_ms: t(8),
        bucket: Bucket::Hour,
        time_zone: "UTC".into(),
        scope: None,
    };
    let r = compute(
        &ReportInput {
            events: s.events.clone(),
            records_at_end: vec![],
        },
        &req,
    )
    .expect("report");
    assert!(!r.complete());
    assert_eq!(r.gaps.len(), 1);
    assert_eq!(
        (r.gaps[0].after_version, r.gaps[0].before_version),
        (Some(12), Some(14))
    );
    assert_buckets_add_up(&r);
    let a = &agent(&r, "a").total;
    // Known: available 00–01, paused 01–02 (the last event before the
    // loss); unknown 02–06 (a changed in the lost versions: when, no one
    // can say); lunch 06–08.
    assert_eq!(secs(&a.times), [0, 3_600, 0, 0, 3_600 + 7_200, 14_400]);
    let b = &agent(&r, "b").total;
    // b's record kept its version across the gap: nothing of b was lost.
    assert_eq!(secs(&b.times), [0, 7_200 + 3_600, 0, 0, 18_000, 0]);
    let j = render::agents_json(&r);
    assert_eq!(j["complete"], false);
    assert_eq!(j["gaps"][0]["after_version"], 12);

    // A gap that lost a's last record and never heard of a again: unknown
    // to the end; b, unchanged, known to the end.
    let mut s2 = Script::default();
    s2.existing("a", 1, sign_in);
    s2.existing("b", 2, sign_in);
    s2.version = 10;
    s2.change("a", t(1), pause("break"));
    s2.gap(t(3), 0);
    s2.lost_change("a", t(2), available);
    let r = compute(
        &ReportInput {
            events: s2.events,
            records_at_end: vec![],
        },
        &req,
    )
    .expect("report");
    assert_buckets_add_up(&r);
    assert_eq!(
        secs(&agent(&r, "a").total.times),
        [0, 3_600, 0, 0, 0, 25_200]
    );
    assert_eq!(r.agents.len(), 1, "b was never seen: not in the report");
}

#[test]
fn created_and_removed_agents_are_unknown_outside_their_life() {
    let mut s = Script::default();
    let t = |h: u32| ms(&format!("2026-06-01T{h:02}:00:00+00:00"));
    s.create("n", t(2));
    s.change("n", t(3), sign_in);
    s.delete("n", t(5));
    let req = ReportRequest {
        from_ms: t(0),
        until_ms: t(8),
        bucket: Bucket::Day,
        time_zone: "UTC".into(),
        scope: None,
    };
    let r = compute(
        &ReportInput {
            events: s.events,
            records_at_end: vec![],
        },
        &req,
    )
    .expect("report");
    assert_eq!(
        secs(&agent(&r, "n").total.times),
        [3_600, 7_200, 0, 0, 0, 18_000]
    );
    assert_eq!(agent(&r, "n").total.sign_ins_ms, [t(3)]);
}

#[test]
fn a_repeated_event_counts_once_and_a_clock_stepping_back_is_clamped() {
    let mut s = Script::default();
    s.existing("a", 1, |r| {
        sign_in(r);
        connect(sales())(r);
    });
    s.version = 10;
    let t0 = ms("2026-06-01T10:00:00+00:00");
    s.change("a", t0, start("k", sales(), t0));
    s.change("a", t0 + 60_000, end("k"));
    // Another node's clock is 5 ms behind: the wrap-up ends "before" it began.
    s.change("a", t0 + 60_000 - 5, available);
    let repeated = s.events[1].clone();
    s.events.insert(2, repeated);
    let req = ReportRequest {
        from_ms: t0 - 3_600_000,
        until_ms: t0 + 3_600_000,
        bucket: Bucket::Hour,
        time_zone: "UTC".into(),
        scope: None,
    };
    let r = compute(
        &ReportInput {
            events: s.events,
            records_at_end: vec![],
        },
        &req,
    )
    .expect("report");
    assert_buckets_add_up(&r);
    let a = &agent(&r, "a").total;
    assert_eq!(a.interactions_handled, 1);
    assert_eq!(a.times.wrap_up_ms, 0, "clamped to nothing, not negative");
    assert_eq!(a.times.busy_ms, 60_000);
    assert_eq!(channel(&r, &sales()).total.interactions_handled, 1);
}

#[test]
fn an_event_stepping_back_across_a_bucket_edge_counts_where_the_clock_stood() {
    let mut s = Script::default();
    s.existing("a", 1, |r| {
        sign_in(r);
        connect(sales())(r);
    });
    s.version = 10;
    let t0 = ms("2026-06-01T10:00:00+00:00");
    s.change("a", t0 - 60_000, start("k", sales(), t0 - 60_000));
    s.change("a", t0 + 2, connect(support()));
    // Another node, 5 ms behind, ends k "at 09:59:59.997".
    s.change("a", t0 - 3, end("k"));
    let req = ReportRequest {
        from_ms: t0 - 3_600_000,
        until_ms: t0 + 3_600_000,
        bucket: Bucket::Hour,
        time_zone: "UTC".into(),
        scope: None,
    };
    let r = compute(
        &ReportInput {
            events: s.events,
            records_at_end: vec![],
        },
        &req,
    )
    .expect("report");
    assert_buckets_add_up(&r);
    let a = agent(&r, "a");
    assert_eq!(
        (
            a.buckets[0].interactions_handled,
            a.buckets[1].interactions_handled
        ),
        (0, 1),
        "k ended after 10:00:00.002, the change before it"
    );
    assert_eq!(
        (a.buckets[0].times.busy_ms, a.buckets[1].times.busy_ms),
        (60_000, 2)
    );
    assert_eq!(channel(&r, &sales()).buckets[1].interactions_handled, 1);
}

#[test]
fn a_heartbeat_from_a_lagging_replica_does_not_bring_back_an_old_state() {
    let mut s = Script::default();
    let before = s.existing("a", 1, sign_in);
    s.version = 10;
    let t0 = ms("2026-06-01T10:00:00+00:00");
    s.change("a", t0, pause("break"));
    // A node that has not applied the pause yet beats with the old record.
    s.events.push(ReportEvent {
        id: "hb".into(),
        tenant: "acme".into(),
        version: 1,
        kind: EventType::Heartbeat,
        event: "heartbeat".into(),
        at_ms: t0 + 1,
        by: None,
        agent_id: Some("a".into()),
        previous: None,
        current: Some(before),
    });
    s.change("a", t0 + 600_000, available);
    let req = ReportRequest {
        from_ms: t0 - 3_600_000,
        until_ms: t0 + 3_600_000,
        bucket: Bucket::Day,
        time_zone: "UTC".into(),
        scope: None,
    };
    let r = compute(
        &ReportInput {
            events: s.events,
            records_at_end: vec![],
        },
        &req,
    )
    .expect("report");
    let a = &agent(&r, "a").total;
    assert_eq!(secs(&a.times), [0, 6_600, 0, 0, 600, 0]);
}

/// Found by the property below: a change whose `previous` is older than
/// the state in force still has the time up to it counted (the state in
/// force held until then), never dropped.
#[test]
fn a_stale_previous_still_has_the_time_before_it_counted() {
    let mut newer = AgentRecord::new("c", "c", &[Role::Agent], [], &Settings::default());
    newer.version = 31;
    let mut stale = newer.clone();
    stale.version = 0;
    let event = |version, at_ms, previous, current| ReportEvent {
        id: String::new(),
        tenant: "t".into(),
        version,
        kind: EventType::Agent,
        event: String::new(),
        at_ms,
        by: None,
        agent_id: Some("c".into()),
        previous,
        current,
    };
    let input = ReportInput {
        events: vec![
            event(1, 25_000, None, Some(newer)),
            event(2, 40_000, Some(stale), None),
        ],
        records_at_end: vec![],
    };
    let req = ReportRequest {
        from_ms: 0,
        until_ms: 51_654,
        bucket: Bucket::Minutes15,
        time_zone: "Europe/Paris".into(),
        scope: None,
    };
    let r = compute(&input, &req).expect("report");
    assert_buckets_add_up(&r);
    let c = &agent(&r, "c").total.times;
    assert_eq!((c.unknown_ms, c.offline_ms), (51_654 - 15_000, 15_000));
}

#[test]
fn records_at_end_changed_after_the_events_are_not_used() {
    let mut s = Script::default();
    s.existing("a", 1, sign_in);
    s.version = 10;
    let t0 = ms("2026-06-01T10:00:00+00:00");
    s.change("a", t0, pause("break"));
    let mut newer = s.existing("b", 50, sign_in);
    newer.version = 50;
    let older = s.existing("c", 5, sign_in);
    let req = ReportRequest {
        from_ms: t0 - 3_600_000,
        until_ms: t0 + 3_600_000,
        bucket: Bucket::Day,
        time_zone: "UTC".into(),
        scope: None,
    };
    let r = compute(
        &ReportInput {
            events: s.events,
            records_at_end: vec![newer, older],
        },
        &req,
    )
    .expect("report");
    let ids: Vec<&str> = r.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(agent(&r, "c").total.times.available_ms, 7_200_000);
}

#[test]
fn the_fall_back_day_is_25_hours_with_the_doubled_hour_twice() {
    let mut s = Script::default();
    let a = s.existing("a", 3, sign_in);
    let req = ReportRequest {
        from_ms: ms("2026-10-25T00:00:00+02:00"),
        until_ms: ms("2026-10-26T00:00:00+01:00"),
        bucket: Bucket::Hour,
        time_zone: "Europe/Paris".into(),
        scope: None,
    };
    let input = ReportInput {
        events: vec![],
        records_at_end: vec![a],
    };
    let r = compute(&input, &req).expect("report");
    assert_eq!(r.buckets.len(), 25);
    let doubled: Vec<&str> = r
        .buckets
        .iter()
        .map(|b| b.start.as_str())
        .filter(|s| s.starts_with("2026-10-25T02:"))
        .collect();
    assert_eq!(
        doubled,
        ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]
    );
    assert_buckets_add_up(&r);
    assert_eq!(secs(&agent(&r, "a").total.times), [0, 90_000, 0, 0, 0, 0]);
    let day = compute(
        &input,
        &ReportRequest {
            bucket: Bucket::Day,
            ..req
        },
    )
    .expect("report");
    assert_eq!(day.buckets.len(), 1);
    assert_eq!(
        secs(&agent(&day, "a").buckets[0].times),
        [0, 90_000, 0, 0, 0, 0]
    );
}

#[test]
fn bad_requests_are_errors() {
    let mut req = request(Bucket::Hour);
    req.time_zone = "Nowhere/Atlantis".into();
    assert!(matches!(
        compute(&ReportInput::default(), &req),
        Err(ReportError::UnknownTimeZone(_))
    ));
    let mut req = request(Bucket::Hour);
    req.until_ms = req.from_ms;
    assert_eq!(
        compute(&ReportInput::default(), &req),
        Err(ReportError::EmptyWindow)
    );
    let empty = compute(&ReportInput::default(), &request(Bucket::Day)).expect("empty report");
    assert!(empty.agents.is_empty() && empty.channels.is_empty() && empty.complete());
    assert!(render::agents_csv(&empty).ends_with("pause_overrun_s\r\n"));
}

/// Found by the property below: a heartbeat's record and the next event's
/// `previous` with the same version but different content (never made by
/// the hub). The overrun already counted for the tracked state must not be
/// counted again as the new mark's lag.
#[test]
fn an_overrun_is_never_counted_twice_on_odd_records() {
    let mut paused = AgentRecord::new("b", "b", &[Role::Agent], [], &Settings::default());
    paused.status = Status::Paused;
    paused.pause_reason = Some("break".into());
    paused.pause_overrun_since_ms = Some(0);
    paused.version = 21;
    let mut odd = paused.clone();
    odd.status = Status::WrapUp;
    odd.pause_overrun_since_ms = None;
    let mut next = paused.clone();
    next.pause_overrun_since_ms = Some(100);
    next.version = 22;
    let event = |kind, at_ms, previous, current| ReportEvent {
        id: String::new(),
        tenant: "t".into(),
        version: 22,
        kind,
        event: String::new(),
        at_ms,
        by: None,
        agent_id: Some("b".into()),
        previous,
        current,
    };
    let input = ReportInput {
        events: vec![
            event(EventType::Heartbeat, 1_000, None, Some(paused)),
            event(EventType::Agent, 2_000, Some(odd), Some(next)),
        ],
        records_at_end: vec![],
    };
    let req = ReportRequest {
        from_ms: 0,
        until_ms: 3_600_000,
        bucket: Bucket::Hour,
        time_zone: "UTC".into(),
        scope: None,
    };
    let r = compute(&input, &req).expect("report");
    let b = &agent(&r, "b").total;
    assert_eq!((b.pause_overruns, b.pause_overrun_ms), (1, 3_600_000));
    assert_eq!(b.times.paused_ms, 3_600_000);
}

// ---- properties -----------------------------------------------------------

fn arb_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Offline),
        Just(Status::Available),
        Just(Status::Busy),
        Just(Status::WrapUp),
        Just(Status::Paused),
    ]
}

/// A record with anything in it, consistent or not.
fn arb_record(id: &'static str) -> impl Strategy<Value = AgentRecord> {
    (
        arb_status(),
        any::<bool>(),
        prop::option::of(prop_oneof![Just("break"), Just("lunch"), Just("")]),
        prop::collection::vec((0u8..4, 0u8..3), 0..4),
        prop::collection::vec((0u8..3, any::<bool>()), 0..3),
        prop::option::of(0u64..200_000),
        0u64..40,
    )
        .prop_map(
            move |(status, online, reason, interactions, channels, mark, version)| {
                let mut r = AgentRecord::new(id, id, &[Role::Agent], [], &Settings::default());
                r.status = status;
                r.presence = if online {
                    Presence::Online
                } else {
                    Presence::Offline
                };
                r.pause_reason = reason.map(str::to_string);
                let chan = |n: u8| ChannelRef::new(ChannelKind::Queue, format!("q{n}"));
                r.interactions = interactions
                    .into_iter()
                    .map(|(i, c)| Interaction {
                        id: format!("k{i}"),
                        channel: chan(c),
                        since_ms: 0,
                    })
                    .collect();
                r.channels = channels
                    .into_iter()
                    .map(|(c, connected)| crate::domain::ChannelState {
                        kind: ChannelKind::Queue,
                        id: format!("q{c}"),
                        connected,
                        assigned: true,
                        lingering: false,
                    })
                    .collect();
                r.pause_overrun_since_ms = mark;
                r.version = version;
                r
            },
        )
}

fn arb_event() -> impl Strategy<Value = ReportEvent> {
    let kind = prop_oneof![
        6 => Just(EventType::Agent),
        2 => Just(EventType::Heartbeat),
        1 => Just(EventType::Gap),
        1 => Just(EventType::Settings),
        1 => Just(EventType::Other),
    ];
    let id = || prop_oneof![Just("a"), Just("b"), Just("c")];
    (
        kind,
        id(),
        0u64..50,
        // Steps that go forward a lot and back a little.
        -5_000i64..60_000,
        prop::option::of(id().prop_flat_map(arb_record)),
        prop::option::of(id().prop_flat_map(arb_record)),
    )
        .prop_map(
            |(kind, agent, version, step, previous, current)| ReportEvent {
                id: String::new(),
                tenant: "t".into(),
                version,
                kind,
                event: String::new(),
                at_ms: step.unsigned_abs(),
                by: None,
                agent_id: Some(agent.into()),
                previous,
                current,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any query string and any text as events: an answer or a typed error.
    #[test]
    fn any_query_or_event_text_is_an_answer_or_an_error(
        query in "[a-z0-9=&%+:/._-]{0,120}",
        text in "\\PC{0,200}",
    ) {
        let _ = query::parse_query(&query);
        let _ = query::parse_query(&format!("from=1&to=2&{query}"));
        let _ = parse_ndjson(&text);
        let _ = parse_ndjson(&format!("{{\"type\": \"agent\", \"at_ms\": 1, {text}"));
    }

    /// Whatever the stream holds — odd records, repeated and out-of-order
    /// versions, gaps, clocks stepping back — the report is computed, every
    /// agent's statuses and `unknown` fill each bucket exactly, and a
    /// channel never gets more time than its agents had.
    #[test]
    fn status_times_always_fill_each_bucket(
        mut events in prop::collection::vec(arb_event(), 0..40),
        base in 0u64..4_000_000_000_000,
        from_off in 0u64..600_000,
        len in 1u64..1_200_000,
        bucket in prop_oneof![Just(Bucket::Minutes15), Just(Bucket::Hour), Just(Bucket::Day)],
        ends in prop::collection::vec(prop_oneof![Just("a"), Just("d")].prop_flat_map(arb_record), 0..3),
    ) {
        // at_ms: a walk from `base`, stepping back up to 5 s at times.
        let mut now = base;
        for (i, e) in events.iter_mut().enumerate() {
            let step = e.at_ms;
            now = if i % 3 == 2 { now.saturating_sub(step % 5_000) } else { now + step };
            e.at_ms = now;
        }
        let req = ReportRequest {
            from_ms: base + from_off,
            until_ms: base + from_off + len,
            bucket,
            time_zone: "Europe/Paris".into(),
            scope: None,
        };
        let r = compute(&ReportInput { events, records_at_end: ends }, &req).expect("report");
        for a in &r.agents {
            for (b, f) in r.buckets.iter().zip(&a.buckets) {
                prop_assert_eq!(f.times.sum_ms(), b.until_ms - b.from_ms);
                prop_assert_eq!(f.times.paused_by_reason_ms.values().sum::<u64>(), f.times.paused_ms);
                prop_assert!(f.pause_overrun_ms <= b.until_ms - b.from_ms);
            }
        }
        for c in &r.channels {
            for (b, f) in r.buckets.iter().zip(&c.buckets) {
                prop_assert!(f.times.sum_ms() <= (b.until_ms - b.from_ms) * 4, "4 agents at most");
                prop_assert_eq!(f.times.unknown_ms, 0);
            }
        }
        // The renderers take anything compute makes.
        let _ = render::agents_json(&r);
        let _ = render::channels_csv(&r);
        let csv = render::agents_csv(&r);
        prop_assert_eq!(csv.matches("\r\n").count(), 1 + r.agents.len() * (r.buckets.len() + 1));
    }
}
