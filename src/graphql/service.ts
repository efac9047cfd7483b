/**
 * The GraphQL endpoint: Apollo Server for queries and mutations over HTTP, graphql-ws
 * for subscriptions on the same path, both on the same schema, limits, error
 * formatting and authentication. Transport-free apart from Node's `http` request and
 * response; `http/server.ts` routes `/graphql` here.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, type GraphQLFormattedError, specifiedRules } from 'graphql';
import { WebSocketServer } from 'ws';
import type { ResolvedConfig } from '../config.js';
import type { Principal } from '../domain/types.js';
import { AppError, coerceError } from '../errors.js';
import { createLoaders, type GraphQLContext, type GraphQLServices } from './context.js';
import { formatError } from './errors.js';
import { queryLimitRules } from './limits.js';
import { createResolvers } from './resolvers/index.js';
import { buildSchema } from './schema.js';
import { createDocumentCache, createSharedSubscribe } from './shared-execution.js';
import { serveGraphQLWs } from './ws.js';

export const GRAPHQL_PATH = '/graphql';

export interface GraphQLServiceOptions {
  services: GraphQLServices;
  config: ResolvedConfig['graphql'];
}

export interface GraphQLService {
  /** Answers an HTTP request to /graphql. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Serves graphql-ws on the server's /graphql path. */
  attach(server: Server): void;
  /** Closes websockets (1001 Going Away) and stops Apollo. */
  close(): Promise<void>;
}

class BodyTooLargeError extends AppError {
  constructor(limit: number) {
    super('LIMIT_EXCEEDED', `the request body is larger than ${limit} bytes (graphql.maxRequestBytes)`, { limit });
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop keeping the body but let it drain, so the 413 answer reaches the client.
        req.off('data', onData);
        req.resume();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendErrors(res: ServerResponse, status: number, errors: GraphQLFormattedError[]): void {
  const body = JSON.stringify({ errors });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The code Apollo gives the same error over HTTP, so both transports agree. */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    path: error.path ?? null,
    originalError: error.originalError ?? null,
    extensions: { ...error.extensions, code },
  });
}

