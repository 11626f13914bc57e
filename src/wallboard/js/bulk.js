// Bulk actions: a selection of agents (checkboxes on the rows, or every
// agent the filters show) and one action for all of them — pause (with a
// reason), unpause, connect or disconnect a channel, sign out — with one
// line per agent saying what the hub answered, and a summary that counts
// what was done, refused and not sent. Nothing is half-done silently: a
// refusal is listed with the hub's words, and a run stopped (or an agent
// that left the scope) is listed as not sent.
//
// The hub limits each connection to `--rate-limit-per-sec` messages (50 by
// default, bursts of one second's worth; past it the connection is closed):
// commands go out at most BULK_PER_SEC a second, a few at a time, leaving
// room for the page's other requests. Each is the client library's
// `command`, sent under an idempotency key (repeated under it if the
// connection drops before the answer).

import { STATUS_LABEL } from "./format.js";

const $ = (id) => document.getElementById(id);
const BULK_PER_SEC = 20;
const IN_FLIGHT = 4;

const ACTIONS = {
  pause: { label: "Pause", verb: "Pausing" },
  unpause: { label: "Unpause", verb: "Unpausing" },
  connect: { label: "Connect to a channel", verb: "Connecting" },
  disconnect: { label: "Disconnect from a channel", verb: "Disconnecting" },
  sign_out: { label: "Sign out", verb: "Signing out" },
};

export class Bulk {
  constructor({ client, names, store, onChange }) {
    this.client = client;
    this.names = names;
    this.store = store;
    this.onChange = onChange;
    /** The selected agent ids. */
    this.selected = new Set();
    this.running = false;
    this.stopped = false;
    this.refused = [];
    $("select-shown").addEventListener("click", () => this.selectShown());
    $("bulk-clear").addEventListener("click", () => this.set([]));
    $("bulk-refused").addEventListener("click", () => this.set(this.refused));
    $("bulk-action").addEventListener("change", () => this.refreshForm());
    $("bulk-apply").addEventListener("click", () => this.apply());
    $("bulk-stop").addEventListener("click", () => { this.stopped = true; });
    $("bulk-confirm-yes").addEventListener("click", () => { $("bulk-confirm").hidden = true; this.run(); });
    $("bulk-confirm-no").addEventListener("click", () => { $("bulk-confirm").hidden = true; $("bulk-apply").focus(); });
    this.refreshForm();
  }

  has(id) { return this.selected.has(id); }

  toggle(id, on = !this.selected.has(id)) {
    if (on) this.selected.add(id);
    else this.selected.delete(id);
    this.changed();
  }

  set(ids) {
    this.selected = new Set(ids);
    this.changed();
  }

  /** Every agent the filters show now (the supervisor's "a filtered list"). */
  selectShown() {
    for (const id of this.store.rows) this.selected.add(id);
    this.changed();
  }

  changed() {
    const n = this.selected.size;
    $("bulk").hidden = n === 0 && !$("bulk-results").children.length;
    $("bulk-count").textContent = n === 1 ? "1 agent selected" : `${n} agents selected`;
    $("bulk-apply").textContent = `Apply to ${n}`;
    this.refreshForm();
    this.onChange();
  }

  /** The reason and channel pickers follow the action; kept as chosen otherwise. */
  refreshForm() {
    const action = $("bulk-action").value;
    const codes = (this.client.settings || {}).pause_reasons || [];
    const reason = $("bulk-reason");
    const keys = codes.map((r) => r.code).join("|");
    if (reason.dataset.codes !== keys) {
      reason.dataset.codes = keys;
      const chosen = reason.value;
      reason.replaceChildren(...codes.map((r) => new Option(r.label || r.code, r.code)));
      if (codes.some((r) => r.code === chosen)) reason.value = chosen;
    }
    reason.hidden = action !== "pause" || codes.length === 0;
    $("bulk-reason-text").hidden = action !== "pause" || codes.length > 0;
    const channel = $("bulk-channel");
    const channels = [...this.client.channels.entries()];
    const ckeys = channels.map(([k]) => k).join("|");
    if (channel.dataset.keys !== ckeys) {
      channel.dataset.keys = ckeys;
      const chosen = channel.value;
      channel.replaceChildren(...channels.map(([k, c]) => new Option(c.name, k)));
      if (this.client.channels.has(chosen)) channel.value = chosen;
    }
    channel.hidden = action !== "connect" && action !== "disconnect";
    const why = this.running ? "a bulk action is running" : this.selected.size === 0 ? "select agents first" : "";
    const apply = $("bulk-apply");
    if (why) apply.setAttribute("aria-disabled", "true");
    else apply.removeAttribute("aria-disabled");
    apply.title = why;
  }

