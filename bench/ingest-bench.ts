/**
 * Inbound webhook answers per second: `POST /hooks/github` on a Conveyor API process
 * (signature verified, event routed, job stored in SQLite with its delivery id as
 * idempotency key, 202) ÷ a bare Node HTTP server that reads the body, verifies the
 * same HMAC and answers 202 without storing anything. The same client (keep-alive,
 * fixed concurrency) sends the same signed deliveries to both, in alternating rounds;
 * p95 answer latency is reported for both.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../src/config.js';
import { createConveyor } from '../src/conveyor.js';
import { defineHandler } from '../src/handlers/registry.js';
import { createLogger } from '../src/log.js';
import type { BenchResult } from './store-bench.js';

const SECRET = 'bench secret';
const CONCURRENCY = 50;

interface Delivery {
  body: string;
  headers: Record<string, string>;
}

function deliveries(count: number, round: number): Delivery[] {
  return Array.from({ length: count }, (_, i) => {
    const body = JSON.stringify({
      action: 'opened',
      number: i,
      pull_request: { title: `Change ${i}`, head: { sha: `${round}-${i}`.padEnd(40, '0') }, user: { login: 'octocat' } },
      repository: { full_name: 'acme/widgets' },
    });
    return {
      body,
      headers: {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'x-github-event': 'pull_request',
        'x-github-delivery': `r${round}-${i}`,
        'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
      },
    };
  });
}

/** Sends every delivery with CONCURRENCY in flight; answers/s and p95 latency in ms. */
async function send(url: string, items: Delivery[]): Promise<{ rate: number; p95: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  let next = 0;
  const one = (item: Delivery) =>
    new Promise<void>((resolve, reject) => {
      const started = performance.now();
      const req = request(url, { method: 'POST', agent, headers: item.headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 202) reject(new Error(`${url} answered ${res.statusCode}`));
          latencies.push(performance.now() - started);
          resolve();
        });
      });
      req.on('error', reject);
      req.end(item.body);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await one(items[next++] as Delivery);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { rate: items.length / seconds, p95: latencies[Math.floor(latencies.length * 0.95)] as number };
}

/** The baseline: verify the HMAC of the body and answer 202, nothing stored. */
async function bareServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
      const given = Buffer.from(String(req.headers['x-hub-signature-256'] ?? ''));
      const ok = given.length === expected.length && timingSafeEqual(given, expected);
      const text = JSON.stringify(ok ? { accepted: true } : { error: 'signature' });
      res.writeHead(ok ? 202 : 401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export async function benchIngest(rounds: number, count: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-ibench-'));
  const config = loadConfig({
    file: null,
    env: {},
    overrides: {
      dataDir: dir,
      'server.port': 0,
      'log.level': 'error',
      'retention.intervalMs': 0,
      'ingest.sources': {
        github: {
          kind: 'github',
          secret: SECRET,
          owner: { userId: 'bench' },
          routes: [{ event: 'pull_request', match: { action: 'opened' }, type: 'review' }],
        },
      },
    },
  });
  const review = defineHandler({
    type: 'review',
    parameters: z.looseObject({ action: z.string() }),
    run: async () => ({}),
  });
  const conveyor = await createConveyor({ config, handlers: [review], logger: createLogger('error') });
  const bare = await bareServer();
  try {
    const { url } = await conveyor.start('api');
    const target = `${url}/hooks/github`;
    const ratios: number[] = [];
    let last = { ingest: { rate: 0, p95: 0 }, bare: { rate: 0, p95: 0 } };
    for (let round = -1; round < rounds; round++) {
      const items = deliveries(count, round + 1);
      const ingest = await send(target, items);
      const baseline = await send(bare.url, items);
      if (round < 0) continue; // warm-up: JIT, sockets, SQLite cache
      ratios.push(ingest.rate / baseline.rate);
      last = { ingest, bare: baseline };
    }
    const stored = await conveyor.store.countJobs({ source: 'github' });
    if (stored !== count * (rounds + 1)) throw new Error(`expected ${count * (rounds + 1)} ingested jobs, found ${stored}`);
    const ratio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)] as number;
    return {
      name: `inbound webhooks answered ÷ bare HMAC-verifying server, concurrency ${CONCURRENCY}`,
      value: `${ratio.toFixed(2)} (ingest ≈ ${Math.round(last.ingest.rate)}/s, p95 ${last.ingest.p95.toFixed(1)} ms; bare ≈ ${Math.round(last.bare.rate)}/s, p95 ${last.bare.p95.toFixed(1)} ms)`,
      target: '≥ 0.3',
      pass: ratio >= 0.3,
    };
  } finally {
    await bare.close();
    await conveyor.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
