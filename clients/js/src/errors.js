// Errors the library rejects requests with.

/**
 * A refused or failed request. `code` is the protocol's error code
 * (`bad_request`, `forbidden`, `not_found`, `invalid_state`, `unavailable`,
 * `outcome_unknown`, …) or one of the library's own: `disconnected` (the
 * socket was not open, or — for a request that changes nothing — dropped
 * before the reply came) and `closed` (start() failed). A change's error
 * also carries the `idempotencyKey` it was sent under (README, "What each
 * error guarantees").
 */
export class HubError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'HubError';
    this.code = code;
  }
}

/** Close codes after which reconnecting cannot help: the client stops. */
export const STOP_CODES = new Map([
  [4000, 'bad hello (a client bug)'],
  [4003, 'unauthorized: get a new token'],
  [4009, 'replaced by a newer connection of the same device'],
  [4010, 'signed out by a supervisor'],
  [4011, 'too many active devices for this agent: close another device first'],
]);

const CLOSE_MEANINGS = new Map([
  [1000, 'closed normally'],
  [1006, 'connection lost'],
  [1009, 'message too large'],
  [1011, 'the hub could not register the session'],
  [1012, 'node draining'],
  [4001, 'no hello in time'],
  [4008, 'rate limit, outbox overflow or idle connection'],
  [4012, 'the directory changed for this user (roles or scope): signing in again'],
]);

/** A human-readable meaning of a WebSocket close code. */
export function describeClose(code) {
  return STOP_CODES.get(code) ?? CLOSE_MEANINGS.get(code) ?? `closed with code ${code}`;
}
