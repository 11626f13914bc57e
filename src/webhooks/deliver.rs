//! Delivery: the event stream is the durable queue. Each endpoint has a
//! cursor in the store (`state:<id>`, [`super::store`]); a worker reads the
//! events after it, sends the wanted ones in one signed batch, and moves
//! the cursor past them only after a 2xx — so a crash, a restart or a lost
//! lease at any point sends a batch again rather than lose it (at least
//! once; receivers deduplicate by `webhook-id` or each event's `id`).
//!
//! Why one worker per endpoint, behind a lease: batches must go out in
//! stream order, so one node at a time sends an endpoint's batches. The
//! node that takes the tenant-scoped lock (`Backplane::try_lock`,
//! `webhook:<id>`) delivers and renews it every turn; when it dies its
//! lease runs out (`--webhook-lease-ms`) and another node takes over from
//! the stored cursor. On a single node the lock is always this node's.
//!
//! Why the `webhook-id` is made of the batch's first and last event ids:
//! the same batch gets the same id on every retry, on whichever node, even
//! after a restart, without storing anything more.
//!
//! Failures back off exponentially with full jitter (a delay drawn in
//! `0..min(max, base·2^attempt)`), so receivers coming back are not hit by
//! every hub at once. A batch still failing `--webhook-dead-letter-after-s`
//! after its first failure is dead-lettered — kept in the state (bounded),
//! shown at `GET /api/v1/webhooks/{id}/dead-letters` — and delivery moves
//! on. Versions the stream's retention dropped before delivery are counted
//! as `missed`, never skipped in silence.

use super::endpoint::{Endpoint, Endpoints};
use super::store::{self, DeadLetter, State, ENDPOINTS};
use crate::backplane::WriteAck;
use crate::error::HubResult;
use crate::events::EventId;
use crate::hub::Hub;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Starts looking for endpoints to deliver; stops when the hub drains.
pub fn start(hub: &Arc<Hub>) -> Option<JoinHandle<()>> {
    if hub.config.events_max_len == 0 {
        return None;
    }
    crate::tls::install_crypto_provider();
    let timeout = Duration::from_millis(hub.config.webhook_timeout_ms.max(1));
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect could lead anywhere (plain http included): none.
        .redirect(reqwest::redirect::Policy::none())
        // Names resolve to allowed addresses only (`super::address`).
        .dns_resolver(Arc::new(super::address::Resolver {
            allow_private: hub.config.webhook_allow_private,
        }))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client, no delivery");
            return None;
        }
    };
    let weak = Arc::downgrade(hub);
    let mut shutdown = hub.shutdown_signal();
    let poll = poll_of(hub);
    Some(tokio::spawn(async move {
        let mut workers: HashMap<(String, String), JoinHandle<()>> = HashMap::new();
        // Every tenant's endpoints are read only when an endpoint was added
        // somewhere (the store's generation moved), or once every
        // `FULL_SCAN_POLLS` polls: with 1 000 tenants, 1 000 reads a second
        // per node would otherwise find nothing new.
        let mut seen: Option<u64> = None;
        let mut polls_since_scan = FULL_SCAN_POLLS;
        loop {
            {
                let Some(hub) = weak.upgrade() else { return };
                workers.retain(|_, w| !w.is_finished());
                polls_since_scan = polls_since_scan.saturating_add(1);
                // (A worker ends only when its endpoint is deleted; one
                // added again under the same id moves the generation.)
                let (scan, generation) = match hub.backplane.webhooks_generation().await {
                    // One node: its own memory, read every poll.
                    Ok(None) => (true, None),
                    Ok(Some(g)) => (
                        seen != Some(g) || polls_since_scan >= FULL_SCAN_POLLS,
                        Some(g),
                    ),
                    // The store is away: no scan would get anywhere.
                    Err(_) => (false, None),
                };
                let tenants: Vec<String> = if scan {
                    hub.directory.tenants().map(|t| t.id.clone()).collect()
                } else {
                    Vec::new()
                };
                // Done only when every tenant was read: a read that failed
                // is tried again at the next poll.
                let mut complete = true;
                for tenant in tenants {
                    let Ok((_, doc)) = store::load::<Endpoints>(&hub, &tenant, ENDPOINTS).await
                    else {
                        complete = false;
                        continue;
                    };
                    for id in doc.endpoints.keys() {
                        let key = (tenant.clone(), id.clone());
                        if workers.contains_key(&key) {
                            continue;
                        }
                        let worker = Worker {
                            hub: weak.clone(),
                            tenant: tenant.clone(),
                            id: id.clone(),
                            client: client.clone(),
                        };
                        workers.insert(key, tokio::spawn(worker.run()));
                    }
                }
                if scan && complete {
                    seen = generation;
                    polls_since_scan = 0;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {
                    for (_, w) in workers { w.abort(); }
                    return;
                }
            }
        }
    }))
}

