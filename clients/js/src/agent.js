// An agent's device: hello with the device, its own record (`state`), the
// agent requests, and the answers to monitor requests (`command_ack`).

import { Connection } from './connection.js';
import { toChannelRef } from './channel.js';

export class AgentClient extends Connection {
  /**
   * @param {object} options Connection options plus:
   * @param {{id: string, kind?: string, label?: string}} options.device
   *   `id` stable per device/app install: a reconnect with the same id within
   *   the hub's grace keeps the agent online with no flap.
   * @param {Function} [options.onCommand] see `onCommand`
   */
  constructor(options = {}) {
    super(options);
    const device = options.device;
    if (!device || typeof device.id !== 'string' || device.id.length === 0) {
      throw new TypeError('options.device.id is required (stable per device)');
    }
    this.device = { id: device.id, kind: device.kind ?? 'unknown' };
    if (device.label !== undefined) this.device.label = device.label;
    /** The agent's own record, as of the last `state`. */
    this.record = null;
    /**
     * Answers a supervisor's monitor request: `({action, mode, supervisor,
     * commandId}) => boolean | {ok, reason} | Promise of either`. A throw or
     * `false` refuses. Without a handler, monitor requests are refused.
     * `stop_monitor` is passed too, for information (no answer is sent).
     * A monitor request's `signal` aborts when the hub says the request
     * ended (`command_ended`: answered, timed out, withdrawn); an answer
     * given after that is not sent (the hub would not take it).
     */
    this.onCommand = options.onCommand ?? null;
    /** Monitor requests waiting for `onCommand`'s answer: command id -> AbortController. */
    this.pendingCommands = new Map();
  }

  hello(token) {
    return { type: 'hello', token, role: 'agent', device: this.device };
  }

  handleMessage(msg) {
    switch (msg.type) {
      case 'state':
        this.record = msg.agent;
        this.emit('state', msg.agent);
        return;
      case 'command':
        this.#command(msg);
        return;
      case 'command_ended': {
        const waiting = this.pendingCommands.get(msg.command_id);
        this.pendingCommands.delete(msg.command_id);
        const ended = { commandId: msg.command_id, outcome: msg.outcome };
        waiting?.abort(ended);
        this.emit('command_ended', ended);
        return;
      }
      case 'signed_out':
        this.emit('signed_out', { by: msg.by, reason: msg.reason ?? null });
        return;
      default:
        this.emit('message', msg);
    }
  }

  async #command(msg) {
    const socket = this.socketGeneration;
    const command = {
      commandId: msg.command_id,
      action: msg.action,
      mode: msg.mode ?? (msg.action === 'monitor' ? 'listen' : undefined),
      supervisor: msg.supervisor,
    };
    this.emit('command', command);
    if (msg.action === 'stop_monitor') {
      try {
        await this.onCommand?.(command);
      } catch {
        // informational: nothing to answer
      }
      return;
    }
    let ok = false;
    let reason = 'this device does not handle monitor requests';
    const controller = new AbortController();
    command.signal = controller.signal;
    this.pendingCommands.set(msg.command_id, controller);
    if (typeof this.onCommand === 'function') {
      reason = undefined;
      try {
        const answer = await this.onCommand(command);
        if (answer && typeof answer === 'object') {
          ok = answer.ok === true;
          reason = answer.reason;
        } else {
          ok = answer === true;
        }
      } catch (err) {
        reason = err?.message ?? String(err);
      }
    }
    this.pendingCommands.delete(msg.command_id);
    // An answer for a socket that is gone would be `not_found` on the new
    // one, and so would an answer to a request that has ended.
    if (socket !== this.socketGeneration || controller.signal.aborted) return;
    const ack = { type: 'command_ack', command_id: msg.command_id, ok };
    if (!ok && reason) ack.reason = String(reason).slice(0, 200);
    this.send(ack);
  }

  // Every request below changes the agent's record: it is sent under an
  // idempotency key and repeated under it until its outcome is known
  // (Connection.change). `options.idempotencyKey` replaces the generated key,
  // e.g. with one the app stored with the intended change so that a reloaded
  // page can repeat it.

  /** `available` (unpause) or `paused` (with a reason). Resolves with `{agent}`. */
  setStatus(status, reason, options = {}) {
    const msg = { type: 'set_status', status };
    if (reason !== undefined) msg.reason = reason;
    return this.change(msg, options.idempotencyKey);
  }

  /** Pauses (pending while busy). */
  pause(reason, options = {}) {
    return this.setStatus('paused', reason, options);
  }

  /** Unpauses (paused → available). */
  unpause(options = {}) {
    return this.setStatus('available', undefined, options);
  }

  interactionStart(interactionId, channel, options = {}) {
    const msg = { type: 'interaction_start', interaction_id: interactionId, channel: toChannelRef(channel) };
    return this.change(msg, options.idempotencyKey);
  }

  interactionEnd(interactionId, options = {}) {
    return this.change({ type: 'interaction_end', interaction_id: interactionId }, options.idempotencyKey);
  }

  endWrapUp(options = {}) {
    return this.change({ type: 'end_wrap_up' }, options.idempotencyKey);
  }

  connect(channel, options = {}) {
    return this.change({ type: 'connect', channel: toChannelRef(channel) }, options.idempotencyKey);
  }

  disconnect(channel, options = {}) {
    return this.change({ type: 'disconnect', channel: toChannelRef(channel) }, options.idempotencyKey);
  }
}
