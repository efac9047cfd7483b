/**
 * Who is calling: turns request headers (HTTP), or a websocket's upgrade headers and
 * `connectionParams` (graphql-ws), into a `Principal`.
 *
 * - `header`: trusted `X-User-ID` and `X-Team-IDs` (comma-separated), `X-Admin: true`,
 *   set by whoever connects (loopback) or by an authenticating proxy. On a websocket
 *   they come from the upgrade request's headers only: `connectionParams` naming an
 *   identity are refused, since anything in the browser could write them.
 * - `apiKey`: `Authorization: Bearer <key>` or `X-API-Key: <key>`, compared by SHA-256
 *   hash with `auth.apiKeys`.
 * - `jwt`: `Authorization: Bearer <jwt>` verified with a shared HS256 secret or a JWKS.
 *
 * In `apiKey` and `jwt` modes a websocket may carry the credential in the upgrade
 * headers or in `connectionParams`; when the headers carry one, they win. In every
 * mode `connectionParams.ticket` (from `POST /ws-ticket`) stands for the principal of
 * the HTTP request that obtained it, unless the upgrade headers name one.
 *
 * No credentials at all means anonymous (may read PUBLIC resources only); credentials
 * that are present but wrong are refused with `UNAUTHENTICATED`, never downgraded.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose';
import type { ResolvedConfig } from '../config.js';
import { ANONYMOUS } from '../domain/access.js';
import type { Principal } from '../domain/types.js';
import { UnauthenticatedError } from '../errors.js';
import type { TicketIssuer } from './ticket.js';

/** Header names are matched case-insensitively; values may be lists (Node's IncomingHttpHeaders). */
export type Credentials = Record<string, unknown>;

export interface Authenticator {
  readonly mode: ResolvedConfig['auth']['mode'];
  /** The caller's principal; throws `UNAUTHENTICATED` for a credential that does not check out. */
  authenticate(credentials: Credentials): Promise<Principal>;
  /** A websocket's principal, from its upgrade headers and `connectionParams` (see the rules above). */
  authenticateConnection(headers: Credentials, connectionParams: Credentials | null | undefined): Promise<Principal>;
}

/** The headers header mode trusts: never taken from `connectionParams`. */
const IDENTITY_HEADERS = ['x-user-id', 'x-team-ids', 'x-admin'];

/** `sha256:<hex>` of an API key: the form `auth.apiKeys[].hash` holds. */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

function lowerKeys(credentials: Credentials): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, raw] of Object.entries(credentials ?? {})) {
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (typeof value === 'string') out.set(key.toLowerCase(), value);
  }
  return out;
}

function bearer(headers: Map<string, string>): string | null {
  const authorization = headers.get('authorization');
  if (authorization === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (match === null) throw new UnauthenticatedError('the Authorization header must be "Bearer <credential>"');
  return match[1] as string;
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

function headerMode(headers: Map<string, string>): Principal {
  const userId = headers.get('x-user-id')?.trim() ?? '';
  if (userId === '') return ANONYMOUS;
  return { userId, teams: list(headers.get('x-team-ids')), admin: headers.get('x-admin') === 'true' };
}

function apiKeyMode(config: ResolvedConfig['auth']): (headers: Map<string, string>) => Principal {
  const keys = config.apiKeys.map((entry) => ({ ...entry, digest: Buffer.from(entry.hash.slice('sha256:'.length), 'hex') }));
  return (headers) => {
    const key = bearer(headers) ?? headers.get('x-api-key') ?? null;
    if (key === null) return ANONYMOUS;
    const digest = createHash('sha256').update(key, 'utf8').digest();
    // Compare against every key in constant time, so timing says nothing about near misses.
    let found: (typeof keys)[number] | undefined;
    for (const entry of keys) if (timingSafeEqual(entry.digest, digest)) found = entry;
    if (found === undefined) throw new UnauthenticatedError('unknown API key');
    return { userId: found.userId, teams: [...found.teams], admin: found.admin };
  };
}

function claim(payload: JWTPayload, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (node, key) => (typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined),
      payload,
    );
}

function jwtMode(config: ResolvedConfig['auth']): (headers: Map<string, string>) => Promise<Principal> {
  const { jwt } = config;
  const key: Uint8Array | JWTVerifyGetKey =
    jwt.secret !== '' ? new TextEncoder().encode(jwt.secret) : createRemoteJWKSet(new URL(jwt.jwksUrl));
  const options = {
    clockTolerance: jwt.clockToleranceSec,
    ...(jwt.secret !== '' ? { algorithms: ['HS256'] } : {}),
    ...(jwt.issuer === '' ? {} : { issuer: jwt.issuer }),
    ...(jwt.audience === '' ? {} : { audience: jwt.audience }),
  };
  return async (headers) => {
    const token = bearer(headers);
    if (token === null) return ANONYMOUS;
    let payload: JWTPayload;
    try {
      ({ payload } = key instanceof Uint8Array ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new UnauthenticatedError('the token has expired');
      throw new UnauthenticatedError('the token is not valid');
    }
    const userId = claim(payload, jwt.claims.userId);
    if (typeof userId !== 'string' || userId === '') throw new UnauthenticatedError(`the token has no "${jwt.claims.userId}" claim`);
    const teams = claim(payload, jwt.claims.teams);
    return {
      userId,
      teams: Array.isArray(teams) ? teams.filter((team): team is string => typeof team === 'string') : [],
      admin: claim(payload, jwt.claims.admin) === true,
    };
  };
}

export function createAuthenticator(config: ResolvedConfig['auth'], options: { tickets?: TicketIssuer } = {}): Authenticator {
  const resolve = config.mode === 'header' ? headerMode : config.mode === 'apiKey' ? apiKeyMode(config) : jwtMode(config);
  /** Whether the headers carry this mode's credential (then nothing in connectionParams counts). */
  const carries = (headers: Map<string, string>) =>
    config.mode === 'header'
      ? (headers.get('x-user-id')?.trim() ?? '') !== ''
      : headers.has('authorization') || (config.mode === 'apiKey' && headers.has('x-api-key'));
  return {
    mode: config.mode,
    async authenticate(credentials) {
      return resolve(lowerKeys(credentials));
    },
    async authenticateConnection(rawHeaders, rawParams) {
      const headers = lowerKeys(rawHeaders);
      const params = lowerKeys(rawParams ?? {});
      if (config.mode === 'header' && IDENTITY_HEADERS.some((name) => params.has(name))) {
        throw new UnauthenticatedError(
          'in auth mode "header" a websocket takes its identity from the upgrade request\'s headers (or a ticket from POST /ws-ticket), not from connectionParams',
        );
      }
      if (carries(headers)) return resolve(headers);
      const ticket = params.get('ticket');
      if (ticket !== undefined) {
        if (options.tickets === undefined) throw new UnauthenticatedError('this server does not accept tickets');
        return options.tickets.verify(ticket);
      }
      return resolve(config.mode === 'header' ? headers : params);
    },
  };
}
