// SupervisorClient against the real hub: the live maps, every command
// action and admin message, and the resume after a dropped connection.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient, SupervisorClient } from '../src/presence-hub-client.js';
import { hubForFile, token, nextEvent, waitFor } from '../test-support/hub.mjs';
import { Proxy } from '../test-support/proxy.mjs';

const fixture = hubForFile(before, after);
const { track } = fixture;

const agentOf = async (user) => {
  const agent = track(new AgentClient({ url: fixture.hub.url, token: token(user), device: { id: `${user}-web`, kind: 'web' }, onCommand: () => true }));
  await agent.start();
  return agent;
};

test('a wallboard keeps live maps: snapshot, deltas, removals, settings', async () => {
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  const snapshots = [];
  sup.on('snapshot', (s) => snapshots.push(s));
  const welcome = await sup.start();
  assert.equal(welcome.role, 'supervisor');
  assert.ok(sup.settings, 'settings from the welcome');
  await sup.subscribe({ channels: ['queue:billing'] });
  assert.equal(snapshots.length, 1);
  assert.equal(snapshots[0].resumed, false);
  assert.deepEqual([...sup.agents.keys()].sort(), ['a2', 'a6']);
  assert.deepEqual([...sup.channels.keys()], ['queue:billing']);
  assert.equal(sup.channels.get('queue:billing').name, 'Billing');
  assert.ok(Number.isInteger(sup.seq));

  const a2 = await agentOf('a2');
  await waitFor('a2 online', () => sup.agents.get('a2')?.presence === 'online');
  const before = sup.seq;
  await a2.pause('lunch');
  await waitFor('a2 paused', () => sup.agents.get('a2')?.status === 'paused');
  assert.ok(sup.seq > before, 'seq advances with deltas');

  // An agent connected to a channel of the scope enters it; leaving it removes them.
  const a1 = await agentOf('a1');
  const entered = nextEvent(sup, 'agent', (r) => r.id === 'a1');
  await a1.connect('queue:billing');
  await entered;
  assert.ok(sup.agents.has('a1'));
  const removed = nextEvent(sup, 'agent_removed', (id) => id === 'a1');
  await a1.disconnect('queue:billing');
  await removed;
  assert.ok(!sup.agents.has('a1'));

  // Changing the scope replaces the view.
  await sup.subscribe({ all: true });
  assert.equal(snapshots.length, 2);
  assert.ok(sup.agents.has('a1') && sup.agents.has('a8'));
  await assert.rejects(sup.subscribe({ channels: ['queue:nope'] }), { code: 'not_found' });

  const admin = track(new SupervisorClient({ url: fixture.hub.url, token: token('ad1'), role: 'admin' }));
  await admin.start();
  const settings = nextEvent(sup, 'settings');
  const result = await admin.updateSettings({ supervisor_can_end_wrap_up: true });
  assert.equal(result.settings.supervisor_can_end_wrap_up, true);
  assert.equal((await settings).supervisor_can_end_wrap_up, true);
  assert.equal(sup.settings.supervisor_can_end_wrap_up, true);
  await admin.updateSettings({ supervisor_can_end_wrap_up: false });
});

