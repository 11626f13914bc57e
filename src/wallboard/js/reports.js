//! The Reports view (issue 25): today's and yesterday's time in each status
//! per agent and per team (a team is a channel: queue, chat or campaign),
//! read from `GET /api/v1/reports/{agents,channels}` (docs/REPORTS.md) with
//! the session's own token — an admin sees the tenant, a scoped supervisor
//! their channels, as the hub decides. Shown as a table (the figures, and
//! the text alternative of the chart) with a stacked bar per row (CSS,
//! `aria-hidden`: the row's cells say the same), in a time zone that
//! defaults to the browser's. CSV downloads are the same reports with
//! `format=csv`; the print stylesheet keeps only this view.
//!
//! No runtime dependency; the page's CSP allows `connect-src 'self'`.

const STATUSES = [
  ["available_s", "Available"],
  ["busy_s", "Busy"],
  ["wrap_up_s", "Wrap-up"],
  ["paused_s", "Paused"],
  ["offline_s", "Offline"],
  ["unknown_s", "Unknown"],
];

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `YYYY-MM-DD` of an instant on the clock of `tz`. */
export function localDate(ms, tz) {
  // en-CA formats dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(ms));
}

/** The civil date `days` after `date` (calendar arithmetic, DST-free). */
export function addDays(date, days) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** `1 h 05 min` from seconds. */
export function duration(s) {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(s % 60).padStart(2, "0")} s`;
}

export class ReportsView {
  constructor({ token }) {
    this.token = token;
    this.loadedMs = null;
    this.rows = 0;
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    const list = [...new Set([zone, "UTC", ...zones])];
    $("rp-tz").innerHTML = list.map((z) => `<option${z === zone ? " selected" : ""}>${esc(z)}</option>`).join("");
    $("rp-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.load(); });
    $("rp-csv").addEventListener("click", () => this.download());
    $("rp-print").addEventListener("click", () => window.print());
    $("rp-view").addEventListener("toggle", () => { if ($("rp-view").open && this.loadedMs === null) this.load(); });
  }

  show(isStaff) {
    $("reports-box").hidden = !isStaff;
  }

  /** The query of the chosen day, zone and grouping. */
  query(format) {
    const tz = $("rp-tz").value;
    const today = localDate(Date.now(), tz);
    const from = $("rp-day").value === "yesterday" ? addDays(today, -1) : today;
    const path = $("rp-by").value === "channels" ? "channels" : "agents";
    const q = new URLSearchParams({ from, to: addDays(from, 1), bucket: "1d", tz, format });
    return { path, url: `/api/v1/reports/${path}?${q}`, from, tz };
  }

  async fetch(format) {
    const { url } = this.query(format);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${this.token}` } });
    if (!res.ok) {
      let message = `${res.status}`;
      try { const body = await res.json(); message = `${body.error.code}: ${body.error.message}`; } catch { /* not JSON */ }
      throw new Error(message);
    }
    return res;
  }

  async load() {
    const note = $("rp-note");
    const error = $("rp-error");
    error.textContent = "";
    note.textContent = "Loading…";
    const { path, from, tz } = this.query("json");
    const started = performance.now();
    try {
      const body = await (await this.fetch("json")).json();
      this.render(body, path);
      this.loadedMs = Math.round(performance.now() - started);
      const gap = body.complete ? "" : " Incomplete: part of this day is no longer kept or was lost (unknown time).";
      note.textContent = `${path === "agents" ? "Agents" : "Teams"}, ${from} (${tz}): ${this.rows} rows.${gap}`;
    } catch (e) {
      note.textContent = "";
      error.textContent = `The report was refused: ${e.message}`;
    }
  }

  render(body, path) {
    const list = path === "agents" ? body.agents : body.channels;
    const kinds = path === "agents" ? STATUSES : STATUSES.filter(([k]) => k !== "unknown_s");
    this.rows = list.length;
    const name = (r) => (path === "agents" ? r.agent_id : `${r.kind} ${r.id}`);
    const head = `<tr><th scope="col">${path === "agents" ? "Agent" : "Team"}</th>${kinds.map(([, l]) => `<th scope="col">${l}</th>`).join("")}<th scope="col">Handled</th><th scope="col">Pause reasons</th><th scope="col" aria-hidden="true">Time in status</th></tr>`;
    const rows = list.map((r) => {
      const t = r.total;
      const sum = kinds.reduce((a, [k]) => a + (t[k] || 0), 0) || 1;
      const bar = kinds.map(([k]) => (t[k] ? `<span class="rp-seg rp-${k.slice(0, -2)}" data-w="${((100 * t[k]) / sum).toFixed(2)}"></span>` : "")).join("");
      const reasons = Object.entries(t.paused_by_reason_s || {}).map(([c, s]) => `${esc(c)} ${duration(s)}`).join(", ");
      return `<tr><th scope="row">${esc(name(r))}</th>${kinds.map(([k]) => `<td>${duration(t[k] || 0)}</td>`).join("")}<td>${t.interactions_handled}</td><td>${reasons}</td><td aria-hidden="true"><div class="rp-bar">${bar}</div></td></tr>`;
    }).join("");
    $("rp-table").innerHTML = `<caption>Time in each status${path === "agents" ? " per agent" : " per team (agents connected)"}; the bars show the same figures</caption><thead>${head}</thead><tbody>${rows}</tbody>`;
    // Widths through the CSSOM: the CSP (`style-src 'self'`) refuses
    // inline style attributes.
    for (const seg of $("rp-table").querySelectorAll(".rp-seg[data-w]")) seg.style.width = `${seg.dataset.w}%`;
    $("rp-legend").innerHTML = kinds.map(([k, l]) => `<span><span class="rp-seg rp-${k.slice(0, -2)}"></span> ${l}</span>`).join(" ");
  }

  /** The CSV of the same report, saved under the hub's file name. */
  async download() {
    $("rp-error").textContent = "";
    try {
      const res = await this.fetch("csv");
      const file = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "")?.[1] || "report.csv";
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = file;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      $("rp-note").textContent = `Downloaded ${file}.`;
    } catch (e) {
      $("rp-error").textContent = `The CSV was refused: ${e.message}`;
    }
  }
}
