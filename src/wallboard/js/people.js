// The admin's "People and channels" view: the tenant's directory at runtime
// (PROTOCOL.md §7.1) — find, add, edit and delete users; add, rename and
// delete channels.
//
// It reads the directory with `directory` and changes it with `put_user`,
// `delete_user`, `put_channel` and `delete_channel` (sent with an idempotency
// key, so a change cut off by the network is repeated at most once). The hub
// is the judge of every field: its refusal (`bad_request` naming the field,
// `not_found`, `forbidden`, `unavailable`, …) is shown next to the form as it
// words it, the field it names is marked, and the form keeps what was typed.
// A change that succeeds is announced in the view's live region once the view
// has read the directory again.
//
// When it reads the directory again: after each of this admin's changes, on
// the Refresh button, after a reconnect's snapshot, and (at most twice a
// second) when the live data says the directory changed under it — a
// `channel` or `channel_removed` message, an `agent_removed`, or an `agent`
// delta for an id the view does not know. Another admin's change to a
// supervisor's or an admin's entry sends no delta: Refresh shows it.
//
// Live data never rewrites the forms: a refresh updates the results and the
// channel list in place (elements kept per id, so a focused button keeps the
// focus), and adds or removes channel checkboxes in the forms without
// touching the others or what was typed.

import { channelKey, esc } from "./format.js";

const $ = (id) => document.getElementById(id);
const KINDS = ["queue", "chat", "campaign"];
const KIND_LABEL = { queue: "queue", chat: "chat", campaign: "campaign" };
const ROLES = ["agent", "supervisor", "admin"];
const PAGE = 50;
/** At most one refresh per this long for changes seen in the live data. */
const LIVE_REFRESH_MS = 500;

/** The HTML each list item was last drawn with. */
const drawn = new WeakMap();
const byKey = (list) => new Map(list.map((c) => [channelKey(c), c]));
const sameChannels = (a, b) => JSON.stringify([...(a || [])].map(channelKey).sort()) === JSON.stringify([...(b || [])].map(channelKey).sort());

function invalid(el, on) {
  if (!el) return;
  // A group (roles, channels, capacity) is marked by a class; a control by aria-invalid.
  if (el.tagName === "FIELDSET") el.classList.toggle("invalid", on);
  else if (on) el.setAttribute("aria-invalid", "true");
  else el.removeAttribute("aria-invalid");
}

/**
 * A list of channel checkboxes kept in step with the directory: a channel
 * added gets a box, a removed one loses it, a renamed one its label; the
 * others stay as they are (checked, focused).
 */
class ChannelChecks {
  constructor(box, name) {
    this.box = box;
    this.name = name;
  }
  sync(channels) {
    const want = new Map(channels.map((c) => [channelKey(c), c]));
    for (const label of [...this.box.children]) {
      if (!want.has(label.dataset.channel)) label.remove();
    }
    const have = new Map([...this.box.children].map((l) => [l.dataset.channel, l]));
    let before = null;
    for (const [key, c] of want) {
      let label = have.get(key);
      if (!label) {
        label = document.createElement("label");
        label.dataset.channel = key;
        label.innerHTML = `<input type="checkbox" name="${this.name}" value="${esc(key)}"> <span></span>`;
        if (before) before.after(label);
        else this.box.prepend(label);
      }
      const text = `${c.name} (${KIND_LABEL[c.kind] || c.kind} ${c.id})`;
      const span = label.querySelector("span");
      if (span.textContent !== text) span.textContent = text;
      before = label;
    }
  }
  get chosen() {
    return [...this.box.querySelectorAll("input:checked")].map((i) => {
      const [kind, ...id] = i.value.split(":");
      return { kind, id: id.join(":") };
    });
  }
  set chosen(list) {
    const keys = new Set((list || []).map(channelKey));
    for (const i of this.box.querySelectorAll("input")) i.checked = keys.has(i.value);
  }
}

