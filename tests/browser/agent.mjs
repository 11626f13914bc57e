// Drives the agent dashboard (/agent) in a real headless Chromium (Debian's,
// through playwright-core) beside a supervisor and an admin on raw
// WebSockets (the supervisor's side of the wallboard: what it shows is what
// its socket receives). See tests/agent_page.rs.
//
// node --experimental-websocket agent.mjs BASE_URL AGENT_TOKEN SUPERVISOR_TOKEN ADMIN_TOKEN SCREENSHOT
//
// Features of DESIGN.md §9 (pause codes, monitor modes, sign-out) are used when
// the hub has them; without them the script says which steps were pending.
import { chromium } from "playwright-core";

const [base, agentToken, supervisorToken, adminToken, screenshot] = process.argv.slice(2);
const T = 10_000; // per-step deadline: generous, the machine is shared
const pending = [];
const fail = (why) => { console.error(`browser test failed: ${why}`); process.exit(1); };
const step = (what) => console.log(`- ${what}`);

// A raw protocol connection (supervisor or admin), with every message kept.
class Raw {
  constructor(token, role) {
    this.token = token; this.role = role; this.seen = []; this.waiters = []; this.n = 0;
  }
  async open() {
    this.ws = new WebSocket(base.replace(/^http/, "ws") + "/v1/ws");
    this.ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      this.seen.push(m);
      this.waiters = this.waiters.filter((w) => !(w.pred(m) && (w.resolve(m), true)));
    };
    await new Promise((resolve, reject) => { this.ws.onopen = resolve; this.ws.onerror = () => reject(new Error(`${this.role} socket`)); });
    this.ws.send(JSON.stringify({ type: "hello", token: this.token, role: this.role }));
    await this.wait("welcome", (m) => m.type === "welcome");
    this.beat = setInterval(() => this.ws.send(JSON.stringify({ type: "heartbeat" })), 1000);
    return this;
  }
  wait(what, pred, ms = T) {
    const old = this.seen.find(pred);
    if (old) return Promise.resolve(old);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      setTimeout(() => reject(new Error(`timed out (${this.role}): ${what}`)), ms);
    });
  }
  // Waits for a message that arrived after `mark()` (not an older one).
  mark() { return this.seen.length; }
  since(from, what, pred, ms = T) {
    return this.wait(what, (m) => this.seen.indexOf(m) >= from && pred(m), ms);
  }
  request(body) {
    const id = `t${++this.n}`;
    const reply = this.wait(`reply to ${body.type} ${body.action ?? ""}`, (m) => m.type === "reply" && m.id === id);
    this.ws.send(JSON.stringify({ ...body, id }));
    return reply;
  }
  async ok(body) {
    const r = await this.request(body);
    if (!r.ok) fail(`${body.type} ${body.action ?? ""} refused: ${JSON.stringify(r.error)}`);
    return r.result;
  }
  close() { clearInterval(this.beat); this.ws.close(); }
}

// The supervisor's view of agent a1, from snapshot and deltas.
const a1 = (m) => (m.type === "agent" ? [m.agent] : m.type === "snapshot" ? m.agents : [])
  .filter((r) => r.id === "a1");
// Every step marks the supervisor's stream before acting, so the change it
// waits for cannot be an older one (nor missed because it came quickly).
let from = 0;
const act = () => { from = supervisor.mark(); };
const sawA1 = (sup, what, pred, ms) => sup.since(from, what, (m) => a1(m).some(pred), ms);

const supervisor = await new Raw(supervisorToken, "supervisor").open().catch((e) => fail(e.message));
const admin = await new Raw(adminToken, "admin").open().catch((e) => fail(e.message));
await supervisor.ok({ type: "subscribe", scope: { all: true } });

// Pause reason codes (PROTOCOL.md §10.2) when the hub knows them.
const codes = await admin.request({ type: "update_settings", settings: { pause_reasons: [
  { code: "break", label: "Break", max_minutes: 15 }, { code: "coaching", label: "Coaching" }],
  sign_in_reason: "break" } });
