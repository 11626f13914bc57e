// The real presence-hub binary for the tests: spawned on a free port with a
// known JWT secret and low timing flags; tokens are minted with
// `presence-hub token`. PRESENCE_HUB_BIN names the binary (cargo sets it when
// tests/client_js.rs runs these tests); otherwise target/debug or
// target/release of this repository, whichever exists (newest first).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const SECRET = 'client-js-test-secret';
const REPO = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export function hubBinary() {
  if (process.env.PRESENCE_HUB_BIN) return process.env.PRESENCE_HUB_BIN;
  const candidates = ['target/debug/presence-hub', 'target/release/presence-hub']
    .map((p) => join(REPO, p))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (candidates.length === 0) {
    throw new Error('no presence-hub binary: run `cargo build` first, or set PRESENCE_HUB_BIN');
  }
  return candidates[0];
}

/** Low timings so reconnect and presence tests run in seconds. */
export const FAST = [
  '--heartbeat-interval-ms', '300',
  '--presence-ttl-ms', '3000',
  '--reconnect-grace-ms', '4000',
  '--command-timeout-ms', '3000',
  '--drain-timeout-ms', '6000',
  '--node-ttl-ms', '2000',
];

/** A development token for `user` of `tenant`. */
export function token(user, tenant = 'acme') {
  return execFileSync(hubBinary(), ['token', '--jwt-secret', SECRET, '--tenant', tenant, '--user', user], {
    encoding: 'utf8',
  }).trim();
}

/** Resolves when `predicate()` is truthy; rejects after `ms` with `what`. */
export async function waitFor(what, predicate, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with the next `name` event of `client` that satisfies `predicate`. */
export function nextEvent(client, name, predicate = () => true, ms = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for a ${name} event`));
    }, ms);
    const off = client.on(name, (value) => {
      if (!predicate(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A started hub node. */
export class Hub {
  static start(extra = [], env = {}) {
    return Hub.spawn(['--listen', '127.0.0.1:0', '--jwt-secret', SECRET, '--no-demo', ...FAST, ...extra], env);
  }

  static async spawn(args, env = {}) {
    const child = spawn(hubBinary(), args, {
      stdio: ['ignore', 'pipe', process.env.PRESENCE_HUB_TEST_LOGS ? 'inherit' : 'ignore'],
      env: { ...process.env, ...env },
    });
    const addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the hub did not print where it listens')), 20000);
      child.once('exit', (code) => reject(new Error(`the hub exited with ${code}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /listening on http:\/\/(\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    return Object.assign(new Hub(), { child, addr, exited });
  }

  /**
   * The hub as the README starts it, `presence-hub --jwt-secret …`: default
   * timings and the demo agents running (only the port is free-picked).
   */
  static startAsDocumented() {
    return Hub.spawn(['--listen', '127.0.0.1:0', '--jwt-secret', SECRET], { PRESENCE_HUB_NO_DEMO: 'false' });
  }

  get url() {
    return `ws://${this.addr}/v1/ws`;
  }

  get http() {
    return `http://${this.addr}`;
  }

  /** SIGTERM (graceful drain) and wait for the exit: within the drain timeout and a margin. */
  async drain() {
    this.child.kill('SIGTERM');
    await within(this.exited, 20000, 'the hub to exit after SIGTERM');
  }

  async kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await within(this.exited, 10000, 'the hub to exit after SIGKILL');
    }
  }
}

/** A private redis-server on a free port (for multi-node tests). */
export class Redis {
  static async start() {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'phc-redis-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('redis-server did not start')), 20000);
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (/Ready to accept connections/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    return Object.assign(new Redis(), { child, port, dir, exited });
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async stop() {
    this.child.kill('SIGKILL');
    await within(this.exited, 10000, 'redis-server to exit after SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function redisAvailable() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * One hub for a test file: started before its tests, killed after them with
 * every client the tests `track`ed stopped (and every proxy closed, so a
 * failed test cannot keep the file's process alive). `fixture.hub` is the node.
 */
export function hubForFile(before, after, extra = []) {
  const clients = [];
  const fixture = {
    hub: null,
    track(client) {
      clients.push(client);
      return client;
    },
  };
  before(async () => {
    fixture.hub = await Hub.start(extra);
  });
  after(async () => {
    for (const c of clients) {
      if (typeof c.stop === 'function') c.stop();
      else await c.close();
    }
    await fixture.hub?.kill();
  });
  return fixture;
}
