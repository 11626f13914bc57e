// Names, durations and labels: everything the page shows instead of an id.

export const STATUSES = ["available", "busy", "wrap_up", "paused", "offline"];
export const STATUS_LABEL = { available: "Available", busy: "Busy", wrap_up: "Wrap-up", paused: "Paused", offline: "Offline" };

export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c]));

/**
 * Time in state: "—" when the hub knows no start (`status_since_ms` 0: an
 * agent who has not signed in since the record was made, PROTOCOL.md §4).
 */
export const since = (ms, now) => (ms ? duration(now - ms) : "—");

/** "m:ss" below an hour, "h:mm:ss" above. */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

/**
 * Who made the status what it is (`status_by`, PROTOCOL.md §4): unlike
 * `changed_by`, a device coming or going (the system's) does not replace
 * it. A hub older than the field sends only `changed_by`.
 */
export const statusBy = (rec) => (rec.status_by !== undefined ? rec.status_by : rec.changed_by);

export const clock = (ms) => new Date(ms).toLocaleTimeString();
export const channelKey = (c) => `${c.kind}:${c.id}`;

/**
 * Names of everything the hub names by id: agents (from the live records),
 * channels (from the scope), supervisors and admins (from a search at sign-in).
 */
export class Names {
  constructor(client) {
    this.client = client;
    this.people = new Map();
  }
  person(id) {
    if (!id) return "";
    if (id === "system") return "the system";
    return this.client.agents.get(id)?.name || this.people.get(id) || id;
  }
  channel(c) {
    if (!c) return "";
    return this.client.channels.get(channelKey(c))?.name || `${c.kind} ${c.id}`;
  }
  /** A pause reason code's label (settings `pause_reasons`), else the text itself. */
  reason(code) {
    const r = ((this.client.settings || {}).pause_reasons || []).find((x) => x.code === code);
    return r ? r.label || r.code : code || "";
  }
  maxMinutes(code) {
    return ((this.client.settings || {}).pause_reasons || []).find((x) => x.code === code)?.max_minutes;
  }
  async load() {
    // Supervisors and admins are not in the records; one search each names them.
    for (const role of ["supervisor", "admin"]) {
      try {
        const r = await this.client.search("", { role, limit: 1000 });
        for (const u of r.agents) this.people.set(u.id, u.name);
      } catch { /* names fall back to ids */ }
    }
  }
}

/** The time-in-state thresholds (seconds) after which a status is shown amber / red. */
export const THRESHOLDS = {
  available: [300, 900],
  busy: [600, 1200],
  wrap_up: [60, 180],
  paused: [600, 1200],
  offline: [Infinity, Infinity],
};

export function level(rec, now) {
  if (rec.pause_overrun_since_ms) return "over";
  if (!rec.status_since_ms) return "";
  const [amber, red] = THRESHOLDS[rec.status] || [Infinity, Infinity];
  const s = (now - rec.status_since_ms) / 1000;
  return s >= red ? "red" : s >= amber ? "amber" : "";
}
