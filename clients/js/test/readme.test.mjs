// The README's examples work as written: each `// example: NAME` block is
// written into the package (so `import … from 'presence-hub-client'`
// resolves to this package by name) and run with node against a real hub.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SupervisorClient } from '../src/presence-hub-client.js';
import { Hub, token, waitFor } from '../test-support/hub.mjs';

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(PKG, '.readme-examples');
let hub;
const children = [];

function examples() {
  const readme = readFileSync(join(PKG, 'README.md'), 'utf8');
  const found = {};
  for (const [, body] of readme.matchAll(/```js\n([\s\S]*?)```/g)) {
    const name = /^\/\/ example: (\S+)/.exec(body)?.[1];
    if (name) found[name] = body;
  }
  return found;
}

/** Runs an example; resolves with its output once `pattern` appears in it. */
function run(file, user, pattern, ms = 20000) {
  const args = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-websocket', file] : [file];
  const child = spawn(process.execPath, args, {
    cwd: DIR,
    env: { ...process.env, HUB_URL: hub.url, TOKEN: token(user) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} never printed ${pattern}:\n${out}`)), ms);
    const check = (chunk) => {
      out += chunk;
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.on('exit', (code) => code && reject(new Error(`${file} exited with ${code}:\n${out}`)));
  });
}

before(async () => {
  // As the README says: `presence-hub --jwt-secret …`, demo agents running.
  hub = await Hub.startAsDocumented();
  mkdirSync(DIR, { recursive: true });
  for (const [name, body] of Object.entries(examples())) writeFileSync(join(DIR, name), body);
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(DIR, { recursive: true, force: true });
  await hub.kill();
});

test('the README has an agent example, a wallboard example and a keyed change of at most ~20 lines', () => {
  const found = examples();
  assert.deepEqual(Object.keys(found).sort(), ['agent.mjs', 'change.mjs', 'wallboard.mjs']);
  for (const body of Object.values(found)) assert.ok(body.trim().split('\n').length <= 25);
});

test('the demo runs and leaves a1 and a2, the examples\' agents, to people', async () => {
  const sup = new SupervisorClient({ url: hub.url, token: token('s1') });
  try {
    await sup.start();
    await sup.subscribe({ all: true });
    const online = (id) => sup.agents.get(id)?.presence === 'online';
    // The simulated agents a3…a8 sign in within a second or two.
    await waitFor('the demo agents online', () => ['a3', 'a4', 'a5', 'a6', 'a7', 'a8'].every(online), 20000);
    assert.equal(online('a1'), false, 'the demo drives a1');
    assert.equal(online('a2'), false, 'the demo drives a2');
  } finally {
    sup.stop();
  }
});

test('the README examples run as written', async () => {
  const agentOut = await run('agent.mjs', 'a1', /I am wrap_up/);
  assert.match(agentOut, /connection: live/);
  assert.match(agentOut, /I am paused/);
  const boardOut = await run('wallboard.mjs', 's1', /Ana Souza\s+online\s+paused/);
  assert.match(boardOut, /search: a1 wrap_up/);
  // The same key twice: one interaction, and the repeat answered ok.
  const changeOut = await run('change.mjs', 'a2', /repeated: /);
  assert.match(changeOut, /on call-7: busy/);
  assert.match(changeOut, /repeated: busy, 1 interaction/);
});
