// `outcome_unknown` for real (PROTOCOL.md §3.1, §9.2): a cluster node whose
// redis-server is frozen (SIGSTOP) for longer than `--redis-timeout-ms`
// cannot learn whether the changes it had just sent were applied, and says
// so. The library repeats each under its key — through the `unavailable`
// the node answers while it knows Redis is away — until Redis is back, and
// the caller gets the definite answer; the change is applied once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient, SupervisorClient } from '../src/presence-hub-client.js';
import { Hub, Redis, redisAvailable, token, waitFor } from '../test-support/hub.mjs';
import { recordingWebSocket } from '../test-support/wire.mjs';

const REDIS_TIMEOUT_MS = 300;
let redis;
let hub;
const clients = [];
const track = (client) => {
  clients.push(client);
  return client;
};

before(async () => {
  if (!redisAvailable()) return;
  redis = await Redis.start();
  hub = await Hub.start(['--redis-url', redis.url, '--node-id', 'node-u', '--redis-timeout-ms', String(REDIS_TIMEOUT_MS)]);
});

after(async () => {
  if (redis) process.kill(redis.child.pid, 'SIGCONT');
  for (const c of clients) c.stop();
  await hub?.kill();
  await redis?.stop();
});

async function ready() {
  for (;;) {
    const res = await fetch(`${hub.http}/readyz`).catch(() => null);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('changes answered outcome_unknown are repeated under their keys and resolve with the definite answer, applied once', { skip: !redisAvailable() && 'needs redis-server' }, async () => {
  const backoff = { initialMs: 100, maxMs: 400 };
  const agentWire = recordingWebSocket();
  const agent = track(new AgentClient({ url: hub.url, token: token('a1'), device: { id: 'a1-frozen' }, WebSocket: agentWire.WebSocket, backoff }));
  await agent.start();
  const a2 = track(new AgentClient({ url: hub.url, token: token('a2'), device: { id: 'a2-frozen' } }));
  await a2.start();
  const supWire = recordingWebSocket();
  const sup = track(new SupervisorClient({ url: hub.url, token: token('s1'), WebSocket: supWire.WebSocket, backoff }));
  await sup.start();
  await ready();

  // Sent right after the freeze, before the node's lease renewal fails:
  // both reach the store's socket and get no answer in time.
  process.kill(redis.child.pid, 'SIGSTOP');
  const started = agent.interactionStart('call-frozen', 'queue:sales');
  const paused = sup.pause('a2', 'training');
  const settled = [];
  started.then(() => settled.push('agent'), () => settled.push('agent'));
  paused.then(() => settled.push('supervisor'), () => settled.push('supervisor'));
  const reply = (wire, type) => wire.received.find((m) => m.type === 'reply' && m.id === wire.requests(type)[0]?.id);
  await waitFor('the first answers', () => reply(agentWire, 'interaction_start') && reply(supWire, 'command'), 10000);
  assert.equal(reply(agentWire, 'interaction_start').error?.code, 'outcome_unknown', JSON.stringify(reply(agentWire, 'interaction_start')));
  assert.equal(reply(supWire, 'command').error?.code, 'outcome_unknown', JSON.stringify(reply(supWire, 'command')));
  // The outage itself, shorter than the node TTL (2 s) so that the agents
  // stay online: repeats meanwhile get `unavailable` and are repeated again.
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(settled, [], 'nothing settled while Redis is frozen');
  process.kill(redis.child.pid, 'SIGCONT');

  const { agent: record } = await started;
  assert.equal(record.status, 'busy');
  assert.deepEqual(record.interactions.map((i) => i.id), ['call-frozen']);
  assert.equal((await paused).agent.status, 'paused');
  for (const [wire, type] of [
    [agentWire, 'interaction_start'],
    [supWire, 'command'],
  ]) {
    const sends = wire.requests(type);
    assert.ok(sends.length >= 2, `${type} repeated (${sends.length} sends)`);
    assert.equal(new Set(sends.map((m) => m.idempotency_key)).size, 1, `${type}: one key for every repeat`);
    const codes = sends.map((m) => wire.replyTo(m)?.error?.code ?? 'ok');
    assert.equal(codes.at(-1), 'ok', codes.join(', '));
  }
  const events = async (id, event) => (await sup.history(id, { limit: 1000 })).changes.filter((c) => c.event === event);
  assert.equal((await events('a1', 'interaction_start')).length, 1, 'the interaction applied once');
  assert.equal((await events('a2', 'pause')).length, 1, 'the pause applied once');
});
