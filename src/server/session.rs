//! One WebSocket connection, start to end, in one task.
//!
//! After `hello`, a single `select!` loop reads the client, writes whatever
//! its [`Outbox`] holds (batched: many frames, one flush), and keeps the
//! connection's timers: presence TTL (an agent device with no message for
//! `presence_ttl_ms` goes inactive), pings when the line is quiet, and the
//! close of a half-open connection that answers nothing. One task instead of
//! a reader and a writer keeps the per-connection cost small.
//!
//! How a session ends decides what happens to its device: a clean close by
//! the client (or a policy close by the hub) makes it inactive at once; an
//! abrupt drop, a close with 1001 (a browser page unloading or reloading) or
//! a node drain keeps it active for `reconnect_grace_ms`; a
//! replaced connection (4009) leaves it to the newer one.
//!
//! Every write to the peer — frames, pings, the pong queued for each
//! ping, close frames — finishes within `write_timeout_ms` or the
//! connection is dropped, and every frame the peer sends (text, binary,
//! ping, pong) counts against its rate limit: a peer that floods or does
//! not read cannot make the hub hold memory or a connection slot for long.

use crate::backplane::IdempotencyKey;
use crate::domain::{Actor, Event, Role, User};
use crate::error::HubError;
use crate::hub::outbox::{CloseRequest, Kind, Outbox};
use crate::hub::tenant::Tenant;
use crate::hub::{Hub, LocalDevice};
use crate::protocol::{self, close};
use crate::text;
use crate::ws::{Message, Out, Part, RateLimiter, Socket};
use futures_util::FutureExt;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Device ids and labels longer than this (in characters) are refused at hello.
const MAX_ID_LEN: usize = 128;
/// The shortest a write may be given (see `Session::write_deadline`).
const MIN_WRITE: Duration = Duration::from_millis(100);

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The client sent a close frame.
    ClientClosed,
    /// The hub closed it for a reason of the client's making (limits, 4009).
    ServerClosed,
    /// The connection broke without a close (or went silent).
    Dropped,
    /// This node is shutting down.
    Draining,
}

/// The connection's state after a successful hello.
pub(super) struct Session {
    pub(super) hub: Arc<Hub>,
    pub(super) conn: u64,
    pub(super) outbox: Arc<Outbox>,
    pub(super) tenant: Arc<Tenant>,
    pub(super) user: Arc<User>,
    pub(super) role: Role,
    /// An agent connection's device, shared with the node's device
    /// registry while this connection holds it (the registry reads whether
    /// it is active, its TTL's verdict).
    pub(super) device: Option<Arc<LocalDevice>>,
    last_msg: Instant,
    last_frame: Instant,
    ping_sent: bool,
    limiter: RateLimiter,
    pub(super) subscribed: bool,
    /// The `idempotency_key` of the request being handled (PROTOCOL.md
    /// §3.3), scoped to this user; boxed, as it is rare and every idle
    /// connection carries the field.
    pub(super) once: Option<Box<IdempotencyKey>>,
    /// Agents this connection started monitoring (ended with it). Made at
    /// the first monitor request, as `withdraw` is: most connections never
    /// make one.
    pub(super) monitoring: Option<Arc<Mutex<HashSet<String>>>>,
    /// Dropped when the connection ends: monitor requests still waiting for
    /// the agent's answer are withdrawn (their devices are told, PROTOCOL.md
    /// §5.6). Made at the first monitor request.
    pub(super) withdraw: Option<tokio::sync::watch::Sender<()>>,
    /// Keeps the tenant attached on this node while the session lives.
    /// Registered with the replica as this user's connection (a directory
    /// change to the user closes it); before the lease, so dropped first.
    _signed_in: crate::hub::tenant::SignedIn,
    _tenant_lease: crate::hub::TenantLease,
}

