/**
 * The HTTP server. Routes: `/graphql` (GraphQL over HTTP, and graphql-ws on upgrade),
 * the routes given (`/files`, `/archives`, `/uploads`), `GET /healthz` (the process
 * answers) and `GET /readyz` (the store answers).
 * Everything else is a JSON 404.
 *
 * Before any route: a request id (the caller's `X-Request-ID` when it is sane), the
 * `Host` check and, for websocket upgrades, the `Origin` check (`host-check.ts`), and
 * the connection caps. A connection beyond a cap is answered 503 as soon as it connects
 * and closed, without counting. Slow clients are cut off by Node's `headersTimeout`
 * (counted from the connection's start, so one that sends nothing is cut off too) and
 * `requestTimeout` with a 408; idle keep-alive connections by `keepAliveTimeout`.
 * Whenever the server answers and closes its side, the socket is destroyed once the
 * peer closes its own or after `CLOSE_LINGER_MS`: a peer that never closes would
 * otherwise keep a half-open socket, and its place under the caps, for ever.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULTS, type ResolvedConfig } from '../config.js';
import { coerceError } from '../errors.js';
import { GRAPHQL_PATH, GRAPHQL_STREAM_PATH, type GraphQLService } from '../graphql/service.js';
import type { Logger } from '../log.js';
import type { JobStore } from '../store/port.js';
import { createHostCheck } from './host-check.js';
import { sendJson } from './respond.js';

/** What the HTTP layer takes from `server.*`. */
export type HttpServerSettings = Pick<
  ResolvedConfig['server'],
  | 'publicUrl'
  | 'allowedHosts'
  | 'allowedOrigins'
  | 'maxConnections'
  | 'maxConnectionsPerIp'
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
>;

export interface HttpServerOptions {
  store: JobStore;
  logger: Logger;
  /** How long `close()` waits for open requests. */
  shutdownGraceMs: number;
  /** Serves /graphql when given. */
  graphql?: GraphQLService;
  /** Further routes, tried in order: each answers and returns true, or returns false to pass. */
  routes?: ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>)[];
  /** Host and origin checks, connection caps and timeouts; each defaults to `DEFAULTS.server`. */
  settings?: Partial<HttpServerSettings>;
}

/** A proxy's or client's request id is kept when it is this simple (it lands in logs and headers). */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/** The request's id: the caller's `X-Request-ID` when sane, else a new one. */
export function requestIdFor(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}

/** Routes a probe or load balancer calls by whatever name it likes; they reveal nothing. */
const PROBES = new Set(['/healthz', '/readyz']);

/**
 * How long a socket the server answered and closed its side of waits for the peer to
 * close its own before it is destroyed. Destroying at once could reset the connection
 * before the peer has read the answer (its request still unread on our side).
 */
const CLOSE_LINGER_MS = 1000;

