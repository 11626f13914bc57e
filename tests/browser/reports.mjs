// The wallboard's Reports view (reports.js), used keyboard only while a
// contact center's worth of agents changes state: a real hub with a
// directory of AGENTS agents, ONLINE of them on real WebSockets making a
// change every few milliseconds. The admin (ad1) opens Reports in a browser
// whose time zone is America/Sao_Paulo:
//
//  open:   the view opens from the keyboard (its summary), defaults to the
//          browser's zone, and shows today per agent: one row per agent the
//          hub's own report (fetched here, with the same token) lists;
//  teams:  "Team (channel)" chosen with the keyboard: the channels' rows;
//  yesterday: the day before, said in the note;
//  csv:    Download CSV gives the hub's file (its name, its header row);
//  print:  in print media the navigation is hidden, the table is not;
//  axe:    with the view open and a report shown, no serious or critical
//          violation.
//
// node --experimental-websocket reports.mjs HUB_ADDR SECRET AGENTS ONLINE SCREENSHOT
import { agents, axeScan, devRoutes, launch, mint, randomChange, until } from "./lib.mjs";
import fs from "node:fs";

const [hubAddr, secret, agentCount, onlineCount, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error("usage: reports.mjs HUB_ADDR SECRET AGENTS ONLINE SCREENSHOT");
  process.exit(2);
}
const N = Number(agentCount);
const ONLINE = Number(onlineCount);
const T = 30_000; // per-step deadline: the machine is shared and busy
const ZONE = "America/Sao_Paulo";
const fail = (why) => { console.error(`browser test failed: ${why}`); process.exit(1); };
const step = (what) => console.log(`- ${what}`);
const wsUrl = `ws://${hubAddr}/v1/ws`;
const base = `http://${hubAddr}`;
const token = mint(secret, "acme", "ad1");

const crew = await agents(wsUrl, secret, ONLINE);
let seq = 0;
let changes = 0;
const flow = setInterval(() => {
  for (let k = 0; k < 2; k++) { seq++; changes++; randomChange(crew.list[(seq * 7) % ONLINE], seq); }
}, 10);

