//! Command line and environment: every flag of DESIGN.md §6, each also readable
//! from `PRESENCE_HUB_<NAME>`. Timing flags exist so tests and benchmarks can
//! run the real code paths fast; nothing waits on a constant it cannot set.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "presence-hub",
    version,
    about = "Realtime WebSocket presence hub for contact centers",
    after_help = "Design: docs/DESIGN.md. Wire protocol: protocol/PROTOCOL.md. \
                  Deployment files (HAProxy, nginx, compose, systemd, Grafana, alerts): deploy/."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint a development token (HS256 with the configured secret).
    Token(TokenArgs),
    /// Exit 0 when the node at --listen answers GET <path> with 200 (for
    /// container health checks: no curl needed in the image).
    Healthcheck(HealthcheckArgs),
    /// Export the directory of a running hub as a directory file, or import
    /// one into it, over its HTTP API with an admin's token (docs/DIRECTORY.md).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Read a running hub's agent event stream over its HTTP API with an
    /// admin's token (protocol/EVENTS.md).
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the token's tenant's events, one JSON object per line, and
    /// keep printing new ones as they come.
    Tail {
        #[command(flatten)]
        hub: HubArgs,
        /// Start after this event id (default: the oldest kept).
        #[arg(long, conflicts_with = "from_now")]
        after: Option<String>,
        /// Print only events that come after the newest one now.
        #[arg(long)]
        from_now: bool,
        /// Exit after printing this many events.
        #[arg(long)]
        max_events: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Print the token's tenant as a directory file (users, channels and
    /// assignments; settings are not included).
    Export(HubArgs),
    /// Put a directory file's channels and users of the token's tenant into
    /// the hub; unchanged entries are left alone.
    Import {
        #[command(flatten)]
        hub: HubArgs,
        /// The directory file (format: docs/DIRECTORY.md).
        file: PathBuf,
        /// Also delete the users and channels the file does not name.
        #[arg(long)]
        prune: bool,
    },
}

