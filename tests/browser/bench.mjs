// The wallboard's browser benchmark (a script, not a test): a real hub, the
// load tool's `fanout` driving N agents over real WebSockets at R changes/s,
// and the wallboard in headless Chromium signed in as a supervisor of all of
// them. Reports, after the first render, over DURATION seconds:
//
//   first render   navigation start → the first frame with the snapshot drawn
//                  (parts: → the hub's welcome, → the snapshot, → drawn)
//   frames/s       requestAnimationFrame callbacks per second
//   long tasks     main-thread tasks over 50 ms (PerformanceObserver)
//   data age       at each frame, now − status_since_ms of each record drawn
//                  (the hub stamps the change; same machine, same clock)
//   click→effect   a click on a row → its panel painted, and a click on a
//                  status total → the filtered list painted (10 each)
//   DOM size       elements in the document
//
// Build first: cargo build --release (or pass --debug for the debug build).
//   node --experimental-websocket tests/browser/bench.mjs [--agents 5000] [--rate 500] [--duration 20] [--debug]
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { devRoutes, launch, mint, until } from "./lib.mjs";

const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
const N = Number(arg("agents", 5000));
const RATE = Number(arg("rate", 500));
const DURATION = Number(arg("duration", 20));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(root, "target", process.argv.includes("--debug") ? "debug" : "release");
const secret = "bench-secret";

// The load tool's directory shape (tenant "load", agents ag0…, supervisor sv0),
// with its queue and 20 more to show channel cards.
const users = Array.from({ length: N }, (_, i) => ({ id: `ag${i}`, name: `Agent ${i}`, roles: ["agent"] }));
users.push({ id: "sv0", name: "Supervisor 0", roles: ["supervisor"] });
const channels = [{ kind: "queue", id: "q", name: "Queue", assigned: users.slice(0, N).map((u) => u.id) },
  ...Array.from({ length: 20 }, (_, q) => ({ kind: "queue", id: `r${q}`, name: `Region ${q + 1}`, assigned: users.slice(0, N).filter((_, i) => i % 20 === q).map((u) => u.id) }))];
const dirPath = path.join(os.tmpdir(), `wallboard-bench-${process.pid}.json`);
fs.writeFileSync(dirPath, JSON.stringify({ tenants: [{ id: "load", name: "Load test", channels, users }] }));

const children = [];
const cleanup = () => { for (const c of children) c.kill("SIGKILL"); try { fs.unlinkSync(dirPath); } catch { /* gone */ } };
process.on("exit", cleanup);

const hub = spawn(path.join(bin, "presence-hub"), ["--listen", "127.0.0.1:0", "--no-demo", "--directory", dirPath,
  "--rate-limit-per-sec", "100000", "--max-connections", "1000000"], { env: { ...process.env, PRESENCE_HUB_JWT_SECRET: secret, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "ignore"] });
children.push(hub);
const addr = await new Promise((resolve, reject) => {
  let out = "";
  hub.stdout.on("data", (d) => { out += d; const m = out.match(/listening on http:\/\/(\S+)/); if (m) resolve(m[1]); });
  hub.on("exit", () => reject(new Error("the hub exited")));
});
const base = `http://${addr}`;
const metric = async (name) => {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
};

// Agents connect, then change at RATE for long enough to cover the whole measurement.
const load = spawn(path.join(bin, "presence-loadtest"), ["fanout", "--url", `ws://${addr}/v1/ws`, "--jwt-secret", secret,
  "--agents", String(N), "--supervisors", "0", "--changes-per-s", String(RATE), "--duration-s", String(DURATION + 600)], { stdio: "ignore" });
children.push(load);
await until(async () => (await metric('presence_hub_connections{role="agent"}')) >= N, 300000, `${N} agents connected`);
console.error(`${N} agents connected; opening the wallboard`);
await until(async () => (await metric("presence_hub_deltas_published_total")) > RATE, 60000, "changes flowing").catch(() => {});

