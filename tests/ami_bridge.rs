//! The Asterisk AMI bridge (examples/ami-bridge/, issue 26 "A reference
//! bridge"), tested without Asterisk: a fake AMI server on a real TCP port
//! speaks AMI's banner, checks the Login action and plays the recorded
//! transcript (examples/ami-bridge/transcript.ami) in odd-sized writes;
//! the bridge sends what it maps to a real hub (`TestHub`) where agents
//! are signed in over real WebSockets. The bridge's code is included here
//! by `#[path]` and called directly (no example build, no subprocess).
//! Its queue statistics pushes (`PUT /api/v1/channels/{kind}/{id}/stats`)
//! must all be taken and reach the supervisor's wallboard.

mod common;

#[allow(dead_code)]
#[path = "../examples/ami-bridge/lib.rs"]
mod ami_bridge;

use ami_bridge::ami::{Message, Parser, MAX_LINE};
use ami_bridge::bridge::{Bridge, Call, Mapping, Note};
use ami_bridge::hub::{Hub, Outcome, Retry};
use common::http::request as http;
use common::{token, TestHub, DEADLINE};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TRANSCRIPT: &str = include_str!("../examples/ami-bridge/transcript.ami");
const MEMBERS: &str = include_str!("../examples/ami-bridge/members.conf");
/// The transcript's morning starts at 2026-12-07 08:00 UTC.
const T0: &str = "1796630400";

fn parse_all(bytes: &[u8]) -> (Vec<Message>, u64) {
    let mut p = Parser::new();
    let mut got = p.push(bytes);
    got.extend(p.finish());
    (got, p.malformed)
}

fn events(messages: &[Message]) -> Vec<&str> {
    messages.iter().filter_map(Message::event).collect()
}

// ---------------------------------------------------------------- parser

#[test]
fn the_transcript_parses_the_same_whatever_the_reads() {
    let (whole, malformed) = parse_all(TRANSCRIPT.as_bytes());
    assert_eq!(malformed, 0);
    assert_eq!(whole.len(), 30, "{:?}", events(&whole));
    assert_eq!(whole[2].event(), Some("QueueCallerJoin"));
    assert_eq!(whole[2].get("Queue"), Some("q_sales"));
    assert_eq!(whole[2].get("AccountCode"), Some(""), "an empty value");
    let bytes = TRANSCRIPT.as_bytes();
    for size in [1, 2, 3, 7, 64, 97, 1000] {
        let mut p = Parser::new();
        let mut got = Vec::new();
        for chunk in bytes.chunks(size) {
            got.extend(p.push(chunk));
        }
        assert!(p.finish().is_none(), "nothing left over");
        assert_eq!(got, whole, "reads of {size} bytes");
    }
}

#[test]
fn junk_and_unknown_events_cost_a_count_not_a_panic() {
    let wire = b"Asterisk Call Manager/9.0.0\r\n\
        this is not a field\r\n\
        : no key\r\n\
        Event: SomethingNew\r\nWeird Key: x\r\nValue: has: colons: in it\r\n\r\n\
        \r\n\r\n\
        Event: Caf\xc3\xa9\xff\r\nName: \xfe\xfe\r\n\r\n\
        Event: NoBlankLineAtTheEnd\nUnix: newlines too";
    let (got, malformed) = parse_all(wire);
    assert_eq!(malformed, 3, "{got:?}");
    assert_eq!(
        events(&got),
        ["SomethingNew", "Caf\u{e9}\u{fffd}", "NoBlankLineAtTheEnd"]
    );
    assert_eq!(got[0].get("value"), Some("has: colons: in it"));
    assert_eq!(got[2].get("Unix"), Some("newlines too"));

    // The bridge maps an unknown event, and one missing its fields, to nothing.
    let mut bridge = Bridge::new(Mapping::default(), 20, true);
    for m in &got {
        let (calls, note) = bridge.handle(m, 0.0);
        assert!(calls.is_empty(), "{calls:?}");
        assert!(matches!(note, Some(Note::Ignored(_))), "{note:?}");
    }
    // Absurd numbers: counted, never overflowed.
    let join = |uid: &str, count: Option<&str>| {
        let mut m = Message::from_pairs(&[
            ("Event", "QueueCallerJoin"),
            ("Queue", "q"),
            ("Uniqueid", uid),
            ("Timestamp", "1e300"),
        ]);
        if let Some(c) = count {
            m.fields.push(("Count".into(), c.into()));
        }
        m
    };
    bridge.handle(&join("u.1", Some("18446744073709551615")), 0.0);
    let (calls, _) = bridge.handle(&join("u.2", None), 0.0);
    let [Call::Stats { body, .. }] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(body["waiting"], json!(u64::MAX));
    for event in [
        "AgentConnect",
        "QueueCallerJoin",
        "QueueMemberPause",
        "Hold",
    ] {
        let m = Message::from_pairs(&[("Event", event), ("Interface", "Agent/a1")]);
        let (calls, note) = bridge.handle(&m, 0.0);
        assert!(calls.is_empty(), "{event}: {calls:?}");
        assert!(note.is_some(), "{event}");
    }
}

