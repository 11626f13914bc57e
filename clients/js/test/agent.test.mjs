// AgentClient against the real hub: round trips, a refused request's code,
// monitor answers, the stop codes, and reconnects with a fresh token.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient, SupervisorClient, HubError } from '../src/presence-hub-client.js';
import { hubForFile, token, nextEvent, waitFor } from '../test-support/hub.mjs';
import { Proxy } from '../test-support/proxy.mjs';

const fixture = hubForFile(before, after);
const { track } = fixture;

test('an agent goes online, changes status, and sees its own record', async () => {
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a1'), device: { id: 'a1-phone', kind: 'softphone' } }));
  const statuses = [];
  agent.on('status', (s) => statuses.push(s.state));
  const firstState = nextEvent(agent, 'state');
  const welcome = await agent.start();
  assert.equal(welcome.user.id, 'a1');
  assert.equal(welcome.heartbeat_interval_ms, 300);
  assert.deepEqual(statuses, ['connecting', 'live']);
  const record = await firstState;
  assert.equal(record.presence, 'online');
  assert.equal(record.status, 'available');

  const paused = nextEvent(agent, 'state', (r) => r.status === 'paused');
  const result = await agent.pause('break');
  assert.equal(result.agent.status, 'paused');
  assert.equal(result.agent.pause_reason, 'break');
  assert.equal((await paused).version, result.agent.version);
  assert.equal(agent.record.status, 'paused');

  await agent.unpause();
  assert.equal((await agent.interactionStart('call-1', 'queue:sales')).agent.status, 'busy');
  assert.equal((await agent.interactionEnd('call-1')).agent.status, 'wrap_up');
  assert.equal((await agent.endWrapUp()).agent.status, 'available');
  const connected = await agent.connect({ kind: 'queue', id: 'billing' });
  assert.ok(connected.agent.channels.some((c) => c.id === 'billing' && c.connected));
  const disconnected = await agent.disconnect('queue:billing');
  assert.ok(!disconnected.agent.channels.some((c) => c.id === 'billing' && c.connected));
});

test('a refused request rejects with the protocol error code and changes nothing', async () => {
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a2'), device: { id: 'a2-phone' } }));
  await agent.start();
  await assert.rejects(agent.interactionEnd('no-such-call'), (err) => {
    assert.ok(err instanceof HubError);
    assert.equal(err.code, 'invalid_state');
    assert.ok(err.message.length > 0);
    return true;
  });
  await assert.rejects(agent.connect('queue:nope'), { code: 'not_found' });
  await assert.rejects(agent.pause(''), { code: 'bad_request' });
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  await assert.rejects(sup.updateSettings({ wrap_up_seconds: 1 }), { code: 'forbidden' });
  await assert.rejects(sup.command('pause', 'a2', {}), { code: 'bad_request' });
  const { changes } = await sup.history('a2');
  assert.ok(changes.every((c) => c.event !== 'pause'), 'nothing changed');
});

test('heartbeats keep an idle agent online past the presence TTL', async () => {
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a4'), device: { id: 'a4-phone' } }));
  const welcome = await agent.start();
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  await sup.subscribe({ all: true });
  const offline = [];
  sup.on('agent', (r) => r.id === 'a4' && r.presence === 'offline' && offline.push(r));
  // Watch for twice the TTL: without heartbeats the hub would mark it offline.
  const until = Date.now() + 2 * welcome.presence_ttl_ms;
  await waitFor('two presence TTLs', () => Date.now() > until, 4 * welcome.presence_ttl_ms);
  assert.deepEqual(offline, []);
  assert.equal(sup.agents.get('a4').presence, 'online');
});

