/**
 * What clients see of errors. Expected errors (`AppError`) keep their message and put
 * their stable code in `extensions.code`; GraphQL's own errors (syntax, validation)
 * pass through; anything else is masked as INTERNAL_SERVER_ERROR and logged with
 * the request id that the client gets too.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

/** Finds the AppError behind resolver and validation wrappers, if any. */
export function findAppError(error: unknown): AppError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && current !== undefined; depth++) {
    if (current instanceof AppError) return current;
    current = (current as { originalError?: unknown }).originalError ?? (current as { cause?: unknown }).cause;
  }
  return null;
}

/** Only simple detail values reach the client (field names, limits, ids). */
function safeDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(details ?? {})) {
    if (['string', 'number', 'boolean'].includes(typeof value)) out[key] = value;
  }
  return out;
}

/** GraphQL's "Did you mean …?" hints name fields and types the caller did not ask about. */
const SUGGESTION = / ?Did you mean(.+?)\?$/;

export function formatError(
  formatted: GraphQLFormattedError,
  error: unknown,
  context: { logger: Logger; requestId: string; suggestions?: boolean },
): GraphQLFormattedError {
  const app = findAppError(error);
  if (app !== null) {
    return {
      message: app.message,
      ...(formatted.locations === undefined ? {} : { locations: formatted.locations }),
      ...(formatted.path === undefined ? {} : { path: formatted.path }),
      extensions: { ...safeDetails(app.details), code: app.code },
    };
  }
  const original = error instanceof GraphQLError ? error.originalError : error;
  // GraphQL's own errors (syntax, validation, variable coercion) have no other cause.
  if (error instanceof GraphQLError && (original === undefined || original === null || original instanceof GraphQLError)) {
    const { http: _http, stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
    const message = context.suggestions === false ? formatted.message.replace(SUGGESTION, '') : formatted.message;
    return { ...formatted, message, extensions: { ...extensions, code: extensions.code ?? 'BAD_USER_INPUT' } };
  }
  context.logger.error('unexpected error in a GraphQL operation', {
    requestId: context.requestId,
    error: original ?? error,
    path: formatted.path,
  });
  return {
    message: `internal error; quote request id ${context.requestId} when reporting it`,
    ...(formatted.path === undefined ? {} : { path: formatted.path }),
    extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: context.requestId },
  };
}