  /** The parameters of the chosen action, or null with the form marked. */
  params() {
    const action = $("bulk-action").value;
    if (action === "pause") {
      const codes = !$("bulk-reason").hidden;
      const reason = codes ? $("bulk-reason").value : $("bulk-reason-text").value.trim();
      if (!reason) { this.summary("Type a reason for the pause.", false); $("bulk-reason-text").focus(); return null; }
      return { reason };
    }
    if (action === "connect" || action === "disconnect") {
      const key = $("bulk-channel").value;
      const i = key.indexOf(":");
      if (i < 0) { this.summary("Choose a channel.", false); return null; }
      return { channel: { kind: key.slice(0, i), id: key.slice(i + 1) } };
    }
    return {};
  }

  summary(text, ok = true) {
    const el = $("bulk-summary");
    el.textContent = text;
    el.className = ok ? "result ok" : "result bad";
  }

  apply() {
    if (this.running || this.selected.size === 0 || this.params() === null) return;
    if ($("bulk-action").value === "sign_out") {
      // Signing agents out ends their work on every device: asked first.
      $("bulk-confirm-text").textContent = `Sign ${this.selected.size} agent${this.selected.size > 1 ? "s" : ""} out of every device?`;
      $("bulk-confirm").hidden = false;
      $("bulk-confirm-no").focus();
      return;
    }
    this.run();
  }

  /** What the hub's answer means for one agent, in words. */
  done(action, params, rec) {
    const a = rec?.agent;
    if (action === "pause") {
      const label = this.names.reason(params.reason);
      return a?.status !== "paused" && a?.pending_pause ? `pause (${label}) pending: busy` : `paused (${label})`;
    }
    if (action === "unpause") return a?.status === "busy" ? "pending pause withdrawn" : `unpaused (${STATUS_LABEL[a?.status] || "available"})`;
    if (action === "connect") return `connected to ${this.names.channel(params.channel)}`;
    if (action === "disconnect") return `disconnected from ${this.names.channel(params.channel)}`;
    return "signed out";
  }

  async run() {
    const params = this.params();
    if (params === null) return;
    const action = $("bulk-action").value;
    const ids = [...this.selected];
    const what = `${ACTIONS[action].label}${params.reason ? ` (${this.names.reason(params.reason)})` : ""}${params.channel ? ` ${this.names.channel(params.channel)}` : ""}`;
    this.running = true;
    this.stopped = false;
    this.refused = [];
    $("bulk-stop").hidden = false;
    $("bulk-refused").hidden = true;
    this.refreshForm();
    const list = $("bulk-results");
    const lines = new Map(ids.map((id) => {
      const li = document.createElement("li");
      li.dataset.agent = id;
      li.className = "pending";
      li.textContent = `${this.names.person(id)}: waiting`;
      return [id, li];
    }));
    list.replaceChildren(...lines.values());
    let ok = 0, bad = 0, next = 0, nextAt = 0;
    const progress = () => this.summary(`${ACTIONS[action].verb} ${ids.length}… ${ok} done, ${bad} refused`);
    progress();
    const line = (id, text, cls) => { const li = lines.get(id); li.textContent = `${this.names.person(id)}: ${text}`; li.className = cls; };
    const worker = async () => {
      while (next < ids.length && !this.stopped) {
        const id = ids[next++];
        if (!this.client.agents.has(id)) { line(id, "not sent: no longer in your scope", "bad"); bad++; this.refused.push(id); continue; }
        // At most BULK_PER_SEC commands a second (the hub's rate limit).
        const now = Date.now();
        const at = Math.max(now, nextAt);
        nextAt = at + 1000 / BULK_PER_SEC;
        if (at > now) await new Promise((r) => setTimeout(r, at - now));
        line(id, "sending…", "pending");
        try {
          const r = await this.client.command(action, id, params);
          line(id, this.done(action, params, r), "ok");
          ok++;
        } catch (e) {
          line(id, `refused (${e.code}) ${e.message}`, "bad");
          bad++;
          this.refused.push(id);
        }
        progress();
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    let unsent = 0;
    for (const id of ids.slice(next)) { line(id, "not sent (stopped)", "bad"); unsent++; this.refused.push(id); }
    this.running = false;
    $("bulk-stop").hidden = true;
    $("bulk-refused").hidden = this.refused.length === 0;
    this.summary(`${what} of ${ids.length} agent${ids.length > 1 ? "s" : ""}: ${ok} done, ${bad} refused${unsent ? `, ${unsent} not sent (stopped)` : ""}.`, bad + unsent === 0);
    this.refreshForm();
  }
}
