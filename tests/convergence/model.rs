//! What the run records, and the rules a client may use to build its view
//! (PROTOCOL.md §5.1, §5.1.1, §5.2, §4.1) — nothing else: the invariants
//! compare that view with the hub's own answer.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a request ended, as far as a client can tell.
#[derive(Clone, Debug)]
pub enum Outcome {
    Pending,
    /// `ok`, with the version of the record in the reply.
    Ok(u64),
    /// An error reply: code and message.
    Refused(String, String),
    /// No reply: the connection ended first (the change may or may not be
    /// applied — the client cannot know).
    Lost,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub who: String,
    pub agent: String,
    pub what: String,
    /// A string only this request carries into a record (a unique pause
    /// reason, a unique interaction id), to find it later.
    pub marker: Option<String>,
    pub at_ms: u128,
    pub outcome: Outcome,
    /// When the reply came (Unix ms; `None`: no reply yet).
    pub replied_unix_ms: Option<u128>,
}

impl Request {
    /// Whether the reply says the change was not made (PROTOCOL.md §3.1:
    /// every error but `outcome_unknown` guarantees nothing was applied, now
    /// or later — `--redis-wait-replicas`'s shortfall included, §9.1).
    pub fn refused(&self) -> Option<(&str, &str)> {
        match &self.outcome {
            Outcome::Refused(code, msg) if code != "outcome_unknown" => Some((code, msg)),
            _ => None,
        }
    }
}

/// One of the integration's requests sent, on a WebSocket of its own, in
/// more fragments than `--api-ws-rate-limit-per-sec` leaves room for, its
/// last frame once the budget was back (`actors::fragmented_answered`).
#[derive(Clone, Debug)]
pub struct Fragmented {
    /// Index into `requests` (its marker: the interaction it would start).
    pub request: usize,
    /// The request's `id`.
    pub id: String,
    /// Frames of the message before the last.
    pub early: usize,
    /// The hub's answer, and how long it took to read the early frames
    /// (`wire::FragmentedReply`); `None`: the connection ended or nothing
    /// came in time.
    pub reply: Option<(Value, Duration)>,
}

impl Fragmented {
    /// Whether the hub certainly refused one of the early frames: it read
    /// them all faster than its budget of `rate` frames a second could let
    /// them through (a burst of one second's worth, then the refill over
    /// the time it took). `false` when it took longer (a node frozen
    /// between two of them, say: the budget may have been back for each).
    pub fn over_budget(&self, rate: u32) -> bool {
        self.reply.as_ref().is_some_and(|(_, read_within)| {
            let most = f64::from(rate) * (1.0 + read_within.as_secs_f64());
            (self.early as f64) > most.ceil()
        })
    }
}

/// One resume (§5.1.1): what was asked and what the resumed snapshot
/// answered, and the highest version of every agent the connection got in
/// deltas after it.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    pub sup: String,
    pub since: u64,
    pub seq: u64,
    pub agents: HashMap<String, u64>,
    pub agent_ids: HashSet<String>,
    pub later: HashMap<String, u64>,
    pub epoch: Option<String>,
}

