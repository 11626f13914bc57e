// Idempotency keys and the automatic repeat (PROTOCOL.md §3.1, §3.3)
// against the real hub: which requests carry a key, a caller's key sent as
// given, and a change whose reply is lost with the connection repeated under
// its key and applied once. (The repeat after `outcome_unknown`, with a
// frozen Redis: unknown.test.mjs.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient, SupervisorClient, HubError, newIdempotencyKey } from '../src/presence-hub-client.js';
import { hubForFile, token, nextEvent, waitFor } from '../test-support/hub.mjs';
import { Proxy } from '../test-support/proxy.mjs';
import { recordingWebSocket } from '../test-support/wire.mjs';

const fixture = hubForFile(before, after);
const { track } = fixture;

const CHANGES = new Set([
  'set_status',
  'connect',
  'disconnect',
  'interaction_start',
  'interaction_end',
  'end_wrap_up',
  'command',
  'update_settings',
  'set_unassigned_access',
  'assign',
  'unassign',
]);

/** Resolves when the async `predicate()` is truthy (polling). */
async function eventually(what, predicate, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An agent's history events of one kind. */
async function events(sup, agentId, event) {
  const { changes } = await sup.history(agentId, { limit: 1000 });
  return changes.filter((c) => c.event === event);
}

async function supervisor(user = 's1', role = 'supervisor') {
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token(user), role }));
  await sup.start();
  return sup;
}

test('every change carries its own generated key; reads, heartbeats, monitor and sign_out none', async () => {
  const wire = recordingWebSocket();
  const agent = track(
    new AgentClient({ url: fixture.hub.url, token: token('a1'), device: { id: 'a1-keys' }, WebSocket: wire.WebSocket, onCommand: () => true }),
  );
  await agent.start();
  await agent.pause('training');
  await agent.unpause();
  await agent.setStatus('paused', 'meeting');
  await agent.setStatus('available');
  await agent.connect('chat:web');
  await agent.disconnect('chat:web');
  await agent.interactionStart('call-k1', 'queue:sales');
  await agent.interactionEnd('call-k1');
  await agent.endWrapUp();

  const adminWire = recordingWebSocket();
  const admin = track(new SupervisorClient({ url: fixture.hub.url, token: token('ad1'), role: 'admin', WebSocket: adminWire.WebSocket }));
  await admin.start();
  await admin.subscribe({ all: true });
  await admin.search('ana');
  await admin.history('a1');
  await admin.pause('a1', 'coaching');
  await admin.unpause('a1');
  await admin.connectAgent('a1', 'chat:web');
  await admin.disconnectUnassigned('a1');
  await admin.disconnectAgent('a1', 'chat:web');
  await admin.command('pause', 'a1', { reason: 'coaching' });
  await admin.unpause('a1');
  await agent.interactionStart('call-k2', 'queue:sales');
  await agent.interactionEnd('call-k2');
  await admin.updateSettings({ supervisor_can_end_wrap_up: true });
  await admin.endWrapUp('a1');
  await admin.updateSettings({ supervisor_can_end_wrap_up: false });
  await admin.setUnassignedAccess('a1', false);
  await admin.setUnassignedAccess('a1', null);
  await admin.assign('a1', 'queue:billing');
  await admin.unassign('a1', 'queue:billing');
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1'), WebSocket: adminWire.WebSocket }));
  await sup.start();
  await sup.monitor('a1');
  await sup.stopMonitor('a1');
  await waitFor('heartbeats', () => wire.requests('heartbeat').length > 0 && adminWire.requests('heartbeat').length > 0);
  await sup.signOut('a1', 'end of test');

  const sent = [...wire.sent, ...adminWire.sent];
  const keyed = sent.filter((m) => CHANGES.has(m.type) && !['monitor', 'sign_out'].includes(m.action));
  assert.equal(keyed.length, 11 + 14 + 1, 'every change of the test, each sent once');
  for (const m of keyed) {
    assert.equal(typeof m.idempotency_key, 'string', `${m.type} ${m.action ?? ''} has a key`);
    assert.ok(m.idempotency_key.length >= 1 && m.idempotency_key.length <= 128);
  }
  assert.equal(new Set(keyed.map((m) => m.idempotency_key)).size, keyed.length, 'a new key per change');
  const unkeyed = sent.filter((m) => !keyed.includes(m));
  assert.deepEqual(
    [...new Set(unkeyed.map((m) => m.action ?? m.type))].sort(),
    ['command_ack', 'heartbeat', 'hello', 'history', 'monitor', 'search', 'sign_out', 'subscribe'],
  );
  for (const m of unkeyed) assert.equal(m.idempotency_key, undefined, `no key on ${m.action ?? m.type}`);
});

