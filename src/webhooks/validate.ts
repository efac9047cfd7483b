/**
 * Webhook settings as submitted on a job or batch: checked before anything is stored,
 * normalised into the record the outbox copies. Secrets and tokens are write-only:
 * `describeWebhook` is the only view of them that leaves the process.
 */
import { type JsonObject, WEBHOOK_EVENTS, type WebhookEvent } from '../domain/types.js';
import { AppError, ValidationError } from '../errors.js';
import type { NetGuard } from '../net/guard.js';

/** Headers Conveyor sets itself, or that would change how the request travels. */
const FORBIDDEN_HEADERS = new Set([
  'authorization',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'cookie',
  'expect',
  'host',
  'keep-alive',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-callback-token',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_HEADERS = 20;

export interface WebhookSettings {
  url: string;
  /** Standard Webhooks secret, `whsec_<base64>`. */
  secret: string | null;
  token: string | null;
  headers: Record<string, string>;
  events: WebhookEvent[] | null;
  includeMarkdown: boolean;
  includeMetadata: boolean;
}

/** The secret's key bytes (the base64 after `whsec_`). */
export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.slice('whsec_'.length), 'base64');
}

export function validateWebhook(input: unknown, options: { allowHttp: boolean; guard: NetGuard; field?: string }): JsonObject {
  const field = options.field ?? 'webhook';
  const fail = (message: string, at = field): never => {
    throw new ValidationError(`${at}: ${message}`, { field: at });
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return fail('must be an object');
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!['url', 'secret', 'token', 'headers', 'events', 'includeMarkdown', 'includeMetadata'].includes(key)) {
      fail(`unknown setting "${key}"`, `${field}.${key}`);
    }
  }
  if (typeof raw.url !== 'string') return fail('required', `${field}.url`);
  let url: URL;
  try {
    url = new URL(raw.url);
  } catch {
    return fail(`"${raw.url}" is not an absolute URL`, `${field}.url`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && options.allowHttp)) {
    fail(options.allowHttp ? 'must be an http or https URL' : 'must be an https URL (http needs webhooks.allowHttp)', `${field}.url`);
  }
  if (url.username !== '' || url.password !== '') fail('must not carry credentials; use token or headers', `${field}.url`);
  try {
    options.guard.checkUrl(url);
  } catch (error) {
    if (error instanceof AppError || (error as { code?: string }).code === 'TARGET_FORBIDDEN') {
      throw new ValidationError(`${field}.url: ${(error as Error).message}`, { field: `${field}.url`, reason: 'TARGET_FORBIDDEN' });
    }
    throw error;
  }

  let secret: string | null = null;
  if (raw.secret !== undefined && raw.secret !== null) {
    const key = typeof raw.secret === 'string' && /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(raw.secret) ? secretKey(raw.secret) : null;
    if (key === null || key.length < 24 || key.length > 64) {
      fail('must be whsec_ followed by 24 to 64 base64-encoded random bytes', `${field}.secret`);
    }
    secret = raw.secret as string;
  }
  let token: string | null = null;
  if (raw.token !== undefined && raw.token !== null) {
    if (typeof raw.token !== 'string' || !/^[\x21-\x7e]{1,4096}$/.test(raw.token))
      fail('must be 1 to 4096 visible ASCII characters', `${field}.token`);
    token = raw.token as string;
  }
  const headers: Record<string, string> = {};
  if (raw.headers !== undefined && raw.headers !== null) {
    if (typeof raw.headers !== 'object' || Array.isArray(raw.headers))
      fail('must be an object of header names to values', `${field}.headers`);
    const entries = Object.entries(raw.headers as Record<string, unknown>);
    if (entries.length > MAX_HEADERS) fail(`at most ${MAX_HEADERS} headers`, `${field}.headers`);
    for (const [name, value] of entries) {
      const lower = name.toLowerCase();
      if (!TOKEN.test(name)) fail(`"${name}" is not a valid header name`, `${field}.headers`);
      if (FORBIDDEN_HEADERS.has(lower) || lower.startsWith('webhook-') || lower.startsWith('proxy-')) {
        fail(`"${name}" is set by Conveyor and cannot be overridden`, `${field}.headers`);
      }
      if (typeof value !== 'string' || !/^[\t\x20-\x7e]{0,8192}$/.test(value))
        fail(`"${name}" must be a string of visible ASCII`, `${field}.headers`);
      headers[lower] = value as string;
    }
  }
  let events: WebhookEvent[] | null = null;
  if (raw.events !== undefined && raw.events !== null) {
    if (!Array.isArray(raw.events) || raw.events.length === 0)
      fail(`must be a non-empty list of ${WEBHOOK_EVENTS.join(', ')}`, `${field}.events`);
    for (const event of raw.events as unknown[]) {
      if (!WEBHOOK_EVENTS.includes(event as WebhookEvent))
        fail(`"${String(event)}" is not one of ${WEBHOOK_EVENTS.join(', ')}`, `${field}.events`);
    }
    events = [...new Set(raw.events as WebhookEvent[])];
  }
  for (const flag of ['includeMarkdown', 'includeMetadata'] as const) {
    if (raw[flag] !== undefined && raw[flag] !== null && typeof raw[flag] !== 'boolean') fail('must be true or false', `${field}.${flag}`);
  }
  const settings: WebhookSettings = {
    url: url.href,
    secret,
    token,
    headers,
    events,
    includeMarkdown: raw.includeMarkdown === true,
    includeMetadata: raw.includeMetadata === true,
  };
  return settings as unknown as JsonObject;
}

/** What may be shown of webhook settings: never the secret or token, only whether they are set. */
export function describeWebhook(webhook: JsonObject | null) {
  if (webhook === null) return null;
  const settings = webhook as unknown as Partial<WebhookSettings>;
  return {
    url: settings.url ?? '',
    events: settings.events ?? null,
    includeMarkdown: settings.includeMarkdown === true,
    includeMetadata: settings.includeMetadata === true,
    hasSecret: typeof settings.secret === 'string',
    hasToken: typeof settings.token === 'string',
    headerNames: Object.keys(settings.headers ?? {}),
  };
}
