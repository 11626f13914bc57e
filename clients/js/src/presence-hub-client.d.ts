// Type declarations of presence-hub-client (hand-written); the protocol's
// message types are generated into ./protocol.d.ts from protocol/schemas/.
// What the wire defines (actions, modes, statuses, results, channels) is
// derived from the generated types here, never repeated, so a schema change
// reaches the API through `npm run gen-types` (test/types.test.mjs fails
// until it is run, and checks that no generated union is copied here).

import type {
  AgentRecord,
  ChannelCounters,
  ChannelRef,
  ClientCommand,
  ClientHello,
  ClientHistory,
  ClientSearch,
  ClientSetStatus,
  ClientSetUnassignedAccess,
  ClientSubscribe,
  ClientUpdateSettings,
  MonitorMode,
  Role,
  Settings,
  ServerCommand,
  ServerCommandEnded,
  ServerWelcome,
  ServerReplyOk,
  ServerSettings,
  ServerSignedOut,
  ServerSnapshot,
  ServerQueueStats,
  ServerQueueStatsEntry,
  ServerDraining,
  ServerMessage,
  ErrorBody,
  IdempotencyKey,
} from './protocol.js';

export * from './protocol.js';

/** A protocol error code (`outcome_unknown` also from the library), or the library's own `disconnected` / `closed`. */
export type ErrorCode = ErrorBody['code'] | 'disconnected' | 'closed' | (string & {});

export class HubError extends Error {
  constructor(code: ErrorCode, message?: string);
  readonly code: ErrorCode;
  /** Set on the error `start()` rejects with: the close code that stopped the client. */
  closeCode?: number | string;
  /**
   * Set on every error of a change: the key it was sent under. After
   * `outcome_unknown`, the same change with `{idempotencyKey}` within 10
   * minutes of the first attempt is applied at most once.
   */
  idempotencyKey?: IdempotencyKey;
  /** With the library's `outcome_unknown`: the last attempt's error. */
  cause?: unknown;
}

export type ConnectionState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface StatusEvent {
  state: Exclude<ConnectionState, 'idle'>;
  /** With `reconnecting`: when the next attempt starts. */
  retryInMs?: number;
  /** With `reconnecting` and `stopped`: the close code (or `token`/`connect`) and why. */
  reason?: { code: number | string; message: string };
}

export type TokenSource = string | (() => string | Promise<string>);

export interface ConnectionOptions {
  /** `ws://host/v1/ws`, or several tried in turn; default in a page: its origin's `/v1/ws`. */
  url?: string | string[];
  /** A token, or a provider called again before every (re)connect. */
  token: TokenSource;
  /** A WebSocket constructor for runtimes without a global one. */
  WebSocket?: new (url: string) => WebSocket;
  /** Full-jitter backoff: retry n waits random(0, min(maxMs, initialMs·2ⁿ)). Defaults 1000 / 30000. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * How long a change whose outcome is unknown (`outcome_unknown`, or the
   * connection lost before the reply) is repeated under its idempotency key,
   * from its first sending; then it rejects with `outcome_unknown`. Default
   * 120 000, at most `MAX_RETRY_UNKNOWN_MS` (the hub's 10-minute key window
   * minus a margin); 0 never repeats.
   */
  retryUnknownForMs?: number;
}

/**
 * The last argument of every request that changes state: it is sent under
 * `idempotencyKey` (default: a new random key) and repeated under it until
 * its outcome is known (README, "What each error guarantees").
 */
export interface ChangeOptions {
  idempotencyKey?: IdempotencyKey;
}

export interface CommonEvents {
  status: StatusEvent;
  welcome: ServerWelcome;
  /** An `error` message (a request without id that failed). */
  error: HubError;
  draining: ServerDraining;
  disconnected: { code: number; reason: string };
  /** Any message the library does not handle itself. */
  message: ServerMessage | { type: string; [key: string]: unknown };
}

declare class Connection<Events extends CommonEvents> {
  state: ConnectionState;
  welcome: ServerWelcome | null;
  stopReason: { code: number | string; message: string } | null;
  readonly live: boolean;
  on<K extends keyof Events>(name: K, fn: (value: Events[K]) => void): () => void;
  start(): Promise<ServerWelcome>;
  stop(): void;
}