export async function createGraphQLService(options: GraphQLServiceOptions): Promise<GraphQLService> {
  const { services, config } = options;
  const { logger, store, authenticator } = services;
  const schema = buildSchema(createResolvers());
  const rules = queryLimitRules(config);

  // Apollo's formatError has no context argument: the request id travels beside the error.
  const requestIds = new WeakMap<object, string>();
  const requestIdOf = (error: unknown): string =>
    (typeof error === 'object' && error !== null ? requestIds.get(error) : undefined) ?? 'unknown';

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: config.introspection,
    csrfPrevention: true,
    validationRules: rules,
    includeStacktraceInErrorResponses: false,
    // The composition root owns SIGINT/SIGTERM: Apollo's own handlers (installed unless
    // NODE_ENV=test) would stop it behind our back and re-raise the signal, and the
    // process then never exits.
    stopOnTerminationSignals: false,
    // The landing page would load a sandbox from a CDN; the dashboard lives at /.
    plugins: [
      ApolloServerPluginLandingPageDisabled(),
      {
        // formatError gets no context: remember which request each error belongs to.
        async requestDidStart({ contextValue }) {
          return {
            async didEncounterErrors({ errors }) {
              for (const error of errors) requestIds.set(error, contextValue.requestId);
            },
          };
        },
      },
    ],
    formatError: (formatted, error) => formatError(formatted, error, { logger, requestId: requestIdOf(error) }),
    logger: {
      debug: (message: string) => logger.debug(message),
      info: (message: string) => logger.info(message),
      warn: (message: string) => logger.warn(message),
      error: (message: string) => logger.error(message),
    },
  });
  await apollo.start();

  /** Subscriptions share one uncached loader set: events of the same tick share store reads. */
  const subscriptionLoaders = createLoaders(store, { cache: false });

  const documents = createDocumentCache(schema, [...specifiedRules, ...rules]);
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxRequestBytes });
  const wsServer = serveGraphQLWs(
    wss,
    {
      schema,
      subscribe: createSharedSubscribe(),
      // Parsing and validation are cached per query text: dashboards send the same few queries.
      onSubscribe(ctx, _id, payload) {
        let parsed: ReturnType<typeof documents>;
        try {
          parsed = documents(payload.query);
        } catch (error) {
          return [withCode(error instanceof GraphQLError ? error : new GraphQLError(coerceError(error).message), 'GRAPHQL_PARSE_FAILED')];
        }
        if (parsed.errors.length > 0) return parsed.errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
        // graphql-ws keeps the message for the subscription's life: share the cached text.
        (payload as { query: string }).query = parsed.query;
        const context: GraphQLContext = {
          principal: ctx.extra.principal as Principal,
          requestId: ctx.extra.requestId,
          services,
          loaders: subscriptionLoaders,
        };
        return {
          schema,
          document: parsed.document,
          variableValues: payload.variables ?? null,
          operationName: payload.operationName ?? null,
          contextValue: context,
        };
      },
      // A bad credential closes the socket with 4403 Forbidden (graphql-ws's answer to `false`).
      async onConnect(ctx) {
        try {
          ctx.extra.principal = await authenticator.authenticate({ ...ctx.extra.headers, ...(ctx.connectionParams ?? {}) });
          return true;
        } catch (error) {
          logger.info('websocket authentication refused', { reason: coerceError(error).message });
          return false;
        } finally {
          // Used once: an idle connection should not keep its handshake.
          ctx.extra.headers = null;
          (ctx as { connectionParams?: unknown }).connectionParams = undefined;
        }
      },
      onError: (ctx, _id, _payload, errors) =>
        errors.map((error) => formatError(error.toJSON(), error, { logger, requestId: ctx.extra.requestId ?? 'unknown' })),
      onNext: (ctx, _id, _payload, _args, result) => {
        if (result.errors === undefined) return;
        return {
          data: result.data ?? null,
          errors: result.errors.map((error) => formatError(error.toJSON(), error, { logger, requestId: ctx.extra.requestId ?? 'unknown' })),
        };
      },
    },
    {
      keepAliveMs: config.keepAliveMs,
      logger,
      // A connection keeps its id for its life: copied into one flat string, not randomUUID()'s rope of parts.
      newRequestId: () => Buffer.from(randomUUID(), 'latin1').toString('latin1'),
    },
  );

  return {
    async handle(req, res) {
      const requestId = randomUUID();
      res.setHeader('x-request-id', requestId);
      let body: unknown;
      try {
        const text = req.method === 'POST' ? await readBody(req, config.maxRequestBytes) : '';
        const type = req.headers['content-type'] ?? '';
        body = text !== '' && type.includes('json') ? JSON.parse(text) : text;
      } catch (error) {
        if (error instanceof BodyTooLargeError) {
          res.setHeader('connection', 'close');
          sendErrors(res, 413, [{ message: error.message, extensions: { code: error.code, limit: config.maxRequestBytes } }]);
        } else {
          sendErrors(res, 400, [{ message: 'the request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }]);
        }
        return;
      }
      const headers = new HeaderMap();
      for (const [key, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const response = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
        context: async () => {
          try {
            const principal = await authenticator.authenticate(req.headers);
            return { principal, requestId, services, loaders: createLoaders(store) };
          } catch (error) {
            const app = coerceError(error);
            throw new GraphQLError(app.message, {
              extensions: { code: app instanceof AppError ? app.code : 'UNAUTHENTICATED', http: { status: 401 } },
            });
          }
        },
      });
      for (const [key, value] of response.headers) res.setHeader(key, value);
      res.statusCode = response.status ?? 200;
      if (response.body.kind === 'complete') {
        res.end(response.body.string);
        return;
      }
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    },
    attach(server) {
      server.on('upgrade', (req, socket, head) => {
        const path = new URL(req.url ?? '/', 'http://localhost').pathname;
        if (path !== GRAPHQL_PATH) {
          socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      });
    },
    async close() {
      await wsServer.dispose();
      await apollo.stop();
    },
  };
}
