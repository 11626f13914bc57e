#!/usr/bin/env node
// `npm test`: runs test/*.test.mjs (sorted) with `node --test`, the same on
// Node 20 and 22+. Explicit files, because Node 21+ takes a directory given
// to `--test` for a file; `--experimental-websocket` only where the global
// WebSocket needs it (Node < 22). Extra arguments go to node, before the
// files (e.g. `npm test -- --test-reporter=spec`).

import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = readdirSync(join(root, 'test'))
  .filter((name) => name.endsWith('.test.mjs'))
  .sort()
  .map((name) => join('test', name));
if (files.length === 0) {
  console.error('no test/*.test.mjs');
  process.exit(1);
}
const major = Number(process.versions.node.split('.')[0]);
const flags = major < 22 ? ['--experimental-websocket'] : [];
const run = spawnSync(process.execPath, [...flags, '--test', ...process.argv.slice(2), ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
