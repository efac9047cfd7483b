/**
 * A real Conveyor (SQLite file in a temp dir, HTTP + graphql-ws on port 0) for API
 * tests, with small job types whose timing the test controls.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, createClient } from 'graphql-ws';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { type Conveyor, createConveyor } from '../../src/conveyor.js';
import { PermanentJobError } from '../../src/errors.js';
import { defineHandler, type HandlerDefinition } from '../../src/handlers/registry.js';
import { createLogger } from '../../src/log.js';

/** Jobs of type `gate` wait until the test opens their gate (or they are cancelled). */
export class Gates {
  /** How many times each job type's handler ran. */
  readonly runs = new Map<string, number>();
  private readonly waiting = new Map<string, () => void>();
  private readonly opened = new Set<string>();
  open(key: string): void {
    this.opened.add(key);
    this.waiting.get(key)?.();
  }
  wait(key: string, signal: AbortSignal): Promise<void> {
    if (this.opened.has(key)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.set(key, resolve);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
}

export function testHandlers(gates: Gates) {
  return [
    defineHandler({
      type: 'echo',
      description: 'Logs a line, reports progress and returns its parameters.',
      parameters: z.strictObject({ text: z.string().default('hi'), track: z.string().optional() }),
      async run(p, ctx) {
        ctx.log('info', `echo ${p.text}`);
        ctx.progress({ percent: 50, step: 'echo' });
        return { text: p.text };
      },
    }),
    defineHandler({
      type: 'markdown',
      description: 'Writes a Markdown result file and returns metadata, like the pdf type.',
      parameters: z.strictObject({ title: z.string() }),
      async run(p, ctx) {
        await ctx.writeResult('out.md', `# ${p.title}\n`, 'text/markdown');
        return { markdown: 'out.md', metadata: { title: p.title }, pages: 1 };
      },
    }),
    defineHandler({
      type: 'files',
      description: 'Writes a Markdown report, a binary asset and a JSON file; counts its runs.',
      parameters: z.strictObject({
        title: z.string(),
        track: z.string().optional(),
        session: z.string().optional(),
        assetBytes: z.number().int().min(0).max(10_000_000).default(64),
      }),
      async run(p, ctx) {
        gates.runs.set('files', (gates.runs.get('files') ?? 0) + 1);
        await ctx.writeResult('report.md', `# ${p.title}\n\nGrüße aus der Warteschlange — ✓\n`, 'text/markdown; charset=utf-8');
        const asset = Buffer.alloc(p.assetBytes, 0);
        for (let i = 0; i < asset.length; i++) asset[i] = (i * 31 + p.title.length) % 256;
        await ctx.writeResult('assets/figure 1.png', asset, 'image/png');
        await ctx.writeResult('data.json', JSON.stringify({ title: p.title }), 'application/json');
        return { markdown: 'report.md', metadata: { title: p.title }, words: 4 };
      },
    }),
    defineHandler({
      type: 'flaky',
      description: 'Fails its first attempt with a retriable error, then completes.',
      parameters: z.strictObject({}),
      async run(_p, ctx) {
        if (ctx.attempt === 1) throw new Error('first attempts always fail');
        return { attempt: ctx.attempt };
      },
      defaults: { maxAttempts: 3 },
    }),
    defineHandler({
      type: 'review',
      description: 'Takes a webhook payload as it comes (a code-review bot, say) and reports what it saw.',
      parameters: z.looseObject({ action: z.string().optional(), number: z.number().int().optional() }),
      async run(p, ctx) {
        ctx.log('info', `reviewing ${p.action ?? 'something'}`);
        return { action: p.action ?? null, number: p.number ?? null, keys: Object.keys(p).length };
      },
    }),
    defineHandler({
      type: 'gate',
      description: 'Waits until the test opens gate `key`.',
      parameters: z.strictObject({
        key: z.string(),
        fail: z.boolean().default(false),
        lines: z.number().int().min(0).max(5000).default(0),
      }),
      async run(p, ctx) {
        ctx.log('info', `waiting for ${p.key}`);
        await gates.wait(p.key, ctx.signal);
        ctx.log('info', `opened ${p.key}`);
        for (let i = 1; i <= p.lines; i++) ctx.log('debug', `line ${i}`);
        if (p.fail) throw new PermanentJobError('GATE_FAILED', `gate ${p.key} says fail`);
        return { key: p.key };
      },
      defaults: { maxAttempts: 1 },
    }),
  ];
}

const IDENTITY_HEADERS = ['x-user-id', 'x-team-ids', 'x-admin'];

/** A `ws` WebSocket class that sends `headers` with its upgrade request. */
export function withHeaders(headers: Record<string, string>): unknown {
  return class extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  };
}

/** POST /graphql that must succeed: no errors, status 200; returns `data`. */
export async function gqlOk<T = Record<string, unknown>>(
  api: TestApi,
  query: string,
  variables: Record<string, unknown> = {},
  headers?: Record<string, string>,
): Promise<T> {
  const { status, body } = await api.gql<T>(query, variables, headers);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  expect(status).toBe(200);
  return body.data as T;
}

export interface TestApi {
  conveyor: Conveyor;
  url: string;
  wsUrl: string;
  gates: Gates;
  /** The server's log lines (JSON), captured instead of printed. */
  logs: string[];
  /** POST /graphql; returns status and parsed body. */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: { data?: T | null; errors?: { message: string; extensions?: Record<string, unknown> }[] } }>;
  /**
   * A real graphql-ws client; closed by `stop()`. Header-mode identity (`x-user-id`,
   * `x-team-ids`, `x-admin`) goes in the upgrade request's headers, anything else in
   * connectionParams.
   */
  client(credentials?: Record<string, unknown>, options?: { retryAttempts?: number }): Client;
  stop(): Promise<void>;
}

