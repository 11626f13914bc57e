// The connection to the hub: the `SupervisorClient` interface of the JS
// client library (presence-hub-client, `clients/js/`), implemented here until
// the page can import the library from `/client/presence-hub-client.js` with a
// one-line change in main.js.
//
// It keeps the live records (`agents`, "keep the higher version"), channels and
// settings, re-subscribes after a reconnect with `since_seq` so the hub can send
// only what changed (PROTOCOL.md, resume), and reconnects with exponential
// backoff and jitter. Every message is applied as it arrives (cheap: a Map
// set); rendering is the page's business, once per frame.

export class HubError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const FATAL = new Map([
  [4000, "the hub refused the sign-in message"],
  [4003, "not authorized: the token is invalid or expired"],
  [4009, "this wallboard was opened elsewhere"],
  [4010, "signed out"],
]);

class Emitter {
  constructor() { this.handlers = new Map(); }
  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name)?.delete(fn);
  }
  emit(name, value) {
    const set = this.handlers.get(name);
    if (set) for (const fn of set) fn(value);
  }
}

export class SupervisorClient extends Emitter {
  constructor({ url, token, role = "supervisor" } = {}) {
    super();
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
    this.token = token;
    this.role = role;
    this.agents = new Map();
    this.channels = new Map();
    this.settings = {};
    this.seq = null;
    this.epoch = null;
    this.welcome = null;
    this.scope = null;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.backoff = 500;
    this.retryTimer = null;
    this.beat = null;
    this.stopped = true;
    this.drainWait = null;
  }