test('onCommand answers monitor requests; stop_monitor is passed on', async () => {
  const commands = [];
  const agent = track(
    new AgentClient({
      url: fixture.hub.url,
      token: token('a5'),
      device: { id: 'a5-phone' },
      onCommand: (cmd) => {
        commands.push(cmd);
        return cmd.supervisor.id === 's1' ? true : { ok: false, reason: 'not now' };
      },
    }),
  );
  await agent.start();
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  const { agent: monitored } = await sup.monitor('a5');
  assert.deepEqual(monitored.monitored_by, ['s1']);
  assert.equal(commands[0].action, 'monitor');
  assert.equal(commands[0].mode, 'listen');
  assert.equal(commands[0].supervisor.id, 's1');
  const stop = nextEvent(agent, 'command', (c) => c.action === 'stop_monitor');
  assert.deepEqual((await sup.stopMonitor('a5')).agent.monitored_by, []);
  assert.equal((await stop).supervisor.id, 's1');

  const admin = track(new SupervisorClient({ url: fixture.hub.url, token: token('ad1'), role: 'admin' }));
  await admin.start();
  await assert.rejects(admin.monitor('a5'), (err) => err.code === 'forbidden' && /not now/.test(err.message));
});

test('a device without onCommand refuses monitoring', async () => {
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a6'), device: { id: 'a6-phone' } }));
  await agent.start();
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  await assert.rejects(sup.monitor('a6'), { code: 'forbidden' });
});

test('a second connection of the same device stops the first (4009), with the reason', async () => {
  const first = track(new AgentClient({ url: fixture.hub.url, token: token('a7'), device: { id: 'a7-phone' } }));
  await first.start();
  const stopped = nextEvent(first, 'status', (s) => s.state === 'stopped');
  const second = track(new AgentClient({ url: fixture.hub.url, token: token('a7'), device: { id: 'a7-phone' } }));
  await second.start();
  const status = await stopped;
  assert.equal(status.reason.code, 4009);
  assert.match(status.reason.message, /replaced|newer/);
  assert.equal(first.state, 'stopped');
  await assert.rejects(first.pause('x'), { code: 'disconnected' });
  assert.equal(second.state, 'live');
});

test('a bad token stops the client (4003) and start() says why', async () => {
  const statuses = [];
  const agent = track(new AgentClient({ url: fixture.hub.url, token: 'not-a-jwt', device: { id: 'x' } }));
  agent.on('status', (s) => statuses.push(s));
  await assert.rejects(agent.start(), (err) => err.code === 'closed' && err.closeCode === 4003);
  assert.equal(statuses.at(-1).state, 'stopped');
  assert.equal(statuses.at(-1).reason.code, 4003);
});

test('an abrupt drop reconnects within the grace, with a fresh token, and no offline flap', async () => {
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  await sup.subscribe({ all: true });
  const seen = [];
  sup.on('agent', (r) => r.id === 'a8' && seen.push(r));
  let tokens = 0;
  const agent = track(
    new AgentClient({
      url: proxy.url,
      token: async () => {
        tokens += 1;
        return token('a8');
      },
      device: { id: 'a8-phone' },
    }),
  );
  await agent.start();
  await waitFor('a8 online on the wallboard', () => sup.agents.get('a8')?.presence === 'online');
  const reconnecting = nextEvent(agent, 'status', (s) => s.state === 'reconnecting');
  const live = nextEvent(agent, 'status', (s) => s.state === 'live');
  proxy.cut();
  const retry = await reconnecting;
  assert.ok(retry.retryInMs <= 1000, `first retry within the grace (${retry.retryInMs} ms)`);
  assert.equal(retry.reason.code, 1006);
  await live;
  assert.equal(tokens, 2, 'the token provider is called again on reconnect');
  await agent.pause('training');
  await waitFor('the pause on the wallboard', () => sup.agents.get('a8')?.status === 'paused');
  assert.deepEqual(
    seen.filter((r) => r.presence === 'offline'),
    [],
    'no offline flap',
  );
  await proxy.close();
});