export async function startApi(
  options: {
    overrides?: Record<string, unknown>;
    role?: 'all' | 'api';
    user?: string | null;
    /** More job types besides `testHandlers` (a test's own). */
    handlers?: HandlerDefinition[];
  } = {},
): Promise<TestApi> {
  const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-gql-'));
  const config = loadConfig({
    file: null,
    env: {},
    overrides: {
      dataDir,
      'server.port': 0,
      'log.level': 'error',
      'retention.intervalMs': 0,
      'worker.progressIntervalMs': 0,
      'worker.backoff.baseMs': 10,
      'worker.shutdownGraceMs': 100,
      'server.shutdownGraceMs': 1000,
      ...options.overrides,
    },
  });
  const gates = new Gates();
  const logs: string[] = [];
  const logger = createLogger(config.log.level, {}, (line) => logs.push(line));
  const conveyor = await createConveyor({ config, handlers: [...testHandlers(gates), ...(options.handlers ?? [])], logger });
  const { url } = await conveyor.start(options.role ?? 'all');
  const base = url as string;
  const clients: Client[] = [];
  const user = options.user === undefined ? 'alice' : options.user;
  return {
    conveyor,
    url: base,
    wsUrl: `${base.replace('http', 'ws')}/graphql`,
    gates,
    logs,
    async gql(query, variables = {}, headers = user === null ? {} : { 'x-user-id': user }) {
      const response = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      const text = await response.text();
      return { status: response.status, body: JSON.parse(text) };
    },
    client(credentials = user === null ? {} : { 'x-user-id': user }, clientOptions = {}) {
      // Header-mode identity travels as the upgrade request's headers (as from a proxy or a
      // non-browser client); tokens travel in connectionParams.
      const headers: Record<string, string> = {};
      const connectionParams: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(credentials)) {
        if (IDENTITY_HEADERS.includes(key.toLowerCase())) headers[key] = String(value);
        else connectionParams[key] = value;
      }
      const client = createClient({
        url: `${base.replace('http', 'ws')}/graphql`,
        webSocketImpl: withHeaders(headers),
        connectionParams,
        retryAttempts: clientOptions.retryAttempts ?? 0,
        lazy: true,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((client) => client.dispose()));
      await conveyor.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Collects a subscription's values until `done` says so. Fails after `timeoutMs`, on an
 * error, and when the server completes the subscription before `done` was met; `cancel()`
 * (the test's own choice) resolves with what arrived so far.
 */
export function subscribe<T>(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  done: (values: T[]) => boolean,
  timeoutMs = 10_000,
): { values: T[]; finished: Promise<T[]>; cancel: () => void } {
  const values: T[] = [];
  let unsubscribe: () => void = () => undefined;
  let cancelled = false;
  const finished = new Promise<T[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`subscription timed out after ${values.length} values: ${JSON.stringify(values.at(-1))}`));
    }, timeoutMs);
    unsubscribe = client.subscribe<T>(
      { query, variables },
      {
        next(result) {
          if (result.errors !== undefined) {
            clearTimeout(timer);
            reject(Object.assign(new Error(result.errors[0]?.message), { errors: result.errors }));
            return;
          }
          values.push(Object.values(result.data as Record<string, T>)[0] as T);
          if (done(values)) {
            clearTimeout(timer);
            unsubscribe();
            resolve(values);
          }
        },
        error(error) {
          clearTimeout(timer);
          reject(error);
        },
        complete() {
          clearTimeout(timer);
          if (cancelled || done(values)) resolve(values);
          else reject(new Error(`subscription completed before its condition was met, after ${values.length} values`));
        },
      },
    );
  });
  return {
    values,
    finished,
    cancel: () => {
      cancelled = true;
      unsubscribe();
    },
  };
}
