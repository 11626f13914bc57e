//! Renderers: JSON and CSV of a [`Report`], in whole seconds.
//!
//! Seconds are apportioned, not rounded one by one: in each bucket the
//! statuses and `unknown` are rounded with the largest-remainder method so
//! they add up to the bucket's length in seconds exactly, and the pause
//! reasons add up to `paused_s` the same way (a sheet that sums a row gets
//! the bucket's length, not one second off). With times on whole seconds —
//! the usual case — every figure is exact.
//!
//! CSV is written here rather than with the `csv` crate: writing is the only
//! need, RFC 4180 quoting is a few lines (tested below), and the hub stays
//! one dependency lighter. Reading CSV, where the crate would earn its
//! place, is nobody's job here.

use super::figures::*;
use crate::domain::ChannelRef;
use jiff::Timestamp;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// Milliseconds to seconds, half up.
fn round_s(ms: u64) -> u64 {
    ms / 1000 + u64::from(ms % 1000 >= 500)
}

/// Whole seconds for each of `ms` that add up to `total_s`, by largest
/// remainder (ties to the earlier entry). `total_s` must lie between the
/// sum of the floors and that plus `ms.len()`; it is clamped there.
fn apportion(ms: &[u64], total_s: u64) -> Vec<u64> {
    let mut out: Vec<u64> = ms.iter().map(|m| m / 1000).collect();
    let floors: u64 = out.iter().sum();
    let mut extra = total_s.saturating_sub(floors).min(ms.len() as u64);
    let mut order: Vec<usize> = (0..ms.len()).collect();
    // Stable: equal remainders keep their order.
    order.sort_by_key(|&i| std::cmp::Reverse(ms[i] % 1000));
    for i in order {
        if extra == 0 {
            break;
        }
        if ms[i] % 1000 > 0 {
            out[i] += 1;
            extra -= 1;
        }
    }
    out
}

/// Status seconds (offline, available, busy, wrap_up, paused, unknown) and
/// each reason's paused seconds.
struct Seconds {
    statuses: [u64; 6],
    reasons: Vec<(String, u64)>,
}

fn seconds(t: &StatusTimes) -> Seconds {
    let ms = [
        t.offline_ms,
        t.available_ms,
        t.busy_ms,
        t.wrap_up_ms,
        t.paused_ms,
        t.unknown_ms,
    ];
    let s = apportion(&ms, round_s(t.sum_ms()));
    let statuses = [s[0], s[1], s[2], s[3], s[4], s[5]];
    let reason_ms: Vec<u64> = t.paused_by_reason_ms.values().copied().collect();
    let reasons = t
        .paused_by_reason_ms
        .keys()
        .cloned()
        .zip(apportion(&reason_ms, statuses[4]))
        .collect();
    Seconds { statuses, reasons }
}

const STATUS_NAMES: [&str; 6] = [
    "offline_s",
    "available_s",
    "busy_s",
    "wrap_up_s",
    "paused_s",
    "unknown_s",
];

fn times_json(t: &StatusTimes, with_unknown: bool) -> Map<String, Value> {
    let s = seconds(t);
    let mut m = Map::new();
    for (name, v) in STATUS_NAMES.iter().zip(s.statuses) {
        if with_unknown || *name != "unknown_s" {
            m.insert((*name).into(), json!(v));
        }
    }
    let reasons: Map<String, Value> = s.reasons.into_iter().map(|(r, v)| (r, json!(v))).collect();
    m.insert("paused_by_reason_s".into(), Value::Object(reasons));
    m
}

fn agent_figures_json(f: &AgentFigures) -> Value {
    let mut m = times_json(&f.times, true);
    m.insert("interactions_handled".into(), json!(f.interactions_handled));
    m.insert("sign_ins_ms".into(), json!(f.sign_ins_ms));
    m.insert("sign_outs_ms".into(), json!(f.sign_outs_ms));
    m.insert("pause_overruns".into(), json!(f.pause_overruns));
    m.insert("pause_overrun_s".into(), json!(round_s(f.pause_overrun_ms)));
    Value::Object(m)
}

fn channel_figures_json(f: &ChannelFigures) -> Value {
    let mut m = times_json(&f.times, false);
    m.insert("interactions_handled".into(), json!(f.interactions_handled));
    Value::Object(m)
}