/// Runs one accepted WebSocket to its end.
#[allow(clippy::manual_async_fn)] // on purpose: see the comment inside
pub fn run(hub: Arc<Hub>, mut ws: Socket) -> impl std::future::Future<Output = ()> + Send {
    // An `async` block rather than an `async fn`: an async fn's arguments
    // are stored in its future twice (rust-lang/rust#62958), and the
    // socket is the largest of them.
    async move {
        let _counted = hub.connection_opened();
        let conn = hub.next_conn_id();
        // Every connection's task is as large as the largest future it awaits
        // inline, and idle connections are the hub's bulk: the one-off and rare
        // steps (hello, message handlers, TTL expiry, finish) are boxed, so an
        // idle task holds only the `select!` loop (BENCHMARKS.md, memory).
        // Boxed, with the refusal's close: the session is moved out of the
        // box, not kept beside a `Result` that holds its room in the task.
        let Some(mut session) = Box::pin(open(&hub, conn, &mut ws)).await else {
            return;
        };
        tracing::info!(
            conn,
            tenant = session.tenant.id(),
            user = session.user.id.as_str(),
            role = session.role.as_str(),
            device = session.device.as_ref().map(|d| d.hello.id.as_str()),
            "session start"
        );
        let gauge = crate::metrics::get().connection(session.role);
        gauge.increment(1.0);
        // A panic in one session must not take anything else down: it is caught
        // here, and the session is cleaned up as if the connection dropped.
        let end = match AssertUnwindSafe(session.serve(&mut ws))
            .catch_unwind()
            .await
        {
            Ok(end) => end,
            Err(_) => {
                crate::metrics::get().panics.increment(1);
                tracing::error!(conn, "session task panicked; ending the session");
                End::Dropped
            }
        };
        Box::pin(session.finish(end)).await;
        gauge.decrement(1.0);
        tracing::info!(conn, tenant = session.tenant.id(), user = session.user.id.as_str(), reason = ?end, "session end");
    }
}

/// `hello`, or the refusal and its close: the session when there is one.
async fn open(hub: &Arc<Hub>, conn: u64, ws: &mut Socket) -> Option<Session> {
    let refusal = match hello(hub, conn, ws).await {
        Ok(session) => return Some(session),
        Err(refusal) => refusal,
    };
    // Strings are logged as string fields, never with Display (`%`): the
    // human format quotes and escapes them, the JSON format encodes them, so
    // what a client wrote (a serde error echoes it) cannot start a forged
    // log line.
    tracing::info!(
        conn,
        code = refusal.code,
        reason = refusal.reason.as_str(),
        "session refused"
    );
    ws.close_within(
        refusal.code,
        &refusal.reason,
        hub.config.auth_timeout(),
        hub.config.write_timeout(),
    )
    .await;
    None
}

