//! `tests/events.rs` again, against three nodes sharing a Redis that the
//! harness starts (see `tests/common/mod.rs`: the crate name decides).

#[path = "events.rs"]
mod suite;

mod common {
    pub use super::suite::common::*;
}

use common::{TestHub, DEADLINE};
use redis::AsyncCommands;
use serde_json::{json, Value};

/// A consumer group reads the Redis Stream itself, as protocol/EVENTS.md
/// shows: every change once, in version order, acknowledged as it goes.
#[tokio::test]
async fn a_consumer_group_reads_the_redis_stream_directly() {
    let hub = TestHub::start_with(|c| c.events_heartbeat_s = 0).await;
    let url = hub.redis.as_ref().expect("the cluster's Redis").url();
    let client = redis::Client::open(url).expect("a Redis URL");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let key = "hub:{acme}:events";
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg("wfm")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut redis)
        .await
        .expect("XGROUP CREATE");
    let mut a1 = hub.agent("a1", "phone").await;
    for reason in ["break", "lunch"] {
        a1.ok(json!({"type": "set_status", "status": "paused", "reason": reason}))
            .await;
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "read {seen:#?}");
        let reply: redis::streams::StreamReadReply = redis
            .xread_options(
                &[key],
                &[">"],
                &redis::streams::StreamReadOptions::default()
                    .group("wfm", "reader-1")
                    .count(10)
                    .block(1000),
            )
            .await
            .expect("XREADGROUP");
        for stream in reply.keys {
            for entry in stream.ids {
                let json: String = entry.get("e").expect("an `e` field");
                seen.push(serde_json::from_str(&json).expect("JSON"));
                let _: u64 = redis.xack(key, "wfm", &[&entry.id]).await.expect("XACK");
            }
        }
    }
    let versions: Vec<u64> = seen.iter().map(|e| common::u64_of(&e["version"])).collect();
    assert_eq!(
        versions,
        vec![versions[0], versions[0] + 1, versions[0] + 2]
    );
    assert_eq!(seen[2]["current"]["pause_reason"], "lunch");
    assert_eq!(seen[2]["previous"]["pause_reason"], "break");
    // Everything read was acknowledged: nothing pending for the group.
    let pending: redis::streams::StreamPendingReply =
        redis.xpending(key, "wfm").await.expect("XPENDING");
    assert_eq!(pending.count(), 0);
}
