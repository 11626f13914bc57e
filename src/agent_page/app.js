// The agent dashboard. Everything protocol-related is the client library's
// AgentClient (heartbeats, reconnects, replies); this file only renders the
// agent's own record and turns clicks into the library's requests.
//
// Focus stays where the agent put it: a control that cannot act now is
// marked `aria-disabled` (its reason in its title), never `disabled`, which
// would drop the focus to the page (as pausing would, by disabling the pause
// button just pressed); and what a render rebuilds (channel rows) gets the
// focus back by its `data-focus` key, or the section's heading when the
// control is gone (an ended call's End button).
import { AgentClient } from '../client/presence-hub-client.js';
// The short tone is the wallboard's module (one copy, served to both pages).
import { tone } from '../wallboard/tone.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'presence-hub-agent-token';
const DEVICE_KEY = 'presence-hub-agent-device';

let client = null;
let record = null;
let settings = {};
let tenant = { channels: [], people: [] };
let names = new Map(); // user id -> display name
let signedOut = null; // {by, reason} from the hub's signed_out
const prompts = []; // monitor requests waiting for the agent's answer
const answered = new Map(); // command id -> {who, ok}: answers the hub has not settled yet
let errorCode = null; // the code of the refusal shown in #error
let notLiveSince = null; // when the connection was last lost (null while live)

// One device per browser tab: sessionStorage survives a reload (so the hub
// sees the same device come back within its grace: no offline flap) but not
// a new tab, which is a device of its own. Random bytes rather than
// randomUUID, which needs a secure context (plain http on a LAN is not).
function deviceId() {
  let id = sessionStorage.getItem(DEVICE_KEY);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    id = 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

// ---- helpers ----------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children);
  return node;
}

const show = (node, visible) => node.classList.toggle('hidden', !visible);
const statusWords = (s) => (s === 'wrap_up' ? 'wrap-up' : s);
const personName = (id) => names.get(id) ?? id;

function channelName(ch) {
  const found = tenant.channels.find((c) => c.kind === ch.kind && c.id === ch.id);
  return found ? found.name : `${ch.kind} ${ch.id}`;
}

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function author(by) {
  if (!by) return 'unknown';
  if (by.role === 'system') return 'the system';
  if (by.role === 'agent' && record && by.id === record.id) return 'you';
  return `${personName(by.id)} (${by.role})`;
}

function reasonLabel(code) {
  const found = (settings.pause_reasons ?? []).find((r) => r.code === code);
  return found ? found.label : code;
}

function announce(text) {
  // Cleared first so the same words twice are announced twice.
  $('announce').textContent = '';
  requestAnimationFrame(() => {
    $('announce').textContent = text;
  });
}

// While this tab is in the background, what needs the agent — a monitor
// request, a supervisor's change — also raises a desktop notification and a
// short tone, if the agent allowed it (the checkbox asks the browser).
const NOTIFY_KEY = 'presence-hub-agent-notify';
const agentPage = (window.agentPage = { notified: 0, sounds: 0 });

function canNotify() {
  return typeof Notification !== 'undefined' && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_KEY) === 'on';
}

function inBackground(title, body) {
  if (document.visibilityState !== 'hidden' || !canNotify()) return;
  try {
    new Notification(title, { body, tag: 'presence-hub-agent' });
    agentPage.notified++;
  } catch {
    // no notifications here: the page itself still shows it
  }
  if (tone(660, 0.2)) agentPage.sounds++;
}

async function setNotify(on) {
  if (on && typeof Notification !== 'undefined' && Notification.permission !== 'granted') {
    on = (await Notification.requestPermission().catch(() => 'denied')) === 'granted';
  }
  localStorage.setItem(NOTIFY_KEY, on ? 'on' : 'off');
  $('notify').checked = canNotify();
  $('notify-note').textContent = on || !$('notify').checked ? '' : 'The browser did not allow notifications.';
}

/** Whether a control may act now (see the top of the file). */
const usable = (b) => !!b && b.getAttribute('aria-disabled') !== 'true' && b.getAttribute('aria-busy') !== 'true';

/** Marks a control usable or not, with why not as its title. */
function allow(b, ok, why = '') {
  if (ok) b.removeAttribute('aria-disabled');
  else b.setAttribute('aria-disabled', 'true');
  b.title = ok ? '' : why;
}

function showError(err) {
  errorCode = err?.code ?? null;
  $('error').textContent = err ? `Refused (${err.code ?? 'error'}): ${err.message}` : '';
}

