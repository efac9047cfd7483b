/**
 * Configuration: built-in defaults ← config file ← environment, validated once at
 * start-up into a `ResolvedConfig`. An unknown key or an invalid value stops start-up
 * with a message that names the key and what it accepts.
 *
 * Environment rule: every key has a variable `CONVEYOR_` + its path, with `__`
 * between groups and camelCase written as SNAKE_CASE
 * (`worker.leaseMs` → `CONVEYOR_WORKER__LEASE_MS`). Lists are comma-separated.
 * Short aliases exist for the common ones (see `ALIASES`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { parseAllowEntry } from './net/guard.js';

const hostOrCidr = z.string().refine((value) => parseAllowEntry(value) !== undefined, {
  message: 'expected a host name, an IP address, a CIDR range such as 10.0.0.0/8, or an address and port such as 127.0.0.1:8080',
});

const ms = (min: number) => z.number().int().min(min);

/** `true`, `false`, or `auto` (decided by NODE_ENV: off in production, see `isOn`). */
const onOffAuto = z.union([z.boolean(), z.literal('auto')]);

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const ingestRoute = z.strictObject({
  /** The sender's event type (`pull_request`, `Merge Request Hook`, `invoice.paid`); `*` for any. */
  event: z.string().min(1),
  /** Payload fields (dotted paths) that must equal a value, or one of a list of values. */
  match: z.record(z.string().min(1), z.union([scalar, z.array(scalar)])).default({}),
  /** The job type to run. */
  type: z.string().min(1),
  /** Job parameters as dotted paths into the payload (`repository.full_name`); the whole payload when absent. */
  parameters: z.record(z.string().min(1), z.string().min(1)).optional(),
  priority: z.number().int().optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
});

/** Source names appear in URLs (`/hooks/<name>`) and environment variables. */
export const SOURCE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const ingestSource = z.strictObject({
  /** How requests are verified: github (X-Hub-Signature-256), gitlab (X-Gitlab-Token), standard (Standard Webhooks), token (bearer). */
  kind: z.enum(['github', 'gitlab', 'standard', 'token']),
  /** The shared secret (HMAC key, token or `whsec_…`). (CONVEYOR_INGEST__SOURCES__<NAME>__SECRET) */
  secret: z.string().min(1, 'required: the shared secret (or set CONVEYOR_INGEST__SOURCES__<NAME>__SECRET)'),
  /** Who owns the jobs made from this source's webhooks (access control applies as to any job). */
  owner: z.strictObject({ userId: z.string().min(1), teams: z.array(z.string().min(1)).default([]) }),
  /** Visibility of those jobs. */
  visibility: z.enum(['PRIVATE', 'TEAM', 'PUBLIC']).default('TEAM'),
  /** Largest request body accepted (413 beyond). */
  maxBodyBytes: z
    .number()
    .int()
    .min(1)
    .max(100 * 1024 * 1024)
    .default(1024 * 1024),
  /** Standard Webhooks: how far `webhook-timestamp` may be from now. */
  toleranceSec: z.number().int().min(1).default(300),
  /** Event → job type; the first matching route wins. Events without one are acknowledged and counted as ignored. */
  routes: z.array(ingestRoute).default([]),
});

const perType = z.strictObject({
  concurrency: z.number().int().min(1).optional(),
  timeoutMs: ms(1).optional(),
  maxAttempts: z.number().int().min(1).max(1000).optional(),
});

/** A BCP 47 language tag as the `session` type takes it (en, de, pt-BR). */
const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

