// The wallboard's contact-center features in a real headless Chromium
// (Debian's, through playwright-core) against a real hub whose tenant has
// pause reason codes with `max_minutes`; every agent is on a real WebSocket
// opened by this script. Behaviour, not timings:
//
//  1. a channel card shows the hub's counters (`channel` messages, not the
//     page's own count) and they match the agents' real states;
//  2. a pause with a code whose `max_minutes` is tiny (0.01 = 0.6 s), chosen
//     in the panel's code list, shows the overrun badge in the panel and on
//     the row once the hub marks `pause_overrun_since_ms`; a pause under its
//     limit shows none;
//  3. "Sign out" in the agent panel asks first (Cancel sends nothing), then
//     the agent's own socket gets `signed_out` by the supervisor and is closed
//     with 4010, the row shows the agent offline and the card counts follow;
//  4. in tenant `beta`, left at the default settings (the hub sends none of
//     §10's), an admin edits every setting through the form, and a second
//     admin on a raw socket reads what the hub holds:
//     a. every field is shown at its default, the reason codes editor too;
//     b. a code without a label is refused by the form and nothing is sent;
//     c. codes (a label with a comma, one with a pipe), chat capacity and
//        `sign_in_status` are saved, and only those three are sent;
//     d. a patch the hub refuses shows the hub's own `bad_request` message and
//        keeps the edit; fixing the sign-in reason saves it;
//     e. clearing every code saves `[]` (the hub then omits the setting) and
//        the editor stays, so codes can be added back;
//     f. an open form with unsaved edits (a half-typed label, with the focus
//        in it, and a capacity) keeps them while the other admin changes
//        settings (its untouched fields follow, a clash is reported) and
//        agents change status; typing goes on and Save sends only the edits;
//  5. a busy multi-chat agent's row shows its free slots ("3 free"), a busy
//     agent without any shows none.
//
// node --experimental-websocket wallboard_cc.mjs HUB_ADDR SECRET SCREENSHOT
// The directory is the Rust driver's (tests/browser_cc.rs): tenant `acme`,
// agents c0..c5 all assigned to queue `sales` (c0..c2 also to chat `web`),
// supervisor s1, pause codes `break` (max 0.01 min) and `lunch` (max 60 min);
// tenant `beta` at the default settings, agents b0 and b1 on queue `sales`
// and chat `web`, admins bd1 (the page) and bd2 (a raw socket).
import { Conn, devRoutes, launch, mint, until } from "./lib.mjs";

const [hubAddr, secret, screenshot] = process.argv.slice(2);
const wsUrl = `ws://${hubAddr}/v1/ws`;
const fail = (why) => { console.error(`browser test failed: ${why}`); process.exit(1); };
const step = (what) => console.log(`- ${what}`);
const STATUSES = ["available", "busy", "wrap_up", "paused", "offline"];
const SALES = { kind: "queue", id: "sales" };
const WEB = { kind: "chat", id: "web" };

/** Agent cN on a real socket, connected to sales (and web for c0..c2); its messages and close code kept. */
async function agent(i) {
  const id = `c${i}`;
  const c = new Conn(wsUrl, { type: "hello", role: "agent", token: mint(secret, "acme", id), device: { id: `${id}-phone`, kind: "softphone", label: "Softphone" } });
  c.seen = [];
  c.closed = null;
  c.listeners.add((m) => c.seen.push(m));
  c.onCommand = (m) => c.send({ type: "command_ack", command_id: m.command_id, ok: true });
  await c.open();
  c.ws.addEventListener("close", (ev) => { c.closed = { code: ev.code, reason: ev.reason }; });
  await c.request({ type: "connect", channel: SALES });
  if (i < 3) await c.request({ type: "connect", channel: WEB });
  return c;
}

