// Drives the agent dashboard (/agent) in a real headless Chromium (Debian's,
// through playwright-core) beside a real wallboard page (/, signed in as the
// supervisor) against the same hub. What the supervisor sees is asserted in
// the wallboard's DOM, and the supervisor's commands (unpause, monitor, sign
// out) are the wallboard's own buttons. An admin on a raw WebSocket sets the
// pause reason codes and the agent's access to unassigned channels (the
// wallboard's admin form has no field for either). See tests/agent_page.rs.
//
// node --experimental-websocket agent.mjs BASE_URL AGENT_TOKEN SUPERVISOR_TOKEN ADMIN_TOKEN DEV_BASE_URL SCREENSHOT
//
// DEV_BASE_URL is a second hub in dev mode (a generated secret), for the
// one-click sign-in of /agent.
import { launch, until } from "./lib.mjs";

const [base, agentToken, supervisorToken, adminToken, devBase, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error("usage: agent.mjs BASE_URL AGENT_TOKEN SUPERVISOR_TOKEN ADMIN_TOKEN DEV_BASE_URL SCREENSHOT");
  process.exit(2);
}
const T = 10_000; // per-step deadline: generous, the machine is shared
const fail = (why) => { console.error(`browser test failed: ${why}`); process.exit(1); };
const step = (what) => console.log(`- ${what}`);

// A raw protocol connection (the admin), with every message kept.
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
  request(body) {
    const id = `t${++this.n}`;
    const reply = this.wait(`reply to ${body.type}`, (m) => m.type === "reply" && m.id === id);
    this.ws.send(JSON.stringify({ ...body, id }));
    return reply;
  }
  async ok(body) {
    const r = await this.request(body);
    if (!r.ok) fail(`${body.type} refused: ${JSON.stringify(r.error)}`);
    return r.result;
  }
  close() { clearInterval(this.beat); this.ws.close(); }
}

const admin = await new Raw(adminToken, "admin").open().catch((e) => fail(e.message));
// Pause reason codes (PROTOCOL.md §10.2): the page must offer them as buttons.
await admin.ok({ type: "update_settings", settings: { pause_reasons: [
  { code: "break", label: "Break", max_minutes: 15 }, { code: "coaching", label: "Coaching" }],
  sign_in_reason: "break" } });

