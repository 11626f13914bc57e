//! The demo's simulated ACD: a contact center's router driving the hub
//! only through the integration API (docs/API.md, "Integrations"), over
//! HTTP to the node's own address, as an external platform would.
//!
//! - **Its credential.** At start it signs in as the tenant's first admin
//!   and creates the service credential [`CREDENTIAL_ID`] (scopes
//!   `interactions:write`, `queues:write`, `read`) with `POST
//!   /api/v1/credentials`, retrying with backoff until the node answers.
//!   One left from an earlier run (a `--data-dir` store) or by another
//!   node's demo is revoked and made anew. The key stays in memory. When
//!   the key is refused (401: an admin revoked it), the ACD stops.
//! - **Contacts.** Per channel of the tenant (`GET /api/v1/channels`,
//!   read again every [`CHANNELS_EVERY_MS`]), contacts arrive at random
//!   ([`Profile`]: a few a minute per queue, chats and campaign dials
//!   too; one waits in each channel at start), wait in the channel's
//!   queue, and are offered, oldest first, to the agent who has been
//!   available longest among those **connected** to the channel with a
//!   free slot of its kind (the agents' records from `GET /api/v1/agents`,
//!   read every second, and the record each change answers with). The
//!   agents the demo leaves to people, and any agent a person signed in
//!   as, are never offered anything.
//! - **A contact's life**, each step a `POST
//!   /api/v1/agents/{id}/interactions` with an `Idempotency-Key`:
//!   `offered`, `answered` after a ring, `ended` after the talk, then
//!   `wrap_up` after the after-call work (when that was the agent's last
//!   contact; the hub's `wrap_up_seconds` ends a wrap-up the ACD forgot).
//!   A contact that waits past its patience is abandoned.
//! - **Refusals are normal**: the agent went on a break or offline between
//!   the offer and the answer (`invalid_state`), a slot was taken. The
//!   contact goes back to the queue (its place kept) and the refusal is
//!   logged at debug level. An `answered` or `ended` that got no answer is
//!   sent again with the same key (a repeat answers as the first did).
//! - **Statistics.** Every second, per channel, `PUT
//!   /api/v1/channels/{kind}/{id}/stats`: contacts waiting (ringing ones
//!   included), the longest wait, today's offered/answered/abandoned, and
//!   the service level (the share of today's answered and abandoned
//!   contacts answered within `service_level_s`). A push replaces the
//!   channel's statistics whole, so it needs no idempotency key.

use super::agents::{between, chance, person_present, softphone};
use crate::api::client::{Api, ApiError};
use crate::scim::path_segment;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The id of the demo ACD's service credential.
pub const CREDENTIAL_ID: &str = "demo-acd";
/// What the ACD may do: report interactions, push statistics, read.
pub const SCOPES: [&str; 3] = ["interactions:write", "queues:write", "read"];
/// How often the ACD moves its contacts.
const TICK_MS: u64 = 250;
/// How often it reads the agents and pushes statistics.
const REFRESH_MS: u64 = 1000;
/// How often it reads the channels again.
pub const CHANNELS_EVERY_MS: u64 = 10_000;
/// Attempts at an `ended` that got no answer before the contact is let go.
const END_ATTEMPTS: u32 = 5;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// How contacts of a channel kind behave (seconds, but `per_minute`).
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Interaction ids start with it (`call-…`, `chat-…`, `dial-…`).
    pub prefix: &'static str,
    /// Arrivals a minute (at random: a Poisson process).
    pub per_minute: f64,
    pub ring: (u64, u64),
    pub talk: (u64, u64),
    pub after_work: (u64, u64),
    /// How long a contact waits before hanging up.
    pub patience: (u64, u64),
    /// The service level's threshold.
    pub service_level_s: u64,
}

