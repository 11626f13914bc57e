// Shared by the browser test and the browser benchmark: HS256 tokens, the
// generated directory, agents on real WebSockets, a TCP proxy that can cut the
// page off the hub, and Chromium.
import { chromium } from "playwright-core";
import crypto from "node:crypto";
import net from "node:net";
import fs from "node:fs";

export const deadline = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms));

/** Waits (polling, with a deadline) until `check()` is truthy; returns it. */
export async function until(check, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** An HS256 JWT as the hub expects: `sub`, `tenant`, `exp`. */
export function mint(secret, tenant, user, ttlS = 3600) {
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: user, tenant, exp: Math.floor(Date.now() / 1000) + ttlS })}`;
  return `${head}.${crypto.createHmac("sha256", secret).update(head).digest("base64url")}`;
}

const FIRST = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Fabio", "Gabriela", "Hugo", "Ines", "Joao", "Karina", "Luis", "Marta", "Nuno", "Olga", "Paulo", "Quiteria", "Rita", "Sergio", "Tania"];
const LAST = ["Souza", "Costa", "Dias", "Alves", "Martins", "Rocha", "Nunes", "Pereira", "Lima", "Gomes", "Ribeiro", "Carvalho", "Teixeira", "Moreira", "Lopes", "Mendes", "Barros", "Pinto", "Faria", "Cardoso"];

export const agentId = (i) => `a${String(i).padStart(4, "0")}`;
export const agentName = (i) => `${FIRST[i % 20]} ${LAST[Math.floor(i / 20) % 20]}${i >= 400 ? ` ${Math.floor(i / 400) + 1}` : ""}`;

/** Which channels agent i is assigned to (the test's and the benchmark's directory). */
export function assignedOf(i, queues) {
  const out = [];
  if (i % 2 === 0) out.push({ kind: "queue", id: "sales" });
  if (i % 3 === 0) out.push({ kind: "queue", id: "billing" });
  if (out.length === 0) out.push({ kind: "queue", id: "support" });
  if (i % 5 === 0) out.push({ kind: "chat", id: "web" });
  out.push({ kind: "queue", id: `q${String(i % queues).padStart(2, "0")}` });
  return out;
}

/** The directory of one tenant `acme` with n agents, a supervisor s1, admins ad1 and ad2. */
export function directory(n, queues = 20) {
  const channels = [
    { kind: "queue", id: "sales", name: "Sales" },
    { kind: "queue", id: "billing", name: "Billing" },
    { kind: "queue", id: "support", name: "Tech support" },
    { kind: "chat", id: "web", name: "Web chat" },
    ...Array.from({ length: queues }, (_, q) => ({ kind: "queue", id: `q${String(q).padStart(2, "0")}`, name: `Region ${q + 1}` })),
  ].map((c) => ({ ...c, assigned: [] }));
  const byKey = new Map(channels.map((c) => [`${c.kind}:${c.id}`, c]));
  const users = [];
  for (let i = 0; i < n; i++) {
    users.push({ id: agentId(i), name: agentName(i), roles: ["agent"] });
    for (const c of assignedOf(i, queues)) byKey.get(`${c.kind}:${c.id}`).assigned.push(agentId(i));
  }
  users.push({ id: "s1", name: "Sara Supervisor", roles: ["supervisor"] });
  users.push({ id: "ad1", name: "Dora Admin", roles: ["admin"] });
  users.push({ id: "ad2", name: "Otto Admin", roles: ["admin"] });
  return { tenants: [{ id: "acme", name: "Acme Support", settings: { supervisor_can_end_wrap_up: false, wrap_up_seconds: 30, unassigned_access_default: true }, channels, users }] };
}

/**
 * One client on a real WebSocket: requests with ids and their replies, the
 * latest own `state` record (agents), every message seen.
 */
export class Conn {
  constructor(url, hello) {
    this.url = url;
    this.hello = hello;
    this.next = 1;
    this.pending = new Map();
    this.rec = null;
    this.listeners = new Set();
  }
  open() {
    return new Promise((resolve, reject) => {
      const ws = (this.ws = new WebSocket(this.url));
      ws.onopen = () => ws.send(JSON.stringify(this.hello));
      ws.onerror = () => reject(new Error(`socket error (${this.hello.role})`));
      ws.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === "welcome") resolve(m);
        if (m.type === "state" && (!this.rec || this.rec.version < m.agent.version)) this.rec = m.agent;
        if (m.type === "reply") {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (p) (m.ok ? p.resolve(m.result) : p.reject(Object.assign(new Error(m.error.message), { code: m.error.code })));
          if (m.ok && m.result?.agent && this.hello.role === "agent" && (!this.rec || this.rec.version < m.result.agent.version)) this.rec = m.result.agent;
        }
        if (m.type === "command" && m.command_id && this.onCommand) this.onCommand(m);
        for (const l of this.listeners) l(m);
      };
    });
  }
  send(body) { this.ws.send(JSON.stringify(body)); }
  request(body) {
    const id = `t${this.next++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ ...body, id });
    });
  }
  close() { try { this.ws.close(1000); } catch { /* already closed */ } }
}

