// One logical session with the hub that survives reconnects: the socket, the
// hello/welcome handshake, heartbeats, request/reply correlation, and the
// reconnect policy. AgentClient and SupervisorClient extend it with what
// their role does with the messages.
//
// Reconnect policy (protocol §2.4, §3.2, §8):
// - an abrupt drop, 1011, 4001, 4008 or a failed connect: retry with
//   full-jitter exponential backoff (backoff.js), reset once a connection is
//   live again;
// - 1012 after a `draining` message: retry after the hub's own
//   `reconnect_after_ms` (already randomised by the hub to spread the crowd);
// - 4000, 4003, 4009, 4010: stop, with the reason (reconnecting cannot help,
//   and after 4009 another connection of the device is live).
// The token (or token provider) is read again on every attempt, so an
// expired token is replaced by a fresh one.
//
// Changes (`change()`, PROTOCOL.md §3.1, §3.3) carry an idempotency key and
// are repeated under it until their outcome is known: after `outcome_unknown`
// (the hub could not learn whether the store applied it) and after a
// connection lost before the reply (the hub may have applied it). Without
// the repeat the caller could only guess: repeating without a key may apply
// a change twice, or be refused (`invalid_state`) although the first one
// worked.

import { Emitter } from './emitter.js';
import { HubError, STOP_CODES, describeClose } from './errors.js';
import { DEFAULT_BACKOFF, backoffDelay } from './backoff.js';

// Idempotency keys (PROTOCOL.md §3.3) are made here rather than in a module
// of their own: the hub serves the library's modules from a fixed list
// (src/client_lib.rs), so a page imports exactly these files. A key must be
// unique per intended change: random, not a counter alone, since another tab
// or a reloaded page of the same user starts its counter again.

/** How long the hub remembers a key (PROTOCOL.md §3.3). */
export const IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000;

let counter = 0;

/**
 * A new key: `crypto.randomUUID()` where it exists. Browsers expose it only
 * in secure contexts (https, localhost), so a page served over plain http
 * gets a version-4 UUID built from `crypto.getRandomValues` (available in
 * every context) instead; a runtime with neither gets Math.random plus the
 * time and a counter, unique within this process and unlikely to collide
 * with another's.
 */