#[test]
fn an_endless_line_is_dropped_and_the_stream_recovers() {
    let mut p = Parser::new();
    let junk = vec![b'x'; 4096];
    for _ in 0..(3 * MAX_LINE / junk.len()) {
        assert!(p.push(&junk).is_empty());
    }
    assert_eq!(p.malformed, 1);
    let got = p.push(b"still junk\r\nEvent: After\r\n\r\n");
    assert_eq!(events(&got), ["After"]);
    // A long line that fits in one read is dropped too.
    let mut long = vec![b'k'; MAX_LINE + 10];
    long.extend_from_slice(b": v\r\nEvent: Next\r\n\r\n");
    let (got, malformed) = parse_all(&long);
    assert_eq!((events(&got), malformed), (vec!["Next"], 1));
}

// ---------------------------------------------------------------- mapping

fn bridge() -> Bridge {
    Bridge::new(Mapping::parse(MEMBERS).expect("members.conf"), 20, true)
}

#[test]
fn the_mapping_file_is_checked() {
    assert!(Mapping::parse("member PJSIP/1001").is_err());
    assert!(Mapping::parse("agent PJSIP/1001 a1").is_err());
    let m = Mapping::parse("# c\n\nmember Bob a9 # by name\nqueue q x\n").expect("parses");
    let member = |iface: &str, name: &str| {
        m.agent(&Message::from_pairs(&[
            ("Interface", iface),
            ("MemberName", name),
        ]))
    };
    assert_eq!(member("PJSIP/7", "Bob").as_deref(), Some("a9"));
    assert_eq!(member("Agent/c4", "Carl").as_deref(), Some("c4"));
    assert_eq!(member("PJSIP/7", "Carl"), None);
    assert_eq!(member("Agent/", ""), None);
    assert_eq!(
        (m.queue("q"), m.queue("other")),
        ("x".into(), "other".into())
    );
}