test('a caller-supplied key is sent as given, and a repeat under it is not applied again', async () => {
  const wire = recordingWebSocket();
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a2'), device: { id: 'a2-keys' }, WebSocket: wire.WebSocket }));
  await agent.start();
  const sup = await supervisor();
  const key = 'a2-desk:pause:0042';
  const first = await agent.pause('training', { idempotencyKey: key });
  assert.equal(first.agent.status, 'paused');
  await agent.unpause();
  // The same key again (a reloaded page repeating what it stored): answered
  // with the current record, and nothing is applied.
  const again = await agent.pause('training', { idempotencyKey: key });
  assert.equal(again.agent.status, 'available');
  assert.equal((await events(sup, 'a2', 'pause')).length, 1);
  assert.deepEqual(
    wire.requests('set_status').map((m) => m.idempotency_key === key),
    [true, false, true],
  );

  // The supervisor's shortcuts and command() take it too.
  const supWire = recordingWebSocket();
  const sup2 = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1'), WebSocket: supWire.WebSocket }));
  await sup2.start();
  await sup2.pause('a2', 'coaching', { idempotencyKey: 's1-a2-coaching' });
  await sup2.command('unpause', 'a2', { idempotencyKey: 's1-a2-unpause' });
  assert.deepEqual(
    supWire.requests('command').map((m) => m.idempotency_key),
    ['s1-a2-coaching', 's1-a2-unpause'],
  );
  // A key the hub refuses is the hub's bad_request: nothing applied.
  await assert.rejects(agent.pause('training', { idempotencyKey: 'x'.repeat(129) }), { code: 'bad_request' });
  assert.equal((await events(sup, 'a2', 'pause')).length, 2);
});

test('generated keys are UUIDs, also without crypto.randomUUID (insecure browser contexts), and unique without crypto', () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(newIdempotencyKey(), uuid);
  const crypto = globalThis.crypto;
  // Hides crypto's `name` for the time of `fn`, as a runtime without it sees it.
  const without = (name, fn) => {
    const own = Object.getOwnPropertyDescriptor(crypto, name);
    Object.defineProperty(crypto, name, { value: undefined, configurable: true });
    try {
      fn();
    } finally {
      if (own) Object.defineProperty(crypto, name, own);
      else delete crypto[name];
    }
  };
  const many = () => new Set(Array.from({ length: 1000 }, () => newIdempotencyKey()));
  // As a page served over plain http sees `crypto`: no randomUUID.
  without('randomUUID', () => {
    const keys = many();
    assert.equal(keys.size, 1000);
    for (const key of keys) assert.match(key, uuid);
    without('getRandomValues', () => {
      const keys = many();
      assert.equal(keys.size, 1000);
      for (const key of keys) assert.ok(key.length >= 1 && key.length <= 128, key);
    });
  });
  assert.equal(typeof crypto.randomUUID, 'function', 'restored');
  assert.match(newIdempotencyKey(), uuid);
});

test('a change whose reply is lost with the connection is repeated under its key and applied once', async () => {
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const wire = recordingWebSocket();
  const agent = track(
    new AgentClient({ url: proxy.url, token: token('a4'), device: { id: 'a4-lost' }, WebSocket: wire.WebSocket, backoff: { initialMs: 50, maxMs: 200 } }),
  );
  await agent.start();
  const sup = await supervisor();
  // The hub gets the request and applies it; its reply never comes back.
  proxy.stall();
  const started = agent.interactionStart('call-lost', 'queue:sales');
  await eventually('the interaction in the history', async () => (await events(sup, 'a4', 'interaction_start')).length === 1);
  const live = nextEvent(agent, 'status', (s) => s.state === 'live');
  proxy.cut();
  await live;
  // Repeated without a key, it would be refused (already on call-lost, and
  // a queue takes one interaction): the caller gets the definite answer.
  const { agent: record } = await started;
  assert.equal(record.status, 'busy');
  assert.deepEqual(record.interactions.map((i) => i.id), ['call-lost']);
  const sends = wire.requests('interaction_start');
  assert.equal(sends.length, 2, 'sent, then repeated once');
  assert.equal(sends[1].idempotency_key, sends[0].idempotency_key, 'under the same key');
  assert.equal(wire.replyTo(sends[0]), undefined, 'the first reply was lost');
  assert.equal((await events(sup, 'a4', 'interaction_start')).length, 1, 'applied once');
  await proxy.close();
});

