// Idempotency keys (PROTOCOL.md §3.3): every state-changing request carries
// one, so that the library can repeat it after `outcome_unknown` or a lost
// connection and the hub applies it at most once (within its 10-minute
// window, per user). A key must be unique per intended change: random, not a
// counter alone, since another tab or a reloaded page of the same user
// starts its counter again.

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
