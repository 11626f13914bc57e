// The generated protocol types must match protocol/schemas: when a schema
// changes, `npm run gen-types` (in clients/js) must be run and committed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generate, OUTPUT } from '../scripts/gen-types.mjs';

test('src/protocol.d.ts is up to date with protocol/schemas', () => {
  const committed = readFileSync(OUTPUT, 'utf8');
  assert.ok(
    committed === generate(),
    'src/protocol.d.ts is out of date with protocol/schemas: run `npm run gen-types` in clients/js and commit it',
  );
});

test('every message type of the schemas has a generated type', () => {
  const text = readFileSync(OUTPUT, 'utf8');
  for (const name of ['ClientHello', 'ClientCommand', 'ServerWelcome', 'ServerSnapshot', 'AgentRecord', 'ClientMessage', 'ServerMessage']) {
    assert.match(text, new RegExp(`export type ${name} =`));
  }
});

test('the hand-written API derives what the schemas define instead of copying it', () => {
  // A union of string literals in presence-hub-client.d.ts whose values all
  // belong to one union of the generated types is a copy that would not
  // follow a schema change: use the generated type (e.g. ClientCommand['action']).
  const literalUnions = (text, quote) => {
    const lit = `${quote}[^${quote}\\n]+${quote}`;
    const re = new RegExp(`${lit}(?:\\s*\\|\\s*${lit})+`, 'g');
    return [...text.matchAll(re)].map((m) => m[0].split('|').map((part) => part.trim().slice(1, -1)));
  };
  const generated = literalUnions(readFileSync(OUTPUT, 'utf8'), '"').map((values) => new Set(values));
  const api = readFileSync(new URL('../src/presence-hub-client.d.ts', import.meta.url), 'utf8')
    .replace(/\/\/.*$/gm, '')
    .replace(/\/\*[\s\S]*?\*\//g, '');
  const copies = [...literalUnions(api, "'"), ...literalUnions(api, '"')].filter((values) =>
    generated.some((set) => values.every((v) => set.has(v))),
  );
  assert.deepEqual(copies, [], 'unions copied from src/protocol.d.ts');
  // And the derivations this relies on are there.
  for (const derived of ["ClientCommand['action']", 'MonitorMode', 'ChannelCounters', "ServerReplyOk['result']"]) {
    assert.ok(api.includes(derived), `presence-hub-client.d.ts uses ${derived}`);
  }
});