test("a supervisor's command whose reply is lost is repeated and applied once", async () => {
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a5'), device: { id: 'a5-lost' } }));
  await agent.start();
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const wire = recordingWebSocket();
  const sup = track(new SupervisorClient({ url: proxy.url, token: token('s1'), WebSocket: wire.WebSocket, backoff: { initialMs: 50, maxMs: 200 } }));
  await sup.start();
  const reader = await supervisor();
  proxy.stall();
  const paused = sup.pause('a5', 'coaching');
  await waitFor('the pause applied', () => agent.record?.status === 'paused');
  proxy.cut();
  const { agent: record } = await paused;
  assert.equal(record.status, 'paused');
  const sends = wire.requests('command');
  assert.equal(sends.length, 2);
  assert.equal(sends[1].idempotency_key, sends[0].idempotency_key);
  assert.equal((await events(reader, 'a5', 'pause')).length, 1);
  await proxy.close();
});

test('a change sent while not connected is refused at once with disconnected: nothing was sent', async () => {
  const wire = recordingWebSocket();
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a6'), device: { id: 'a6-idle' }, WebSocket: wire.WebSocket }));
  await assert.rejects(agent.pause('training'), (err) => {
    assert.ok(err instanceof HubError);
    assert.equal(err.code, 'disconnected');
    assert.equal(typeof err.idempotencyKey, 'string');
    return true;
  });
  assert.deepEqual(wire.sent, []);
});

test('a client stopped before the answer rejects with outcome_unknown and the key that settles it', async () => {
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const agent = track(new AgentClient({ url: proxy.url, token: token('a7'), device: { id: 'a7-stop' } }));
  await agent.start();
  // A second device keeps a7 online (and on the interaction) when the first stops.
  const other = track(new AgentClient({ url: fixture.hub.url, token: token('a7'), device: { id: 'a7-other' } }));
  await other.start();
  const sup = await supervisor();
  proxy.stall();
  const started = agent.interactionStart('chat-9', 'chat:web');
  started.catch(() => {});
  await eventually('the hub applied it', async () => (await events(sup, 'a7', 'interaction_start')).length === 1);
  agent.stop();
  const err = await started.then(
    () => assert.fail('resolved without an answer'),
    (e) => e,
  );
  assert.equal(err.code, 'outcome_unknown');
  assert.match(err.message, /may have been applied/);
  assert.equal(typeof err.idempotencyKey, 'string');
  // Another client of the same user settles it with that key: ok, once.
  const { agent: record } = await other.interactionStart('chat-9', 'chat:web', { idempotencyKey: err.idempotencyKey });
  assert.equal(record.status, 'busy');
  assert.equal((await events(sup, 'a7', 'interaction_start')).length, 1);
  await proxy.close();
});

// Bounded, so that a library that repeats for ever fails here instead of hanging.
test('past retryUnknownForMs a change with no answer rejects with outcome_unknown', { timeout: 10000 }, async () => {
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const wire = recordingWebSocket();
  const agent = track(
    new AgentClient({
      url: proxy.url,
      token: token('a8'),
      device: { id: 'a8-bound' },
      WebSocket: wire.WebSocket,
      retryUnknownForMs: 1500,
      backoff: { initialMs: 50, maxMs: 100 },
    }),
  );
  await agent.start();
  proxy.stall();
  const t0 = Date.now();
  const paused = agent.pause('training');
  paused.catch(() => {});
  await waitFor('the pause sent', () => wire.requests('set_status').length === 1);
  // The hub stays out of reach: no repeat can be sent.
  proxy.hold();
  proxy.cut();
  await assert.rejects(paused, (err) => {
    assert.equal(err.code, 'outcome_unknown');
    assert.match(err.message, /no definite answer within 1500 ms.*may have been applied/s);
    assert.equal(err.cause.code, 'disconnected');
    return true;
  });
  const took = Date.now() - t0;
  assert.ok(took >= 1400 && took < 5000, `rejected after ${took} ms`);
  assert.equal(wire.requests('set_status').length, 1);
  await proxy.release();
  await proxy.close();
});

test('retryUnknownForMs must be a number of milliseconds, 0 or more', () => {
  assert.throws(() => new AgentClient({ url: 'ws://x', token: 't', device: { id: 'd' }, retryUnknownForMs: -1 }), TypeError);
  assert.throws(() => new AgentClient({ url: 'ws://x', token: 't', device: { id: 'd' }, retryUnknownForMs: '5s' }), TypeError);
});
