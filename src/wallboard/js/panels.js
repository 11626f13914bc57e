// One agent's actions in a side panel opened on demand, and the search.
//
// The panel is built once; an update of its agent rewrites only the read-only
// facts and the enabled state of the buttons, never a form, a select or the
// focus. Every action names the agent (and the channel) it acts on, and the
// agent is the one the panel was opened for, whatever the list does under it.
// The result of an action is shown in the panel, next to the button.
//
// Focus stays where the supervisor put it. A button that cannot act now is
// marked `aria-disabled` (with the reason as its title), not `disabled`: a
// disabled button drops the focus to the page, and an action that makes its
// own button unusable (Unpause, once the agent is available) would throw a
// keyboard user out of the panel. The pause and sign-out forms give the
// focus back to the button that opened them when they close.

import { STATUS_LABEL, channelKey, clock, esc, level, since, statusBy } from "./format.js";

const $ = (id) => document.getElementById(id);

// Refusals that only say the hub could not be reached (or could not say
// whether a change was made): once the page is live again the record shown
// is the hub's word again, and such a refusal is out of date (as on the
// agent page).
const CONNECTION_ERRORS = new Set(["disconnected", "unavailable", "outcome_unknown"]);

export class AgentPanel {
  constructor({ client, names, session, onClose }) {
    this.client = client;
    /** `{ user, role }` from the hub's welcome (only the library's public API is used). */
    this.session = session;
    this.names = names;
    this.id = null;
    this.stub = null;
    this.shownVersion = -1;
    this.channelKeys = "";
    this.el = $("panel");
    this.pauseFor = null;
    this.signOutFor = null;
    this.busy = false;
    /** The error code of the refusal shown in the result line, and in the history. */
    this.resultCode = null;
    this.historyCode = null;
    $("p-close").addEventListener("click", () => { this.close(); onClose(); });
    this.el.addEventListener("click", (ev) => this.onClick(ev));
    this.el.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        if (!$("p-pause").hidden) { ev.preventDefault(); this.closePause(true); }
        else if (!$("p-signout").hidden) { ev.preventDefault(); this.closeSignOut(true); }
      }
    });
    // Enter confirms the pause wherever the focus is in its form. On the
    // reason list (where the form puts the focus) Chromium would otherwise
    // open the list instead: a select does not submit its form.
    $("p-pause").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.isComposing && ev.target === $("p-reason-code")) {
        ev.preventDefault();
        this.confirmPause();
      }
    });
    $("p-pause").addEventListener("submit", (ev) => { ev.preventDefault(); this.confirmPause(); });
    $("p-signout").addEventListener("submit", (ev) => { ev.preventDefault(); this.confirmSignOut(); });
    $("p-channel").addEventListener("change", () => this.refreshButtons());
    $("p-history").addEventListener("toggle", () => { if ($("p-history").open) this.loadHistory(); });
  }

  /** Whether a control of the panel may act now (see the module's docs). */
  static usable(b) {
    return !!b && !b.disabled && b.getAttribute("aria-disabled") !== "true" && !b.closest("[hidden]");
  }

  /** Gives the focus back to `to` (the opener), or the panel's heading when it cannot take it. */
  refocus(to) {
    if (AgentPanel.usable(to)) to.focus();
    else $("p-name").focus();
  }

  record() {
    return this.client.agents.get(this.id) || this.stub;
  }

  /** Opens the panel for an agent (a stub from a search result when out of scope). */
  open(id, stub = null) {
    if (this.id !== id) {
      this.closePause();
      this.closeSignOut();
      this.result("");
      $("p-history").open = false;
      $("p-history-rows").innerHTML = "";
      this.channelKeys = "";
    }
    this.id = id;
    this.stub = stub;
    this.shownVersion = -1;
    this.el.hidden = false;
    this.refresh(Date.now());
    $("p-name").focus();
  }

  close() {
    this.id = null;
    this.el.hidden = true;
    this.closePause();
    this.closeSignOut();
  }

  name() { return this.record()?.name || this.id; }

  /** Shows an action's outcome; `code`: the refusal's error code. */
  result(text, ok = true, code = null) {
    const el = $("p-result");
    el.textContent = text;
    el.className = ok ? "result ok" : "result bad";
    this.resultCode = code;
  }

  /** The page is live again: a refusal for want of a connection no longer holds. */
  liveAgain() {
    if (CONNECTION_ERRORS.has(this.resultCode)) this.result("");
    if (CONNECTION_ERRORS.has(this.historyCode) && this.id && $("p-history").open) this.loadHistory();
  }

  /** Rewrites the facts when the agent's version changed, and the buttons' state. */
  refresh(now) {
    if (!this.id) return;
    const rec = this.record();
    if (!rec) return;
    $("p-name").textContent = rec.name;
    $("p-id").textContent = rec.id;
    if (rec.version !== this.shownVersion) {
      this.shownVersion = rec.version;
      this.fillFacts(rec);
      this.syncChannels(rec);
      this.refreshButtons();
    }
    this.tick(now);
  }

  tick(now) {
    const rec = this.id && this.record();
    const t = $("p-time");
    if (!rec || !t) return;
    t.textContent = since(rec.status_since_ms, now);
    t.className = `time ${level(rec, now)}`;
  }

  fillFacts(rec) {
    const n = this.names;
    const inScope = this.client.agents.has(rec.id);
    const parts = [];
    parts.push(`<div><span class="pill ${esc(rec.status)}">${esc(STATUS_LABEL[rec.status] || rec.status)}</span> for <span id="p-time" class="time"></span>
      ${statusBy(rec) ? `<span class="muted" data-testid="status-by">· set by ${esc(n.person(statusBy(rec).id))}</span>` : ""}</div>`);
    if (!inScope) parts.push(`<div class="muted">Not in your live scope: shown from search.</div>`);
    if (rec.status === "paused") {
      parts.push(`<div>Reason: <strong>${esc(n.reason(rec.pause_reason))}</strong>${n.maxMinutes(rec.pause_reason) ? ` <span class="muted">(max ${n.maxMinutes(rec.pause_reason)} min)</span>` : ""}
        ${rec.pause_overrun_since_ms ? ` <span class="badge over" data-testid="overrun">OVER since ${esc(clock(rec.pause_overrun_since_ms))}</span>` : ""}</div>`);
    }
    if (rec.pending_pause) {
      parts.push(`<div class="pending" data-testid="pending">Pause pending: <strong>${esc(n.reason(rec.pending_pause.reason))}</strong>
        <span class="muted">by ${esc(n.person(rec.pending_pause.by?.id || rec.pending_pause.by))}; applies when the interaction and its wrap-up end</span></div>`);
    }
    const inter = rec.interactions || (rec.interaction ? [rec.interaction] : []);
    if (inter.length) parts.push(`<div>Handling: ${inter.map((i) => `${esc(i.id)} <span class="muted">on ${esc(n.channel(i.channel))} since ${esc(clock(i.since_ms))}</span>`).join("; ")}</div>`);
    if (rec.wrap_up_until_ms) parts.push(`<div class="muted">Wrap-up until ${esc(clock(rec.wrap_up_until_ms))}</div>`);
    if (rec.free_slots) parts.push(`<div class="muted">Free slots: ${Object.entries(rec.free_slots).map(([k, v]) => `${esc(k)} ${v}`).join(", ")}</div>`);
    if (rec.channels) {
      parts.push(`<div>Channels: ${rec.channels.map((c) => `<span class="chip ${c.connected ? "connected" : ""} ${c.lingering ? "lingering" : ""}" title="${c.assigned ? "assigned" : "not assigned"}${c.lingering ? ": lingering, no access to unassigned channels any more" : ""}">${c.lingering ? "⚠" : c.connected ? "●" : "○"} ${esc(n.channel(c))}</span>`).join(" ") || "<span class=muted>none</span>"}</div>`);
    }
    parts.push(`<div>Devices: ${(rec.devices || []).map((d) => `<span class="chip"><span class="dot ${d.active ? "on" : ""}"></span>${esc(d.label || d.kind)}</span>`).join(" ") || "<span class=muted>none</span>"}</div>`);
    const mons = rec.monitors || (rec.monitored_by || []).map((by) => ({ by, mode: "listen" }));
    if (mons.length) parts.push(`<div>Monitored by ${mons.map((m) => `${esc(n.person(m.by))} <span class="muted">(${esc(m.mode)})</span>`).join(", ")}</div>`);
    $("p-facts").innerHTML = parts.join("");
  }

  /** The channel picker: rebuilt only when the set of channels changes, keeping the choice. */
  syncChannels(rec) {
    const sel = $("p-channel");
    const map = new Map();
    for (const [key, c] of this.client.channels) map.set(key, { kind: c.kind, id: c.id });
    for (const c of rec.channels || []) map.set(channelKey(c), { kind: c.kind, id: c.id });
    const keys = [...map.keys()].join("|");
    if (keys !== this.channelKeys) {
      const chosen = sel.value;
      this.channelKeys = keys;
      sel.replaceChildren(...[...map.entries()].map(([key, c]) => {
        const o = document.createElement("option");
        o.value = key;
        o.dataset.name = this.names.channel(c);
        return o;
      }));
      if (chosen && map.has(chosen)) sel.value = chosen;
    }
    for (const o of sel.options) {
      const c = (rec.channels || []).find((x) => channelKey(x) === o.value);
      const text = `${o.dataset.name}${c?.connected ? " ● connected" : ""}${c?.assigned ? " (assigned)" : ""}`;
      if (o.textContent !== text) o.textContent = text;
    }
  }

  chosenChannel() {
    const key = $("p-channel").value;
    if (!key) return null;
    const i = key.indexOf(":");
    return { kind: key.slice(0, i), id: key.slice(i + 1) };
  }

  refreshButtons() {
    const rec = this.record();
    if (!rec) return;
    const me = this.session.user?.id;
    const online = rec.presence ? rec.presence === "online" : rec.status !== "offline";
    const set = (act, why) => {
      for (const b of this.el.querySelectorAll(`[data-act="${act}"]`)) {
        if (why) b.setAttribute("aria-disabled", "true");
        else b.removeAttribute("aria-disabled");
        b.title = why || "";
      }
    };
    // A paused agent's reason can be switched straight to another (PROTOCOL.md §4.2).
    set("pause-open", !online ? "the agent is offline" : "");
    const pauseOpen = this.el.querySelector('[data-act="pause-open"]');
    const pauseText = rec.status === "paused" ? "Switch pause…" : "Pause…";
    if (pauseOpen.textContent !== pauseText) pauseOpen.textContent = pauseText;
    set("unpause", rec.status === "paused" ? "" : "the agent is not paused");
    set("cancel-pending", rec.pending_pause ? "" : "no pause is pending");
    set("end_wrap_up", rec.status !== "wrap_up" ? "the agent is not in wrap-up"
      : (this.client.settings || {}).supervisor_can_end_wrap_up ? "" : "disabled: an admin has not allowed ending wrap-up early");
    set("disconnect_unassigned", (rec.channels || []).some((c) => c.connected && !c.assigned) ? "" : "no connection to an unassigned channel");
    const mons = rec.monitors || (rec.monitored_by || []).map((by) => ({ by, mode: "listen" }));
    const mine = mons.find((m) => m.by === me);
    for (const mode of ["listen", "whisper", "barge"]) {
      set(`monitor-${mode}`, !online ? "the agent is offline" : mine && mine.mode === mode ? `already monitoring (${mode})` : "");
    }
    set("stop_monitor", mine ? "" : "you are not monitoring this agent");
    set("signout-open", online ? "" : "the agent is offline");
    const ch = this.chosenChannel();
    const c = ch && (rec.channels || []).find((x) => x.kind === ch.kind && x.id === ch.id);
    const chName = ch ? this.names.channel(ch) : "";
    $("p-connect").textContent = ch ? `Connect to ${chName}` : "Connect";
    $("p-disconnect").textContent = ch ? `Disconnect from ${chName}` : "Disconnect";
    set("connect", !ch ? "choose a channel" : c?.connected ? `already connected to ${chName}` : "");
    set("disconnect", !ch ? "choose a channel" : c?.connected ? "" : `not connected to ${chName}`);
    $("p-assign").textContent = ch ? `Assign to ${chName}` : "Assign";
    $("p-unassign").textContent = ch ? `Unassign from ${chName}` : "Unassign";
    set("assign", !ch ? "choose a channel" : c?.assigned ? `already assigned to ${chName}` : "");
    set("unassign", !ch ? "choose a channel" : c?.assigned ? "" : `not assigned to ${chName}`);
    $("p-admin").hidden = this.session.role !== "admin";
  }

  async run(label, promise, done) {
    this.result(`${label}…`);
    try {
      const r = await promise;
      this.result(done(r));
      return r;
    } catch (e) {
      this.result(`${label}: refused (${e.code}) ${e.message}`, false, e.code);
      return null;
    }
  }

  onClick(ev) {
    const b = ev.target.closest("button[data-act]");
    if (!b || !this.id || !AgentPanel.usable(b)) return;
    const id = this.id, name = this.name();
    const act = b.dataset.act;
    const c = this.client;
    switch (act) {
      case "pause-open": return this.openPause();
      case "pause-cancel": return this.closePause(true);
      case "signout-open": return this.openSignOut();
      case "signout-cancel": return this.closeSignOut(true);
      case "unpause": return this.run(`Unpausing ${name}`, c.command("unpause", id), () => `${name} unpaused.`);
      case "cancel-pending": return this.run(`Cancelling ${name}'s pending pause`, c.command("unpause", id), () => `${name}'s pending pause cancelled.`);
      case "end_wrap_up": return this.run(`Ending ${name}'s wrap-up`, c.command("end_wrap_up", id), () => `${name} is out of wrap-up.`);
      case "disconnect_unassigned": return this.run(`Disconnecting ${name} from unassigned channels`, c.command("disconnect_unassigned", id), () => `${name} disconnected from unassigned channels.`);
      case "monitor-listen": case "monitor-whisper": case "monitor-barge": {
        const mode = act.slice(8);
        return this.run(`Asking ${name}'s device to accept ${mode}`, c.command("monitor", id, { mode }), () => `Monitoring ${name} (${mode}).`);
      }
      case "stop_monitor": return this.run(`Stopping monitoring of ${name}`, c.command("stop_monitor", id), () => `Stopped monitoring ${name}.`);
      case "connect": case "disconnect": case "assign": case "unassign": {
        const ch = this.chosenChannel();
        if (!ch) return;
        const chName = this.names.channel(ch);
        const verb = { connect: "Connecting", disconnect: "Disconnecting", assign: "Assigning", unassign: "Unassigning" }[act];
        const past = { connect: "connected to", disconnect: "disconnected from", assign: "assigned to", unassign: "unassigned from" }[act];
        const p = act === "assign" ? c.assign(id, ch) : act === "unassign" ? c.unassign(id, ch) : c.command(act, id, { channel: ch });
        return this.run(`${verb} ${name} ${act.endsWith("connect") ? (act === "connect" ? "to" : "from") : act === "assign" ? "to" : "from"} ${chName}`, p, () => `${name} ${past} ${chName}.`);
      }
      case "set-access": {
        const v = $("p-access").value;
        const allowed = v === "default" ? null : v === "allow";
        return this.run(`Setting ${name}'s access to unassigned channels`, c.setUnassignedAccess(id, allowed),
          () => `${name}: unassigned channels ${allowed === null ? "follow the tenant default" : allowed ? "allowed" : "not allowed"}.`);
      }
      case "history":
        // Opening the details loads it (its toggle event); an open one is reloaded.
        if ($("p-history").open) return this.loadHistory();
        $("p-history").open = true;
        return;
    }
  }

  openPause() {
    this.pauseFor = this.id;
    const codes = (this.client.settings || {}).pause_reasons || [];
    const sel = $("p-reason-code"), text = $("p-reason-text");
    sel.hidden = codes.length === 0;
    text.hidden = codes.length > 0;
    sel.replaceChildren(...codes.map((r) => {
      const o = document.createElement("option");
      o.value = r.code;
      o.textContent = `${r.label || r.code}${r.max_minutes ? ` (max ${r.max_minutes} min)` : ""}`;
      return o;
    }));
    $("p-pause-who").textContent = this.name();
    $("p-pause").hidden = false;
    (codes.length ? sel : text).focus();
  }

  /** Closes the pause form; `refocus`: the focus goes back to "Pause…". */
  closePause(refocus = false) {
    const open = !$("p-pause").hidden;
    this.pauseFor = null;
    $("p-pause").hidden = true;
    if (refocus && open) this.refocus(this.el.querySelector('[data-act="pause-open"]'));
  }

  confirmPause() {
    const id = this.pauseFor;
    if (!id) return;
    const codes = !$("p-reason-code").hidden;
    const reason = codes ? $("p-reason-code").value : $("p-reason-text").value.trim();
    if (!reason) { this.result("Type a reason for the pause.", false); $("p-reason-text").focus(); return; }
    const name = this.client.agents.get(id)?.name || id;
    const label = this.names.reason(reason);
    this.closePause(true);
    this.run(`Pausing ${name} (${label})`, this.client.command("pause", id, { reason }), (r) =>
      r?.agent?.pending_pause && r.agent.status !== "paused"
        ? `Pause of ${name} (${label}) is pending: it applies when the interaction and its wrap-up end. Cancel it with "Cancel pending pause".`
        : `${name} paused (${label}).`);
  }

  openSignOut() {
    this.signOutFor = this.id;
    $("p-signout-who").textContent = this.name();
    $("p-signout").hidden = false;
    $("p-signout-reason").focus();
  }

  closeSignOut(refocus = false) {
    const open = !$("p-signout").hidden;
    this.signOutFor = null;
    $("p-signout").hidden = true;
    if (refocus && open) this.refocus(this.el.querySelector('[data-act="signout-open"]'));
  }

  confirmSignOut() {
    const id = this.signOutFor;
    if (!id) return;
    const name = this.client.agents.get(id)?.name || id;
    const reason = $("p-signout-reason").value.trim();
    this.closeSignOut(true);
    this.run(`Signing ${name} out`, this.client.command("sign_out", id, reason ? { reason } : {}), () => `${name} signed out.`);
  }

  async loadHistory() {
    const id = this.id;
    const rows = $("p-history-rows");
    rows.innerHTML = `<tr><td colspan="4" class="muted">loading…</td></tr>`;
    this.historyCode = null;
    try {
      const r = await this.client.history(id, { limit: 50 });
      if (this.id !== id) return;
      rows.innerHTML = r.changes.slice().reverse().map((c) => `<tr><td>${esc(clock(c.at_ms))}</td><td>${esc(c.event || "")}</td>
        <td><span class="pill ${esc(c.status)}">${esc(STATUS_LABEL[c.status] || c.status)}</span> ${esc(c.pause_reason ? this.names.reason(c.pause_reason) : "")}</td>
        <td>${esc(this.names.person(c.by?.id))}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">no changes recorded</td></tr>`;
    } catch (e) {
      if (this.id !== id) return;
      this.historyCode = e.code;
      rows.innerHTML = `<tr><td colspan="4" class="bad">History refused (${esc(e.code)}): ${esc(e.message)}</td></tr>`;
    }
  }
}

