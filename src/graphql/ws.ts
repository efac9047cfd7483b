/**
 * graphql-ws on a `ws` server: the library's transport-free core (`makeServer`) with
 * a small adapter of our own, after graphql-ws's `use/ws`. Ours differs where many idle
 * subscribers make it count: it keeps only the upgrade request's headers, and only
 * until the connection is authenticated (the bundled adapter holds the whole request
 * for the connection's life), and it sends without allocating a promise per message.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocketServer } from 'ws';
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

export function serveGraphQLWs(
  wss: WebSocketServer,
  options: ServerOptions<Record<string, unknown> | undefined, ConnectionExtra>,
  settings: { keepAliveMs: number; logger: Logger; newRequestId: () => string },
): GraphQLWsServer {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  const internal = (socket: { close(code: number, reason: string): void }, error: unknown) => {
    settings.logger.error('websocket connection failed', { error: coerceError(error) });
    socket.close(CloseCode.InternalServerError, 'Internal server error');
  };

  wss.on('connection', (socket, request) => {
    socket.once('error', (error) => internal(socket, error));
    let alive = true;
    const ping =
      settings.keepAliveMs > 0
        ? setInterval(() => {
            // A peer that did not answer the previous ping is gone.
            if (!alive) return socket.terminate();
            alive = false;
            socket.ping();
          }, settings.keepAliveMs)
        : null;
    socket.on('pong', () => {
      alive = true;
    });
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) => {
          if (socket.readyState === socket.OPEN) socket.send(data);
        },
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data) => {
            handle(String(data)).catch((error: unknown) => internal(socket, error));
          }),
      },
      { headers: request.headers, principal: null, requestId: settings.newRequestId() },
    );
    socket.once('close', (code, reason) => {
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
