// The view over the live records the client keeps: which agents match the
// filters, in which order, the totals by state, and per-channel counts when
// the hub does not send them. The client applies every message as it arrives;
// this only notes what changed, and the page asks for the result at most once
// per animation frame (`flush`).

import { STATUSES, channelKey } from "./format.js";

/**
 * While the order depends on live fields (sort by status or time, a status or
 * channel filter), rows are re-sorted at most this often: changes still show
 * in place at once, and rows do not jump under the user at every change.
 */
const ORDER_MS = 250;
const STATUS_RANK = { paused: 0, wrap_up: 1, busy: 2, available: 3, offline: 4 };
const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

export class Store {
  constructor(client) {
    this.client = client;
    this.filter = { status: "", channel: "", text: "" };
    this.sort = "name";
    /** Ids of records changed since the last flush. */
    this.dirty = new Set();
    this.orderDirty = true;
    /** The order must be redone at the next frame (not throttled): the user changed the view. */
    this.orderNow = true;
    /** An agent came into or left the set: redone at the next frame unless held. */
    this.orderSoon = false;
    /**
     * Held: the pointer is on the list or a row has the focus, so live
     * changes do not move rows under the user (a row read a moment ago must
     * still be that agent when clicked). Changes still show in place; the
     * order catches up when the hold ends. What the user asks (filter,
     * sort) applies at once.
     */
    this.held = false;
    this.orderAt = 0;
    this.everything = true;
    /** The ids that match the filters, in display order. */
    this.rows = [];
    this.totals = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    this.nameRank = new Map();
    this.countsCache = null;
    this.countsAt = 0;
  }

  /** A record changed (or arrived, or left). */
  touch(id) {
    this.dirty.add(id);
    // An agent in or out of the set changes the rows at once; otherwise the
    // order moves only when it depends on live fields.
    if (!this.nameRank.has(id) || !this.client.agents.has(id)) {
      this.orderDirty = true;
      this.orderSoon = true;
    } else if (this.sort !== "name" || this.filter.status || this.filter.channel) {
      this.orderDirty = true;
    }
  }

  /** Everything changed (a snapshot; names loaded). Names never change, so ranks stay. */
  reset() {
    this.everything = true;
    this.orderDirty = true;
    this.orderNow = true;
    this.countsCache = null;
  }

  setFilter(part) { Object.assign(this.filter, part); this.orderDirty = this.orderNow = true; }
  setSort(sort) { this.sort = sort; this.orderDirty = this.orderNow = true; }

  /** Holds the order (true) or lets it catch up at the next frame (false). */
  hold(on) {
    this.held = on;
    if (!on && this.orderDirty) this.orderSoon = true;
  }

  /** Whether live changes are waiting for the hold to end to move rows. */
  get holding() {
    return this.held && this.orderDirty && !this.orderNow;
  }

  /** Milliseconds until a pending re-sort is due (null: none pending, or held). */
  orderDue(now) {
    if (!this.orderDirty || (this.held && !this.orderNow)) return null;
    return Math.max(0, this.orderAt + ORDER_MS - now);
  }

  matches(rec) {
    const f = this.filter;
    if (f.status && rec.status !== f.status) return false;
    if (f.channel && !rec.channels.some((c) => c.connected && channelKey(c) === f.channel)) return false;
    if (f.text) {
      const t = f.text;
      if (!rec.name.toLowerCase().includes(t) && !rec.id.toLowerCase().includes(t)) return false;
    }
    return true;
  }

  rank(id) {
    let r = this.nameRank.get(id);
    if (r === undefined) {
      // A new name: rank them all again (names never change, so this is rare).
      const all = [...this.client.agents.values()].sort((a, b) => collator.compare(a.name, b.name) || (a.id < b.id ? -1 : 1));
      this.nameRank = new Map(all.map((a, i) => [a.id, i]));
      r = this.nameRank.get(id) ?? 0;
    }
    return r;
  }

  /**
   * Applies what changed since the last call. Returns `{ dirty, all, order }`:
   * the changed ids, whether everything changed, whether the row order did.
   */
  flush(now) {
    const agents = this.client.agents;
    const all = this.everything;
    const dirty = this.dirty;
    const order = this.orderDirty && (this.orderNow || (!this.held && (this.orderSoon || now - this.orderAt >= ORDER_MS)));
    this.dirty = new Set();
    this.everything = false;
    if (order) {
      this.orderDirty = this.orderNow = this.orderSoon = false;
      this.orderAt = now;
    }
    if (all || dirty.size) {
      const totals = Object.fromEntries(STATUSES.map((s) => [s, 0]));
      for (const rec of agents.values()) totals[rec.status] = (totals[rec.status] || 0) + 1;
      this.totals = totals;
    }
    if (order) {
      if (this.nameRank.size < agents.size) this.nameRank.clear();
      const list = [];
      for (const rec of agents.values()) if (this.matches(rec)) list.push(rec);
      if (list.length) this.rank(list[0].id);
      const byName = (a, b) => this.rank(a.id) - this.rank(b.id);
      if (this.sort === "name") list.sort(byName);
      else if (this.sort === "status") list.sort((a, b) => (STATUS_RANK[a.status] - STATUS_RANK[b.status]) || (sinceKey(a) - sinceKey(b)) || byName(a, b));
      else list.sort((a, b) => (sinceKey(a) - sinceKey(b)) || byName(a, b));
      this.rows = list.map((r) => r.id);
    }
    return { dirty, all, order };
  }

  /**
   * Per-channel figures: the hub's `counts` (channel messages, snapshot) when
   * it sends them, else computed here from the records (at most once a second).
   */
  channelStats(now) {
    const out = [];
    const needCompute = [...this.client.channels.values()].some((c) => !c.counts);
    if (needCompute && (!this.countsCache || now - this.countsAt >= 1000)) {
      this.countsCache = this.computeCounts();
      this.countsAt = now;
    }
    for (const [key, c] of this.client.channels) {
      if (c.counts) out.push({ key, name: c.name, kind: c.kind, counts: c.counts, connected: c.connected, lingering: c.lingering, longest: c.longest_available_since_ms, fromHub: true });
      else out.push({ key, name: c.name, kind: c.kind, ...(this.countsCache.get(key) || emptyCounts()), fromHub: false });
    }
    return out;
  }

  computeCounts() {
    const byKey = new Map();
    for (const rec of this.client.agents.values()) {
      for (const c of rec.channels) {
        if (!c.connected) continue;
        const key = channelKey(c);
        let e = byKey.get(key);
        if (!e) byKey.set(key, (e = emptyCounts()));
        e.counts[rec.status] += 1;
        e.connected += 1;
        if (c.lingering) e.lingering += 1;
        if (rec.status === "available" && (e.longest === null || rec.status_since_ms < e.longest)) e.longest = rec.status_since_ms;
      }
    }
    return byKey;
  }
}

/**
 * The start of the time in state for "longest first": a record with no
 * known start (`status_since_ms` 0, never signed in) sorts last, not as the
 * longest of all.
 */
const sinceKey = (rec) => rec.status_since_ms || Number.MAX_SAFE_INTEGER;

function emptyCounts() {
  return { counts: Object.fromEntries(STATUSES.map((s) => [s, 0])), connected: 0, lingering: 0, longest: null };
}
