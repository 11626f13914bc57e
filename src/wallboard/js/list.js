// The agent list, windowed: a spacer as tall as every matching row, and a
// fixed pool of row elements placed over the rows in view. A frame updates
// only rows whose agent or version changed; the second timer rewrites only the
// visible time cells. The DOM has the same size at 10 agents or 5 000, and the
// list never touches its scroll position (but to bring a row the keyboard
// moves to into view).
//
// Keyboard: one row is in the tab order (roving tabindex: its checkbox and
// name), the agent last focused or else the first row in view; Up/Down move
// to the row above/below, Home/End to the first/last of the whole list,
// Enter opens the agent's panel. A focused row keeps its element, and so the
// focus, wherever a re-sort moves its agent (even out of the window); if its
// agent leaves the list, the focus goes to the row now in its place.

import { STATUS_LABEL, level, since, statusBy } from "./format.js";

export const ROW_H = 34;
const OVERSCAN = 6;

export class AgentList {
  constructor(viewport, { client, names, onSelect, isPicked = () => false, onPick = () => {}, rowAlert = () => "" }) {
    this.viewport = viewport;
    this.client = client;
    this.names = names;
    this.spacer = viewport.appendChild(document.createElement("div"));
    this.spacer.className = "spacer";
    this.table = viewport.closest('[role="table"]');
    this.pool = [];
    this.selected = null;
    this.first = -1;
    this.count = -1;
    this.isPicked = isPicked;
    this.rowAlert = rowAlert;
    /** The ids in list order, as last rendered. */
    this.ids = [];
    /** The agent whose row is in the tab order (roving tabindex). */
    this.current = null;
    viewport.addEventListener("focusin", (ev) => {
      const row = ev.target.closest(".row");
      if (row?.dataset.agent && row.dataset.agent !== this.current) { this.current = row.dataset.agent; this.roving(); }
    });
    viewport.addEventListener("keydown", (ev) => {
      const row = ev.target.closest(".row");
      if (!row?.dataset.agent || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      const part = ev.target.classList.contains("pick") ? "pick" : "name";
      if (ev.key === "Enter") {
        // The name is a button (Enter clicks it); on the checkbox too.
        if (part === "pick") { ev.preventDefault(); onSelect(row.dataset.agent); }
        return;
      }
      const at = this.ids.indexOf(row.dataset.agent);
      const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: this.ids.length - 1 }[ev.key];
      if (to === undefined) return;
      ev.preventDefault();
      if (to >= 0 && to < this.ids.length && to !== at) this.focusAgent(this.ids[to], part);
    });
    viewport.addEventListener("click", (ev) => {
      const row = ev.target.closest(".row");
      if (!row || !row.dataset.agent) return;
      // The checkbox selects for a bulk action; anywhere else opens the panel.
      if (ev.target.classList.contains("pick")) onPick(row.dataset.agent, ev.target.checked);
      else onSelect(row.dataset.agent);
    });
  }

  makeRow() {
    const el = document.createElement("div");
    el.className = "row";
    el.setAttribute("role", "row");
    el.hidden = true;
    el.innerHTML = `<span class="c-name" role="cell"><input type="checkbox" class="pick"><button type="button" class="who"></button><span class="mon" title="monitored"></span></span>
      <span class="c-status" role="cell"><span class="pill"></span><span class="free"></span><span class="pend"></span></span>
      <span class="c-time" role="cell"></span>
      <span class="c-reason" role="cell"></span>
      <span class="c-chan" role="cell"></span>
      <span class="c-dev" role="cell"></span>`;
    const q = (s) => el.querySelector(s);
    const row = { el, id: null, version: -1, top: -1, sel: false, picked: false, lvl: "", pick: q(".pick"), name: q(".who"), mon: q(".mon"), pill: q(".pill"), free: q(".free"), pend: q(".pend"),
                  time: q(".c-time"), reason: q(".c-reason"), chan: q(".c-chan"), dev: q(".c-dev") };
    this.viewport.appendChild(el);
    return row;
  }

  /** Brings agent `id`'s row into view and focuses its `part` ("name" or "pick"). */
  focusAgent(id, part = "name") {
    const idx = this.ids.indexOf(id);
    if (idx < 0) return;
    this.current = id;
    this.reveal(idx);
    this.render(this.ids, false, Date.now());
    this.pool.find((r) => r.id === id)?.[part].focus({ preventScroll: true });
  }

  /** Scrolls the list as little as brings row `idx` wholly into view. */
  reveal(idx) {
    const vp = this.viewport;
    const top = idx * ROW_H;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + ROW_H > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + ROW_H - vp.clientHeight;
  }

