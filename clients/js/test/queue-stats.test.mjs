// Queue statistics in the supervisor's view (PROTOCOL.md §10.7): the
// snapshot's `queue_stats` replace the map, a `queue_stats` message keeps
// the newest `updated_ms` and is emitted, a stale mark replaces the fresh.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PresenceStore, SupervisorClient } from '../src/presence-hub-client.js';

const sales = { kind: 'queue', id: 'sales' };
const entry = (updated_ms, waiting, stale = false) => ({
  channel: sales,
  stats: { waiting, longest_wait_s: 5 },
  updated_ms,
  stale,
});

test('a snapshot sets the statistics; a newer message replaces them, an older one does not', () => {
  const store = new PresenceStore();
  store.applySnapshot({ seq: 1, agents: [], channels: [], queue_stats: [entry(10, 1)], settings: {} });
  assert.equal(store.queueStats.get('queue:sales').stats.waiting, 1);
  assert.deepEqual(store.applyQueueStats({ type: 'queue_stats', ...entry(12, 4) }), entry(12, 4));
  assert.equal(store.applyQueueStats({ type: 'queue_stats', ...entry(11, 9) }), null, 'older');
  assert.equal(store.applyQueueStats({ type: 'queue_stats', ...entry(12, 4, true) }).stale, true);
  assert.equal(store.queueStats.get('queue:sales').stale, true);
  store.applySnapshot({ seq: 2, agents: [], channels: [], queue_stats: [], settings: {} });
  assert.equal(store.queueStats.size, 0, 'a snapshot without them clears them');
});

test('the supervisor client emits queue_stats and keeps them in queueStats', () => {
  const client = new SupervisorClient({ url: 'ws://127.0.0.1:9', token: 't' });
  const got = [];
  client.on('queue_stats', (e) => got.push(e));
  client.handleMessage({ type: 'queue_stats', ...entry(20, 3) });
  client.handleMessage({ type: 'queue_stats', ...entry(19, 8) });
  assert.deepEqual(got, [entry(20, 3)]);
  assert.equal(client.queueStats.get('queue:sales').stats.waiting, 3);
});
