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
//     with 4010, the row shows the agent offline and the card counts follow.
//
// node --experimental-websocket wallboard_cc.mjs HUB_ADDR SECRET SCREENSHOT
// The directory is the Rust driver's (tests/browser_cc.rs): tenant `acme`,
// agents c0..c5 all assigned to queue `sales` (c0..c2 also to chat `web`),
// supervisor s1, pause codes `break` (max 0.01 min) and `lunch` (max 60 min).
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

const crew = [];
for (let i = 0; i < 6; i++) crew.push(await agent(i));
const [c0, c1, c2, c3, c4, c5] = crew;
const beat = setInterval(() => { for (const c of crew) if (!c.closed) c.send({ type: "heartbeat" }); }, 2000);

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
  console.log("browser test passed; screenshot:", screenshot);
} catch (e) {
  fail(e.stack || e.message);
} finally {
  clearInterval(beat);
  for (const c of crew) c.close();
  await browser.close();
}
process.exit(0);