test('search, history, every command action and the admin messages', async () => {
  const a3 = await agentOf('a3');
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('ad1'), role: 'admin' }));
  await sup.start();
  await sup.subscribe({ all: true });

  const found = await sup.search('carla', { role: 'agent', limit: 5 });
  assert.deepEqual(found.agents.map((a) => a.id), ['a3']);
  assert.equal(found.agents[0].devices[0].id, 'a3-web');

  const status = async (promise, expected) => {
    const { agent } = await promise;
    assert.equal(agent.status, expected);
    assert.equal(sup.agents.get('a3').version >= agent.version, true, 'the reply record is applied');
    return agent;
  };
  await status(sup.pause('a3', 'coaching'), 'paused');
  await status(sup.unpause('a3'), 'available');
  let rec = await status(sup.connectAgent('a3', 'queue:sales'), 'available');
  assert.ok(rec.channels.some((c) => c.id === 'sales' && c.connected));
  rec = await status(sup.disconnectAgent('a3', { kind: 'queue', id: 'sales' }), 'available');
  assert.ok(!rec.channels.some((c) => c.id === 'sales' && c.connected));
  await a3.connect('queue:sales');
  rec = await status(sup.disconnectUnassigned('a3'), 'available');
  assert.ok(!rec.channels.some((c) => c.id === 'sales' && c.connected));
  rec = await status(sup.monitor('a3'), 'available');
  assert.deepEqual(rec.monitored_by, ['ad1']);
  rec = await status(sup.stopMonitor('a3'), 'available');
  assert.deepEqual(rec.monitored_by, []);
  await a3.interactionStart('chat-1', 'campaign:renewals');
  await a3.interactionEnd('chat-1');
  await assert.rejects(sup.endWrapUp('a3'), { code: 'disabled' });
  await sup.updateSettings({ supervisor_can_end_wrap_up: true });
  await status(sup.endWrapUp('a3'), 'available');
  await sup.updateSettings({ supervisor_can_end_wrap_up: false });
  await status(sup.command('pause', 'a3', { reason: 'coaching' }), 'paused');

  rec = (await sup.setUnassignedAccess('a3', false)).agent;
  assert.equal(rec.unassigned_access, false);
  assert.equal(rec.unassigned_access_override, false);
  rec = (await sup.setUnassignedAccess('a3', null)).agent;
  assert.equal(rec.unassigned_access_override, undefined);
  rec = (await sup.assign('a3', 'queue:billing')).agent;
  assert.ok(rec.channels.some((c) => c.id === 'billing' && c.assigned));
  rec = (await sup.unassign('a3', 'queue:billing')).agent;
  assert.ok(!rec.channels.some((c) => c.id === 'billing'));
  await assert.rejects(sup.unassign('a3', 'queue:billing'), { code: 'invalid_state' });

  const { changes } = await sup.history('a3', { limit: 100 });
  const events = changes.map((c) => c.event);
  for (const e of ['device_up', 'pause', 'unpause', 'connect', 'disconnect', 'disconnect_unassigned', 'monitor', 'stop_monitor', 'end_wrap_up', 'assign', 'unassign']) {
    assert.ok(events.includes(e), `history has ${e}: ${events}`);
  }
  assert.ok(changes.every((c, i) => i === 0 || c.version > changes[i - 1].version), 'oldest first');
});

test('after a dropped connection the wallboard resubscribes with since_seq and catches up', async () => {
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const sent = [];
  const received = [];
  // A WebSocket that records what the client sends and gets (injected constructor).
  class Recording extends WebSocket {
    constructor(url) {
      super(url);
      this.addEventListener('message', (e) => received.push(JSON.parse(e.data)));
    }

    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
    }
  }
  const sup = track(new SupervisorClient({ url: proxy.url, token: token('s1'), WebSocket: Recording, backoff: { initialMs: 100, maxMs: 1000 } }));
  await sup.start();
  await sup.subscribe({ channels: ['queue:support'] });
  assert.ok(sup.agents.has('a6'));
  const seqBefore = sup.seq;
  const epoch = sup.epoch;
  assert.equal(typeof epoch, 'string');
  assert.deepEqual([...sup.agents.keys()].sort(), ['a5', 'a6', 'a7', 'a8']);

  const reconnecting = nextEvent(sup, 'status', (s) => s.state === 'reconnecting');
  const resnapshot = nextEvent(sup, 'snapshot');
  proxy.hold(); // the hub stays out of reach until the changes below are made
  proxy.cut();
  await reconnecting;
  // While the wallboard is away: a6 leaves the scope, a7 signs in and pauses.
  const admin = track(new SupervisorClient({ url: fixture.hub.url, token: token('ad1'), role: 'admin' }));
  await admin.start();
  await admin.unassign('a6', 'queue:support');
  const a7 = await agentOf('a7');
  await a7.pause('lunch');
  await proxy.release();

  const snapshot = await resnapshot;
  const resubscribe = sent.filter((m) => m.type === 'subscribe').at(-1);
  assert.equal(resubscribe.since_seq, seqBefore, 'the resubscribe carries since_seq');
  assert.equal(resubscribe.epoch, epoch, 'and the epoch of the view');
  assert.deepEqual(resubscribe.scope, { channels: [{ kind: 'queue', id: 'support' }] });
  assert.equal(snapshot.resumed, true);
  const raw = received.filter((m) => m.type === 'snapshot').at(-1);
  assert.deepEqual(raw.agents.map((a) => a.id), ['a7'], 'only the changed record is sent');
  assert.deepEqual(raw.agent_ids, ['a5', 'a7', 'a8']);
  assert.deepEqual([...sup.agents.keys()].sort(), ['a5', 'a7', 'a8'], 'unchanged kept, the one gone dropped');
  assert.equal(sup.agents.get('a7').status, 'paused');
  assert.ok(!sup.agents.has('a6'), 'an agent that left the scope is dropped');
  assert.ok(sup.seq > seqBefore);
  await admin.assign('a6', 'queue:support');
  await proxy.close();
});