/// The interaction and status calls the transcript maps to, in order.
#[test]
fn the_transcript_maps_to_these_calls_and_these_statistics() {
    let (messages, _) = parse_all(TRANSCRIPT.as_bytes());
    let mut b = bridge();
    let mut calls = Vec::new();
    let mut stats = Vec::new();
    for m in &messages {
        for call in b.handle(m, 0.0).0 {
            match call {
                Call::Stats { queue, body } => stats.push((queue, body)),
                Call::Interaction { agent, body, key } => calls.push(format!(
                    "{agent} {} {} {key}",
                    body["event"].as_str().unwrap_or("?"),
                    body["channel"]["id"].as_str().unwrap_or("-")
                )),
                Call::Status { agent, body, key } => calls.push(format!(
                    "{agent} {} {} {key}",
                    body["status"].as_str().unwrap_or("?"),
                    body["reason"].as_str().unwrap_or("-")
                )),
            }
        }
    }
    let c = |n: u32| format!("{T0}.{n}");
    let expected = [
        format!("a2 offered sales ami:offered:a2:{}", c(11)),
        format!("a1 offered sales ami:offered:a1:{}", c(11)),
        format!("a1 answered sales ami:answered:a1:{}", c(11)),
        format!("a2 offered billing ami:offered:a2:{}", c(21)),
        format!("a2 answered billing ami:answered:a2:{}", c(21)),
        format!(
            "a1 held - ami:held:a1:{}:{}:1796630570.000000",
            c(11),
            c(13)
        ),
        format!("a1 ended - ami:ended:a1:{}", c(11)),
        format!("a1 wrap_up - ami:wrap_up:a1:{}", c(11)),
        format!("a1 offered sales ami:offered:a1:{}", c(41)),
        format!("a1 answered sales ami:answered:a1:{}", c(41)),
        format!("a2 ended - ami:ended:a2:{}", c(21)),
        format!("a2 paused Lunch ami:pause:a2:1:{}", 1796630810),
        format!("a2 paused Lunch ami:pause:a2:1:{}", 1796630810),
        format!("a3 paused Training ami:pause:a3:1:{}", 1796630820),
        format!("a2 available - ami:pause:a2:0:{}", 1796630810),
        format!("a2 available - ami:pause:a2:0:{}", 1796630810),
    ];
    assert_eq!(calls, expected);

    // The last push of each queue: the morning's totals.
    let last = |q: &str| {
        stats
            .iter()
            .rev()
            .find(|(queue, _)| queue == q)
            .map(|(_, b)| b.clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        last("sales"),
        json!({"waiting": 0, "longest_wait_s": 0, "offered": 3, "answered": 2,
               "abandoned": 1, "service_level": 0.333, "service_level_s": 20})
    );
    assert_eq!(
        last("billing"),
        json!({"waiting": 0, "longest_wait_s": 0, "offered": 1, "answered": 1,
               "abandoned": 0, "service_level": 0.0, "service_level_s": 20})
    );
    // Two callers waited in sales; the first gave up after 50 s: the
    // abandon's push (no Count in it: counted down by the bridge) and the
    // leave's (Asterisk's Count) both say one waits, for 40 s so far.
    let after_abandon = (
        "sales".to_string(),
        json!({"waiting": 1, "longest_wait_s": 40, "offered": 3, "answered": 1,
               "abandoned": 1, "service_level": 0.5, "service_level_s": 20}),
    );
    assert_eq!(
        stats.iter().filter(|s| **s == after_abandon).count(),
        2,
        "{stats:?}"
    );
    assert!(stats
        .iter()
        .all(|(_, b)| b["waiting"].is_u64() && b["longest_wait_s"].is_u64()));

    // --no-stats: the same calls, no stats pushes.
    let mut quiet = Bridge::new(Mapping::parse(MEMBERS).expect("members"), 20, false);
    let pushes = messages
        .iter()
        .flat_map(|m| quiet.handle(m, 0.0).0)
        .filter(|c| matches!(c, Call::Stats { .. }))
        .count();
    assert_eq!(pushes, 0);
}

#[test]
fn answered_after_exactly_the_service_level_is_within_it() {
    let mut b = bridge();
    let connect = |uid: &str, hold: &str| {
        Message::from_pairs(&[
            ("Event", "AgentConnect"),
            ("Queue", "q_sales"),
            ("Uniqueid", uid),
            ("Linkedid", uid),
            ("Interface", "PJSIP/1001"),
            ("HoldTime", hold),
        ])
    };
    b.handle(&connect("c.1", "20"), 0.0);
    let (calls, _) = b.handle(&connect("c.2", "21"), 0.0);
    let Some(Call::Stats { body, .. }) = calls.last() else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (&body["answered"], &body["service_level"]),
        (&json!(2), &json!(0.5))
    );
}

#[test]
fn the_days_counters_start_over_at_midnight_utc_and_waiting_callers_stay() {
    let mut b = bridge();
    let ev = |event: &str, ts: &str, uid: &str| {
        Message::from_pairs(&[
            ("Event", event),
            ("Timestamp", ts),
            ("Queue", "q_sales"),
            ("Uniqueid", uid),
        ])
    };
    b.handle(&ev("QueueCallerJoin", "1796687990", "x.1"), 0.0);
    b.handle(&ev("QueueCallerAbandon", "1796687995", "x.1"), 0.0);
    b.handle(&ev("QueueCallerJoin", "1796687999", "x.2"), 0.0);
    // 2026-12-08 00:00:05 UTC.
    let (calls, _) = b.handle(&ev("QueueCallerJoin", "1796688005", "x.3"), 0.0);
    let [Call::Stats { body, .. }] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (&body["offered"], &body["abandoned"], &body["waiting"]),
        (&json!(1), &json!(0), &json!(2))
    );
    assert_eq!(body["longest_wait_s"], 6, "x.2 is still waiting");
}

