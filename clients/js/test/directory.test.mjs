// The directory at runtime as the library sees it (PROTOCOL.md §7.1): a
// supervisor whose scope an admin changes is closed with 4012, reconnects
// by itself and gets a full snapshot of its new scope (never a resume of
// the old one); a deleted channel leaves the live map with an event.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SupervisorClient } from '../src/presence-hub-client.js';
import { hubForFile, token, nextEvent, waitFor } from '../test-support/hub.mjs';

const fixture = hubForFile(before, after);
const { track } = fixture;

const supervisor = (user, role = 'supervisor') =>
  track(new SupervisorClient({ url: fixture.hub.url, token: token(user), role, backoff: { initialMs: 50, maxMs: 200 } }));

test('a re-scoped supervisor reconnects to a full snapshot of its new scope', async () => {
  const admin = supervisor('ad1', 'admin');
  await admin.start();
  await admin.request({ type: 'put_user', user: { id: 's9', name: 'Sol Nine', roles: ['supervisor'], supervises: [{ kind: 'queue', id: 'billing' }] } });
  const s9 = supervisor('s9');
  await s9.start();
  await s9.subscribe({ all: true });
  assert.deepEqual([...s9.agents.keys()].sort(), ['a2', 'a6']);

  const closed = nextEvent(s9, 'disconnected', (d) => d.code === 4012);
  const seqBefore = s9.seq;
  const snapshot = nextEvent(s9, 'snapshot', (s) => s.seq > seqBefore);
  await admin.request({ type: 'put_user', user: { id: 's9', name: 'Sol Nine', roles: ['supervisor'], supervises: [{ kind: 'queue', id: 'sales' }] } });
  await closed;
  const again = await snapshot;
  assert.equal(again.resumed, false, 'a new scope is never resumed');
  assert.deepEqual([...s9.agents.keys()].sort(), ['a1', 'a2', 'a4', 'a5']);
  assert.deepEqual([...s9.channels.keys()], ['queue:sales']);
});

test('a deleted channel leaves the live map', async () => {
  const admin = supervisor('ad1', 'admin');
  await admin.start();
  const s1 = supervisor('s1');
  await s1.start();
  await s1.subscribe({ all: true });
  const added = nextEvent(s1, 'channel', (c) => c.id === 'vip');
  await admin.request({ type: 'put_channel', channel: { kind: 'chat', id: 'vip', name: 'VIP chat' } });
  assert.equal((await added).name, 'VIP chat');
  assert.ok(s1.channels.has('chat:vip'));
  const removed = nextEvent(s1, 'channel_removed', (c) => c.id === 'vip');
  await admin.request({ type: 'delete_channel', channel: { kind: 'chat', id: 'vip' } });
  assert.deepEqual(await removed, { kind: 'chat', id: 'vip' });
  await waitFor('vip gone', () => !s1.channels.has('chat:vip'));
});
