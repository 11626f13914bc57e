// The admin's settings form: every setting of PROTOCOL.md §7 and §10.0.
//
// The hub leaves a setting at its default off the wire (§10), so the form
// reads a missing setting as its default and always shows every field: a
// tenant at the defaults can add pause reason codes, and add them back once
// cleared. Live `settings` messages fill only the fields the admin has not
// edited; an edited field keeps its value (and its focus), and the form says
// when someone else changed a field being edited. Saving validates each field
// first (an empty number is an error, never 0; a reason code needs a label)
// and sends only the settings whose value differs from the hub's. Rules that
// tie settings together (the sign-in reason must be a listed code) are the
// hub's: its `bad_request` message is shown as it is, and the edits are kept.

const $ = (id) => document.getElementById(id);

/** The §7/§10.0 defaults: what a setting missing from a `settings` object is. */
export const DEFAULTS = Object.freeze({
  supervisor_can_end_wrap_up: false,
  wrap_up_seconds: 30,
  unassigned_access_default: true,
  capacity: { queue: 1, chat: 1, campaign: 1 },
  pause_reasons: [],
  sign_in_status: "available",
  sign_in_reason: "signed_in",
  restore_window_s: 3600,
});

const KINDS = ["queue", "chat", "campaign"];
const MAX_TEXT = 200;
const MAX_REASONS = 100;
const MAX_MINUTES = 1440;

/** Characters as the hub counts them (Unicode scalar values, not UTF-16 units). */
const chars = (s) => [...s].length;

/** JSON with object keys sorted: equal values, equal text. */
export const canon = (v) => JSON.stringify(v, (_, x) =>
  x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x);

/** Settings as the hub sent them, with every omitted setting at its default. */
export function normalize(s) {
  s = s || {};
  const out = { ...DEFAULTS, ...s };
  out.capacity = { ...DEFAULTS.capacity, ...(s.capacity || {}) };
  out.pause_reasons = (Array.isArray(s.pause_reasons) ? s.pause_reasons : []).map((r) =>
    r.max_minutes === undefined || r.max_minutes === null ? { code: r.code, label: r.label } : { code: r.code, label: r.label, max_minutes: r.max_minutes });
  return out;
}

/** Sets or clears an element's invalid mark. */
function invalid(el, on) {
  if (on) el.setAttribute("aria-invalid", "true");
  else el.removeAttribute("aria-invalid");
}

/** A whole number from min to max, typed into `id` (empty is an error, never 0). */
function intField(id, min, max, label) {
  return {
    els: () => [$(id)],
    read(mark) {
      const el = $(id);
      const v = el.value.trim();
      const n = Number(v);
      const bad = v === "" || el.validity?.badInput || !Number.isInteger(n) || n < min || n > max;
      if (mark) invalid(el, bad);
      return bad ? { errors: [`${label} must be a whole number from ${min} to ${max}`] } : { value: n };
    },
    write(v) { $(id).value = String(v); },
  };
}

function boolField(id) {
  return {
    els: () => [$(id)],
    read() { return { value: $(id).checked }; },
    write(v) { $(id).checked = !!v; },
  };
}

/** The capacity per channel kind: three whole numbers 0–100, sent together (a kind left out would be 1). */
const capacityField = {
  parts: Object.fromEntries(KINDS.map((k) => [k, intField(`s-cap-${k}`, 0, 100, `Capacity (${k})`)])),
  els: () => KINDS.map((k) => $(`s-cap-${k}`)),
  read(mark) {
    const value = {};
    const errors = [];
    for (const k of KINDS) {
      const r = this.parts[k].read(mark);
      if (r.errors) errors.push(...r.errors);
      else value[k] = r.value;
    }
    return errors.length ? { errors } : { value };
  },
  write(v) { for (const k of KINDS) this.parts[k].write(v[k]); },
};

/**
 * The pause reason codes: a small table of inputs, one code a row (code,
 * label, optional max minutes), so a label may hold any character. Blank rows
 * are ignored; a row with anything in it needs a code and a label.
 */
