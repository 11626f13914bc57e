//! Prometheus metrics (DESIGN.md §6), through the `metrics` facade and its
//! Prometheus exporter; `/metrics` renders them.
//!
//! Handles are registered once and kept here, so hot paths (fan-out,
//! writes) increment an atomic instead of looking a series up by name.
//! The recorder is process-wide: one node per process in production; nodes
//! started inside one test process share it.

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Kinds of frames the hub sends, as the `type` label of messages out.
/// In the order of [`Kind`](crate::hub::outbox::Kind).
pub const OUT_KINDS: [&str; 14] = [
    "welcome",
    "state",
    "reply",
    "error",
    "snapshot",
    "agent",
    "agent_removed",
    "settings",
    "command",
    "draining",
    "channel",
    "channel_removed",
    "signed_out",
    "queue_stats",
];

pub struct Metrics {
    handle: PrometheusHandle,
    connections: [Gauge; 3],
    pub deltas_published: Counter,
    pub deltas_delivered: Counter,
    pub deltas_coalesced: Counter,
    pub command_seconds: Histogram,
    pub backplane_seconds: Histogram,
    /// One change written and fsynced to `--data-dir` (`crate::store`).
    pub store_write_seconds: Histogram,
    pub backplane_reconnects: Counter,
    pub resyncs: Counter,
    /// Deltas the replica never received, found by comparing seqs
    /// (`hub::cluster::seq_watch_loop`).
    pub deltas_lost: Counter,
    /// Agent deltas under a seq the replica had counted as applied that it
    /// never saw: the store handed the seq out again after it fell back
    /// (`hub::tenant`, `Tenant::forked`).
    pub deltas_forked: Counter,
    /// Pub/sub messages dropped because the queue to the task that applies
    /// them was full (`backplane::redis`, `--redis-push-queue`).
    pub redis_pushes_dropped: Counter,
    /// Integration WebSockets open (`api::socket`).
    pub api_ws_connections: Gauge,
    /// Tenants this node holds a replica of and follows the deltas of
    /// (`Hub::tenant` attaches, `Hub::close_tenant` detaches).
    pub tenants_attached: Gauge,
    /// The runtime's worker threads (`--worker-threads`), set at start.
    pub worker_threads: Gauge,
    pub panics: Counter,
    pub rejected_connections: Counter,
    /// Connections holding a turn, and waiting for one (`server::handshakes`).
    pub handshakes: Gauge,
    pub handshakes_waiting: Gauge,
    // Operations (deploy/prometheus-alerts.yml alerts on these).
    pub ready: Gauge,
    pub outbox_overflows: Counter,
    pub command_timeouts: Counter,
    /// Changes whose answer was lost, by what settling them found.
    settled: [Counter; 3],
    /// Identity provider key set fetches (`auth::jwks`): ok, error.
    jwks_fetches: [Counter; 2],
    /// Keys from the identity provider held now.
    pub jwks_keys: Gauge,
    /// Heartbeat events appended (`crate::events::heartbeat`).
    pub events_heartbeats: Counter,
    /// Events handed to readers of `GET /api/v1/events`.
    pub events_read: Counter,
    messages_out: [Counter; OUT_KINDS.len()],
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics (installs the recorder on first use).
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0,
                ],
            )
            .and_then(|b| b.install_recorder())
            .unwrap_or_else(|_| {
                // Another recorder is installed (a library user's): render an
                // empty one rather than fail.
                PrometheusBuilder::new().build_recorder().handle()
            });
        describe();
        Metrics {
            handle,
            connections: ["agent", "supervisor", "admin"]
                .map(|role| metrics::gauge!("presence_hub_connections", "role" => role)),
            deltas_published: metrics::counter!("presence_hub_deltas_published_total"),
            deltas_delivered: metrics::counter!("presence_hub_deltas_delivered_total"),
            deltas_coalesced: metrics::counter!("presence_hub_deltas_coalesced_total"),
            command_seconds: metrics::histogram!("presence_hub_command_seconds"),
            backplane_seconds: metrics::histogram!("presence_hub_backplane_roundtrip_seconds"),
            store_write_seconds: metrics::histogram!("presence_hub_store_write_seconds"),
            backplane_reconnects: metrics::counter!("presence_hub_backplane_reconnects_total"),
            resyncs: metrics::counter!("presence_hub_resyncs_total"),
            deltas_lost: metrics::counter!("presence_hub_deltas_lost_total"),
            deltas_forked: metrics::counter!("presence_hub_deltas_forked_total"),
            redis_pushes_dropped: metrics::counter!("presence_hub_redis_pushes_dropped_total"),
            api_ws_connections: metrics::gauge!("presence_hub_api_ws_connections"),
            tenants_attached: metrics::gauge!("presence_hub_tenants_attached"),
            worker_threads: metrics::gauge!("presence_hub_worker_threads"),
            panics: metrics::counter!("presence_hub_session_panics_total"),
            rejected_connections: metrics::counter!("presence_hub_connections_rejected_total"),
            handshakes: metrics::gauge!("presence_hub_handshakes"),
            handshakes_waiting: metrics::gauge!("presence_hub_handshakes_waiting"),
            ready: metrics::gauge!("presence_hub_ready"),
            outbox_overflows: metrics::counter!("presence_hub_outbox_overflows_total"),
            command_timeouts: metrics::counter!("presence_hub_command_timeouts_total"),
            settled: ["applied", "not_applied", "unknown"].map(|outcome| {
                metrics::counter!("presence_hub_changes_settled_total", "outcome" => outcome)
            }),
            jwks_fetches: ["ok", "error"].map(|outcome| {
                metrics::counter!("presence_hub_jwks_fetches_total", "outcome" => outcome)
            }),
            jwks_keys: metrics::gauge!("presence_hub_jwks_keys"),
            events_heartbeats: metrics::counter!("presence_hub_events_heartbeats_total"),
            events_read: metrics::counter!("presence_hub_events_read_total"),
            messages_out: OUT_KINDS
                .map(|kind| metrics::counter!("presence_hub_messages_out_total", "type" => kind)),
        }
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "presence_hub_connections",
        "Open WebSocket sessions, by role"
    );
    describe_gauge!(
        "presence_hub_worker_threads",
        "Threads running the connections (--worker-threads)"
    );
    describe_counter!(
        "presence_hub_messages_in_total",
        "Messages received, by type"
    );
    describe_counter!("presence_hub_messages_out_total", "Messages sent, by type");
    describe_counter!(
        "presence_hub_deltas_published_total",
        "Changes this node committed"
    );
    describe_counter!(
        "presence_hub_deltas_delivered_total",
        "Agent deltas and states written to clients"
    );
    describe_counter!(
        "presence_hub_deltas_coalesced_total",
        "Deltas replaced by a newer one before a slow client read them"
    );
    describe_histogram!(
        "presence_hub_command_seconds",
        Unit::Seconds,
        "Supervisor command latency, request to reply"
    );
    describe_histogram!(
        "presence_hub_backplane_roundtrip_seconds",
        Unit::Seconds,
        "One commit to the backplane"
    );
    describe_histogram!(
        "presence_hub_store_write_seconds",
        Unit::Seconds,
        "One change written and fsynced to the data directory (--data-dir)"
    );
    describe_counter!(
        "presence_hub_backplane_reconnects_total",
        "Reconnections to the store"
    );
    describe_counter!(
        "presence_hub_resyncs_total",
        "Tenant replicas reloaded after a gap or reconnection"
    );
    describe_counter!(
        "presence_hub_redis_pushes_dropped_total",
        "Deltas from Redis dropped because more were waiting to be applied than \
         --redis-push-queue allows (the replica then catches up from the store)"
    );
    describe_counter!(
        "presence_hub_deltas_lost_total",
        "Times this node found the store past its replica with no delta on the way \
         (a delta pub/sub lost, caught by the seq check; each is followed by a resync)"
    );
    describe_counter!(
        "presence_hub_deltas_forked_total",
        "Agent and directory deltas under a seq this node had already counted as applied but of a change \
         it never saw: the store fell back (a failover, an empty restart) and handed the seq \
         out again (a resync follows, one for several)"
    );
    describe_gauge!(
        "presence_hub_api_ws_connections",
        "Integration WebSockets open on this node (/api/v1/ws)"
    );
    describe_gauge!(
        "presence_hub_tenants_attached",
        "Tenants this node holds a replica of and follows (attached on first use, \
         detached once unused for the reconnect grace plus the node TTL)"
    );
    describe_counter!(
        "presence_hub_session_panics_total",
        "Session tasks that panicked (caught; the session ended)"
    );
    describe_counter!(
        "presence_hub_connections_rejected_total",
        "Upgrades refused at the handshake (limit or draining)"
    );
    describe_gauge!(
        "presence_hub_handshakes",
        "Connections holding a turn to have their first request read and answered \
         (at most --max-handshakes per listener; a scrape's first request on its connection holds one)"
    );
    describe_gauge!(
        "presence_hub_handshakes_waiting",
        "Connections that sent a request and wait for a turn to have it read \
         (at most --handshake-turn-ms; --max-handshakes turns per listener)"
    );
    describe_gauge!(
        "presence_hub_ready",
        "1 when /readyz answers 200 (store reachable, not draining), else 0"
    );
    describe_counter!(
        "presence_hub_outbox_overflows_total",
        "Connections closed (4008) for not reading their replies"
    );
    describe_counter!(
        "presence_hub_command_timeouts_total",
        "Commands whose agent device did not answer in time"
    );
    describe_counter!(
        "presence_hub_changes_settled_total",
        "Changes whose answer from the store was lost, by what the node then found out \
         (applied, not_applied, unknown: the store could not be asked)"
    );
    describe_counter!(
        "presence_hub_jwks_fetches_total",
        "Fetches of the identity provider's key set (--oidc-issuer, --jwt-jwks-url), by outcome"
    );
    describe_counter!(
        "presence_hub_directory_changes_total",
        "Directory changes this node committed (admin WebSocket, HTTP API), by event"
    );
    describe_counter!(
        "presence_hub_events_heartbeats_total",
        "Heartbeat events this node appended to the event stream (--events-heartbeat-s)"
    );
    describe_counter!(
        "presence_hub_events_read_total",
        "Events this node handed to readers of GET /api/v1/events"
    );
    describe_gauge!(
        "presence_hub_jwks_keys",
        "Signing keys from the identity provider held now (0 with none configured or fetched)"
    );
}

