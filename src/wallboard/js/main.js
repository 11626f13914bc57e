// The wallboard's entry point: sign-in, then wiring the modules together.
//
//   /client/presence-hub-client.js  the connection (the client library's
//              SupervisorClient: live records, resume, backoff)
//   store.js   filters, sort, totals, per-channel counts over the records
//   list.js    the windowed agent list
//   panels.js  one agent's actions (side panel) and the search
//   admin.js   the settings form
//   people.js  the admin's people and channels (the directory, PROTOCOL §7.1)
//   format.js  names, durations, labels, thresholds
//
// Messages are applied to the client's records as they arrive; the page draws
// at most once per animation frame, only what changed and is in view. Timers
// tick once a second over visible cells only, and stop while the data is stale.

// The client library (clients/js), served by the hub.
import { SupervisorClient } from "../client/presence-hub-client.js";
import { AdminForm } from "./admin.js";
import { PeopleView } from "./people.js";
import { ReportsView } from "./reports.js";
import { AgentList } from "./list.js";
import { AgentPanel, Search } from "./panels.js";
import { Bulk } from "./bulk.js";
import { Views, viewFromFragment } from "./views.js";
import { Alerts } from "./alerts.js";
import { Store } from "./store.js";
import { Names, STATUSES, duration, esc } from "./format.js";

const $ = (id) => document.getElementById(id);

/** For the browser tests and the benchmark: the live objects and a per-frame hook. */
const wallboard = (window.wallboard = { frames: 0, onFrame: null });