const schema = z.strictObject({
  /** What this process runs: the API, the worker, or both. */
  role: z.enum(['all', 'api', 'worker']),
  /** Where the SQLite file, results and uploads go. */
  dataDir: z.string().min(1),
  server: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    /** How long shutdown waits for open requests. */
    shutdownGraceMs: ms(0),
    /**
     * The address clients reach this service at, used in file and archive URLs
     * (webhook payloads, GraphQL). Empty: `http://<host>:<port>`.
     */
    publicUrl: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
    /**
     * Host names the server answers to besides publicUrl's, the listen address's and
     * `localhost` (IP addresses are always accepted); `*.example.com` matches
     * subdomains, `*` turns the check off. Other names get 421 (DNS rebinding).
     */
    allowedHosts: z.array(z.string().min(1)),
    /**
     * Browser origins (`https://app.example.com`) allowed to open websockets besides the
     * server's own (publicUrl, the loopback origins of its port, the request's own
     * host); `*` allows any. Requests without an Origin header (non-browser clients)
     * are always allowed. Others get 403.
     */
    allowedOrigins: z.array(
      z.string().refine((value) => value === '*' || URL.canParse(value), {
        message: 'expected an origin such as https://app.example.com, or *',
      }),
    ),
    /** Open connections (HTTP and websocket) the server keeps at most; beyond, 503. 0: no cap. */
    maxConnections: z.number().int().min(0),
    /** Open connections from one client address; beyond, 503. 0: no cap. Behind a proxy every client has the proxy's address. */
    maxConnectionsPerIp: z.number().int().min(0),
    /** How long a client may take, from connecting, to send a request's complete headers; then 408 and the connection closes. */
    headersTimeoutMs: ms(1),
    /** How long a client may take to send a whole request (headers and body); then 408. 0: no limit. */
    requestTimeoutMs: ms(0),
    /** How long a connection may stay idle between requests (HTTP keep-alive) before it is closed. */
    keepAliveTimeoutMs: ms(1),
  }),
  store: z.strictObject({
    driver: z.enum(['sqlite', 'mongodb']),
    sqlite: z.strictObject({
      /** The database file; empty means `<dataDir>/conveyor.db`. */
      path: z.string(),
      busyTimeoutMs: ms(0),
      changePollMs: ms(1),
    }),
    mongodb: z.strictObject({
      uri: z.string(),
      database: z.string().min(1),
      maxPoolSize: z.number().int().min(1),
      serverSelectionTimeoutMs: ms(1),
      socketTimeoutMs: ms(0),
    }),
  }),
  worker: z.strictObject({
    /** Jobs one worker process runs at the same time. */
    concurrency: z.number().int().min(1).max(10_000),
    /** Per job type: concurrency, timeoutMs, maxAttempts (override the handler's defaults). */
    perType: z.record(z.string(), perType),
    /** How long a claim lasts without a heartbeat. */
    leaseMs: ms(100),
    /** How often a running job's lease is renewed; must be well under leaseMs. */
    heartbeatMs: ms(10),
    /** Fallback poll for due jobs (delayed, retried) when no change wakes the worker. */
    pollMs: ms(10),
    /** Attempt budget of new jobs whose type sets none. */
    maxAttempts: z.number().int().min(1).max(1000),
    /** Handler timeout for types that set none; 0 means none. */
    timeoutMs: ms(0),
    backoff: z.strictObject({
      /** Delay before the second attempt; doubles with each further attempt. */
      baseMs: ms(0),
      /** Longest delay between attempts. */
      maxMs: ms(0),
      /** Random spread, as a fraction of the delay (0.2 = ±20 %). */
      jitter: z.number().min(0).max(1),
    }),
    /** On shutdown, how long running jobs may finish before their leases are released. */
    shutdownGraceMs: ms(0),
    /** After an abort (cancel, timeout), how long a handler that ignores its signal keeps its slot. */
    abandonGraceMs: ms(0),
    /** At most one progress write per job per this interval. */
    progressIntervalMs: ms(0),
  }),
  handlers: z.strictObject({
    /** Modules (paths or package names) exporting handler definitions, loaded at start-up. */
    modules: z.array(z.string().min(1)),
  }),
  limits: z.strictObject({
    /** Most jobs in one batch. */
    maxBatchSize: z.number().int().min(1),
    /** Largest file a handler downloads, and largest transformer answer (decompressed). */
    maxDownloadBytes: z.number().int().min(1),
    /** How long one download may take. */
    downloadTimeoutMs: ms(1),
    /** Largest upload accepted by `POST /uploads`. */
    maxUploadBytes: z.number().int().min(1),
  }),
  results: z.strictObject({
    /**
     * Key of signed file and archive URLs. Empty: a random key is generated once and
     * kept in `<dataDir>/url-secret`; set it (the same everywhere) when API processes
     * run on several machines.
     */
    urlSecret: z.string(),
    /** How long a signed URL stays valid, in seconds. */
    urlTtl: z.number().int().min(1),
    /** Whether submits reuse the results of an identical completed job when they do not say. */
    cacheByDefault: z.boolean(),
  }),
  uploads: z.strictObject({
    /** Uploads are deleted this many hours after they were made (a restarted job reads its upload until then); 0 keeps them. */
    ttlHours: z.number().min(0),
    /** Also delete an upload when the job that used it is deleted (deleteJob), if it is that job owner's. */
    deleteAfterUse: z.boolean(),
  }),
  transformer: z.strictObject({
    /** Base URL of an OpenAI-compatible API (`…/v1`); empty disables the transformer step. */
    url: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
    /** Bearer key for it. (CONVEYOR_TRANSFORMER__API_KEY) */
    apiKey: z.string(),
    /** Chat model used for translation. */
    model: z.string(),
    /** Speech-to-text model used to transcribe `videoUrl` recordings. */
    transcriptionModel: z.string(),
    /** How long one request may take. */
    timeoutMs: ms(1),
    /** Language of sessions that name none (`sourceLanguage`); empty: unknown. */
    defaultSourceLanguage: z.union([z.literal(''), z.string().regex(LANGUAGE_TAG, 'a language tag such as en, de or pt-BR')]),
    /** Language to translate sessions into when they name none (`targetLanguage`); empty: no translation. */
    defaultTargetLanguage: z.union([z.literal(''), z.string().regex(LANGUAGE_TAG, 'a language tag such as en, de or pt-BR')]),
  }),
  net: z.strictObject({
    /** Hosts, addresses, CIDR ranges and `address:port` endpoints the SSRF guard lets through although they are private. */
    allow: z.array(hostOrCidr),
  }),
  retention: z.strictObject({
    /** Completed jobs (with their result files) older than this are deleted; 0 keeps them. Jobs of archived batches stay. */
    completedDays: z.number().min(0),
    /** Failed and cancelled jobs older than this are deleted; 0 keeps them. Jobs of archived batches stay. */
    failedDays: z.number().min(0),
    /** Change events older than this are deleted (subscribers cannot resume from before). */
    changesHours: z.number().min(0),
    /** How often the retention sweep runs; 0 disables it. */
    intervalMs: ms(0),
  }),
  metrics: z.strictObject({
    /** Serve Prometheus metrics at `/metrics`. */
    enabled: z.boolean(),
    /** When set, `/metrics` needs `Authorization: Bearer <token>`. */
    token: z.string(),
  }),
  log: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error']),
    /** `auto`: readable lines when stderr is a terminal, JSON lines otherwise; `json` or `pretty` to choose. */
    format: z.enum(['auto', 'json', 'pretty']),
  }),
  ingest: z.strictObject({
    /** Inbound webhook sources, by name: `POST /hooks/<name>`. */
    sources: z.record(z.string().regex(SOURCE_NAME, 'source names are lower-case letters, digits, - and _'), ingestSource),
  }),
  webhooks: z.strictObject({
    /** Deliveries one worker process sends at the same time. */
    concurrency: z.number().int().min(1).max(1000),
    /** How long one delivery attempt may take (connect to last byte). */
    timeoutMs: ms(1),
    /** Delays before the 2nd, 3rd, ... attempt; after the last one a delivery is FAILED. */
    schedule: z.array(ms(0)).min(0).max(50),
    /** Random spread of each delay, as a fraction (0.2 = ±20 %). */
    jitter: z.number().min(0).max(1),
    /** Longest wait a receiver's Retry-After may ask for. */
    maxRetryAfterMs: ms(0),
    /** How long a claimed delivery stays with one worker; must exceed timeoutMs. */
    leaseMs: ms(100),
    /** Fallback poll for due retries when no change wakes the dispatcher. */
    pollMs: ms(10),
    /** Allow http:// webhook URLs (https only otherwise). */
    allowHttp: z.boolean(),
    /** `testWebhook` calls one caller may make per minute. */
    testsPerMinute: z.number().int().min(1),
  }),
  auth: z.strictObject({
    /** header: trusted X-User-ID / X-Team-IDs; apiKey: hashed keys below; jwt: signed tokens. */
    mode: z.enum(['header', 'apiKey', 'jwt']),
    /** Header mode trusts whoever connects: refused on a non-loopback bind unless this is true. */
    allowHeaderModeOnPublicBind: z.boolean(),
    /** API keys, stored as `sha256:<hex>` of the key, each with the principal it stands for. */
    apiKeys: z.array(
      z.strictObject({
        hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 hex digits> (see docs/CONFIGURATION.md)'),
        userId: z.string().min(1),
        teams: z.array(z.string().min(1)).default([]),
        admin: z.boolean().default(false),
      }),
    ),
    jwt: z.strictObject({
      /** Shared secret for HS256 tokens; empty when jwksUrl is used. */
      secret: z.string(),
      /** JWKS endpoint for asymmetric tokens (RS256, ES256, ...). */
      jwksUrl: z.string(),
      /** Expected `iss` and `aud`; empty means not checked. */
      issuer: z.string(),
      audience: z.string(),
      /** Which claims carry the user id, the teams and the admin flag. */
      claims: z.strictObject({ userId: z.string().min(1), teams: z.string().min(1), admin: z.string().min(1) }),
      /** Allowed clock skew when checking `exp` and `nbf`. */
      clockToleranceSec: z.number().int().min(0),
    }),
  }),
  graphql: z.strictObject({
    /** Whether the schema can be introspected (tools such as GraphiQL need it); `auto`: off when NODE_ENV=production. */
    introspection: onOffAuto,
    /** Whether validation errors suggest names ("Did you mean …?"); `auto`: off when NODE_ENV=production. */
    suggestions: onOffAuto,
    /** Deepest selection nesting a query may have. */
    maxDepth: z.number().int().min(1),
    /** Highest estimated cost (fields × list sizes) a query may have. */
    maxCost: z.number().int().min(1),
    /** Largest GraphQL request body, in bytes. */
    maxRequestBytes: z.number().int().min(1),
    /** Most lexical tokens (names, punctuation, values) a GraphQL document may have; checked before it is parsed. */
    maxTokens: z.number().int().min(100),
    /** How often idle websockets are pinged; dead peers are dropped after one missed pong. */
    keepAliveMs: ms(0),
    /** Largest GraphQL answer (HTTP, and each websocket or event-stream message), in bytes; counted while it is built, which stops at the limit with LIMIT_EXCEEDED. */
    maxResponseBytes: z.number().int().min(1),
    /** Operations one websocket may run at the same time; more are refused with LIMIT_EXCEEDED. */
    maxSubscriptionsPerSocket: z.number().int().min(1),
  }),
});