/// Which hub, and as whom.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// The node's base URL.
    #[arg(
        long,
        env = "PRESENCE_HUB_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// An admin's token for the tenant.
    #[arg(long, env = "PRESENCE_HUB_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Path to probe: /healthz (process up) or /readyz (ready for traffic).
    #[arg(long, default_value = "/healthz")]
    pub path: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The hub's HS256 secret.
    #[arg(
        long = "jwt-secret",
        env = "PRESENCE_HUB_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub user: String,
    /// Lifetime of the token in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl_s: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// The node's configuration.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address to listen on for HTTP and WebSocket.
    #[arg(long, env = "PRESENCE_HUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Threads that run the connections (the runtime's workers) [default:
    /// the CPUs this process may use, a cgroup's CPU quota included]. Lower
    /// it when the node shares the machine with other busy processes:
    /// threads beyond the cores it really gets only wait for them.
    #[arg(long, env = "PRESENCE_HUB_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    /// Directory JSON file (format: docs/DIRECTORY.md); the built-in demo directory when absent.
    #[arg(long, env = "PRESENCE_HUB_DIRECTORY")]
    pub directory: Option<PathBuf>,
    /// HS256 secret for tokens. In-memory mode generates and prints one when unset.
    #[arg(long, env = "PRESENCE_HUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key (RSA or EC) to verify RS256/ES256 tokens instead of HS256.
    #[arg(long, env = "PRESENCE_HUB_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// Redis URL: switches to the Redis backplane (cluster mode).
    #[arg(long, env = "PRESENCE_HUB_REDIS_URL")]
    pub redis_url: Option<String>,
    /// `--redis-url` names Redis Cluster seed nodes (comma-separated); deltas
    /// use sharded pub/sub (SSUBSCRIBE/SPUBLISH).
    #[arg(long, env = "PRESENCE_HUB_REDIS_CLUSTER")]
    pub redis_cluster: bool,
    /// Longest wait for one Redis command or connection attempt.
    #[arg(long, env = "PRESENCE_HUB_REDIS_TIMEOUT_MS", default_value_t = 1_000)]
    pub redis_timeout_ms: u64,
    /// This node's id (default: random).
    #[arg(long, env = "PRESENCE_HUB_NODE_ID")]
    pub node_id: Option<String>,
    /// How often agent clients are told to send a heartbeat.
    #[arg(
        long,
        env = "PRESENCE_HUB_HEARTBEAT_INTERVAL_MS",
        default_value_t = 10_000
    )]
    pub heartbeat_interval_ms: u64,
    /// A device with no message for this long is inactive.
    #[arg(long, env = "PRESENCE_HUB_PRESENCE_TTL_MS", default_value_t = 30_000)]
    pub presence_ttl_ms: u64,
    /// An abruptly dropped device stays active this long, awaiting a reconnect.
    #[arg(
        long,
        env = "PRESENCE_HUB_RECONNECT_GRACE_MS",
        default_value_t = 10_000
    )]
    pub reconnect_grace_ms: u64,
    /// Time allowed for the hello message.
    #[arg(long, env = "PRESENCE_HUB_AUTH_TIMEOUT_MS", default_value_t = 5_000)]
    pub auth_timeout_ms: u64,
    /// How long a command waits for the agent's device (monitor).
    #[arg(long, env = "PRESENCE_HUB_COMMAND_TIMEOUT_MS", default_value_t = 5_000)]
    pub command_timeout_ms: u64,
    /// Node lease TTL (cluster mode).
    #[arg(long, env = "PRESENCE_HUB_NODE_TTL_MS", default_value_t = 5_000)]
    pub node_ttl_ms: u64,
    /// Longest a graceful shutdown may take.
    #[arg(long, env = "PRESENCE_HUB_DRAIN_TIMEOUT_MS", default_value_t = 10_000)]
    pub drain_timeout_ms: u64,
    /// Largest accepted WebSocket message; larger ones close the connection with 1009.
    #[arg(long, env = "PRESENCE_HUB_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// HTTP API requests (`/api/v1`) in flight at once on this node; more
    /// are answered 429 `rate_limited` at once.
    #[arg(long, env = "PRESENCE_HUB_API_MAX_IN_FLIGHT", default_value_t = 32)]
    pub api_max_in_flight: usize,
    /// Largest HTTP API request body; larger ones get 413 `too_large`.
    #[arg(long, env = "PRESENCE_HUB_API_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub api_max_body_bytes: usize,
    /// Requests a second one service credential of the integration API
    /// may make on this node (a token bucket per credential and node);
    /// more get 429 `rate_limited` with `Retry-After`.
    #[arg(
        long,
        env = "PRESENCE_HUB_API_RATE_PER_CREDENTIAL",
        default_value_t = 50
    )]
    pub api_rate_per_credential: u32,
    /// Requests a service credential may make at once beyond its rate
    /// (the bucket's size).
    #[arg(
        long,
        env = "PRESENCE_HUB_API_BURST_PER_CREDENTIAL",
        default_value_t = 100
    )]
    pub api_burst_per_credential: u32,
    /// Integration WebSockets (`/api/v1/ws`) open at once on this node;
    /// more are refused at the upgrade with 503 `unavailable`.
    #[arg(
        long,
        env = "PRESENCE_HUB_API_WS_MAX_CONNECTIONS",
        default_value_t = 64
    )]
    pub api_ws_max_connections: usize,
    /// An integration WebSocket from which nothing (not even a pong) came
    /// for this long is closed; the node pings every third of it.
    #[arg(long, env = "PRESENCE_HUB_API_WS_IDLE_S", default_value_t = 60)]
    pub api_ws_idle_s: u64,
    /// Frames a second one integration WebSocket may send (requests, each
    /// fragment of one, pings, pongs; not its close), in bursts of one
    /// second's worth: a request over it, or with a fragment over it, is
    /// answered 429 `rate_limited` and dropped; more refusals than that
    /// within a second close the connection with 4008. Requests are also
    /// held to `--api-rate-per-credential`.
    #[arg(
        long,
        env = "PRESENCE_HUB_API_WS_RATE_LIMIT_PER_SEC",
        default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub api_ws_rate_limit_per_sec: u32,
    /// Service credentials a tenant may hold; creating one more is refused
    /// with 409 `invalid_state`.
    #[arg(long, env = "PRESENCE_HUB_API_MAX_CREDENTIALS", default_value_t = 100)]
    pub api_max_credentials: usize,
    /// Concurrent WebSocket connections; more are refused with HTTP 503.
    #[arg(long, env = "PRESENCE_HUB_MAX_CONNECTIONS", default_value_t = 200_000)]
    pub max_connections: usize,
    /// Messages per second one connection may send (burst: one second's worth).
    #[arg(long, env = "PRESENCE_HUB_RATE_LIMIT_PER_SEC", default_value_t = 50)]
    pub rate_limit_per_sec: u32,
    /// Non-coalescable frames (replies, snapshots, commands) a connection may
    /// have waiting before it is closed with 4008 for not reading.
    #[arg(long, env = "PRESENCE_HUB_MAX_OUTBOX_FRAMES", default_value_t = 1024)]
    pub max_outbox_frames: usize,
    /// Changes kept in each tenant's history.
    #[arg(long, env = "PRESENCE_HUB_HISTORY_CAPACITY", default_value_t = 10_000)]
    pub history_capacity: usize,
    /// Events kept per tenant in the agent event stream (protocol/EVENTS.md):
    /// the Redis Stream `hub:{t}:events` on a cluster, the node's memory
    /// (and `--data-dir`) on a single node. 0: no event stream.
    #[arg(long, env = "PRESENCE_HUB_EVENTS_MAX_LEN", default_value_t = 100_000)]
    pub events_max_len: usize,
    /// Events older than this many seconds are dropped from the stream
    /// (0: kept until `--events-max-len`).
    #[arg(long, env = "PRESENCE_HUB_EVENTS_MAX_AGE_S", default_value_t = 172_800)]
    pub events_max_age_s: u64,
    /// Seconds between two `heartbeat` events of a signed-in agent (0: none).
    #[arg(long, env = "PRESENCE_HUB_EVENTS_HEARTBEAT_S", default_value_t = 60)]
    pub events_heartbeat_s: u64,
    /// Longest a `GET /api/v1/events?wait_ms=` request waits for an event,
    /// in ms (a longer `wait_ms` is cut to this).
    #[arg(
        long,
        env = "PRESENCE_HUB_EVENTS_MAX_WAIT_MS",
        default_value_t = 30_000
    )]
    pub events_max_wait_ms: u64,
    /// `GET /api/v1/events?wait_ms=` requests waiting at once on this node;
    /// more are refused with 429.
    #[arg(long, env = "PRESENCE_HUB_EVENTS_MAX_WAITING", default_value_t = 256)]
    pub events_max_waiting: usize,
    /// Webhook endpoints an admin may set per tenant (docs/WEBHOOKS.md).
    #[arg(long, env = "PRESENCE_HUB_WEBHOOK_MAX_ENDPOINTS", default_value_t = 10)]
    pub webhook_max_endpoints: usize,
    /// Accept `http://` webhook URLs to any host (without it: https, or
    /// http to a loopback address only).
    #[arg(long, env = "PRESENCE_HUB_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,
    /// Keys that seal webhook secrets at rest (docs/WEBHOOKS.md, "Secrets
    /// at rest"): base64 of 32 bytes each, comma-separated; the first seals
    /// new secrets, every one opens. Unset: secrets are stored as they are.
    #[arg(long, env = "PRESENCE_HUB_WEBHOOK_SECRETS_KEY", hide_env_values = true)]
    pub webhook_secrets_key: Option<String>,
    /// Deliver webhooks to private addresses too (RFC 1918, link-local and
    /// cloud metadata, unique-local IPv6, carrier-grade NAT); without it
    /// only public and loopback addresses are reached.
    #[arg(long, env = "PRESENCE_HUB_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Most events in one webhook request.
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_BATCH_MAX_EVENTS",
        default_value_t = 100
    )]
    pub webhook_batch_max_events: usize,
    /// Most bytes of events in one webhook request (an event larger than
    /// this goes alone).
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_BATCH_MAX_BYTES",
        default_value_t = 262_144
    )]
    pub webhook_batch_max_bytes: usize,
    /// A webhook request (connect, send, answer) that takes longer fails.
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub webhook_timeout_ms: u64,
    /// Most bytes of a receiver's answer read (the rest is ignored).
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_MAX_RESPONSE_BYTES",
        default_value_t = 4096
    )]
    pub webhook_max_response_bytes: usize,
    /// First retry delay of a failed webhook request, in ms (doubling,
    /// with full jitter, up to `--webhook-retry-max-ms`).
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_RETRY_BASE_MS",
        default_value_t = 1_000
    )]
    pub webhook_retry_base_ms: u64,
    /// Longest delay between two attempts of a webhook request, in ms.
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_RETRY_MAX_MS",
        default_value_t = 300_000
    )]
    pub webhook_retry_max_ms: u64,
    /// A webhook batch still failing this many seconds after its first
    /// failure is dead-lettered and delivery moves on.
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_DEAD_LETTER_AFTER_S",
        default_value_t = 86_400
    )]
    pub webhook_dead_letter_after_s: u64,
    /// Dead letters kept per webhook endpoint (the oldest go first).
    #[arg(
        long,
        env = "PRESENCE_HUB_WEBHOOK_DEAD_LETTERS_MAX",
        default_value_t = 100
    )]
    pub webhook_dead_letters_max: usize,
    /// How often a node looks for webhook endpoints and new events, in ms.
    #[arg(long, env = "PRESENCE_HUB_WEBHOOK_POLL_MS", default_value_t = 1_000)]
    pub webhook_poll_ms: u64,
    /// The lease a node takes to deliver one endpoint (cluster mode), in
    /// ms: another node takes over this long after the holder died.
    #[arg(long, env = "PRESENCE_HUB_WEBHOOK_LEASE_MS", default_value_t = 10_000)]
    pub webhook_lease_ms: u64,
    /// Events one report (`GET /api/v1/reports/...`) may read from the
    /// stream (from its window's start to now); a report that would read
    /// more is refused with 413 `too_large` (docs/REPORTS.md).
    #[arg(
        long,
        env = "PRESENCE_HUB_REPORTS_MAX_EVENTS",
        default_value_t = 200_000
    )]
    pub reports_max_events: usize,
    /// In-memory mode: keep records, settings, directory changes, history
    /// and idempotency keys in this directory (created if missing), written
    /// and fsynced before each change is acknowledged, and start from it
    /// again after a restart. Without it nothing is written.
    #[arg(long, env = "PRESENCE_HUB_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Devices remembered per agent (inactive ones beyond are forgotten).
    #[arg(long, env = "PRESENCE_HUB_MAX_DEVICES_PER_AGENT", default_value_t = 8)]
    pub max_devices_per_agent: usize,
    /// Run simulated demo agents (default: on with the built-in directory
    /// and the in-memory backplane).
    #[arg(long, env = "PRESENCE_HUB_DEMO", conflicts_with = "no_demo")]
    pub demo: bool,
    /// Never run the demo agents.
    #[arg(long, env = "PRESENCE_HUB_NO_DEMO")]
    pub no_demo: bool,
    /// Log output format.
    #[arg(long, env = "PRESENCE_HUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    // ---- contact-center depth (DESIGN.md §9)
    /// Shortest interval between two `channel` messages (counters) to one
    /// connection; a channel's message is sent only when it changed.
    #[arg(long, env = "PRESENCE_HUB_CHANNEL_UPDATE_MS", default_value_t = 1_000)]
    pub channel_update_ms: u64,
    /// Queue statistics not pushed again for this long are shown stale
    /// (PROTOCOL.md §10.7).
    #[arg(long, env = "PRESENCE_HUB_QUEUE_STATS_STALE_S", default_value_t = 30)]
    pub queue_stats_stale_s: u64,
    /// The largest count a queue statistics push may carry (`waiting`,
    /// `offered`, `answered`, `abandoned`).
    #[arg(
        long,
        env = "PRESENCE_HUB_QUEUE_STATS_MAX_COUNT",
        default_value_t = 1_000_000
    )]
    pub queue_stats_max_count: u64,
    /// The largest duration in seconds a queue statistics push may carry
    /// (`longest_wait_s`, `service_level_s`).
    #[arg(
        long,
        env = "PRESENCE_HUB_QUEUE_STATS_MAX_SECONDS",
        default_value_t = 604_800
    )]
    pub queue_stats_max_seconds: u64,

    // ---- Redis high availability (README "High availability") ----------
    /// Redis Sentinels, `HOST:PORT[,HOST:PORT…]`: cluster mode on the master
    /// they name, following its failovers (instead of `--redis-url`).
    #[arg(
        long,
        env = "PRESENCE_HUB_REDIS_SENTINEL",
        value_delimiter = ',',
        conflicts_with_all = ["redis_url", "redis_cluster"],
        requires = "redis_sentinel_master"
    )]
    pub redis_sentinel: Vec<String>,
    /// The master's name in the sentinels' configuration.
    #[arg(long, env = "PRESENCE_HUB_REDIS_SENTINEL_MASTER")]
    pub redis_sentinel_master: Option<String>,
    /// Password of the sentinels, if they require one.
    #[arg(
        long,
        env = "PRESENCE_HUB_REDIS_SENTINEL_PASSWORD",
        hide_env_values = true
    )]
    pub redis_sentinel_password: Option<String>,
    /// ACL user of the sentinels, if they require one.
    #[arg(long, env = "PRESENCE_HUB_REDIS_SENTINEL_USERNAME")]
    pub redis_sentinel_username: Option<String>,
    /// Redis ACL user (every mode; wins over a user in `--redis-url`).
    #[arg(long, env = "PRESENCE_HUB_REDIS_USERNAME")]
    pub redis_username: Option<String>,
    /// Redis password (every mode; wins over one in `--redis-url`): the
    /// master's and its replicas' with `--redis-sentinel`.
    #[arg(long, env = "PRESENCE_HUB_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    // ---- Redis over TLS (README "Redis over TLS") ----
    /// Speak TLS to Redis: to the sentinels and the master with
    /// `--redis-sentinel`; with `--redis-url`, the same as `rediss://`.
    #[arg(long, env = "PRESENCE_HUB_REDIS_TLS")]
    pub redis_tls: bool,
    /// PEM file of the certificate authorities that sign Redis's
    /// certificate, trusted instead of the system's roots.
    #[arg(long, env = "PRESENCE_HUB_REDIS_TLS_CA")]
    pub redis_tls_ca: Option<PathBuf>,
    /// PEM client certificate (chain) for Redis servers that ask for one
    /// (`tls-auth-clients yes`); with `--redis-tls-key`.
    #[arg(long, env = "PRESENCE_HUB_REDIS_TLS_CERT", requires = "redis_tls_key")]
    pub redis_tls_cert: Option<PathBuf>,
    /// PEM private key of `--redis-tls-cert`.
    #[arg(long, env = "PRESENCE_HUB_REDIS_TLS_KEY", requires = "redis_tls_cert")]
    pub redis_tls_key: Option<PathBuf>,
    /// Longest pause between two attempts to reach Redis while a node
    /// starts (it serves `/healthz`, and `/readyz` answers 503, meanwhile).
    #[arg(
        long,
        env = "PRESENCE_HUB_REDIS_CONNECT_BACKOFF_MAX_MS",
        default_value_t = 10_000
    )]
    pub redis_connect_backoff_max_ms: u64,
    /// Acknowledge a change only once this many replicas hold it (Redis
    /// `WAIT`), so a failover cannot lose it: the number of replicas (README,
    /// "No acknowledged change lost"). 0: as soon as the master has it.
    #[arg(long, env = "PRESENCE_HUB_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,
    /// Longest wait for those replicas; past it the change is answered
    /// `outcome_unknown` (applied on the master, and seen, but a failover
    /// may undo it).
    #[arg(
        long,
        env = "PRESENCE_HUB_REDIS_WAIT_TIMEOUT_MS",
        default_value_t = 200
    )]
    pub redis_wait_timeout_ms: u64,
    /// With `--redis-wait-replicas`: connections to the master that carry
    /// changes and their `WAIT`s. A `WAIT` holds its connection until the
    /// replicas answer, so this many of a node's changes wait at once; the
    /// others queue (and past their deadline are refused `unavailable`).
    #[arg(
        long,
        env = "PRESENCE_HUB_REDIS_WAIT_CONNECTIONS",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub redis_wait_connections: u16,
    /// How many deltas from Redis may wait to be applied. Past it a delta
    /// is dropped and the replica catches up from the store, as for any
    /// delta pub/sub loses (`presence_hub_redis_pushes_dropped_total`).
    #[arg(long, env = "PRESENCE_HUB_REDIS_PUSH_QUEUE", default_value_t = 16_384)]
    pub redis_push_queue: usize,

    // ---- Hostile and broken clients (PROTOCOL.md §11) ----
    /// Longest one write to a client may take (a batch of frames, a ping, a
    /// close): a peer that does not read is closed (4008) or dropped.
    #[arg(long, env = "PRESENCE_HUB_WRITE_TIMEOUT_MS", default_value_t = 30_000)]
    pub write_timeout_ms: u64,
    /// Longest a client may take to send a request's headers; the
    /// connection is closed after it.
    #[arg(
        long,
        env = "PRESENCE_HUB_HTTP_HEADER_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub http_header_timeout_ms: u64,
    /// Clock skew allowed on a token's `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, env = "PRESENCE_HUB_JWT_LEEWAY_S", default_value_t = 5)]
    pub jwt_leeway_s: u64,
    /// Origins allowed to open a WebSocket (comma-separated, e.g.
    /// `https://wallboard.example.com`); any when empty. An upgrade with
    /// another `Origin` header is refused with HTTP 403.
    #[arg(long, env = "PRESENCE_HUB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    // Behind a load balancer (see `server::client_addr`).
    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored.
    #[arg(long, env = "PRESENCE_HUB_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Concurrent WebSockets per client address; more get HTTP 503. Also
    /// the most connections not yet upgraded one untrusted TCP peer may hold.
    /// 0: no limit (agents behind one NAT share an address).
    #[arg(long, env = "PRESENCE_HUB_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: usize,
    /// Connections whose first request the node reads and answers at once
    /// (per listener); the rest wait their turn, in order. It bounds what a
    /// reconnect storm's handshakes hold (`server::handshakes`).
    #[arg(
        long,
        env = "PRESENCE_HUB_MAX_HANDSHAKES",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_handshakes: u32,
    /// Longest a connection keeps its turn (a request sent more slowly goes
    /// on without it), and longest one waits for a turn (then it goes on
    /// without one).
    #[arg(
        long,
        env = "PRESENCE_HUB_HANDSHAKE_TURN_MS",
        default_value_t = 200,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub handshake_turn_ms: u64,

    // ---- Web security (README "Web security"; `crate::web`) ----
    /// Origins whose pages may frame the wallboard and the agent page
    /// (comma-separated, e.g. `https://portal.example.com`). Empty: no
    /// framing at all (`frame-ancestors 'none'`, `X-Frame-Options: DENY`).
    #[arg(long, env = "PRESENCE_HUB_FRAME_ANCESTORS", value_delimiter = ',', value_parser = crate::web::parse_origin)]
    pub frame_ancestors: Vec<String>,
    /// Origins whose pages may call the HTTP APIs cross-origin (CORS;
    /// comma-separated). Empty: refused to every other origin. Independent
    /// of `--allowed-origins`.
    #[arg(long, env = "PRESENCE_HUB_CORS_ORIGINS", value_delimiter = ',', value_parser = crate::web::parse_origin)]
    pub cors_origins: Vec<String>,
    /// Serve `/metrics` only on this address (keep it private); the public
    /// port then answers 404 for it.
    #[arg(long, env = "PRESENCE_HUB_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// `/metrics` requires `Authorization: Bearer <this token>`.
    #[arg(long, env = "PRESENCE_HUB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    // ---- Sign-in through an identity provider (README "Sign-in with your
    // identity provider (OIDC)"; `crate::auth`) ----
    /// OpenID Connect issuer URL (e.g. `https://idp.example.com/realms/cc`):
    /// tokens are verified with the keys its discovery document names, and
    /// must carry it as `iss`. Instead of --jwt-secret/--jwt-public-key.
    #[arg(long, env = "PRESENCE_HUB_OIDC_ISSUER", conflicts_with_all = ["jwt_secret", "jwt_public_key", "jwt_jwks_url"])]
    pub oidc_issuer: Option<String>,
    /// JSON Web Key Set URL of the identity provider (without discovery).
    /// Instead of --jwt-secret/--jwt-public-key.
    #[arg(long, env = "PRESENCE_HUB_JWT_JWKS_URL", conflicts_with_all = ["jwt_secret", "jwt_public_key"])]
    pub jwt_jwks_url: Option<String>,
    /// PEM file of the certificate authorities trusted for the identity
    /// provider instead of the system's roots.
    #[arg(long, env = "PRESENCE_HUB_OIDC_CA")]
    pub oidc_ca: Option<PathBuf>,
    /// A token's `iss` must be this (default with --oidc-issuer: the issuer).
    #[arg(long, env = "PRESENCE_HUB_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// A token's `aud` must name one of these (comma-separated). Required
    /// with --oidc-issuer and --jwt-jwks-url.
    #[arg(long, env = "PRESENCE_HUB_JWT_AUDIENCE", value_delimiter = ',')]
    pub jwt_audience: Vec<String>,
    /// The claim holding the user id (equal to a directory user's `id`).
    #[arg(long, env = "PRESENCE_HUB_JWT_USER_CLAIM", default_value = "sub")]
    pub jwt_user_claim: String,
    /// The claim holding the tenant id.
    #[arg(long, env = "PRESENCE_HUB_JWT_TENANT_CLAIM", default_value = "tenant")]
    pub jwt_tenant_claim: String,
    /// Every token is of this tenant (for identity providers that cannot add
    /// a tenant claim); the tenant claim is then not read.
    #[arg(long, env = "PRESENCE_HUB_JWT_TENANT")]
    pub jwt_tenant: Option<String>,
    /// At most one fetch of the identity provider's keys per this interval
    /// (an unknown `kid` asks for one).
    #[arg(
        long,
        env = "PRESENCE_HUB_JWKS_MIN_REFRESH_MS",
        default_value_t = 30_000
    )]
    pub jwks_min_refresh_ms: u64,
    /// Longest the identity provider's keys are used before they are fetched
    /// again (a shorter `Cache-Control: max-age` wins).
    #[arg(
        long,
        env = "PRESENCE_HUB_JWKS_MAX_AGE_MS",
        default_value_t = 3_600_000
    )]
    pub jwks_max_age_ms: u64,
    /// Longest one fetch of the keys may take, and so the longest a hello
    /// waits for it.
    #[arg(
        long,
        env = "PRESENCE_HUB_JWKS_FETCH_TIMEOUT_MS",
        default_value_t = 2_000
    )]
    pub jwks_fetch_timeout_ms: u64,
    /// SCIM 2.0 provisioning at /scim/v2 (docs/SCIM.md): a JSON file
    /// `{"<tenant>": "<sha256 hex of that tenant's SCIM token>"}` (it holds
    /// no secret). Absent: /scim/v2 answers 404.
    #[arg(long, env = "PRESENCE_HUB_SCIM_TOKENS")]
    pub scim_tokens: Option<PathBuf>,
}