/** Agent `id` of tenant beta on a real socket, connected to sales and web. */
async function betaAgent(id) {
  const c = new Conn(wsUrl, { type: "hello", role: "agent", token: mint(secret, "beta", id), device: { id: `${id}-web`, kind: "web", label: "Browser" } });
  c.onCommand = (m) => c.send({ type: "command_ack", command_id: m.command_id, ok: true });
  await c.open();
  await c.request({ type: "connect", channel: SALES });
  await c.request({ type: "connect", channel: WEB });
  return c;
}

const crew = [];
for (let i = 0; i < 6; i++) crew.push(await agent(i));
const [c0, c1, c2, c3, c4, c5] = crew;
const beta = [await betaAgent("b0"), await betaAgent("b1")];
const [b0, b1] = beta;
const beat = setInterval(() => { for (const c of [...crew, ...beta]) if (!c.closed) c.send({ type: "heartbeat" }); }, 2000);

/** JSON with object keys sorted: equal values, equal text. */
const canon = (v) => JSON.stringify(v, (_, x) =>
  x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x);

/** What the card of `key` must show: the agents connected to it, by state (offline ones from the page's record). */
function expectedCounts(page, key, offline) {
  const want = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const c of crew) {
    const rec = offline.get(c.rec.id) || c.rec;
    if (rec.channels.some((ch) => `${ch.kind}:${ch.id}` === key && ch.connected)) want[rec.status] += 1;
  }
  return want;
}

/** Waits until the card of `key` shows `want`, from the hub's counters. */
async function cardShows(page, key, want, what) {
  try {
    await page.waitForFunction(([key, want]) => {
      const hub = window.wallboard?.client?.channels.get(key)?.counts;
      if (!hub || Object.entries(want).some(([s, n]) => hub[s] !== n)) return false;
      const card = document.querySelector(`#channels .card[data-channel="${key}"]`);
      return card && Object.entries(want).every(([s, n]) => card.querySelector(`.counts .n.${s}`)?.textContent === String(n));
    }, [key, want], { timeout: 10000 });
  } catch {
    const got = await page.evaluate((key) => ({
      hub: window.wallboard?.client?.channels.get(key)?.counts,
      card: document.querySelector(`#channels .card[data-channel="${key}"] .counts`)?.textContent,
    }), key);
    fail(`${what}: card ${key} should show ${JSON.stringify(want)}, hub ${JSON.stringify(got.hub)}, card "${got.card}"`);
  }
}

async function openAgent(page, c) {
  await page.locator(`.viewport .row[data-agent="${c.rec.id}"]`).click();
  await page.locator("#p-name", { hasText: c.rec.name }).waitFor({ timeout: 5000 });
}