/**
 * Search of every user of the tenant: a total, live statuses (from the live
 * records, and the search asked again every few seconds for agents out of
 * scope), and a click opens the same panel of actions.
 */
export class Search {
  constructor({ client, onOpen }) {
    this.client = client;
    this.results = [];
    this.total = 0;
    this.limit = 50;
    this.query = null;
    this.pills = new Map();
    this.timer = null;
    $("searchform").addEventListener("submit", (ev) => { ev.preventDefault(); this.limit = 50; this.run(); });
    $("search-more").addEventListener("click", () => { this.limit = Math.min(1000, this.limit + 50); this.run(); });
    const openResult = (ev) => {
      const li = ev.target.closest("li[data-agent]");
      if (!li) return;
      const u = this.results.find((x) => x.id === li.dataset.agent);
      if (u) onOpen(u.id, u);
    };
    $("results").addEventListener("click", openResult);
    $("results").addEventListener("keydown", (ev) => { if (ev.key === "Enter") openResult(ev); });
  }

  async run() {
    const query = $("query").value.trim();
    const role = $("searchrole").value;
    this.query = { query, role };
    clearInterval(this.timer);
    try {
      const r = await this.client.search(query, { role: role || undefined, limit: this.limit });
      this.show(r);
      // Out-of-scope agents have no live records: ask again while shown.
      if (this.results.some((u) => !this.client.agents.has(u.id))) this.timer = setInterval(() => this.refreshOut(), 5000);
    } catch (e) {
      $("search-total").textContent = `Search refused (${e.code}): ${e.message}`;
    }
  }

