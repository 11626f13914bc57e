// presence-hub-client: the entry point. Plain ES modules, no dependencies;
// browsers and Node 20+ (Node 20 with --experimental-websocket, or pass
// options.WebSocket). Served by the hub at /client/presence-hub-client.js.

export { AgentClient } from './agent.js';
export { SupervisorClient } from './supervisor.js';
export { PresenceStore, channelKey } from './store.js';
export { HubError, STOP_CODES, describeClose } from './errors.js';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export { newIdempotencyKey, IDEMPOTENCY_WINDOW_MS, DEFAULT_RETRY_UNKNOWN_MS, MAX_RETRY_UNKNOWN_MS } from './connection.js';
