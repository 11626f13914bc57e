// Type declarations of presence-hub-client (hand-written); the protocol's
// message types are generated into ./protocol.d.ts from protocol/schemas/.

import type {
  AgentRecord,
  Actor,
  ChannelRef,
  Role,
  Settings,
  ServerWelcome,
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

export interface Command {
  commandId: string;
  action: 'monitor' | 'stop_monitor' | (string & {});
  /** `listen` unless the supervisor asked another mode. */
  mode?: 'listen' | 'whisper' | 'barge' | (string & {});
  supervisor: { id: string; name: string };
}

export type CommandAnswer = boolean | { ok: boolean; reason?: string };

export interface AgentEvents extends CommonEvents {
  state: AgentRecord;
  command: Command;
  signed_out: { by: Actor; reason: string | null };
}

export interface AgentOptions extends ConnectionOptions {
  device: { id: string; kind?: string; label?: string };
  onCommand?: (command: Command) => CommandAnswer | Promise<CommandAnswer>;
}

export interface AgentResult {
  agent: AgentRecord;
}

export class AgentClient extends Connection<AgentEvents> {
  constructor(options: AgentOptions);
  readonly device: { id: string; kind: string; label?: string };
  record: AgentRecord | null;
  onCommand: ((command: Command) => CommandAnswer | Promise<CommandAnswer>) | null;
  setStatus(status: 'available' | 'paused', reason?: string): Promise<AgentResult>;
  pause(reason: string): Promise<AgentResult>;
  unpause(): Promise<AgentResult>;
  interactionStart(interactionId: string, channel: Channel): Promise<AgentResult>;
  interactionEnd(interactionId: string): Promise<AgentResult>;
  endWrapUp(): Promise<AgentResult>;
  connect(channel: Channel): Promise<AgentResult>;
  disconnect(channel: Channel): Promise<AgentResult>;
}

/** A channel of the view: the snapshot's `{kind, id, name}` plus PROTOCOL.md §10.4 counters when the hub sends them. */
export interface ChannelView {
  kind: ChannelRef['kind'];
  id: string;
  name: string;
  counts?: { available: number; busy: number; wrap_up: number; paused: number; offline: number };
  connected?: number;
  lingering?: number;
  longest_available_since_ms?: number | null;
  [key: string]: unknown;
}

export interface SupervisorEvents extends CommonEvents {
  snapshot: { resumed: boolean; seq: number };
  agent: AgentRecord;
  agent_removed: string;
  channel: ChannelView;
  settings: Settings;
}

export interface SupervisorOptions extends ConnectionOptions {
  role?: 'supervisor' | 'admin';
}

export type Scope = { all: true } | { channels: Channel[] };

export type CommandAction =
  | 'connect'
  | 'disconnect'
  | 'pause'
  | 'unpause'
  | 'end_wrap_up'
  | 'disconnect_unassigned'
  | 'monitor'
  | 'stop_monitor'
  | 'sign_out'
  | (string & {});

export interface SearchResult {
  agents: Array<Pick<AgentRecord, 'id' | 'name' | 'roles' | 'presence' | 'status' | 'devices'>>;
  total?: number;
}

export interface HistoryResult {
  changes: Array<{
    version: number;
    at_ms: number;
    event: string;
    presence: AgentRecord['presence'];
    status: AgentRecord['status'];
    pause_reason: string | null;
    by: Actor;
  }>;
}

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
  applySettings(message: { seq: number; settings: Settings }): void;
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
  search(query?: string, options?: { role?: Role; limit?: number }): Promise<SearchResult>;
  history(agentId: string, options?: { sinceMs?: number; limit?: number }): Promise<HistoryResult>;
  command(
    action: CommandAction,
    agentId: string,
    params?: { channel?: Channel; reason?: string; mode?: string },
  ): Promise<AgentResult>;
  pause(agentId: string, reason: string): Promise<AgentResult>;
  unpause(agentId: string): Promise<AgentResult>;
  endWrapUp(agentId: string): Promise<AgentResult>;
  connectAgent(agentId: string, channel: Channel): Promise<AgentResult>;
  disconnectAgent(agentId: string, channel: Channel): Promise<AgentResult>;
  disconnectUnassigned(agentId: string): Promise<AgentResult>;
  monitor(agentId: string, mode?: 'listen' | 'whisper' | 'barge'): Promise<AgentResult>;
  stopMonitor(agentId: string): Promise<AgentResult>;
  signOut(agentId: string, reason?: string): Promise<AgentResult>;
  updateSettings(partial: Partial<Settings> & Record<string, unknown>): Promise<{ settings: Settings }>;
  setUnassignedAccess(agentId: string, allowed: boolean | null): Promise<AgentResult>;
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