/// Everything the actors saw, shared.
pub struct Log {
    pub t0: Instant,
    /// Wall clock at the start (Unix ms), to match history `at_ms`.
    pub t0_unix_ms: u128,
    pub schedule: Vec<String>,
    pub requests: Vec<Request>,
    /// Every record version seen anywhere (snapshots, deltas, states,
    /// replies): agent → version → (epoch if known, record).
    pub seen: HashMap<String, BTreeMap<u64, Value>>,
    /// Markers found in any record ever seen.
    pub markers_seen: HashMap<String, String>,
    /// Same version, other content, within one epoch.
    pub conflicts: Vec<String>,
    /// Invariant 2 violations, in the order found.
    pub ordering: Vec<String>,
    pub deltas_checked: u64,
    pub faults: u64,
    pub client_faults: u64,
    pub last_delta: Instant,
    /// When a node was killed or frozen near its TTL: node, from, to (Unix
    /// ms). Its agents may legitimately go offline then.
    pub node_trouble: Vec<(usize, u128, u128)>,
    /// When an agent device was not connected: (agent, device), from, to
    /// (Unix ms; `None`: not back yet).
    pub device_gaps: Vec<((String, String), u128, Option<u128>)>,
    /// Agent devices connected now.
    pub connected_devices: HashSet<(String, String)>,
    /// The integration's pipelined pairs (`answered`, then `ended` of the
    /// same interaction, sent together on one WebSocket): indexes into
    /// `requests`.
    pub pipelines: Vec<(usize, usize)>,
    /// The integration's requests sent in more fragments than its
    /// WebSocket's frame budget (`actors::integration`, invariant 4).
    pub api_fragmented: Vec<Fragmented>,
    /// History entries read (agent → version → entry), merged over reads.
    pub history: HashMap<String, BTreeMap<u64, Value>>,
}

pub type Shared = Arc<Mutex<Log>>;

pub fn now_unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
}

/// The strings a record carries that a request may have put there.
pub fn markers(record: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str() {
            out.push(s.to_string());
        }
    };
    push(&record["pause_reason"]);
    push(&record["name"]); // a scratch agent's name (`actors::admin`)
    push(&record["pending_pause"]["reason"]);
    push(&record["paused_when_offline"]["reason"]);
    push(&record["interaction"]["id"]);
    if let Some(list) = record["interactions"].as_array() {
        for i in list {
            push(&i["id"]);
        }
    }
    out
}

impl Log {
    pub fn new() -> Shared {
        Arc::new(Mutex::new(Log {
            t0: Instant::now(),
            t0_unix_ms: now_unix_ms(),
            schedule: Vec::new(),
            requests: Vec::new(),
            seen: HashMap::new(),
            markers_seen: HashMap::new(),
            conflicts: Vec::new(),
            ordering: Vec::new(),
            deltas_checked: 0,
            faults: 0,
            client_faults: 0,
            last_delta: Instant::now(),
            node_trouble: Vec::new(),
            device_gaps: Vec::new(),
            connected_devices: HashSet::new(),
            pipelines: Vec::new(),
            api_fragmented: Vec::new(),
            history: HashMap::new(),
        }))
    }

    pub fn ms(&self) -> u128 {
        self.t0.elapsed().as_millis()
    }

    /// A line of the schedule, timestamped from the start of the run.
    pub fn event(&mut self, what: impl AsRef<str>) {
        let line = format!("[{:>7} ms] {}", self.ms(), what.as_ref());
        self.schedule.push(line);
    }

    /// Notes a record seen anywhere (`epoch`: the subscription's, when the
    /// record came from one).
    pub fn saw(&mut self, record: &Value, epoch: Option<&str>, source: &str) {
        let (Some(id), Some(version)) = (record["id"].as_str(), record["version"].as_u64()) else {
            return;
        };
        for m in markers(record) {
            self.markers_seen
                .entry(m)
                .or_insert_with(|| format!("{id} v{version} via {source}"));
        }
        let mut tagged = record.clone();
        tagged["_epoch"] = epoch.map(Value::from).unwrap_or(Value::Null);
        let versions = self.seen.entry(id.to_string()).or_default();
        match versions.get(&version) {
            None => {
                versions.insert(version, tagged);
            }
            Some(old) => {
                let same_epoch = old["_epoch"].is_null()
                    || tagged["_epoch"].is_null()
                    || old["_epoch"] == tagged["_epoch"];
                if same_epoch && strip(old) != strip(&tagged) && self.conflicts.len() < 20 {
                    self.conflicts.push(format!(
                        "{id} v{version}: two contents for one version ({source}): {} vs {}",
                        strip(old),
                        strip(&tagged)
                    ));
                }
            }
        }
    }
}