function start(token, role, linked = null) {
  $("signin").hidden = true;
  $("board").hidden = false;
  $("leave").hidden = false;
  const client = new SupervisorClient({ token, role });
  const names = new Names(client);
  const store = new Store(client);
  let list = null;
  let firstRender = false;
  let stale = true;
  let staleSince = null;
  let retryAt = null;
  let scheduled = false;
  let scrolled = false;
  let channelsDirty = true;
  let lastCards = 0;
  let holdShown = false;

  const session = { user: null, role };
  const panel = new AgentPanel({ client, names, session, onClose: () => { list.select(null); invalidate(); } });
  const open = (id, stub) => { list.select(id); panel.open(id, stub); invalidate(); };
  let bulk = null;
  // Per-queue thresholds (alerts.js): the cards and rows redraw when they change.
  const alerts = new Alerts({ client, names, onChange: () => { channelsDirty = true; scrolled = true; invalidate(); } });
  list = new AgentList($("viewport"), {
    client, names, onSelect: (id) => open(id), rowAlert: (rec, now) => alerts.rowAlert(rec, now),
    isPicked: (id) => bulk.has(id), onPick: (id, on) => bulk.toggle(id, on),
  });
  // A selection change redraws the rows in view (their checkboxes).
  bulk = new Bulk({ client, names, store, onChange: () => { scrolled = true; invalidate(); } });
  const search = new Search({ client, onOpen: open });
  const admin = new AdminForm(client);
  const people = new PeopleView({ client });
  const reports = new ReportsView({ token });
  // Filters, sort and columns: the supervisor's saved view (views.js).
  const views = new Views({
    apply: (v) => {
      $("f-status").value = v.status;
      $("f-text").value = v.text;
      $("f-sort").value = v.sort;
      store.setFilter({ status: v.status, channel: v.channel, text: v.text.trim().toLowerCase() });
      store.setSort(v.sort);
      filterKeys = ""; // the channel picker takes the view's channel at its next sync
      $("viewport").scrollTop = 0;
      invalidate();
    },
  });
  let viewsStarted = false;
  Object.assign(wallboard, { client, store, list, panel, bulk, views, alerts, people, reports });

  function invalidate() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(frame);
  }

  function frame() {
    scheduled = false;
    const now = Date.now();
    const { dirty, all, order } = store.flush(now);
    const due = store.orderDue(now);
    if (due !== null) setTimeout(invalidate, due);
    if (all || dirty.size) renderTotals();
    if (all || order) $("shown").textContent = `${store.rows.length} of ${client.agents.size} shown`;
    if (store.holding !== holdShown) {
      holdShown = store.holding;
      $("held").hidden = !holdShown;
    }
    if (all || dirty.size || order || scrolled) list.render(store.rows, all, now);
    scrolled = false;
    if (panel.id && (all || dirty.has(panel.id))) panel.refresh(now);
    if (all || dirty.size) search.refresh(all ? null : dirty);
    if (channelsDirty || now - lastCards >= 1000) renderChannels(now);
    wallboard.frames++;
    if (!firstRender && client.seq !== null) {
      firstRender = true;
      performance.mark("wallboard-first-render");
    }
    if (wallboard.onFrame) wallboard.onFrame(dirty, all);
  }

  function renderTotals() {
    const t = store.totals;
    $("t-all").textContent = client.agents.size;
    for (const s of STATUSES) $(`t-${s}`).textContent = t[s] || 0;
  }

  // Channel cards: one element per channel, updated in place.
  const cards = new Map();
  function renderChannels(now) {
    channelsDirty = false;
    lastCards = now;
    const box = $("channels");
    const stats = store.channelStats(now);
    const seen = new Set();
    for (const s of stats) {
      seen.add(s.key);
      let card = cards.get(s.key);
      if (!card) {
        const el = document.createElement("button");
        el.type = "button";
        el.className = "card";
        el.dataset.channel = s.key;
        el.title = `show only agents connected to ${s.name}`;
        el.innerHTML = `<span class="c-title"><strong></strong> <span class="muted"></span></span><span class="counts"></span><span class="c-foot muted"></span><span class="c-queue"></span><span class="c-alert"></span>`;
        el.querySelector("strong").textContent = s.name;
        el.querySelector(".muted").textContent = s.kind;
        box.appendChild(el);
        card = { el, counts: el.querySelector(".counts"), foot: el.querySelector(".c-foot"), queue: el.querySelector(".c-queue"), alert: el.querySelector(".c-alert"), text: "", foot_: "", queue_: "", alert_: "", name: s.name };
        cards.set(s.key, card);
      }
      // A channel renamed by an admin (a `channel` message, PROTOCOL §7.1).
      if (card.name !== s.name) {
        card.name = s.name;
        card.el.querySelector("strong").textContent = s.name;
        card.el.title = `show only agents connected to ${s.name}`;
      }
      const c = s.counts;
      const text = `<span class="n available" title="available">${c.available}</span><span class="n busy" title="busy">${c.busy}</span><span class="n wrap_up" title="wrap-up">${c.wrap_up}</span><span class="n paused" title="paused">${c.paused}</span><span class="n offline" title="offline">${c.offline ?? 0}</span>`;
      if (text !== card.text) { card.counts.innerHTML = text; card.text = text; }
      const idle = s.longest && !stale ? `idle ${duration(now - s.longest)}` : s.longest ? "idle —" : "nobody idle";
      const foot = `${s.connected} connected${s.lingering ? ` · ⚠ ${s.lingering} lingering` : ""} · ${idle}`;
      if (foot !== card.foot_) { card.foot.textContent = foot; card.foot_ = foot; card.el.classList.toggle("lingering", s.lingering > 0); }
      // The ACD's statistics (PROTOCOL §10.7); stale ones say so in words.
      const q = queueLine(client.queueStats?.get(s.key));
      if (q !== card.queue_) { card.queue.textContent = q; card.queue_ = q; card.el.classList.toggle("q-stale", q.startsWith("stale")); }
    }
    for (const [key, card] of cards) if (!seen.has(key)) { card.el.remove(); cards.delete(key); }
    // Alerts: checked with the cards (once a second, or when a counter moves);
    // while the data is stale the last ones stay, greyed with the rest.
    const active = stale ? alerts.active : alerts.evaluate(stats, now);
    for (const [key, card] of cards) {
      const text = (active.get(key) ?? []).map((a) => `⚠ ${a.text}`).join(" · ");
      if (text !== card.alert_) { card.alert.textContent = text; card.alert_ = text; card.el.classList.toggle("alert", !!text); }
    }
    syncChannelFilter();
    alerts.syncChannels();
  }

  /** A card's line of queue statistics: waiting, longest wait, service level, today's counts. */
  function queueLine(e) {
    if (!e?.stats) return "";
    const st = e.stats;
    const parts = [`${st.waiting} waiting`, `longest ${duration(st.longest_wait_s * 1000)}`];
    if (typeof st.service_level === "number") parts.push(`SL ${Math.round(st.service_level * 100)}% in ${st.service_level_s}s`);
    const today = [["offered", st.offered], ["answered", st.answered], ["abandoned", st.abandoned]].filter(([, n]) => typeof n === "number");
    if (today.length) parts.push(today.map(([k, n]) => `${n} ${k}`).join(" / "));
    return `${e.stale ? "stale (no update from the ACD): " : ""}${parts.join(" · ")}`;
  }

  let filterKeys = "";
  function syncChannelFilter() {
    const keys = [...client.channels.entries()].map(([k, c]) => `${k}=${c.name}`).join("|");
    if (keys === filterKeys) return;
    filterKeys = keys;
    const sel = $("f-channel");
    const chosen = store.filter.channel;
    sel.innerHTML = `<option value="">any channel</option>` + [...client.channels.entries()].map(([k, c]) => `<option value="${esc(k)}">${esc(c.name)}</option>`).join("");
    if (client.channels.has(chosen)) sel.value = chosen;
  }

  // Filters and sort.
  const setStatus = (s) => { $("f-status").value = s; store.setFilter({ status: s }); views.change({ status: s }); invalidate(); };
  $("totals").addEventListener("click", (ev) => { const b = ev.target.closest("button[data-status]"); if (b) setStatus(b.dataset.status); });
  $("f-status").addEventListener("change", () => setStatus($("f-status").value));
  $("f-channel").addEventListener("change", () => { store.setFilter({ channel: $("f-channel").value }); views.change({ channel: $("f-channel").value }); invalidate(); });
  $("channels").addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-channel]");
    if (!b) return;
    const key = $("f-channel").value === b.dataset.channel ? "" : b.dataset.channel;
    $("f-channel").value = key;
    store.setFilter({ channel: key });
    views.change({ channel: key });
    invalidate();
  });
  // A new text filter shows its matches from the top: a viewport left
  // scrolled far down a long list would otherwise draw them out of view.
  $("f-text").addEventListener("input", () => { store.setFilter({ text: $("f-text").value.trim().toLowerCase() }); views.change({ text: $("f-text").value }); $("viewport").scrollTop = 0; invalidate(); });
  $("f-sort").addEventListener("change", () => { store.setSort($("f-sort").value); views.change({ sort: $("f-sort").value }); invalidate(); });
  $("viewport").addEventListener("scroll", () => { scrolled = true; invalidate(); }, { passive: true });
  // A list that holds still: while the pointer is on it or one of its rows
  // has the focus, live changes do not re-sort it (store.js, `hold`).
  {
    const vp = $("viewport");
    let pointer = false, focus = false;
    const sync = () => { store.hold(pointer || focus); invalidate(); };
    vp.addEventListener("pointerenter", () => { pointer = true; sync(); });
    vp.addEventListener("pointerleave", () => { pointer = false; sync(); });
    vp.addEventListener("focusin", () => { focus = true; sync(); });
    vp.addEventListener("focusout", (ev) => { if (!vp.contains(ev.relatedTarget)) { focus = false; sync(); } });
  }
  window.addEventListener("resize", () => { scrolled = true; invalidate(); });

  // The hub's messages.
  client.on("snapshot", () => {
    if (!firstRender) performance.mark("wallboard-snapshot");
    store.reset();
    channelsDirty = true;
    // A snapshot carries the settings too (after a reconnect they may have changed).
    if (client.settings) admin.fill(client.settings);
    setStale(false);
    bulk.refreshForm();
    invalidate();
  });
  client.on("agent", (rec) => { store.touch(rec.id); invalidate(); });
  client.on("agent_removed", (id) => { store.touch(id); invalidate(); });
  client.on("channel", () => { channelsDirty = true; invalidate(); });
  client.on("channel_removed", () => { channelsDirty = true; invalidate(); });
  client.on("queue_stats", () => { channelsDirty = true; invalidate(); });
  client.on("settings", (s) => {
    admin.fill(s);
    bulk.refreshForm();
    if (panel.id) panel.refreshButtons();
  });
  client.on("welcome", (w) => {
    if (!firstRender) performance.mark("wallboard-welcome");
    session.user = w.user;
    // Once per sign-in (a reconnect welcomes again): the supervisor's view,
    // or the one of the link the page was opened with.
    if (!viewsStarted) { viewsStarted = true; views.start(w.user.tenant, w.user.id, linked); alerts.start(w.user.tenant, w.user.id); }
    session.role = w.role || role;
    $("who").textContent = `${w.user.name || w.user.id} (${w.role || role})`;
    $("tenant").textContent = w.user.tenant;
    admin.show((w.role || role) === "admin");
    people.show((w.role || role) === "admin");
    reports.show((w.role || role) !== "agent");
    if (w.settings) admin.fill(w.settings);
  });
  client.on("status", (s) => {
    const el = $("status");
    el.className = s.state === "live" ? "live" : "down";
    if (s.state === "live") { el.textContent = "live"; retryAt = null; panel.liveAgain(); return; }
    setStale(true);
    if (s.state === "connecting") { el.textContent = "connecting…"; retryAt = null; $("stale-text").textContent = "connecting to the hub"; }
    if (s.state === "reconnecting") { retryAt = Date.now() + (s.retryInMs || 0); countdown(); }
    if (s.state === "stopped") {
      // A refused token is forgotten, so a reload shows the sign-in again.
      if (s.reason?.code === 4003) sessionStorage.removeItem(TOKEN_KEY);
      el.textContent = `stopped: ${s.reason?.message || ""}`;
      $("stale-text").textContent = `disconnected: ${s.reason?.message || "stopped"}`;
    }
  });

  function setStale(on) {
    if (on === stale) return;
    stale = on;
    document.body.classList.toggle("stale", on);
    $("stale").hidden = !on;
    if (on) {
      staleSince = Date.now();
      $("stale-since").textContent = new Date(staleSince).toLocaleTimeString();
    }
  }

  function countdown() {
    if (retryAt === null) return;
    const left = Math.max(0, retryAt - Date.now());
    const text = `reconnecting in ${Math.ceil(left / 1000)} s`;
    $("status").textContent = text;
    $("stale-text").textContent = text;
  }

  // The second timer: visible time cells only, and nothing while stale.
  setInterval(() => {
    if (retryAt !== null) countdown();
    if (stale) return;
    const now = Date.now();
    list.tick(now);
    panel.tick(now);
    // Alerts on time in state must be checked even when no message comes.
    if (alerts.rules.size) invalidate();
  }, 1000);
  setInterval(() => { if (retryAt !== null) countdown(); }, 250);

  $("leave").addEventListener("click", () => {
    client.stop();
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });

  client.start().then(async () => {
    await client.subscribe({ all: true });
    names.load().then(() => { store.reset(); invalidate(); });
  }).catch((e) => {
    $("status").textContent = `not signed in: ${e.message}`;
  });
  // Until the first snapshot the board is not live.
  document.body.classList.add("stale");
  $("stale").hidden = true;
}