export type ResolvedConfig = z.infer<typeof schema>;

/** Every default. `config.yaml` at the project root documents the same values. */
export const DEFAULTS: ResolvedConfig = {
  role: 'all',
  dataDir: './data',
  server: {
    host: '127.0.0.1',
    port: 4000,
    shutdownGraceMs: 10_000,
    publicUrl: '',
    allowedHosts: [],
    allowedOrigins: [],
    maxConnections: 10_000,
    maxConnectionsPerIp: 1000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 120_000,
    keepAliveTimeoutMs: 5000,
  },
  store: {
    driver: 'sqlite',
    sqlite: { path: '', busyTimeoutMs: 5000, changePollMs: 50 },
    mongodb: {
      uri: '',
      database: 'conveyor',
      maxPoolSize: 20,
      serverSelectionTimeoutMs: 10_000,
      socketTimeoutMs: 30_000,
    },
  },
  worker: {
    concurrency: 5,
    perType: {},
    leaseMs: 30_000,
    heartbeatMs: 10_000,
    pollMs: 1000,
    maxAttempts: 3,
    timeoutMs: 0,
    backoff: { baseMs: 5000, maxMs: 600_000, jitter: 0.2 },
    shutdownGraceMs: 10_000,
    abandonGraceMs: 5000,
    progressIntervalMs: 250,
  },
  handlers: { modules: [] },
  limits: { maxBatchSize: 10_000, maxDownloadBytes: 52_428_800, downloadTimeoutMs: 60_000, maxUploadBytes: 52_428_800 },
  results: { urlSecret: '', urlTtl: 86_400, cacheByDefault: false },
  uploads: { ttlHours: 24, deleteAfterUse: true },
  transformer: {
    url: '',
    apiKey: '',
    model: 'gpt-4o-mini',
    transcriptionModel: 'whisper-1',
    timeoutMs: 120_000,
    defaultSourceLanguage: '',
    defaultTargetLanguage: '',
  },
  net: { allow: [] },
  retention: { completedDays: 30, failedDays: 30, changesHours: 24, intervalMs: 3_600_000 },
  metrics: { enabled: true, token: '' },
  log: { level: 'info', format: 'auto' },
  ingest: { sources: {} },
  webhooks: {
    concurrency: 10,
    timeoutMs: 10_000,
    schedule: [5000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000],
    jitter: 0.2,
    maxRetryAfterMs: 3_600_000,
    leaseMs: 60_000,
    pollMs: 1000,
    allowHttp: false,
    testsPerMinute: 10,
  },
  auth: {
    mode: 'header',
    allowHeaderModeOnPublicBind: false,
    apiKeys: [],
    jwt: {
      secret: '',
      jwksUrl: '',
      issuer: '',
      audience: '',
      claims: { userId: 'sub', teams: 'teams', admin: 'admin' },
      clockToleranceSec: 5,
    },
  },
  graphql: {
    introspection: 'auto',
    suggestions: 'auto',
    maxDepth: 12,
    maxCost: 100_000,
    maxRequestBytes: 1_048_576,
    maxTokens: 10_000,
    keepAliveMs: 12_000,
    maxResponseBytes: 10_485_760,
    maxSubscriptionsPerSocket: 100,
  },
};