export type Channel = ChannelRef | `${ChannelRef['kind']}:${string}`;

/** A supervisor's command to the device (the hub's `command` message, renamed). */
export interface Command {
  commandId: ServerCommand['command_id'];
  action: ServerCommand['action'];
  /** `listen` unless the supervisor asked another mode. */
  mode?: MonitorMode;
  supervisor: ServerCommand['supervisor'];
  /**
   * Monitor requests only: aborts (with the `CommandEnded` as its reason)
   * when the hub says the request ended; an answer after that is not sent.
   */
  signal?: AbortSignal;
}

/** The hub's `command_ended`: a monitor request ended, and how. */
export interface CommandEnded {
  commandId: ServerCommandEnded['command_id'];
  outcome: ServerCommandEnded['outcome'];
}

export type CommandAnswer = boolean | { ok: boolean; reason?: string };

export interface AgentEvents extends CommonEvents {
  state: AgentRecord;
  command: Command;
  command_ended: CommandEnded;
  signed_out: Pick<ServerSignedOut, 'by' | 'reason'>;
}

export type DeviceHello = NonNullable<ClientHello['device']>;

export interface AgentOptions extends ConnectionOptions {
  device: DeviceHello;
  onCommand?: (command: Command) => CommandAnswer | Promise<CommandAnswer>;
}

export interface AgentResult {
  agent: AgentRecord;
}

export class AgentClient extends Connection<AgentEvents> {
  constructor(options: AgentOptions);
  readonly device: DeviceHello & { kind: string };
  record: AgentRecord | null;
  onCommand: ((command: Command) => CommandAnswer | Promise<CommandAnswer>) | null;
  setStatus(status: ClientSetStatus['status'], reason?: string, options?: ChangeOptions): Promise<AgentResult>;
  pause(reason: string, options?: ChangeOptions): Promise<AgentResult>;
  unpause(options?: ChangeOptions): Promise<AgentResult>;
  interactionStart(interactionId: string, channel: Channel, options?: ChangeOptions): Promise<AgentResult>;
  interactionEnd(interactionId: string, options?: ChangeOptions): Promise<AgentResult>;
  endWrapUp(options?: ChangeOptions): Promise<AgentResult>;
  connect(channel: Channel, options?: ChangeOptions): Promise<AgentResult>;
  disconnect(channel: Channel, options?: ChangeOptions): Promise<AgentResult>;
}

/** A channel of the view: as the snapshot lists it, with the counters of the latest `channel` message (PROTOCOL.md §10.4). */
export type ChannelView = ChannelCounters;

export interface SupervisorEvents extends CommonEvents {
  snapshot: Pick<ServerSnapshot, 'resumed' | 'seq'>;
  agent: AgentRecord;
  agent_removed: string;
  channel: ChannelView;
  /** A channel in view was deleted from the directory (PROTOCOL.md §7.1). */
  channel_removed: Channel;
  /** A channel's queue statistics, newest, or marked stale (PROTOCOL.md §10.7). */
  queue_stats: ServerQueueStatsEntry;
  settings: Settings;
}

export interface SupervisorOptions extends ConnectionOptions {
  role?: Exclude<Role, 'agent'>;
}

/** A subscribe scope; channels may also be written "kind:id". */
export type Scope = Extract<ClientSubscribe['scope'], { all: true }> | { channels: Channel[] };

/** Every action of a supervisor's `command` (PROTOCOL.md §6). */
export type CommandAction = ClientCommand['action'];

type ReplyResult = ServerReplyOk['result'];

/** The result of `search`: the users found, and how many match in all. */
export type SearchResult = Extract<ReplyResult, { total: number }>;

/** The result of `history`: an agent's changes, oldest first. */
export type HistoryResult = Extract<ReplyResult, { changes: unknown }>;

