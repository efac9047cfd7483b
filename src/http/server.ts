/**
 * The HTTP server. Routes: `/graphql` (GraphQL over HTTP, and graphql-ws on upgrade),
 * the routes given (`/files`, `/archives`, `/uploads`), `GET /healthz` (the process
 * answers) and `GET /readyz` (the store answers).
 * Everything else is a JSON 404.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { coerceError } from '../errors.js';
import { GRAPHQL_PATH, type GraphQLService } from '../graphql/service.js';
import type { Logger } from '../log.js';
import type { JobStore } from '../store/port.js';
import { sendJson } from './respond.js';

export interface HttpServerOptions {
  store: JobStore;
  logger: Logger;
  /** How long `close()` waits for open requests. */
  shutdownGraceMs: number;
  /** Serves /graphql when given. */
  graphql?: GraphQLService;
  /** Further routes, tried in order: each answers and returns true, or returns false to pass. */
  routes?: ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>)[];
}

export interface HttpServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting connections, waits up to the grace period, then closes what is left. */
  close(): Promise<void>;
  readonly server: Server;
}

export function createHttpServer(options: HttpServerOptions): HttpServer {
  const { store, logger } = options;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === GRAPHQL_PATH && options.graphql !== undefined) {
      await options.graphql.handle(req, res);
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

  const server = createServer((req, res) => {
    // A caller's own id (a proxy's) is kept, so one id follows the request through every log.
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
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
    handle(req, res).catch((error: unknown) => {
      logger.error('request failed', { requestId, error: coerceError(error), method: req.method, path: (req.url ?? '/').split('?')[0] });
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
      else res.destroy();
    });
  });

  options.graphql?.attach(server);

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
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
