//! Soak and abuse with real sockets against the real binary: thousands of
//! malformed, oversize, flooding, forged-token and silent connections beside
//! well-behaved ones. Every bad connection gets its documented close code,
//! the good clients see every delta, no record changes wrongly, and the
//! hub's memory returns to its baseline.

mod common;

use common::process::Proc;
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const BAD_CONNECTIONS: usize = 2400;
const CONCURRENCY: usize = 100;

/// One abusive connection of kind `k`; returns the close code it got and
/// the one it should have got.
async fn abuse(url: String, k: usize) -> (u16, u16) {
    let mut c = Client::connect(&url).await;
    let expected = match k % 6 {
        0 => {
            c.send_raw("{\"type\": \"hello\", \"token\": ").await; // malformed
            4000
        }
        1 => {
            c.send_raw(&"x".repeat(8 * 1024)).await; // oversize
            1009
        }
        2 => {
            let forged = presence_hub::auth::mint("forged", "acme", "s1", 600).expect("mint");
            c.send(json!({"type": "hello", "token": forged, "role": "supervisor"}))
                .await;
            4003
        }
        3 => 4001, // says nothing
        4 => {
            c.send_message(Message::binary(vec![0u8; 64])).await;
            4000
        }
        _ => {
            // Authenticated, then floods: rate limited, then closed.
            c.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
                .await;
            c.burst((0..600).map(|_| "{\"type\": \"heartbeat\"}".to_string()))
                .await;
            4008
        }
    };
    match tokio::time::timeout(DEADLINE - Duration::from_millis(500), c.closed()).await {
        Ok(closed) => (closed.code, expected),
        Err(_) => {
            println!("kind {} got no close", k % 6);
            (0, expected)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_beside_good_clients_changes_nothing_and_memory_returns() {
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--rate-limit-per-sec",
            "200",
            "--max-frame-bytes",
            "4096",
            "--auth-timeout-ms",
            "300",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let url = node.ws_url();
    let mut sup = Client::connect(&url).await;
    sup.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    sup.recv_type("welcome").await;
    let before = sup.subscribe(json!({"all": true})).await;
    let mut agents = Vec::new();
    for id in ["a1", "a2"] {
        let mut a = Client::connect(&url).await;
        a.send(json!({"type": "hello", "token": token("acme", id), "role": "agent", "device": {"id": "d"}})).await;
        a.recv_type("state").await;
        agents.push(a);
    }
    // Warm up (allocator, runtime), then take the baseline.
    let warm: Vec<_> = (0..CONCURRENCY)
        .map(|k| tokio::spawn(abuse(url.clone(), k)))
        .collect();
    for w in warm {
        w.await.expect("warm-up");
    }
    let baseline = node.rss_bytes();

    // The abuse, while the good agents keep changing.
    let abusers = {
        let url = url.clone();
        tokio::spawn(async move {
            let mut wrong = Vec::new();
            let mut k = 0;
            while k < BAD_CONNECTIONS {
                let wave: Vec<_> = (k..(k + CONCURRENCY).min(BAD_CONNECTIONS))
                    .map(|i| tokio::spawn(abuse(url.clone(), i)))
                    .collect();
                k += wave.len();
                for w in wave {
                    let (got, expected) = w.await.expect("abuser");
                    if got != expected {
                        wrong.push((got, expected));
                    }
                }
            }
            wrong
        })
    };
    let mut changed = BTreeSet::new();
    for round in 0..40 {
        for a in agents.iter_mut() {
            let body = if round % 2 == 0 {
                json!({"type": "set_status", "status": "paused", "reason": demo_reason(round)})
            } else {
                json!({"type": "set_status", "status": "available"})
            };
            let r = a.ok(body).await;
            changed.insert(r["agent"]["version"].as_u64().expect("version"));
        }
        // The supervisor keeps reading meanwhile (it must see every delta).
        let mut seen = BTreeSet::new();
        while !changed.iter().all(|v| seen.contains(v)) {
            let d = sup.recv_type("agent").await;
            seen.insert(d["agent"]["version"].as_u64().expect("version"));
        }
        changed.clear();
    }
    let wrong = abusers.await.expect("abusers");
    assert!(
        wrong.is_empty(),
        "{} bad connections got another close code, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let peak = node.rss_bytes();

    // No record changed wrongly: a3 (untouched) is exactly as before; the
    // agents that worked are where their own last change left them.
    let after = sup.subscribe(json!({"all": true})).await;
    assert_eq!(in_snapshot(&after, "a3"), in_snapshot(&before, "a3"));
    for id in ["a1", "a2"] {
        let r = in_snapshot(&after, id).expect("agent");
        assert_eq!(
            (r["status"].as_str(), r["presence"].as_str()),
            (Some("available"), Some("online"))
        );
        assert_eq!(r["changed_by"], json!({"id": id, "role": "agent"}));
    }
    for a in agents.iter_mut() {
        a.ok(json!({"type": "heartbeat"})).await;
    }
    // Memory returns to its baseline once the abusers are gone.
    let limit = baseline + 4 * 1024 * 1024;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut now = node.rss_bytes();
    while now > limit && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = node.rss_bytes();
    }
    println!(
        "hub RSS: baseline {} KiB, after {BAD_CONNECTIONS} bad connections {} KiB, settled {} KiB",
        baseline / 1024,
        peak / 1024,
        now / 1024
    );
    assert!(
        now <= limit,
        "RSS {now} B did not return near the baseline {baseline} B"
    );
}