const reasonsField = {
  els: () => [...$("s-reasons-rows").querySelectorAll("input")],
  read(mark) {
    const reasons = [];
    const errors = [];
    const seen = new Set();
    for (const [i, tr] of [...$("s-reasons-rows").rows].entries()) {
      const [codeEl, labelEl, maxEl] = tr.querySelectorAll("input");
      const code = codeEl.value.trim(), label = labelEl.value.trim(), max = maxEl.value.trim();
      if (mark) for (const el of [codeEl, labelEl, maxEl]) invalid(el, false);
      if (!code && !label && !max) continue;
      const name = code ? `pause reason ${code}` : `pause reason row ${i + 1}`;
      const bad = (el, why) => { errors.push(`${name} ${why}`); if (mark) invalid(el, true); };
      if (!code) bad(codeEl, "needs a code");
      else if (chars(code) > MAX_TEXT) bad(codeEl, `has a code over ${MAX_TEXT} characters`);
      else if (seen.has(code)) bad(codeEl, "is listed twice");
      if (!label) bad(labelEl, "needs a label");
      else if (chars(label) > MAX_TEXT) bad(labelEl, `has a label over ${MAX_TEXT} characters`);
      const r = { code, label };
      if (max) {
        const n = Number(max);
        if (!(Number.isFinite(n) && n > 0 && n <= MAX_MINUTES)) bad(maxEl, `needs max minutes above 0 and at most ${MAX_MINUTES}, or none`);
        else r.max_minutes = n;
      }
      seen.add(code);
      reasons.push(r);
    }
    if (reasons.length > MAX_REASONS) errors.push(`at most ${MAX_REASONS} pause reason codes`);
    return errors.length ? { errors } : { value: reasons };
  },
  write(list) {
    const body = $("s-reasons-rows");
    // Rewriting the rows must not take the focus away from a row being looked at.
    const focused = body.contains(document.activeElement) ? document.activeElement : null;
    const at = focused ? [focused.closest("tr").rowIndex - 1, focused.dataset.part] : null;
    body.replaceChildren(...list.map((r) => reasonRow(r)));
    if (at) body.rows[Math.min(at[0], body.rows.length - 1)]?.querySelector(`[data-part="${at[1]}"]`)?.focus();
    syncCodeList();
  },
};

/** One row of the reasons table. */
export function reasonRow(r = { code: "", label: "" }) {
  const tr = document.createElement("tr");
  tr.innerHTML = `<td><input data-part="code" aria-label="code" autocomplete="off" spellcheck="false"></td>
    <td><input data-part="label" aria-label="label" autocomplete="off"></td>
    <td><input data-part="max" aria-label="max minutes (optional)" inputmode="decimal" autocomplete="off" placeholder="—"></td>
    <td><button type="button" class="r-del" aria-label="remove this reason code" title="remove this reason code">✕</button></td>`;
  const [code, label, max] = tr.querySelectorAll("input");
  code.value = r.code;
  label.value = r.label;
  max.value = r.max_minutes === undefined || r.max_minutes === null ? "" : String(r.max_minutes);
  return tr;
}

/** The sign-in reason offers the codes in the table (the hub decides whether it must be one). */
function syncCodeList() {
  const codes = [...$("s-reasons-rows").querySelectorAll('input[data-part="code"]')].map((i) => i.value.trim()).filter(Boolean);
  const list = $("s-reason-codes");
  if ([...list.options].map((o) => o.value).join("\n") === codes.join("\n")) return;
  list.replaceChildren(...codes.map((c) => { const o = document.createElement("option"); o.value = c; return o; }));
}

const FIELDS = [
  { key: "supervisor_can_end_wrap_up", name: "ending wrap-up early", ...boolField("s-endwrap") },
  { key: "wrap_up_seconds", name: "wrap-up seconds", ...intField("s-wrap", 0, 86400, "Wrap-up seconds") },
  { key: "unassigned_access_default", name: "unassigned channels", ...boolField("s-unassigned") },
  { key: "capacity", name: "capacity", ...capacityField },
  { key: "pause_reasons", name: "pause reason codes", ...reasonsField },
  {
    key: "sign_in_status", name: "status on sign-in",
    els: () => [$("s-signin")],
    read() { return { value: $("s-signin").value }; },
    write(v) { $("s-signin").value = v; },
  },
  {
    key: "sign_in_reason", name: "sign-in pause reason",
    els: () => [$("s-signin-reason")],
    read(mark) {
      const v = $("s-signin-reason").value.trim();
      const bad = v === "" || chars(v) > MAX_TEXT;
      if (mark) invalid($("s-signin-reason"), bad);
      return bad ? { errors: [`The sign-in pause reason must be 1 to ${MAX_TEXT} characters`] } : { value: v };
    },
    write(v) { $("s-signin-reason").value = v; },
  },
  { key: "restore_window_s", name: "restore window", ...intField("s-restore", 0, 604800, "Restore window seconds") },
];
const BY_KEY = new Map(FIELDS.map((f) => [f.key, f]));

