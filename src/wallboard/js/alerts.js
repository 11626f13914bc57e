// Alerts: per-queue thresholds a supervisor sets — fewer than N available,
// N or more in wrap-up, a pause over its reason's limit, an agent in one
// state longer than T minutes — shown on the queue's card (and, for the
// last two, on the agent's row), and, when the supervisor allows it, as a
// desktop notification with a short sound when an alert starts.
//
// The thresholds are the supervisor's own, kept in this browser under the
// tenant and the user's id (as saved views are). They are checked once a
// second with the channel cards (the hub's counters; the per-agent ones in
// one pass over the agents, only while such a threshold is set) and for
// each row the list draws.

import { tone } from "./tone.js";

const $ = (id) => document.getElementById(id);

/** A rule from untrusted storage: numbers in range, or absent. */
function cleanRule(r) {
  const out = {};
  const num = (v, max) => (typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= max ? v : undefined);
  if (!r || typeof r !== "object") return out;
  if (num(r.min_available, 100000) !== undefined) out.min_available = Math.floor(r.min_available);
  if (num(r.max_wrap_up, 100000) !== undefined) out.max_wrap_up = Math.max(1, Math.floor(r.max_wrap_up));
  if (r.overrun === true) out.overrun = true;
  if (num(r.max_minutes, 1440) !== undefined && r.max_minutes > 0) out.max_minutes = r.max_minutes;
  // Queue statistics from the ACD (PROTOCOL §10.7).
  if (num(r.max_waiting, 100000) !== undefined) out.max_waiting = Math.max(1, Math.floor(r.max_waiting));
  if (num(r.max_wait_s, 86400) !== undefined) out.max_wait_s = Math.max(1, Math.floor(r.max_wait_s));
  return out;
}

export class Alerts {
  constructor({ client, names, onChange }) {
    this.client = client;
    this.names = names;
    this.onChange = onChange;
    this.key = null;
    /** channel key -> rule */
    this.rules = new Map();
    /** channel key -> the alert texts active now (for the edge: notify when one starts) */
    this.active = new Map();
    this.notify = false;
    this.sounds = 0;
    this.notified = 0;
    $("alert-channel").addEventListener("change", () => this.fillForm());
    $("alertform").addEventListener("submit", (ev) => { ev.preventDefault(); this.save(); });
    $("alert-clear").addEventListener("click", () => this.clear());
    $("alert-notify").addEventListener("change", () => this.setNotify($("alert-notify").checked));
  }

  start(tenant, user) {
    this.key = `presence-hub-wallboard-alerts:${tenant}:${user}`;
    let stored = null;
    try { stored = JSON.parse(localStorage.getItem(this.key) || "null"); } catch { /* none */ }
    this.rules = new Map(Object.entries(stored?.rules ?? {}).map(([k, r]) => [k, cleanRule(r)]).filter(([, r]) => Object.keys(r).length));
    this.notify = stored?.notify === true && typeof Notification !== "undefined" && Notification.permission === "granted";
    $("alert-notify").checked = this.notify;
    this.syncChannels();
    this.list();
    this.onChange();
  }

  store() {
    if (!this.key) return;
    try { localStorage.setItem(this.key, JSON.stringify({ rules: Object.fromEntries(this.rules), notify: this.notify })); } catch { /* the rules last the page */ }
  }

  /** The queue picker follows the scope's channels, keeping the choice. */
  syncChannels() {
    const sel = $("alert-channel");
    const keys = [...this.client.channels.keys()].join("|");
    if (sel.dataset.keys === keys) return;
    sel.dataset.keys = keys;
    const chosen = sel.value;
    sel.replaceChildren(...[...this.client.channels.entries()].map(([k, c]) => new Option(c.name, k)));
    if (this.client.channels.has(chosen)) sel.value = chosen;
    this.fillForm();
  }

  fillForm() {
    const r = this.rules.get($("alert-channel").value) ?? {};
    $("alert-min-available").value = r.min_available ?? "";
    $("alert-max-wrap").value = r.max_wrap_up ?? "";
    $("alert-overrun").checked = !!r.overrun;
    $("alert-max-minutes").value = r.max_minutes ?? "";
    $("alert-max-waiting").value = r.max_waiting ?? "";
    $("alert-max-wait").value = r.max_wait_s ?? "";
  }

  save() {
    const key = $("alert-channel").value;
    if (!key) return;
    const num = (id) => ($(id).value.trim() === "" ? undefined : Number($(id).value));
    const rule = cleanRule({ min_available: num("alert-min-available"), max_wrap_up: num("alert-max-wrap"), overrun: $("alert-overrun").checked, max_minutes: num("alert-max-minutes"), max_waiting: num("alert-max-waiting"), max_wait_s: num("alert-max-wait") });
    if (Object.keys(rule).length) this.rules.set(key, rule);
    else this.rules.delete(key);
    this.store();
    this.list();
    $("alert-note").textContent = Object.keys(rule).length ? `Alerts for ${this.names.channel(this.client.channels.get(key))} saved.` : "No alert for this queue.";
    this.onChange();
  }

  clear() {
    this.rules.delete($("alert-channel").value);
    this.store();
    this.fillForm();
    this.list();
    $("alert-note").textContent = "Alerts for this queue removed.";
    this.onChange();
  }