/// Reads and checks `hello`; on success the session is registered and
/// `welcome` (and an agent's first `state`) is on its way.
async fn hello(hub: &Arc<Hub>, conn: u64, ws: &mut Socket) -> Result<Session, CloseRequest> {
    let refuse = |code: u16, reason: String| CloseRequest { code, reason };
    let mut limiter = RateLimiter::new(hub.config.rate_limit_per_sec);
    let text = match tokio::time::timeout(
        hub.config.auth_timeout(),
        first_text(ws, &hub.config, &mut limiter),
    )
    .await
    {
        Err(_) => {
            return Err(refuse(
                close::AUTH_TIMEOUT,
                format!("no hello within {} ms", hub.config.auth_timeout_ms),
            ))
        }
        Ok(Err(refusal)) => return Err(refusal),
        Ok(Ok(text)) => text,
    };
    let hello = protocol::decode_hello(&text).map_err(|e| refuse(close::BAD_HELLO, e))?;
    let claims = hub
        .verifier
        .verify(&hello.token)
        .await
        .map_err(|e| refuse(close::UNAUTHORIZED, e.to_string()))?;
    let (tenant, tenant_lease) =
        hub.open_tenant(&claims.tenant)
            .await
            .map_err(|e| match e.code {
                crate::error::ErrorCode::Unavailable => refuse(1011, e.message),
                _ => refuse(close::UNAUTHORIZED, e.message),
            })?;
    let outbox = Outbox::new(hub.config.max_outbox_frames);
    if tenant.directory().user(&claims.sub).is_none() {
        // Perhaps added on another node an instant ago. Boxed: a rare
        // path, kept out of every session task's own size.
        Box::pin(hub.catch_up_with_store(&tenant)).await;
    }
    let (user, signed_in) = tenant.sign_in(&claims.sub, conn, &outbox).ok_or_else(|| {
        refuse(
            close::UNAUTHORIZED,
            format!("unknown user {:?} in tenant {}", claims.sub, claims.tenant),
        )
    })?;
    if !user.has_role(hello.role) {
        return Err(refuse(
            close::UNAUTHORIZED,
            format!(
                "user {} does not hold the role {}",
                user.id,
                hello.role.as_str()
            ),
        ));
    }
    let device = match (hello.role, hello.device) {
        (Role::Agent, None) => {
            return Err(refuse(
                close::BAD_HELLO,
                "an agent connection needs a device: {\"id\", \"kind\"}".into(),
            ))
        }
        (Role::Agent, Some(d)) => {
            if !text::within(&d.id, 1, MAX_ID_LEN)
                || !text::within(&d.kind, 0, MAX_ID_LEN)
                || d.label
                    .as_ref()
                    .is_some_and(|l| !text::within(l, 0, MAX_ID_LEN))
            {
                return Err(refuse(
                    close::BAD_HELLO,
                    format!("device id must be 1 to {MAX_ID_LEN} characters; kind and label at most {MAX_ID_LEN}"),
                ));
            }
            Some(LocalDevice::new(tenant.id(), &user.id, d))
        }
        (_, _) => None,
    };
    let now = Instant::now();
    let mut session = Session {
        hub: hub.clone(),
        conn,
        outbox,
        tenant,
        user,
        role: hello.role,
        device,
        last_msg: now,
        last_frame: now,
        ping_sent: false,
        limiter,
        subscribed: false,
        once: None,
        monitoring: None,
        withdraw: None,
        _signed_in: signed_in,
        _tenant_lease: tenant_lease,
    };
    if let Some(device) = session.device.clone() {
        hub.claim_device(crate::hub::DeviceSlot {
            conn,
            outbox: session.outbox.clone(),
            device,
        });
        if let Err(e) = session.device_up().await {
            session.finish(End::ServerClosed).await;
            // The only refusal of a device coming up: the agent already has
            // `--max-devices-per-agent` active devices.
            let code = match e.code {
                crate::error::ErrorCode::InvalidState => close::TOO_MANY_DEVICES,
                _ => 1011,
            };
            return Err(refuse(code, e.message));
        }
    }
    let welcome = json!({
        "type": "welcome",
        "session_id": format!("{}-{conn}", hub.node_id),
        "node_id": hub.node_id,
        "protocol": protocol::VERSION,
        "role": session.role,
        "user": {"id": session.user.id, "name": session.user.name, "tenant": session.tenant.id(), "roles": session.user.roles},
        "heartbeat_interval_ms": hub.config.heartbeat_interval_ms,
        "presence_ttl_ms": hub.config.presence_ttl_ms,
        "settings": session.tenant.settings(),
    });
    session
        .outbox
        .push(protocol::frame(Kind::Welcome, &welcome));
    if let Some(d) = &session.device {
        session
            .tenant
            .watch_agent(&session.user.id, d, conn, &session.outbox);
    }
    Ok(session)
}

