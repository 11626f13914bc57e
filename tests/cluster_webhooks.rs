//! `tests/webhooks.rs` again, against three nodes sharing a Redis that the
//! harness starts (see `tests/common/mod.rs`: the crate name decides): the
//! admin on node 1, changes on nodes 0 and 2, the deliveries from whichever
//! node holds the endpoint's lease; the restart test runs the real binary
//! on Redis instead of `--data-dir`.

#[path = "webhooks.rs"]
mod suite;

mod common {
    pub use super::suite::common::*;
}

use common::TestHub;
use suite::{change, create, delivered, fast, ids, stream_after, until, Mode, Receiver};

/// A connection to the cluster's Redis.
async fn redis_of(hub: &TestHub) -> redis::aio::MultiplexedConnection {
    let url = hub.redis.as_ref().expect("the cluster's Redis").url();
    redis::Client::open(url)
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis")
}

/// The node that holds an endpoint's lease stops: another node takes the
/// lease once it runs out and goes on from the stored cursor — every event
/// once, in order, nothing lost between the two.
#[tokio::test]
async fn another_node_takes_over_when_the_delivering_node_stops() {
    let mut hub = TestHub::start_with(fast).await;
    let mut redis = redis_of(&hub).await;
    let rx = Receiver::start(Mode::Ok).await;
    let (secret, start) = create(hub.addr, "sync", &rx.url()).await;
    change(hub.node(0).addr, "t1").await;
    until("t1 delivered", || async {
        (delivered(&rx).len() >= 2).then_some(())
    })
    .await;
    let holder: String = until("the lease's holder", || {
        let mut redis = redis.clone();
        async move {
            redis::cmd("GET")
                .arg("hub:{acme}:webhook:sync:lease")
                .query_async::<Option<String>>(&mut redis)
                .await
                .ok()
                .flatten()
        }
    })
    .await;
    let i: usize = holder
        .strip_prefix("node-")
        .and_then(|n| n.parse().ok())
        .expect("a node's id");
    // The holder renews its lease every turn: sampled over one and a half
    // lease periods (1 s), it never runs low and never changes hands.
    let mut lowest = i64::MAX;
    for _ in 0..30 {
        let pttl: i64 = redis::cmd("PTTL")
            .arg("hub:{acme}:webhook:sync:lease")
            .query_async(&mut redis)
            .await
            .expect("PTTL");
        lowest = lowest.min(pttl);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        lowest >= 600,
        "the lease ran down to {lowest} ms: not renewed"
    );
    let still: Option<String> = redis::cmd("GET")
        .arg("hub:{acme}:webhook:sync:lease")
        .query_async(&mut redis)
        .await
        .expect("GET");
    assert_eq!(still.as_deref(), Some(holder.as_str()));
    rx.set(Mode::Fail);
    let other = hub.node(i + 1).addr;
    change(other, "t2").await;
    until("t2 refused once", || async {
        rx.got()
            .iter()
            .any(|g| g.events().iter().any(|e| e["agent_id"] == "t2"))
            .then_some(())
    })
    .await;
    hub.nodes[i].shutdown().await;
    rx.set(Mode::Ok);
    change(other, "t3").await;
    let expected = ids(&stream_after(other, start.as_deref()).await);
    assert_eq!(expected.len(), 6);
    until("every event, from another node", || async {
        (delivered(&rx).len() >= expected.len()).then_some(())
    })
    .await;
    assert_eq!(delivered(&rx), expected);
    assert!(rx.got().iter().all(|g| g.signed_by(&secret)));
    let now_held: Option<String> = redis::cmd("GET")
        .arg("hub:{acme}:webhook:sync:lease")
        .query_async(&mut redis)
        .await
        .expect("GET");
    assert!(
        now_held.is_some_and(|h| h != holder),
        "another node holds it"
    );
}

/// A node looks for new endpoints with one read of the store's generation
/// (`Backplane::webhooks_generation`), not by reading every tenant's
/// endpoints at every poll: over a second of polls every 50 ms by three
/// nodes, 40 tenants without endpoints cost at most one full scan per node
/// (where reading each tenant at each poll is 40 × 20 × 3 = 2 400 reads).
/// An endpoint added then moves the generation, and is delivered.
#[tokio::test]
async fn nodes_read_the_tenants_endpoints_only_when_one_was_added() {
    const TENANTS: usize = 40;
    // The test directory's (acme, where the endpoint goes), and 39 more.
    let mut file: serde_json::Value =
        serde_json::from_str(common::DIRECTORY).expect("the test directory");
    let list = file["tenants"].as_array_mut().expect("tenants");
    for i in list.len()..TENANTS {
        list.push(
            serde_json::json!({"id": format!("t{i:02}"), "name": format!("Tenant {i}"),
            "channels": [], "users": [{"id": "ad", "name": "Ada Admin", "roles": ["admin"]}]}),
        );
    }
    let file = file.to_string();
    let hub = TestHub::start_in(fast, || {
        presence_hub::directory::Directory::parse(&file).expect("the generated directory")
    })
    .await;
    let mut redis = redis_of(&hub).await;
    let hmget = |stats: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_hmget:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // The nodes' first polls scan every tenant; past them, a window.
    until("the first full scans", || {
        let mut redis = redis.clone();
        async move {
            let stats: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut redis)
                .await
                .ok()?;
            (hmget(&stats) >= (3 * TENANTS) as u64).then_some(())
        }
    })
    .await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut redis)
        .await
        .expect("RESETSTAT");
    // A measurement window, not a wait for something.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await
        .expect("INFO");
    let reads = hmget(&stats);
    assert!(
        reads <= (3 * TENANTS) as u64,
        "{reads} reads of webhook documents in a second of polls with no endpoint added"
    );
    let generation = |mut redis: redis::aio::MultiplexedConnection| async move {
        redis::cmd("GET")
            .arg("hub:webhooks:generation")
            .query_async::<Option<u64>>(&mut redis)
            .await
            .expect("GET")
            .unwrap_or(0)
    };
    let before = generation(redis.clone()).await;
    let rx = Receiver::start(Mode::Ok).await;
    create(hub.addr, "late", &rx.url()).await;
    // What makes every node's next poll read the tenants (else they would
    // find the endpoint only at their next full scan, 60 polls later).
    assert_eq!(
        generation(redis.clone()).await,
        before + 1,
        "the generation did not move"
    );
    change(hub.node(0).addr, "t1").await;
    until("t1 delivered to the endpoint added last", || async {
        (!delivered(&rx).is_empty()).then_some(())
    })
    .await;
}