// ---------------------------------------------------------------- the hub client

/// A fake HTTP server that answers each request with the next of `answers`
/// (status line, extra headers); sends back what it received.
async fn fake_http(
    answers: Vec<(&'static str, &'static str)>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for (status, headers) in answers {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body its Content-Length announces.
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&got).to_string());
            let body = r#"{"error": {"code": "x", "message": "y"}}"#;
            let answer = format!(
                "HTTP/1.1 {status}\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), rx)
}

fn quick() -> Retry {
    Retry {
        attempts: 4,
        first: Duration::from_millis(1),
        max: Duration::from_millis(5),
    }
}

fn answered_call() -> Call {
    Call::Interaction {
        agent: "a1".into(),
        body: json!({"event": "answered", "interaction_id": "c1", "channel": {"kind": "queue", "id": "sales"}}),
        key: "ami:answered:a1:c1".into(),
    }
}

#[tokio::test]
async fn transient_failures_are_retried_with_the_same_key_and_refusals_are_not() {
    let (url, mut seen) = fake_http(vec![
        ("503 Service Unavailable", ""),
        ("429 Too Many Requests", "Retry-After: 0\r\n"),
        ("504 Gateway Timeout", ""),
        ("200 OK", ""),
    ])
    .await;
    let hub = Hub::new(&url, "phk_acme.t.k", quick()).expect("client");
    let outcome = tokio::time::timeout(DEADLINE, hub.send(&answered_call()))
        .await
        .expect("in time");
    assert!(matches!(outcome, Outcome::Done(200, _)), "{outcome:?}");
    for _ in 0..4 {
        let request = seen.recv().await.expect("a request");
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.starts_with("post /api/v1/agents/a1/interactions "),
            "{request}"
        );
        assert!(
            lower.contains("idempotency-key: ami:answered:a1:c1\r\n"),
            "{request}"
        );
        assert!(
            lower.contains("authorization: bearer phk_acme.t.k\r\n"),
            "{request}"
        );
    }

    // A refusal is given up at once: one request only.
    let (url, mut seen) = fake_http(vec![("409 Conflict", ""), ("200 OK", "")]).await;
    let hub = Hub::new(&url, "k", quick()).expect("client");
    let outcome = hub.send(&answered_call()).await;
    assert!(matches!(outcome, Outcome::Refused(409, _)), "{outcome:?}");
    assert!(seen.recv().await.is_some());
    assert!(seen.try_recv().is_err(), "not retried");

    // Nobody listening: connection errors, retried, then given up.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let hub = Hub::new(&url, "k", quick()).expect("client");
    let outcome = hub.send(&answered_call()).await;
    assert!(
        matches!(outcome, Outcome::GaveUp(ref e) if e.starts_with("connection")),
        "{outcome:?}"
    );

    // Still failing after every attempt.
    let (url, _seen) = fake_http(vec![("500 Internal Server Error", ""); 4]).await;
    let hub = Hub::new(&url, "k", quick()).expect("client");
    let outcome = hub.send(&answered_call()).await;
    assert!(
        matches!(outcome, Outcome::GaveUp(ref e) if e.starts_with("500")),
        "{outcome:?}"
    );
}

#[test]
fn a_key_too_long_for_the_header_is_hashed() {
    let short = ami_bridge::hub::idempotency_key("ami:x");
    assert_eq!(short, "ami:x");
    let long = ami_bridge::hub::idempotency_key(&"k".repeat(200));
    assert_eq!(long.len(), 68);
    assert_ne!(long, ami_bridge::hub::idempotency_key(&"k".repeat(201)));
}

// ---------------------------------------------------------------- end to end