/** Ends the socket with `text` and destroys it when the peer has closed too, or after the linger. */
function endAndClose(socket: Duplex, text: string): void {
  socket.end(text);
  const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function rawAnswer(socket: Duplex, status: number, reason: string, headers: Record<string, string>, body: unknown): void {
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${reason}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(text)}`,
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push('connection: close');
  endAndClose(socket, `${lines.join('\r\n')}\r\n\r\n${text}`);
}

export interface HttpServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting connections, waits up to the grace period, then closes what is left. */
  close(): Promise<void>;
  readonly server: Server;
}

/**
 * A refused upgrade's error listener. A function of its own, not a closure in the upgrade
 * handler: that closure would share the handler's scope and keep the upgrade request
 * alive for as long as the socket lives.
 */
function destroySocket(this: Duplex): void {
  this.destroy();
}

export function createHttpServer(options: HttpServerOptions): HttpServer {
  const { store, logger } = options;
  const settings: HttpServerSettings = { ...DEFAULTS.server, ...options.settings };
  const hosts = createHostCheck(settings);

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === GRAPHQL_PATH && options.graphql !== undefined) {
      await options.graphql.handle(req, res, requestId);
      return;
    }
    if (path === GRAPHQL_STREAM_PATH && options.graphql !== undefined) {
      // Event streams are long-lived reads like websockets: the same origin rule.
      if (!hosts.originAllowed(req.headers.origin, req.headers.host)) {
        sendJson(res, 403, {
          error: {
            code: 'ORIGIN_NOT_ALLOWED',
            message: `event streams for the origin ${req.headers.origin} are not allowed: only this server's own pages may open them (add trusted origins to server.allowedOrigins)`,
          },
        });
        return;
      }
      await options.graphql.stream(req, res, requestId);
      return;
    }
    for (const route of options.routes ?? []) {
      if (await route(req, res)) return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && (path === '/healthz' || path === '/readyz')) {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed on ${path}` } });
      return;
    }
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      try {
        await store.ping();
        sendJson(res, 200, { status: 'ready', store: store.driver });
      } catch (error) {
        logger.warn('readiness check failed', { error: coerceError(error) });
        sendJson(res, 503, {
          status: 'unavailable',
          store: store.driver,
          error: { code: 'STORE_UNAVAILABLE', message: 'the store does not answer' },
        });
      }
      return;
    }
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` } });
  }

  // Connection caps: every TCP connection (HTTP keep-alive or websocket) counts while it
  // is open. One over a cap is answered 503 as soon as it connects and closed; it never
  // counts, so a flood of refused connections cannot hold the caps.
  const perAddress = new Map<string, number>();
  let open = 0;
  /** Sockets answered 503 at connect: whatever request they send later is not served. */
  const refusedSockets = new WeakSet<Duplex>();

  /** Why this request is refused before routing, or null. */
  function refusal(req: IncomingMessage): { status: number; reason: string; code: string; message: string } | null {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (!PROBES.has(path) && !hosts.hostAllowed(req.headers.host)) {
      return {
        status: 421,
        reason: 'Misdirected Request',
        code: 'HOST_NOT_ALLOWED',
        message: `this server does not answer to the host "${req.headers.host}": use its address or publicUrl, or add the name to server.allowedHosts`,
      };
    }
    return null;
  }

  const server = createServer(
    {
      headersTimeout: settings.headersTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default, longer than short timeouts).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(settings.headersTimeoutMs / 4))),
    },
    (req, res) => {
      if (refusedSockets.has(req.socket)) {
        // Already answered 503 and closing: read and drop what the client sent meanwhile.
        req.resume();
        return;
      }
      // A caller's own id (a proxy's) is kept, so one id follows the request through every log.
      const requestId = requestIdFor(req);
      res.setHeader('x-request-id', requestId);
      const started = performance.now();
      res.on('finish', () => {
        logger.debug('http request', {
          requestId,
          method: req.method,
          path: (req.url ?? '/').split('?')[0],
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
        });
      });
      const refused = refusal(req);
      if (refused !== null) {
        res.setHeader('connection', 'close');
        sendJson(res, refused.status, { error: { code: refused.code, message: refused.message } });
        return;
      }
      handle(req, res, requestId).catch((error: unknown) => {
        logger.error('request failed', { requestId, error: coerceError(error), method: req.method, path: (req.url ?? '/').split('?')[0] });
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
        else res.destroy();
      });
    },
  );

  // Idle keep-alive connections: Node destroys them after this (its default is 5 s).
  server.keepAliveTimeout = settings.keepAliveTimeoutMs;

  /**
   * A counted connection closed. One listener for all of them (close fires once), so
   * that an open connection holds no closure of its own; with a per-address cap, the
   * address is the one read at connect, which the socket keeps.
   */
  function connectionClosed(this: Socket): void {
    open--;
    if (!perIpCap) return;
    const address = this.remoteAddress ?? 'unknown';
    const left = (perAddress.get(address) ?? 1) - 1;
    if (left === 0) perAddress.delete(address);
    else perAddress.set(address, left);
  }

  // Reading a socket's remote address makes Node keep an object of it on the socket
  // (about 90 bytes per connection): only done when a per-address cap needs it.
  const perIpCap = settings.maxConnectionsPerIp > 0;

  server.on('connection', (socket: Socket) => {
    const address = perIpCap ? (socket.remoteAddress ?? 'unknown') : null;
    const fromAddress = address === null ? 0 : (perAddress.get(address) ?? 0) + 1;
    const cap =
      settings.maxConnections > 0 && open + 1 > settings.maxConnections
        ? `the server holds its maximum of ${settings.maxConnections} open connections (server.maxConnections); try again later`
        : perIpCap && fromAddress > settings.maxConnectionsPerIp
          ? `${address} holds the maximum of ${settings.maxConnectionsPerIp} open connections per client address (server.maxConnectionsPerIp); close some first`
          : null;
    if (cap !== null) {
      // Answered before the client says anything: a silent client is not waited for.
      refusedSockets.add(socket);
      logger.debug('connection refused', { address: address ?? socket.remoteAddress, open, fromAddress: Math.max(0, fromAddress - 1) });
      rawAnswer(socket, 503, 'Service Unavailable', { 'retry-after': '1' }, { error: { code: 'TOO_MANY_CONNECTIONS', message: cap } });
      return;
    }
    // Without a cap nothing is counted, and a connection has no close listener of ours.
    if (settings.maxConnections <= 0 && !perIpCap) return;
    if (address !== null) perAddress.set(address, fromAddress);
    open++;
    socket.on('close', connectionClosed);
  });

  // Requests that never finish arriving, oversized headers and garbage: a clear status, then close.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, reason, code, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            'Request Timeout',
            'REQUEST_TIMEOUT',
            `the request did not arrive in time (headers within server.headersTimeoutMs = ${settings.headersTimeoutMs} ms, the whole request within server.requestTimeoutMs = ${settings.requestTimeoutMs} ms)`,
          ]
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'the request headers are too large']
          : [400, 'Bad Request', 'BAD_REQUEST', 'the request is not valid HTTP'];
    rawAnswer(socket, status, reason, {}, { error: { code, message } });
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Already answered 503 at connect and closing.
    if (refusedSockets.has(socket)) {
      socket.on('error', destroySocket);
      return;
    }
    const requestId = requestIdFor(req);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const refuse = (status: number, reason: string, code: string, message: string) => {
      socket.on('error', destroySocket);
      logger.info('websocket upgrade refused', { requestId, status, code, origin: req.headers.origin, host: req.headers.host });
      rawAnswer(
        socket,
        status,
        reason,
        { 'x-request-id': requestId, ...(status === 503 ? { 'retry-after': '1' } : {}) },
        { error: { code, message } },
      );
    };
    const refused = refusal(req);
    if (refused !== null) return refuse(refused.status, refused.reason, refused.code, refused.message);
    if (!hosts.originAllowed(req.headers.origin, req.headers.host)) {
      return refuse(
        403,
        'Forbidden',
        'ORIGIN_NOT_ALLOWED',
        `websockets from the origin ${req.headers.origin} are not allowed: only this server's own pages may open them (add trusted origins to server.allowedOrigins)`,
      );
    }
    if (path !== GRAPHQL_PATH || options.graphql === undefined) return refuse(404, 'Not Found', 'NOT_FOUND', `no websocket at ${path}`);
    // `ws` listens for the socket's errors from here on (and destroys it on one). A
    // listener of ours besides would make each idle websocket hold an array of two.
    options.graphql.upgrade(req, socket, head, requestId);
  });

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          hosts.listening(host, address.port);
          resolve(address);
        });
      });
    },
    async close() {
      // Websocket clients first (1001 Going Away), so they reconnect elsewhere at once.
      await options.graphql?.close();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), options.shutdownGraceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
