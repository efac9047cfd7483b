/**
 * graphql-ws on a `ws` server: the library's transport-free core (`makeServer`) with
 * a small adapter of our own, after graphql-ws's `use/ws`. Ours differs where many idle
 * subscribers make it count: it keeps only the upgrade request's headers, and only
 * until the connection is authenticated (the bundled adapter holds the whole request
 * for the connection's life), and it sends without allocating a promise per message.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { CloseCode, type WebSocket as GraphQLWsSocket, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Principal } from '../domain/types.js';
import { coerceError } from '../errors.js';
import type { Logger } from '../log.js';

/** What a connection carries besides the socket. */
export interface ConnectionExtra {
  /** The upgrade request's headers, until `onConnect` has used them. */
  headers: IncomingHttpHeaders | null;
  principal: Principal | null;
  requestId: string;
}

export interface GraphQLWsServer {
  /** Closes every connection with 1001 Going Away and the server. */
  dispose(): Promise<void>;
}

interface Closable {
  close(code: number, reason: string): void;
}

/**
 * The socket as graphql-ws's `makeServer` sees it. A class, so that an idle connection
 * holds one small object rather than a closure per method.
 */
class Transport implements GraphQLWsSocket {
  readonly protocol: string;

  constructor(
    private readonly socket: WebSocket,
    private readonly internal: (socket: Closable, error: unknown) => void,
  ) {
    this.protocol = socket.protocol;
  }

  /** Messages held while the socket is congested (see `Backlog`); null while it keeps up. */
  private backlog: Backlog | null = null;

  send(data: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.backlog === null && this.socket.bufferedAmount < SLOW_CONSUMER.highWaterBytes) {
      this.socket.send(data);
      return;
    }
    this.backlog ??= new Backlog(this.socket, () => {
      this.backlog = null;
    });
    this.backlog.hold(data);
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  onMessage(handle: (data: string) => Promise<void>): void {
    this.socket.on('message', (data) => {
      const text = String(data);
      let message: unknown = text;
      try {
        message = JSON.parse(text);
      } catch {
        // Left as text: graphql-ws answers it with 4400 Bad Request.
      }
      // graphql-ws parses text itself but takes an already parsed message as it is
      // (parseMessage); its handler keeps what it was given for the subscription's life,
      // and the parsed message is kept anyway, so this lets the raw text go.
      handle(message as string).catch((error: unknown) => this.internal(this.socket, error));
    });
  }
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

  constructor(
    private readonly socket: WebSocket,
    private readonly done: () => void,
  ) {
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

  private stop(): void {
    clearInterval(this.timer);
    this.done();
  }
}

export function serveGraphQLWs(
  wss: WebSocketServer,
  options: ServerOptions<Record<string, unknown> | undefined, ConnectionExtra>,
  settings: { keepAliveMs: number; logger: Logger; requestIdOf: (request: IncomingMessage) => string },
): GraphQLWsServer {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  const internal = (socket: Closable, error: unknown) => {
    settings.logger.error('websocket connection failed', { error: coerceError(error) });
    socket.close(CloseCode.InternalServerError, 'Internal server error');
  };

  wss.on('connection', (socket, request) => {
    // `on`, not `once`: a once-wrapper costs a few hundred bytes per idle connection, and
    // 'close' fires once anyway; a second 'error' only closes a closed socket again.
    socket.on('error', (error) => internal(socket, error));
    let ping: NodeJS.Timeout | null = null;
    if (settings.keepAliveMs > 0) {
      let alive = true;
      ping = setInterval(() => {
        // A peer that did not answer the previous ping is gone.
        if (!alive) return socket.terminate();
        alive = false;
        socket.ping();
      }, settings.keepAliveMs);
      socket.on('pong', () => {
        alive = true;
      });
    }
    const closed = server.opened(new Transport(socket, internal), {
      headers: request.headers,
      principal: null,
      requestId: settings.requestIdOf(request),
    });
    socket.on('close', (code, reason) => {
      if (ping !== null) clearInterval(ping);
      void closed(code, String(reason));
    });
  });

  return {
    async dispose() {
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners('connection');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