export class PeopleView {
  constructor({ client }) {
    this.client = client;
    /** The last `directory` result, or null before the first. */
    this.dir = null;
    this.users = new Map();
    this.channels = new Map();
    this.loading = null;
    this.again = false;
    this.liveTimer = null;
    this.shown = PAGE;
    /** The user form: null (closed), or { mode: "add" | "edit", id, opener }. */
    this.userForm = null;
    this.channelForm = null;
    /** The open confirmation: { what: "user" | "channel", key, opener }. */
    this.confirming = null;
    this.busy = false;
    this.scope = new ChannelChecks($("pc-u-scope"), "scope");
    this.assigned = new ChannelChecks($("pc-u-assigned"), "assigned");

    $("pc-view").addEventListener("toggle", () => { if ($("pc-view").open) this.refresh(); });
    $("pc-refresh").addEventListener("click", () => this.refresh(true));
    $("pc-query").addEventListener("input", () => { this.shown = PAGE; this.renderUsers(); });
    $("pc-role").addEventListener("change", () => { this.shown = PAGE; this.renderUsers(); });
    $("pc-search").addEventListener("submit", (ev) => ev.preventDefault());
    $("pc-more").addEventListener("click", () => { this.shown += PAGE; this.renderUsers(); });
    $("pc-add").addEventListener("click", () => this.openUser(null, $("pc-add")));
    $("pc-users").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-act]");
      if (!b) return;
      const id = b.closest("[data-user]").dataset.user;
      if (b.dataset.act === "edit") this.openUser(id, b);
      else this.confirm("user", id, b);
    });
    $("pc-user").addEventListener("submit", (ev) => { ev.preventDefault(); this.saveUser(); });
    $("pc-u-cancel").addEventListener("click", () => this.closeUser());
    $("pc-user").addEventListener("change", (ev) => {
      if (ev.target.name === "role" || ev.target.name === "scope-all") this.syncUserForm();
    });

    $("pc-ch-add").addEventListener("click", () => this.openChannel(null, $("pc-ch-add")));
    $("pc-channels").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-act]");
      if (!b) return;
      const key = b.closest("[data-channel]").dataset.channel;
      if (b.dataset.act === "rename") this.openChannel(key, b);
      else this.confirm("channel", key, b);
    });
    $("pc-channel").addEventListener("submit", (ev) => { ev.preventDefault(); this.saveChannel(); });
    $("pc-c-cancel").addEventListener("click", () => this.closeChannel());

    $("pc-confirm-yes").addEventListener("click", () => this.confirmed());
    $("pc-confirm-no").addEventListener("click", () => this.cancelConfirm());
    $("pc-confirm").addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); this.cancelConfirm(); }
    });

    // The directory changed under the view (another admin, or this one on another tab).
    const soon = () => this.refreshSoon();
    client.on("channel", soon);
    client.on("channel_removed", soon);
    client.on("agent_removed", soon);
    client.on("agent", (rec) => { if (this.dir && !this.users.has(rec.id)) soon(); });
    client.on("snapshot", soon);
  }

  get open() {
    return !$("people-box").hidden && $("pc-view").open;
  }

  show(isAdmin) {
    $("people-box").hidden = !isAdmin;
    if (isAdmin && $("pc-view").open) this.refresh();
  }

  refreshSoon() {
    if (!this.open || this.liveTimer) return;
    this.liveTimer = setTimeout(() => { this.liveTimer = null; this.refresh(); }, LIVE_REFRESH_MS);
  }

  /**
   * Reads the directory again: one request at a time; asked for meanwhile,
   * it reads once more after the one in flight (and resolves after that).
   */
  refresh(announce = false) {
    if (this.loading) { this.again = true; return this.loading; }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          try {
            const asked = performance.now();
            const d = await this.client.request({ type: "directory" });
            this.readMs = Math.round(performance.now() - asked);
            this.apply(d);
            $("pc-load").textContent = "";
            if (announce) this.say(`Read the directory: ${d.users.length} people, ${d.channels.length} channels.`);
          } catch (e) {
            $("pc-load").textContent = `Could not read the directory (${e.code || "error"}): ${e.message}`;
          }
        } while (this.again);
      } finally {
        // In the same turn as the last check of `again`: no refresh asked for in between is lost.
        this.loading = null;
      }
    })();
    return this.loading;
  }

  apply(d) {
    this.dir = d;
    this.users = new Map(d.users.map((u) => [u.id, u]));
    this.channels = byKey(d.channels);
    $("pc-version").textContent = `${d.users.length} people, ${d.channels.length} channels · directory version ${d.version}`;
    const sorted = [...d.channels].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    this.scope.sync(sorted);
    this.assigned.sync(sorted);
    this.renderUsers();
    this.renderChannels(sorted);
    // Someone else removed what a form or a confirmation is about: say so (the form keeps its edits).
    if (this.userForm?.mode === "edit" && !this.users.has(this.userForm.id)) {
      this.formError("pc-u-error", `${this.userForm.id} was deleted meanwhile; saving creates the user again.`);
    }
    if (this.channelForm?.mode === "edit" && !this.channels.has(this.channelForm.key)) {
      this.formError("pc-c-error", `${this.channelForm.key} was deleted meanwhile; saving creates the channel again.`);
    }
  }

  // ---- the lists -------------------------------------------------------------

  matches() {
    if (!this.dir) return [];
    const q = $("pc-query").value.trim().toLowerCase();
    const role = $("pc-role").value;
    return this.dir.users
      .filter((u) => (!role || u.roles.includes(role)) && (!q || u.id.toLowerCase().includes(q) || u.name.toLowerCase().includes(q)))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  describeUser(u) {
    const parts = [u.id, u.roles.join(", ")];
    if (u.roles.includes("supervisor")) parts.push(u.supervises ? `supervises ${u.supervises.length ? u.supervises.map((c) => this.channelName(c)).join(", ") : "no channel"}` : "supervises all");
    if (u.roles.includes("agent")) parts.push(`assigned ${u.assigned?.length ? u.assigned.map((c) => this.channelName(c)).join(", ") : "nothing"}`);
    if (u.capacity) parts.push(`capacity ${KINDS.filter((k) => u.capacity[k] !== undefined).map((k) => `${k} ${u.capacity[k]}`).join(", ")}`);
    return parts.join(" · ");
  }

  channelName(c) {
    return this.channels.get(channelKey(c))?.name || `${c.kind} ${c.id}`;
  }

  renderUsers() {
    const all = this.matches();
    const list = all.slice(0, this.shown);
    $("pc-count").textContent = this.dir ? `${all.length} of ${this.dir.users.length} people match${all.length > list.length ? `; showing ${list.length}` : ""}` : "";
    $("pc-more").hidden = all.length <= list.length;
    this.keyed($("pc-users"), "user", list.map((u) => ({
      key: u.id,
      html: `<span class="pc-who"><strong>${esc(u.name)}</strong> <span class="muted">${esc(this.describeUser(u))}</span></span>
        <span class="pc-acts"><button type="button" data-act="edit" aria-label="Edit ${esc(u.name)} (${esc(u.id)})">Edit</button>
        <button type="button" data-act="delete" class="danger" aria-label="Delete ${esc(u.name)} (${esc(u.id)})…">Delete…</button></span>`,
    })));
  }

  renderChannels(sorted) {
    this.keyed($("pc-channels"), "channel", sorted.map((c) => ({
      key: channelKey(c),
      html: `<span class="pc-who"><strong>${esc(c.name)}</strong> <span class="muted">${esc(KIND_LABEL[c.kind] || c.kind)} ${esc(c.id)}</span></span>
        <span class="pc-acts"><button type="button" data-act="rename" aria-label="Rename ${esc(c.name)} (${esc(c.kind)} ${esc(c.id)})">Rename</button>
        <button type="button" data-act="delete" class="danger" aria-label="Delete ${esc(c.name)} (${esc(c.kind)} ${esc(c.id)})…">Delete…</button></span>`,
    })));
  }

  /**
   * Makes `ul` hold one `li` per item, in order, reusing each key's element
   * (and rewriting it only when its text changed): a focused button stays
   * the same element and keeps the focus.
   */
  keyed(ul, attr, items) {
    const have = new Map([...ul.children].map((li) => [li.dataset[attr], li]));
    const want = new Set(items.map((i) => i.key));
    const focus = ul.contains(document.activeElement) ? document.activeElement : null;
    const focusAct = focus?.dataset.act;
    const focusKey = focus?.closest("li")?.dataset[attr];
    for (const [key, li] of have) if (!want.has(key)) li.remove();
    let prev = null;
    for (const item of items) {
      let li = have.get(item.key);
      if (!li) {
        li = document.createElement("li");
        li.dataset[attr] = item.key;
      }
      if (drawn.get(li) !== item.html) {
        li.innerHTML = item.html;
        drawn.set(li, item.html);
      }
      const at = prev ? prev.nextElementSibling : ul.firstElementChild;
      if (at !== li) {
        if (prev) prev.after(li);
        else ul.prepend(li);
      }
      prev = li;
    }
    // A rewritten or moved element may have lost the focus: give it back.
    if (focusKey && !ul.contains(document.activeElement)) {
      const again = [...ul.children].find((li) => li.dataset[attr] === focusKey)?.querySelector(`[data-act="${focusAct}"]`);
      if (again) again.focus();
    }
  }

  say(text) {
    $("pc-note").textContent = text;
  }

  formError(id, text) {
    $(id).textContent = text;
  }

  // ---- the user form ---------------------------------------------------------

  openUser(id, opener) {
    this.cancelConfirm(false);
    this.closeChannel(false);
    const u = id ? this.users.get(id) : null;
    if (id && !u) return;
    this.userForm = { mode: u ? "edit" : "add", id, opener };
    $("pc-user-title").textContent = u ? `Edit ${u.name} (${u.id})` : "Add a person";
    $("pc-u-save").textContent = u ? "Save changes" : "Add person";
    $("pc-u-id").value = u ? u.id : "";
    $("pc-u-id").readOnly = !!u;
    $("pc-u-name").value = u ? u.name : "";
    for (const r of ROLES) $(`pc-u-role-${r}`).checked = !!u?.roles.includes(r);
    $("pc-u-scope-all").checked = !u?.supervises;
    $("pc-u-scope-some").checked = !!u?.supervises;
    this.scope.chosen = u?.supervises || [];
    this.assigned.chosen = u?.assigned || [];
    for (const k of KINDS) $(`pc-u-cap-${k}`).value = u?.capacity?.[k] ?? "";
    this.clearErrors("pc-user", "pc-u-error");
    $("pc-user").hidden = false;
    this.syncUserForm();
    (u ? $("pc-u-name") : $("pc-u-id")).focus();
  }

  /** Shows the parts of the form the chosen roles use. */
  syncUserForm() {
    const agent = $("pc-u-role-agent").checked;
    const sup = $("pc-u-role-supervisor").checked;
    $("pc-u-scope-box").hidden = !sup;
    $("pc-u-scope").hidden = !$("pc-u-scope-some").checked;
    $("pc-u-assigned-box").hidden = !agent;
    $("pc-u-cap-box").hidden = !agent;
  }

  closeUser(focus = true) {
    if (!this.userForm) return;
    const opener = this.userForm.opener;
    this.userForm = null;
    $("pc-user").hidden = true;
    if (focus) this.refocus(opener, $("pc-add"));
  }

  clearErrors(formId, errId) {
    for (const el of $(formId).querySelectorAll("[aria-invalid], fieldset.invalid")) invalid(el, false);
    $(errId).textContent = "";
  }

  /** The user as the form says, or the form's own complaints. */
  readUser() {
    const errors = [];
    const user = { id: $("pc-u-id").value.trim(), name: $("pc-u-name").value.trim(), roles: ROLES.filter((r) => $(`pc-u-role-${r}`).checked) };
    if (!user.id) { errors.push("the id is empty"); invalid($("pc-u-id"), true); }
    if (!user.name) { errors.push("the name is empty"); invalid($("pc-u-name"), true); }
    if (!user.roles.length) { errors.push("choose at least one role"); invalid($("pc-u-roles"), true); }
    if (user.roles.includes("supervisor") && $("pc-u-scope-some").checked) user.supervises = this.scope.chosen;
    if (user.roles.includes("agent")) {
      user.assigned = this.assigned.chosen;
      const capacity = {};
      for (const k of KINDS) {
        const el = $(`pc-u-cap-${k}`);
        const v = el.value.trim();
        if (v === "") continue;
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 100 || el.validity?.badInput) {
          errors.push(`capacity (${k}) must be a whole number from 0 to 100, or blank for the tenant's`);
          invalid(el, true);
        } else capacity[k] = n;
      }
      if (Object.keys(capacity).length) user.capacity = capacity;
    }
    return { user, errors };
  }

  async saveUser() {
    if (this.busy || !this.userForm) return;
    this.clearErrors("pc-user", "pc-u-error");
    const { user, errors } = this.readUser();
    if (errors.length) return this.formError("pc-u-error", `Not saved: ${errors.join("; ")}.`);
    const form = this.userForm;
    const before = form.mode === "edit" ? this.users.get(form.id) : null;
    this.busy = true;
    $("pc-u-save").setAttribute("aria-disabled", "true");
    this.formError("pc-u-error", "");
    try {
      const r = await this.client.change({ type: "put_user", user });
      await this.refresh();
      // The form closed (Cancel) while saving: the change was still made.
      if (this.userForm === form) this.closeUser();
      const what = !before ? "Added" : "Saved";
      const signedOut = before && (before.roles.join() !== user.roles.join() || !sameChannels(before.supervises, user.supervises) || !!before.supervises !== !!user.supervises)
        ? " Their open sessions sign in again with the new roles and scope." : "";
      this.say(r.changed === false ? `Nothing to change: the directory already says that of ${user.name} (${user.id}).` : `${what} ${user.name} (${user.id}).${signedOut}`);
    } catch (e) {
      this.hubError(e, "pc-u-error", userField);
    } finally {
      this.busy = false;
      $("pc-u-save").removeAttribute("aria-disabled");
    }
  }

  /** Shows the hub's refusal next to the form, as it words it, and marks the field it names. */
  hubError(e, errId, fieldOf) {
    const code = e.code || "error";
    const lead = { bad_request: "Not saved: the hub refused it", not_found: "Not saved: the hub does not know it", forbidden: "Not saved: not allowed", unavailable: "Not saved: the hub could not store it now; try again", outcome_unknown: "Unknown whether it was saved", disconnected: "Not saved: not connected" }[code] || "Not saved";
    this.formError(errId, `${lead} (${code}): ${e.message}`);
    const el = fieldOf(e.message || "");
    if (el) invalid(el, true);
  }

  // ---- the channel form ------------------------------------------------------

  openChannel(key, opener) {
    this.cancelConfirm(false);
    this.closeUser(false);
    const c = key ? this.channels.get(key) : null;
    if (key && !c) return;
    this.channelForm = { mode: c ? "edit" : "add", key, opener };
    $("pc-channel-title").textContent = c ? `Rename ${c.name} (${c.kind} ${c.id})` : "Add a channel";
    $("pc-c-save").textContent = c ? "Rename channel" : "Add channel";
    $("pc-c-kind").value = c ? c.kind : "queue";
    $("pc-c-kind").disabled = !!c;
    $("pc-c-id").value = c ? c.id : "";
    $("pc-c-id").readOnly = !!c;
    $("pc-c-name").value = c ? c.name : "";
    this.clearErrors("pc-channel", "pc-c-error");
    $("pc-channel").hidden = false;
    (c ? $("pc-c-name") : $("pc-c-kind")).focus();
  }

  closeChannel(focus = true) {
    if (!this.channelForm) return;
    const opener = this.channelForm.opener;
    this.channelForm = null;
    $("pc-channel").hidden = true;
    if (focus) this.refocus(opener, $("pc-ch-add"));
  }

  async saveChannel() {
    if (this.busy || !this.channelForm) return;
    this.clearErrors("pc-channel", "pc-c-error");
    const channel = { kind: $("pc-c-kind").value, id: $("pc-c-id").value.trim(), name: $("pc-c-name").value.trim() };
    const errors = [];
    if (!channel.id) { errors.push("the id is empty"); invalid($("pc-c-id"), true); }
    if (!channel.name) { errors.push("the name is empty"); invalid($("pc-c-name"), true); }
    if (errors.length) return this.formError("pc-c-error", `Not saved: ${errors.join("; ")}.`);
    const form = this.channelForm;
    const before = this.channels.get(channelKey(channel));
    this.busy = true;
    $("pc-c-save").setAttribute("aria-disabled", "true");
    try {
      const r = await this.client.change({ type: "put_channel", channel });
      await this.refresh();
      if (this.channelForm === form) this.closeChannel();
      this.say(r.changed === false ? `Nothing to change: ${channel.kind} ${channel.id} is already named ${channel.name}.`
        : before ? `Renamed ${channel.kind} ${channel.id} from ${before.name} to ${channel.name}.` : `Added the ${channel.kind} ${channel.name} (${channel.id}).`);
    } catch (e) {
      this.hubError(e, "pc-c-error", (m) => (m.startsWith("channel.id") ? $("pc-c-id") : m.startsWith("channel.name") ? $("pc-c-name") : null));
    } finally {
      this.busy = false;
      $("pc-c-save").removeAttribute("aria-disabled");
    }
  }

  // ---- confirmations ---------------------------------------------------------

  confirm(what, key, opener) {
    this.closeUser(false);
    this.closeChannel(false);
    let text, yes;
    if (what === "user") {
      const u = this.users.get(key);
      if (!u) return;
      text = `Delete ${u.name} (${u.id})? The user can no longer sign in; their open sessions end.${u.roles.includes("agent") ? " The agent leaves the wallboard; their history stays readable." : ""}`;
      yes = `Delete ${u.name}`;
    } else {
      const c = this.channels.get(key);
      if (!c) return;
      const agents = this.dir.users.filter((u) => u.assigned?.some((a) => channelKey(a) === key)).length;
      const sups = this.dir.users.filter((u) => u.supervises?.some((a) => channelKey(a) === key)).length;
      let connected = 0;
      for (const rec of this.client.agents.values()) if (rec.channels?.some((ch) => ch.connected && channelKey(ch) === key)) connected++;
      text = `Delete the ${c.kind} ${c.name} (${c.id})? It is taken out of every agent's assignments and connections and every supervisor's scope: `
        + `${agents} agent${agents === 1 ? "" : "s"} assigned, ${connected} connected now, ${sups} supervisor${sups === 1 ? "" : "s"} scoped to it.`;
      yes = `Delete ${c.name}`;
    }
    this.confirming = { what, key, opener };
    // Next to what it is about: under the people or the channels.
    $(what === "user" ? "pc-users" : "pc-channels").after($("pc-confirm"));
    $("pc-confirm-text").textContent = text;
    $("pc-confirm-yes").textContent = yes;
    $("pc-confirm-error").textContent = "";
    $("pc-confirm").hidden = false;
    // As the bulk sign-out: the focus on the harmless choice.
    $("pc-confirm-no").focus();
  }

  cancelConfirm(focus = true) {
    if (!this.confirming) return;
    const opener = this.confirming.opener;
    this.confirming = null;
    $("pc-confirm").hidden = true;
    if (focus) this.refocus(opener, $("pc-add"));
  }

  async confirmed() {
    const c = this.confirming;
    if (!c || this.busy) return;
    this.busy = true;
    $("pc-confirm-yes").setAttribute("aria-disabled", "true");
    $("pc-confirm-error").textContent = "";
    try {
      let label;
      if (c.what === "user") {
        const u = this.users.get(c.key);
        label = u ? `${u.name} (${u.id})` : c.key;
        await this.client.change({ type: "delete_user", user_id: c.key });
      } else {
        const ch = this.channels.get(c.key);
        const [kind, ...rest] = c.key.split(":");
        label = ch ? `the ${ch.kind} ${ch.name} (${ch.id})` : c.key;
        await this.client.change({ type: "delete_channel", channel: { kind, id: rest.join(":") } });
      }
      await this.refresh();
      if (this.confirming === c) {
        this.confirming = null;
        $("pc-confirm").hidden = true;
        $(c.what === "user" ? "pc-add" : "pc-ch-add").focus();
      }
      this.say(`Deleted ${label}.`);
    } catch (e) {
      this.hubError(e, "pc-confirm-error", () => null);
    } finally {
      this.busy = false;
      $("pc-confirm-yes").removeAttribute("aria-disabled");
    }
  }

  /** Focus back on the control that opened a form, or on `fallback` when it is gone. */
  refocus(opener, fallback) {
    if (opener && opener.isConnected && !opener.closest("[hidden]")) opener.focus();
    else fallback.focus();
  }
}

/** The control of the user form that a hub's message names (`user.id must …`). */
function userField(message) {
  const m = message.match(/^(user\.[a-z_]+|assigned)/);
  if (!m) return null;
  return {
    "user.id": $("pc-u-id"), "user.name": $("pc-u-name"), "user.roles": $("pc-u-roles"),
    "user.supervises": $("pc-u-scope-box"), "user.capacity": $("pc-u-cap-box"), assigned: $("pc-u-assigned-box"),
  }[m[1]] || null;
}