test('the version rule against the real stream: an older frame or a duplicate after a newer one changes nothing', async () => {
  // A WebSocket that keeps every `agent` frame the hub sent, and can play
  // one of them again into the client (as a reordering or duplicating
  // network path would deliver it).
  const frames = [];
  let socket = null;
  class Replaying extends WebSocket {
    constructor(url) {
      super(url);
      socket = this;
      this.addEventListener('message', (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'agent') frames.push({ data: e.data, agent: m.agent });
      });
    }

    replay(data) {
      this.dispatchEvent(new MessageEvent('message', { data }));
    }
  }
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1'), WebSocket: Replaying }));
  await sup.start();
  await sup.subscribe({ all: true });
  const a4 = await agentOf('a4');
  await waitFor('a4 online', () => sup.agents.get('a4')?.presence === 'online');
  const { agent: paused } = await a4.pause('coaching');
  await waitFor('a4 paused on the wallboard', () => sup.agents.get('a4')?.version === paused.version);
  const newest = frames.find((f) => f.agent.id === 'a4' && f.agent.version === paused.version);
  const older = frames.find((f) => f.agent.id === 'a4' && f.agent.version < paused.version && f.agent.status !== 'paused');
  assert.ok(newest, 'the hub sent the paused record as a delta');
  assert.ok(older, `an older a4 frame was recorded: ${frames.map((f) => `${f.agent.id}@${f.agent.version}`)}`);

  const held = sup.agents.get('a4');
  const seq = sup.seq;
  const events = [];
  const off = sup.on('agent', (r) => events.push(r));
  socket.replay(older.data); // out of order: older than what is held
  socket.replay(newest.data); // a duplicate of what is held
  off();
  assert.deepEqual(events, [], 'no agent event for a stale or duplicate frame');
  assert.equal(sup.agents.get('a4'), held, 'the newer record is kept');
  assert.equal(sup.agents.get('a4').status, 'paused');
  assert.equal(sup.seq, seq, 'seq does not move');
  // A really newer frame still goes through (the rule is not "ignore all").
  const fresh = nextEvent(sup, 'agent', (r) => r.id === 'a4' && r.status === 'available');
  await a4.unpause();
  assert.ok((await fresh).version > paused.version);
});

test('a resume the hub cannot vouch for (another epoch) falls back to a full snapshot', async () => {
  const proxy = track(await Proxy.start(fixture.hub.addr));
  const sent = [];
  const snapshots = [];
  class Recording extends WebSocket {
    constructor(url) {
      super(url);
      this.addEventListener('message', (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'snapshot') snapshots.push(m);
      });
    }

    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
    }
  }
  const sup = track(new SupervisorClient({ url: proxy.url, token: token('s1'), WebSocket: Recording, backoff: { initialMs: 100, maxMs: 1000 } }));
  await sup.start();
  await sup.subscribe({ all: true });
  const all = [...sup.agents.keys()].sort();
  assert.deepEqual(all, ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8'], 'every agent of the tenant');
  // The view now claims an epoch the hub never issued (as after a restart
  // of the hub, or a store restored from a replica).
  sup.store.epoch = 'not-this-hubs-epoch@0';
  const seqBefore = sup.store.resumeSeq;

  const reconnecting = nextEvent(sup, 'status', (s) => s.state === 'reconnecting');
  const resnapshot = nextEvent(sup, 'snapshot');
  proxy.hold(); // the hub stays out of reach until the changes below are made
  proxy.cut();
  await reconnecting;
  // Changed while the wallboard is away: it must show it after the fallback.
  const a4 = await agentOf('a4');
  const { agent: away } = await a4.pause('training');
  await proxy.release();

  const event = await resnapshot;
  const resubscribe = sent.filter((m) => m.type === 'subscribe').at(-1);
  assert.equal(resubscribe.since_seq, seqBefore, 'the resume was asked');
  assert.equal(resubscribe.epoch, 'not-this-hubs-epoch@0');
  assert.equal(event.resumed, false, 'the hub answers with a full snapshot');
  const raw = snapshots.at(-1);
  assert.equal(raw.resumed, false);
  assert.equal(raw.agent_ids, undefined, 'a full snapshot has no agent_ids');
  assert.deepEqual(raw.agents.map((a) => a.id).sort(), all, 'every record, not only the changed ones');
  assert.deepEqual([...sup.agents.keys()].sort(), all, 'the view is complete');
  assert.ok(sup.agents.get('a4').version >= away.version);
  assert.equal(sup.agents.get('a4').status, 'paused');
  assert.notEqual(sup.epoch, 'not-this-hubs-epoch@0', "the view takes the hub's epoch");
  assert.equal(sup.seq, raw.seq);
  await a4.unpause();
  await proxy.close();
});