/// A fake Asterisk: the AMI banner, a Login checked against
/// `user`/`secret`, then `transcript` in odd-sized writes, then close.
async fn fake_ami(user: &'static str, secret: &'static str, transcript: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        if s.write_all(b"Asterisk Call Manager/9.0.0\r\n")
            .await
            .is_err()
        {
            return;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let action = String::from_utf8_lossy(&got).to_string();
        let id = action
            .lines()
            .find_map(|l| l.strip_prefix("ActionID: "))
            .unwrap_or("")
            .to_string();
        let ok = action.starts_with("Action: Login\r\n")
            && action.contains(&format!("\r\nUsername: {user}\r\n"))
            && action.contains(&format!("\r\nSecret: {secret}\r\n"));
        let answer = if ok {
            format!(
                "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n"
            )
        } else {
            format!("Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n\r\n")
        };
        if s.write_all(answer.as_bytes()).await.is_err() || !ok {
            return;
        }
        for chunk in transcript.as_bytes().chunks(97) {
            if s.write_all(chunk).await.is_err() {
                return;
            }
        }
    });
    addr
}

async fn create_key(hub: &TestHub) -> String {
    let (status, body) = http(
        hub.node(0).addr,
        "POST",
        "/api/v1/credentials",
        Some(&token("acme", "ad1")),
        "",
        Some(&json!({"id": "asterisk", "scopes": ["interactions:write", "status:write", "queues:write", "read"]}).to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().expect("key").to_string()
}

async fn agents(hub: &TestHub, key: &str) -> Value {
    let (status, body) = http(
        hub.node(0).addr,
        "GET",
        "/api/v1/agents",
        Some(key),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["agents"].clone()
}

fn agent<'a>(agents: &'a Value, id: &str) -> &'a Value {
    agents
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id))
        .unwrap_or_else(|| panic!("agent {id} in {agents}"))
}

fn by_bridge(history: &Value) -> Vec<String> {
    history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["by"] == json!({"id": "asterisk", "role": "integration"}))
        .filter_map(|c| c["event"].as_str().map(str::to_string))
        .collect()
}

/// What the hub refused; every stats push must have been taken (200).
fn refusals(report: &ami_bridge::Report) -> Vec<(String, u16, String)> {
    for (path, status) in &report.done {
        assert!(
            !path.ends_with("/stats") || *status == 200,
            "{path} {status}"
        );
    }
    report.refused.clone()
}