/// Polls between two reads of every tenant's endpoints when the generation
/// did not move (see `start`): a minute at the default poll of 1 s.
const FULL_SCAN_POLLS: u32 = 60;

fn poll_of(hub: &Hub) -> Duration {
    Duration::from_millis(hub.config.webhook_poll_ms.max(10))
}

struct Worker {
    hub: Weak<Hub>,
    tenant: String,
    id: String,
    client: reqwest::Client,
}

/// A batch being sent (kept across retries so it stays the same).
struct Batch {
    webhook_id: String,
    body: Vec<u8>,
    event_ids: Vec<String>,
    /// Where the cursor goes once it is delivered.
    last: EventId,
    /// The version of the last change event in it (or read before it).
    version: Option<u64>,
    missed: u64,
    attempts: u32,
    first_failure_ms: Option<u64>,
    /// Not sent again before this (the backoff); the lease is renewed
    /// meanwhile.
    retry_at: Option<tokio::time::Instant>,
}

enum Turn {
    /// The endpoint is gone: the worker ends.
    Gone,
    /// Nothing to do now.
    Idle,
    /// Go again at once (something was delivered or skipped).
    Again,
    /// Wait this long (a retry's backoff).
    Wait(Duration),
    /// This node cannot sign for the endpoint (`--webhook-secrets-key`):
    /// let the lease run out and leave it to a node that can, for a while.
    StepAside,
}

impl Worker {
    fn lock_name(&self) -> String {
        format!("webhook:{}:lease", self.id)
    }

