//! The reports over HTTP (`GET /api/v1/reports/{agents,channels}`,
//! docs/REPORTS.md): a scripted sequence of real changes made by real
//! WebSocket clients, then the report, whose figures are checked against
//! what the test knows exactly — the interactions it ended, the pause
//! reasons it used, the `at_ms` of the sign-in and sign-out events the
//! stream carries, and (day buckets, so timing noise cannot move them)
//! each bucket's length. JSON and CSV agree; a scoped supervisor sees only
//! their channels and agents; bad queries are 400, an agent 403, no token
//! 401; a window older than the stream keeps says so; the event bound is
//! 413. `tests/cluster_reports_http.rs` runs the same on three nodes and a
//! Redis.

pub mod common;

use common::http::request as http;
use common::{token, TestHub, DEADLINE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET answered as text: status, lowercase header lines, body.
async fn get_text(hub: &TestHub, path: &str, bearer: Option<&str>) -> (u16, Vec<String>, String) {
    let mut s = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}\r\n",
        hub.addr
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8(out).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = head
        .lines()
        .skip(1)
        .map(|l| match l.split_once(':') {
            Some((n, v)) => format!("{}: {}", n.to_ascii_lowercase(), v.trim()),
            None => l.to_string(),
        })
        .collect();
    // The answers here are small enough to come in one chunked piece or
    // with a Content-Length; de-chunk if needed.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, headers, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

async fn report(hub: &TestHub, user: &str, path: &str) -> (u16, Value) {
    http(hub.addr, "GET", path, Some(&token("acme", user)), "", None).await
}

/// Every event the stream keeps (admin), oldest first.
async fn all_events(hub: &TestHub) -> Vec<Value> {
    let mut out = Vec::new();
    let mut query = "?limit=1000".to_string();
    loop {
        let (status, body) = report(hub, "ad1", &format!("/api/v1/events{query}")).await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return out;
        }
        out.extend(events);
        query = format!("?limit=1000&after={}", body["next"].as_str().expect("next"));
    }
}

fn ch(kind: &str, id: &str) -> Value {
    json!({"kind": kind, "id": id})
}

/// The UTC date of a Unix ms instant, `YYYY-MM-DD`.
fn utc_date(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const STATUSES: [&str; 6] = [
    "offline_s",
    "available_s",
    "busy_s",
    "wrap_up_s",
    "paused_s",
    "unknown_s",
];

fn agent<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["agent_id"] == id))
        .unwrap_or_else(|| panic!("agent {id} in {body}"))
}