const browser = await launch();
let page, board;
try {
  // Two windows (contexts): the agent's tab and the supervisor's wallboard.
  page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  board = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  page.on("pageerror", (e) => fail(`agent page error: ${e.message}`));
  board.on("pageerror", (e) => fail(`wallboard page error: ${e.message}`));
  const live = () => page.locator("#conn", { hasText: "live" }).waitFor({ timeout: T });
  const status = (s) => page.locator(`#status[data-status="${s}"]`).waitFor({ timeout: T });

  // ---- the wallboard side ----
  const row = board.locator('.viewport .row[data-agent="a1"]');
  /** What a1's row on the wallboard shows now (null while it has none). */
  const a1Row = () => board.evaluate(() => {
    const el = document.querySelector('.viewport .row[data-agent="a1"]');
    if (!el || el.hidden) return null;
    const text = (s) => el.querySelector(s)?.textContent ?? "";
    return {
      pill: el.querySelector(".pill")?.className ?? "", status: text(".pill"), pending: text(".pend"),
      reason: text(".c-reason"), channels: text(".c-chan"), devices: text(".c-dev"),
      deviceOn: el.querySelector(".c-dev")?.classList.contains("on") ?? false,
      time: text(".c-time"), monitor: text(".mon"), monitorTitle: el.querySelector(".mon")?.title ?? "",
    };
  });
  /** Waits (with the step deadline) until a1's row satisfies `check`. */
  const onBoard = async (what, check) => {
    let last = null;
    try {
      await until(async () => { last = await a1Row(); return last !== null && check(last); }, T, what);
    } catch {
      fail(`the wallboard never showed ${what}; a1's row: ${JSON.stringify(last)}`);
    }
  };
  const boardResult = (text) => board.locator("#p-result", { hasText: text }).waitFor({ timeout: T });
  const boardAct = async (act) => {
    const b = board.locator(`#panel button[data-act="${act}"]`);
    await b.waitFor({ timeout: T });
    if (await b.isDisabled()) fail(`the wallboard's ${act} is disabled: ${await b.getAttribute("title")}`);
    await b.click();
  };

  step("dev mode: /agent offers one-click sign-in as a demo agent");
  {
    const dev = await (await browser.newContext()).newPage();
    dev.on("pageerror", (e) => fail(`dev agent page error: ${e.message}`));
    await dev.goto(`${devBase}/agent`);
    const one = dev.locator('#people button[data-user="a1"]');
    await one.waitFor({ timeout: T });
    if (!(await one.textContent()).includes("Ana Souza")) fail(`the dev sign-in button says ${await one.textContent()}`);
    await one.click();
    await dev.locator("#conn", { hasText: "live" }).waitFor({ timeout: T });
    await dev.locator('#status[data-status="available"]').waitFor({ timeout: T });
    await dev.locator("#who", { hasText: "Ana Souza (a1)" }).waitFor({ timeout: T });
    await dev.context().close();
  }

  step("the wallboard signs in as the supervisor (#role=supervisor&token=…)");
  await board.goto(`${base}/#role=supervisor&token=${supervisorToken}`);
  await board.locator("#status", { hasText: "live" }).waitFor({ timeout: T });
  await board.locator("#who", { hasText: "Sara Supervisor" }).waitFor({ timeout: T });
  await onBoard("a1 offline before the agent signs in", (r) => r.pill.includes("offline"));

  step("sign in with the token in the fragment; one web device for this tab; the wallboard shows it");
  await page.goto(`${base}/agent#token=${agentToken}`);
  await live();
  await status("available");
  if (page.url().includes("token=")) fail("the token stays in the address bar");
  await onBoard("a1 available with an active web device", (r) => r.pill.includes("available") && r.deviceOn && r.devices.includes("Agent dashboard (browser)"));
  const deviceId = await page.evaluate(() => sessionStorage.getItem("presence-hub-agent-device"));
  const devices = await board.evaluate(() => window.wallboard.client.agents.get("a1").devices);
  if (!devices.some((d) => d.id === deviceId && d.kind === "web" && d.active)) fail(`the tab's device ${deviceId} is not a1's active web device: ${JSON.stringify(devices)}`);
  await page.locator('#channels tr[data-channel="queue:sales"] th', { hasText: "Sales" }).waitFor({ timeout: T });

  step("time in state and free slots are shown, and the time ticks");
  await page.locator("#slots", { hasText: "Free slots: queue 1, chat 1, campaign 1" }).waitFor({ timeout: T });
  if (!/^\d+:\d\d$/.test(await page.locator("#since").textContent())) fail(`time in state: ${await page.locator("#since").textContent()}`);
  await page.waitForFunction(() => document.getElementById("since").textContent !== "0:00", null, { timeout: T });
  await onBoard("a1's time in state", (r) => /^\d+:\d\d/.test(r.time));

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

  step("the agent pauses with a code (keyboard); the wallboard shows paused with the reason's label");
  await page.locator('#pause-buttons button[data-code="break"]').waitFor({ timeout: T });
  if (await page.locator("#pause-free").isVisible()) fail("free-text pause shown although codes are set");
  await keyboardPress('#pause-buttons button[data-code="break"]');
  await status("paused");
  await page.locator("#reason", { hasText: "Break" }).waitFor({ timeout: T });
  await page.locator("#changed", { hasText: "by you" }).waitFor({ timeout: T });
  await onBoard("a1 paused (Break)", (r) => r.pill.includes("paused") && r.status === "Paused" && r.reason === "Break");

  step("the supervisor unpauses from the wallboard's panel; the agent page says who did it and announces it");
  await row.locator(".who").click({ timeout: 3000 });
  await board.locator("#p-name", { hasText: "Ana Souza" }).waitFor({ timeout: T });
  await boardAct("unpause");
  await boardResult("Ana Souza unpaused.");
  await status("available");
  await page.locator("#changed", { hasText: "Sara Supervisor (supervisor)" }).waitFor({ timeout: T });
  await page.locator("#announce", { hasText: "Sara Supervisor (supervisor) changed your status to available" }).waitFor({ timeout: T });
  if ((await page.locator("#announce").getAttribute("aria-live")) !== "assertive") fail("the announcement is not live");
  await onBoard("a1 available, changed by the supervisor", (r) => r.pill.includes("available") && r.reason === "by Sara Supervisor");

  step("connect to an assigned queue; join an unassigned one while allowed; lingering once access is off; refused after");
  await page.locator('#channels tr[data-channel="queue:sales"] button[aria-pressed="false"]').click();
  await page.locator('#channels tr[data-channel="queue:sales"] button[aria-pressed="true"]').waitFor({ timeout: T });
  await onBoard("a1 connected to Sales", (r) => r.channels.includes("● Sales"));
  await page.locator('#others tr[data-channel="queue:billing"] button', { hasText: "Join Billing" }).click();
  await onBoard("a1 connected to Billing", (r) => r.channels.includes("● Billing"));
  await admin.ok({ type: "set_unassigned_access", agent_id: "a1", allowed: false });
  await page.locator('#channels tr[data-channel="queue:billing"] .tag.lingering').waitFor({ timeout: T });
  await onBoard("a1's Billing connection lingering", (r) => r.channels.includes("⚠ Billing"));
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

  step("a monitor request refused with Escape: the wallboard says so, and nobody monitors");
  await boardAct("monitor-listen");
  await page.locator("#prompt[open]").waitFor({ timeout: T });
  await page.locator("#prompt-text", { hasText: "Sara Supervisor (s1)" }).waitFor({ timeout: T });
  await page.locator("#prompt-text", { hasText: "listen" }).waitFor({ timeout: T });
  await page.keyboard.press("Escape");
  await page.locator("#prompt").waitFor({ state: "hidden", timeout: T });
  await boardResult("refused");
  await page.locator("#announce", { hasText: "You refused Sara Supervisor (s1)'s monitor request." }).waitFor({ timeout: T });
  if (await page.locator("#monitors").isVisible()) fail("a refused monitor shows on the agent page");
  await onBoard("a1 not monitored after the refusal", (r) => r.monitor === "");

  step("a monitor request (whisper) accepted with the keyboard; the wallboard shows the monitor");
  await boardAct("monitor-whisper");
  await page.locator("#prompt[open]").waitFor({ timeout: T });
  await page.locator("#prompt-text", { hasText: "Sara Supervisor (s1)" }).waitFor({ timeout: T });
  await page.locator("#prompt-text", { hasText: "whisper" }).waitFor({ timeout: T });
  if (!(await page.evaluate(() => document.activeElement?.id === "accept"))) fail("the prompt does not focus Accept");
  await page.keyboard.press("Enter");
  await boardResult("Monitoring Ana Souza (whisper).");
  await onBoard("a1 monitored by Sara Supervisor (whisper)", (r) => r.monitor === "🎧" && r.monitorTitle === "Sara Supervisor (whisper)");
  await board.locator("#p-facts", { hasText: "Monitored by Sara Supervisor (whisper)" }).waitFor({ timeout: T });
  await page.locator("#monitors", { hasText: "Sara Supervisor (whisper)" }).waitFor({ timeout: T });

  step("softphone simulator: a chat, its free slots, wrap-up, end wrap-up");
  await page.locator("#chat-channel").selectOption("chat:web");
  await page.locator("#start-chat").click();
  await status("busy");
  await page.locator("#interactions li[data-interaction]", { hasText: "Chat chat-" }).waitFor({ timeout: T });
  await page.locator("#interactions li[data-interaction]", { hasText: "on Web chat" }).waitFor({ timeout: T });
  await page.locator("#slots", { hasText: "Free slots: queue 0, chat 0, campaign 0" }).waitFor({ timeout: T });
  await onBoard("a1 busy on a chat", (r) => r.pill.includes("busy") && /chat-\S+ \(Web chat\)/.test(r.reason));
  await page.locator("#interactions li[data-interaction] button", { hasText: "End" }).click();
  await status("wrap_up");
  await onBoard("a1 in wrap-up", (r) => r.pill.includes("wrap_up"));
  await page.locator("#end-wrapup").click();
  await status("available");

  step("softphone simulator: a call, a pause pending while busy, wrap-up, end wrap-up");
  await page.locator("#call-channel").selectOption("queue:sales");
  await page.locator("#start-call").click();
  await status("busy");
  await onBoard("a1 busy on a call", (r) => r.pill.includes("busy") && /call-\S+ \(Sales\)/.test(r.reason));
  await page.locator("#interactions li[data-interaction] button", { hasText: "End" }).waitFor({ timeout: T });
  await page.locator('#pause-buttons button[data-code="coaching"]').click();
  await page.locator("#pending", { hasText: "Pause pending" }).waitFor({ timeout: T });
  await onBoard("a1's pause pending", (r) => r.pill.includes("busy") && r.pending === "pause pending: Coaching");
  await page.locator("#interactions li[data-interaction] button").click();
  await status("wrap_up");
  await page.locator("#wrapup-left").waitFor({ timeout: T });
  await page.locator("#end-wrapup").click();
  await status("paused");
  await onBoard("a1 paused (Coaching) after wrap-up", (r) => r.pill.includes("paused") && r.reason === "Coaching");
  await page.locator("#available").click();
  await status("available");
  await onBoard("a1 available again", (r) => r.pill.includes("available"));

  await page.screenshot({ path: screenshot, fullPage: true });

  step("a reload within the grace: no offline state on the wallboard");
  // From here the wallboard page records every record of a1 it applies and
  // every change of a1's row and of the offline total, so a flap cannot hide
  // between two looks (nor inside one animation frame).
  await board.evaluate(() => {
    const seen = (window.__flap = { records: [], row: [], totals: [] });
    window.wallboard.client.on("agent", (r) => {
      if (r.id === "a1") seen.records.push({ version: r.version, presence: r.presence, status: r.status });
    });
    const texts = (nodes) => [...nodes].map((n) => n.textContent).filter(Boolean);
    const el = document.querySelector('.viewport .row[data-agent="a1"]');
    new MutationObserver((muts) => {
      for (const m of muts) {
        seen.row.push({ agent: el.dataset.agent, old: m.oldValue ?? texts(m.removedNodes).join(" "), now: m.type === "attributes" ? m.target.getAttribute(m.attributeName) : texts(m.addedNodes).join(" ") });
      }
    }).observe(el, { subtree: true, childList: true, attributes: true, attributeOldValue: true, attributeFilter: ["class", "data-agent"] });
    new MutationObserver(() => seen.totals.push(document.getElementById("t-offline").textContent))
      .observe(document.getElementById("t-offline"), { childList: true, characterData: true, subtree: true });
    seen.offlineBefore = document.getElementById("t-offline").textContent;
  });
  await page.reload();
  await live();
  await status("available");
  // A change made after the reload: once the wallboard shows it, every
  // earlier change of a1 has reached it too (deltas are ordered).
  await page.locator('#channels tr[data-channel="queue:sales"] button[aria-pressed="true"]').click();
  await onBoard("a1 disconnected from Sales after the reload", (r) => r.channels.includes("○ Sales"));
  const flap = await board.evaluate(() => window.__flap);
  if (!flap.records.some((r) => r.presence === "online")) fail(`the wallboard applied no record of a1 across the reload: ${JSON.stringify(flap)}`);
  const offline = flap.records.filter((r) => r.presence !== "online" || r.status === "offline");
  if (offline.length) fail(`the reload flapped on the wallboard (records): ${JSON.stringify(offline)}`);
  const rowFlaps = flap.row.filter((m) => m.agent !== "a1" || /offline/i.test(`${m.old} ${m.now}`));
  if (rowFlaps.length) fail(`the reload flapped on the wallboard (a1's row): ${JSON.stringify(rowFlaps)}`);
  if (flap.totals.some((t) => t !== flap.offlineBefore)) fail(`the offline total moved during the reload: ${flap.offlineBefore} → ${flap.totals}`);
  const after = await page.evaluate(() => sessionStorage.getItem("presence-hub-agent-device"));
  if (after !== deviceId) fail("the device id changed across the reload");

  step("sign-out from the wallboard (with a confirmation) closes the agent's session with the message");
  await boardAct("signout-open");
  await board.locator("#p-signout-reason").fill("end of shift");
  await board.locator('#p-signout button[type="submit"]').click();
  await boardResult("Ana Souza signed out.");
  await page.locator("#signedout").waitFor({ state: "visible", timeout: T });
  await page.locator("#signedout-text", { hasText: "Sara Supervisor (supervisor)" }).waitFor({ timeout: T });
  await page.locator("#signedout-text", { hasText: "end of shift" }).waitFor({ timeout: T });
  await page.locator("#conn", { hasText: "signed out" }).waitFor({ timeout: T });
  await onBoard("a1 offline after the sign-out", (r) => r.pill.includes("offline") && r.status === "Offline");
  await page.locator("#again").click();
  await live();
  await status("available");
  await onBoard("a1 back online after signing in again", (r) => r.pill.includes("available") && r.deviceOn);

  console.log("browser test passed; screenshot:", screenshot);
} catch (e) {
  if (page) await page.screenshot({ path: screenshot.replace(/\.png$/, "-failed.png"), fullPage: true }).catch(() => {});
  if (board) await board.screenshot({ path: screenshot.replace(/\.png$/, "-wallboard-failed.png"), fullPage: true }).catch(() => {});
  fail(e.message);
} finally {
  admin.close();
  await browser.close();
}
process.exit(0);
