// A supervisor's or admin's wallboard connection: a scope, the live maps of
// agents and channels (store.js), resume after a reconnect, and every
// supervisor and admin request.

import { Connection } from './connection.js';
import { PresenceStore } from './store.js';
import { toChannelRef, defined } from './channel.js';
import { HubError } from './errors.js';

/** The outbox slot key of settings frames (agent ids are the others). */
const SETTINGS_SLOT = Symbol('settings');

/** `command` actions sent without an idempotency key (PROTOCOL.md §3.3). */
const UNKEYED_ACTIONS = new Set(['monitor', 'sign_out']);

export class SupervisorClient extends Connection {
  #scope = null;
  #resumable = false;
  #awaitingSnapshot = [];

  /**
   * @param {object} options Connection options plus:
   * @param {'supervisor' | 'admin'} [options.role] default 'supervisor'
   */
  constructor(options = {}) {
    super(options);
    this.role = options.role ?? 'supervisor';
    this.store = new PresenceStore();
    // A subscribe answered but whose snapshot was lost with the socket
    // fails like any request cut off (the scope is re-sent on reconnect).
    const cutOff = () => {
      for (const waiter of this.#awaitingSnapshot.splice(0)) {
        waiter.reject(new HubError('disconnected', 'connection closed before the snapshot'));
      }
    };
    this.on('disconnected', ({ code }) => {
      cutOff();
      // 4012: this user's roles or scope changed (PROTOCOL.md §7.1). What is
      // in view is another set of agents now: a full snapshot, not a resume.
      if (code === 4012) this.#resumable = false;
    });
    this.on('status', (s) => s.state === 'stopped' && cutOff());
  }

  /** Map<agent id, record>, live. */
  get agents() {
    return this.store.agents;
  }

  /** Map<"kind:id", channel>, live. */
  get channels() {
    return this.store.channels;
  }

  /** Map<"kind:id", queue statistics> (PROTOCOL.md §10.7), live. */
  get queueStats() {
    return this.store.queueStats;
  }

  get settings() {
    return this.store.settings;
  }

  /** The highest seq / version applied. (A resume sends `store.resumeSeq`, see store.js.) */
  get seq() {
    return this.store.seq;
  }

  /** The epoch of the current view (sent with `since_seq` on a resume). */
  get epoch() {
    return this.store.epoch;
  }

  hello(token) {
    return { type: 'hello', token, role: this.role };
  }

  /**
   * Sets the scope (`{all: true}` or `{channels: [...]}`) and resolves once
   * its snapshot is applied. The scope is sent again after every reconnect,
   * with `since_seq` so the hub can answer with only what changed.
   */
  async subscribe(scope) {
    const normalized = scope?.all === true ? { all: true } : { channels: (scope?.channels ?? []).map(toChannelRef) };
    const previous = [this.#scope, this.#resumable];
    this.#scope = normalized;
    this.#resumable = false; // a new scope needs a full snapshot
    try {
      return await this.#subscribe(false);
    } catch (err) {
      // A refused scope (bad_request, not_found, forbidden) changes nothing.
      if (err.code !== 'disconnected') [this.#scope, this.#resumable] = previous;
      throw err;
    }
  }

  async #subscribe(resume) {
    const msg = { type: 'subscribe', scope: this.#scope };
    if (resume && this.#resumable && this.store.resumeSeq !== null) {
      msg.since_seq = this.store.resumeSeq;
      // The seq is only meaningful in the epoch it came from (a restarted
      // hub or a restored store starts another): the hub checks it.
      if (this.store.epoch !== null) msg.epoch = this.store.epoch;
    }
    let waiter;
    const snapshot = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
    });
    snapshot.catch(() => {}); // rejected unawaited when the request failed first
    this.#awaitingSnapshot.push(waiter);
    try {
      const result = await this.request(msg);
      await snapshot;
      return result;
    } catch (err) {
      const at = this.#awaitingSnapshot.indexOf(waiter);
      if (at >= 0) this.#awaitingSnapshot.splice(at, 1);
      throw err;
    }
  }