#[tokio::test]
async fn the_recorded_morning_over_ami_shows_on_the_hub_and_a_replay_changes_nothing() {
    let hub = TestHub::start().await;
    let key = create_key(&hub).await;
    let (mut watcher, _) = hub.watcher("s1").await;
    let _a1 = hub.agent("a1", "phone").await;
    let _a2 = hub.agent("a2", "phone").await;
    // a3 (Asterisk's Agent/a3) is not signed in.

    let url = format!("http://{}", hub.node(0).addr);
    let client = Hub::new(&url, &key, quick()).expect("client");
    let ami = fake_ami("hub", "s3cret", TRANSCRIPT).await;
    let mut first = bridge();
    let report = tokio::time::timeout(
        DEADLINE * 4,
        ami_bridge::run_socket(&ami, "hub", "s3cret", &mut first, &client),
    )
    .await
    .expect("the transcript is played in time")
    .expect("the session");
    assert_eq!(report.events, 30);
    let membership: Vec<&Note> = report
        .notes
        .iter()
        .filter(|n| matches!(n, Note::Membership(_)))
        .collect();
    assert_eq!(
        membership,
        [
            &Note::Membership("QueueMemberAdded: Agent/a3 in q_sales".into()),
            &Note::Membership("QueueMemberRemoved: Agent/a3 in q_sales".into())
        ]
    );
    assert!(report.gave_up.is_empty(), "{:?}", report.gave_up);
    // Refused: Carla's pause (not signed in), and nothing else.
    assert_eq!(
        refusals(&report),
        [(
            "/api/v1/agents/a3/status".to_string(),
            409,
            "invalid_state".to_string()
        )]
    );
    // Every queue event pushed statistics, and the hub took each.
    let pushes = report
        .done
        .iter()
        .filter(|(p, _)| p.ends_with("/stats"))
        .count();
    assert_eq!(pushes, 12);
    // The supervisor's wallboard shows the morning's last push of each queue.
    for (queue, last) in [
        (
            "sales",
            json!({"waiting": 0, "longest_wait_s": 0, "offered": 3, "answered": 2,
                         "abandoned": 1, "service_level": 0.333, "service_level_s": 20}),
        ),
        (
            "billing",
            json!({"waiting": 0, "longest_wait_s": 0, "offered": 1, "answered": 1,
                           "abandoned": 0, "service_level": 0.0, "service_level_s": 20}),
        ),
    ] {
        let seen = watcher
            .recv_where(&format!("{queue}'s last statistics"), |v| {
                v["type"] == "queue_stats"
                    && v["channel"] == json!({"kind": "queue", "id": queue})
                    && v["stats"] == last
            })
            .await;
        assert_eq!(seen["stale"], false, "{seen}");
    }

    // Bruno's lunch, seen by the supervisor, attributed to the bridge.
    let lunch = watcher
        .agent_update("a2", |a| a["status"] == "paused")
        .await;
    assert_eq!(lunch["pause_reason"], "Lunch");
    assert_eq!(
        lunch["changed_by"],
        json!({"id": "asterisk", "role": "integration"})
    );
    watcher
        .agent_update("a2", |a| a["status"] == "available")
        .await;

    // The records: Ana on caller 41's call in sales, Bruno available after
    // his wrap-up and lunch, Carla still signed out.
    let after = agents(&hub, &key).await;
    let a1 = agent(&after, "a1");
    assert_eq!(a1["status"], "busy", "{a1}");
    let calls: Vec<(&Value, &Value)> = a1["interactions"]
        .as_array()
        .expect("interactions")
        .iter()
        .map(|i| (&i["id"], &i["channel"]))
        .collect();
    assert_eq!(
        calls,
        [(
            &json!(format!("{T0}.41")),
            &json!({"kind": "queue", "id": "sales"})
        )]
    );
    assert_eq!(
        a1["changed_by"],
        json!({"id": "asterisk", "role": "integration"})
    );
    let a2 = agent(&after, "a2");
    assert_eq!(
        (&a2["status"], &a2["interactions"]),
        (&json!("available"), &json!([])),
        "{a2}"
    );
    assert_eq!(agent(&after, "a3")["status"], "offline");

    // The history names the bridge for each change it made.
    let h1 = watcher
        .ok(json!({"type": "history", "agent_id": "a1"}))
        .await;
    assert_eq!(
        by_bridge(&h1),
        [
            "interaction_start",
            "interaction_end",
            "end_wrap_up",
            "interaction_start"
        ],
        "{h1}"
    );
    let h2 = watcher
        .ok(json!({"type": "history", "agent_id": "a2"}))
        .await;
    assert_eq!(
        by_bridge(&h2),
        ["interaction_start", "interaction_end", "pause", "unpause"],
        "{h2}"
    );

    // The same transcript again, from the file as --replay reads it, with a
    // fresh bridge: every change carries the key it had, nothing changes.
    let mut again = bridge();
    let mut file = tokio::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ami-bridge/transcript.ami"
    ))
    .await
    .expect("transcript");
    let replay = ami_bridge::run_stream(&mut file, Parser::new(), &mut again, &client)
        .await
        .expect("replayed");
    assert_eq!(replay.events, 30);
    // The one new refusal: Ana's `held` of her first call. `held` is a
    // check, not a change (the hub keeps no answer under its key): she no
    // longer holds that call, so 409, and it changed nothing either way.
    let mut expected = refusals(&report);
    expected.insert(
        0,
        (
            "/api/v1/agents/a1/interactions".to_string(),
            409,
            "invalid_state".to_string(),
        ),
    );
    assert_eq!(refusals(&replay), expected);
    assert_eq!(agents(&hub, &key).await, after, "nothing changed");
    let h1_again = watcher
        .ok(json!({"type": "history", "agent_id": "a1"}))
        .await;
    let h2_again = watcher
        .ok(json!({"type": "history", "agent_id": "a2"}))
        .await;
    assert_eq!(
        (h1_again["changes"].clone(), h2_again["changes"].clone()),
        (h1["changes"].clone(), h2["changes"].clone())
    );
}

#[tokio::test]
async fn a_refused_login_is_an_error_and_nothing_is_sent() {
    let ami = fake_ami("hub", "right", TRANSCRIPT).await;
    // Nothing listens here: any request would be a connection error.
    let client = Hub::new("http://127.0.0.1:9", "k", quick()).expect("client");
    let mut b = bridge();
    let err = ami_bridge::run_socket(&ami, "hub", "wrong", &mut b, &client)
        .await
        .expect_err("refused");
    assert!(err.contains("Authentication failed"), "{err}");
    assert!(b.queues.is_empty());
}
