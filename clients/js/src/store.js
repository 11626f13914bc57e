// A supervisor's live view: agents and channels as the hub last described
// them, applied with the protocol's one ordering rule (§4.1): keep the record
// with the higher version. Pure (no socket), so the rule is tested directly.
//
// Why tombstones: an `agent_removed` (version v) may be followed by an older,
// coalesced `agent` record of the same agent from before it left the scope;
// remembering v per removed agent keeps that stale record out. A full
// snapshot clears them (every later delta is newer than the snapshot).
//
// Why `resumeSeq` and not `seq` for `since_seq`: the hub coalesces deltas
// per agent in place (PROTOCOL.md §5.3), but it writes each batch of a
// connection's deltas in seq order after coalescing (src/hub/outbox.rs
// `Outbox::take`, src/hub/delta_log.rs `DeltaLog::take`): if X@41 was queued,
// then Y@45, then X@55 replaced X@41, the batch goes out as Y@45, X@55. So
// deltas arrive in increasing version and, as PROTOCOL.md §5.1.1 says, the
// highest version applied (`seq`) is itself a safe `since_seq`.
// `resumeSeq` is a lower bound that does not depend on that sort: it would
// still be safe if a hub wrote coalesced slots in the order they were
// queued (X@55 ahead of Y@45). After a frame for X, every change up to X's
// *previous* delivered version (or the snapshot's seq, for X's first frame
// since it) has been delivered: X's slot was created by a change newer than
// that, and anything queued behind the slot is newer still. `resumeSeq` is
// the highest such bound (≤ `seq`): a resume from it may resend a few
// records the view already holds (the version rule ignores them), never
// miss one; the price is a slightly larger resumed snapshot.

/** The map key of a channel: "kind:id". */
export function channelKey(channel) {
  return `${channel.kind}:${channel.id}`;
}

export class PresenceStore {
  constructor() {
    /** @type {Map<string, object>} agent id → record */
    this.agents = new Map();
    /** @type {Map<string, object>} "kind:id" → channel */
    this.channels = new Map();
    /** @type {Map<string, object>} "kind:id" → queue statistics (PROTOCOL.md §10.7) */
    this.queueStats = new Map();
    /** The tenant settings, as of the last snapshot or settings message. */
    this.settings = null;
    /** The highest seq / version applied (sent as `since_seq` to resume). */
    this.seq = null;
    /** The epoch of the snapshot `seq` belongs to (sent back on resume). */
    this.epoch = null;
    /** The `since_seq` to resume from: every change up to it was delivered. */
    this.resumeSeq = null;
    this.removed = new Map();
    this.lastFrame = new Map();
  }

  /**
   * Notes a delta frame as delivered (`agent`, `agent_removed` by agent id;
   * `settings` under its own key) before it is applied; see `resumeSeq`.
   */
  noteDelta(key, version) {
    if (!Number.isInteger(version) || this.resumeSeq === null) return;
    const previous = this.lastFrame.get(key);
    const bound = previous === undefined ? this.resumeSeq : previous;
    this.lastFrame.set(key, version);
    if (bound > this.resumeSeq) this.resumeSeq = bound;
  }

  #advance(seq) {
    if (Number.isInteger(seq) && (this.seq === null || seq > this.seq)) this.seq = seq;
  }

  /**
   * Applies a snapshot. `resumed: true` (PROTOCOL.md §5.1.1) carries only the records
   * changed since `since_seq` plus `agent_ids`, every agent in scope: the
   * others are dropped. Otherwise the snapshot replaces everything.
   * Returns the ids of agents dropped by a resumed snapshot.
   */
  applySnapshot(snapshot) {
    const dropped = [];
    if (snapshot.resumed === true && Array.isArray(snapshot.agent_ids)) {
      const inScope = new Set(snapshot.agent_ids);
      for (const id of [...this.agents.keys()]) {
        if (!inScope.has(id)) {
          this.agents.delete(id);
          dropped.push(id);
        }
      }
      for (const record of snapshot.agents ?? []) this.applyAgent(record);
      this.#advance(snapshot.seq);
    } else {
      this.agents.clear();
      this.removed.clear();
      for (const record of snapshot.agents ?? []) this.agents.set(record.id, record);
      this.seq = Number.isInteger(snapshot.seq) ? snapshot.seq : null;
    }
    this.epoch = typeof snapshot.epoch === 'string' ? snapshot.epoch : null;
    // A snapshot is complete as of its seq; the hub's outbox starts afresh.
    this.resumeSeq = Number.isInteger(snapshot.seq) ? snapshot.seq : null;
    this.lastFrame.clear();
    if (Array.isArray(snapshot.channels)) {
      const channels = new Map();
      for (const channel of snapshot.channels) channels.set(channelKey(channel), channel);
      this.channels = channels;
    }
    // Statistics have no version: every snapshot carries all of them in scope.
    if (Array.isArray(snapshot.queue_stats)) {
      const stats = new Map();
      for (const entry of snapshot.queue_stats) {
        if (entry?.channel) stats.set(channelKey(entry.channel), entry);
      }
      this.queueStats = stats;
    }
    if (snapshot.settings) this.settings = snapshot.settings;
    return dropped;
  }

  /** Applies an agent record if it is newer than what is held; true if applied. */
  applyAgent(record) {
    if (!record || typeof record.id !== 'string' || !Number.isInteger(record.version)) return false;
    const held = this.agents.get(record.id);
    if (held && held.version >= record.version) return false;
    const removedAt = this.removed.get(record.id);
    if (removedAt !== undefined && record.version <= removedAt) return false;
    this.removed.delete(record.id);
    this.agents.set(record.id, record);
    this.#advance(record.version);
    return true;
  }

  /** Applies `agent_removed`; true if the agent was dropped. */
  removeAgent(agentId, version) {
    this.#advance(version);
    const held = this.agents.get(agentId);
    if (held && Number.isInteger(version) && held.version > version) return false;
    this.removed.set(agentId, Number.isInteger(version) ? version : Number.MAX_SAFE_INTEGER);
    return this.agents.delete(agentId);
  }

  /** Applies a `channel` counters message (PROTOCOL.md §10.4): merged into the channel. */
  applyChannel(channel) {
    if (!channel || typeof channel.kind !== 'string' || typeof channel.id !== 'string') return null;
    const key = channelKey(channel);
    const merged = { ...(this.channels.get(key) ?? {}), ...channel };
    this.channels.set(key, merged);
    return merged;
  }

  /** Applies a `channel_removed` message (PROTOCOL.md §7.1); `true` when it was in view. */
  removeChannel(channel) {
    if (!channel || typeof channel.kind !== 'string' || typeof channel.id !== 'string') return false;
    this.queueStats.delete(channelKey(channel));
    return this.channels.delete(channelKey(channel));
  }

  /**
   * Applies a `queue_stats` message (PROTOCOL.md §10.7); returns the entry
   * kept, or null when it is older than the one held (newer `updated_ms` wins).
   */
  applyQueueStats(message) {
    const channel = message?.channel;
    if (!channel || typeof channel.kind !== 'string' || typeof channel.id !== 'string') return null;
    const key = channelKey(channel);
    const held = this.queueStats.get(key);
    if (held && held.updated_ms > message.updated_ms) return null;
    const { type: _type, ...entry } = message;
    this.queueStats.set(key, entry);
    return entry;
  }

  /** Applies a `settings` message. */
  applySettings(message) {
    this.settings = message.settings;
    this.#advance(message.seq);
  }
}