/** Steps 4 and 5: the admin's settings form in tenant beta, and free slots on the rows. */
async function adminSettings(browser) {
  // The second admin's raw socket: what the hub holds, from its welcome, snapshot and `settings` messages.
  const bd2 = new Conn(wsUrl, { type: "hello", role: "admin", token: mint(secret, "beta", "bd2") });
  let hub = (await bd2.open()).settings;
  bd2.listeners.add((m) => { if ((m.type === "settings" || m.type === "snapshot") && m.settings) hub = m.settings; });
  await bd2.request({ type: "subscribe", scope: { all: true } });
  try {
    const v1 = "supervisor_can_end_wrap_up,unassigned_access_default,wrap_up_seconds";
    if (Object.keys(hub).sort().join(",") !== v1) fail(`tenant beta is not at the default settings: ${JSON.stringify(hub)}`);
    const hubHas = async (check, what) => {
      try { await until(() => check(hub), 5000, what); } catch { fail(`${what}: the hub holds ${JSON.stringify(hub)}`); }
    };

    const p = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await devRoutes(p);
    p.on("pageerror", (e) => fail(`admin page error: ${e.message}`));
    // Every update_settings the page sends, as sent.
    const sent = [];
    p.on("websocket", (ws) => ws.on("framesent", (f) => {
      try { const m = JSON.parse(f.payload); if (m.type === "update_settings") sent.push(m.settings); } catch { /* not JSON */ }
    }));
    await p.goto(`http://${hubAddr}/#role=admin&token=${mint(secret, "beta", "bd1")}`);
    await p.locator("#status", { hasText: "live" }).waitFor({ timeout: 10000 });
    await p.locator("#admin").waitFor({ timeout: 5000 });

    const form = () => p.evaluate(() => {
      const v = (id) => document.getElementById(id).value;
      return {
        endwrap: document.getElementById("s-endwrap").checked, wrap: v("s-wrap"), unassigned: document.getElementById("s-unassigned").checked,
        capacity: ["queue", "chat", "campaign"].map((k) => v(`s-cap-${k}`)),
        reasons: [...document.querySelectorAll("#s-reasons-rows tr")].map((tr) => [...tr.querySelectorAll("input")].map((i) => i.value)),
        signin: v("s-signin"), reason: v("s-signin-reason"), restore: v("s-restore"),
        edited: [...document.querySelectorAll("#settingsform .edited")].map((e) => e.dataset.setting),
      };
    });
    const row = (i) => p.locator("#s-reasons-rows tr").nth(i);
    const addReason = async (code, label, max) => {
      await p.locator("#s-reason-add").click();
      const tr = p.locator("#s-reasons-rows tr").last();
      await tr.locator('[data-part="code"]').fill(code);
      await tr.locator('[data-part="label"]').fill(label);
      await tr.locator('[data-part="max"]').fill(max);
    };
    /** Clicks Save and returns the form's note once the hub answered (or the form refused). */
    const save = async () => {
      await p.locator("#s-save").click();
      await p.waitForFunction(() => !document.getElementById("s-note").textContent.startsWith("Saving"), null, { timeout: 5000 });
      return p.evaluate(() => ({ text: document.getElementById("s-note").textContent, ok: document.getElementById("s-note").classList.contains("ok") }));
    };
    const sentKeys = (i) => Object.keys(sent[i] || {}).sort().join(",");

    // a. Every setting shown at its default, the codes editor too.
    step("4a. a tenant at the defaults: every setting is shown at its default, the reason codes editor too");
    const f0 = await form();
    const want0 = { endwrap: false, wrap: "30", unassigned: true, capacity: ["1", "1", "1"], reasons: [], signin: "available", reason: "signed_in", restore: "3600", edited: [] };
    if (canon(f0) !== canon(want0)) fail(`the form at the defaults shows ${JSON.stringify(f0)}, not ${JSON.stringify(want0)}`);
    if (!(await p.locator("#s-reason-add").isVisible())) fail("no way to add a reason code to a tenant that has none");

    // b. A code without a label is the form's error; nothing is sent.
    step("4b. a reason code without a label is refused by the form, nothing sent");
    await addReason("break", "", "15");
    const nb = await save();
    if (nb.ok || !nb.text.includes("pause reason break needs a label")) fail(`a code without a label: the form says "${nb.text}"`);
    if ((await row(0).locator('[data-part="label"]').getAttribute("aria-invalid")) !== "true") fail("the empty label is not marked");
    if (sent.length) fail(`the form sent ${JSON.stringify(sent)}`);

    // c. Codes, capacity and sign-in status saved; only they are sent.
    step("4c. codes (labels with a comma and a pipe), chat capacity 3 and sign-in restore are saved; only they are sent");
    await row(0).locator('[data-part="label"]').fill("Break, short");
    await addReason("lunch", "Lunch | long", "");
    await p.fill("#s-cap-chat", "3");
    await p.selectOption("#s-signin", "restore");
    const nc = await save();
    if (!nc.ok || !nc.text.includes("saved")) fail(`save: "${nc.text}"`);
    if (sent.length !== 1 || sentKeys(0) !== "capacity,pause_reasons,sign_in_status") fail(`the page sent ${JSON.stringify(sent)}`);
    const codes = [{ code: "break", label: "Break, short", max_minutes: 15 }, { code: "lunch", label: "Lunch | long" }];
    const cap3 = { queue: 1, chat: 3, campaign: 1 };
    await hubHas((s) => canon(s.pause_reasons) === canon(codes) && canon(s.capacity) === canon(cap3) && s.sign_in_status === "restore", "the hub has the codes, chat capacity 3 and sign-in restore");
    await p.waitForFunction(([codes, cap]) => { const s = window.wallboard.client.settings; return JSON.stringify(s.pause_reasons) === codes && s.capacity?.chat === cap; }, [JSON.stringify(codes), 3], { timeout: 5000 });
    const fc = await form();
    if (fc.edited.length || fc.capacity.join() !== "1,3,1" || fc.signin !== "restore" || canon(fc.reasons) !== canon([["break", "Break, short", "15"], ["lunch", "Lunch | long", ""]])) fail(`after saving the form shows ${JSON.stringify(fc)}`);

    // d. The hub refuses: its own message is shown, the edit kept.
    step("4d. a setting the hub refuses shows the hub's bad_request message and keeps the edit; fixed, it saves");
    const before = canon(hub);
    await p.selectOption("#s-signin", "paused");
    const nd = await save();
    // The same patch from the raw socket: the hub's own words.
    const refused = await bd2.request({ type: "update_settings", settings: { sign_in_status: "paused" } }).then(() => null, (e) => e);
    if (!refused || refused.code !== "bad_request") fail(`the hub accepted sign_in_status paused with reason "signed_in" not a code: ${refused?.code}`);
    if (nd.ok || !nd.text.includes("(bad_request)") || !nd.text.includes(refused.message)) fail(`refused: the form says "${nd.text}", the hub "${refused.message}"`);
    if (sent.length !== 2 || sentKeys(1) !== "sign_in_status") fail(`the page sent ${JSON.stringify(sent.slice(1))}`);
    if (canon(hub) !== before) fail(`a refused patch changed the settings: ${JSON.stringify(hub)}`);
    if ((await p.inputValue("#s-signin")) !== "paused") fail("the refused edit was reset");
    if ((await p.getAttribute("#s-signin-reason", "aria-invalid")) !== "true") fail("the field the hub named is not marked");
    await p.fill("#s-signin-reason", "lunch");
    const nd2 = await save();
    if (!nd2.ok) fail(`save with the sign-in reason fixed: "${nd2.text}"`);
    if (sentKeys(2) !== "sign_in_reason,sign_in_status") fail(`the page sent ${JSON.stringify(sent.slice(2))}`);
    await hubHas((s) => s.sign_in_status === "paused" && s.sign_in_reason === "lunch", "the hub has sign-in paused with lunch");

    // e. Clearing every code, then adding them back.
    step("4e. clearing every code saves [] (omitted by the hub); the editor stays and codes are added back");
    while (await p.locator("#s-reasons-rows tr").count()) await p.locator("#s-reasons-rows tr button.r-del").first().click();
    const ne = await save();
    if (!ne.ok || canon(sent[3]) !== canon({ pause_reasons: [] })) fail(`clearing: "${ne.text}", sent ${JSON.stringify(sent.slice(3))}`);
    await hubHas((s) => s.pause_reasons === undefined, "the hub has no codes (and omits the setting)");
    await p.waitForFunction(() => window.wallboard.client.settings.pause_reasons === undefined, null, { timeout: 5000 });
    if (!(await p.locator("#s-reason-add").isVisible()) || (await p.locator("#s-reasons-rows tr").count())) fail("the codes editor went away once the codes were cleared");
    await addReason("lunch", "Lunch", "60");
    await addReason("training", "Training", "");
    const ne2 = await save();
    if (!ne2.ok) fail(`adding codes back: "${ne2.text}"`);
    const codes2 = [{ code: "lunch", label: "Lunch", max_minutes: 60 }, { code: "training", label: "Training" }];
    await hubHas((s) => canon(s.pause_reasons) === canon(codes2), "the codes are back");

    // f. An open form survives live settings and agent updates.
    step("4f. unsaved edits and the focus survive live settings and agent updates; untouched fields follow");
    const nSent = sent.length;
    await p.fill("#s-cap-chat", "5");
    await addReason("coach", "Coa", "");
    const label = row(2).locator('[data-part="label"]');
    await label.focus();
    await p.keyboard.press("End");
    await bd2.request({ type: "update_settings", settings: { restore_window_s: 600, wrap_up_seconds: 45 } });
    await bd2.request({ type: "update_settings", settings: { capacity: { queue: 1, chat: 2, campaign: 1 } } });
    for (let i = 0; i < 3; i++) {
      await b1.request({ type: "set_status", status: "paused", reason: "lunch" });
      await b1.request({ type: "set_status", status: "available" });
    }
    await p.waitForFunction((v) => {
      const c = window.wallboard.client;
      return c.settings.restore_window_s === 600 && c.settings.wrap_up_seconds === 45 && c.settings.capacity?.chat === 2 && c.agents.get("b1")?.version === v;
    }, b1.rec.version, { timeout: 5000 });
    await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const ff = await form();
    if (ff.restore !== "600" || ff.wrap !== "45") fail(`untouched fields did not follow the live settings: ${JSON.stringify(ff)}`);
    if (ff.capacity.join() !== "1,5,1") fail(`the admin's unsaved capacity was overwritten: ${ff.capacity}`);
    if (canon(ff.reasons) !== canon([["lunch", "Lunch", "60"], ["training", "Training", ""], ["coach", "Coa", ""]])) fail(`the admin's unsaved codes were overwritten: ${JSON.stringify(ff.reasons)}`);
    if (ff.edited.sort().join() !== "capacity,pause_reasons") fail(`edited fields: ${ff.edited}`);
    if (!(await label.evaluate((el) => el === document.activeElement))) fail("the label being typed lost the focus");
    const clash = await p.textContent("#s-note");
    if (!/someone else changed capacity/i.test(clash)) fail(`no word of the other admin's change to a field being edited: "${clash}"`);
    await p.keyboard.type("ch");
    if ((await label.inputValue()) !== "Coach") fail(`typing went on as "${await label.inputValue()}"`);
    const nf = await save();
    if (!nf.ok) fail(`saving the edits: "${nf.text}"`);
    if (sent.length !== nSent + 1 || sentKeys(nSent) !== "capacity,pause_reasons") fail(`the page sent ${JSON.stringify(sent.slice(nSent))}`);
    const codes3 = [...codes2, { code: "coach", label: "Coach" }];
    await hubHas((s) => s.capacity?.chat === 5 && canon(s.pause_reasons) === canon(codes3) && s.restore_window_s === 600 && s.wrap_up_seconds === 45, "the admin's edits saved over the other admin's");

    // 5. Free slots on the rows.
    step("5. a busy multi-chat agent's row shows its free slots; a busy agent without any shows none");
    const freeOf = (id) => p.locator(`.viewport .row[data-agent="${id}"] .free`);
    await p.locator('.viewport .row[data-agent="b0"] .pill.available').waitFor({ timeout: 5000 });
    if (await freeOf("b0").textContent()) fail("an available agent shows a free-slots chip");
    await b0.request({ type: "interaction_start", interaction_id: "chat-1", channel: WEB });
    await b0.request({ type: "interaction_start", interaction_id: "chat-2", channel: WEB });
    if (b0.rec.free_slots?.chat !== 3) fail(`b0 holds two chats of five: free_slots ${JSON.stringify(b0.rec.free_slots)}`);
    await p.locator('.viewport .row[data-agent="b0"] .free', { hasText: "3 free" }).waitFor({ timeout: 5000 });
    await b1.request({ type: "interaction_start", interaction_id: "call-1", channel: SALES });
    await p.locator('.viewport .row[data-agent="b1"] .pill.busy').waitFor({ timeout: 5000 });
    if (await freeOf("b1").textContent()) fail(`a busy agent with no free slot shows "${await freeOf("b1").textContent()}"`);
    await b0.request({ type: "interaction_end", interaction_id: "chat-1" });
    await p.locator('.viewport .row[data-agent="b0"] .free', { hasText: "4 free" }).waitFor({ timeout: 5000 });
    await p.screenshot({ path: screenshot.replace(/\.png$/, "_admin.png") });
    await p.close();
  } finally {
    bd2.close();
  }
}

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await devRoutes(page);
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(`http://${hubAddr}/#role=supervisor&token=${mint(secret, "acme", "s1")}`);
  await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 10000 });
  // Count the hub's `channel` messages the page receives (the hub's counters, not the page's).
  await page.evaluate(() => { window.channelMsgs = 0; window.wallboard.client.on("channel", () => { window.channelMsgs += 1; }); });

  // 1. Channel cards carry the hub's counters, matching the agents' states.
  step("channel cards show the hub's counters, matching the agents' real states");
  await c1.request({ type: "interaction_start", interaction_id: "call-1", channel: SALES });
  await c2.request({ type: "interaction_start", interaction_id: "call-2", channel: SALES });
  await c2.request({ type: "interaction_end", interaction_id: "call-2" });
  await c3.request({ type: "set_status", status: "paused", reason: "lunch" });
  await c5.request({ type: "disconnect", channel: SALES });
  const states = crew.map((c) => c.rec.status).join(",");
  if (states !== "available,busy,wrap_up,paused,available,available") fail(`the agents are not in the planned states: ${states}`);
  const none = new Map();
  // sales: c0 c4 available, c1 busy, c2 wrap-up, c3 paused (c5 disconnected).
  const sales = expectedCounts(page, "queue:sales", none);
  if (JSON.stringify(sales) !== JSON.stringify({ available: 2, busy: 1, wrap_up: 1, paused: 1, offline: 0 })) fail(`truth for sales: ${JSON.stringify(sales)}`);
  await cardShows(page, "queue:sales", sales, "after the changes");
  await cardShows(page, "chat:web", expectedCounts(page, "chat:web", none), "after the changes");
  if (!((await page.evaluate(() => window.channelMsgs)) > 0)) fail("no channel message reached the page");
  const fromHub = await page.evaluate(() => window.wallboard.store.channelStats(Date.now()).every((s) => s.fromHub));
  if (!fromHub) fail("a card is the page's own count, not the hub's");
  // Counters follow a change back.
  await c1.request({ type: "interaction_end", interaction_id: "call-1" });
  await c1.request({ type: "end_wrap_up" }).catch(() => {});
  await cardShows(page, "queue:sales", expectedCounts(page, "queue:sales", none), "after call-1 ended");

  // 2. A pause past its code's max_minutes shows the overrun badge.
  step("a pause past its code's max_minutes (0.6 s) shows the overrun badge; one under its limit does not");
  await openAgent(page, c4);
  await page.locator('#panel button[data-act="pause-open"]').click();
  const codes = await page.locator("#p-reason-code option").evaluateAll((os) => os.map((o) => o.value));
  if (codes.join(",") !== "break,lunch") fail(`the pause form offers ${codes}, not the tenant's codes`);
  if (!(await page.locator("#p-reason-text").isHidden())) fail("free-text reason shown although the tenant has codes");
  await page.selectOption("#p-reason-code", "break");
  await page.locator('[data-testid="confirm-pause"]').click();
  await until(() => c4.rec.status === "paused" && c4.rec.pause_reason === "break", 5000, "c4 paused with break");
  await until(() => c4.rec.pause_overrun_since_ms, 10000, "the hub marks c4's overrun");
  const ranFor = c4.rec.pause_overrun_since_ms - c4.rec.status_since_ms;
  if (ranFor < 600) fail(`overrun marked after ${ranFor} ms, before max_minutes (600 ms)`);
  await page.locator('#panel [data-testid="overrun"]', { hasText: "OVER" }).waitFor({ timeout: 5000 });
  await page.locator(`.viewport .row[data-agent="c4"] .c-reason.overrun`, { hasText: "OVER" }).waitFor({ timeout: 5000 });
  // c3's lunch (60 min) is paused too, and not over.
  if (c3.rec.pause_overrun_since_ms !== null) fail("lunch overran");
  if (await page.locator(`.viewport .row[data-agent="c3"] .c-reason.overrun`).count()) fail("c3's row is flagged over");
  await openAgent(page, c3);
  if (await page.locator('#panel [data-testid="overrun"]').count()) fail("c3's panel shows the overrun badge");
  // Unpausing clears the badge.
  await c4.request({ type: "set_status", status: "available" });
  await page.locator(`.viewport .row[data-agent="c4"] .c-reason.overrun`).waitFor({ state: "detached", timeout: 5000 });

  // 3. Sign out from the panel: confirmation, the agent's socket gets signed_out and 4010.
  step("Sign out asks first; then the agent gets signed_out, is closed with 4010 and shows offline");
  await openAgent(page, c0);
  await page.locator('#panel button[data-act="signout-open"]').click();
  await page.locator("#p-signout-who", { hasText: c0.rec.name }).waitFor({ timeout: 5000 });
  await page.locator('#p-signout button[data-act="signout-cancel"]').click();
  if (!(await page.locator("#p-signout").isHidden())) fail("Cancel did not close the sign-out confirmation");
  // Cancel sent nothing.
  // (The page's connection is ordered: once its next request is answered, nothing sent before it is pending.)
  await page.evaluate(() => window.wallboard.client.history("c0", { limit: 1 }));
  if (c0.closed || c0.seen.some((m) => m.type === "signed_out")) fail("Cancel signed the agent out");
  await page.locator('#panel button[data-act="signout-open"]').click();
  await page.fill("#p-signout-reason", "end of shift");
  await page.locator('#p-signout button[type="submit"]').click();
  await until(() => c0.closed, 10000, "c0's socket closed");
  const signed = c0.seen.find((m) => m.type === "signed_out");
  if (!signed) fail(`c0 got no signed_out before the close: ${JSON.stringify(c0.seen.slice(-3))}`);
  if (signed.by?.id !== "s1" || signed.by?.role !== "supervisor") fail(`signed_out by ${JSON.stringify(signed.by)}`);
  if (signed.reason !== "end of shift") fail(`signed_out reason ${signed.reason}`);
  if (c0.closed.code !== 4010) fail(`c0 closed with ${c0.closed.code}, not 4010`);
  for (const c of crew) if (c !== c0 && c.closed) fail(`${c.rec.id} was closed too`);
  await page.locator(`.viewport .row[data-agent="c0"] .pill.offline`).waitFor({ timeout: 5000 });
  await page.locator("#p-result", { hasText: "signed out" }).waitFor({ timeout: 5000 });
  // The cards follow: c0 is offline (counted as offline where still connected).
  const c0rec = await page.evaluate(() => window.wallboard.client.agents.get("c0"));
  if (c0rec.status !== "offline") fail(`the page holds c0 as ${c0rec.status}`);
  const off = new Map([["c0", c0rec]]);
  await cardShows(page, "queue:sales", expectedCounts(page, "queue:sales", off), "after the sign-out");
  await cardShows(page, "chat:web", expectedCounts(page, "chat:web", off), "after the sign-out");
  await page.screenshot({ path: screenshot });

  await adminSettings(browser);
  console.log("browser test passed; screenshot:", screenshot);
} catch (e) {
  fail(e.stack || e.message);
} finally {
  clearInterval(beat);
  for (const c of [...crew, ...beta]) c.close();
  await browser.close();
}
process.exit(0);