/** Short environment names for common keys. */
export const ALIASES: Record<string, string> = {
  CONVEYOR_ROLE: 'role',
  CONVEYOR_HOST: 'server.host',
  CONVEYOR_PORT: 'server.port',
  CONVEYOR_DATA_DIR: 'dataDir',
  CONVEYOR_STORE: 'store.driver',
  MONGODB_URI: 'store.mongodb.uri',
  CONVEYOR_NET_ALLOW: 'net.allow',
};

/** Environment variables that are not config keys. */
// Variables of the command-line client, not configuration keys.
const NOT_KEYS = new Set(['CONVEYOR_CONFIG', 'CONVEYOR_URL', 'CONVEYOR_USER', 'CONVEYOR_TOKEN']);

type Tree = { [key: string]: unknown };

const isTree = (value: unknown): value is Tree => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every key path of the defaults, e.g. `store.sqlite.path`. */
function leafPaths(tree: Tree, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([key, value]) => (isTree(value) ? leafPaths(value, `${prefix}${key}.`) : [`${prefix}${key}`]));
}

/** `store.sqlite.busyTimeoutMs` → `CONVEYOR_STORE__SQLITE__BUSY_TIMEOUT_MS` */
export function envName(path: string): string {
  return `CONVEYOR_${path
    .split('.')
    .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('__')}`;
}