pub fn profile(kind: &str) -> Profile {
    match kind {
        "chat" => Profile {
            prefix: "chat",
            per_minute: 2.0,
            ring: (1, 3),
            talk: (20, 60),
            after_work: (2, 6),
            patience: (40, 150),
            service_level_s: 30,
        },
        "campaign" => Profile {
            prefix: "dial",
            per_minute: 1.5,
            ring: (2, 5),
            talk: (10, 35),
            after_work: (3, 10),
            patience: (15, 45),
            service_level_s: 10,
        },
        _ => Profile {
            prefix: "call",
            per_minute: 2.0,
            ring: (1, 4),
            talk: (8, 30),
            after_work: (3, 10),
            patience: (20, 90),
            service_level_s: 20,
        },
    }
}

/// Starts the ACD: `base` is the node's HTTP address, `admin` an admin's
/// token of the tenant, `simulated` the agents it may offer contacts to.
pub fn start(base: String, admin: String, simulated: HashSet<String>) {
    tokio::spawn(async move {
        let Some(key) = credential(&base, &admin).await else {
            return;
        };
        let api = match Api::local(&base, &key) {
            Ok(api) => api,
            Err(e) => {
                tracing::warn!(error = %e, "the demo ACD cannot start");
                return;
            }
        };
        tracing::info!(
            credential = CREDENTIAL_ID,
            "the demo ACD is routing contacts"
        );
        Acd::new(api, simulated).run().await;
        tracing::info!(
            credential = CREDENTIAL_ID,
            "the demo ACD's key was refused (revoked?): the simulated ACD stops"
        );
    });
}