/// The first text message; pings are answered (within the write deadline)
/// and count against the rate limit, anything else refuses.
async fn first_text(
    ws: &mut Socket,
    config: &crate::config::Config,
    limiter: &mut RateLimiter,
) -> Result<String, CloseRequest> {
    let max = config.max_frame_bytes;
    loop {
        let message = ws.recv().await;
        let refused = match &message {
            Some(Ok(m)) => !limiter.admit(Instant::now(), Part::of(m)),
            _ => false,
        };
        if refused && limiter.flooded() {
            return Err(CloseRequest {
                code: close::POLICY,
                reason: format!(
                    "rate limit of {} messages/s exceeded",
                    config.rate_limit_per_sec
                ),
            });
        }
        match message {
            Some(Ok(Message::Text(t))) if t.len() > max => {
                return Err(CloseRequest {
                    code: close::TOO_LARGE,
                    reason: format!("message larger than {max} bytes"),
                })
            }
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Ping)) => {
                if !ws.flush_within(config.write_timeout()).await {
                    return Err(CloseRequest {
                        code: close::POLICY,
                        reason: "not reading: pongs cannot be written".into(),
                    });
                }
            }
            Some(Ok(Message::Pong | Message::Fragment)) => continue,
            Some(Ok(Message::Binary(b))) if b.len() > max => {
                return Err(CloseRequest {
                    code: close::TOO_LARGE,
                    reason: format!("message larger than {max} bytes"),
                })
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(CloseRequest {
                    code: close::BAD_HELLO,
                    reason: "hello must be a JSON text frame".into(),
                })
            }
            Some(Err(crate::ws::Error::TooLarge)) => {
                return Err(CloseRequest {
                    code: close::TOO_LARGE,
                    reason: "message too large".into(),
                })
            }
            // A frame that breaks RFC 6455: the socket has sent its close.
            Some(Err(e)) if let Some(code) = e.close_code() => {
                return Err(CloseRequest {
                    code,
                    reason: e.to_string(),
                })
            }
            _ => {
                return Err(CloseRequest {
                    code: close::BAD_HELLO,
                    reason: "closed before hello".into(),
                })
            }
        }
    }
}