// Runs a request from a click: the button is marked busy meanwhile (a second
// press does nothing), a refusal is shown in words (the hub's error code and
// message), and the focus is kept (see the top of the file).
async function act(button, request) {
  if (button && !usable(button)) return;
  showError(null);
  button?.setAttribute('aria-busy', 'true');
  try {
    await request();
  } catch (err) {
    showError(err);
  } finally {
    button?.removeAttribute('aria-busy');
    render();
  }
}

/** The key that finds a control again after a render rebuilt it. */
const focusKey = (node) => node?.dataset?.focus ?? (node?.id || null);

// Re-renders `fn`'s part of the page keeping the focus: on the same control
// (by key) when it was rebuilt, else on the heading of its section.
function keepingFocus(fn) {
  const had = document.activeElement;
  const key = had && had !== document.body ? focusKey(had) : null;
  const section = had?.closest?.('section');
  fn();
  if (!key || document.activeElement === had && had.isConnected) return;
  const again = document.querySelector(`[data-focus="${CSS.escape(key)}"]`) ?? document.getElementById(key);
  if (again && again.offsetParent !== null) again.focus();
  else section?.querySelector('h2')?.focus();
}

// ---- sign-in ----------------------------------------------------------------

async function loadDevSignIn() {
  try {
    const res = await fetch('/dev/signin');
    if (!res.ok) return;
    const body = await res.json();
    const agents = (body.people ?? []).filter((p) => p.role === 'agent');
    $('people').replaceChildren(
      ...agents.map((p) =>
        el('li', {}, el('button', { type: 'button', dataset: { user: p.id }, onclick: () => signIn(p.token) },
          `Sign in as ${p.name} (${p.id})`)),
      ),
    );
    show($('dev'), agents.length > 0);
  } catch {
    // not in dev mode: the token form is the way in
  }
}

function showSignIn(error = '') {
  show($('signin'), true);
  show($('dash'), false);
  show($('signedout'), false);
  show($('leave'), false);
  $('signin-error').textContent = error;
  $('conn').textContent = 'signed out';
  $('conn').className = 'down';
  loadDevSignIn();
}

function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  start(token);
}

