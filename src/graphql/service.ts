/**
 * The GraphQL endpoint: Apollo Server for queries and mutations over HTTP, graphql-ws
 * for subscriptions on the same path, both on the same schema, limits, error
 * formatting and authentication. Transport-free apart from Node's `http` request and
 * response; `http/server.ts` routes `/graphql` here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, type GraphQLFormattedError, getOperationAST, NoSchemaIntrospectionCustomRule, specifiedRules } from 'graphql';
import { LRUCache } from 'lru-cache';
import { isOn, type ResolvedConfig } from '../config.js';
import type { Principal } from '../domain/types.js';
import { AppError, coerceError, LimitExceededError } from '../errors.js';
import { createLoaders, type GraphQLContext, type GraphQLServices } from './context.js';
import { formatError } from './errors.js';
import { checkTokens, queryLimitRules } from './limits.js';
import { createResolvers } from './resolvers/index.js';
import { executeWithinBudget, meterAnswers, ResponseBudget } from './response-budget.js';
import { buildSchema } from './schema.js';
import { createDocumentCache, createSharedSubscribe } from './shared-execution.js';
import { createSseHandler } from './sse.js';
import { serveGraphQLWs } from './ws.js';

export const GRAPHQL_PATH = '/graphql';
/** Subscriptions over Server-Sent Events (graphql-sse). */
export const GRAPHQL_STREAM_PATH = '/graphql/stream';

export interface GraphQLServiceOptions {
  services: GraphQLServices;
  config: ResolvedConfig['graphql'];
}