/** n agents connected to their assigned channels, heartbeating. */
export async function agents(wsUrl, secret, n, queues = 20) {
  const list = [];
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) {
      const c = new Conn(wsUrl, { type: "hello", role: "agent", token: mint(secret, "acme", agentId(j)), device: { id: `${agentId(j)}-phone`, kind: "softphone", label: "Softphone" } });
      c.index = j;
      c.onCommand = (m) => c.send({ type: "command_ack", command_id: m.command_id, ok: true });
      batch.push(c.open().then(() => Promise.all(assignedOf(j, queues).map((ch) => c.request({ type: "connect", channel: ch })
        .catch((e) => { if (e.code !== "invalid_state") throw e; })))).then(() => c));
    }
    list.push(...(await Promise.all(batch)));
  }
  const beat = setInterval(() => { for (const c of list) c.send({ type: "heartbeat" }); }, 5000);
  return { list, stop: () => { clearInterval(beat); for (const c of list) c.close(); } };
}

/** One random change by agent c: pause/unpause, or a call started/ended. */
export async function randomChange(c, seq) {
  const s = c.rec?.status;
  try {
    if (s === "available") {
      if (seq % 2) await c.request({ type: "set_status", status: "paused", reason: ["break", "lunch", "coaching"][seq % 3] });
      else await c.request({ type: "interaction_start", interaction_id: `call-${c.index}-${seq}`, channel: { kind: "queue", id: assignedOf(c.index, 20)[0].id } });
    } else if (s === "paused") await c.request({ type: "set_status", status: "available" });
    else if (s === "busy") await c.request({ type: "interaction_end", interaction_id: c.rec.interaction.id });
    else if (s === "wrap_up") await c.request({ type: "end_wrap_up" });
  } catch { /* a refused change changes nothing */ }
}

/**
 * A TCP proxy in front of the hub: `cut()` drops every connection and refuses
 * new ones (the hub has gone away, as the page sees it); `restore()` accepts again.
 */
export function proxy(target) {
  const [host, port] = target.split(":");
  const sockets = new Set();
  let server = null;
  let listenPort = 0;
  const listen = () => new Promise((resolve) => {
    server = net.createServer((client) => {
      const up = net.connect(Number(port), host);
      sockets.add(client); sockets.add(up);
      client.pipe(up); up.pipe(client);
      const drop = () => { client.destroy(); up.destroy(); sockets.delete(client); sockets.delete(up); };
      client.on("error", drop); up.on("error", drop); client.on("close", drop); up.on("close", drop);
    });
    server.listen(listenPort, "127.0.0.1", () => { listenPort = server.address().port; resolve(); });
  });
  return {
    listen,
    get addr() { return `127.0.0.1:${listenPort}`; },
    cut: () => new Promise((resolve) => { server.close(() => resolve()); for (const s of sockets) s.destroy(); sockets.clear(); }),
    restore: listen,
  };
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-background-timer-throttling", "--disable-renderer-backgrounding"],
  });
}

/**
 * While editing the page: WALLBOARD_SRC=src/wallboard serves its modules and
 * stylesheet from disk instead of the binary (no rebuild per change).
 */
export async function devRoutes(page) {
  const src = process.env.WALLBOARD_SRC;
  if (!src) return;
  await page.route("**/wallboard/*", (route) => {
    const file = new URL(route.request().url()).pathname.replace("/wallboard/", "");
    const css = file.endsWith(".css");
    route.fulfill({ body: fs.readFileSync(`${src}/${css ? "" : "js/"}${file}`, "utf8"), contentType: css ? "text/css" : "text/javascript" });
  });
}

/**
 * An accessibility scan of the page as it is now, with axe-core (from npm,
 * injected into the page): the WCAG 2.1 A and AA rules. Returns the
 * violations of impact `serious` or `critical`, each as one line naming the
 * rule and the elements.
 */
export async function axeScan(page) {
  const source = fs.readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
  // Evaluated, not added as a <script>: the pages' Content-Security-Policy
  // (script-src 'self') refuses inline scripts, and must stay on here.
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(source);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }, resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(1).join(" ")}`) }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.join(" | ")}`);
}
