/**
 * graphql-ws on a `ws` server: our graphql-transport-ws core (`ws-protocol.ts`) behind
 * a small `ws` adapter, after graphql-ws's `use/ws`. Built for many idle subscribers: a
 * socket is one `GraphQLSocket` (a `ws` WebSocket with a few fields) and one
 * `Connection`; its listeners are shared functions that find their state through
 * `this`, one timer pings every socket, the upgrade request is not kept (only its
 * headers, until `onConnect` has authenticated the connection), and messages are sent
 * without a promise each. A slow reader's messages are held (see SLOW_CONSUMER).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { handleProtocols } from 'graphql-ws';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { Principal } from '../domain/types.js';
import { coerceError } from '../errors.js';
import type { Logger } from '../log.js';
import { Connection, type ProtocolOptions, type ProtocolSocket } from './ws-protocol.js';

/** What the hooks keep about a connection (fields of its socket: no object of its own). */
export interface ConnectionExtra {
  /** The upgrade request's headers, until `onConnect` has used them. */
  headers: IncomingHttpHeaders | null;
  principal: Principal | null;
  requestId: string;
}

export type GraphQLWsConnection = Connection<ConnectionExtra>;

export interface GraphQLWsServer {
  /** Takes over a websocket upgrade; `requestId` is the HTTP layer's id of the request. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string): void;
  /** Closes every connection with 1001 Going Away and the server. */
  dispose(): Promise<void>;
}

/**
 * Slow consumers. A socket that does not read fast enough (a phone on a bad network, a
 * stalled tab) must neither grow the server's memory without bound nor lose a job's
 * final state. Once more than `highWaterBytes` wait in its send buffer, its messages are
 * held instead of sent, and a state message replaces the held one it supersedes: the
 * same subscription's previous `next` for `jobUpdated` and `batchUpdated`, and for
 * `jobEvents`/`deliveryUpdated` the previous `next` about the same job or delivery.
 * Log lines (`jobLogs`), errors and `complete` are never replaced, so the last state
 * before `complete` always arrives. When the buffer has drained below `lowWaterBytes`
 * the held messages go out in order. A socket holding more than `maxHeld` messages has
 * fallen too far behind: it is closed with 1013 (try again later), and its client
 * resumes with its last cursor, missing nothing.
 */
export const SLOW_CONSUMER = { highWaterBytes: 1024 * 1024, lowWaterBytes: 256 * 1024, maxHeld: 10_000, checkMs: 25 };

/** Subscription fields whose messages carry state (a newer one supersedes an older one), by what keys them. */
const STATE_FIELDS: Record<string, string | null> = {
  jobUpdated: null,
  batchUpdated: null,
  jobEvents: 'jobId',
  deliveryUpdated: 'deliveryId',
};

/** What a held message may be replaced by: its subscription and, where the field has one, its job or delivery; null: never. */
function supersedeKey(data: string): string | null {
  let message: { id?: unknown; type?: unknown; payload?: { data?: Record<string, unknown> | null } };
  try {
    message = JSON.parse(data) as typeof message;
  } catch {
    return null;
  }
  if (message.type !== 'next' || typeof message.id !== 'string') return null;
  const data$ = message.payload?.data;
  if (data$ === null || data$ === undefined) return null;
  const [field, value] = Object.entries(data$)[0] ?? [];
  if (field === undefined || !(field in STATE_FIELDS)) return null;
  const by = STATE_FIELDS[field];
  if (by === null || by === undefined) return message.id;
  const key = (value as Record<string, unknown> | null)?.[by];
  // Without the job's or delivery's id in the selection, one event cannot be told from another.
  return typeof key === 'string' ? `${message.id}\u0000${key}` : null;
}