// Sign-in: a token in the URL fragment, a pasted token, or one click in dev
// mode. The token is kept for this tab only (sessionStorage: a reload stays
// signed in, another tab or a restarted browser does not) and never in the
// URL: a wall screen's address bar and history are seen by everyone.
const TOKEN_KEY = "presence-hub-wallboard-session";
function signIn(token, role) {
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token, role }));
  start(token, role, linked);
}
$("tokenform").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (t) signIn(t, $("role").value);
});
const params = new URLSearchParams(location.hash.slice(1));
// A shared view's link (`#view&status=…`, views.js): applied once signed in.
const linked = viewFromFragment(params);
if (linked && !params.get("token")) history.replaceState(null, "", location.pathname + location.search);
let saved = null;
try { saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null"); } catch { /* signed out */ }
if (params.get("token")) {
  // Out of the address bar and the history entry before anything else.
  history.replaceState(null, "", location.pathname + location.search);
  signIn(params.get("token"), params.get("role") || "supervisor");
} else if (saved?.token) {
  start(saved.token, saved.role || "supervisor", linked);
} else {
  fetch("/dev/signin").then((r) => (r.ok ? r.json() : null)).then((dev) => {
    if (!dev) return;
    $("dev").hidden = false;
    $("people").innerHTML = dev.people.map((p, i) => `<button data-i="${i}" class="${p.role === "supervisor" && !p.scoped ? "primary" : ""}">${esc(p.name)} — ${p.role === "agent" ? "agent dashboard" : esc(p.role)}${p.scoped ? " (scoped)" : ""}</button>`).join("");
    $("people").onclick = (ev) => {
      const b = ev.target.closest("button");
      if (!b) return;
      const p = dev.people[Number(b.dataset.i)];
      // Agents work from their own dashboard, not the wallboard.
      if (p.role === "agent") {
        location.href = `/agent#token=${p.token}`;
        return;
      }
      signIn(p.token, p.role);
    };
  }).catch(() => {});
}