  start() {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      const offs = [
        this.on("welcome", () => { offs.forEach((f) => f()); resolve(); }),
        this.on("status", (s) => {
          if (s.state === "stopped") { offs.forEach((f) => f()); reject(new HubError(String(s.reason?.code ?? "stopped"), s.reason?.message || "stopped")); }
        }),
      ];
      this.connect();
    });
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.beat);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.failPending();
    this.emit("status", { state: "stopped" });
  }

  async token_() {
    return typeof this.token === "function" ? await this.token() : this.token;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    this.emit("status", { state: "connecting" });
    let token;
    try {
      token = await this.token_();
    } catch (e) {
      return this.retry({ code: "token", message: String(e?.message || e) });
    }
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token, role: this.role }));
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      this.onMessage(m);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.beat);
      this.failPending();
      if (this.stopped) return;
      const reason = { code: ev.code, message: ev.reason || FATAL.get(ev.code) || "connection lost" };
      if (FATAL.has(ev.code)) {
        this.stopped = true;
        this.emit("status", { state: "stopped", reason });
        return;
      }
      this.retry(reason);
    };
  }

  retry(reason) {
    // A draining node says how long to wait; otherwise exponential backoff with jitter.
    const wait = this.drainWait ?? Math.round(this.backoff * (0.5 + Math.random()));
    this.drainWait = null;
    this.backoff = Math.min(this.backoff * 2, 15000);
    this.emit("status", { state: "reconnecting", retryInMs: wait, reason });
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  failPending() {
    for (const { reject } of this.pending.values()) reject(new HubError("disconnected", "the connection dropped before the reply"));
    this.pending.clear();
  }

  onMessage(m) {
    switch (m.type) {
      case "welcome":
        this.backoff = 500;
        this.welcome = m;
        if (m.settings) this.settings = m.settings;
        clearInterval(this.beat);
        this.beat = setInterval(() => this.send({ type: "heartbeat" }), Math.max(1000, m.heartbeat_interval_ms || 10000));
        this.emit("status", { state: "live" });
        this.emit("welcome", m);
        if (this.scope) this.resubscribe();
        break;
      case "snapshot": this.applySnapshot(m); break;
      case "agent": {
        const rec = m.agent;
        const old = this.agents.get(rec.id);
        if (!old || old.version < rec.version) {
          this.agents.set(rec.id, rec);
          this.bump(rec.version);
          this.emit("agent", rec);
        }
        break;
      }
      case "agent_removed":
        this.bump(m.version);
        if (this.agents.delete(m.agent_id)) this.emit("agent_removed", m.agent_id);
        break;
      case "channel":
        this.channels.set(`${m.channel.kind}:${m.channel.id}`, m.channel);
        this.emit("channel", m.channel);
        break;
      case "settings":
        this.bump(m.seq);
        this.settings = m.settings;
        this.emit("settings", m.settings);
        break;
      case "draining":
        this.drainWait = m.reconnect_after_ms;
        this.emit("draining", m);
        break;
      case "reply": {
        const p = this.pending.get(m.id);
        if (!p) break;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.result);
        else p.reject(new HubError(m.error?.code || "error", m.error?.message || "refused"));
        break;
      }
      case "error": this.emit("error", new HubError(m.error?.code || "error", m.error?.message || "")); break;
    }
  }

  bump(version) {
    if (typeof version === "number" && (this.seq === null || version > this.seq)) this.seq = version;
  }

  applySnapshot(m) {
    if (m.resumed) {
      // Only the records that changed since `since_seq`, and every id in scope.
      const keep = new Set(m.agent_ids || []);
      for (const id of [...this.agents.keys()]) if (!keep.has(id)) this.agents.delete(id);
      for (const rec of m.agents) {
        const old = this.agents.get(rec.id);
        if (!old || old.version < rec.version) this.agents.set(rec.id, rec);
      }
    } else {
      this.agents = new Map(m.agents.map((a) => [a.id, a]));
    }
    const channels = new Map();
    for (const c of m.channels || []) channels.set(`${c.kind}:${c.id}`, c);
    this.channels = channels;
    if (m.settings) this.settings = m.settings;
    this.seq = m.seq;
    this.epoch = m.epoch ?? null;
    this.emit("snapshot", { resumed: !!m.resumed });
  }

  send(body) {
    if (this.ws && this.ws.readyState === 1) { this.ws.send(JSON.stringify(body)); return true; }
    return false;
  }

  request(body) {
    const id = `w${this.nextId++}`;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...body, id })) return reject(new HubError("disconnected", "not connected: reconnecting"));
      this.pending.set(id, { resolve, reject });
    });
  }

  /** A subscribe, with what resume needs (PROTOCOL.md §5.1.1) when there is a seq to resume from. */
  subscribeBody(scope) {
    const body = { type: "subscribe", scope };
    if (this.seq !== null) {
      body.since_seq = this.seq;
      if (this.epoch !== null) body.epoch = this.epoch;
    }
    return body;
  }

  resubscribe() {
    this.request(this.subscribeBody(this.scope)).catch((e) => this.emit("error", e));
  }

  async subscribe(scope) {
    const same = this.scope && JSON.stringify(this.scope) === JSON.stringify(scope);
    if (!same) { this.seq = null; this.epoch = null; }
    this.scope = scope;
    return this.request(this.subscribeBody(scope));
  }

  search(query, { role, limit } = {}) {
    const body = { type: "search", query };
    if (role) body.role = role;
    if (limit) body.limit = limit;
    return this.request(body);
  }

  history(agentId, { sinceMs, limit } = {}) {
    const body = { type: "history", agent_id: agentId };
    if (sinceMs !== undefined) body.since_ms = sinceMs;
    if (limit) body.limit = limit;
    return this.request(body);
  }

  command(action, agentId, params = {}) {
    const body = { type: "command", action, agent_id: agentId };
    for (const k of ["reason", "channel", "mode"]) if (params[k] !== undefined) body[k] = params[k];
    return this.request(body);
  }

  updateSettings(partial) { return this.request({ type: "update_settings", settings: partial }); }
  setUnassignedAccess(agentId, allowed) { return this.request({ type: "set_unassigned_access", agent_id: agentId, allowed }); }
  assign(agentId, channel) { return this.request({ type: "assign", agent_id: agentId, channel }); }
  unassign(agentId, channel) { return this.request({ type: "unassign", agent_id: agentId, channel }); }
}