function getPath(tree: Tree, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (isTree(node) ? node[key] : undefined), tree);
}

function setPath(tree: Tree, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    if (!isTree(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys.at(-1) as string] = value;
}

/** Converts an environment string to the type of the key's default. */
function fromEnv(path: string, name: string, raw: string): unknown {
  const example = getPath(DEFAULTS as unknown as Tree, path);
  // Keys that take true, false or auto.
  if (example === 'auto' && (raw === 'true' || raw === 'false')) return raw === 'true';
  if (Array.isArray(example) && raw.trim().startsWith('[')) {
    // Lists of objects (auth.apiKeys) come as JSON.
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new ConfigError(`${name} (${path}): expected a JSON list, got "${raw}"`, { key: path });
    }
  }
  if (Array.isArray(example)) {
    // Each item converts to the list's element type (`300,600` is a list of numbers).
    const kind = elementKind(path);
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((item) => fromEnvScalar(kind, path, name, item));
  }
  return fromEnvScalar(typeof example, path, name, raw);
}

function fromEnvScalar(kind: string, path: string, name: string, raw: string): unknown {
  if (kind === 'number') {
    const value = Number(raw);
    if (raw.trim() === '' || Number.isNaN(value))
      throw new ConfigError(`${name} (${path}): expected a number, got "${raw}"`, { key: path });
    return value;
  }
  if (kind === 'boolean') {
    if (raw !== 'true' && raw !== 'false') throw new ConfigError(`${name} (${path}): expected true or false, got "${raw}"`, { key: path });
    return raw === 'true';
  }
  return raw;
}

