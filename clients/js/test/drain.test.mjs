// Two nodes over one Redis: the agent's node gets SIGTERM, drains (a
// `draining` message, close 1012), and the client reconnects to the other
// node after the hub's reconnect_after_ms — the wallboard never sees the
// agent offline.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient, SupervisorClient } from '../src/presence-hub-client.js';
import { Hub, Redis, token, nextEvent, waitFor } from '../test-support/hub.mjs';

let redis;
let nodeA;
let nodeB;
const clients = [];

before(async () => {
  redis = await Redis.start();
  nodeA = await Hub.start(['--redis-url', redis.url, '--node-id', 'node-a']);
  nodeB = await Hub.start(['--redis-url', redis.url, '--node-id', 'node-b']);
});

after(async () => {
  for (const c of clients) c.stop();
  await nodeA?.kill();
  await nodeB?.kill();
  await redis?.stop();
});

test('an agent follows a SIGTERM drain to another node with no offline flap', async () => {
  const sup = new SupervisorClient({ url: nodeB.url, token: token('s1') });
  clients.push(sup);
  await sup.start();
  await sup.subscribe({ all: true });
  const a1 = [];
  sup.on('agent', (r) => r.id === 'a1' && a1.push(r));

  const agent = new AgentClient({ url: [nodeA.url, nodeB.url], token: () => token('a1'), device: { id: 'a1-desk', kind: 'softphone' } });
  clients.push(agent);
  const draining = nextEvent(agent, 'draining');
  const welcome = await agent.start();
  assert.equal(welcome.node_id, 'node-a');
  await waitFor('a1 online on node B', () => sup.agents.get('a1')?.presence === 'online');

  const retry = nextEvent(agent, 'status', (s) => s.state === 'reconnecting');
  const backOn = nextEvent(agent, 'welcome', (w) => w.node_id === 'node-b');
  const drained = nodeA.drain();
  const { reconnect_after_ms } = await draining;
  const status = await retry;
  assert.equal(status.reason.code, 1012);
  assert.equal(status.retryInMs, reconnect_after_ms, 'waits the delay the hub asked for');
  await backOn;
  await drained; // node A has handed over and exited
  await agent.pause('after the drain');
  await waitFor('the pause seen on node B', () => sup.agents.get('a1')?.status === 'paused');
  const offline = a1.filter((r) => r.presence === 'offline');
  assert.deepEqual(offline, [], 'no offline flap');
  const devices = sup.agents.get('a1').devices;
  assert.ok(devices.some((d) => d.id === 'a1-desk' && d.active && d.node === 'node-b'));
});