/** The held messages of a congested socket (see SLOW_CONSUMER). */
class Backlog {
  /** In order of arrival; a superseded message's slot is emptied (null). */
  private held: (string | null)[] = [];
  /** Messages held and not superseded. */
  private count = 0;
  /** Slot of the latest held message per supersede key. */
  private readonly slots = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly socket: GraphQLSocket) {
    this.timer = setInterval(() => this.flush(), SLOW_CONSUMER.checkMs);
  }

  hold(data: string): void {
    const key = supersedeKey(data);
    if (key !== null) {
      const slot = this.slots.get(key);
      if (slot !== undefined) {
        this.held[slot] = null;
        this.count--;
      }
      this.slots.set(key, this.held.length);
    }
    this.held.push(data);
    this.count++;
    // Superseded slots are emptied, not removed: compact before they outnumber the held messages.
    if (this.held.length > 2 * this.count + 64) this.compact();
    if (this.count > SLOW_CONSUMER.maxHeld) {
      this.stop();
      this.socket.close(1013, 'Too far behind: reconnect and resume after your last cursor');
    }
  }

  private flush(): void {
    if (this.socket.readyState !== this.socket.OPEN) {
      this.stop();
      return;
    }
    let sent = 0;
    while (sent < this.held.length && this.socket.bufferedAmount < SLOW_CONSUMER.lowWaterBytes) {
      const message = this.held[sent];
      if (message !== null && message !== undefined) {
        this.socket.send(message);
        this.count--;
      }
      sent++;
    }
    if (sent === 0) return;
    if (sent === this.held.length) {
      this.stop();
      return;
    }
    this.held = this.held.slice(sent);
    // Slots moved with the messages still held.
    for (const [key, slot] of this.slots) {
      if (slot < sent) this.slots.delete(key);
      else this.slots.set(key, slot - sent);
    }
  }

  private compact(): void {
    this.held = this.held.filter((message) => message !== null);
    this.slots.clear();
    this.held.forEach((message, index) => {
      const key = message === null ? null : supersedeKey(message);
      if (key !== null) this.slots.set(key, index);
    });
  }

  /** Stops holding: the socket sends directly again (or has closed). */
  stop(): void {
    clearInterval(this.timer);
    if (this.socket.backlog === this) this.socket.backlog = null;
  }
}

/**
 * A `ws` socket that is also the protocol's transport. `ws` makes one per upgrade
 * (the server's `WebSocket` option); the fields are all an idle connection adds to it.
 */
class GraphQLSocket extends WebSocket implements ProtocolSocket, ConnectionExtra {
  server: SocketServer | null = null;
  connection: GraphQLWsConnection | null = null;
  /** Messages held while the socket is congested (see `Backlog`); null while it keeps up. */
  backlog: Backlog | null = null;
  /** Answered the last keep-alive ping. */
  alive = true;
  headers: IncomingHttpHeaders | null = null;
  principal: Principal | null = null;
  requestId = '';
  /** Pongs to the peer's pings not yet written (see `onSocketPing`). */
  pendingPongs = 0;
  /** Made at the peer's first ping: most peers never send one (browsers cannot). */
  pongWritten: (() => void) | null = null;

  // The peer's pings are answered here rather than by a listener, which would be one
  // more entry in every socket's table of listeners.
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'ping') onSocketPing.call(this, args[0] as Buffer);
    return super.emit(event, ...args);
  }

  sendMessage(data: string): void {
    if (this.readyState !== WebSocket.OPEN) return;
    if (this.backlog === null && this.bufferedAmount < SLOW_CONSUMER.highWaterBytes) {
      this.send(data);
      return;
    }
    this.backlog ??= new Backlog(this);
    this.backlog.hold(data);
  }
}

// Listeners shared by every socket: `ws` calls them with the socket as `this`, so a
// connection costs no closure per event.
function onSocketMessage(this: WebSocket, data: RawData): void {
  (this as GraphQLSocket).connection?.received(String(data));
  // `ws`'s receiver keeps the array its incoming chunks queue in, which grows to 17
  // slots with the first chunk and never shrinks (about 150 bytes per idle socket): an
  // empty one is replaced by a new empty array.
  const receiver = (this as unknown as { _receiver?: { _buffers?: unknown[] } })._receiver;
  if (receiver?._buffers?.length === 0) receiver._buffers = [];
}

/**
 * The peer's ping, answered as `ws`'s `autoPong` does (which would make a closure for
 * every socket up front): a peer with more than MAX_PENDING_PONGS pongs unwritten is
 * terminated.
 */
function onSocketPing(this: WebSocket, data: Buffer): void {
  const socket = this as GraphQLSocket;
  if (socket.readyState !== WebSocket.OPEN) return;
  if (socket.pendingPongs >= MAX_PENDING_PONGS) {
    socket.terminate();
    return;
  }
  socket.pendingPongs++;
  socket.pongWritten ??= () => {
    socket.pendingPongs--;
  };
  socket.pong(data, false, socket.pongWritten);
}

/** `ws`'s default `maxPendingAutoPongs`. */
const MAX_PENDING_PONGS = 60;

function onSocketClose(this: WebSocket): void {
  (this as GraphQLSocket).server?.closed(this as GraphQLSocket);
}