  onLive(welcome) {
    if (welcome.settings) this.store.settings = welcome.settings;
    if (!this.#scope) return;
    this.#subscribe(true).catch((err) => {
      // A cut-off resubscribe is sent again on the next connection.
      if (err.code !== 'disconnected') this.emit('error', err);
    });
  }

  handleMessage(msg) {
    switch (msg.type) {
      case 'snapshot': {
        const dropped = this.store.applySnapshot(msg);
        this.#resumable = true;
        for (const id of dropped) this.emit('agent_removed', id);
        const resumed = msg.resumed === true;
        this.emit('snapshot', { resumed, seq: msg.seq });
        const waiter = this.#awaitingSnapshot.shift();
        waiter?.resolve();
        return;
      }
      case 'agent':
        this.store.noteDelta(msg.agent?.id, msg.agent?.version);
        if (this.store.applyAgent(msg.agent)) this.emit('agent', msg.agent);
        return;
      case 'agent_removed':
        this.store.noteDelta(msg.agent_id, msg.version);
        if (this.store.removeAgent(msg.agent_id, msg.version)) this.emit('agent_removed', msg.agent_id);
        return;
      case 'channel': {
        const channel = this.store.applyChannel(msg.channel);
        if (channel) this.emit('channel', channel);
        return;
      }
      case 'queue_stats': {
        const entry = this.store.applyQueueStats(msg);
        if (entry) this.emit('queue_stats', entry);
        return;
      }
      case 'channel_removed':
        if (this.store.removeChannel(msg.channel)) this.emit('channel_removed', msg.channel);
        return;
      case 'settings':
        this.store.noteDelta(SETTINGS_SLOT, msg.seq);
        this.store.applySettings(msg);
        this.emit('settings', msg.settings);
        return;
      default:
        this.emit('message', msg);
    }
  }

  // A reply's record is applied too (it is the newest the hub had), so a
  // wallboard shows the result of its own action without waiting for the
  // delta; only agents already in view are touched.
  async #withRecord(promise) {
    const result = await promise;
    const record = result?.agent;
    if (record && this.store.agents.has(record.id) && this.store.applyAgent(record)) {
      this.emit('agent', record);
    }
    return result;
  }

  /** Searches every user of the tenant. Resolves with `{agents, total}`. */
  search(query = '', { role, limit } = {}) {
    return this.request(defined({ type: 'search', query, role, limit }));
  }

  /** An agent's recent changes, oldest first. Resolves with `{changes}`. */
  history(agentId, { sinceMs, limit } = {}) {
    return this.request(defined({ type: 'history', agent_id: agentId, since_ms: sinceMs, limit }));
  }

  /**
   * Any `command` action (connect, disconnect, pause, unpause, end_wrap_up,
   * disconnect_unassigned, monitor, stop_monitor, sign_out, …).
   * `params`: {channel, reason, mode, idempotencyKey}. Resolves with `{agent}`.
   *
   * Every action but `monitor` and `sign_out` changes only the record: it is
   * sent under an idempotency key (`params.idempotencyKey`, or a new one) and
   * repeated under it until its outcome is known (Connection.change).
   * `monitor` and `sign_out` involve the agent's devices, which the hub's
   * keys do not cover (PROTOCOL.md §3.3): they are sent once, without a key,
   * and a lost connection rejects them with `disconnected`.
   */
  command(action, agentId, params = {}) {
    if (typeof action !== 'string' || typeof agentId !== 'string') {
      return Promise.reject(new HubError('bad_request', 'command(action, agentId, params) needs two strings'));
    }
    const msg = defined({
      type: 'command',
      action,
      agent_id: agentId,
      channel: params.channel === undefined ? undefined : toChannelRef(params.channel),
      reason: params.reason,
      mode: params.mode,
    });
    if (UNKEYED_ACTIONS.has(action)) return this.#withRecord(this.request(msg));
    return this.#withRecord(this.change(msg, params.idempotencyKey));
  }

  // The shortcuts take the same trailing `options` ({idempotencyKey}) as
  // the agent's requests.

  pause(agentId, reason, options = {}) {
    return this.command('pause', agentId, { reason, idempotencyKey: options.idempotencyKey });
  }

  unpause(agentId, options = {}) {
    return this.command('unpause', agentId, { idempotencyKey: options.idempotencyKey });
  }

  endWrapUp(agentId, options = {}) {
    return this.command('end_wrap_up', agentId, { idempotencyKey: options.idempotencyKey });
  }

  connectAgent(agentId, channel, options = {}) {
    return this.command('connect', agentId, { channel, idempotencyKey: options.idempotencyKey });
  }

  disconnectAgent(agentId, channel, options = {}) {
    return this.command('disconnect', agentId, { channel, idempotencyKey: options.idempotencyKey });
  }

  disconnectUnassigned(agentId, options = {}) {
    return this.command('disconnect_unassigned', agentId, { idempotencyKey: options.idempotencyKey });
  }

  /** `mode`: 'listen' (default), 'whisper' or 'barge' (when the hub supports modes). */
  monitor(agentId, mode) {
    return this.command('monitor', agentId, { mode });
  }

  stopMonitor(agentId, options = {}) {
    return this.command('stop_monitor', agentId, { idempotencyKey: options.idempotencyKey });
  }

  /** Signs the agent out on every device (when the hub supports it). */
  signOut(agentId, reason) {
    return this.command('sign_out', agentId, { reason });
  }

  // ---- admin ----
  // Changes, like the commands: under an idempotency key, repeated until
  // their outcome is known; `options.idempotencyKey` replaces the key.

  /** Admin: changes some settings. Resolves with `{settings}` (on a repeat: the current settings). */
  updateSettings(partial, options = {}) {
    return this.change({ type: 'update_settings', settings: partial }, options.idempotencyKey);
  }

  /** Admin: `allowed` true/false sets the agent's override, null removes it. */
  setUnassignedAccess(agentId, allowed, options = {}) {
    const msg = { type: 'set_unassigned_access', agent_id: agentId, allowed };
    return this.#withRecord(this.change(msg, options.idempotencyKey));
  }

  assign(agentId, channel, options = {}) {
    const msg = { type: 'assign', agent_id: agentId, channel: toChannelRef(channel) };
    return this.#withRecord(this.change(msg, options.idempotencyKey));
  }

  unassign(agentId, channel, options = {}) {
    const msg = { type: 'unassign', agent_id: agentId, channel: toChannelRef(channel) };
    return this.#withRecord(this.change(msg, options.idempotencyKey));
  }
}