  async refreshOut() {
    if (!this.query || document.hidden) return;
    try {
      const r = await this.client.search(this.query.query, { role: this.query.role || undefined, limit: this.limit });
      this.show(r);
    } catch { /* shown again at the next try */ }
  }

  show(r) {
    const same = r.agents.length === this.results.length && r.agents.every((u, i) => u.id === this.results[i].id);
    this.results = r.agents;
    this.total = r.total ?? r.agents.length;
    $("search-total").textContent = this.total === 0 ? "Nobody found." : `${r.agents.length} of ${this.total} shown`;
    $("search-more").hidden = r.agents.length >= this.total;
    const devices = (u) => `${u.roles.join(", ")} · ${u.devices.filter((d) => d.active).length} of ${u.devices.length} devices active`;
    if (same) {
      // The same people asked again: update in place, never under the pointer.
      const items = $("results").children;
      r.agents.forEach((u, i) => {
        const pill = items[i].querySelector(".pill");
        if (!this.client.agents.has(u.id)) { pill.className = `pill ${u.status}`; pill.textContent = STATUS_LABEL[u.status] || u.status; }
        items[i].querySelector(".muted").textContent = devices(u);
      });
    } else {
      this.pills.clear();
      $("results").innerHTML = r.agents.map((u) => {
        const isAgent = u.roles.includes("agent");
        return `<li ${isAgent ? `data-agent="${esc(u.id)}" tabindex="0" title="open ${esc(u.name)}'s actions"` : ""}>
          <span class="pill ${esc(u.status)}">${esc(STATUS_LABEL[u.status] || u.status)}</span> <strong>${esc(u.name)}</strong>
          <span class="muted">${esc(devices(u))}</span></li>`;
      }).join("");
      for (const li of $("results").querySelectorAll("li[data-agent]")) this.pills.set(li.dataset.agent, li.querySelector(".pill"));
    }
    this.refresh(null);
  }

  /** Live statuses of the results that are in the live records. */
  refresh(dirty) {
    for (const [id, pill] of this.pills) {
      if (dirty && !dirty.has(id)) continue;
      const rec = this.client.agents.get(id);
      if (!rec) continue;
      const cls = `pill ${rec.status}`;
      if (pill.className !== cls) { pill.className = cls; pill.textContent = STATUS_LABEL[rec.status]; }
    }
  }
}
