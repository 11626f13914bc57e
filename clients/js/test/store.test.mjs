// The version rule of the supervisor's view (protocol §4.1), unit-level:
// out-of-order and coalesced deltas, removals, full and resumed snapshots.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PresenceStore } from '../src/presence-hub-client.js';

const rec = (id, version, status = 'available') => ({ id, version, status, name: id });

test('an older record never replaces a newer one', () => {
  const store = new PresenceStore();
  store.applySnapshot({ seq: 10, agents: [rec('a1', 5)], channels: [], settings: {} });
  assert.equal(store.applyAgent(rec('a1', 12, 'paused')), true);
  assert.equal(store.applyAgent(rec('a1', 11, 'busy')), false, 'out of order: older');
  assert.equal(store.applyAgent(rec('a1', 12, 'busy')), false, 'same version: a duplicate');
  assert.equal(store.agents.get('a1').status, 'paused');
  assert.equal(store.seq, 12);
});

test('a removal wins over an older record that arrives after it', () => {
  const store = new PresenceStore();
  store.applySnapshot({ seq: 10, agents: [rec('a1', 9)], channels: [], settings: {} });
  assert.equal(store.removeAgent('a1', 15), true);
  assert.equal(store.applyAgent(rec('a1', 14)), false, 'a record from before the removal');
  assert.equal(store.agents.has('a1'), false);
  assert.equal(store.applyAgent(rec('a1', 16)), true, 'the agent re-entered the scope');
  assert.equal(store.removeAgent('a1', 13), false, 'a stale removal does not drop a newer record');
  assert.equal(store.agents.get('a1').version, 16);
});

test('a full snapshot replaces everything; a resumed one keeps, updates and drops', () => {
  const store = new PresenceStore();
  store.applySnapshot({
    seq: 20,
    agents: [rec('a1', 3), rec('a2', 18), rec('a3', 20)],
    channels: [{ kind: 'queue', id: 'sales', name: 'Sales' }],
    settings: { wrap_up_seconds: 30 },
  });
  assert.deepEqual([...store.channels.keys()], ['queue:sales']);
  const dropped = store.applySnapshot({
    seq: 30,
    resumed: true,
    agents: [rec('a2', 25, 'paused'), rec('a4', 29)],
    agent_ids: ['a1', 'a2', 'a4'],
    channels: [{ kind: 'queue', id: 'sales', name: 'Sales' }],
    settings: { wrap_up_seconds: 30 },
  });
  assert.deepEqual(dropped, ['a3']);
  assert.deepEqual([...store.agents.keys()].sort(), ['a1', 'a2', 'a4']);
  assert.equal(store.agents.get('a1').version, 3, 'unchanged records are kept');
  assert.equal(store.agents.get('a2').status, 'paused');
  assert.equal(store.seq, 30);
  store.applySnapshot({ seq: 5, resumed: false, agents: [rec('a9', 5)], channels: [], settings: {} });
  assert.deepEqual([...store.agents.keys()], ['a9'], 'resumed: false is a full replace');
  assert.equal(store.seq, 5, 'a full snapshot (e.g. after a store restore) resets seq');
});

test('channel counters merge into the snapshot channel; settings advance seq', () => {
  const store = new PresenceStore();
  store.applySnapshot({ seq: 1, agents: [], channels: [{ kind: 'queue', id: 'sales', name: 'Sales' }], settings: {} });
  const merged = store.applyChannel({ kind: 'queue', id: 'sales', counts: { available: 2 }, connected: 2 });
  assert.equal(merged.name, 'Sales');
  assert.equal(store.channels.get('queue:sales').counts.available, 2);
  store.applySettings({ seq: 7, settings: { wrap_up_seconds: 5 } });
  assert.equal(store.seq, 7);
  assert.equal(store.settings.wrap_up_seconds, 5);
});

test('resumeSeq never passes a change still queued behind a coalesced slot', () => {
  // Coalescing in place (protocol §5.3) without the hub's sort of each batch
  // by seq (see store.js): after the snapshot at 40, X changes (41: X's
  // slot), then Y (45: Y's slot, behind X's), then X again (55: replaces 41
  // in place). Such a hub would deliver X@55 and could drop before Y@45;
  // resumeSeq does not rely on the sort.
  const store = new PresenceStore();
  store.applySnapshot({ seq: 40, epoch: 'e', agents: [rec('x', 30), rec('y', 20)], channels: [], settings: {} });
  store.noteDelta('x', 55);
  store.applyAgent(rec('x', 55));
  assert.equal(store.seq, 55, 'the highest version applied');
  assert.ok(store.resumeSeq < 45, `a resume from ${store.resumeSeq} brings Y@45 back`);
  assert.equal(store.resumeSeq, 40);
  // Later frames raise it: X@60 proves everything up to X's previous (55)
  // was delivered.
  store.noteDelta('y', 45);
  store.noteDelta('x', 60);
  assert.equal(store.resumeSeq, 55);
  store.noteDelta(Symbol.for('settings'), 61);
  assert.equal(store.resumeSeq, 55);
  // A snapshot is complete as of its seq.
  store.applySnapshot({ seq: 70, epoch: 'e', resumed: true, agents: [], agent_ids: ['x', 'y'], channels: [], settings: {} });
  assert.equal(store.resumeSeq, 70);
});