async function loadTenant(token) {
  try {
    const res = await fetch('/agent/tenant', { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return;
    tenant = await res.json();
    for (const p of tenant.people ?? []) names.set(p.id, p.name);
    $('tenant').textContent = tenant.tenant ?? '';
    render();
  } catch {
    // channel names fall back to ids
  }
}

function start(token) {
  client?.stop();
  record = null;
  signedOut = null;
  today = null;
  todayLive = [];
  const agent = new AgentClient({
    token,
    device: { id: deviceId(), kind: 'web', label: 'Agent dashboard (browser)' },
  });
  client = agent;
  agent.onCommand = (command) => onCommand(agent, command);
  agent.on('status', (s) => onStatus(agent, s));
  agent.on('welcome', (w) => {
    if (agent !== client) return;
    settings = w.settings ?? {};
    names.set(w.user.id, w.user.name);
    $('who').textContent = `${w.user.name} (${w.user.id})`;
    render();
  });
  agent.on('state', (rec) => {
    if (agent !== client) return;
    noticeChange(record, rec);
    noteToday(record, rec);
    record = rec;
    render();
  });
  agent.on('message', (msg) => {
    if (agent === client && msg.type === 'settings' && msg.settings) {
      settings = msg.settings;
      render();
    }
  });
  agent.on('signed_out', (info) => {
    if (agent === client) signedOut = info;
  });
  agent.on('command_ended', (end) => {
    if (agent === client) onCommandEnded(end);
  });
  show($('signin'), false);
  show($('signedout'), false);
  show($('dash'), true);
  show($('leave'), true);
  loadTenant(token);
  agent.start().catch(() => {
    // the 'status' event (stopped, with its reason) says what happened
  });
}

function onStatus(agent, s) {
  if (agent !== client) return;
  const conn = $('conn');
  if (s.state === 'live') {
    conn.textContent = 'live';
    conn.className = 'live';
    notLiveSince = null;
    // A refusal that said the connection was lost is not true any more.
    if (CONNECTION_ERRORS.has(errorCode)) showError(null);
    // The day's changes, again: state frames may have been missed meanwhile.
    loadToday(agent);
  } else if (s.state === 'reconnecting') {
    conn.textContent = `reconnecting in ${Math.ceil((s.retryInMs ?? 0) / 1000)} s`;
    conn.className = 'down';
    notLiveSince ??= Date.now();
  } else if (s.state === 'connecting') {
    conn.textContent = 'connecting';
    conn.className = 'down';
  } else if (s.state === 'stopped') {
    stopped(s.reason ?? {});
  }
  render();
}

// Refusals that only say the hub could not be reached (or could not say
// whether a change was made): once it is back, the record shown is the
// hub's word again, and the refusal is out of date.
const CONNECTION_ERRORS = new Set(['disconnected', 'unavailable', 'outcome_unknown']);

function stopped(reason) {
  for (const p of prompts.splice(0)) p.answer(false);
  answered.clear();
  $('prompt').close();
  if (reason.code === 1000) return; // the agent left on purpose
  if (reason.code === 4003) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(`The hub refused the token: ${reason.message}`);
    return;
  }
  show($('dash'), false);
  show($('signedout'), true);
  show($('leave'), false);
  $('conn').textContent = 'signed out';
  $('conn').className = 'down';
  if (reason.code === 4010) {
    $('signedout-title').textContent = 'You were signed out';
    const by = signedOut?.by ? author(signedOut.by) : 'a supervisor';
    const why = signedOut?.reason ? `: “${signedOut.reason}”` : '.';
    $('signedout-text').textContent = `Signed out by ${by}${why}`;
  } else {
    $('signedout-title').textContent = 'Disconnected';
    $('signedout-text').textContent = `This tab stopped: ${reason.message ?? 'closed'} (code ${reason.code}).`;
  }
  $('signedout').focus();
}

// A supervisor's (or an admin's) change is announced: the agent may be on a
// call looking elsewhere, or using a screen reader.
function noticeChange(before, after) {
  if (!before || !after || after.version <= before.version) return;
  const by = after.changed_by;
  if (!by || (by.role !== 'supervisor' && by.role !== 'admin')) return;
  const who = author(by);
  const parts = [];
  if (before.status !== after.status) {
    const why = after.status === 'paused' && after.pause_reason ? ` (${reasonLabel(after.pause_reason)})` : '';
    parts.push(`changed your status to ${statusWords(after.status)}${why}`);
  }
  const was = before.pending_pause;
  const now = after.pending_pause;
  if (!was && now) parts.push(`asked for a pause (${reasonLabel(now.reason)}) after this interaction`);
  else if (was && now && was.reason !== now.reason) parts.push(`changed the pause after this interaction to ${reasonLabel(now.reason)}`);
  else if (was && !now && after.status !== 'paused') parts.push(`withdrew the pause (${reasonLabel(was.reason)}) after this interaction`);
  const key = (c) => `${c.kind}:${c.id}`;
  const connectedBefore = new Map(before.channels.map((c) => [key(c), c.connected]));
  for (const c of after.channels) {
    if (c.connected && !connectedBefore.get(key(c))) parts.push(`connected you to ${channelName(c)}`);
  }
  const connectedAfter = new Map(after.channels.map((c) => [key(c), c.connected]));
  for (const c of before.channels) {
    if (c.connected && !connectedAfter.get(key(c))) parts.push(`disconnected you from ${channelName(c)}`);
  }
  if (parts.length > 0) {
    announce(`${who} ${parts.join(', ')}.`);
    inBackground(`${who}`, `${parts.join(', ')}.`);
  }
}

// ---- monitor prompts ----------------------------------------------------------

const MODES = {
  listen: 'listen: they hear your calls, nobody hears them',
  whisper: 'whisper: you hear their coaching, the customer does not',
  barge: 'barge: they join your call, everyone hears everyone',
};

function onCommand(agent, command) {
  const sup = command.supervisor ?? {};
  if (sup.id && sup.name) names.set(sup.id, sup.name);
  const who = sup.name ? `${sup.name} (${sup.id})` : sup.id ?? 'A supervisor';
  if (command.action === 'stop_monitor') {
    announce(`${who} stopped monitoring you.`);
    return undefined;
  }
  return new Promise((resolve) => {
    const prompt = {
      command,
      who,
      answer: (ok) => resolve(ok ? true : { ok: false, reason: 'refused by the agent' }),
      agent,
    };
    prompts.push(prompt);
    inBackground('Monitor request', `${who} asks to monitor you (${command.mode ?? 'listen'}).`);
    // The hub ended the request before an answer (timed out, withdrawn, or
    // answered on another device): the prompt goes, nothing is sent.
    command.signal?.addEventListener('abort', () => endPrompt(prompt, command.signal.reason?.outcome));
    nextPrompt();
  });
}

const ENDED_UNANSWERED = {
  timeout: (who) => `${who}'s monitor request timed out before you answered. Nobody is monitoring you.`,
  withdrawn: (who) => `${who} withdrew the monitor request.`,
  accepted: (who) => `${who}'s monitor request was accepted on another of your devices.`,
  refused: (who) => `${who}'s monitor request was refused on another of your devices.`,
};

function endPrompt(prompt, outcome) {
  const at = prompts.indexOf(prompt);
  if (at < 0) return; // answered meanwhile: onCommandEnded tells the outcome
  prompts.splice(at, 1);
  prompt.answer(false);
  const dialog = $('prompt');
  if (at === 0 && dialog.open) closePrompt(dialog);
  announce((ENDED_UNANSWERED[outcome] ?? ENDED_UNANSWERED.withdrawn)(prompt.who));
  nextPrompt();
}

// What the hub made of an answer the agent gave: only it knows whether the
// answer came in time.
function onCommandEnded({ commandId, outcome }) {
  const mine = answered.get(commandId);
  if (!mine) return;
  answered.delete(commandId);
  const { who, ok } = mine;
  if (outcome === 'accepted' && ok) announce(`You accepted ${who}'s monitor request.`);
  else if (outcome === 'accepted') announce(ENDED_UNANSWERED.accepted(who));
  else if (outcome === 'refused') announce(`You refused ${who}'s monitor request.`);
  else if (ok) {
    announce(`Too late: ${who}'s monitor request had ${outcome === 'timeout' ? 'timed out' : 'been withdrawn'} before your answer reached the hub. Nobody is monitoring you.`);
  } else announce(`You refused ${who}'s monitor request.`);
}

function nextPrompt() {
  const dialog = $('prompt');
  if (dialog.open || prompts.length === 0) return;
  const { command, who } = prompts[0];
  const mode = command.mode ?? 'listen';
  $('prompt-title').textContent = 'Monitor request';
  $('prompt-text').textContent = `${who} asks to monitor you in mode ${MODES[mode] ?? mode}.`;
  dialog.dataset.mode = mode;
  dialog.returnFocus = document.activeElement;
  dialog.returnKey = focusKey(document.activeElement);
  dialog.showModal();
  $('accept').focus();
}

// Back to where the agent was before the prompt: the same control, found
// again by its key if a render rebuilt it meanwhile, else the status heading.
function closePrompt(dialog) {
  dialog.close();
  const back = dialog.returnFocus;
  const key = dialog.returnKey;
  const again = back?.isConnected && back !== document.body
    ? back
    : key && (document.querySelector(`[data-focus="${CSS.escape(key)}"]`) ?? document.getElementById(key));
  (again || $('state-title')).focus();
}

function answerPrompt(ok) {
  const prompt = prompts.shift();
  closePrompt($('prompt'));
  if (prompt) {
    // Announced once the hub says how the request ended (onCommandEnded).
    answered.set(prompt.command.commandId, { who: prompt.who, ok });
    prompt.answer(ok);
  }
  nextPrompt();
}

// ---- today ---------------------------------------------------------------------
//
// Time in each status and pause reason since local midnight, interactions
// handled, and each reason's longest pause against its limit: from the
// agent's own history (PROTOCOL.md §6), read whenever the connection is live
// again and at midnight, plus the `state` frames since. The history is bounded
// (`--history-capacity` changes per tenant) and one reply holds at most
// HISTORY_LIMIT changes: unless it reaches back to midnight, nothing is known
// of the time before its oldest change, and the panel says so.

const HISTORY_LIMIT = 1000;
const TODAY_STATUSES = [
  ['available', 'Available'], ['busy', 'Busy'], ['wrap_up', 'Wrap-up'], ['paused', 'Paused (all reasons)'], ['offline', 'Offline'],
];
let today = null; // {midnight, points: [{at, status, reason}], handled, version, limitHit}
let todayLive = []; // what state frames said: {version, at, status, reason, change, ended}

function localMidnight(now) {
  const d = new Date(now);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

async function loadToday(agent) {
  const midnight = localMidnight(Date.now());
  let changes;
  try {
    ({ changes } = await agent.request({ type: 'history', since_ms: 0, limit: HISTORY_LIMIT }));
  } catch (err) {
    // Read again when the connection is next live.
    if (agent === client) $('today-note').textContent = `Today’s history could not be read (${err.code ?? 'error'}): ${err.message}`;
    return;
  }
  if (agent !== client) return;
  const version = changes.length ? changes[changes.length - 1].version : -1;
  today = {
    midnight,
    points: changes.map((c) => ({ at: c.at_ms, status: c.status, reason: c.pause_reason ?? null })),
    handled: changes.filter((c) => c.event === 'interaction_end' && c.at_ms >= midnight).length,
    version,
    limitHit: changes.length >= HISTORY_LIMIT,
  };
  todayLive = todayLive.filter((p) => p.version > version);
  renderToday();
}

/** Notes what a `state` frame changed that the day's figures count. */
function noteToday(before, after) {
  const held = (r) => new Set((r?.interactions ?? (r?.interaction ? [r.interaction] : [])).map((i) => i.id));
  const now = held(after);
  // An interaction gone because the agent went offline was not handled.
  const ended = before && after.status !== 'offline' ? [...held(before)].filter((id) => !now.has(id)).length : 0;
  const change = !before || before.status !== after.status || before.pause_reason !== after.pause_reason
    || before.status_since_ms !== after.status_since_ms;
  if ((change && after.status_since_ms) || ended) {
    todayLive.push({ version: after.version, at: after.status_since_ms, status: after.status, reason: after.pause_reason ?? null, change, ended });
  }
}

/** The day's figures at `now`: time per status and reason, longest pause per reason, from when. */
function todayFigures(now) {
  const { midnight } = today;
  const live = todayLive.filter((p) => p.version > today.version);
  const points = [...today.points, ...live.filter((p) => p.change)];
  const time = new Map();
  const longest = new Map();
  const add = (key, ms) => time.set(key, (time.get(key) ?? 0) + ms);
  let cur = null;
  const close = (until) => {
    if (!cur || until <= midnight) return;
    const ms = Math.max(0, until - Math.max(cur.at, midnight));
    add(`status:${cur.status}`, ms);
    if (cur.status === 'paused') {
      add(`reason:${cur.reason}`, ms);
      // A pause's limit counts from its start, even before midnight.
      longest.set(cur.reason, Math.max(longest.get(cur.reason) ?? 0, until - cur.at));
    }
  };
  for (const p of points) {
    if (cur && p.status === cur.status && p.reason === cur.reason) continue;
    close(p.at);
    cur = p;
  }
  close(now);
  const from = points.length ? points[0].at : null;
  const handled = today.handled + live.reduce((n, p) => n + p.ended, 0);
  return { time, longest, handled, from, complete: from !== null && from <= midnight };
}

// The rows are rebuilt only when the set of reasons changes; a tick rewrites
// their figures in place (fixed columns: nothing moves).
function renderToday() {
  const tbody = $('today-rows');
  const reasons = settings.pause_reasons ?? [];
  const f = today ? todayFigures(Date.now()) : null;
  const seen = f ? [...f.time.keys()].filter((k) => k.startsWith('reason:')).map((k) => k.slice(7)) : [];
  const codes = [...reasons.map((r) => r.code), ...seen.filter((c) => !reasons.some((r) => r.code === c))];
  const keys = TODAY_STATUSES.flatMap(([s]) => (s === 'paused' ? [`status:${s}`, ...codes.map((c) => `reason:${c}`)] : [`status:${s}`]));
  if (tbody.dataset.keys !== keys.join('|')) {
    tbody.dataset.keys = keys.join('|');
    tbody.replaceChildren(...keys.map((key) => {
      const [kind, what] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
      const label = kind === 'status'
        ? [TODAY_STATUSES.find(([s]) => s === what)[1]]
        : [el('span', { class: 'sr-only' }, 'Paused: '), reasonLabel(what)];
      return el('tr', { dataset: { today: key }, class: kind === 'reason' ? 'sub' : '' },
        el('th', { scope: 'row' }, ...label), el('td', { class: 't' }, '—'), el('td', { class: 'longest' }), el('td', { class: 'limit' }));
    }));
  }
  for (const tr of tbody.children) {
    const key = tr.dataset.today;
    const t = f ? duration(f.time.get(key) ?? 0) : '—';
    const cell = tr.querySelector('.t');
    if (cell.textContent !== t) cell.textContent = t;
    if (!key.startsWith('reason:')) continue;
    const code = key.slice(7);
    const max = reasons.find((r) => r.code === code)?.max_minutes;
    const long = f?.longest.get(code);
    const over = !!max && long > max * 60_000;
    const lc = tr.querySelector('.longest');
    const longText = long === undefined ? '—' : duration(long);
    if (lc.dataset.text !== `${longText}${over}`) {
      lc.dataset.text = `${longText}${over}`;
      // Over the limit: marked, and said (not by colour alone).
      if (over) lc.replaceChildren(`${longText} ⚠`, el('span', { class: 'sr-only' }, ' over the limit'));
      else lc.textContent = longText;
      lc.classList.toggle('over', over);
      lc.title = over ? 'over the limit' : '';
    }
    const limit = max ? duration(max * 60_000) : 'none';
    const mc = tr.querySelector('.limit');
    if (mc.textContent !== limit) mc.textContent = limit;
  }
  const handled = f ? String(f.handled) : '—';
  if ($('today-handled').textContent !== handled) $('today-handled').textContent = handled;
  let note = 'Reading today’s history…';
  if (f && f.complete) note = '';
  else if (f && f.from === null) note = 'Incomplete: the hub holds no change of yours yet.';
  else if (f) {
    const at = new Date(f.from).toLocaleTimeString();
    note = today.limitHit
      ? `Incomplete: counted from ${at}, the oldest of the newest ${HISTORY_LIMIT} changes the hub sent.`
      : `Incomplete: counted from ${at}; the hub keeps a bounded history and holds nothing of yours from before then.`;
  }
  if (today || !$('today-note').textContent.startsWith('Today’s history could not')) {
    if ($('today-note').textContent !== note) $('today-note').textContent = note;
  }
}

// ---- rendering ------------------------------------------------------------------

function render() {
  if (!record) return;
  keepingFocus(renderAll);
}

function renderAll() {
  const r = record;
  const live = client?.live ?? false;
  const status = $('status');
  status.textContent = statusWords(r.status);
  status.dataset.status = r.status;
  status.className = `big pill ${r.status}`;
  // During an outage the status is what the hub last said, and says so.
  $('state').classList.toggle('stale', !live);
  show($('stale'), !live);
  $('stale').textContent = live
    ? ''
    : `Not live${notLiveSince ? ` since ${new Date(notLiveSince).toLocaleTimeString()}` : ''}: this is your status as the hub last told it, and it may have changed.`;
  tick();

  const paused = r.status === 'paused';
  show($('reason'), paused && r.pause_reason);
  $('reason').textContent = paused ? `Reason: ${reasonLabel(r.pause_reason)}` : '';
  const overrun = paused && r.pause_overrun_since_ms;
  show($('overrun'), overrun);
  $('overrun').textContent = overrun
    ? `This pause ran over its limit at ${new Date(r.pause_overrun_since_ms).toLocaleTimeString()}.`
    : '';
  show($('pending'), !!r.pending_pause);
  $('pending-text').textContent = r.pending_pause
    ? `Pause pending: ${reasonLabel(r.pending_pause.reason)}, asked by ${author(r.pending_pause.by)}; it starts when your interactions and wrap-up end.`
    : '';
  allow($('withdraw'), live && !!r.pending_pause, 'not connected to the hub');
  // Who made the status what it is (`status_by`): a device of yours coming
  // or going is not a change of your status. A hub older than the field
  // sends only `changed_by`.
  const by = r.status_by !== undefined ? r.status_by : r.changed_by;
  $('changed').textContent = by ? `Status set by ${author(by)}.` : '';
  const monitors = r.monitors ?? (r.monitored_by ?? []).map((m) => ({ by: m }));
  show($('monitors'), monitors.length > 0);
  $('monitors').textContent = monitors.length
    ? 'Monitored by ' + monitors.map((m) => `${personName(m.by)}${m.mode ? ` (${m.mode})` : ''}`).join(', ')
    : '';
  show($('wrapup'), r.status === 'wrap_up');
  allow($('end-wrapup'), live, 'not connected to the hub');

  allow($('available'), live && paused, !live ? 'not connected to the hub' : 'you are not paused');
  const reasons = settings.pause_reasons ?? [];
  // While paused, another reason switches straight to it (PROTOCOL.md §4.2).
  const canPause = live && r.status !== 'offline';
  const whyNot = !live ? 'not connected to the hub' : 'you are offline';
  show($('pause-codes'), reasons.length > 0);
  show($('pause-free'), reasons.length === 0);
  // Rebuilt only when the codes change: a render must not take the focus
  // away from the button the agent is on.
  const codes = JSON.stringify(reasons);
  if ($('pause-buttons').dataset.codes !== codes) {
    $('pause-buttons').dataset.codes = codes;
    $('pause-buttons').replaceChildren(
      ...reasons.map((reason) =>
        el('button', { type: 'button', dataset: { code: reason.code, focus: `pause:${reason.code}` },
          onclick: (e) => act(e.currentTarget, () => client.pause(reason.code)) },
          `Pause: ${reason.label}${reason.max_minutes ? ` (${reason.max_minutes} min)` : ''}`)),
    );
  }
  for (const b of $('pause-buttons').children) {
    const reason = reasons.find((x) => x.code === b.dataset.code);
    const current = paused && r.pause_reason === b.dataset.code;
    allow(b, canPause && !current, current ? 'your current pause' : whyNot);
    const text = `${paused && !current ? 'Switch to' : 'Pause'}: ${reason.label}${reason.max_minutes ? ` (${reason.max_minutes} min)` : ''}`;
    if (b.textContent !== text) b.textContent = text;
  }
  allow($('pause-free').querySelector('button'), canPause, whyNot);
  $('pause-free').querySelector('button').textContent = paused ? 'Switch pause' : 'Pause';

  renderInteractions(r, live);
  renderChannels(r, live);
  renderToday();
}

function renderInteractions(r, live) {
  const held = r.interactions ?? (r.interaction ? [r.interaction] : []);
  $('interactions').replaceChildren(
    ...held.map((i) =>
      el('li', { dataset: { interaction: i.id } },
        `${i.channel.kind === 'chat' ? 'Chat' : 'Call'} ${i.id} on ${channelName(i.channel)}, for `,
        el('span', { dataset: { since: i.since_ms } }, duration(Date.now() - i.since_ms)), ' ',
        el('button', { type: 'button', 'aria-label': `End ${i.id}`, dataset: { focus: `end:${i.id}` },
          'aria-disabled': live ? null : 'true', title: live ? null : 'not connected to the hub',
          onclick: (e) => act(e.currentTarget, () => client.interactionEnd(i.id)) }, 'End'))),
  );
  if (held.length === 0) $('interactions').append(el('li', { class: 'muted' }, 'No interaction.'));
  const slots = r.free_slots;
  $('slots').textContent = slots
    ? `Free slots: ${Object.entries(slots).map(([k, n]) => `${k} ${n}`).join(', ')}`
    : `Free slots: ${r.status === 'available' ? 'one interaction' : 'none'}`;
  const fill = (select, channels) => {
    const keep = select.value;
    const options = channels.map((c) => `${c.kind}:${c.id}`).join('|');
    if (select.dataset.options !== options) {
      select.dataset.options = options;
      select.replaceChildren(...channels.map((c) => el('option', { value: `${c.kind}:${c.id}` }, channelName(c))));
      if (channels.some((c) => `${c.kind}:${c.id}` === keep)) select.value = keep;
    }
    return channels.length > 0;
  };
  const can = live && (r.status === 'available' || r.status === 'busy');
  const why = !live ? 'not connected to the hub' : 'only while available or busy';
  allow($('start-call'), fill($('call-channel'), r.channels.filter((c) => c.kind !== 'chat')) && can, why);
  allow($('start-chat'), fill($('chat-channel'), r.channels.filter((c) => c.kind === 'chat')) && can, why);
}

function renderChannels(r, live) {
  $('channels').replaceChildren(
    ...r.channels.map((c) => {
      const name = channelName(c);
      const tags = [el('span', { class: 'tag' }, c.assigned ? 'assigned' : 'not assigned')];
      if (c.lingering) tags.push(el('span', { class: 'tag lingering', title: 'you no longer have access: it stays until you or a supervisor end it' }, 'lingering'));
      return el('tr', { dataset: { channel: `${c.kind}:${c.id}` } },
        el('th', { scope: 'row' }, name), el('td', {}, c.kind),
        el('td', { dataset: { testid: 'connected' } }, c.connected ? 'connected' : 'not connected', ...tags),
        el('td', {}, el('button', {
          type: 'button', 'aria-pressed': String(c.connected),
          'aria-disabled': live ? null : 'true', title: live ? null : 'not connected to the hub',
          // The name holds the visible text (WCAG 2.5.3) and says the channel.
          'aria-label': `${c.connected ? 'Connected' : 'Connect'} to ${name}`, dataset: { focus: `channel:${c.kind}:${c.id}` },
          onclick: (e) => act(e.currentTarget, () => (c.connected ? client.disconnect(c) : client.connect(c))),
        }, c.connected ? 'Connected ✓' : 'Connect')));
    }),
  );
  const mine = new Set(r.channels.map((c) => `${c.kind}:${c.id}`));
  const others = (tenant.channels ?? []).filter((c) => !mine.has(`${c.kind}:${c.id}`));
  const access = r.unassigned_access !== false;
  $('access').textContent = others.length === 0
    ? 'None.'
    : access
      ? 'You may join channels you are not assigned to.'
      : 'Joining channels you are not assigned to is turned off for you by an admin.';
  $('others').replaceChildren(
    ...others.map((c) =>
      el('tr', { dataset: { channel: `${c.kind}:${c.id}` } },
        el('th', { scope: 'row' }, c.name), el('td', {}, c.kind),
        el('td', {}, el('button', {
          type: 'button', 'aria-describedby': 'access', dataset: { focus: `join:${c.kind}:${c.id}` },
          'aria-disabled': live && access ? null : 'true', title: !live ? 'not connected to the hub' : access ? null : 'turned off by an admin',
          onclick: (e) => act(e.currentTarget, () => client.connect(c)),
        }, `Join ${c.name}`)))),
  );
}

// Time in state, wrap-up countdown and interaction timers, once a second.
function tick() {
  if (!record) return;
  if (today && localMidnight(Date.now()) !== today.midnight) {
    today.midnight = localMidnight(Date.now()); // one reload, not one a second
    if (client?.live) loadToday(client);
  }
  renderToday();
  $('since').textContent = record.status_since_ms ? duration(Date.now() - record.status_since_ms) : '—';
  if (record.status === 'wrap_up' && record.wrap_up_until_ms) {
    $('wrapup-left').textContent = duration(record.wrap_up_until_ms - Date.now() + 999);
  }
  for (const span of document.querySelectorAll('[data-since]')) {
    span.textContent = duration(Date.now() - Number(span.dataset.since));
  }
}

// ---- wiring -------------------------------------------------------------------------

function startInteraction(kind, select, button) {
  if (!usable(button)) return;
  const [chKind, ...rest] = select.value.split(':');
  const id = `${kind}-${Date.now().toString(36)}`;
  act(button, () => client.interactionStart(id, { kind: chKind, id: rest.join(':') }));
}

$('tokenform').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn($('token').value.trim());
});
$('again').addEventListener('click', () => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) start(token);
  else showSignIn();
});
$('leave').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  const old = client;
  client = null;
  record = null;
  old?.stop();
  showSignIn();
});
$('available').addEventListener('click', (e) => act(e.currentTarget, () => client.setStatus('available')));
$('pause-free').addEventListener('submit', (e) => {
  e.preventDefault();
  act($('pause-free').querySelector('button'), () => client.pause($('pause-reason').value.trim()));
});
// A busy agent withdraws its own pending pause (unpausing while busy does that).
$('withdraw').addEventListener('click', (e) => act(e.currentTarget, () => client.setStatus('available')));
$('end-wrapup').addEventListener('click', (e) => act(e.currentTarget, () => client.endWrapUp()));
$('start-call').addEventListener('click', (e) => startInteraction('call', $('call-channel'), e.currentTarget));
$('start-chat').addEventListener('click', (e) => startInteraction('chat', $('chat-channel'), e.currentTarget));
$('accept').addEventListener('click', () => answerPrompt(true));
$('refuse').addEventListener('click', () => answerPrompt(false));
// Escape on the prompt refuses (the dialog would otherwise close unanswered).
$('prompt').addEventListener('cancel', (e) => {
  e.preventDefault();
  answerPrompt(false);
});
$('notify').addEventListener('change', () => setNotify($('notify').checked));
$('notify').checked = canNotify();
setInterval(tick, 1000);

// A token in the fragment (#token=…, as the start-up banner prints) wins;
// then this tab's stored one (so a reload keeps the session).
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get('token')) {
  sessionStorage.setItem(TOKEN_KEY, fragment.get('token'));
  history.replaceState(null, '', location.pathname);
}
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else showSignIn();