/** The schema's type name of a list key's items (`number`, `string`, `boolean`, `object`…). */
function elementKind(path: string): string {
  let node: z.ZodType | undefined = schema;
  for (const key of path.split('.')) {
    const shape: Record<string, z.ZodType> | undefined = (node as { shape?: Record<string, z.ZodType> } | undefined)?.shape;
    node = shape?.[key];
  }
  const element = (node as { element?: z.ZodType } | undefined)?.element;
  return element === undefined ? 'string' : unwrapKind(element);
}

function unwrapKind(type: z.ZodType): string {
  const def = type.def as { type: string; innerType?: z.ZodType };
  return def.innerType === undefined ? def.type : unwrapKind(def.innerType);
}

/** The value at a dotted key path of a resolved config (`webhooks.schedule`). */
export function getConfigPath(config: ResolvedConfig, path: string): unknown {
  return getPath(config as unknown as Tree, path);
}

/** Every list-typed key, with its items' type: what a comma-separated environment value holds. */
export function listKeys(): { path: string; kind: string }[] {
  return leafPaths(DEFAULTS as unknown as Tree)
    .filter((path) => Array.isArray(getPath(DEFAULTS as unknown as Tree, path)))
    .map((path) => ({ path, kind: elementKind(path) }));
}

/**
 * `CONVEYOR_INGEST__SOURCES` (every source as JSON) and
 * `CONVEYOR_INGEST__SOURCES__<NAME>__SECRET` (one declared source's secret, `-` written as `_`).
 */
