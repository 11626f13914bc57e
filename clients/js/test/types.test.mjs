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