  /** The row holding the focus, if one does. */
  focusedRow() {
    const at = document.activeElement;
    return at && this.viewport.contains(at) ? this.pool.find((r) => r.id !== null && r.el.contains(at)) ?? null : null;
  }

  /** One row in the tab order: the current agent's if shown, else the first in view. */
  roving() {
    let tab = this.pool.find((r) => r.id !== null && r.id === this.current);
    if (!tab) {
      const top = this.viewport.scrollTop - ROW_H / 2;
      for (const r of this.pool) if (r.id !== null && r.top >= top && (!tab || r.top < tab.top)) tab = r;
    }
    for (const r of this.pool) {
      const t = r === tab ? 0 : -1;
      if (r.name.tabIndex !== t) { r.name.tabIndex = t; r.pick.tabIndex = t; }
    }
  }

  /** Lays out the rows in view; `all` redraws every row in view (a snapshot). */
  render(ids, all, now) {
    const vp = this.viewport;
    const resorted = ids !== this.ids;
    this.ids = ids;
    // The focused row's agent keeps its element wherever a re-sort moved it,
    // and the list scrolls to it; so does the agent in the tab order (Tab
    // comes back to it), without the scroll.
    const focused = this.focusedRow();
    const part = focused && document.activeElement === focused.pick ? "pick" : "name";
    const keepId = focused?.id ?? this.current;
    const keep = keepId === null ? -1 : ids.indexOf(keepId);
    if (keep < 0 && !focused) this.current = null;
    if (focused && keep >= 0 && resorted) this.reveal(keep);
    if (ids.length !== this.count) {
      this.count = ids.length;
      this.spacer.style.height = `${ids.length * ROW_H}px`;
      // Only the rows in view exist: the table says how many there are, and
      // each row its place, so a screen reader reads "row 37 of 5 001".
      this.table?.setAttribute("aria-rowcount", String(ids.length + 1));
    }
    const height = vp.clientHeight || 600;
    const want = Math.ceil(height / ROW_H) + 2 * OVERSCAN;
    while (this.pool.length < want) this.pool.push(this.makeRow());
    const first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - OVERSCAN);
    this.first = first;
    // An agent keeps its row element for as long as it stays in the window:
    // a re-sort or a filter moves the element (its transform), it does not
    // hand it to another agent. Handing elements round by position made a
    // row element that showed agent X a moment ago show agent Y, or hide,
    // while X moved to another element: a click aimed at X (a supervisor's,
    // or a test's that had found X's element) then hit Y or nothing.
    const end = Math.min(ids.length, first + this.pool.length);
    const wanted = new Map();
    for (let idx = first; idx < end; idx++) {
      if (this.client.agents.has(ids[idx])) wanted.set(ids[idx], idx);
    }
    if (keep >= 0 && !wanted.has(keepId)) wanted.set(keepId, keep);
    while (this.pool.length < wanted.size) this.pool.push(this.makeRow());
    const free = [];
    for (const row of this.pool) {
      if (row.id !== null && wanted.has(row.id)) {
        this.place(row, ids[wanted.get(row.id)], wanted.get(row.id), all, now);
        wanted.delete(row.id);
      } else {
        free.push(row);
      }
    }
    // Agents new to the window take the elements no agent in it holds.
    for (const [id, idx] of wanted) this.place(free.pop(), id, idx, all, now);
    for (const row of free) {
      if (row.id !== null) { row.el.hidden = true; row.id = null; row.el.removeAttribute("data-agent"); }
    }
    this.roving();
    // The focused agent left the list: the focus goes to the row in its place.
    if (focused && keep < 0 && ids.length) {
      const next = ids[Math.min(Math.round(focused.top / ROW_H), ids.length - 1)];
      const row = this.pool.find((r) => r.id === next);
      if (row) { this.current = next; this.roving(); row[part].focus({ preventScroll: true }); }
    }
  }

  /** Shows agent `id` at list position `idx` in `row`. */
  place(row, id, idx, all, now) {
    const rec = this.client.agents.get(id);
    if (row.id === null) row.el.hidden = false;
    const top = idx * ROW_H;
    if (row.top !== top) { row.el.style.transform = `translateY(${top}px)`; row.el.setAttribute("aria-rowindex", String(idx + 2)); row.top = top; }
    if (all || row.id !== id || row.version !== rec.version) this.fill(row, rec, now);
    const sel = id === this.selected;
    if (row.sel !== sel) { row.el.classList.toggle("sel", sel); row.sel = sel; }
    const picked = this.isPicked(id);
    if (row.picked !== picked || row.pick.checked !== picked) { row.pick.checked = picked; row.picked = picked; }
  }

  fill(row, rec, now) {
    if (row.id !== rec.id) {
      row.id = rec.id;
      row.el.dataset.agent = rec.id;
      row.name.textContent = rec.name;
      row.name.title = `${rec.name} (${rec.id})`;
      row.pick.setAttribute("aria-label", `select ${rec.name} for a bulk action`);
    }
    row.version = rec.version;
    row.pill.className = `pill ${rec.status}`;
    row.pill.textContent = STATUS_LABEL[rec.status] || rec.status;
    const free = freeSlots(rec);
    const freeText = free ? `${free.n} free` : "";
    const freeTitle = free ? `can take ${free.n} more ${{ queue: "call", chat: "chat" }[free.kind] || `${free.kind} interaction`}${free.n > 1 ? "s" : ""} (free slots)` : "";
    if (row.free.textContent !== freeText) row.free.textContent = freeText;
    if (row.free.title !== freeTitle) row.free.title = freeTitle;
    row.pend.textContent = rec.pending_pause ? `pause pending: ${this.names.reason(rec.pending_pause.reason)}` : "";
    const mons = rec.monitors || rec.monitored_by.map((by) => ({ by, mode: "listen" }));
    row.mon.textContent = mons.length ? "🎧" : "";
    row.mon.title = mons.map((m) => `${this.names.person(m.by)} (${m.mode})`).join(", ");
    row.reason.textContent = this.reasonText(rec);
    row.reason.classList.toggle("overrun", !!rec.pause_overrun_since_ms);
    let lingering = false;
    row.chan.textContent = rec.channels.map((c) => {
      if (c.lingering) lingering = true;
      return `${c.lingering ? "⚠" : c.connected ? "●" : "○"} ${this.names.channel(c)}`;
    }).join("  ");
    row.chan.classList.toggle("lingering", lingering);
    const active = rec.devices.filter((d) => d.active);
    row.dev.textContent = rec.devices.length ? `${active.length ? "●" : "○"} ${(active[0] || rec.devices[0]).label || (active[0] || rec.devices[0]).kind}${rec.devices.length > 1 ? ` +${rec.devices.length - 1}` : ""}` : "no device";
    row.dev.classList.toggle("on", active.length > 0);
    this.fillTime(row, rec, now);
  }

  reasonText(rec) {
    const author = statusBy(rec);
    const by = author && author.role !== "agent" ? ` · by ${this.names.person(author.id)}` : "";
    if (rec.status === "paused") {
      const over = rec.pause_overrun_since_ms ? ` · OVER since ${new Date(rec.pause_overrun_since_ms).toLocaleTimeString()}` : "";
      return `${this.names.reason(rec.pause_reason)}${over}${by}`;
    }
    const list = rec.interactions || (rec.interaction ? [rec.interaction] : []);
    if (list.length) return `${list.map((i) => `${i.id} (${this.names.channel(i.channel)})`).join(", ")}${by}`;
    return by.slice(3);
  }

  fillTime(row, rec, now) {
    // A supervisor's alert on one of the agent's queues (alerts.js) marks the time.
    const alert = this.rowAlert(rec, now);
    row.time.textContent = `${alert ? "⚠ " : ""}${since(rec.status_since_ms, now)}`;
    const lvl = `${level(rec, now)}${alert ? " alert" : ""}`;
    if (row.lvl !== lvl) { row.time.className = `c-time ${lvl}`; row.lvl = lvl; }
    if (row.alert !== alert) { row.time.title = alert ? `alert: ${alert}` : ""; row.alert = alert; }
  }

  /** The second timer: only the visible time cells. */
  tick(now) {
    for (const row of this.pool) {
      if (row.id === null) continue;
      const rec = this.client.agents.get(row.id);
      if (rec) this.fillTime(row, rec, now);
    }
  }

  select(id) { this.selected = id; }
}

/**
 * A busy agent's free slots in the kind it is handling (PROTOCOL.md §10.1:
 * the other kinds are 0 while busy), or null when none: a multi-chat agent
 * that can take another chat. An available agent's free slots are its
 * capacity, which its status already says.
 */
export function freeSlots(rec) {
  if (rec.status !== "busy" || !rec.free_slots) return null;
  const held = rec.interactions?.[0] || rec.interaction;
  const kind = held?.channel?.kind;
  const n = kind ? rec.free_slots[kind] : 0;
  return n > 0 ? { n, kind } : null;
}