/// A CIDR (`10.0.0.0/8`) or one address (`10.0.0.7`, as `/32` or `/128`).
fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR (10.0.0.0/8) or an IP address"))
}

impl Config {
    /// How much of the event stream the store keeps.
    pub fn events_retention(&self) -> crate::events::Retention {
        crate::events::Retention {
            max_len: self.events_max_len,
            max_age_ms: (self.events_max_age_s > 0).then(|| self.events_max_age_s * 1000),
        }
    }

    /// Defaults, as if started with no flags (tests override fields).
    pub fn defaults() -> Self {
        Cli::parse_from(["presence-hub"]).config
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
    pub fn presence_ttl(&self) -> Duration {
        Duration::from_millis(self.presence_ttl_ms)
    }
    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_millis(self.reconnect_grace_ms)
    }
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms)
    }
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms)
    }
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The shared Redis, when the node runs in cluster mode.
    pub fn redis_target(&self) -> Option<crate::backplane::target::Target> {
        use crate::backplane::target::{Auth, Kind, Target, Tls};
        let kind = if !self.redis_sentinel.is_empty() {
            Kind::Sentinel {
                sentinels: self.redis_sentinel.clone(),
                master: self.redis_sentinel_master.clone().unwrap_or_default(),
            }
        } else {
            let url = self.redis_url.as_ref()?;
            if self.redis_cluster {
                Kind::Cluster(url.split(',').map(|u| u.trim().to_string()).collect())
            } else {
                Kind::Single(url.clone())
            }
        };
        Some(Target {
            kind,
            auth: Auth {
                username: self.redis_username.clone(),
                password: self.redis_password.clone(),
                sentinel_username: self.redis_sentinel_username.clone(),
                sentinel_password: self.redis_sentinel_password.clone(),
            },
            tls: Tls {
                enabled: self.redis_tls,
                ca: self.redis_tls_ca.clone(),
                cert: self.redis_tls_cert.clone(),
                key: self.redis_tls_key.clone(),
            },
        })
    }

    pub fn channel_update(&self) -> Duration {
        Duration::from_millis(self.channel_update_ms)
    }

    /// How long queue statistics stay fresh without a push.
    pub fn queue_stats_stale(&self) -> Duration {
        Duration::from_secs(self.queue_stats_stale_s)
    }

    /// What a queue statistics push may carry at most.
    pub fn queue_stats_bounds(&self) -> crate::domain::queue_stats::Bounds {
        crate::domain::queue_stats::Bounds {
            max_count: self.queue_stats_max_count,
            max_seconds: self.queue_stats_max_seconds,
        }
    }
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
    pub fn http_header_timeout(&self) -> Duration {
        Duration::from_millis(self.http_header_timeout_ms)
    }
}