    async fn run(self) {
        let mut held = false;
        let mut batch: Option<Batch> = None;
        // Not before this does the node try for the lease again (it
        // stepped aside).
        let mut aside_until: Option<tokio::time::Instant> = None;
        loop {
            let Some(hub) = self.hub.upgrade() else {
                return;
            };
            if hub.is_draining() {
                return;
            }
            let poll = poll_of(&hub);
            let lease = Duration::from_millis(hub.config.webhook_lease_ms.max(100));
            let name = self.lock_name();
            held = if aside_until.is_some_and(|t| tokio::time::Instant::now() < t) {
                false
            } else if held {
                hub.backplane
                    .renew_lock(&self.tenant, &name, lease)
                    .await
                    .unwrap_or(false)
            } else {
                hub.backplane
                    .try_lock(&self.tenant, &name, lease)
                    .await
                    .unwrap_or(false)
            };
            let turn = if held {
                match self.turn(&hub, &mut batch).await {
                    Ok(turn) => turn,
                    Err(e) => {
                        tracing::debug!(tenant = %self.tenant, webhook = %self.id, error = %e, "webhooks: turn failed");
                        Turn::Idle
                    }
                }
            } else {
                // Another node delivers; its batch is its own.
                batch = None;
                Turn::Idle
            };
            let pause = match turn {
                Turn::Gone => return,
                Turn::Again => continue,
                Turn::Idle => poll,
                // Renew the lease while backing off.
                Turn::Wait(d) => d.min(lease / 3),
                // Two leases: the one held runs out, and a node that can
                // sign has one lease's time to take it.
                Turn::StepAside => {
                    held = false;
                    batch = None;
                    aside_until = Some(tokio::time::Instant::now() + lease * 2);
                    lease * 2
                }
            };
            let mut shutdown = hub.shutdown_signal();
            drop(hub);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One step: build or retry a batch, send it, record the outcome.
    async fn turn(&self, hub: &Arc<Hub>, pending: &mut Option<Batch>) -> HubResult<Turn> {
        let (_, doc) = store::load::<Endpoints>(hub, &self.tenant, ENDPOINTS).await?;
        let Some(endpoint) = doc.endpoints.get(&self.id).cloned() else {
            return Ok(Turn::Gone);
        };
        let state_name = store::state_name(&self.id);
        let Some(state) = store::load_present::<State>(hub, &self.tenant, &state_name).await?
        else {
            // An endpoint without its delivery state (its create or delete
            // raced another, or failed between two writes) starts at the
            // stream's end, as a new endpoint does: never at its beginning,
            // which would send it every event kept from before it existed.
            let start = hub.backplane.read_events(&self.tenant, None, 1).await?.last;
            let state = State {
                cursor: start.map(|id| id.to_string()),
                ..State::default()
            };
            if store::create_if_absent(hub, &self.tenant, &state_name, &state).await? {
                tracing::warn!(tenant = %self.tenant, webhook = %self.id, "webhooks: the endpoint had no delivery state: it starts at the stream's end");
            }
            return Ok(Turn::Again);
        };
        let cursor = state
            .cursor
            .as_deref()
            .and_then(|c| c.parse::<EventId>().ok());
        // A batch held from before is still the one to send, unless the
        // cursor moved past it meanwhile (another node delivered it).
        if pending
            .as_ref()
            .is_some_and(|b| cursor.is_some_and(|c| c >= b.last))
        {
            *pending = None;
        }
        if pending.is_none() {
            if let Some(letter) = state.dead_letters.iter().find(|d| d.redrive).cloned() {
                return self.redrive(hub, letter).await;
            }
            match self.build(hub, &endpoint, &state, cursor).await? {
                Built::Nothing { lag } => {
                    self.lag(lag);
                    return Ok(Turn::Idle);
                }
                Built::Skipped {
                    last,
                    version,
                    missed,
                } => {
                    self.advance(hub, last, version, missed, 0, None).await?;
                    return Ok(Turn::Again);
                }
                Built::Batch(b, lag) => {
                    self.lag(lag);
                    *pending = Some(b);
                }
            }
        }
        let Some(batch) = pending.as_mut() else {
            return Ok(Turn::Idle);
        };
        if let Some(at) = batch.retry_at {
            let now = tokio::time::Instant::now();
            if at > now {
                return Ok(Turn::Wait(at - now));
            }
        }
        // The secrets as they are now: a rotation (or a dropped previous
        // secret) applies to every request sent after it.
        let (_, doc) = store::load::<Endpoints>(hub, &self.tenant, ENDPOINTS).await?;
        let Some(endpoint) = doc.endpoints.get(&self.id).cloned() else {
            return Ok(Turn::Gone);
        };
        let outcome = self.send(hub, &endpoint, batch).await;
        let metrics_outcome = match &outcome {
            Ok(()) => "ok",
            Err(Failure::Status(_)) => "http_error",
            Err(Failure::Timeout) => "timeout",
            Err(Failure::Connect(_)) => "connect_error",
            Err(Failure::Sealed(_)) => "sealed_secret",
        };
        metrics::counter!("presence_hub_webhook_deliveries_total", "outcome" => metrics_outcome)
            .increment(1);
        match outcome {
            Ok(()) => {
                let (last, version, missed, count) = (
                    batch.last,
                    batch.version,
                    batch.missed,
                    batch.event_ids.len(),
                );
                *pending = None;
                self.advance(hub, last, version, missed, count as u64, None)
                    .await?;
                Ok(Turn::Again)
            }
            Err(Failure::Sealed(why)) => {
                // A secret this node cannot open is its configuration's
                // fault, not the receiver's: the batch is never given up on,
                // and the failure neither starts nor advances the endpoint's
                // dead-letter clock or backoff. Only the error is kept, for
                // the admins; the node steps aside whatever that write says.
                let why = Failure::Sealed(why).to_string();
                *pending = None;
                let noted = store::update(
                    hub,
                    &self.tenant,
                    &state_name,
                    WriteAck::Master,
                    |mut s: State| {
                        s.last_error = Some(why.clone());
                        Ok((Some(Some(s)), ()))
                    },
                )
                .await;
                if let Err(e) = noted {
                    tracing::debug!(tenant = %self.tenant, webhook = %self.id, error = %e, "webhooks: the sealed secret's error not recorded");
                }
                Ok(Turn::StepAside)
            }
            Err(why) => {
                let why = why.to_string();
                let now = crate::clock::now_ms();
                batch.attempts += 1;
                // The first failure of this batch, as stored (it survives
                // a takeover) or now.
                let first = *batch.first_failure_ms.get_or_insert(
                    state
                        .failing_since_ms
                        .filter(|_| state.attempts > 0)
                        .unwrap_or(now),
                );
                let attempts = batch.attempts.max(state.attempts + 1);
                let dead_after = hub.config.webhook_dead_letter_after_s.saturating_mul(1000);
                if now.saturating_sub(first) >= dead_after {
                    let Some(b) = pending.take() else {
                        return Ok(Turn::Again);
                    };
                    let letter = DeadLetter {
                        webhook_id: b.webhook_id.clone(),
                        first: b.event_ids.first().cloned().unwrap_or_default(),
                        last: b.event_ids.last().cloned().unwrap_or_default(),
                        events: b.event_ids.len(),
                        attempts,
                        first_failure_ms: first,
                        dead_at_ms: now,
                        last_error: Some(why.clone()),
                        event_ids: b.event_ids.clone(),
                        redrive: false,
                    };
                    tracing::warn!(tenant = %self.tenant, webhook = %self.id, batch = %b.webhook_id, events = b.event_ids.len(), error = %why, "webhooks: batch dead-lettered");
                    metrics::counter!("presence_hub_webhook_dead_letters_total").increment(1);
                    self.advance(hub, b.last, b.version, b.missed, 0, Some(letter))
                        .await?;
                    return Ok(Turn::Again);
                }
                metrics::counter!("presence_hub_webhook_retries_total").increment(1);
                tracing::debug!(tenant = %self.tenant, webhook = %self.id, batch = %batch.webhook_id, attempts, error = %why, "webhooks: delivery failed, will retry");
                store::update(
                    hub,
                    &self.tenant,
                    &state_name,
                    WriteAck::Master,
                    |mut s: State| {
                        s.failing_since_ms = Some(first);
                        s.attempts = attempts;
                        s.last_error = Some(why.clone());
                        Ok((Some(Some(s)), ()))
                    },
                )
                .await?;
                let base = hub.config.webhook_retry_base_ms.max(1);
                let cap = hub.config.webhook_retry_max_ms.max(base);
                let ceiling = base
                    .saturating_mul(1u64 << attempts.saturating_sub(1).min(32))
                    .min(cap);
                let delay = Duration::from_millis(rand::random::<u64>() % (ceiling + 1));
                batch.retry_at = Some(tokio::time::Instant::now() + delay);
                Ok(Turn::Wait(delay))
            }
        }
    }

    /// Sends a dead letter again, once, with its own `webhook-id`.
    async fn redrive(&self, hub: &Arc<Hub>, letter: DeadLetter) -> HubResult<Turn> {
        let first = letter.first.parse::<EventId>().ok();
        // Read from just before the letter's first event.
        let after = first.and_then(|f| match f.n {
            0 => f.ms.checked_sub(1).map(|ms| EventId { ms, n: u64::MAX }),
            n => Some(EventId { ms: f.ms, n: n - 1 }),
        });
        let page = hub
            .backplane
            .read_events(&self.tenant, after, letter.event_ids.len().clamp(1, 1000))
            .await?;
        let mut events = Vec::new();
        for (id, json) in &page.events {
            let id = id.to_string();
            if !letter.event_ids.contains(&id) {
                continue;
            }
            if let Ok(mut event) = serde_json::from_str::<Value>(json) {
                event["id"] = Value::String(id);
                events.push(event.to_string());
            }
        }
        let outcome = if events.len() < letter.event_ids.len() {
            Err("its events are no longer all in the stream (retention)".to_string())
        } else {
            let (_, doc) = store::load::<Endpoints>(hub, &self.tenant, ENDPOINTS).await?;
            let Some(endpoint) = doc.endpoints.get(&self.id).cloned() else {
                return Ok(Turn::Gone);
            };
            let batch = Batch {
                webhook_id: letter.webhook_id.clone(),
                body: format!("{{\"events\":[{}]}}", events.join(",")).into_bytes(),
                event_ids: letter.event_ids.clone(),
                last: EventId::default(),
                version: None,
                missed: 0,
                attempts: 0,
                first_failure_ms: None,
                retry_at: None,
            };
            match self.send(hub, &endpoint, &batch).await {
                // This node cannot sign: the letter waits for one that can.
                Err(Failure::Sealed(_)) => return Ok(Turn::StepAside),
                other => other.map_err(|e| e.to_string()),
            }
        };
        let outcome_label = if outcome.is_ok() {
            "ok"
        } else {
            "redrive_failed"
        };
        metrics::counter!("presence_hub_webhook_deliveries_total", "outcome" => outcome_label)
            .increment(1);
        store::update(
            hub,
            &self.tenant,
            &store::state_name(&self.id),
            WriteAck::Master,
            |mut s: State| {
                match &outcome {
                    Ok(()) => s.dead_letters.retain(|d| d.webhook_id != letter.webhook_id),
                    Err(why) => {
                        for d in s.dead_letters.iter_mut() {
                            if d.webhook_id == letter.webhook_id {
                                d.redrive = false;
                                d.attempts += 1;
                                d.last_error = Some(why.clone());
                            }
                        }
                    }
                }
                Ok((Some(Some(s)), ()))
            },
        )
        .await?;
        Ok(Turn::Again)
    }

    fn lag(&self, events: usize) {
        metrics::gauge!("presence_hub_webhook_lag_events", "tenant" => self.tenant.clone(), "webhook" => self.id.clone())
            .set(events as f64);
    }

    /// Reads after the cursor and builds the next batch.
    async fn build(
        &self,
        hub: &Arc<Hub>,
        endpoint: &Endpoint,
        state: &State,
        cursor: Option<EventId>,
    ) -> HubResult<Built> {
        let max_events = hub.config.webhook_batch_max_events.max(1);
        let max_bytes = hub.config.webhook_batch_max_bytes.max(1);
        if !hub.backplane.is_shared() {
            // The memory store holds a tenant once attached.
            hub.tenant(&self.tenant).await?;
        }
        let page = hub
            .backplane
            .read_events(&self.tenant, cursor, max_events.min(1000))
            .await?;
        if page.events.is_empty() {
            return Ok(Built::Nothing { lag: 0 });
        }
        let lag = page.events.len();
        let behind_retention = cursor.is_some_and(|c| page.oldest.is_some_and(|oldest| oldest > c));
        let mut version = state.version;
        let mut missed = 0u64;
        let mut events: Vec<String> = Vec::new();
        let mut ids = Vec::new();
        let mut bytes = 0usize;
        let mut last = None;
        for (id, json) in &page.events {
            let Ok(mut event) = serde_json::from_str::<Value>(json) else {
                last = Some(*id);
                continue;
            };
            let kind = event["type"].as_str().unwrap_or("").to_string();
            let name = event["event"].as_str().unwrap_or("").to_string();
            let v = event["version"].as_u64();
            event["id"] = Value::String(id.to_string());
            let text = event.to_string();
            if endpoint.wants(&kind, &name)
                && !events.is_empty()
                && (events.len() >= max_events || bytes + text.len() > max_bytes)
            {
                break;
            }
            // Versions of changes follow each other: a hole after a cursor
            // the retention overtook is events lost before delivery.
            if kind != "heartbeat" {
                if let (Some(before), Some(v)) = (version, v) {
                    if v > before + 1 && behind_retention && kind != "gap" {
                        missed += v - before - 1;
                    }
                }
                if v.is_some() {
                    version = v.max(version);
                }
            }
            last = Some(*id);
            if endpoint.wants(&kind, &name) {
                bytes += text.len();
                events.push(text);
                ids.push(id.to_string());
            }
        }
        if missed > 0 {
            tracing::warn!(tenant = %self.tenant, webhook = %self.id, missed, "webhooks: the endpoint fell behind the event stream's retention: events lost before delivery");
            metrics::counter!("presence_hub_webhook_missed_events_total").increment(missed);
        }
        let Some(last) = last else {
            return Ok(Built::Nothing { lag });
        };
        if events.is_empty() {
            return Ok(Built::Skipped {
                last,
                version,
                missed,
            });
        }
        let body = format!("{{\"events\":[{}]}}", events.join(","));
        let webhook_id = format!(
            "msg_{}_{}",
            ids.first().map(String::as_str).unwrap_or(""),
            ids.last().map(String::as_str).unwrap_or("")
        );
        Ok(Built::Batch(
            Batch {
                webhook_id,
                body: body.into_bytes(),
                event_ids: ids,
                last,
                version,
                missed,
                attempts: 0,
                first_failure_ms: None,
                retry_at: None,
            },
            lag,
        ))
    }

    /// Moves the cursor (never backwards), clears the failure, and keeps a
    /// dead letter if there is one.
    async fn advance(
        &self,
        hub: &Arc<Hub>,
        last: EventId,
        version: Option<u64>,
        missed: u64,
        delivered: u64,
        letter: Option<DeadLetter>,
    ) -> HubResult<()> {
        let keep = hub.config.webhook_dead_letters_max;
        store::update(
            hub,
            &self.tenant,
            &store::state_name(&self.id),
            WriteAck::Master,
            |mut s: State| {
                let at = s.cursor.as_deref().and_then(|c| c.parse::<EventId>().ok());
                if at.is_some_and(|at| at >= last) {
                    return Ok((None, ()));
                }
                s.cursor = Some(last.to_string());
                s.version = version.max(s.version);
                s.missed += missed;
                s.delivered_events += delivered;
                s.failing_since_ms = None;
                s.attempts = 0;
                s.last_error = None;
                if let Some(letter) = &letter {
                    s.dead_lettered += 1;
                    if keep > 0 {
                        s.dead_letters.push_back(letter.clone());
                    }
                    while s.dead_letters.len() > keep {
                        s.dead_letters.pop_front();
                    }
                }
                Ok((Some(Some(s)), ()))
            },
        )
        .await
    }

    /// One POST of the batch, signed with every valid secret.
    async fn send(&self, hub: &Hub, endpoint: &Endpoint, batch: &Batch) -> Result<(), Failure> {
        let timestamp = crate::clock::now_ms() / 1000;
        // An address in the URL: the resolver never sees it, so the rule
        // is checked here (the flag may have changed since it was set).
        let literal = reqwest::Url::parse(&endpoint.url)
            .ok()
            .and_then(|u| super::address::literal(&u));
        if literal.is_some_and(|ip| !super::address::allowed(ip, hub.config.webhook_allow_private))
        {
            return Err(Failure::Connect(super::address::REFUSED.to_string()));
        }
        // Opened only to sign: a sealed secret is in the clear here alone.
        // The current secret (the first) must open; a previous one that
        // does not is left out of the signatures.
        let keys = super::seal::Keys::configured(&hub.config)
            .map_err(|e| Failure::Sealed(e.to_string()))?;
        let mut secrets = Vec::with_capacity(endpoint.secrets.len());
        for (i, stored) in endpoint.secrets.iter().enumerate() {
            match super::seal::open(keys.as_ref(), &self.tenant, &self.id, stored) {
                Ok(secret) => secrets.push(secret),
                Err(e) if i == 0 => return Err(Failure::Sealed(e.to_string())),
                Err(e) => {
                    tracing::warn!(tenant = %self.tenant, webhook = %self.id, error = %e, "webhooks: the previous secret does not open: signed with the current one only");
                }
            }
        }
        let signature = super::sign::header(&secrets, &batch.webhook_id, timestamp, &batch.body);
        let response = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &batch.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("user-agent", "presence-hub-webhooks")
            .body(batch.body.clone())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Failure::Timeout
                } else {
                    Failure::Connect(without_url(e))
                }
            })?;
        let status = response.status();
        // Read a bounded part of the answer (and no more), within the timeout.
        let max = hub.config.webhook_max_response_bytes;
        let mut response = response;
        let mut read = 0usize;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if read >= max {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(Failure::Timeout),
                Err(_) => break,
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Status(status.as_u16()))
        }
    }
}

/// A reqwest error's message without the URL (it may hold a token in its
/// query, and it is stored and shown).
fn without_url(e: reqwest::Error) -> String {
    use std::error::Error;
    let e = e.without_url();
    let mut text = e.to_string();
    if let Some(cause) = e.source() {
        text = format!("{text}: {cause}");
    }
    text.truncate(200);
    text
}

enum Built {
    Nothing {
        lag: usize,
    },
    Skipped {
        last: EventId,
        version: Option<u64>,
        missed: u64,
    },
    Batch(Batch, usize),
}

#[derive(Debug)]
enum Failure {
    Status(u16),
    Timeout,
    Connect(String),
    /// A secret the node cannot open (`--webhook-secrets-key`): nothing sent.
    Sealed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "HTTP {s}"),
            Failure::Timeout => write!(f, "timed out (--webhook-timeout-ms)"),
            Failure::Connect(e) => write!(f, "could not send: {e}"),
            Failure::Sealed(e) => write!(f, "not sent: {e}"),
        }
    }
}