function ingestFromEnv(tree: Tree, name: string, raw: string): void {
  if (name === 'CONVEYOR_INGEST__SOURCES') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${name} (ingest.sources): expected a JSON object of sources`, { key: 'ingest.sources' });
    }
    setPath(tree, 'ingest.sources', parsed);
    return;
  }
  const secret = /^CONVEYOR_INGEST__SOURCES__([A-Z0-9_]+)__SECRET$/.exec(name);
  const sources = getPath(tree, 'ingest.sources');
  const key = secret && isTree(sources) ? Object.keys(sources).find((k) => k.toUpperCase().replace(/-/g, '_') === secret[1]) : undefined;
  if (secret === null || key === undefined) {
    throw new ConfigError(
      `unknown environment variable ${name}: secrets of inbound webhook sources are CONVEYOR_INGEST__SOURCES__<NAME>__SECRET for a source declared in ingest.sources`,
      { variable: name },
    );
  }
  (sources as Tree)[key] = { ...((sources as Tree)[key] as Tree), secret: raw };
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isTree(value) && isTree(base[key]) ? merge(base[key] as Tree, value) : value;
  }
  return out;
}

function allowedKeys(path: readonly PropertyKey[]): string {
  const node = path.length === 0 ? DEFAULTS : getPath(DEFAULTS as unknown as Tree, path.join('.'));
  return isTree(node) ? Object.keys(node).join(', ') : '';
}

function describeIssues(issues: z.core.$ZodIssue[], source: (key: string) => string): string {
  return issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys
          .map((key) => {
            const full = [...issue.path, key].join('.');
            return `unknown key "${full}"${source(full)}; allowed keys here: ${allowedKeys(issue.path)}`;
          })
          .join('\n');
      }
      const key = issue.path.join('.');
      // A map key that fails its pattern (ingest source names): say why, not just "invalid key".
      if (issue.code === 'invalid_key') return `${key}${source(key)}: ${issue.issues.map((inner) => inner.message).join('; ')}`;
      const allowed = issue.code === 'invalid_value' ? ` (allowed: ${issue.values.map((v) => JSON.stringify(v)).join(', ')})` : '';
      return `${key}${source(key)}: ${issue.message}${allowed}`;
    })
    .join('\n');
}

export interface LoadConfigOptions {
  /** The environment to read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The config file; default `CONVEYOR_CONFIG`, else `./config.yaml` when it exists. */
  file?: string | null;
  /** Values that win over everything (programmatic use, tests). */
  overrides?: Record<string, unknown>;
}

/** Defaults ← config file ← environment ← overrides, validated. Throws `CONFIG_INVALID`. */
export function loadConfig(options: LoadConfigOptions = {}): ResolvedConfig {
  const env = options.env ?? process.env;
  let tree: Tree = structuredClone(DEFAULTS) as unknown as Tree;
  const origin = new Map<string, string>();

  const file = options.file !== undefined ? options.file : (env.CONVEYOR_CONFIG ?? (existsSync('config.yaml') ? 'config.yaml' : null));
  if (file !== null && file !== '') {
    const path = resolve(file);
    if (!existsSync(path)) throw new ConfigError(`config file ${path} does not exist (from CONVEYOR_CONFIG or --config)`, { file: path });
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new ConfigError(`config file ${path} is not valid YAML: ${error instanceof Error ? error.message : String(error)}`, {
        file: path,
      });
    }
    if (parsed !== null && parsed !== undefined) {
      if (!isTree(parsed)) throw new ConfigError(`config file ${path} must hold a mapping of keys`, { file: path });
      tree = merge(tree, parsed);
    }
  }

  const byEnvName = new Map(leafPaths(DEFAULTS as unknown as Tree).map((path) => [envName(path), path]));
  // All sources as JSON first, so a secret of one of them can be added to it.
  const entries = Object.entries(env).sort(
    ([a], [b]) => Number(b === 'CONVEYOR_INGEST__SOURCES') - Number(a === 'CONVEYOR_INGEST__SOURCES'),
  );
  for (const [name, raw] of entries) {
    if (raw === undefined) continue;
    if (name === 'CONVEYOR_INGEST__SOURCES' || name.startsWith('CONVEYOR_INGEST__SOURCES__')) {
      ingestFromEnv(tree, name, raw);
      origin.set(name === 'CONVEYOR_INGEST__SOURCES' ? 'ingest.sources' : `ingest.sources.${name}`, name);
      continue;
    }
    const path = ALIASES[name] ?? byEnvName.get(name);
    if (path === undefined) {
      if (name.startsWith('CONVEYOR_') && !NOT_KEYS.has(name)) {
        throw new ConfigError(`unknown environment variable ${name}: it names no config key (see docs/CONFIGURATION.md)`, {
          variable: name,
        });
      }
      continue;
    }
    setPath(tree, path, fromEnv(path, name, raw));
    origin.set(path, name);
  }
  for (const [path, value] of Object.entries(options.overrides ?? {})) setPath(tree, path, value);

  const result = schema.safeParse(tree);
  if (!result.success) {
    const source = (key: string) => {
      const from = origin.get(key);
      return from === undefined ? '' : ` (from ${from})`;
    };
    const message = describeIssues(result.error.issues, source);
    throw new ConfigError(`invalid configuration:\n${message}`, { issues: message });
  }
  const config = result.data;
  if (config.worker.heartbeatMs * 2 > config.worker.leaseMs) {
    throw new ConfigError(
      `invalid configuration:\nworker.heartbeatMs (${config.worker.heartbeatMs}) must be at most half of worker.leaseMs (${config.worker.leaseMs}), or leases expire between heartbeats`,
      { key: 'worker.heartbeatMs' },
    );
  }
  if (config.webhooks.leaseMs <= config.webhooks.timeoutMs) {
    throw new ConfigError(
      `invalid configuration:\nwebhooks.leaseMs (${config.webhooks.leaseMs}) must be longer than webhooks.timeoutMs (${config.webhooks.timeoutMs}), or a slow attempt loses its claim while it runs`,
      { key: 'webhooks.leaseMs' },
    );
  }
  // `[::1]` is how an IPv6 address is written in a URL; listen() wants it bare.
  if (/^\[[^\]]*\]$/.test(config.server.host)) config.server.host = config.server.host.slice(1, -1);
  if (config.server.requestTimeoutMs > 0 && config.server.headersTimeoutMs > config.server.requestTimeoutMs) {
    throw new ConfigError(
      `invalid configuration:\nserver.headersTimeoutMs (${config.server.headersTimeoutMs}) must not be longer than server.requestTimeoutMs (${config.server.requestTimeoutMs})`,
      { key: 'server.headersTimeoutMs' },
    );
  }
  if (config.auth.mode === 'header' && !isLoopback(config.server.host) && !config.auth.allowHeaderModeOnPublicBind) {
    throw new ConfigError(
      `invalid configuration:\nauth.mode "header" trusts the X-User-ID header of anyone who connects, so it only runs on a loopback server.host (not "${config.server.host}"); use auth.mode apiKey or jwt, or set auth.allowHeaderModeOnPublicBind: true behind a proxy that sets the headers`,
      { key: 'auth.mode' },
    );
  }
  if (config.auth.mode === 'jwt' && (config.auth.jwt.secret === '') === (config.auth.jwt.jwksUrl === '')) {
    throw new ConfigError('invalid configuration:\nauth.mode "jwt" needs exactly one of auth.jwt.secret (HS256) and auth.jwt.jwksUrl', {
      key: 'auth.jwt',
    });
  }
  return config;
}

/** True for host names and addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Resolves a true/false/auto setting: `auto` is off when NODE_ENV is production, on otherwise. */
export function isOn(value: boolean | 'auto', env: NodeJS.ProcessEnv = process.env): boolean {
  return value === 'auto' ? env.NODE_ENV !== 'production' : value;
}

/** The folder of result files. */
export function resultsDir(config: ResolvedConfig): string {
  return resolve(config.dataDir, 'results');
}

/** The SQLite file the config points at. */
export function sqlitePath(config: ResolvedConfig): string {
  return config.store.sqlite.path === '' ? resolve(config.dataDir, 'conveyor.db') : resolve(config.store.sqlite.path);
}