impl Session {
    async fn serve(&mut self, ws: &mut Socket) -> End {
        // Its own handle: the shutdown wake borrows it across the arms,
        // which borrow the session mutably.
        let hub = self.hub.clone();
        // Made once, before the check, so a shutdown that begins after the
        // check still wakes it.
        let stopping = hub.stopping(self.conn);
        tokio::pin!(stopping);
        if hub.is_draining() {
            return Box::pin(self.drain(ws)).await;
        }
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = &mut stopping => return Box::pin(self.drain(ws)).await,
                // The arms' work is boxed: a future awaited inline is part of
                // every idle connection's task (BENCHMARKS.md, memory), and
                // a box per batch or message is nothing beside its syscalls.
                _ = self.outbox.notified() => match Box::pin(self.flush(ws)).await {
                    Ok(None) => {}
                    Ok(Some(request)) => {
                        Box::pin(ws.close_within(request.code, &request.reason, self.linger(), self.write_deadline())).await;
                        return End::ServerClosed;
                    }
                    Err(()) => return End::Dropped,
                },
                // Before reading: a peer with a backlog of frames must not
                // starve the TTL and the pings.
                _ = tokio::time::sleep_until(deadline) => {
                    if let Some(end) = Box::pin(self.on_timer(ws)).await {
                        return end;
                    }
                }
                message = ws.recv() => {
                    if let Some(end) = Box::pin(self.on_message(ws, message)).await {
                        return end;
                    }
                }
            }
        }
    }

    /// The node is shutting down: tells the client to reconnect (elsewhere)
    /// after a random delay below half the grace, at most half a second,
    /// so the other nodes are not all hit at once, and closes with 1012.
    async fn drain(&mut self, ws: &mut Socket) -> End {
        let cap = self.hub.config.reconnect_grace_ms.min(1000) / 2;
        let after = if cap == 0 {
            0
        } else {
            rand::random::<u64>() % cap
        };
        let notice = protocol::frame(
            Kind::Draining,
            &json!({"type": "draining", "reconnect_after_ms": after}),
        );
        let _ = ws
            .send_within(Out::Text(notice.text.as_str()), self.write_timeout())
            .await;
        ws.close_within(
            close::DRAINING,
            "node draining: reconnect elsewhere",
            self.linger(),
            self.write_timeout(),
        )
        .await;
        End::Draining
    }

    async fn on_message(
        &mut self,
        ws: &mut Socket,
        message: Option<Result<Message, crate::ws::Error>>,
    ) -> Option<End> {
        let now = Instant::now();
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(crate::ws::Error::TooLarge)) => {
                return Some(self.too_large(ws, Duration::ZERO).await)
            }
            // A frame that breaks RFC 6455: the socket has sent its close
            // (1002, 1007); the peer is given the linger to take it.
            Some(Err(e)) if let Some(code) = e.close_code() => {
                let reason = e.to_string();
                ws.close_within(code, &reason, self.linger(), self.write_timeout())
                    .await;
                return Some(End::ServerClosed);
            }
            Some(Err(_)) | None => return Some(End::Dropped),
        };
        if let Message::Close(code) = message {
            // Sends the socket's close reply (bounded: the peer may not read).
            let _ = ws.flush_within(self.write_timeout()).await;
            // 1001 "going away" is a browser unloading the page, a reload
            // included: treated as a drop, so a page that comes back within
            // the grace shows no offline flap.
            let going_away = code == Some(close::GOING_AWAY);
            return Some(if going_away {
                End::Dropped
            } else {
                End::ClientClosed
            });
        }
        // Any frame is liveness of the line: a frozen app's browser still pongs.
        self.last_frame = now;
        self.ping_sent = false;
        // One size limit and one rate limit for every kind of frame: text,
        // binary and control frames alike.
        let size = match &message {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        if size > self.hub.config.max_frame_bytes {
            return Some(self.too_large(ws, self.linger()).await);
        }
        if let Message::Text(_) = message {
            self.last_msg = now;
            if self.device.as_ref().is_some_and(|d| !d.is_active()) {
                // A device that lapsed past its TTL is back.
                if let Err(e) = Box::pin(self.device_up()).await {
                    self.outbox.push(protocol::error(&e));
                }
            }
        }
        // The socket queued the pong: written before reading more, within
        // the budget or not, or a peer that sends pings and never reads
        // would make the hub buffer pongs without end (over the budget,
        // the ping still counts towards a flood).
        if matches!(message, Message::Ping) && !ws.flush_within(self.write_deadline()).await {
            return Some(End::Dropped);
        }
        if !self.limiter.admit(now, Part::of(&message)) {
            if self.limiter.flooded() {
                let reason = format!(
                    "rate limit of {} messages/s exceeded",
                    self.hub.config.rate_limit_per_sec
                );
                ws.close_within(close::POLICY, &reason, self.linger(), self.write_timeout())
                    .await;
                return Some(End::ServerClosed);
            }
            let e = HubError::rate_limited(format!(
                "more than {} messages/s: message dropped",
                self.hub.config.rate_limit_per_sec
            ));
            match &message {
                Message::Text(text) => {
                    let id = protocol::decode(text).ok().and_then(|m| m.id);
                    self.outbox.push(match id {
                        Some(id) => protocol::reply_err(&id, &e),
                        None => protocol::error(&e),
                    });
                }
                Message::Binary(_) => self.outbox.push(protocol::error(&e)),
                _ => {} // control frames and fragments get nothing more
            }
            return None;
        }
        match message {
            Message::Text(text) => self.on_text(&text).await,
            Message::Binary(_) => {
                self.outbox.push(protocol::error(&HubError::bad_request(
                    "binary frames are not supported: send JSON text frames",
                )));
            }
            Message::Ping | Message::Pong | Message::Fragment | Message::Close(_) => {}
        }
        None
    }

    /// A message over `max_frame_bytes`: `too_large`, then close 1009.
    async fn too_large(&self, ws: &mut Socket, linger: Duration) -> End {
        let max = self.hub.config.max_frame_bytes;
        let e = HubError::too_large(format!("message larger than {max} bytes"));
        let frame = protocol::error(&e);
        let _ = ws
            .send_within(Out::Text(frame.text.as_str()), self.write_timeout())
            .await;
        ws.close_within(
            close::TOO_LARGE,
            &format!("message larger than {max} bytes"),
            linger,
            self.write_timeout(),
        )
        .await;
        End::ServerClosed
    }

    async fn on_text(&mut self, text: &str) {
        let incoming = match protocol::decode(text) {
            Ok(incoming) => incoming,
            Err(e) => return self.outbox.push(protocol::error(&e)),
        };
        let metrics = crate::metrics::get();
        metrics.message_in(&incoming.kind);
        let started = Instant::now();
        let is_command = incoming.kind == "command";
        self.once = incoming.idempotency_key.map(|key| {
            Box::new(IdempotencyKey {
                user: self.user.id.clone(),
                key,
            })
        });
        let result = match incoming.request {
            // Boxed (see `run`): one short-lived allocation per message,
            // beside the several its decoding makes anyway.
            Ok(request) => Box::pin(self.dispatch(request, incoming.id.as_deref())).await,
            Err(e) => Err(e),
        };
        self.once = None;
        // The session read nothing while the request ran (a change may wait
        // for replicas, `--redis-wait-timeout-ms`): what the client sent
        // meanwhile sits unread, so its silence counts from now, not from
        // before the request (a device would otherwise lapse, and its
        // connection close for silence, while its heartbeats wait unread).
        let now = Instant::now();
        self.last_frame = now;
        self.last_msg = now;
        // Monitor answers later and records its own latency.
        if is_command && !matches!(result, Ok(super::handlers::Reply::Later)) {
            metrics
                .command_seconds
                .record(started.elapsed().as_secs_f64());
        }
        let result = match result {
            Ok(super::handlers::Reply::Later) => return,
            Ok(super::handlers::Reply::Now(value)) => Ok(value),
            Ok(super::handlers::Reply::Agent(record)) => {
                if let Some(id) = incoming.id.as_deref() {
                    self.outbox.push(protocol::reply_agent(id, &record));
                }
                return;
            }
            Err(e) => Err(e),
        };
        if let Some(frame) = protocol::answer(incoming.id.as_deref(), result) {
            self.outbox.push(frame);
        }
    }

    fn next_deadline(&self) -> Instant {
        let config = &self.hub.config;
        let mut deadline = self.last_frame + config.presence_ttl();
        if !self.ping_sent {
            deadline = deadline.min(self.last_frame + config.heartbeat_interval());
        }
        if self.is_active() {
            deadline = deadline.min(self.last_msg + config.presence_ttl());
        }
        deadline
    }

    async fn on_timer(&mut self, ws: &mut Socket) -> Option<End> {
        let now = Instant::now();
        let config = &self.hub.config;
        if let Some(d) = self.device.as_ref().filter(|d| d.is_active()) {
            if now >= self.last_msg + config.presence_ttl() {
                d.set_active(false);
                if !self.hub.is_draining() {
                    Box::pin(
                        self.hub
                            .device_down(&self.tenant, &self.user.id, &d.hello.id, None),
                    )
                    .await;
                }
            }
        }
        if now >= self.last_frame + config.presence_ttl() {
            let reason = format!("nothing received for {} ms", config.presence_ttl_ms);
            ws.close_within(close::POLICY, &reason, Duration::ZERO, self.write_timeout())
                .await;
            return Some(End::Dropped);
        }
        if !self.ping_sent && now >= self.last_frame + config.heartbeat_interval() {
            self.ping_sent = true;
            if !ws.send_within(Out::Ping, self.write_deadline()).await {
                return Some(End::Dropped);
            }
        }
        None
    }

    /// Writes everything pending in one batch. `Err` when the client cannot
    /// be written to within `write_timeout_ms` (gone, or not reading).
    async fn flush(&mut self, ws: &mut Socket) -> Result<Option<CloseRequest>, ()> {
        let batch = self.outbox.take();
        // Counted per batch, not per frame: one atomic add per kind.
        let mut sent = [0u64; crate::metrics::OUT_KINDS.len()];
        for frame in &batch.frames {
            sent[frame.kind as usize] += 1;
        }
        let frames = batch.frames;
        ws.reserve(frames.len(), frames.iter().map(|f| f.text.len()).sum());
        for frame in &frames {
            ws.queue(Out::Text(frame.text.as_str()));
        }
        // Copied into the socket's batch: the frames' share goes now.
        drop(frames);
        if !ws.flush_within(self.write_deadline()).await {
            return Err(());
        }
        let metrics = crate::metrics::get();
        metrics.messages_out(&sent);
        let deltas = [Kind::Agent, Kind::AgentRemoved, Kind::State]
            .iter()
            .map(|k| sent[*k as usize])
            .sum();
        metrics.deltas_delivered.increment(deltas);
        Ok(batch.close)
    }

    /// This connection's device is active again (hello, or back after TTL).
    pub(super) async fn device_up(&mut self) -> Result<(), HubError> {
        let Some(device) = &self.device else {
            return Ok(());
        };
        let d = &device.hello;
        let event = Event::DeviceUp {
            device_id: d.id.clone(),
            kind: d.kind.clone(),
            label: d.label.clone(),
            node: self.hub.node_id.clone(),
        };
        self.hub
            .change(
                &self.tenant,
                &self.user.id,
                &Actor::system(),
                &event,
                |_| Ok(()),
            )
            .await?;
        device.set_active(true);
        Ok(())
    }

    fn linger(&self) -> Duration {
        self.hub.config.auth_timeout()
    }

    fn write_timeout(&self) -> Duration {
        self.hub.config.write_timeout()
    }

    /// Whether this connection's device is active (an agent's, within its
    /// TTL).
    fn is_active(&self) -> bool {
        self.device.as_ref().is_some_and(|d| d.is_active())
    }

    /// How long the next write may take. For an active device, no longer
    /// than what is left of its TTL: the session cannot read (and so cannot
    /// see a heartbeat) while a write is stuck, and a device that neither
    /// reads nor speaks for its TTL is inactive whatever the write timeout
    /// (PROTOCOL.md §11). A moment at least, so a write that starts just as
    /// the TTL runs out is still tried.
    fn write_deadline(&self) -> Duration {
        let timeout = self.write_timeout();
        if !self.is_active() {
            return timeout;
        }
        let ttl_left = (self.last_msg + self.hub.config.presence_ttl())
            .saturating_duration_since(Instant::now());
        timeout.min(ttl_left.max(MIN_WRITE))
    }

    /// Releases what the session held, according to how it ended.
    async fn finish(&mut self, end: End) {
        if self.subscribed {
            self.tenant.unsubscribe(self.conn);
        }
        // Requests still waiting for an agent's answer first: nobody will
        // read their replies, and an acceptance now would start a monitor
        // that this connection's end has to stop again.
        self.withdraw = None;
        let monitoring: Vec<String> = match self.monitoring.take() {
            Some(monitoring) => monitoring.lock().drain().collect(),
            None => Vec::new(),
        };
        for agent_id in monitoring {
            // The supervisor left: their monitors end with them.
            let _ = self.stop_monitor(&agent_id, |_| Ok(())).await;
        }
        let Some(device) = self.device.clone() else {
            return;
        };
        let key = device.key();
        self.tenant.unwatch_agent(&self.user.id, self.conn);
        if !self.hub.release_device(key, self.conn) {
            return; // replaced: the newer connection owns the device now
        }
        // A device dropped after its TTL ran out (it stopped reading and
        // speaking) is inactive now, as the TTL says; the grace is for
        // devices that were alive when their connection broke.
        let at_once = match end {
            End::ClientClosed | End::ServerClosed => true,
            End::Dropped => Instant::now() >= self.last_msg + self.hub.config.presence_ttl(),
            End::Draining => false,
        };
        if at_once {
            self.hub
                .device_down(&self.tenant, &self.user.id, &device.hello.id, Some(key))
                .await
        } else {
            self.hub
                .device_down_after_grace(self.tenant.clone(), device)
        }
    }
}