impl Metrics {
    pub fn render(&self) -> String {
        self.handle.render()
    }

    pub fn changes_settled(&self, outcome: &crate::backplane::settle::Settled) {
        use crate::backplane::settle::Settled;
        let i = match outcome {
            Settled::Applied(_) => 0,
            Settled::NotApplied => 1,
            Settled::Unknown => 2,
        };
        self.settled[i].increment(1);
    }

    /// Counts one directory change this node committed, by event
    /// (`user_created`, `channel_deleted`, …).
    pub fn directory_changes(&self, event: &str) {
        let event = [
            "user_created",
            "user_updated",
            "user_deleted",
            "channel_created",
            "channel_updated",
            "channel_deleted",
        ]
        .into_iter()
        .find(|e| *e == event)
        .unwrap_or("other");
        metrics::counter!("presence_hub_directory_changes_total", "event" => event).increment(1);
    }

    /// Counts one fetch of the identity provider's key set.
    pub fn jwks_fetched(&self, ok: bool) {
        self.jwks_fetches[usize::from(!ok)].increment(1);
    }

    pub fn connection(&self, role: crate::domain::Role) -> &Gauge {
        &self.connections[role as usize]
    }

    /// Counts one received message of a known type (or `invalid`).
    pub fn message_in(&self, kind: &str) {
        let kind = crate::protocol::REQUEST_TYPES
            .iter()
            .copied()
            .find(|k| *k == kind)
            .unwrap_or("invalid");
        metrics::counter!("presence_hub_messages_in_total", "type" => kind).increment(1);
    }

    /// Counts sent messages; `counts` is indexed like [`OUT_KINDS`].
    pub fn messages_out(&self, counts: &[u64; OUT_KINDS.len()]) {
        for (counter, &n) in self.messages_out.iter().zip(counts) {
            if n > 0 {
                counter.increment(n);
            }
        }
    }
}