export interface GraphQLService {
  /** Answers an HTTP request to /graphql; `requestId` is the HTTP layer's id of the request. */
  handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void>;
  /** Answers a subscription over Server-Sent Events at /graphql/stream. */
  stream(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void>;
  /** Takes over a websocket upgrade of /graphql (the HTTP layer has checked host and origin). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string): void;
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
  // Every field counts against the execution's answer budget (graphql.maxResponseBytes).
  const schema = meterAnswers(buildSchema(createResolvers()));
  const introspection = isOn(config.introspection);
  const suggestions = isOn(config.suggestions);
  const rules = queryLimitRules({ ...config, listSizes: { 'Query.jobTypes': () => services.registry.types.length } });
  const format = (formatted: GraphQLFormattedError, error: unknown, requestId: string) =>
    formatError(formatted, error, { logger, requestId, suggestions });

  // Apollo's formatError has no context argument: the request id travels beside the error.
  const requestIds = new WeakMap<object, string>();
  const requestIdOf = (error: unknown): string =>
    (typeof error === 'object' && error !== null ? requestIds.get(error) : undefined) ?? 'unknown';

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection,
    // "Did you mean …?" in validation errors; formatError strips the rest.
    hideSchemaDetailsFromClientErrors: !suggestions,
    csrfPrevention: true,
    validationRules: rules,
    // Behind checkTokens in handle(), which answers with a clearer error first.
    parseOptions: { maxTokens: config.maxTokens },
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
            // An answer that outgrew graphql.maxResponseBytes was cut short: one error instead of a partial answer.
            async willSendResponse({ response }) {
              const failure = contextValue.budget?.exceeded;
              if (failure === null || failure === undefined || response.body.kind !== 'single') return;
              const error = new GraphQLError(failure.message, { originalError: failure });
              logger.info('graphql answer too large', { requestId: contextValue.requestId, limit: failure.details?.limit });
              response.body.singleResult = { errors: [format(error.toJSON(), error, contextValue.requestId)] };
              response.http.status = 400;
            },
            // Apollo would execute a subscription over HTTP and fail inside; say what to do instead.
            async didResolveOperation({ operation }) {
              if (operation?.operation === 'subscription') {
                throw new GraphQLError('subscriptions run over the websocket (graphql-ws on /graphql), not over HTTP POST', {
                  extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
                });
              }
            },
          };
        },
      },
    ],
    formatError: (formatted, error) => format(formatted, error, requestIdOf(error)),
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

  const documents = createDocumentCache(
    schema,
    [...specifiedRules, ...rules, ...(introspection ? [] : [NoSchemaIntrospectionCustomRule])],
    {
      maxTokens: config.maxTokens,
    },
  );
  // One executor for both transports: a websocket and an SSE subscriber with the same
  // query, variables and principal share each change's result.
  const sharedSubscribe = createSharedSubscribe();
  // A websocket subscription's context carries only a template budget: each event is
  // executed with a fresh one of its own (shared-execution.ts), so all share this one.
  const subscriptionBudget = new ResponseBudget(config.maxResponseBytes, 'subscription');
  // Websocket connections of one identity share one principal (never changed once made):
  // each kept its own, about 100 bytes per idle connection. Bounded; a principal dropped
  // here only means later connections get a copy of their own.
  const principals = new LRUCache<string, Principal>({ max: 1000 });
  const sharedPrincipal = (principal: Principal): Principal => {
    const key = JSON.stringify([principal.admin, principal.userId, principal.teams]);
    const known = principals.get(key);
    if (known !== undefined) return known;
    principals.set(key, principal);
    return principal;
  };
  const wsServer = serveGraphQLWs(
    {
      execute: executeWithinBudget,
      subscribe: sharedSubscribe,
      // Parsing and validation are cached per query text: dashboards send the same few queries.
      onSubscribe(connection, _id, payload) {
        // The operation being subscribed counts already.
        if (connection.operationCount > config.maxSubscriptionsPerSocket) {
          const message = `this connection already runs ${config.maxSubscriptionsPerSocket} operations (graphql.maxSubscriptionsPerSocket): end one, or open another connection`;
          return [
            new GraphQLError(message, { originalError: new LimitExceededError(message, { limit: config.maxSubscriptionsPerSocket }) }),
          ];
        }
        let parsed: ReturnType<typeof documents>;
        try {
          parsed = documents(payload.query);
        } catch (error) {
          if (error instanceof AppError) return [new GraphQLError(error.message, { originalError: error })];
          return [withCode(error instanceof GraphQLError ? error : new GraphQLError(coerceError(error).message), 'GRAPHQL_PARSE_FAILED')];
        }
        if (parsed.errors.length > 0) return parsed.errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
        const { principal, requestId } = connection.extra;
        const subscription = getOperationAST(parsed.document, payload.operationName ?? null)?.operation === 'subscription';
        const context: GraphQLContext = {
          principal: principal as Principal,
          requestId,
          services,
          loaders: subscriptionLoaders,
          budget: subscription ? subscriptionBudget : new ResponseBudget(config.maxResponseBytes, requestId),
        };
        return {
          schema,
          document: parsed.document,
          variableValues: payload.variables ?? null,
          operationName: payload.operationName ?? null,
          contextValue: context,
        };
      },
      // A bad credential closes the socket with 4403 Forbidden (the protocol's answer to `false`).
      async onConnect(connection, params) {
        const extra = connection.extra;
        try {
          // The upgrade's headers decide where they carry a credential; connectionParams never override them.
          extra.principal = sharedPrincipal(await authenticator.authenticateConnection(extra.headers ?? {}, params));
          return true;
        } catch (error) {
          logger.info('websocket authentication refused', { requestId: extra.requestId, reason: coerceError(error).message });
          return false;
        } finally {
          // Used once: an idle connection should not keep its handshake.
          extra.headers = null;
        }
      },
      onError: (connection, errors) => errors.map((error) => format(error.toJSON(), error, connection.extra.requestId)),
      onNext: (connection, result) => {
        if (result.errors === undefined) return undefined;
        return {
          data: result.data ?? null,
          errors: result.errors.map((error) => format(error.toJSON(), error, connection.extra.requestId)),
        };
      },
    },
    { maxPayload: config.maxRequestBytes, keepAliveMs: config.keepAliveMs, logger },
  );

  const streamIds = new WeakMap<IncomingMessage, string>();
  const sse = createSseHandler({
    schema,
    documents,
    subscribe: sharedSubscribe,
    authenticate: (req) => authenticator.authenticate(req.headers),
    context: (principal, requestId) => ({
      principal,
      requestId,
      services,
      loaders: subscriptionLoaders,
      budget: new ResponseBudget(config.maxResponseBytes, requestId),
    }),
    format,
    requestIdOf: (req) => streamIds.get(req) ?? 'unknown',
    logger,
  });

  return {
    async stream(req, res, requestId) {
      res.setHeader('x-request-id', requestId);
      streamIds.set(req, requestId);
      let body: string | null = null;
      if (req.method === 'POST') {
        try {
          body = await readBody(req, config.maxRequestBytes);
        } catch (error) {
          if (error instanceof BodyTooLargeError) {
            res.setHeader('connection', 'close');
            sendErrors(res, 413, [{ message: error.message, extensions: { code: error.code, limit: config.maxRequestBytes } }]);
          } else {
            sendErrors(res, 400, [{ message: 'the request body could not be read', extensions: { code: 'BAD_REQUEST' } }]);
          }
          return;
        }
      }
      await sse(req, res, body);
    },
    async handle(req, res, requestId) {
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
      const url = new URL(req.url ?? '/', 'http://localhost');
      // A huge document is refused before Apollo parses and validates it.
      const query = req.method === 'POST' ? (body as { query?: unknown } | null)?.query : url.searchParams.get('query');
      if (typeof query === 'string') {
        try {
          checkTokens(query, config.maxTokens);
        } catch (error) {
          if (!(error instanceof LimitExceededError)) throw error;
          logger.info('graphql document too large', { requestId, limit: config.maxTokens });
          sendErrors(res, 400, [{ message: error.message, extensions: { code: error.code, limit: config.maxTokens, requestId } }]);
          return;
        }
      }
      const headers = new HeaderMap();
      for (const [key, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
      }
      const response = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
        context: async () => {
          try {
            const principal = await authenticator.authenticate(req.headers);
            return {
              principal,
              requestId,
              services,
              loaders: createLoaders(store),
              budget: new ResponseBudget(config.maxResponseBytes, requestId),
            };
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
        const size = Buffer.byteLength(response.body.string);
        if (size > config.maxResponseBytes) {
          const message = `the answer is ${size} bytes, more than graphql.maxResponseBytes (${config.maxResponseBytes}): ask for fewer fields or smaller pages`;
          logger.info('graphql answer too large', { requestId, size, limit: config.maxResponseBytes });
          sendErrors(res, 400, [{ message, extensions: { code: 'LIMIT_EXCEEDED', size, limit: config.maxResponseBytes, requestId } }]);
          return;
        }
        res.end(response.body.string);
        return;
      }
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    },
    upgrade(req, socket, head, requestId) {
      wsServer.upgrade(req, socket, head, requestId);
    },
    async close() {
      await wsServer.dispose();
      await apollo.stop();
    },
  };
}
