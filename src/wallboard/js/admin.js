// The admin's settings form. Live `settings` updates fill only the fields the
// admin has not edited; an edited field keeps its value and the form says that
// the settings changed meanwhile. Saving validates first (an empty number is an
// error, never 0) and sends only the edited fields.

const $ = (id) => document.getElementById(id);

const FIELDS = [
  { key: "supervisor_can_end_wrap_up", el: "s-endwrap", kind: "bool" },
  { key: "wrap_up_seconds", el: "s-wrap", kind: "int", min: 0, max: 86400, label: "Wrap-up seconds" },
  { key: "unassigned_access_default", el: "s-unassigned", kind: "bool" },
  { key: "pause_reasons", el: "s-reasons", kind: "reasons", optional: true },
];

export class AdminForm {
  constructor(client) {
    this.client = client;
    this.edited = new Set();
    this.last = {};
    for (const f of FIELDS) {
      $(f.el).addEventListener("input", () => { this.edited.add(f.key); this.note(""); });
    }
    $("settingsform").addEventListener("submit", (ev) => { ev.preventDefault(); this.save(); });
    $("s-reset").addEventListener("click", () => { this.edited.clear(); this.fill(this.client.settings || {}); this.note(""); });
  }

  show(isAdmin) {
    $("admin").hidden = !isAdmin;
    if (isAdmin) this.fill(this.client.settings || {});
  }

  /** Live settings: only the untouched fields follow. */
  fill(settings) {
    let clash = false;
    for (const f of FIELDS) {
      const el = $(f.el);
      const has = settings[f.key] !== undefined;
      if (f.optional) el.closest("label").hidden = !has;
      if (!has) continue;
      const text = toField(f, settings[f.key]);
      if (this.edited.has(f.key)) {
        // Someone else changed a field being edited: say so, keep the edit.
        if (JSON.stringify(this.last[f.key]) !== JSON.stringify(settings[f.key]) && !fromFieldEquals(f, el, settings[f.key])) clash = true;
        continue;
      }
      if (f.kind === "bool") el.checked = !!settings[f.key];
      else el.value = text;
    }
    this.last = { ...settings };
    if (clash) this.note("Settings were changed by someone else meanwhile; your edits are kept. Reset to see theirs.", false);
  }

  note(text, ok = true) {
    $("s-note").textContent = text;
    $("s-note").className = ok ? "result ok" : "result bad";
  }

  async save() {
    const partial = {};
    const errors = [];
    for (const f of FIELDS) {
      if (!this.edited.has(f.key)) continue;
      const el = $(f.el);
      if (f.kind === "bool") partial[f.key] = el.checked;
      else if (f.kind === "int") {
        const v = el.value.trim();
        const n = Number(v);
        if (v === "" || !Number.isInteger(n) || n < f.min || n > f.max) {
          errors.push(`${f.label} must be a whole number from ${f.min} to ${f.max}`);
          el.setAttribute("aria-invalid", "true");
        } else {
          el.removeAttribute("aria-invalid");
          partial[f.key] = n;
        }
      } else if (f.kind === "reasons") {
        const parsed = parseReasons(el.value);
        if (parsed.error) errors.push(parsed.error);
        else partial[f.key] = parsed.reasons;
      }
    }
    if (errors.length) return this.note(`Not saved: ${errors.join("; ")}.`, false);
    if (Object.keys(partial).length === 0) return this.note("Nothing changed.", true);
    this.note("Saving…");
    try {
      const r = await this.client.updateSettings(partial);
      this.edited.clear();
      this.fill(r.settings || this.client.settings || {});
      this.note("Settings saved.");
    } catch (e) {
      this.note(`Not saved (${e.code}): ${e.message}`, false);
    }
  }
}

function toField(f, v) {
  if (f.kind === "reasons") return (v || []).map((r) => [r.code, r.label || "", r.max_minutes ?? ""].join(", ").replace(/(, )+$/, "")).join("\n");
  return String(v ?? "");
}

function fromFieldEquals(f, el, v) {
  if (f.kind === "bool") return el.checked === !!v;
  return el.value === toField(f, v);
}

/** One reason a line: `code, label, max minutes` (label and minutes optional). */
export function parseReasons(text) {
  const reasons = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const [code, label, max] = line.split(",").map((s) => s.trim());
    if (!code) return { error: `pause reason line ${i + 1} has no code` };
    const r = { code };
    if (label) r.label = label;
    if (max !== undefined && max !== "") {
      const n = Number(max);
      if (!(n > 0)) return { error: `pause reason ${code}: max minutes must be a positive number` };
      r.max_minutes = n;
    }
    reasons.push(r);
  }
  return { reasons };
}
