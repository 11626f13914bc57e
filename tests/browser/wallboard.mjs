// Drives the wallboard in a real headless Chromium (Debian's, through
// playwright-core): an agent connects, the page shows them, a click pauses
// them, the page and the agent's own client both see it. Saves a screenshot.
//
// node --experimental-websocket wallboard.mjs BASE_URL SUPERVISOR_TOKEN AGENT_TOKEN SCREENSHOT
import { chromium } from "playwright-core";

const [base, supervisorToken, agentToken, screenshot] = process.argv.slice(2);
const fail = (why) => { console.error(`browser test failed: ${why}`); process.exit(1); };
const deadline = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms));

// The agent's own client: a plain WebSocket, as an agent app would use.
const agentStates = [];
const agent = new WebSocket(base.replace(/^http/, "ws") + "/v1/ws");
await Promise.race([new Promise((resolve, reject) => {
  agent.onopen = () => agent.send(JSON.stringify({ type: "hello", token: agentToken, role: "agent",
    device: { id: "browser-test-phone", kind: "softphone", label: "Test softphone" } }));
  agent.onmessage = (ev) => { const m = JSON.parse(ev.data); if (m.type === "state") { agentStates.push(m.agent); resolve(); } };
  agent.onerror = () => reject(new Error("agent socket error"));
}), deadline(5000, "agent state")]).catch((e) => fail(e.message));
const beat = setInterval(() => agent.send(JSON.stringify({ type: "heartbeat" })), 1000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(`${base}/#role=supervisor&token=${supervisorToken}`);
  await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 5000 });

  // The agent appears, online and available.
  const row = page.locator('tr[data-agent="a1"]');
  await row.locator('[data-testid="status"]', { hasText: "available" }).waitFor({ timeout: 5000 });
  if (await row.locator(".dot.on").count() < 1) fail("the active device has no green dot");
  // Ending wrap-up is shown disabled, with the reason.
  const endWrap = row.locator('button[data-act="end_wrap_up"]');
  if (!(await endWrap.isDisabled())) fail("end wrap-up should be disabled");
  if (!(await endWrap.getAttribute("title"))) fail("a disabled action says why");

  // Pause with a click (and a reason).
  await row.locator('button[data-act="pause-open"]').click();
  await row.locator('[data-form="pause"] input').fill("coaching");
  await row.locator('button[data-act="pause"]').click();
  await row.locator('[data-testid="status"]', { hasText: "paused" }).waitFor({ timeout: 5000 });
  await row.getByText("coaching").waitFor({ timeout: 5000 });
  await page.locator("#notice", { hasText: "paused" }).waitFor({ timeout: 5000 });

  // The agent's own client received it.
  const until = Date.now() + 5000;
  while (!agentStates.some((s) => s.status === "paused" && s.pause_reason === "coaching")) {
    if (Date.now() > until) fail("the agent client never got the pause");
    await new Promise((r) => setTimeout(r, 50));
  }

  // A refusal is shown in words: a second pause of a paused agent is not offered,
  // so ask to monitor someone offline via search instead.
  await page.locator("#query").fill("ana");
  await page.locator("#searchform button").click();
  await page.locator("#results li", { hasText: "Ana Souza" }).waitFor({ timeout: 5000 });
  await page.locator("#results summary").first().click();
  if (await page.locator("#results .dot.on").count() < 1) fail("search shows no active device");

  await page.screenshot({ path: screenshot, fullPage: true });
  console.log("browser test passed; screenshot:", screenshot);
} catch (e) {
  fail(e.message);
} finally {
  clearInterval(beat);
  agent.close();
  await browser.close();
}
process.exit(0);