fn strip(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("_epoch");
    }
    v
}

/// A supervisor's view, built by the documented rules only.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub records: BTreeMap<String, Value>,
    /// What `since_seq` a resume sends: the snapshot's seq or the highest
    /// version of an agent/agent_removed delta applied since.
    pub seq: u64,
    pub epoch: Option<String>,
    pub subscribed: bool,
}

impl View {
    /// A full or resumed snapshot (§5.1, §5.1.1).
    pub fn snapshot(&mut self, snap: &Value) {
        let agents = snap["agents"].as_array().cloned().unwrap_or_default();
        if snap["resumed"] == true {
            for r in agents {
                self.put(r);
            }
            let ids: HashSet<&str> = snap["agent_ids"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            self.records.retain(|id, _| ids.contains(id.as_str()));
        } else {
            self.records = agents
                .into_iter()
                .filter_map(|r| Some((r["id"].as_str()?.to_string(), r)))
                .collect();
        }
        self.seq = snap["seq"].as_u64().unwrap_or(0);
        self.epoch = snap["epoch"].as_str().map(str::to_string);
        self.subscribed = true;
    }

    /// The version rule (§4.1): never replace a record with an older one.
    fn put(&mut self, r: Value) {
        let Some(id) = r["id"].as_str().map(str::to_string) else {
            return;
        };
        let newer = self
            .records
            .get(&id)
            .is_none_or(|old| old["version"].as_u64() < r["version"].as_u64());
        if newer {
            self.records.insert(id, r);
        }
    }

    /// An `agent` delta.
    pub fn agent(&mut self, r: &Value) {
        self.seq = self.seq.max(r["version"].as_u64().unwrap_or(0));
        self.put(r.clone());
    }

    /// An `agent_removed` delta: gone unless the view holds a newer record.
    pub fn removed(&mut self, id: &str, version: u64) {
        self.seq = self.seq.max(version);
        if self
            .records
            .get(id)
            .is_some_and(|r| r["version"].as_u64().unwrap_or(0) < version)
        {
            self.records.remove(id);
        }
    }
}

/// Records of a snapshot by id.
pub fn by_id(snap: &Value) -> BTreeMap<String, Value> {
    snap["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| Some((r["id"].as_str()?.to_string(), r.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// The fields in which two records differ.
pub fn diff(expected: &Value, got: &Value) -> Vec<String> {
    let mut fields = Vec::new();
    if let (Some(e), Some(g)) = (expected.as_object(), got.as_object()) {
        for k in e
            .keys()
            .chain(g.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if e.get(k) != g.get(k) {
                fields.push(k.clone());
            }
        }
    }
    fields
}

/// A record in a few words: version, presence, status, pause reason.
pub fn brief(r: &Value) -> String {
    let mut s = format!(
        "v{} {}/{}",
        r["version"],
        r["presence"].as_str().unwrap_or("?"),
        r["status"].as_str().unwrap_or("?")
    );
    if let Some(reason) = r["pause_reason"].as_str() {
        s.push_str(&format!(" {reason:?}"));
    }
    s
}

/// Differences between a view and a fresh snapshot (expected), first
/// `limit` of them.
pub fn compare(
    expected: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    limit: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let ids: std::collections::BTreeSet<&String> = expected.keys().chain(got.keys()).collect();
    for id in ids {
        let line = match (expected.get(id), got.get(id)) {
            (Some(e), Some(g)) if e != g => format!(
                "{id}: expected {} got {} (fields differing: {})",
                brief(e),
                brief(g),
                diff(e, g).join(", ")
            ),
            (Some(e), None) => format!("{id}: expected {}, missing from the view", brief(e)),
            (None, Some(g)) => format!(
                "{id}: not in scope any more, the view still has {}",
                brief(g)
            ),
            _ => continue,
        };
        out.push(line);
        if out.len() >= limit {
            break;
        }
    }
    out
}
