// A monitor request that ends without this device's answer: the hub's
// `command_ended` aborts the request's `signal`, is emitted as an event, and
// an answer given after it is not sent (the hub would refuse it as
// `not_found`). Against the real hub (command timeout 3 s, test-support).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient, SupervisorClient } from '../src/presence-hub-client.js';
import { hubForFile, token, nextEvent } from '../test-support/hub.mjs';

const fixture = hubForFile(before, after);
const { track } = fixture;

/** An agent whose device holds every monitor request until `answer` is called. */
async function holdingAgent(id) {
  const held = [];
  const agent = track(
    new AgentClient({
      url: fixture.hub.url,
      token: token(id),
      device: { id: `${id}-phone` },
      onCommand: (cmd) => new Promise((resolve) => held.push({ cmd, answer: resolve })),
    }),
  );
  const sent = [];
  const send = agent.send.bind(agent);
  agent.send = (msg) => {
    sent.push(msg);
    return send(msg);
  };
  await agent.start();
  return { agent, held, sent };
}

test('a request whose supervisor leaves ends as withdrawn, and a late answer is not sent', async () => {
  const { agent, held, sent } = await holdingAgent('a1');
  const sup = new SupervisorClient({ url: fixture.hub.url, token: token('s1') });
  await sup.start();
  const asked = nextEvent(agent, 'command', (c) => c.action === 'monitor');
  sup.monitor('a1', 'barge').catch(() => {});
  const command = await asked;
  assert.equal(command.signal.aborted, false);
  const ended = nextEvent(agent, 'command_ended');
  sup.stop();
  const end = await ended;
  assert.deepEqual(end, { commandId: command.commandId, outcome: 'withdrawn' });
  assert.equal(command.signal.aborted, true);
  assert.deepEqual(command.signal.reason, end);
  held[0].answer(true);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent.filter((m) => m.type === 'command_ack'), [], 'no answer after the end');
});

test('a request nobody answers ends as timeout on the device too', async () => {
  const { agent, held } = await holdingAgent('a2');
  const sup = track(new SupervisorClient({ url: fixture.hub.url, token: token('s1') }));
  await sup.start();
  const ended = nextEvent(agent, 'command_ended');
  await assert.rejects(sup.monitor('a2'), { code: 'timeout' });
  const end = await ended;
  assert.equal(end.outcome, 'timeout');
  assert.equal(held[0].cmd.commandId, end.commandId);
  assert.equal(held[0].cmd.signal.aborted, true);
});
