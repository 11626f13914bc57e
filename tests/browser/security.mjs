// Web security in a real Chromium (Debian's, through playwright-core), against
// the real binary in dev mode with its demo agents (live data). See
// tests/web_security.rs.
//
// node --experimental-websocket security.mjs WALLBOARD_URL AGENT_URL PORTAL_ORIGIN AGENT_TOKEN SCREENSHOT
//
// WALLBOARD_URL and AGENT_URL are the banner's sign-in links (`/#role=…&token=…`,
// `/agent#token=…`). PORTAL_ORIGIN (http://127.0.0.3:PORT) is an origin the hub
// was started with in --frame-ancestors and --cors-origins: this script serves
// a portal page there, and a foreign page on 127.0.0.2 (another origin the hub
// does not know; both are loopback, so Chromium's private-network rules treat
// them as the hub's peers and only the hub's own headers decide).
//
// 1. Both pages load under the hub's CSP with no `securitypolicyviolation`
//    event and no CSP console error, load only versioned immutable files, the
//    wallboard connects and renders the demo agents' rows, the agent page
//    connects. A deliberate violation proves the recorder hears them, and a
//    same-origin WebSocket opened from the page proves `connect-src 'self'`
//    covers ws:.
// 2. The foreign page cannot frame either page; the portal can.
// 3. A cross-origin fetch of an API is refused from the foreign page (simple
//    and preflighted) and allowed from the portal.
import { launch, until } from "./lib.mjs";
import http from "node:http";

const [wallboardUrl, agentUrl, portalOrigin, agentToken, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error("usage: security.mjs WALLBOARD_URL AGENT_URL PORTAL_ORIGIN AGENT_TOKEN SCREENSHOT");
  process.exit(2);
}
const T = 15_000; // per-step deadline: generous, the machine is shared
const fail = (why) => { console.error(`browser test failed: ${why}`); process.exit(1); };
const step = (what) => console.log(`- ${what}`);
const hub = new URL(wallboardUrl).origin;

// A page of another origin: it frames both hub pages and tries the APIs.
// Inline script is fine here: this page is not the hub's and has no CSP.
const otherPage = `<!doctype html><meta charset="utf-8"><title>other origin</title>
<iframe id="wallboard" src="${hub}/" width="600" height="300"></iframe>
<iframe id="agent" src="${hub}/agent" width="600" height="300"></iframe>`;

function serve(host, port) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(otherPage);
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

// Everything the CSP reports, on every page of the context.
const violations = [];
async function watch(context) {
  await context.exposeBinding("__cspViolation", ({ frame }, v) => violations.push({ ...v, frame: frame.url() }));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolation({ directive: e.violatedDirective, blocked: e.blockedURI, page: location.href }));
  });
}
const cspConsole = [];
// Script errors of the pages themselves: none when loaded as pages. In a
// portal's frame, Chromium denies a cross-site frame its sessionStorage
// (third-party storage), which the agent page reads at load: noted, not
// a CSP matter (README "Web security", embedding).
const pageErrors = [];
const framedErrors = [];
function listen(page, name, framed = false) {
  page.on("console", (m) => {
    const text = m.text();
    if (/Content Security Policy|Permissions.Policy|Refused to/i.test(text)) cspConsole.push(`${name}: [${m.type()}] ${text}`);
  });
  page.on("pageerror", (e) => (framed ? framedErrors : pageErrors).push(`${name}: ${e.message}`));
}