fn ids(body: &Value, list: &str, key: &str) -> Vec<String> {
    body[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| match key {
                    "channel" => format!("{}:{}", x["kind"].as_str().unwrap_or(""), x["id"]),
                    _ => x[key].as_str().unwrap_or("").to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The scripted sequence: a1 (sales, web chat) and a2 (sales, billing)
/// sign in, connect, pause with reasons, handle interactions, wrap up; a1
/// is signed out by a supervisor. Returns the window's query.
async fn script(hub: &TestHub) -> String {
    let start = now_ms();
    let mut a1 = hub.agent("a1", "phone").await;
    let mut a2 = hub.agent("a2", "phone").await;
    a1.ok(json!({"type": "connect", "channel": ch("queue", "sales")}))
        .await;
    a1.ok(json!({"type": "connect", "channel": ch("chat", "web")}))
        .await;
    a2.ok(json!({"type": "connect", "channel": ch("queue", "sales")}))
        .await;
    a2.ok(json!({"type": "connect", "channel": ch("queue", "billing")}))
        .await;
    a1.ok(json!({"type": "set_status", "status": "paused", "reason": "break"}))
        .await;
    a1.ok(json!({"type": "set_status", "status": "available"}))
        .await;
    a1.ok(json!({"type": "interaction_start", "interaction_id": "k1", "channel": ch("queue", "sales")}))
        .await;
    a1.ok(json!({"type": "interaction_end", "interaction_id": "k1"}))
        .await;
    a1.ok(json!({"type": "end_wrap_up"})).await;
    a1.ok(
        json!({"type": "interaction_start", "interaction_id": "w1", "channel": ch("chat", "web")}),
    )
    .await;
    a1.ok(json!({"type": "interaction_end", "interaction_id": "w1"}))
        .await;
    a2.ok(json!({"type": "interaction_start", "interaction_id": "b1", "channel": ch("queue", "billing")}))
        .await;
    a2.ok(json!({"type": "interaction_end", "interaction_id": "b1"}))
        .await;
    a2.ok(json!({"type": "end_wrap_up"})).await;
    a2.ok(json!({"type": "set_status", "status": "paused", "reason": "lunch"}))
        .await;
    let mut s1 = hub.staff("s1", "supervisor").await;
    s1.ok(json!({"type": "command", "action": "sign_out", "agent_id": "a1"}))
        .await;
    // Day buckets over two UTC days: the script may cross midnight, and a
    // day bucket's figures do not depend on the test's timing.
    let from = utc_date(start);
    let to = utc_date(start + 2 * 86_400_000);
    format!("from={from}&to={to}&bucket=1d&tz=UTC")
}

/// The instants of `a`'s presence going offline → online (`up`) or back.
fn presence_changes(events: &[Value], a: &str, up: bool) -> Vec<u64> {
    let (before, after) = if up {
        ("offline", "online")
    } else {
        ("online", "offline")
    };
    events
        .iter()
        .filter(|e| {
            e["type"] == "agent"
                && e["agent_id"] == a
                && e["previous"]["presence"] == before
                && e["current"]["presence"] == after
        })
        .map(|e| common::u64_of(&e["at_ms"]))
        .collect()
}

/// Paused time of `a` with `reason`, in ms, from the events.
fn paused_ms(events: &[Value], a: &str, end_ms: u64) -> u64 {
    let mut total = 0;
    let mut since = None;
    for e in events
        .iter()
        .filter(|e| e["type"] == "agent" && e["agent_id"] == a)
    {
        let t = common::u64_of(&e["at_ms"]);
        let paused = e["current"]["status"] == "paused";
        match (since, paused) {
            (None, true) => since = Some(t),
            (Some(s), false) => {
                total += t - s;
                since = None;
            }
            _ => {}
        }
    }
    total + since.map_or(0, |s| end_ms - s)
}

#[tokio::test]
async fn a_scripted_sequence_reports_what_happened_in_json_and_csv_for_admins_and_supervisors() {
    let hub = TestHub::start_with(|c| c.events_heartbeat_s = 0).await;
    let window = script(&hub).await;
    let events = all_events(&hub).await;

    let (status, body) = report(&hub, "ad1", &format!("/api/v1/reports/agents?{window}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["complete"], true, "nothing trimmed: {body}");
    assert_eq!(body["buckets"].as_array().map(Vec::len), Some(2));
    let day_s = |i: usize| {
        (common::u64_of(&body["buckets"][i]["until_ms"])
            - common::u64_of(&body["buckets"][i]["from_ms"]))
            / 1000
    };
    assert_eq!((day_s(0), day_s(1)), (86_400, 86_400));
    for id in ["a1", "a2"] {
        let a = agent(&body, id);
        for (i, b) in a["buckets"].as_array().expect("buckets").iter().enumerate() {
            let sum: u64 = STATUSES.iter().map(|s| common::u64_of(&b[s])).sum();
            assert_eq!(sum, day_s(i), "{id} bucket {i} adds up: {b}");
        }
        assert_eq!(
            a["total"]["sign_ins_ms"],
            json!(presence_changes(&events, id, true)),
            "{id}"
        );
        assert_eq!(
            a["total"]["sign_outs_ms"],
            json!(presence_changes(&events, id, false)),
            "{id}"
        );
    }
    let a1 = agent(&body, "a1");
    let a2 = agent(&body, "a2");
    assert_eq!(
        presence_changes(&events, "a1", false).len(),
        1,
        "a1 signed out"
    );
    assert_eq!(a1["total"]["interactions_handled"], 2);
    assert_eq!(a2["total"]["interactions_handled"], 1);
    // The break lasted a few ms: 0 s once rounded, so "break" or nothing.
    assert!(
        a1["total"]["paused_by_reason_s"]
            .as_object()
            .is_some_and(|o| o.keys().all(|k| k == "break")),
        "{a1}"
    );
    // The same events given to the pure module directly: the handler read
    // the whole window, in order, and scoped nothing away.
    let parsed: Vec<presence_hub::reports::ReportEvent> = events
        .iter()
        .map(|e| serde_json::from_value(e.clone()).expect("an event the module reads"))
        .collect();
    let query = presence_hub::reports::query::parse_query(&window).expect("the window");
    let direct = presence_hub::reports::compute(
        &presence_hub::reports::ReportInput {
            events: parsed,
            records_at_end: Vec::new(),
        },
        &query.request(None),
    )
    .expect("a report");
    let direct = presence_hub::reports::render::agents_json(&direct);
    for id in ["a1", "a2"] {
        assert_eq!(
            agent(&body, id),
            agent(&direct, id),
            "{id} as computed from the stream"
        );
    }
    // a2 is still on lunch: paused from its pause to the window's end.
    let until = common::u64_of(&body["until_ms"]);
    for (a, id) in [(a1, "a1"), (a2, "a2")] {
        let expected = paused_ms(&events, id, until);
        let got = common::u64_of(&a["total"]["paused_s"]) * 1000;
        // Whole seconds, apportioned (docs/REPORTS.md): within one second.
        assert!(
            got.abs_diff(expected) < 1000,
            "{id}: paused {got} ms, the events say {expected}"
        );
    }
    assert!(a2["total"]["paused_by_reason_s"]["lunch"].is_u64());
    assert_eq!(a1["total"]["pause_overruns"], 0);

    // Channels: the interactions where they ended.
    let (status, chans) = report(&hub, "ad1", &format!("/api/v1/reports/channels?{window}")).await;
    assert_eq!(status, 200, "{chans}");
    let handled = |kind: &str, id: &str| {
        chans["channels"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["kind"] == kind && c["id"] == id))
            .map(|c| c["total"]["interactions_handled"].clone())
            .unwrap_or_else(|| panic!("{kind} {id} in {chans}"))
    };
    assert_eq!(handled("queue", "sales"), 1);
    assert_eq!(handled("chat", "web"), 1);
    assert_eq!(handled("queue", "billing"), 1);

    // CSV: the same totals, a header row, a file name.
    let (status, headers, csv) = get_text(
        &hub,
        &format!("/api/v1/reports/agents?{window}&format=csv"),
        Some(&token("acme", "ad1")),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert!(
        headers
            .iter()
            .any(|h| h.starts_with("content-type: text/csv; charset=utf-8")),
        "{headers:?}"
    );
    assert!(
        headers.iter().any(|h| h
            .starts_with("content-disposition: attachment; filename=\"agents_")
            && h.ends_with(".csv\"")),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"report-complete: true".to_string()),
        "{headers:?}"
    );
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    assert_eq!(&header[..3], ["row", "agent_id", "bucket_start"]);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("column {name} in {header:?}"))
    };
    let mut totals = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells[0] != "total" {
            continue;
        }
        totals += 1;
        let a = agent(&body, cells[1]);
        for name in STATUSES.iter().chain(&["interactions_handled"]) {
            assert_eq!(
                cells[col(name)],
                a["total"][name].to_string(),
                "{}: {name} in CSV and JSON",
                cells[1]
            );
        }
        for (reason, s) in a["total"]["paused_by_reason_s"]
            .as_object()
            .expect("reasons")
        {
            assert_eq!(cells[col(&format!("paused_s:{reason}"))], s.to_string());
        }
    }
    assert_eq!(totals, body["agents"].as_array().map_or(0, Vec::len));

    // An unscoped supervisor sees the tenant; s2 (billing) only billing
    // and the agent assigned to it.
    let (status, all) = report(&hub, "s1", &format!("/api/v1/reports/agents?{window}")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["agents"], body["agents"]);
    let (status, scoped) = report(&hub, "s2", &format!("/api/v1/reports/agents?{window}")).await;
    assert_eq!(status, 200, "{scoped}");
    assert_eq!(ids(&scoped, "agents", "agent_id"), ["a2"]);
    assert_eq!(agent(&scoped, "a2"), a2);
    let (status, scoped) = report(&hub, "s2", &format!("/api/v1/reports/channels?{window}")).await;
    assert_eq!(status, 200, "{scoped}");
    assert_eq!(ids(&scoped, "channels", "channel"), ["queue:\"billing\""]);
    let (status, _, csv) = get_text(
        &hub,
        &format!("/api/v1/reports/agents?{window}&format=csv"),
        Some(&token("acme", "s2")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!csv.contains(",a1,"), "{csv}");
    assert!(csv.contains(",a2,"), "{csv}");
}

#[tokio::test]
async fn bad_queries_are_400_naming_the_parameter_and_who_may_ask_is_checked() {
    let hub = TestHub::start_with(|c| c.events_heartbeat_s = 0).await;
    let good = "from=2026-03-29&to=2026-03-30";
    for (query, names) in [
        ("to=2026-03-30", "from"),
        ("from=2026-03-29", "to"),
        ("from=yesterday&to=2026-03-30", "from"),
        ("from=2026-03-29&to=2026-13-30", "to"),
        (&format!("{good}&bucket=2h") as &str, "bucket"),
        (&format!("{good}&tz=Mars/Olympus") as &str, "Mars/Olympus"),
        (&format!("{good}&format=xml") as &str, "format"),
        (&format!("{good}&bukcet=1d") as &str, "bukcet"),
        (&format!("{good}&from=2026-03-28") as &str, "from"),
        ("from=2026-03-29&to=2026-03-29", "from"),
        ("from=2026-01-01&to=2026-03-01&bucket=15m", "buckets"),
        ("from=%FF&to=2026-03-30", "encoded"),
    ] {
        for path in ["agents", "channels"] {
            let (status, body) =
                report(&hub, "ad1", &format!("/api/v1/reports/{path}?{query}")).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert_eq!(body["error"]["code"], "bad_request", "{query}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(
                message.contains(names),
                "{query}: {message:?} names {names}"
            );
            assert_eq!(body.as_object().map(|o| o.len()), Some(1), "nothing else");
        }
    }
    // Who: an agent is 403, no token 401, another tenant's token sees
    // its own tenant only (globex's supervisor: no acme agent).
    let path = format!("/api/v1/reports/agents?{good}");
    let (status, body) = report(&hub, "a1", &path).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let (status, body) = http(hub.addr, "GET", &path, None, "", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (status, body) = http(hub.addr, "GET", &path, Some("not-a-token"), "", None).await;
    assert_eq!(status, 401, "{body}");
    let _a1 = hub.agent("a1", "phone").await;
    let (status, body) = http(
        hub.addr,
        "GET",
        &path,
        Some(&token("globex", "gs")),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("\"a1\""), "{body}");
}

#[tokio::test]
async fn a_window_the_stream_no_longer_keeps_is_incomplete_and_the_event_bound_is_413() {
    // A stream of 4 events: the script's first ones are trimmed.
    let hub = TestHub::start_with(|c| {
        c.events_heartbeat_s = 0;
        c.events_max_len = 4;
        c.reports_max_events = 3;
    })
    .await;
    let window = script(&hub).await;
    let (status, body) = report(&hub, "ad1", &format!("/api/v1/reports/agents?{window}")).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("--reports-max-events")));

    // Redis trims by whole stream nodes (`MAXLEN ~`, about 100 entries),
    // so a cluster keeps all of this short script: nothing to see there.
    if common::CLUSTER {
        return;
    }
    let hub2 = TestHub::start_with(|c| {
        c.events_heartbeat_s = 0;
        c.events_max_len = 4;
    })
    .await;
    let window = script(&hub2).await;
    let (status, body) = report(&hub2, "ad1", &format!("/api/v1/reports/agents?{window}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["complete"], false, "{body}");
    assert_eq!(body["gaps"][0]["id"], "trimmed", "{body}");
    // What the kept events cannot vouch for is unknown, not offline.
    assert!(
        common::u64_of(&agent(&body, "a1")["total"]["unknown_s"]) > 0,
        "{body}"
    );
    let (status, headers, _) = get_text(
        &hub2,
        &format!("/api/v1/reports/channels?{window}&format=csv"),
        Some(&token("acme", "ad1")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers.contains(&"report-complete: false".to_string()),
        "{headers:?}"
    );
}