const hasCodes = codes.ok;
if (!hasCodes) pending.push(`pause reason codes as buttons (PROTOCOL.md §10.2 not on this hub: ${codes.error?.code} ${codes.error?.message}; free text used)`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
let page;
try {
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  const live = () => page.locator("#conn", { hasText: "live" }).waitFor({ timeout: T });
  const status = (s) => page.locator(`#status[data-status="${s}"]`).waitFor({ timeout: T });

  step("sign in with the token in the fragment; one web device for this tab");
  await page.goto(`${base}/agent#token=${agentToken}`);
  await live();
  await status("available");
  if (page.url().includes("token=")) fail("the token stays in the address bar");
  const online = await supervisor.wait("a1 online", (m) => a1(m).some((r) => r.presence === "online"));
  const webDevice = a1(online).flatMap((r) => r.devices).find((d) => d.kind === "web" && d.active);
  if (!webDevice) fail(`no active web device: ${JSON.stringify(a1(online))}`);
  const deviceId = await page.evaluate(() => sessionStorage.getItem("presence-hub-agent-device"));
  if (webDevice.id !== deviceId) fail(`device ${webDevice.id} is not the tab's ${deviceId}`);
  await page.locator('#channels tr[data-channel="queue:sales"] th', { hasText: "Sales" }).waitFor({ timeout: T });

  step("keyboard only: every control is labelled and reachable with Tab");
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll("#dash button, #dash input, #dash select, header button")]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => !(e.getAttribute("aria-label") || e.textContent.trim() || [...(e.labels ?? [])].some((l) => l.textContent.trim())))
    .map((e) => e.outerHTML));
  if (unlabelled.length) fail(`controls without a name: ${unlabelled.join(" ")}`);
  const controls = await page.evaluate(() => [...document.querySelectorAll("#dash button, #dash input, #dash select, header button")]
    .filter((e) => e.offsetParent !== null && !e.disabled).length);
  const reached = new Set();
  await page.locator("body").focus();
  for (let i = 0; i < controls * 2 + 5; i++) {
    await page.keyboard.press("Tab");
    const key = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || !e.matches("button, input, select")) return null;
      const all = [...document.querySelectorAll("button, input, select")];
      return all.indexOf(e);
    });
    if (key !== null) reached.add(key);
  }
  if (reached.size < controls) fail(`Tab reached ${reached.size} of ${controls} enabled controls`);

  // Presses Tab until the control `selector` has focus, then Enter: as a
  // keyboard user would.
  const keyboardPress = async (selector) => {
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) {
        await page.keyboard.press("Enter");
        return;
      }
    }
    fail(`Tab never reached ${selector}`);
  };

  step("the agent pauses with a code (keyboard), the supervisor sees it");
  act();
  if (hasCodes) {
    await page.locator('#pause-buttons button[data-code="break"]').waitFor({ timeout: T });
    if (await page.locator("#pause-free").isVisible()) fail("free-text pause shown although codes are set");
    await keyboardPress('#pause-buttons button[data-code="break"]');
  } else {
    await page.locator("#pause-reason").fill("break");
    await keyboardPress("#pause-free button");
  }
  await sawA1(supervisor, "a1 paused (break)", (r) => r.status === "paused" && r.pause_reason === "break");
  await status("paused");
  await page.locator("#reason", { hasText: hasCodes ? "Break" : "break" }).waitFor({ timeout: T });
  await page.locator("#changed", { hasText: "by you" }).waitFor({ timeout: T });

  step("the supervisor unpauses; the page says who did it and announces it");
  await supervisor.ok({ type: "command", action: "unpause", agent_id: "a1" });
  await status("available");
  await page.locator("#changed", { hasText: "Sara Supervisor (supervisor)" }).waitFor({ timeout: T });
  await page.locator("#announce", { hasText: "Sara Supervisor (supervisor) changed your status to available" }).waitFor({ timeout: T });
  if ((await page.locator("#announce").getAttribute("aria-live")) !== "assertive") fail("the announcement is not live");

  step("connect to an assigned queue; join an unassigned one while allowed; lingering once access is off; refused after");
  act();
  await page.locator('#channels tr[data-channel="queue:sales"] button[aria-pressed="false"]').click();
  await sawA1(supervisor, "a1 connected to sales", (r) => r.channels.some((c) => c.id === "sales" && c.connected));
  await page.locator('#channels tr[data-channel="queue:sales"] button[aria-pressed="true"]').waitFor({ timeout: T });
  act();
  await page.locator('#others tr[data-channel="queue:billing"] button', { hasText: "Join Billing" }).click();
  await sawA1(supervisor, "a1 connected to billing", (r) => r.channels.some((c) => c.id === "billing" && c.connected && !c.assigned));
  await admin.ok({ type: "set_unassigned_access", agent_id: "a1", allowed: false });
  await page.locator('#channels tr[data-channel="queue:billing"] .tag.lingering').waitFor({ timeout: T });
  const join = page.locator('#others tr[data-channel="campaign:renewals"] button');
  await page.locator("#access", { hasText: "turned off" }).waitFor({ timeout: T });
  if (!(await join.isDisabled())) fail("joining an unassigned campaign is offered without access");
  // The hub refuses it too, whoever asks for the agent (the page does not even offer it).
  const refused = await page.evaluate(async () => {
    const { AgentClient } = await import("/client/presence-hub-client.js");
    const token = sessionStorage.getItem("presence-hub-agent-token");
    const other = new AgentClient({ token, device: { id: "probe", kind: "web" } });
    await other.start();
    try { await other.connect({ kind: "campaign", id: "renewals" }); return "accepted"; }
    catch (e) { return e.code; } finally { other.stop(); }
  });
  if (refused !== "forbidden") fail(`an unassigned connect without access was ${refused}`);

  step("a monitor request is a prompt; accepted with the keyboard, the supervisor sees it");
  const monitor = supervisor.request({ type: "command", action: "monitor", agent_id: "a1", ...(hasCodes ? { mode: "whisper" } : {}) });
  await page.locator("#prompt[open]").waitFor({ timeout: T });
  await page.locator("#prompt-text", { hasText: "Sara Supervisor (s1)" }).waitFor({ timeout: T });
  if (hasCodes) await page.locator("#prompt-text", { hasText: "whisper" }).waitFor({ timeout: T });
  else pending.push("monitor mode in the prompt (PROTOCOL.md §10.5 not on this hub: listen assumed)");
  if (!(await page.evaluate(() => document.activeElement?.id === "accept"))) fail("the prompt does not focus Accept");
  await page.keyboard.press("Enter");
  const accepted = await monitor;
  if (!accepted.ok || !accepted.result.agent.monitored_by.includes("s1")) fail(`monitor: ${JSON.stringify(accepted)}`);
  await page.locator("#monitors", { hasText: "Sara Supervisor" }).waitFor({ timeout: T });

  step("softphone simulator: a call, a pause pending while busy, wrap-up, end wrap-up");
  await page.locator("#call-channel").selectOption("queue:sales");
  act();
  await page.locator("#start-call").click();
  await status("busy");
  await sawA1(supervisor, "a1 busy", (r) => r.status === "busy");
  await page.locator("#interactions li[data-interaction] button", { hasText: "End" }).waitFor({ timeout: T });
  if (hasCodes) await page.locator('#pause-buttons button[data-code="coaching"]').click();
  else { await page.locator("#pause-reason").fill("coaching"); await page.locator("#pause-free button").click(); }
  await page.locator("#pending", { hasText: "Pause pending" }).waitFor({ timeout: T });
  await page.locator("#interactions li[data-interaction] button").click();
  await status("wrap_up");
  await page.locator("#wrapup-left").waitFor({ timeout: T });
  act();
  await page.locator("#end-wrapup").click();
  await status("paused");
  await sawA1(supervisor, "a1 paused after wrap-up", (r) => r.status === "paused" && r.pause_reason === "coaching");
  await page.locator("#available").click();
  await status("available");

  await page.screenshot({ path: screenshot, fullPage: true });

  step("a reload within the grace: no offline flap");
  act();
  const mark = from;
  await page.reload();
  await live();
  await status("available");
  // A change made after the reload: once the supervisor has it, every
  // earlier change of a1 would have reached it too (deltas are ordered).
  await page.locator('#channels tr[data-channel="queue:sales"] button[aria-pressed="true"]').click();
  await sawA1(supervisor, "a1 disconnected from sales after the reload",
    (r) => r.channels.some((c) => c.id === "sales" && !c.connected));
  const flaps = supervisor.seen.slice(mark).flatMap(a1).filter((r) => r.presence !== "online" || r.status === "offline");
  if (flaps.length) fail(`the reload flapped: ${JSON.stringify(flaps)}`);
  const after = await page.evaluate(() => sessionStorage.getItem("presence-hub-agent-device"));
  if (after !== deviceId) fail("the device id changed across the reload");

  step("sign-out by a supervisor closes the session with the message");
  act();
  const out = await supervisor.request({ type: "command", action: "sign_out", agent_id: "a1", reason: "end of shift" });
  if (!out.ok && ["bad_request", "unknown_type"].includes(out.error?.code)) {
    pending.push(`sign-out (PROTOCOL.md §10.6 not on this hub: ${out.error.code})`);
  } else {
    if (!out.ok) fail(`sign_out: ${JSON.stringify(out)}`);
    await page.locator("#signedout").waitFor({ state: "visible", timeout: T });
    await page.locator("#signedout-text", { hasText: "Sara Supervisor (supervisor)" }).waitFor({ timeout: T });
    await page.locator("#signedout-text", { hasText: "end of shift" }).waitFor({ timeout: T });
    await page.locator("#conn", { hasText: "signed out" }).waitFor({ timeout: T });
    await sawA1(supervisor, "a1 offline", (r) => r.presence === "offline");
    await page.locator("#again").click();
    await live();
    await status("available");
  }
  for (const p of pending) console.log(`PENDING: ${p}`);
  console.log("browser test passed; screenshot:", screenshot);
} catch (e) {
  if (page) await page.screenshot({ path: screenshot.replace(/\.png$/, "-failed.png"), fullPage: true }).catch(() => {});
  fail(e.message);
} finally {
  supervisor.close();
  admin.close();
  await browser.close();
}
process.exit(0);
