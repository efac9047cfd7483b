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

  send(data: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(data);
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