/** The hub's own report, as JSON. */
const hubReport = async (path, query) => {
  const res = await fetch(`${base}/api/v1/reports/${path}?${query}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) fail(`the hub refused ${path}?${query}: ${res.status} ${await res.text()}`);
  return res.json();
};
const localDate = (ms) => new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(ms));
const addDays = (date, days) => { const [y, m, d] = date.split("-").map(Number); return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10); };

const browser = await launch();
try {
  const ctx = await browser.newContext({ viewport: { width: 1500, height: 1000 }, timezoneId: ZONE, acceptDownloads: true });
  const page = await ctx.newPage();
  await devRoutes(page);
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(`${base}/#role=admin&token=${token}`);
  await page.locator("#reports-box").waitFor({ state: "visible", timeout: T });

  const active = () => page.evaluate(() => { const e = document.activeElement; return e ? `${e.tagName}#${e.id}` : null; });
  const tabTo = async (selector) => {
    const back = await page.evaluate((s) => {
      const target = document.querySelector(s);
      const at = document.activeElement;
      return !!(target && at && at !== document.body && (target.compareDocumentPosition(at) & Node.DOCUMENT_POSITION_FOLLOWING));
    }, selector);
    for (let i = 0; i < 400; i++) {
      await page.keyboard.press(back ? "Shift+Tab" : "Tab");
      if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
    }
    fail(`Tab never reached ${selector}; the focus is on ${await active()}`);
  };
  const note = (text) => page.locator("#rp-note", { hasText: text }).waitFor({ timeout: T })
    .catch(async () => fail(`the view never said "${text}": "${await page.locator("#rp-note").textContent()}" / "${await page.locator("#rp-error").textContent()}"`));
  const rowNames = () => page.$$eval("#rp-table tbody th[scope=row]", (ths) => ths.map((t) => t.textContent));

  step("open: from the keyboard, the browser's zone, today per agent");
  await tabTo("#reports-title");
  await page.keyboard.press("Enter");
  const today = localDate(Date.now());
  await note(`Agents, ${today} (${ZONE})`);
  if ((await page.inputValue("#rp-tz")) !== ZONE) fail(`the zone is not the browser's: ${await page.inputValue("#rp-tz")}`);
  const hub = await hubReport("agents", `from=${today}&to=${addDays(today, 1)}&bucket=1d&tz=${encodeURIComponent(ZONE)}`);
  const want = hub.agents.map((a) => a.agent_id);
  const shown = await rowNames();
  if (want.length < ONLINE) fail(`the hub's report lists ${want.length} agents, fewer than the ${ONLINE} online`);
  if (JSON.stringify(shown) !== JSON.stringify(want)) fail(`the table's agents (${shown.length}) are not the hub's (${want.length})`);
  const cells = await page.$$eval("#rp-table tbody tr:first-child td", (tds) => tds.map((t) => t.textContent));
  if (!cells.length || !/\d/.test(cells[0])) fail(`no figures in the first row: ${cells}`);
  step(`  ${shown.length} agents shown (${N} in the directory)`);

  step("teams: by channel, chosen from the keyboard");
  await tabTo("#rp-by");
  await page.keyboard.press("ArrowDown");
  await tabTo("#rp-load");
  await page.keyboard.press("Enter");
  await note(`Teams, ${today}`);
  const teams = await rowNames();
  const hubTeams = (await hubReport("channels", `from=${today}&to=${addDays(today, 1)}&bucket=1d&tz=${encodeURIComponent(ZONE)}`)).channels.map((c) => `${c.kind} ${c.id}`);
  if (JSON.stringify(teams) !== JSON.stringify(hubTeams)) fail(`teams shown ${teams} are not the hub's ${hubTeams}`);

  step("yesterday");
  await tabTo("#rp-day");
  await page.keyboard.press("ArrowDown");
  await tabTo("#rp-load");
  await page.keyboard.press("Enter");
  await note(`Teams, ${addDays(today, -1)} (${ZONE})`);

  step("csv: the hub's file");
  await tabTo("#rp-csv");
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: T }), page.keyboard.press("Enter")]);
  const name = download.suggestedFilename();
  if (name !== `channels_${addDays(today, -1)}_${today}.csv`) fail(`the CSV is named ${name}`);
  const csv = fs.readFileSync(await download.path(), "utf8");
  if (!csv.startsWith("row,kind,id,bucket_start,")) fail(`not the channels CSV: ${csv.slice(0, 80)}`);

  step("print: the table stays, the navigation goes");
  await page.emulateMedia({ media: "print" });
  const seen = await page.evaluate(() => ({
    header: getComputedStyle(document.querySelector("header.top")).visibility,
    table: getComputedStyle(document.getElementById("rp-table")).visibility,
    bar: getComputedStyle(document.querySelector("#rp-table .rp-bar")).visibility,
    controls: getComputedStyle(document.getElementById("rp-form")).display,
  }));
  if (seen.header !== "hidden" || seen.table !== "visible" || seen.bar !== "visible" || seen.controls !== "none") fail(`print: ${JSON.stringify(seen)}`);
  await page.emulateMedia({ media: "screen" });

  step("axe: the view open with a report");
  await tabTo("#rp-by");
  await page.keyboard.press("ArrowUp");
  await tabTo("#rp-load");
  await page.keyboard.press("Enter");
  await note("Agents,");
  const found = await axeScan(page);
  if (found.length) fail(`axe-core, the wallboard with Reports open:\n  ${found.join("\n  ")}`);
  await page.screenshot({ path: screenshot, fullPage: false });
  step(`live data all along: ${changes} changes requested by ${ONLINE} agents; the last report took ${await page.evaluate(() => window.wallboard.reports.loadedMs)} ms`);
  console.log("browser test passed");
} catch (e) {
  fail(e.stack || String(e));
} finally {
  clearInterval(flow);
  crew.stop();
  await browser.close();
}
process.exit(0);