export function newIdempotencyKey() {
  const crypto = globalThis.crypto;
  if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID();
  if (typeof crypto?.getRandomValues === 'function') {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  counter += 1;
  const random = () => Math.floor(Math.random() * 2 ** 32).toString(36);
  return `k-${Date.now().toString(36)}-${random()}${random()}-${counter.toString(36)}`;
}

/** Prefix of the ids of the library's own heartbeats (their replies are dropped). */
const HEARTBEAT_ID = 'hb-';

/**
 * How long a change whose outcome is unknown is repeated by default: long
 * enough for a Redis failover (Sentinel promotes a replica in seconds to
 * tens of seconds) and a reconnect with backoff, short enough that a caller
 * awaiting a click's answer is not left hanging for minutes.
 */
export const DEFAULT_RETRY_UNKNOWN_MS = 120_000;

/**
 * The longest `retryUnknownForMs`: the hub's key window minus a margin for
 * the last repeat's way to the store (in transit, queued on the node). A
 * repeat past the window would be a new request, applied a second time if
 * the first was applied.
 */
export const MAX_RETRY_UNKNOWN_MS = IDEMPOTENCY_WINDOW_MS - 30_000;

/**
 * Errors that leave the outcome of a change open: `outcome_unknown`, and a
 * connection lost after the request was sent. On a repeat, `unavailable` and
 * `rate_limited` say only that the repeat was not applied — the first
 * attempt's outcome is still unknown — so they are repeated too. On the
 * first attempt they are definite answers (nothing applied) and go to the
 * caller: the app decides whether the change is still wanted.
 */
function leavesOutcomeOpen(err, repeat) {
  if (err.code === 'outcome_unknown' || err.code === 'disconnected') return true;
  return repeat && (err.code === 'unavailable' || err.code === 'rate_limited');
}

function defaultUrl() {
  const loc = globalThis.location;
  if (!loc || !loc.host) {
    throw new TypeError('options.url is required outside a browser page');
  }
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/ws`;
}

export class Connection {
  #emitter = new Emitter();
  #token;
  #urls;
  #urlIndex = 0;
  #WebSocket;
  #backoff;
  #ws = null;
  #pending = new Map();
  #nextId = 0;
  #attempt = 0;
  #generation = 0;
  #retryTimer = null;
  #heartbeatTimer = null;
  #lastHeard = 0;
  #drainingAfterMs = null;
  #start = null;
  #retryUnknownForMs;

  /**
   * @param {object} options
   * @param {string | string[]} [options.url] one hub URL, or several tried in turn
   *   (the next one after each lost connection); default: this page's `/v1/ws`
   * @param {string | (() => string | Promise<string>)} options.token
   * @param {typeof WebSocket} [options.WebSocket] a WebSocket constructor (default: the global one)
   * @param {{initialMs?: number, maxMs?: number}} [options.backoff]
   * @param {number} [options.retryUnknownForMs] how long a change whose outcome
   *   is unknown is repeated under its idempotency key (default 120 000;
   *   at most MAX_RETRY_UNKNOWN_MS; 0: never repeated)
   */
  constructor(options = {}) {
    if (options.token === undefined || options.token === null) {
      throw new TypeError('options.token is required (a string or a function returning one)');
    }
    const url = options.url ?? defaultUrl();
    this.#urls = Array.isArray(url) ? [...url] : [url];
    if (this.#urls.length === 0) throw new TypeError('options.url must name at least one URL');
    this.#token = options.token;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#backoff = { ...DEFAULT_BACKOFF, ...(options.backoff ?? {}) };
    const retryFor = options.retryUnknownForMs ?? DEFAULT_RETRY_UNKNOWN_MS;
    if (typeof retryFor !== 'number' || !(retryFor >= 0)) {
      throw new TypeError('options.retryUnknownForMs must be a number of milliseconds, 0 or more');
    }
    this.#retryUnknownForMs = Math.min(retryFor, MAX_RETRY_UNKNOWN_MS);
    /** 'idle' before start(), then 'connecting' | 'live' | 'reconnecting' | 'stopped'. */
    this.state = 'idle';
    /** The last `welcome` from the hub (null before the first). */
    this.welcome = null;
    /** Why the client stopped ({code, message}), once state is 'stopped'. */
    this.stopReason = null;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on(name, fn) {
    return this.#emitter.on(name, fn);
  }

  /**
   * Connects, and keeps reconnecting until stop() or a close code that
   * reconnecting cannot fix. Resolves with the first `welcome`; rejects with
   * a HubError (code `closed`, `closeCode` set) if the client stops before.
   */
  start() {
    if (this.#start) return this.#start.promise;
    if (typeof this.#WebSocket !== 'function') {
      return Promise.reject(
        new TypeError(
          'no WebSocket available: use Node 22+, run Node 20 with --experimental-websocket, ' +
            'or pass options.WebSocket',
        ),
      );
    }
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#start = { promise, resolve, reject, settled: false };
    this.#status({ state: 'connecting' });
    this.#connect();
    return promise;
  }

  /** Closes the connection (a clean close: an agent's device goes inactive at once). */
  stop() {
    this.#halt({ code: 1000, message: 'stopped by the client' });
  }

  /** Whether requests can be sent now. */
  get live() {
    return this.state === 'live';
  }

  // ---- for subclasses -------------------------------------------------------

  /** Emits an event to this client's listeners. */
  emit(name, value) {
    this.#emitter.emit(name, value);
  }

  /**
   * Sends a request and resolves with its reply's `result`, or rejects with
   * a HubError carrying the protocol error code (`disconnected` when the
   * socket is not open or drops before the reply).
   */
  request(message) {
    return this.#transmit(message) ?? Promise.reject(new HubError('disconnected', `not connected (${this.state})`));
  }

  /**
   * Sends a state-changing request under an idempotency key (`key`, or a new
   * one) and resolves or rejects with its definite answer: after
   * `outcome_unknown` or a connection lost before the reply it is repeated
   * under the same key — after a backoff delay, once the connection is live
   * again — for up to `retryUnknownForMs` since it was first sent; the hub
   * applies it at most once. Rejects with:
   * - `disconnected` when the client is not live: nothing was sent;
   * - the hub's code when it refused the request (nothing applied), the
   *   first attempt's `unavailable` included;
   * - `outcome_unknown` when no definite answer came within the bound or the
   *   client stopped meanwhile: the change may have been applied.
   * Every such error carries `idempotencyKey`: a later request with it (the
   * `idempotencyKey` option) resolves the doubt within the hub's 10 minutes.
   */
  async change(message, key) {
    const idempotencyKey = key === undefined ? newIdempotencyKey() : key;
    const msg = { ...message, idempotency_key: idempotencyKey };
    const keyed = (err) => {
      err.idempotencyKey = idempotencyKey;
      return err;
    };
    let reply = this.#transmit(msg);
    if (!reply) throw keyed(new HubError('disconnected', `not connected (${this.state}); nothing was sent`));
    const giveUpAt = Date.now() + this.#retryUnknownForMs;
    for (let repeats = 0; ; repeats += 1) {
      let last;
      try {
        return await reply;
      } catch (err) {
        if (!(err instanceof HubError) || !leavesOutcomeOpen(err, repeats > 0)) throw keyed(err);
        last = err;
      }
      // A lost connection is repeated as soon as another is live (its
      // reconnect had its own backoff); an answer that left the outcome
      // open, after a delay, since the store it could not reach needs time.
      const delayMs = last.code === 'disconnected' ? 0 : backoffDelay(repeats, this.#backoff);
      reply = (await this.#repeatWhenLive(msg, delayMs, giveUpAt))?.reply;
      if (!reply) {
        const why =
          this.state === 'stopped'
            ? `the client stopped (${this.stopReason?.message})`
            : `no definite answer within ${this.#retryUnknownForMs} ms`;
        const err = new HubError(
          'outcome_unknown',
          `${why}; the last attempt got ${last.code} (${last.message}): the change may have been applied. ` +
            `Read the record, or repeat it with idempotencyKey "${idempotencyKey}" within 10 minutes of the first attempt`,
        );
        err.cause = last;
        throw keyed(err);
      }
    }
  }

  /** Sends a message that expects no reply; false when not connected. */
  send(message) {
    const ws = this.#ws;
    if (!ws || this.state !== 'live') return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  /** An opaque token that changes with every socket (to drop stale answers). */
  get socketGeneration() {
    return this.#generation;
  }

  /** The hello message for this role (subclasses). */
  hello(_token) {
    throw new Error('hello() not implemented');
  }

  /** A role's message (subclasses). */
  handleMessage(_message) {}

  /** Called once the welcome of a (re)connection arrived (subclasses). */
  onLive(_welcome) {}

  // ---- internals ------------------------------------------------------------

  /** Sends a request; its reply's promise, or null when not live (nothing sent). */
  #transmit(message) {
    const ws = this.#ws;
    if (!ws || this.state !== 'live') return null;
    const id = String(++this.#nextId);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ ...message, id }));
    });
  }

  /**
   * Waits `delayMs`, then until the connection is live, and sends `message`
   * again: `{reply}` (wrapped, or resolving with it would wait for it), or
   * null (nothing sent) when `giveUpAt` passes first or the client stops.
   */
  #repeatWhenLive(message, delayMs, giveUpAt) {
    return new Promise((resolve) => {
      if (this.state === 'stopped' || Date.now() + delayMs >= giveUpAt) {
        resolve(null);
        return;
      }
      let waited = false;
      const send = () => {
        if (this.live) done({ reply: this.#transmit(message) });
      };
      const offStatus = this.on('status', (s) => {
        if (s.state === 'stopped') done(null);
        else if (waited) send();
      });
      const delay = setTimeout(() => {
        waited = true;
        send();
      }, delayMs);
      const bound = setTimeout(() => done(null), giveUpAt - Date.now());
      function done(reply) {
        clearTimeout(delay);
        clearTimeout(bound);
        offStatus();
        resolve(reply);
      }
    });
  }

  #status(status) {
    this.state = status.state;
    this.emit('status', status);
  }

  async #connect() {
    const generation = ++this.#generation;
    let token;
    try {
      token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    } catch (err) {
      if (generation !== this.#generation) return;
      this.#retry({ code: 'token', message: `the token provider failed: ${err?.message ?? err}` });
      return;
    }
    if (generation !== this.#generation) return; // stopped meanwhile
    const url = this.#urls[this.#urlIndex % this.#urls.length];
    let ws;
    try {
      ws = new this.#WebSocket(url);
    } catch (err) {
      this.#retry({ code: 'connect', message: `cannot open ${url}: ${err?.message ?? err}` });
      return;
    }
    this.#ws = ws;
    this.#drainingAfterMs = null;
    const current = () => this.#ws === ws && generation === this.#generation;
    ws.addEventListener('open', () => {
      if (current()) ws.send(JSON.stringify(this.hello(token)));
    });
    ws.addEventListener('message', (event) => {
      if (current()) this.#frame(event.data);
    });
    ws.addEventListener('close', (event) => {
      if (current()) this.#closed(event.code, event.reason);
    });
    // In a browser an 'error' is always followed by 'close', which decides
    // what to do. Node's WebSocket (undici, as in Node 20) fires only 'error'
    // when the opening handshake fails (connection refused or reset): without
    // a 'close' the client would wait for ever, so a failure that no 'close'
    // follows within a moment counts as an abrupt drop.
    ws.addEventListener('error', () => {
      setTimeout(() => {
        if (current()) this.#abandon(ws, 'the connection failed');
      }, 50);
    });
  }

  #frame(data) {
    this.#lastHeard = Date.now();
    if (typeof data !== 'string') return; // the hub sends text frames only
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'welcome':
        this.welcome = msg;
        this.#attempt = 0;
        this.#startHeartbeats(msg.heartbeat_interval_ms, msg.presence_ttl_ms);
        this.#status({ state: 'live' });
        this.emit('welcome', msg);
        this.onLive(msg);
        if (this.#start && !this.#start.settled) {
          this.#start.settled = true;
          this.#start.resolve(msg);
        }
        return;
      case 'reply': {
        const pending = this.#pending.get(msg.id);
        if (!pending) return; // a heartbeat's, or unknown
        this.#pending.delete(msg.id);
        if (msg.ok) pending.resolve(msg.result ?? {});
        else pending.reject(new HubError(msg.error?.code ?? 'unknown', msg.error?.message));
        return;
      }
      case 'error':
        this.emit('error', new HubError(msg.error?.code ?? 'unknown', msg.error?.message));
        return;
      case 'draining':
        this.#drainingAfterMs = Number.isFinite(msg.reconnect_after_ms) ? msg.reconnect_after_ms : 0;
        this.emit('draining', msg);
        return;
      default:
        this.handleMessage(msg);
    }
  }

  // Heartbeats carry an id so the hub answers them: a connection that has
  // heard nothing (no reply, no frame) for presence_ttl_ms plus an interval
  // is half-open and is abandoned for a new one. (The browser API can only
  // close cleanly; on a really half-open socket the close frame never reaches
  // the hub, which then treats it as a drop, with the reconnect grace.)
  #startHeartbeats(intervalMs, ttlMs) {
    this.#stopHeartbeats();
    const interval = Math.max(100, Number(intervalMs) || 10000);
    const deadAfter = Math.max(interval * 2, (Number(ttlMs) || 30000) + interval);
    let n = 0;
    this.#heartbeatTimer = setInterval(() => {
      const ws = this.#ws;
      if (!ws) return;
      if (Date.now() - this.#lastHeard > deadAfter) {
        this.#abandon(ws, 'no message from the hub');
        return;
      }
      ws.send(JSON.stringify({ type: 'heartbeat', id: `${HEARTBEAT_ID}${++n}` }));
    }, interval);
  }

  #stopHeartbeats() {
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
  }

  #abandon(ws, why) {
    this.#ws = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
    this.#closed(1006, why);
  }

  #closed(code, reason) {
    this.#ws = null;
    this.#stopHeartbeats();
    const meaning = reason || describeClose(code);
    for (const { reject } of this.#pending.values()) {
      reject(new HubError('disconnected', `connection closed before the reply (${code}: ${meaning})`));
    }
    this.#pending.clear();
    this.emit('disconnected', { code, reason: meaning });
    if (this.state === 'stopped') return;
    if (STOP_CODES.has(code)) {
      this.#halt({ code, message: reason || STOP_CODES.get(code) });
      return;
    }
    this.#urlIndex += 1; // the next node of the list, if there are several
    if (code === 1012 && this.#drainingAfterMs !== null) {
      this.#retry({ code, message: meaning }, this.#drainingAfterMs);
    } else {
      this.#retry({ code, message: meaning });
    }
  }

  #retry(reason, delayMs) {
    if (this.state === 'stopped') return;
    this.#ws = null;
    const retryInMs = delayMs ?? backoffDelay(this.#attempt++, this.#backoff);
    this.#status({ state: 'reconnecting', retryInMs, reason });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#connect();
    }, retryInMs);
  }

  #halt(reason) {
    if (this.state === 'stopped') return;
    this.#generation += 1; // ignore whatever the old socket still says
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#stopHeartbeats();
    const ws = this.#ws;
    this.#ws = null;
    for (const { reject } of this.#pending.values()) {
      reject(new HubError('disconnected', `client stopped (${reason.message})`));
    }
    this.#pending.clear();
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    this.stopReason = reason;
    this.#status({ state: 'stopped', reason });
    if (this.#start && !this.#start.settled) {
      this.#start.settled = true;
      const err = new HubError('closed', `stopped before the hub welcomed us: ${reason.message}`);
      err.closeCode = reason.code;
      this.#start.reject(err);
    }
  }
}