fn head_json(r: &Report) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("from_ms".into(), json!(r.from_ms));
    m.insert("until_ms".into(), json!(r.until_ms));
    m.insert("time_zone".into(), json!(r.time_zone));
    m.insert("bucket".into(), json!(r.bucket.as_str()));
    m.insert("complete".into(), json!(r.complete()));
    let gaps: Vec<Value> = r
        .gaps
        .iter()
        .map(|g| {
            json!({"id": g.id, "at_ms": g.at_ms, "after_version": g.after_version,
                   "before_version": g.before_version})
        })
        .collect();
    m.insert("gaps".into(), json!(gaps));
    let buckets: Vec<Value> = r
        .buckets
        .iter()
        .map(|b| json!({"start": b.start, "from_ms": b.from_ms, "until_ms": b.until_ms}))
        .collect();
    m.insert("buckets".into(), json!(buckets));
    m
}

/// The agents report: the head (window, buckets, gaps) and `agents`.
pub fn agents_json(r: &Report) -> Value {
    let mut m = head_json(r);
    let agents: Vec<Value> = r
        .agents
        .iter()
        .map(|a| {
            json!({
                "agent_id": a.agent_id,
                "total": agent_figures_json(&a.total),
                "buckets": a.buckets.iter().map(agent_figures_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    m.insert("agents".into(), json!(agents));
    Value::Object(m)
}

/// The channels report: the head (window, buckets, gaps) and `channels`.
pub fn channels_json(r: &Report) -> Value {
    let mut m = head_json(r);
    let channels: Vec<Value> = r
        .channels
        .iter()
        .map(|c| {
            json!({
                "kind": c.channel.kind.as_str(),
                "id": c.channel.id,
                "total": channel_figures_json(&c.total),
                "buckets": c.buckets.iter().map(channel_figures_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    m.insert("channels".into(), json!(channels));
    Value::Object(m)
}

/// One CSV field, quoted per RFC 4180 when it holds a comma, a quote, CR or LF.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn row(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
    out.push_str(&line.join(","));
    // RFC 4180: records end with CRLF.
    out.push_str("\r\n");
}

/// An instant as RFC 3339 on the report's local clock.
fn local(ms: u64, tz: &jiff::tz::TimeZone) -> String {
    match i64::try_from(ms)
        .ok()
        .and_then(|m| Timestamp::from_millisecond(m).ok())
    {
        Some(ts) => ts.display_with_offset(tz.to_offset(ts)).to_string(),
        None => ms.to_string(),
    }
}

fn zone(r: &Report) -> jiff::tz::TimeZone {
    // The name was resolved when the report was computed; UTC only if a
    // caller built a Report by hand with a name the database lacks.
    super::buckets::time_zone(&r.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
}

fn reasons<'a, I: Iterator<Item = &'a StatusTimes>>(times: I) -> Vec<String> {
    let set: BTreeSet<&String> = times.flat_map(|t| t.paused_by_reason_ms.keys()).collect();
    set.into_iter().cloned().collect()
}

/// Where a row sits: `bucket` (with its bucket) or `total` (the window).
fn place(r: &Report, bucket: Option<usize>, tz: &jiff::tz::TimeZone) -> Vec<String> {
    match bucket.and_then(|i| r.buckets.get(i)) {
        Some(b) => vec![
            "bucket".into(),
            b.start.clone(),
            local(b.from_ms, tz),
            local(b.until_ms, tz),
        ],
        None => vec![
            "total".into(),
            String::new(),
            local(r.from_ms, tz),
            local(r.until_ms, tz),
        ],
    }
}

fn time_fields(t: &StatusTimes, reasons: &[String], with_unknown: bool) -> Vec<String> {
    let s = seconds(t);
    let mut out: Vec<String> = s
        .statuses
        .iter()
        .take(if with_unknown { 6 } else { 5 })
        .map(|v| v.to_string())
        .collect();
    for reason in reasons {
        let v = s
            .reasons
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, v)| *v);
        out.push(v.to_string());
    }
    out
}

fn header(first: &[&str], reasons: &[String], with_unknown: bool, last: &[&str]) -> Vec<String> {
    let mut h: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    h.extend(
        STATUS_NAMES
            .iter()
            .take(if with_unknown { 6 } else { 5 })
            .map(|s| s.to_string()),
    );
    h.extend(reasons.iter().map(|r| format!("paused_s:{r}")));
    h.extend(last.iter().map(|s| s.to_string()));
    h
}

/// The agents report as CSV: a header, then per agent one row per bucket
/// and a `total` row.
pub fn agents_csv(r: &Report) -> String {
    let tz = zone(r);
    let reasons = reasons(r.agents.iter().map(|a| &a.total.times));
    let mut out = String::new();
    row(
        &mut out,
        &header(
            &["row", "agent_id", "bucket_start", "from", "until"],
            &reasons,
            true,
            &[
                "interactions_handled",
                "sign_ins",
                "sign_outs",
                "pause_overruns",
                "pause_overrun_s",
            ],
        ),
    );
    let times = |list: &[u64]| {
        list.iter()
            .map(|t| local(*t, &tz))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for a in &r.agents {
        let rows = a
            .buckets
            .iter()
            .enumerate()
            .map(|(i, f)| (Some(i), f))
            .chain(std::iter::once((None, &a.total)));
        for (bucket, f) in rows {
            let mut fields = place(r, bucket, &tz);
            fields.insert(1, a.agent_id.clone());
            fields.extend(time_fields(&f.times, &reasons, true));
            fields.push(f.interactions_handled.to_string());
            fields.push(times(&f.sign_ins_ms));
            fields.push(times(&f.sign_outs_ms));
            fields.push(f.pause_overruns.to_string());
            fields.push(round_s(f.pause_overrun_ms).to_string());
            row(&mut out, &fields);
        }
    }
    out
}

/// The channels report as CSV: a header, then per channel one row per
/// bucket and a `total` row.
pub fn channels_csv(r: &Report) -> String {
    let tz = zone(r);
    let reasons = reasons(r.channels.iter().map(|c| &c.total.times));
    let mut out = String::new();
    row(
        &mut out,
        &header(
            &["row", "kind", "id", "bucket_start", "from", "until"],
            &reasons,
            false,
            &["interactions_handled"],
        ),
    );
    for c in &r.channels {
        let ChannelRef { kind, id } = &c.channel;
        let rows = c
            .buckets
            .iter()
            .enumerate()
            .map(|(i, f)| (Some(i), f))
            .chain(std::iter::once((None, &c.total)));
        for (bucket, f) in rows {
            let mut fields = place(r, bucket, &tz);
            fields.insert(1, kind.as_str().to_string());
            fields.insert(2, id.clone());
            fields.extend(time_fields(&f.times, &reasons, false));
            fields.push(f.interactions_handled.to_string());
            row(&mut out, &fields);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_per_rfc_4180() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field(""), "");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\r"), "\"cr\r\"");
        assert_eq!(field("Διάλειμμα"), "Διάλειμμα");
        let mut out = String::new();
        row(&mut out, &["a".into(), "b,c".into(), String::new()]);
        assert_eq!(out, "a,\"b,c\",\r\n");
    }

    #[test]
    fn seconds_add_up_to_the_rounded_whole() {
        assert_eq!(apportion(&[1_500, 1_500, 1_000], 4), [2, 1, 1]);
        assert_eq!(apportion(&[400, 400, 400], 1), [1, 0, 0]);
        assert_eq!(apportion(&[0, 0], 0), [0, 0]);
        assert_eq!(apportion(&[2_000, 3_000], 5), [2, 3]);
        // Out-of-range targets are clamped, never a panic.
        assert_eq!(apportion(&[999], 9), [1]);
        assert_eq!(apportion(&[5_000], 0), [5]);
        assert_eq!(round_s(499), 0);
        assert_eq!(round_s(500), 1);
        assert_eq!(round_s(u64::MAX), u64::MAX / 1000 + 1);
        for split in 0..=3_600_000u64 / 7_919 {
            let ms = [split * 7_919, 3_600_000 - split * 7_919, 0];
            assert_eq!(apportion(&ms, 3_600).iter().sum::<u64>(), 3_600);
        }
    }
}