function onSocketError(this: WebSocket, error: Error): void {
  (this as GraphQLSocket).server?.failed(this as GraphQLSocket, error);
}

function onSocketPong(this: WebSocket): void {
  (this as GraphQLSocket).alive = true;
}

/** The adapter's state: one per server. */
class SocketServer {
  readonly wss: WebSocketServer;
  /** Open sockets (`ws`'s own tracking would add a closure per socket). */
  private readonly sockets = new Set<GraphQLSocket>();
  private readonly requestIds = new WeakMap<IncomingMessage, string>();
  private readonly keepAlive: NodeJS.Timeout | null = null;
  /** Set by `dispose` while it waits for the last socket to close. */
  private drained: (() => void) | null = null;
  private readonly options: ProtocolOptions<ConnectionExtra>;

  constructor(
    options: Omit<ProtocolOptions<ConnectionExtra>, 'onInternalError'>,
    private readonly settings: { maxPayload: number; keepAliveMs: number; logger: Logger },
  ) {
    this.options = {
      ...options,
      onInternalError: (connection, error) =>
        settings.logger.error('websocket connection failed', { requestId: connection.extra.requestId, error: coerceError(error) }),
    };
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: settings.maxPayload,
      handleProtocols,
      clientTracking: false,
      perMessageDeflate: false,
      // Answered by `onSocketPing`, without a closure per socket.
      autoPong: false,
      WebSocket: GraphQLSocket,
    });
    // The upgrade's answer carries its request id too, like every HTTP answer.
    this.wss.on('headers', (headers, req) => {
      const id = this.requestIds.get(req);
      if (id !== undefined) headers.push(`x-request-id: ${id}`);
    });
    if (settings.keepAliveMs > 0) {
      this.keepAlive = setInterval(() => this.ping(), settings.keepAliveMs);
      this.keepAlive.unref();
    }
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string): void {
    this.requestIds.set(req, requestId);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opened(ws as GraphQLSocket, req, requestId));
  }

  private opened(socket: GraphQLSocket, req: IncomingMessage, requestId: string): void {
    socket.server = this;
    this.sockets.add(socket);
    socket.on('error', onSocketError);
    socket.on('message', onSocketMessage);
    socket.on('close', onSocketClose);
    if (this.keepAlive !== null) socket.on('pong', onSocketPong);
    socket.headers = req.headers;
    // Kept for the connection's life: one flat string, not a rope of the id's parts.
    socket.requestId = Buffer.from(requestId, 'latin1').toString('latin1');
    socket.connection = new Connection(this.options, socket, socket as ConnectionExtra);
  }

  closed(socket: GraphQLSocket): void {
    this.sockets.delete(socket);
    socket.backlog?.stop();
    socket.connection?.closed();
    if (this.sockets.size === 0) this.drained?.();
  }

  failed(socket: GraphQLSocket, error: Error): void {
    this.settings.logger.error('websocket connection failed', { requestId: socket.connection?.extra.requestId, error: coerceError(error) });
    socket.close(4500, 'Internal server error');
  }

  /** Keep-alive: a socket that did not answer the previous ping is gone. */
  private ping(): void {
    for (const socket of this.sockets) {
      if (socket.readyState !== WebSocket.OPEN) continue;
      if (!socket.alive) {
        socket.terminate();
        continue;
      }
      socket.alive = false;
      socket.ping();
    }
  }

  async dispose(): Promise<void> {
    if (this.keepAlive !== null) clearInterval(this.keepAlive);
    // Closed once each peer has answered the close (or `ws` gave up waiting for it).
    const drained = new Promise<void>((resolve) => {
      this.drained = resolve;
    });
    for (const socket of this.sockets) socket.close(1001, 'Going away');
    if (this.sockets.size > 0) await drained;
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/**
 * Serves graphql-transport-ws: upgrades handed to `upgrade()` become connections run
 * by `options` (see ws-protocol.ts), pinged every `keepAliveMs` (0: never).
 */
export function serveGraphQLWs(
  options: Omit<ProtocolOptions<ConnectionExtra>, 'onInternalError'>,
  settings: { maxPayload: number; keepAliveMs: number; logger: Logger },
): GraphQLWsServer {
  const server = new SocketServer(options, settings);
  return {
    upgrade: (req, socket, head, requestId) => server.upgrade(req, socket, head, requestId),
    dispose: () => server.dispose(),
  };
}
