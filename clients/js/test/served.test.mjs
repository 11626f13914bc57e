// The hub serves every module of the library at /client/<file>.js, as
// text/javascript, byte for byte (src/client_lib.rs embeds them).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hub } from '../test-support/hub.mjs';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../src');
let hub;

before(async () => {
  hub = await Hub.start();
});

after(async () => {
  await hub.kill();
});

test('every module of src/ is served at /client/', async () => {
  const files = readdirSync(SRC).filter((f) => f.endsWith('.js'));
  assert.ok(files.includes('presence-hub-client.js'));
  for (const file of files) {
    const res = await fetch(`${hub.http}/client/${file}`);
    assert.equal(res.status, 200, `/client/${file}`);
    assert.match(res.headers.get('content-type'), /^text\/javascript/);
    assert.equal(await res.text(), readFileSync(join(SRC, file), 'utf8'), `/client/${file} is the current file`);
  }
  assert.equal((await fetch(`${hub.http}/client/nope.js`)).status, 404);
});