  list() {
    $("alert-rules").replaceChildren(...[...this.rules].map(([k, r]) => {
      const li = document.createElement("li");
      li.textContent = `${this.names.channel(this.client.channels.get(k) ?? { kind: k.split(":")[0], id: k.slice(k.indexOf(":") + 1) })}: ${describe(r)}`;
      return li;
    }));
  }

  async setNotify(on) {
    if (on && typeof Notification !== "undefined" && Notification.permission !== "granted") {
      // Asked at the supervisor's click (browsers ask only on a gesture).
      const answer = await Notification.requestPermission().catch(() => "denied");
      on = answer === "granted";
      if (!on) $("alert-note").textContent = "The browser did not allow notifications: alerts show on the page only.";
    }
    this.notify = on && typeof Notification !== "undefined";
    $("alert-notify").checked = this.notify;
    this.store();
  }

  /** Whether `rec` is over its channels' "longer than T" or "pause over" rule. */
  rowAlert(rec, now) {
    if (!this.rules.size || rec.status === "offline") return "";
    for (const c of rec.channels) {
      if (!c.connected) continue;
      const r = this.rules.get(`${c.kind}:${c.id}`);
      if (!r) continue;
      if (r.overrun && rec.pause_overrun_since_ms) return "pause over its limit";
      if (r.max_minutes && rec.status_since_ms && now - rec.status_since_ms > r.max_minutes * 60000) return `in state over ${r.max_minutes} min`;
    }
    return "";
  }

  /**
   * The alerts of each channel now, from its figures (`stats`, main.js's
   * cards) and, for the per-agent rules, one pass over the agents.
   */
  evaluate(stats, now) {
    const out = new Map();
    if (!this.rules.size) { this.active = out; return out; }
    const perAgent = [...this.rules.values()].some((r) => r.overrun || r.max_minutes);
    const counts = new Map();
    if (perAgent) {
      for (const rec of this.client.agents.values()) {
        if (rec.status === "offline") continue;
        for (const c of rec.channels) {
          const key = `${c.kind}:${c.id}`;
          const r = c.connected && this.rules.get(key);
          if (!r) continue;
          const e = counts.get(key) ?? { over: 0, long: 0 };
          if (r.overrun && rec.pause_overrun_since_ms) e.over++;
          if (r.max_minutes && rec.status_since_ms && now - rec.status_since_ms > r.max_minutes * 60000) e.long++;
          counts.set(key, e);
        }
      }
    }
    for (const s of stats) {
      const r = this.rules.get(s.key);
      if (!r) continue;
      const found = [];
      if (r.min_available !== undefined && s.counts.available < r.min_available) found.push({ kind: "available", text: `${s.counts.available} available (fewer than ${r.min_available})` });
      if (r.max_wrap_up !== undefined && s.counts.wrap_up >= r.max_wrap_up) found.push({ kind: "wrap_up", text: `${s.counts.wrap_up} in wrap-up (${r.max_wrap_up} or more)` });
      const e = counts.get(s.key);
      if (r.overrun && e?.over) found.push({ kind: "overrun", text: `${e.over} pause${e.over > 1 ? "s" : ""} over the limit` });
      if (r.max_minutes && e?.long) found.push({ kind: "long", text: `${e.long} in one state over ${r.max_minutes} min` });
      const q = this.client.queueStats?.get(s.key)?.stats;
      if (q && r.max_waiting !== undefined && q.waiting >= r.max_waiting) found.push({ kind: "waiting", text: `${q.waiting} waiting (${r.max_waiting} or more)` });
      if (q && r.max_wait_s !== undefined && q.longest_wait_s >= r.max_wait_s) found.push({ kind: "wait", text: `longest wait ${q.longest_wait_s}s (${r.max_wait_s}s or more)` });
      if (found.length) out.set(s.key, found);
    }
    // An alert that was not active at the last check is announced, once.
    for (const [key, found] of out) {
      const before = this.active.get(key) ?? [];
      const fresh = found.filter((a) => !before.some((b) => b.kind === a.kind));
      if (fresh.length) this.alarm(key, fresh.map((a) => a.text));
    }
    this.active = out;
    return out;
  }

  alarm(key, texts) {
    const name = this.client.channels.get(key)?.name ?? key;
    $("alert-live").textContent = `Alert on ${name}: ${texts.join("; ")}.`;
    if (!this.notify || typeof Notification === "undefined" || Notification.permission !== "granted") return;
    try {
      new Notification(`Alert: ${name}`, { body: texts.join("; "), tag: `presence-hub-${key}` });
      this.notified++;
    } catch { /* notifications unavailable: the card shows it */ }
    this.beep();
  }

  /** A short tone (tone.js); without audio the notification and the card remain. */
  beep() {
    if (tone(880, 0.18)) this.sounds++;
  }
}

function describe(r) {
  const parts = [];
  if (r.min_available !== undefined) parts.push(`fewer than ${r.min_available} available`);
  if (r.max_wrap_up !== undefined) parts.push(`${r.max_wrap_up}+ in wrap-up`);
  if (r.overrun) parts.push("a pause over its limit");
  if (r.max_minutes) parts.push(`an agent in one state over ${r.max_minutes} min`);
  if (r.max_waiting !== undefined) parts.push(`${r.max_waiting}+ waiting`);
  if (r.max_wait_s !== undefined) parts.push(`a wait of ${r.max_wait_s}s or more`);
  return parts.join(", ");
}
