/**
 * GraphQL subscriptions over Server-Sent Events (graphql-sse, "distinct connections"
 * mode: one event stream per subscription) at `/graphql/stream`, for browsers and
 * proxies where websockets are not allowed. The same subscriptions, authentication
 * (request headers), access checks, resume cursors and shared execution as graphql-ws;
 * queries and mutations stay on `POST /graphql`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type DocumentNode,
  type ExecutionArgs,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  getOperationAST,
} from 'graphql';
import { createHandler, type ExecutionResult } from 'graphql-sse';
import type { Principal } from '../domain/types.js';
import { AppError, coerceError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GraphQLContext } from './context.js';

export interface SseOptions {
  schema: GraphQLSchema;
  /** Parses and validates a query (cached by text), as for graphql-ws. */
  documents: (query: string) => { document: DocumentNode; errors: readonly GraphQLError[] };
  /** The shared subscription executor. */
  subscribe: (args: ExecutionArgs) => unknown;
  /** The caller, from the request's headers; throws for bad credentials. */
  authenticate: (req: IncomingMessage) => Promise<Principal>;
  context: (principal: Principal, requestId: string) => GraphQLContext;
  format: (formatted: GraphQLFormattedError, error: unknown, requestId: string) => GraphQLFormattedError;
  requestIdOf: (req: IncomingMessage) => string;
  logger: Logger;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/**
 * Answers a request to `/graphql/stream`. `body` is a POST request's body, already read
 * by the caller within `graphql.maxRequestBytes`: graphql-sse's own Node adapter would
 * read a body of any size into one string (a few hundred megabytes exceed the longest
 * string V8 holds, and the throw takes the process down).
 */
export function createSseHandler(options: SseOptions): (req: IncomingMessage, res: ServerResponse, body: string | null) => Promise<void> {
  const principals = new WeakMap<IncomingMessage, Principal>();
  const withCode = (message: string, code: string) => new GraphQLError(message, { extensions: { code } });
  const handler = createHandler<IncomingMessage, { res: ServerResponse }>({
    schema: options.schema,
    // `documents` has validated already, with the query limits besides the standard rules.
    validate: () => [],
    async authenticate(req) {
      try {
        principals.set(req.raw, await options.authenticate(req.raw));
      } catch (error) {
        const app = coerceError(error);
        const code = app instanceof AppError ? app.code : 'UNAUTHENTICATED';
        return [
          JSON.stringify({ errors: [{ message: app.message, extensions: { code } }] }),
          { status: 401, statusText: 'Unauthorized', headers: JSON_HEADERS },
        ];
      }
      // No token: every subscription is its own event stream ("distinct connections").
      return null;
    },
    onSubscribe(req, params) {
      // Errors go out as a `next` event: a 400 would make EventSource clients reconnect for ever.
      let parsed: ReturnType<SseOptions['documents']>;
      try {
        parsed = options.documents(params.query);
      } catch (error) {
        const app = coerceError(error);
        const code = app instanceof AppError && app.code === 'LIMIT_EXCEEDED' ? app.code : 'GRAPHQL_PARSE_FAILED';
        return { data: null, errors: [withCode(app.message, code)] } satisfies ExecutionResult;
      }
      if (parsed.errors.length > 0)
        return { data: null, errors: parsed.errors.map((error) => withCode(error.message, 'GRAPHQL_VALIDATION_FAILED')) };
      const operation = getOperationAST(parsed.document, params.operationName ?? undefined);
      if (operation?.operation !== 'subscription') {
        return {
          data: null,
          errors: [withCode('only subscriptions run over /graphql/stream; send queries and mutations to POST /graphql', 'BAD_REQUEST')],
        };
      }
      const principal = principals.get(req.raw) as Principal;
      return {
        schema: options.schema,
        document: parsed.document,
        variableValues: params.variables ?? null,
        operationName: params.operationName ?? null,
        contextValue: options.context(principal, options.requestIdOf(req.raw)),
      };
    },
    subscribe: options.subscribe as never,
    onNext(_ctx, req, result) {
      if (!('errors' in result) || result.errors === undefined) return;
      const requestId = options.requestIdOf(req.raw);
      return {
        ...result,
        errors: result.errors.map((error) =>
          options.format(error instanceof GraphQLError ? error.toJSON() : (error as GraphQLFormattedError), error, requestId),
        ) as unknown as GraphQLError[],
      };
    },
  });

  // After graphql-sse's own adapter (use/http), with the body handed in.
  return async function handle(req, res, body) {
    const [result, init] = await handler({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: {
        get(key) {
          const value = req.headers[key];
          return Array.isArray(value) ? value.join('\n') : value;
        },
      },
      body,
      raw: req,
      context: { res },
    });
    res.writeHead(init.status, init.statusText, init.headers);
    if (result === null || typeof result === 'string') {
      await new Promise<void>((resolve) => res.end(result ?? undefined, () => resolve()));
      return;
    }
    const stop = () => void result.return(undefined);
    res.once('close', stop);
    for await (const event of result) {
      const closed = await new Promise<boolean>((resolve, reject) => {
        if (!res.writable) resolve(true);
        else res.write(event, (error) => (error ? reject(error) : resolve(false)));
      });
      if (closed) break;
    }
    res.off('close', stop);
    await new Promise<void>((resolve) => res.end(() => resolve()));
  };
}