const log = (what) => console.error(`${new Date().toISOString().slice(11, 19)} ${what}`);
log("launching Chromium");
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.addInitScript(() => {
  const b = (window.__bench = { frames: 0, longTasks: [], ages: [], applied: 0, measuring: false });
  new PerformanceObserver((list) => { for (const e of list.getEntries()) b.longTasks.push({ at: e.startTime, ms: e.duration }); }).observe({ type: "longtask", buffered: true });
  const loop = () => { if (b.measuring) b.frames++; requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
});
await devRoutes(page);
await page.goto(`${base}/#role=supervisor&token=${mint(secret, "load", "sv0")}`, { waitUntil: "commit", timeout: 120000 });
await page.waitForFunction((n) => window.wallboard?.client?.agents.size >= n && performance.getEntriesByName("wallboard-first-render").length, N, { timeout: 120000 });
const [firstRender, snapshotAt, welcomeAt] = await page.evaluate(() => ["wallboard-first-render", "wallboard-snapshot", "wallboard-welcome"]
  .map((m) => performance.getEntriesByName(m).at(-1).startTime));
log(`first render after ${Math.round(firstRender)} ms; measuring for ${DURATION} s`);
// Let the first render's work finish, then measure.
await page.evaluate(() => new Promise((r) => setTimeout(r, 1000)));
const t0 = await page.evaluate(() => {
  const b = window.__bench;
  window.wallboard.onFrame = (dirty) => {
    if (!b.measuring) return;
    const now = Date.now();
    const agents = window.wallboard.client.agents;
    for (const id of dirty) { const r = agents.get(id); if (r) b.ages.push(now - r.status_since_ms); }
  };
  window.wallboard.client.on("agent", () => { if (b.measuring) b.applied++; });
  b.measuring = true;
  return performance.now();
});
// --profile: the page's main-thread CPU profile over the run, top functions by self time.
const cdp = process.argv.includes("--profile") ? await page.context().newCDPSession(page) : null;
if (cdp) { await cdp.send("Profiler.enable"); await cdp.send("Profiler.start"); }
const changes0 = await metric("presence_hub_deltas_published_total");

// Clicks during the run, spread over it.
const clicks = { row: [], filter: [] };
// A real mouse click (trusted event, its own timestamp) → the next frame painted.
async function clickTimed(kind, k) {
  const at = await page.evaluate(([kind, k]) => {
    // A row in view (the pool also holds rows above and below it, in no
    // particular order), clicked on its name (the checkbox left of it
    // selects for a bulk action instead of opening the panel).
    const vp = document.getElementById("viewport").getBoundingClientRect();
    const inView = [...document.querySelectorAll(".viewport .row:not([hidden]) .who")]
      .filter((b) => { const r = b.getBoundingClientRect(); return r.top >= vp.top && r.bottom <= vp.bottom; })
      .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
    const el = kind === "row"
      ? inView[k % Math.max(1, Math.min(10, inView.length))]
      : document.querySelector(`#totals button[data-status="${k % 2 ? "paused" : ""}"]`);
    if (!el) return null;
    const on = kind === "row" ? document.getElementById("viewport") : el;
    window.__clicked = new Promise((resolve) => on.addEventListener("click", (ev) => {
      const start = ev.timeStamp;
      // The handler runs now; the effect is on screen after the next frame.
      requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - start), 0));
    }, { once: true, capture: true }));
    const r = el.getBoundingClientRect();
    return { x: r.left + Math.min(30, r.width / 2), y: r.top + r.height / 2 };
  }, [kind, k]);
  if (!at) return null;
  await page.mouse.click(at.x, at.y);
  return page.evaluate(() => window.__clicked);
}
const end = Date.now() + DURATION * 1000;
let k = 0;
while (Date.now() < end) {
  await new Promise((r) => setTimeout(r, (DURATION * 1000) / 12));
  if (Date.now() >= end) break;
  clicks.row.push(await clickTimed("row", k));
  clicks.filter.push(await clickTimed("filter", k));
  k++;
}
const r = await page.evaluate((t0) => {
  const b = window.__bench;
  b.measuring = false;
  const secs = (performance.now() - t0) / 1000;
  const ages = b.ages.sort((x, y) => x - y);
  const pct = (p) => ages[Math.min(ages.length - 1, Math.floor(ages.length * p))] ?? null;
  const after = b.longTasks.filter((t) => t.at >= t0);
  return { secs, fps: b.frames / secs, applied_per_s: b.applied / secs, long_tasks: after.length, longest_task_ms: Math.max(0, ...after.map((t) => t.ms)),
           age_p50_ms: pct(0.5), age_p99_ms: pct(0.99), age_max_ms: ages[ages.length - 1] ?? null, dom: document.getElementsByTagName("*").length,
           first_render_tasks: b.longTasks.filter((t) => t.at < t0).map((t) => Math.round(t.ms)) };
}, t0);
if (cdp) {
  const { profile } = await cdp.send("Profiler.stop");
  const self = new Map();
  const dt = new Map();
  profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) || 0) + (profile.timeDeltas[i] || 0)));
  for (const n of profile.nodes) {
    const key = `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber}`;
    self.set(key, (self.get(key) || 0) + (dt.get(n.id) || 0));
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
  for (const [k, us] of top) console.error(`${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
}
const changes = (await metric("presence_hub_deltas_published_total")) - changes0;
const max = (xs) => (xs.some((x) => x === null) ? null : Math.max(...xs));
const result = {
  agents: N, changes_per_s_asked: RATE, hub_changes_per_s: Math.round(changes / r.secs), page_applied_per_s: Math.round(r.applied_per_s),
  first_render_ms: Math.round(firstRender), first_render_parts_ms: { to_welcome: Math.round(welcomeAt), welcome_to_snapshot: Math.round(snapshotAt - welcomeAt), snapshot_to_render: Math.round(firstRender - snapshotAt) }, fps: Math.round(r.fps * 10) / 10, long_tasks_after_first_render: r.long_tasks,
  longest_task_ms: Math.round(r.longest_task_ms), data_age_ms: { p50: r.age_p50_ms, p99: r.age_p99_ms, max: r.age_max_ms },
  click_row_to_panel_ms_max: Math.round(max(clicks.row)), click_filter_to_list_ms_max: Math.round(max(clicks.filter)),
  dom_elements: r.dom, first_render_long_tasks_ms: r.first_render_tasks, load: os.loadavg().map((x) => Math.round(x * 100) / 100),
  build: path.basename(bin),
};
console.log(JSON.stringify(result, null, 1));
await browser.close();
cleanup();
process.exit(0);