/// A node that cannot open an endpoint's sealed secret (it has no
/// `--webhook-secrets-key`, or another) sends nothing and steps aside: it
/// lets the endpoint's lease run out, and a node that can sign takes it
/// and delivers (docs/WEBHOOKS.md, "Secrets at rest"). Real binaries on one
/// Redis, since the two nodes' flags differ.
#[tokio::test]
async fn a_node_that_cannot_open_a_secret_leaves_the_endpoint_to_one_that_can() {
    use base64::Engine;
    let redis = common::redis::RedisServer::start();
    let dir = suite::scratch_dir("aside");
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let mut keyed = suite::binary_args(&dir, Some(&redis));
    keyed.extend(["--webhook-secrets-key".to_string(), key]);
    let keyed: Vec<&str> = keyed.iter().map(String::as_str).collect();
    let plain = suite::binary_args(&dir, Some(&redis));
    let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
    let rx = Receiver::start(Mode::Ok).await;
    // A node with the key creates the endpoint (its secret sealed) and
    // delivers.
    let mut a = common::process::Proc::start(&keyed, &[]).await;
    let (secret, _) = create(&a.addr, "crm", &rx.url()).await;
    change(&a.addr, "k1").await;
    until("k1 delivered", || async {
        (delivered(&rx).len() >= 2).then_some(())
    })
    .await;
    a.kill().await;
    // Alone, a node without the key takes the lease and cannot sign.
    let b = common::process::Proc::start(&plain, &[]).await;
    change(&b.addr, "k2").await;
    until("the keyless node fails to sign", || async {
        let w = suite::webhook(&b.addr, "crm").await;
        w["delivery"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("--webhook-secrets-key"))
            .then_some(())
    })
    .await;
    // A node with the key joins: the keyless one steps aside, it delivers.
    let _a = common::process::Proc::start(&keyed, &[]).await;
    until("k2 delivered by the node with the key", || async {
        (delivered(&rx).len() >= 4).then_some(())
    })
    .await;
    assert!(
        rx.got()
            .iter()
            .all(|g| g.answered != 200 || g.signed_by(&secret)),
        "a delivery not signed with the endpoint's secret"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An endpoint whose delivery state is lost (here deleted by hand; in life
/// a create or delete racing another, or failing between its two writes)
/// starts again at the stream's end, as a new endpoint does: it is never
/// sent the events kept from before — neither those from before it
/// existed nor those it already got.
#[tokio::test]
async fn an_endpoint_that_lost_its_delivery_state_starts_at_the_streams_end() {
    let hub = TestHub::start_with(fast).await;
    let mut redis = redis_of(&hub).await;
    let rx = Receiver::start(Mode::Ok).await;
    change(hub.node(0).addr, "before").await;
    let (_, start) = create(hub.addr, "erp", &rx.url()).await;
    change(hub.node(1).addr, "u1").await;
    let first = ids(&stream_after(hub.addr, start.as_deref()).await);
    assert_eq!(first.len(), 2, "u1's two events");
    until("u1 delivered", || async {
        (delivered(&rx) == first).then_some(())
    })
    .await;
    let _: i64 = redis::cmd("HDEL")
        .arg("hub:{acme}:webhooks")
        .arg("state:erp")
        .query_async(&mut redis)
        .await
        .expect("HDEL");
    until("a delivery state put back", || {
        let mut redis = redis.clone();
        async move {
            redis::cmd("HEXISTS")
                .arg("hub:{acme}:webhooks")
                .arg("state:erp")
                .query_async::<bool>(&mut redis)
                .await
                .ok()
                .filter(|b| *b)
        }
    })
    .await;
    let end = stream_after(hub.addr, None).await;
    change(hub.node(2).addr, "u2").await;
    let later: Vec<String> = ids(&stream_after(hub.addr, None).await)
        .into_iter()
        .skip(end.len())
        .collect();
    assert_eq!(later.len(), 2, "u2's two events");
    until("u2 delivered", || async {
        (delivered(&rx).len() >= 4).then_some(())
    })
    .await;
    let expected: Vec<String> = first.into_iter().chain(later).collect();
    assert_eq!(
        delivered(&rx),
        expected,
        "events from before the endpoint, or sent again"
    );
    assert_eq!(
        rx.got().iter().filter(|g| g.answered == 200).count(),
        rx.got()
            .iter()
            .filter(|g| g.answered == 200)
            .map(|g| g.ids())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        "a batch sent twice"
    );
}
