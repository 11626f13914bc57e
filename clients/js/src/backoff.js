// Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS
// Architecture Blog): the n-th retry waits a uniform random time in
// [0, min(maxMs, initialMs * 2^n)]. The randomness spreads a crowd of clients
// that lost the same node, so they do not come back as one storm; a small
// first ceiling keeps the first retry well within the hub's reconnect grace
// (10 s by default), so an agent reconnecting after a blip shows no offline
// flap.

export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 1000, maxMs: 30000 });

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt, { initialMs, maxMs } = DEFAULT_BACKOFF, random = Math.random) {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
