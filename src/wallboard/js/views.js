// Saved views: the list's filters, sort and columns, kept per supervisor
// (this browser's localStorage, under the tenant and the user's id: another
// supervisor signing in on the same screen gets their own), saved under
// names to come back to, and shared as a link that carries the view and
// never a token (the one who opens it signs in as themselves).
//
// A view: { status, channel, text, sort, hide: ["time" | "reason" | "chan" | "dev"] }.

const $ = (id) => document.getElementById(id);

/** The columns a supervisor may hide, with their widths in the row's grid. */
const COLUMNS = [
  ["name", "14rem"], ["status", "8.5rem"], ["time", "5rem"],
  ["reason", "minmax(8rem, 1.4fr)"], ["chan", "minmax(8rem, 1.2fr)"], ["dev", "9rem"],
];
const HIDEABLE = new Set(["time", "reason", "chan", "dev"]);
const SORTS = new Set(["name", "status", "time"]);
const STATUSES = new Set(["", "available", "busy", "wrap_up", "paused", "offline"]);

export const DEFAULT_VIEW = { status: "", channel: "", text: "", sort: "name", hide: [] };

/** A view from untrusted text (a link, storage): only known values survive. */
export function cleanView(v) {
  const out = { ...DEFAULT_VIEW, hide: [] };
  if (!v || typeof v !== "object") return out;
  if (STATUSES.has(v.status)) out.status = v.status;
  if (typeof v.channel === "string" && v.channel.length <= 300) out.channel = v.channel;
  if (typeof v.text === "string") out.text = v.text.slice(0, 200);
  if (SORTS.has(v.sort)) out.sort = v.sort;
  if (Array.isArray(v.hide)) out.hide = [...new Set(v.hide.filter((c) => HIDEABLE.has(c)))];
  return out;
}

/** The view a link's fragment names (`#view&status=…`), or null. */
export function viewFromFragment(params) {
  if (!params.has("view")) return null;
  return cleanView({
    status: params.get("status") ?? "", channel: params.get("channel") ?? "", text: params.get("text") ?? "",
    sort: params.get("sort") ?? "name", hide: (params.get("hide") ?? "").split(",").filter(Boolean),
  });
}

export function linkTo(view) {
  const p = new URLSearchParams();
  p.set("view", "");
  for (const k of ["status", "channel", "text", "sort"]) if (view[k] !== DEFAULT_VIEW[k]) p.set(k, view[k]);
  if (view.hide.length) p.set("hide", view.hide.join(","));
  return `${location.origin}${location.pathname}#${p.toString().replace("view=&", "view&").replace(/^view=$/, "view")}`;
}

export class Views {
  /** `apply(view)` sets the page's filters and sort (main.js). */
  constructor({ apply }) {
    this.apply = apply;
    this.key = null;
    this.saved = {};
    this.view = { ...DEFAULT_VIEW };
    for (const [col] of COLUMNS) {
      const box = document.querySelector(`#columns input[data-col="${col}"]`);
      box?.addEventListener("change", () => { this.change({ hide: this.hiddenFromBoxes() }); });
    }
    $("view-save").addEventListener("click", () => this.saveAs());
    $("view-name").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); this.saveAs(); } });
    $("view-apply").addEventListener("click", () => this.applySaved());
    $("view-delete").addEventListener("click", () => this.deleteSaved());
    $("view-copy").addEventListener("click", () => this.copyLink());
  }

  hiddenFromBoxes() {
    return [...document.querySelectorAll("#columns input[data-col]")].filter((b) => !b.checked).map((b) => b.dataset.col);
  }

  /**
   * Signed in as `user` of `tenant`: their stored view (or `linked`, the
   * view of the link the page was opened with) becomes the page's.
   */
  start(tenant, user, linked) {
    this.key = `presence-hub-wallboard-views:${tenant}:${user}`;
    let stored = null;
    try { stored = JSON.parse(localStorage.getItem(this.key) || "null"); } catch { /* none */ }
    this.saved = {};
    for (const [name, v] of Object.entries(stored?.saved ?? {})) this.saved[String(name).slice(0, 80)] = cleanView(v);
    this.set(linked ?? cleanView(stored?.current));
    this.fillSaved();
  }

  /** The supervisor changed part of the view (a filter, the sort, a column). */
  change(part) {
    this.view = cleanView({ ...this.view, ...part });
    this.columns();
    this.store();
  }

  set(view) {
    this.view = cleanView(view);
    this.apply(this.view);
    for (const b of document.querySelectorAll("#columns input[data-col]")) b.checked = !this.view.hide.includes(b.dataset.col);
    this.columns();
    this.store();
  }

  /** Hidden columns leave the grid: the row's template lists the shown ones. */
  columns() {
    const table = $("agent-table");
    const shown = COLUMNS.filter(([c]) => !this.view.hide.includes(c));
    table.style.setProperty("--cols", shown.map(([, w]) => w).join(" "));
    for (const c of HIDEABLE) table.classList.toggle(`hide-${c}`, this.view.hide.includes(c));
    $("view-link").value = linkTo(this.view);
  }

  store() {
    if (!this.key) return;
    try { localStorage.setItem(this.key, JSON.stringify({ current: this.view, saved: this.saved })); } catch { /* storage full or off: the view lasts the page */ }
  }

  fillSaved() {
    const sel = $("view-saved");
    const names = Object.keys(this.saved).sort();
    sel.replaceChildren(...names.map((n) => new Option(n, n)));
    const none = names.length === 0;
    for (const id of ["view-apply", "view-delete"]) {
      const b = $(id);
      if (none) b.setAttribute("aria-disabled", "true");
      else b.removeAttribute("aria-disabled");
      b.title = none ? "no saved view yet" : "";
    }
    sel.hidden = none;
  }

  note(text) { $("view-note").textContent = text; }

  saveAs() {
    const name = $("view-name").value.trim().slice(0, 80);
    if (!name) { this.note("Name the view first."); $("view-name").focus(); return; }
    this.saved[name] = { ...this.view };
    this.store();
    this.fillSaved();
    $("view-saved").value = name;
    $("view-name").value = "";
    this.note(`Saved “${name}”.`);
  }

  applySaved() {
    const name = $("view-saved").value;
    if (!this.saved[name]) return;
    this.set(this.saved[name]);
    this.note(`Showing “${name}”.`);
  }

  deleteSaved() {
    const name = $("view-saved").value;
    if (!this.saved[name]) return;
    delete this.saved[name];
    this.store();
    this.fillSaved();
    this.note(`Deleted “${name}”.`);
  }

  async copyLink() {
    const link = $("view-link").value;
    try {
      await navigator.clipboard.writeText(link);
      this.note("Link copied: it carries the view, not your sign-in.");
    } catch {
      $("view-link").select();
      this.note("Copy the selected link: it carries the view, not your sign-in.");
    }
  }
}