const foreign = await serve("127.0.0.2", 0);
const foreignOrigin = `http://127.0.0.2:${foreign.address().port}`;
const portalUrl = new URL(portalOrigin);
const portal = await serve(portalUrl.hostname, Number(portalUrl.port));

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await watch(context);

  // 1. Both pages under the CSP, live.
  step("the wallboard loads under the CSP and renders live rows");
  const board = await context.newPage();
  listen(board, "wallboard");
  const loaded = [];
  board.on("response", (r) => loaded.push({ url: r.url(), type: r.request().resourceType(), cache: r.headers()["cache-control"] ?? "" }));
  const main = await board.goto(wallboardUrl);
  const csp = main.headers()["content-security-policy"] ?? "";
  if (!csp.includes("frame-ancestors") || !csp.includes("script-src 'self'")) fail(`the page's CSP: ${csp}`);
  await until(() => board.evaluate(() => document.getElementById("status")?.textContent === "live"), T, "the wallboard goes live");
  await until(() => board.evaluate(() => document.querySelectorAll("#viewport .row:not([hidden])").length >= 3), T, "agent rows on the wallboard");
  const firstStatuses = await board.evaluate(() => [...document.querySelectorAll("#viewport .row:not([hidden]) .pill")].map((p) => p.textContent).join());
  // Live data: the demo agents keep changing, so what is shown changes.
  await until(async () => (await board.evaluate(() => [...document.querySelectorAll("#viewport .row:not([hidden]) .pill")].map((p) => p.textContent).join())) !== firstStatuses,
    30_000, "a demo agent's change shown on the wallboard");
  const subresources = loaded.filter((r) => r.type === "script" || r.type === "stylesheet");
  if (subresources.length < 3) fail(`few scripts and stylesheets loaded: ${JSON.stringify(subresources)}`);
  for (const r of subresources) {
    if (!new URL(r.url).pathname.startsWith("/assets/") || !r.cache.includes("immutable")) fail(`not a versioned immutable file: ${JSON.stringify(r)}`);
  }
  step(`  ${subresources.length} scripts and stylesheets, every one versioned and immutable`);

  step("connect-src 'self' covers the page's own ws: origin; the recorder hears a violation");
  const sameOrigin = await board.evaluate(() => new Promise((resolve) => {
    const ws = new WebSocket(`ws://${location.host}/v1/ws`);
    ws.onopen = () => { ws.close(); resolve("open"); };
    ws.onerror = () => resolve("error");
  }));
  if (sameOrigin !== "open") fail(`a same-origin WebSocket did not open under the CSP: ${sameOrigin}`);
  const before = violations.length;
  await board.evaluate((url) => { try { new WebSocket(url); } catch { /* CSP may throw */ } }, `ws://127.0.0.2:${foreign.address().port}/`);
  await until(() => violations.length > before, T, "the deliberate connect-src violation is reported");
  const deliberate = violations.splice(before);
  if (!deliberate.every((v) => v.directive.startsWith("connect-src"))) fail(`unexpected violation: ${JSON.stringify(deliberate)}`);
  cspConsole.splice(0); // its console line too

  step("the agent page loads under the CSP and connects");
  const agent = await context.newPage();
  listen(agent, "agent");
  await agent.goto(agentUrl);
  await until(() => agent.evaluate(() => document.getElementById("conn")?.textContent === "live"), T, "the agent page goes live");
  await until(() => agent.evaluate(() => !!document.querySelector("#channels tr")), T, "the agent's channels listed");

  // 2. Framing.
  step("another origin cannot frame the pages; the portal (--frame-ancestors) can");
  const framed = async (origin) => {
    const page = await context.newPage();
    listen(page, `frames from ${origin}`, true);
    const blocked = [];
    page.on("console", (m) => { if (m.text().includes("frame-ancestors")) blocked.push(m.text()); });
    await page.goto(`${origin}/`);
    // Each frame ends either showing the hub's page or Chromium's error page.
    const outcome = async (id, title) => until(async () => {
      const frame = await (await page.$(`#${id}`))?.contentFrame();
      if (!frame) return null;
      if (frame.url().startsWith("chrome-error:")) return "blocked";
      const shown = await frame.evaluate(() => document.readyState === "complete" && document.title).catch(() => null);
      return shown === title ? "shown" : null;
    }, T, `the ${id} frame from ${origin} settles`);
    const result = { wallboard: await outcome("wallboard", "presence-hub wallboard"), agent: await outcome("agent", "presence-hub agent"), blocked };
    await page.close();
    return result;
  };
  const fromForeign = await framed(foreignOrigin);
  if (fromForeign.wallboard !== "blocked" || fromForeign.agent !== "blocked") fail(`framed from another origin: ${JSON.stringify(fromForeign)}`);
  if (fromForeign.blocked.length < 2) fail(`Chromium did not say frame-ancestors refused both frames: ${JSON.stringify(fromForeign.blocked)}`);
  const fromPortal = await framed(portalOrigin);
  if (fromPortal.wallboard !== "shown" || fromPortal.agent !== "shown") fail(`the portal could not frame the pages: ${JSON.stringify(fromPortal)}`);
  // The blocked frames' console lines are the expected refusals, not the pages' own.
  for (let i = cspConsole.length - 1; i >= 0; i--) if (cspConsole[i].startsWith(`frames from ${foreignOrigin}`) && cspConsole[i].includes("frame-ancestors")) cspConsole.splice(i, 1);

  // 3. Cross-origin fetches of the APIs.
  step("a cross-origin fetch of an API is refused from another origin, allowed from the portal");
  const tryApis = async (origin) => {
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    const result = await page.evaluate(async ({ hub, token }) => {
      const attempt = async (path, init) => {
        try { const r = await fetch(`${hub}${path}`, init); return `${r.status} ${(await r.text()).slice(0, 40)}`; } catch (e) { return `refused (${e.name})`; }
      };
      return {
        simple: await attempt("/readyz"),
        preflighted: await attempt("/agent/tenant", { headers: { Authorization: `Bearer ${token}` } }),
        post: await attempt("/api/nothing", { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: "{}" }),
      };
    }, { hub, token: agentToken });
    await page.close();
    return result;
  };
  const foreignApis = await tryApis(foreignOrigin);
  for (const [what, r] of Object.entries(foreignApis)) if (!r.startsWith("refused")) fail(`${what} from another origin was not refused: ${r}`);
  const portalApis = await tryApis(portalOrigin);
  if (!portalApis.simple.startsWith("200 ready")) fail(`the portal's simple fetch: ${portalApis.simple}`);
  if (!portalApis.preflighted.startsWith("200 {")) fail(`the portal's preflighted fetch: ${portalApis.preflighted}`);
  if (!portalApis.post.startsWith("404")) fail(`the portal's POST did not reach the API router: ${portalApis.post}`);
  step(`  other origin: ${JSON.stringify(foreignApis)}; portal: ${JSON.stringify(portalApis)}`);

  // Nothing reported by the hub's own pages through all of it.
  if (violations.length) fail(`CSP violations: ${JSON.stringify(violations)}`);
  if (cspConsole.length) fail(`CSP console errors: ${JSON.stringify(cspConsole)}`);
  if (pageErrors.length) fail(`script errors on the hub's pages: ${JSON.stringify(pageErrors)}`);
  if (framedErrors.length) step(`  note: script errors of the pages framed by the portal (not CSP): ${JSON.stringify(framedErrors)}`);
  step("no securitypolicyviolation event and no CSP console error on the hub's pages");

  await board.bringToFront();
  await board.screenshot({ path: screenshot });
  console.log("browser test passed");
} finally {
  await browser.close();
  foreign.close();
  portal.close();
}