export class AdminForm {
  constructor(client) {
    this.client = client;
    /** Settings the admin has edited and not saved. */
    this.edited = new Set();
    /** The hub's settings as last seen (normalized), or null before any. */
    this.last = null;
    this.saving = false;
    const form = $("settingsform");
    const touched = (ev) => {
      const key = ev.target.closest("[data-setting]")?.dataset.setting;
      if (!key || !BY_KEY.has(key)) return;
      this.mark(key, true);
      if (key === "pause_reasons") syncCodeList();
    };
    form.addEventListener("input", touched);
    form.addEventListener("change", touched);
    $("s-reason-add").addEventListener("click", () => {
      const tr = $("s-reasons-rows").appendChild(reasonRow());
      this.mark("pause_reasons", true);
      tr.querySelector("input").focus();
    });
    $("s-reasons-rows").addEventListener("click", (ev) => {
      const del = ev.target.closest("button.r-del");
      if (!del) return;
      const tr = del.closest("tr");
      const next = tr.nextElementSibling || tr.previousElementSibling;
      tr.remove();
      this.mark("pause_reasons", true);
      syncCodeList();
      (next?.querySelector("button.r-del") || $("s-reason-add")).focus();
    });
    form.addEventListener("submit", (ev) => { ev.preventDefault(); this.save(); });
    $("s-reset").addEventListener("click", () => {
      for (const key of [...this.edited]) this.mark(key, false);
      for (const f of FIELDS) for (const el of f.els()) invalid(el, false);
      this.last = null;
      this.fill(this.client.settings || {});
      this.note("");
    });
  }

  show(isAdmin) {
    $("admin").hidden = !isAdmin;
    if (isAdmin) this.fill(this.client.settings || {});
  }

  /** Marks a setting edited (unsaved) or not. */
  mark(key, on) {
    if (on) this.edited.add(key);
    else this.edited.delete(key);
    const box = $("settingsform").querySelector(`[data-setting="${key}"]`);
    if (box) box.classList.toggle("edited", on);
  }

  /** Live settings: only the untouched fields follow, and only when they differ. */
  fill(settings) {
    const s = normalize(settings);
    const clashes = [];
    for (const f of FIELDS) {
      const want = canon(s[f.key]);
      if (this.edited.has(f.key)) {
        // Someone else changed a field being edited: say so, keep the edit.
        if (this.last && canon(this.last[f.key]) !== want) {
          const r = f.read(false);
          if (r.errors || canon(r.value) !== want) clashes.push(f.name);
        }
        continue;
      }
      const r = f.read(false);
      if (r.errors || canon(r.value) !== want) {
        f.write(s[f.key]);
        for (const el of f.els()) invalid(el, false);
      }
    }
    this.last = s;
    if (clashes.length) this.note(`Someone else changed ${clashes.join(", ")} meanwhile; your edits are kept. Reset to see theirs.`, false);
  }

  note(text, ok = true) {
    $("s-note").textContent = text;
    $("s-note").className = ok ? "result ok" : "result bad";
  }

  async save() {
    if (this.saving) return;
    const current = this.last || normalize(this.client.settings);
    const patch = {};
    const errors = [];
    for (const f of FIELDS) {
      if (!this.edited.has(f.key)) {
        for (const el of f.els()) invalid(el, false);
        continue;
      }
      const r = f.read(true);
      if (r.errors) errors.push(...r.errors);
      else if (canon(r.value) !== canon(current[f.key])) patch[f.key] = r.value;
    }
    if (errors.length) return this.note(`Not saved: ${errors.join("; ")}.`, false);
    const keys = Object.keys(patch);
    if (keys.length === 0) {
      for (const key of [...this.edited]) this.mark(key, false);
      return this.note("Nothing changed: the form matches the hub's settings.", true);
    }
    this.saving = true;
    $("s-save").disabled = true;
    this.note("Saving…");
    try {
      const r = await this.client.updateSettings(patch);
      const saved = normalize(r?.settings || this.client.settings);
      // A field edited again while saving stays edited; the rest is saved.
      for (const key of [...this.edited]) {
        const v = BY_KEY.get(key).read(false);
        if (!v.errors && canon(v.value) === canon(saved[key])) this.mark(key, false);
      }
      // What this admin saved is no news: no "changed by someone else" for it.
      if (this.last) for (const key of keys) this.last[key] = saved[key];
      this.fill(r?.settings || this.client.settings || {});
      this.note(`Settings saved: ${keys.map((k) => BY_KEY.get(k).name).join(", ")}.`);
    } catch (e) {
      this.note(`Not saved (${e.code || "error"}): ${e.message}`, false);
      // The hub's message starts with the setting it refuses: mark that field.
      const named = FIELDS.find((f) => (e.message || "").startsWith(f.key));
      if (named) for (const el of named.els()) if (named.key !== "pause_reasons") invalid(el, true);
    } finally {
      this.saving = false;
      $("s-save").disabled = false;
    }
  }
}
