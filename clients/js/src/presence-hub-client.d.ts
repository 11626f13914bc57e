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
  ServerWelcome,
  ServerReplyOk,
  ServerSettings,
  ServerSignedOut,
  ServerSnapshot,
  ServerDraining,
  ServerMessage,
  ErrorBody,
} from './protocol.js';

export * from './protocol.js';

/** A protocol error code, or the library's own `disconnected` / `closed`. */
export type ErrorCode = ErrorBody['code'] | 'disconnected' | 'closed' | (string & {});

export class HubError extends Error {
  constructor(code: ErrorCode, message?: string);
  readonly code: ErrorCode;
  /** Set on the error `start()` rejects with: the close code that stopped the client. */
  closeCode?: number | string;
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
}

export type CommandAnswer = boolean | { ok: boolean; reason?: string };

export interface AgentEvents extends CommonEvents {
  state: AgentRecord;
  command: Command;
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
  setStatus(status: ClientSetStatus['status'], reason?: string): Promise<AgentResult>;
  pause(reason: string): Promise<AgentResult>;
  unpause(): Promise<AgentResult>;
  interactionStart(interactionId: string, channel: Channel): Promise<AgentResult>;
  interactionEnd(interactionId: string): Promise<AgentResult>;
  endWrapUp(): Promise<AgentResult>;
  connect(channel: Channel): Promise<AgentResult>;
  disconnect(channel: Channel): Promise<AgentResult>;
}

/** A channel of the view: as the snapshot lists it, with the counters of the latest `channel` message (PROTOCOL.md §10.4). */
export type ChannelView = ChannelCounters;

export interface SupervisorEvents extends CommonEvents {
  snapshot: Pick<ServerSnapshot, 'resumed' | 'seq'>;
  agent: AgentRecord;
  agent_removed: string;
  channel: ChannelView;
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
  applySettings(message: Pick<ServerSettings, 'seq' | 'settings'>): void;
}

export function channelKey(channel: { kind: string; id: string }): string;

export class SupervisorClient extends Connection<SupervisorEvents> {
  constructor(options: SupervisorOptions);
  readonly role: Role;
  readonly store: PresenceStore;
  readonly agents: Map<string, AgentRecord>;
  readonly channels: Map<string, ChannelView>;
  readonly settings: Settings | null;
  readonly seq: number | null;
  readonly epoch: string | null;
  subscribe(scope: Scope): Promise<Record<string, never>>;
  search(query?: string, options?: { role?: ClientSearch['role']; limit?: ClientSearch['limit'] }): Promise<SearchResult>;
  history(
    agentId: string,
    options?: { sinceMs?: ClientHistory['since_ms']; limit?: ClientHistory['limit'] },
  ): Promise<HistoryResult>;
  command(
    action: CommandAction,
    agentId: string,
    params?: { channel?: Channel; reason?: ClientCommand['reason']; mode?: ClientCommand['mode'] },
  ): Promise<AgentResult>;
  pause(agentId: string, reason: string): Promise<AgentResult>;
  unpause(agentId: string): Promise<AgentResult>;
  endWrapUp(agentId: string): Promise<AgentResult>;
  connectAgent(agentId: string, channel: Channel): Promise<AgentResult>;
  disconnectAgent(agentId: string, channel: Channel): Promise<AgentResult>;
  disconnectUnassigned(agentId: string): Promise<AgentResult>;
  monitor(agentId: string, mode?: MonitorMode): Promise<AgentResult>;
  stopMonitor(agentId: string): Promise<AgentResult>;
  signOut(agentId: string, reason?: string): Promise<AgentResult>;
  updateSettings(partial: ClientUpdateSettings['settings']): Promise<{ settings: Settings }>;
  setUnassignedAccess(agentId: string, allowed: ClientSetUnassignedAccess['allowed']): Promise<AgentResult>;
  assign(agentId: string, channel: Channel): Promise<AgentResult>;
  unassign(agentId: string, channel: Channel): Promise<AgentResult>;
}

export const STOP_CODES: Map<number, string>;
export function describeClose(code: number): string;
export const DEFAULT_BACKOFF: { readonly initialMs: number; readonly maxMs: number };
export function backoffDelay(
  attempt: number,
  options?: { initialMs: number; maxMs: number },
  random?: () => number,
): number;
