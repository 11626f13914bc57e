// Queue statistics on the wallboard (PROTOCOL.md §10.7) in a real headless
// Chromium against a real hub running its demo (agents change status all
// the time; the demo's own ACD is revoked first, so it pushes no more): an
// ACD's push through the integration API shows on the sales
// card (waiting, longest wait, service level, offered/answered/abandoned);
// an alert on waiting set from the keyboard highlights the card, in words;
// statistics not pushed again turn "stale" in text, not only in colour;
// a fresh push clears it; an axe-core scan finds no serious violation.
//
// node --experimental-websocket queue_stats.mjs HUB_ADDR SECRET SCREENSHOT
import { axeScan, devRoutes, launch, mint, until } from "./lib.mjs";

const [hubAddr, secret, screenshot] = process.argv.slice(2);
const base = `http://${hubAddr}`;
const fail = (why) => { console.error(`browser test failed: ${why}`); process.exit(1); };
const step = (what) => console.log(`- ${what}`);

async function api(method, path, bearer, body) {
  const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

// The demo's own ACD pushes every channel's statistics each second: revoked,
// it stops (docs/API.md, "The demo as an example integration"), and this
// test's pushes stay on the card.
// (It makes its credential right after the node starts listening.)
await until(async () => (await api("DELETE", "/api/v1/credentials/demo-acd", mint(secret, "acme", "ad1"))).status === 200,
  10000, "the demo's ACD credential revoked");
const made = await api("POST", "/api/v1/credentials", mint(secret, "acme", "ad1"), { id: "acd-sim", scopes: ["queues:write"] });
if (made.status !== 201) fail(`credential: ${JSON.stringify(made)}`);
const key = made.json.key;
const push = async (body) => {
  const r = await api("PUT", "/api/v1/channels/queue/sales/stats", key, body);
  if (r.status !== 200) fail(`push: ${JSON.stringify(r)}`);
};

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await devRoutes(page);
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(`${base}/#role=supervisor&token=${mint(secret, "acme", "s1")}`);
  await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 10000 });
  const line = page.locator('[data-channel="queue:sales"] .c-queue');
  const text = () => line.textContent();

  step("a push shows on the sales card: waiting, longest wait, service level, today's counts");
  await push({ waiting: 3, longest_wait_s: 42, offered: 120, answered: 110, abandoned: 10, service_level: 0.82, service_level_s: 20 });
  await until(async () => /^3 waiting/.test(await text()), 5000, "the sales card shows 3 waiting");
  const shown = await text();
  for (const part of ["longest", "SL 82% in 20s", "120 offered / 110 answered / 10 abandoned"]) {
    if (!shown.includes(part)) fail(`the card says "${shown}", without "${part}"`);
  }

  step("an alert on 3 or more waiting, set from the keyboard, highlights the card in words");
  await page.locator("#alert-channel").focus();
  await page.locator("#alert-channel").selectOption("queue:sales");
  await page.locator("#alert-max-waiting").focus();
  await page.keyboard.type("3");
  await page.keyboard.press("Enter");
  const card = page.locator('[data-channel="queue:sales"]');
  await until(async () => /3 waiting \(3 or more\)/.test(await card.locator(".c-alert").textContent()), 5000, "the waiting alert");
  if (!(await card.evaluate((el) => el.classList.contains("alert")))) fail("the card is not highlighted");

  step("statistics not pushed again turn stale, in text");
  await until(async () => /^stale/.test(await text()), 10000, "the card says stale");
  step("a fresh push clears it");
  await push({ waiting: 1, longest_wait_s: 4 });
  await until(async () => /^1 waiting/.test(await text()), 5000, "fresh again");
  if (!(await card.evaluate((el) => !el.classList.contains("alert")))) fail("the alert stayed after waiting fell to 1");

  step("axe-core finds no serious or critical violation");
  const violations = await axeScan(page);
  if (violations.length) fail(`axe: ${violations.join("\n")}`);
  await page.screenshot({ path: screenshot });
  console.log("browser test passed; screenshot:", screenshot);
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
}