export class PresenceStore {
  agents: Map<string, AgentRecord>;
  channels: Map<string, ChannelView>;
  /** "kind:id" → the channel's queue statistics (PROTOCOL.md §10.7). */
  queueStats: Map<string, ServerQueueStatsEntry>;
  settings: Settings | null;
  seq: number | null;
  epoch: string | null;
  /** The `since_seq` a resume uses: every change up to it was delivered (≤ seq). */
  resumeSeq: number | null;
  noteDelta(key: string | symbol, version: number): void;
  applySnapshot(snapshot: ServerSnapshot): string[];
  applyAgent(record: AgentRecord): boolean;
  removeAgent(agentId: string, version: number): boolean;
  applyChannel(channel: ChannelView): ChannelView | null;
  removeChannel(channel: Channel): boolean;
  applyQueueStats(message: ServerQueueStats): ServerQueueStatsEntry | null;
  applySettings(message: Pick<ServerSettings, 'seq' | 'settings'>): void;
}

export function channelKey(channel: { kind: string; id: string }): string;

export class SupervisorClient extends Connection<SupervisorEvents> {
  constructor(options: SupervisorOptions);
  readonly role: Role;
  readonly store: PresenceStore;
  readonly agents: Map<string, AgentRecord>;
  readonly channels: Map<string, ChannelView>;
  readonly queueStats: Map<string, ServerQueueStatsEntry>;
  readonly settings: Settings | null;
  readonly seq: number | null;
  readonly epoch: string | null;
  subscribe(scope: Scope): Promise<Record<string, never>>;
  search(query?: string, options?: { role?: ClientSearch['role']; limit?: ClientSearch['limit'] }): Promise<SearchResult>;
  history(
    agentId: string,
    options?: { sinceMs?: ClientHistory['since_ms']; limit?: ClientHistory['limit'] },
  ): Promise<HistoryResult>;
  /** `idempotencyKey` is ignored for `monitor` and `sign_out`: they are sent once, without a key. */
  command(
    action: CommandAction,
    agentId: string,
    params?: { channel?: Channel; reason?: ClientCommand['reason']; mode?: ClientCommand['mode'] } & ChangeOptions,
  ): Promise<AgentResult>;
  pause(agentId: string, reason: string, options?: ChangeOptions): Promise<AgentResult>;
  unpause(agentId: string, options?: ChangeOptions): Promise<AgentResult>;
  endWrapUp(agentId: string, options?: ChangeOptions): Promise<AgentResult>;
  connectAgent(agentId: string, channel: Channel, options?: ChangeOptions): Promise<AgentResult>;
  disconnectAgent(agentId: string, channel: Channel, options?: ChangeOptions): Promise<AgentResult>;
  disconnectUnassigned(agentId: string, options?: ChangeOptions): Promise<AgentResult>;
  monitor(agentId: string, mode?: MonitorMode): Promise<AgentResult>;
  stopMonitor(agentId: string, options?: ChangeOptions): Promise<AgentResult>;
  signOut(agentId: string, reason?: string): Promise<AgentResult>;
  updateSettings(partial: ClientUpdateSettings['settings'], options?: ChangeOptions): Promise<{ settings: Settings }>;
  setUnassignedAccess(
    agentId: string,
    allowed: ClientSetUnassignedAccess['allowed'],
    options?: ChangeOptions,
  ): Promise<AgentResult>;
  assign(agentId: string, channel: Channel, options?: ChangeOptions): Promise<AgentResult>;
  unassign(agentId: string, channel: Channel, options?: ChangeOptions): Promise<AgentResult>;
}

export const STOP_CODES: Map<number, string>;
export function describeClose(code: number): string;
export const DEFAULT_BACKOFF: { readonly initialMs: number; readonly maxMs: number };
/** A new idempotency key: crypto.randomUUID(), else a UUID from crypto.getRandomValues, else Math.random and a counter. */
export function newIdempotencyKey(): IdempotencyKey;
/** How long the hub remembers an idempotency key (10 minutes). */
export const IDEMPOTENCY_WINDOW_MS: number;
/** The default `retryUnknownForMs`. */
export const DEFAULT_RETRY_UNKNOWN_MS: number;
/** The largest `retryUnknownForMs` (larger values are capped to it). */
export const MAX_RETRY_UNKNOWN_MS: number;
export function backoffDelay(
  attempt: number,
  options?: { initialMs: number; maxMs: number },
  random?: () => number,
): number;