test('a supervisor signs the agent out: signed_out with who and why, then 4010, and no reconnect', async () => {
  let sockets = 0;
  class Counting extends WebSocket {
    constructor(url) {
      super(url);
      sockets += 1;
    }
  }
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token('a3'), device: { id: 'a3-phone' }, WebSocket: Counting }));
  await agent.start();
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  await sup.subscribe({ all: true });
  await waitFor('a3 online', () => sup.agents.get('a3')?.presence === 'online');

  const statuses = [];
  agent.on('status', (s) => statuses.push(s));
  const events = [];
  agent.on('signed_out', (e) => events.push(e));
  const stopped = nextEvent(agent, 'status', (s) => s.state === 'stopped');
  const { agent: after } = await sup.signOut('a3', 'end of shift');
  assert.equal(after.presence, 'offline');
  const status = await stopped;

  assert.equal(events.length, 1, 'one signed_out event');
  assert.equal(events[0].by.id, 's1');
  assert.equal(events[0].by.role, 'supervisor');
  assert.equal(events[0].reason, 'end of shift');
  assert.equal(status.reason.code, 4010);
  assert.equal(agent.state, 'stopped');
  assert.equal(agent.stopReason.code, 4010);
  // The decision to stop is taken when the close arrives: a client that
  // meant to reconnect would have said `reconnecting` (with its delay) then.
  assert.deepEqual(statuses.map((s) => s.state), ['stopped'], 'no reconnecting');
  assert.equal(sockets, 1);
  await assert.rejects(agent.pause('x'), { code: 'disconnected' });
  await waitFor('a3 offline on the wallboard', () => sup.agents.get('a3')?.presence === 'offline');
  // A reconnect would bring a device back: the hub lists none active.
  const { agents } = await sup.search('a3', { role: 'agent' });
  assert.deepEqual(agents.find((a) => a.id === 'a3').devices.filter((d) => d.active), []);
  assert.equal(sockets, 1, 'no new socket');

  // Without a reason the event says null.
  const again = track(new AgentClient({ url: fixture.hub.url, token: token('a3'), device: { id: 'a3-phone' } }));
  await again.start();
  const second = nextEvent(again, 'signed_out');
  await sup.signOut('a3');
  assert.equal((await second).reason, null);
});

test('a reconnect attempt that is refused (the node is down) is retried until the node is back', async () => {
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const agent = track(new AgentClient({ url: proxy.url, token: token('a6'), device: { id: 'a6-tablet' }, backoff: { initialMs: 50, maxMs: 200 } }));
  await agent.start();
  const statuses = [];
  agent.on('status', (s) => statuses.push(s));
  // Down: every attempt is refused. Node's WebSocket reports a failed
  // handshake with 'error' and no 'close'; each must still lead to the next.
  proxy.hold();
  proxy.cut();
  await waitFor('three refused attempts', () => statuses.filter((s) => s.state === 'reconnecting').length >= 3);
  assert.ok(statuses.every((s) => s.state === 'reconnecting' && s.reason.code === 1006), JSON.stringify(statuses));
  const live = nextEvent(agent, 'status', (s) => s.state === 'live');
  await proxy.release();
  await live;
  assert.equal((await agent.pause('training')).agent.status, 'paused');
});

test('a device beyond the agent\'s limit stops with 4011 and does not retry', async () => {
  // The hub's default --max-devices-per-agent is 8; other tests of this
  // file may have left devices of a4 active: fill up to the limit.
  const tok = token('a4');
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  const { agents } = await sup.search('a4', { role: 'agent' });
  const active = agents.find((a) => a.id === 'a4').devices.filter((d) => d.active).length;
  for (let i = active; i < 8; i += 1) {
    await track(new AgentClient({ url: fixture.hub.url, token: tok, device: { id: `a4-d${i}` } })).start();
  }
  let sockets = 0;
  class Counting extends WebSocket {
    constructor(url) {
      super(url);
      sockets += 1;
    }
  }
  const ninth = track(new AgentClient({ url: fixture.hub.url, token: tok, device: { id: 'a4-d8' }, WebSocket: Counting }));
  const statuses = [];
  ninth.on('status', (s) => statuses.push(s.state));
  // Bounded: a client that does not stop reconnects forever.
  const within = (promise, ms) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms).unref()),
  ]);
  await assert.rejects(within(ninth.start(), 10000), (err) => {
    assert.equal(err.code, 'closed');
    assert.equal(err.closeCode, 4011);
    return true;
  });
  assert.equal(ninth.state, 'stopped');
  assert.equal(ninth.stopReason.code, 4011);
  assert.ok(!statuses.includes('reconnecting'), `no retry loop: ${statuses}`);
  assert.equal(sockets, 1);
});