/// Creates the ACD's credential; its key. Retries with backoff while the
/// node does not answer (the demo starts right after the listener).
async fn credential(base: &str, admin: &str) -> Option<String> {
    let api = match Api::local(base, admin) {
        Ok(api) => api,
        Err(e) => {
            tracing::warn!(error = %e, "the demo ACD cannot start");
            return None;
        }
    };
    let body = json!({"id": CREDENTIAL_ID, "scopes": SCOPES});
    let mut delay = Duration::from_millis(100);
    loop {
        match api
            .call(Method::POST, "/api/v1/credentials", Some(&body))
            .await
        {
            Ok(made) => match made["key"].as_str() {
                Some(key) => return Some(key.to_string()),
                None => {
                    tracing::warn!("the demo ACD's credential came without a key: no ACD");
                    return None;
                }
            },
            // One left from an earlier run or by another node's demo: made
            // anew. (None to revoke: the tenant holds too many.)
            Err(e) if e.status() == Some(409) => {
                let path = format!("/api/v1/credentials/{CREDENTIAL_ID}");
                match api.call(Method::DELETE, &path, None).await {
                    Ok(_) => continue,
                    Err(gone) if gone.status() == Some(404) => {
                        tracing::warn!(error = %e, "the demo ACD cannot get a credential: no ACD");
                        return None;
                    }
                    Err(gone) => {
                        tracing::debug!(error = %gone, "the demo ACD's old credential stays")
                    }
                }
            }
            Err(e) if matches!(e.status(), None | Some(429) | Some(500..)) => {
                tracing::debug!(error = %e, retry_in_ms = delay.as_millis() as u64, "the demo ACD waits for the node");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the demo ACD cannot get a credential: no ACD");
                return None;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// A channel as the ACD serves it, with today's counts.
#[derive(Clone, Debug)]
struct Channel {
    kind: String,
    id: String,
    today: Today,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Today {
    day: u64,
    offered: u64,
    answered: u64,
    abandoned: u64,
    /// Answered within the service level's threshold.
    in_time: u64,
}

impl Today {
    /// Starts a new day's counts when `now` is on another day.
    fn roll(&mut self, now: u64) {
        if now / DAY_MS != self.day {
            *self = Today {
                day: now / DAY_MS,
                ..Today::default()
            };
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    Waiting,
    Ringing { agent: String, answer_at: u64 },
    Talking { agent: String, end_at: u64 },
}

#[derive(Clone, Debug)]
struct Contact {
    id: String,
    kind: String,
    channel: String,
    arrived_ms: u64,
    patience_ms: u64,
    stage: Stage,
    /// Offers made (each offer's keys are its own).
    offers: u32,
    /// `ended` attempts without an answer.
    end_attempts: u32,
}

impl Contact {
    fn waiting(&self) -> bool {
        !matches!(self.stage, Stage::Talking { .. })
    }
}

/// Why a request did not do what it asked.
enum Refusal {
    /// 401: the key is gone; the ACD stops.
    Revoked,
    /// Anything else: a refusal (its HTTP status), or no answer (`None`).
    Other(Option<u16>, String),
}

struct Acd {
    api: Api,
    /// Distinguishes this run's interaction ids and keys from an earlier
    /// run's (a `--data-dir` store remembers idempotency keys).
    run: String,
    next: u64,
    simulated: HashSet<String>,
    channels: Vec<Channel>,
    /// The agents' latest records, by id.
    agents: HashMap<String, Value>,
    contacts: Vec<Contact>,
    /// After-call work ending: (agent, contact, when).
    wrap_ups: Vec<(String, String, u64)>,
}

impl Acd {
    fn new(api: Api, simulated: HashSet<String>) -> Acd {
        Acd {
            api,
            run: format!("{:04x}", rand::random::<u16>()),
            next: 0,
            simulated,
            channels: Vec::new(),
            agents: HashMap::new(),
            contacts: Vec::new(),
            wrap_ups: Vec::new(),
        }
    }

    /// Routes until the key is refused.
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut refreshed, mut channels_read) = (0u64, 0u64);
        let mut first = true;
        loop {
            tick.tick().await;
            let now = crate::clock::now_ms();
            let step = async {
                if now.saturating_sub(channels_read) >= CHANNELS_EVERY_MS {
                    self.read_channels(now, first).await?;
                    channels_read = now;
                    first = false;
                }
                if now.saturating_sub(refreshed) >= REFRESH_MS {
                    self.read_agents().await?;
                    self.push_stats(now).await?;
                    refreshed = now;
                }
                self.arrivals(now);
                self.abandons(now);
                self.answers(now).await?;
                self.ends(now).await?;
                self.wrap_ups(now).await?;
                self.offers(now).await
            };
            match step.await {
                Ok(()) => {}
                Err(Refusal::Revoked) => return,
                Err(Refusal::Other(_, e)) => tracing::debug!(error = %e, "demo ACD"),
            }
        }
    }

    fn refusal(e: ApiError) -> Refusal {
        if e.status() == Some(401) {
            Refusal::Revoked
        } else {
            Refusal::Other(e.status(), e.to_string())
        }
    }

    async fn read_channels(&mut self, now: u64, first: bool) -> Result<(), Refusal> {
        let answer = self
            .api
            .call(Method::GET, "/api/v1/channels", None)
            .await
            .map_err(Acd::refusal)?;
        let listed: Vec<(String, String)> = answer["channels"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| Some((c["kind"].as_str()?.into(), c["id"].as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        let old = std::mem::take(&mut self.channels);
        for (kind, id) in listed {
            let today = old
                .iter()
                .find(|c| c.kind == kind && c.id == id)
                .map(|c| c.today.clone())
                .unwrap_or_default();
            self.channels.push(Channel { kind, id, today });
        }
        // Contacts of a channel deleted meanwhile are let go.
        let channels = &self.channels;
        self.contacts.retain(|c| {
            !c.waiting()
                || channels
                    .iter()
                    .any(|ch| ch.kind == c.kind && ch.id == c.channel)
        });
        if first {
            // The morning's first callers: one waits in each channel.
            for i in 0..self.channels.len() {
                self.arrive(i, now);
            }
        }
        Ok(())
    }

    async fn read_agents(&mut self) -> Result<(), Refusal> {
        let answer = self
            .api
            .call(Method::GET, "/api/v1/agents", None)
            .await
            .map_err(Acd::refusal)?;
        let listed = answer["agents"].as_array().cloned().unwrap_or_default();
        let ids: HashSet<&str> = listed.iter().filter_map(|a| a["id"].as_str()).collect();
        self.agents.retain(|id, _| ids.contains(id.as_str()));
        for record in listed {
            self.note(record);
        }
        Ok(())
    }

    /// Keeps `record` unless a newer one is known ("keep the higher
    /// version", PROTOCOL.md §4.1).
    fn note(&mut self, record: Value) {
        let Some(id) = record["id"].as_str().map(str::to_string) else {
            return;
        };
        let version = record["version"].as_u64().unwrap_or(0);
        let known = self
            .agents
            .get(&id)
            .and_then(|r| r["version"].as_u64())
            .unwrap_or(0);
        if version >= known {
            self.agents.insert(id, record);
        }
    }

    async fn push_stats(&mut self, now: u64) -> Result<(), Refusal> {
        for i in 0..self.channels.len() {
            self.channels[i].today.roll(now);
            let channel = &self.channels[i];
            let body = stats(channel, &self.contacts, now);
            let path = format!(
                "/api/v1/channels/{}/{}/stats",
                path_segment(&channel.kind),
                path_segment(&channel.id)
            );
            if let Err(e) = self.api.call(Method::PUT, &path, Some(&body)).await {
                match Acd::refusal(e) {
                    Refusal::Revoked => return Err(Refusal::Revoked),
                    Refusal::Other(_, e) => tracing::debug!(error = %e, "demo ACD: statistics"),
                }
            }
        }
        Ok(())
    }

    /// A new contact in channel `i`.
    fn arrive(&mut self, i: usize, now: u64) {
        let Some(channel) = self.channels.get_mut(i) else {
            return;
        };
        let p = profile(&channel.kind);
        channel.today.roll(now);
        channel.today.offered += 1;
        self.next += 1;
        self.contacts.push(Contact {
            id: format!("{}-{}-{}", p.prefix, self.run, self.next),
            kind: channel.kind.clone(),
            channel: channel.id.clone(),
            arrived_ms: now,
            patience_ms: between(p.patience.0, p.patience.1),
            stage: Stage::Waiting,
            offers: 0,
            end_attempts: 0,
        });
    }

    fn arrivals(&mut self, now: u64) {
        for i in 0..self.channels.len() {
            let per_tick =
                profile(&self.channels[i].kind).per_minute / 60.0 * TICK_MS as f64 / 1000.0;
            if chance(per_tick) {
                self.arrive(i, now);
            }
        }
    }

    fn abandons(&mut self, now: u64) {
        let channels = &mut self.channels;
        self.contacts.retain(|c| {
            let gone = c.waiting() && now.saturating_sub(c.arrived_ms) > c.patience_ms;
            if gone {
                tracing::debug!(contact = %c.id, "demo ACD: abandoned");
                if let Some(ch) = channels
                    .iter_mut()
                    .find(|ch| ch.kind == c.kind && ch.id == c.channel)
                {
                    ch.today.roll(now);
                    ch.today.abandoned += 1;
                }
            }
            !gone
        });
    }

    /// Reports an interaction event for `agent`; keeps the record it
    /// answers with.
    async fn report(&mut self, agent: &str, body: Value, key: &str) -> Result<(), Refusal> {
        let path = format!("/api/v1/agents/{}/interactions", path_segment(agent));
        match self
            .api
            .call_once(Method::POST, &path, Some(&body), Some(key))
            .await
        {
            Ok(answer) => {
                self.note(answer["agent"].clone());
                Ok(())
            }
            Err(e) => Err(Acd::refusal(e)),
        }
    }

    fn body(event: &str, c: &Contact) -> Value {
        json!({"event": event, "interaction_id": c.id, "channel": {"kind": c.kind, "id": c.channel}})
    }

    async fn answers(&mut self, now: u64) -> Result<(), Refusal> {
        for i in 0..self.contacts.len() {
            let c = self.contacts[i].clone();
            let Stage::Ringing { agent, answer_at } = &c.stage else {
                continue;
            };
            if *answer_at > now {
                continue;
            }
            // A person signed in as the agent meanwhile: theirs, not ours.
            let theirs = self
                .agents
                .get(agent.as_str())
                .is_some_and(|r| person_present(r, &softphone(agent)));
            if theirs {
                self.contacts[i].stage = Stage::Waiting;
                continue;
            }
            let key = format!("{}-answered-{}", c.id, c.offers);
            match self.report(agent, Acd::body("answered", &c), &key).await {
                Ok(()) => {
                    let p = profile(&c.kind);
                    self.contacts[i].stage = Stage::Talking {
                        agent: agent.clone(),
                        end_at: now + between(p.talk.0, p.talk.1),
                    };
                    if let Some(ch) = self
                        .channels
                        .iter_mut()
                        .find(|ch| ch.kind == c.kind && ch.id == c.channel)
                    {
                        ch.today.roll(now);
                        ch.today.answered += 1;
                        if now.saturating_sub(c.arrived_ms) <= p.service_level_s * 1000 {
                            ch.today.in_time += 1;
                        }
                    }
                }
                Err(Refusal::Revoked) => return Err(Refusal::Revoked),
                Err(Refusal::Other(None, e)) => {
                    // No answer: it may have been done. Again in a second
                    // with the same key, which answers as the first did
                    // (the contact's patience bounds the attempts).
                    tracing::debug!(contact = %c.id, %agent, error = %e, "demo ACD: no answer to answered");
                    self.contacts[i].stage = Stage::Ringing {
                        agent: agent.clone(),
                        answer_at: now + 1000,
                    };
                }
                Err(Refusal::Other(Some(_), e)) => {
                    // Back to the queue, its place kept.
                    tracing::debug!(contact = %c.id, %agent, error = %e, "demo ACD: not answered");
                    self.contacts[i].stage = Stage::Waiting;
                }
            }
        }
        Ok(())
    }

    async fn ends(&mut self, now: u64) -> Result<(), Refusal> {
        let mut done = Vec::new();
        for i in 0..self.contacts.len() {
            let c = self.contacts[i].clone();
            let Stage::Talking { agent, end_at } = &c.stage else {
                continue;
            };
            if *end_at > now {
                continue;
            }
            let key = format!("{}-ended", c.id);
            let body = json!({"event": "ended", "interaction_id": c.id});
            match self.report(agent, body, &key).await {
                Ok(()) => {
                    done.push(i);
                    let last = self
                        .agents
                        .get(agent.as_str())
                        .is_some_and(|r| r["status"] == "wrap_up");
                    if last {
                        let p = profile(&c.kind);
                        let at = now + between(p.after_work.0, p.after_work.1);
                        self.wrap_ups.push((agent.clone(), c.id.clone(), at));
                    }
                }
                Err(Refusal::Revoked) => return Err(Refusal::Revoked),
                Err(Refusal::Other(status, e)) => {
                    tracing::debug!(contact = %c.id, %agent, error = %e, "demo ACD: not ended");
                    // No answer: again in a second (same key). A refusal
                    // (the agent went offline, which ends everything it
                    // held): nothing left to end.
                    let attempts = c.end_attempts + 1;
                    if status.is_some_and(|s| (400..500).contains(&s) && s != 429)
                        || attempts >= END_ATTEMPTS
                    {
                        done.push(i);
                    } else {
                        self.contacts[i].end_attempts = attempts;
                        self.contacts[i].stage = Stage::Talking {
                            agent: agent.clone(),
                            end_at: now + 1000,
                        };
                    }
                }
            }
        }
        for i in done.into_iter().rev() {
            self.contacts.remove(i);
        }
        Ok(())
    }

    async fn wrap_ups(&mut self, now: u64) -> Result<(), Refusal> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wrap_ups)
            .into_iter()
            .partition(|(_, _, at)| *at <= now);
        self.wrap_ups = later;
        for (agent, contact, _) in due {
            let key = format!("{contact}-wrap_up");
            let body = json!({"event": "wrap_up", "interaction_id": contact});
            match self.report(&agent, body, &key).await {
                Ok(()) => {}
                Err(Refusal::Revoked) => return Err(Refusal::Revoked),
                // The hub's deadline came first, the agent went offline…
                Err(Refusal::Other(_, e)) => {
                    tracing::debug!(%agent, error = %e, "demo ACD: wrap-up not ended")
                }
            }
        }
        Ok(())
    }

    async fn offers(&mut self, now: u64) -> Result<(), Refusal> {
        // Oldest first, across channels: the order they arrived in.
        for i in 0..self.contacts.len() {
            let c = self.contacts[i].clone();
            if c.stage != Stage::Waiting {
                continue;
            }
            let Some(agent) = pick(
                &self.agents,
                &self.simulated,
                &self.contacts,
                &c.kind,
                &c.channel,
            ) else {
                continue;
            };
            let offers = c.offers + 1;
            self.contacts[i].offers = offers;
            let key = format!("{}-offered-{offers}", c.id);
            match self.report(&agent, Acd::body("offered", &c), &key).await {
                Ok(()) => {
                    let p = profile(&c.kind);
                    self.contacts[i].stage = Stage::Ringing {
                        agent,
                        answer_at: now + between(p.ring.0, p.ring.1),
                    };
                }
                Err(Refusal::Revoked) => return Err(Refusal::Revoked),
                Err(Refusal::Other(_, e)) => {
                    tracing::debug!(contact = %c.id, %agent, error = %e, "demo ACD: not offered")
                }
            }
        }
        Ok(())
    }
}

/// The agent to offer a contact of `kind` in `channel` to: among the
/// simulated agents no person signed in as, connected to the channel, with
/// a free slot of the kind once the contacts ringing for them are counted
/// (and none of another kind ringing: kinds never mix), the available one
/// who has been so longest; else a busy one with a free slot (more chats).
fn pick(
    agents: &HashMap<String, Value>,
    simulated: &HashSet<String>,
    contacts: &[Contact],
    kind: &str,
    channel: &str,
) -> Option<String> {
    let mut fits: Vec<(bool, u64, &str)> = Vec::new();
    for id in simulated {
        let Some(record) = agents.get(id) else {
            continue;
        };
        if person_present(record, &softphone(id)) {
            continue;
        }
        let connected = record["channels"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["kind"] == kind && c["id"] == channel && c["connected"] == true)
        });
        if !connected {
            continue;
        }
        let ringing: Vec<&str> = contacts
            .iter()
            .filter_map(|c| match &c.stage {
                Stage::Ringing { agent, .. } if agent == id => Some(c.kind.as_str()),
                _ => None,
            })
            .collect();
        let free = record["free_slots"][kind].as_u64().unwrap_or(0);
        if ringing.iter().any(|k| *k != kind) || free <= ringing.len() as u64 {
            continue;
        }
        let status = record["status"].as_str().unwrap_or("offline");
        if status != "available" && status != "busy" {
            continue;
        }
        let since = record["status_since_ms"].as_u64().unwrap_or(0);
        fits.push((status != "available", since, id.as_str()));
    }
    fits.sort();
    fits.first().map(|(_, _, id)| id.to_string())
}

/// A channel's statistics push.
fn stats(channel: &Channel, contacts: &[Contact], now: u64) -> Value {
    let waiting: Vec<u64> = contacts
        .iter()
        .filter(|c| c.waiting() && c.kind == channel.kind && c.channel == channel.id)
        .map(|c| now.saturating_sub(c.arrived_ms) / 1000)
        .collect();
    let t = &channel.today;
    let p = profile(&channel.kind);
    let mut body = json!({
        "waiting": waiting.len(),
        "longest_wait_s": waiting.iter().max().copied().unwrap_or(0),
        "offered": t.offered,
        "answered": t.answered,
        "abandoned": t.abandoned,
        "service_level_s": p.service_level_s,
    });
    let done = t.answered + t.abandoned;
    if done > 0 {
        body["service_level"] = json!(t.in_time as f64 / done as f64);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, status: &str, since: u64, free: Value, channels: Value) -> Value {
        json!({"id": id, "status": status, "status_since_ms": since, "free_slots": free,
               "channels": channels, "version": 1,
               "devices": [{"id": softphone(id), "active": true}]})
    }

    fn contact(id: &str, kind: &str, channel: &str, stage: Stage) -> Contact {
        Contact {
            id: id.into(),
            kind: kind.into(),
            channel: channel.into(),
            arrived_ms: 1_000,
            patience_ms: 60_000,
            stage,
            offers: 0,
            end_attempts: 0,
        }
    }

    #[test]
    fn the_longest_available_connected_simulated_agent_with_a_free_slot_is_picked() {
        let sales = json!([{"kind": "queue", "id": "sales", "connected": true}]);
        let web = json!([{"kind": "chat", "id": "web", "connected": true}]);
        let free = json!({"queue": 1, "chat": 3});
        let mut agents = HashMap::new();
        for (id, status, since, channels) in [
            ("a3", "available", 300, &sales),
            ("a4", "available", 200, &sales),
            ("a5", "paused", 100, &sales),
            ("a6", "available", 100, &web),
            ("a1", "available", 50, &sales),
        ] {
            agents.insert(
                id.into(),
                record(id, status, since, free.clone(), channels.clone()),
            );
        }
        let simulated: HashSet<String> = ["a3", "a4", "a5", "a6"].map(String::from).into();
        // a1 is left to people, a5 paused, a6 not on sales: a4, then a3.
        assert_eq!(
            pick(&agents, &simulated, &[], "queue", "sales").as_deref(),
            Some("a4")
        );
        let ringing = [contact(
            "c1",
            "queue",
            "sales",
            Stage::Ringing {
                agent: "a4".into(),
                answer_at: 0,
            },
        )];
        assert_eq!(
            pick(&agents, &simulated, &ringing, "queue", "sales").as_deref(),
            Some("a3")
        );
        // A person on a4's second device: a4 is theirs.
        agents.get_mut("a4").expect("a4")["devices"] =
            json!([{"id": "a4-softphone", "active": true}, {"id": "web", "active": true}]);
        assert_eq!(
            pick(&agents, &simulated, &[], "queue", "sales").as_deref(),
            Some("a3")
        );
        // Chats: a6 takes up to its free slots, kinds never mix.
        let chat = |n: &str| {
            contact(
                n,
                "chat",
                "web",
                Stage::Ringing {
                    agent: "a6".into(),
                    answer_at: 0,
                },
            )
        };
        assert_eq!(
            pick(
                &agents,
                &simulated,
                &[chat("w1"), chat("w2")],
                "chat",
                "web"
            )
            .as_deref(),
            Some("a6")
        );
        assert_eq!(
            pick(
                &agents,
                &simulated,
                &[chat("w1"), chat("w2"), chat("w3")],
                "chat",
                "web"
            ),
            None
        );
        assert_eq!(pick(&agents, &simulated, &[], "queue", "billing"), None);
    }

    #[test]
    fn statistics_count_ringing_contacts_as_waiting_and_the_service_level_when_known() {
        let channel = Channel {
            kind: "queue".into(),
            id: "sales".into(),
            today: Today::default(),
        };
        let contacts = [
            contact("c1", "queue", "sales", Stage::Waiting),
            contact(
                "c2",
                "queue",
                "sales",
                Stage::Ringing {
                    agent: "a4".into(),
                    answer_at: 0,
                },
            ),
            contact(
                "c3",
                "queue",
                "sales",
                Stage::Talking {
                    agent: "a5".into(),
                    end_at: 0,
                },
            ),
            contact("c4", "queue", "support", Stage::Waiting),
        ];
        let body = stats(&channel, &contacts, 43_000);
        assert_eq!(
            body,
            json!({"waiting": 2, "longest_wait_s": 42, "offered": 0, "answered": 0,
                   "abandoned": 0, "service_level_s": 20})
        );
        let channel = Channel {
            today: Today {
                day: 0,
                offered: 5,
                answered: 3,
                abandoned: 1,
                in_time: 2,
            },
            ..channel
        };
        assert_eq!(stats(&channel, &[], 0)["service_level"], json!(0.5));
        let bounds = crate::domain::queue_stats::Bounds {
            max_count: 1000,
            max_seconds: 3600,
        };
        crate::domain::queue_stats::parse(&stats(&channel, &contacts, 43_000), bounds)
            .expect("the hub takes it");
    }

    #[test]
    fn a_new_day_starts_new_counts() {
        let mut t = Today {
            day: 1,
            offered: 3,
            answered: 2,
            abandoned: 1,
            in_time: 1,
        };
        t.roll(DAY_MS + 5);
        assert_eq!(t.offered, 3);
        t.roll(2 * DAY_MS);
        assert_eq!(
            t,
            Today {
                day: 2,
                ..Today::default()
            }
        );
    }
}
