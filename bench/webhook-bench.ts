/**
 * Webhook dispatcher throughput to a local receiver ÷ bare `got.post` of the same
 * payloads with the same concurrency and keep-alive, measured alternately in this run.
 * The dispatcher's figure includes everything a real delivery costs: claiming from the
 * outbox with a lease, signing, the request, and recording the attempt.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import got from 'got';
import { DEFAULTS } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createNetGuard } from '../src/net/guard.js';
import { createFsResultStore } from '../src/results/fs/fs-result-store.js';
import { createUrlSigner } from '../src/results/urls.js';
import type { ClaimToken } from '../src/store/port.js';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { createDispatcher } from '../src/webhooks/dispatcher.js';
import type { BenchResult } from './store-bench.js';

const CONCURRENCY = 10;
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

interface Receiver {
  url: string;
  bodies: string[];
  recording: boolean;
  /** Called with the number of bodies recorded so far. */
  onBody: ((count: number) => void) | null;
  close: () => Promise<unknown>;
}

/** Answers 200 at once; keeps the bodies it receives while `recording`. */
async function receiver(): Promise<Receiver> {
  const state = { bodies: [] as string[], recording: false, onBody: null as ((count: number) => void) | null };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.end('ok');
      if (state.recording) {
        state.bodies.push(Buffer.concat(chunks).toString('utf8'));
        state.onBody?.(state.bodies.length);
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** A full collection when the process runs with --expose-gc (npm run bench does). */
const collect = () => (globalThis as { gc?: () => void }).gc?.();

async function bareGot(url: string, bodies: string[]): Promise<number> {
  const agent = new Agent({ keepAlive: true });
  const client = got.extend({ agent: { http: agent }, retry: { limit: 0 }, throwHttpErrors: false });
  let next = 0;
  collect();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as string;
        await client.post(url, { body, headers: { 'content-type': 'application/json' } });
      }
    }),
  );
  const elapsed = performance.now() - started;
  agent.destroy();
  return bodies.length / (elapsed / 1000);
}

/** Deliveries per second through the dispatcher, from a filled outbox to the last DELIVERED. */
async function dispatcherRun(target: Receiver, count: number): Promise<number> {
  const url = target.url;
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-hbench-'));
  const store = createSqliteStore({ path: join(dir, 'bench.db') });
  try {
    // Fill the outbox: jobs with a webhook, completed (not measured).
    const created = await store.createJobs(
      Array.from({ length: count }, (_, i) => ({
        type: 'noop',
        parameters: { n: i },
        maxAttempts: 1,
        ownerId: 'bench',
        webhook: { url, secret: SECRET, token: null, headers: {}, events: null, includeMarkdown: false, includeMetadata: false },
      })),
    );
    for (let i = 0; i < created.length; i++) {
      const job = await store.claimNext({ workerId: 'w', leaseMs: 60_000 });
      if (job === null) break;
      const token: ClaimToken = { jobId: job.id, workerId: 'w', leaseToken: job.leaseToken };
      await store.complete(token, { n: i });
    }
    const dispatcher = createDispatcher({
      store,
      results: createFsResultStore(join(dir, 'results')),
      signer: createUrlSigner({ secret: 'bench', ttl: 3600, baseUrl: 'http://localhost:4000' }),
      guard: createNetGuard(['127.0.0.1']),
      config: { ...DEFAULTS.webhooks, concurrency: CONCURRENCY, pollMs: 20 },
      logger: createLogger('error'),
      workerId: 'bench',
      version: 'bench',
    });
    // Timed until the receiver has every delivery: the same end point as the baseline's.
    const received = new Promise<void>((resolve) => {
      target.onBody = (n) => {
        if (n >= count) resolve();
      };
    });
    // Both sides start from a collected heap: filling the outbox leaves garbage behind.
    collect();
    const started = performance.now();
    dispatcher.start();
    await received;
    const elapsed = performance.now() - started;
    target.onBody = null;
    await dispatcher.stop();
    return count / (elapsed / 1000);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchWebhooks(rounds: number, count: number): Promise<BenchResult> {
  const target = await receiver();
  try {
    const ratios: number[] = [];
    let last = { dispatcher: 0, got: 0 };
    const measure = async () => {
      target.bodies = [];
      target.recording = true;
      const rate = await dispatcherRun(target, count);
      target.recording = false;
      // The baseline sends exactly the bodies the dispatcher sent.
      const bare = await bareGot(target.url, target.bodies);
      return { rate, bare };
    };
    await measure(); // warm-up: JIT, agents, file cache; not counted
    for (let round = 0; round < rounds; round++) {
      const { rate, bare } = await measure();
      ratios.push(rate / bare);
      last = { dispatcher: rate, got: bare };
    }
    const ratio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)] as number;
    return {
      name: `webhook dispatcher ÷ bare got.post to a local receiver, concurrency ${CONCURRENCY}`,
      value: `${ratio.toFixed(2)} (dispatcher ≈ ${Math.round(last.dispatcher)} deliveries/s, got ≈ ${Math.round(last.got)} requests/s)`,
      target: '≥ 0.8',
      pass: ratio >= 0.8,
    };
  } finally {
    await target.close();
  }
}
