/**
 * GraphQL benchmarks:
 * - `job(id)` over HTTP ÷ `{ __typename }` over HTTP on the same server (the cost of a
 *   real resolver and store read over the bare HTTP + GraphQL pipeline);
 * - subscription fan-out to 1,000 and 5,000 graphql-ws subscribers of one batch (in a
 *   separate client process) ÷ a raw `ws` broadcast of the same message to as many
 *   sockets; p95 event → client latency at 50 events/s; server RSS per idle subscriber.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { loadConfig } from '../src/config.js';
import { type Conveyor, createConveyor } from '../src/conveyor.js';
import { createLogger } from '../src/log.js';
import { IpcChild } from './ipc-child.js';
import type { BenchResult } from './store-bench.js';

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))] ?? Number.NaN;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startServer(): Promise<{ conveyor: Conveyor; url: string; dispose: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-gbench-'));
  const config = loadConfig({
    file: null,
    env: {},
    overrides: {
      dataDir,
      'server.port': 0,
      'log.level': 'error',
      'retention.intervalMs': 0,
      'graphql.keepAliveMs': 0,
      // Thousands of subscribers come from one loopback address.
      'server.maxConnectionsPerIp': 0,
    },
  });
  const conveyor = await createConveyor({ config, logger: createLogger('error') });
  const { url } = await conveyor.start('api');
  return {
    conveyor,
    url: url as string,
    dispose: async () => {
      await conveyor.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Requests per second for `body`, with `concurrency` requests in flight, for `count` requests. */
async function rate(url: string, body: string, count: number, concurrency: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const response = await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-user-id': 'bench' },
          body,
        });
        const text = await response.text();
        if (response.status !== 200 || text.includes('"errors"')) throw new Error(`bench request failed: ${text}`);
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

export async function benchJobQuery(rounds: number, count: number): Promise<BenchResult> {
  const server = await startServer();
  try {
    const { value } = await server.conveyor.client.submitJob(
      { type: 'pdf', parameters: { url: 'https://example.com/a.pdf' } },
      { userId: 'bench', teams: [], admin: false },
    );
    const job = JSON.stringify({ query: `{ job(id: "${value.id}") { id type status parameters progress { percent } createdAt } }` });
    const bare = JSON.stringify({ query: '{ __typename }' });
    await rate(server.url, bare, 500, 8); // warm-up
    await rate(server.url, job, 500, 8);
    const ratios: number[] = [];
    let last = { job: 0, bare: 0 };
    for (let round = 0; round < rounds; round++) {
      const b = await rate(server.url, bare, count, 8);
      const j = await rate(server.url, job, count, 8);
      ratios.push(j / b);
      last = { job: j, bare: b };
    }
    const ratio = percentile(ratios, 0.5);
    return {
      name: 'job(id) over HTTP ÷ { __typename } over HTTP, same server, 8 in flight',
      value: `${ratio.toFixed(2)} (job ≈ ${Math.round(last.job)} req/s, __typename ≈ ${Math.round(last.bare)} req/s)`,
      target: '≥ 0.7',
      pass: ratio >= 0.7,
    };
  } finally {
    await server.dispose();
  }
}

/** Server RSS (and V8 heap + external) growth per idle subscriber, measured in a fresh server process. */
export async function rssPerSubscriber(mode: 'raw' | 'gql' | 'stock', n: number): Promise<{ rss: number; heap: number }> {
  const server = new IpcChild('./memory-server.js', [mode], ['--expose-gc']);
  const { url, batchId } = await server.request<{ url: string; batchId?: string }>(null, 'url');
  const open = (count: number) =>
    mode === 'raw' ? { open: { mode, url, n: count } } : { open: { mode, url, n: count, query: SUBSCRIPTION, variables: { id: batchId } } };
  // Warm up with a few hundred connections first: code compiled and caches filled once
  // are the same for 10 subscribers or 10,000, and are not per-subscriber memory. They
  // stay open: closing them would leave freed heap that the measured connections then
  // fill without growing RSS, which flatters whichever side frees more.
  const warm = new IpcChild('./fanout-client.js');
  await warm.request(open(300), 'ready');
  await sleep(500);
  const before = await server.request<{ rss: number; heap: number }>({ measure: true }, 'rss');
  const client = new IpcChild('./fanout-client.js');
  await client.request(open(n), 'ready');
  await sleep(500);
  const after = await server.request<{ rss: number; heap: number }>({ measure: true }, 'rss');
  await client.close();
  await warm.close();
  server.kill();
  return { rss: (after.rss - before.rss) / n, heap: (after.heap - before.heap) / n };
}

const SUBSCRIPTION = 'subscription ($id: ID!) { batchUpdated(id: $id) { at cursor status active counts { total pending completed } } }';

/** Events per second delivered to `n` sockets, graphql-ws and raw, plus latency and memory. */
export async function benchFanout(sizes: number[], events: number, latencySeconds: number): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const n of sizes) {
    // Raw ws: the same message shape graphql-ws sends, broadcast by hand.
    const http = createServer();
    const wss = new WebSocketServer({ server: http });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const rawUrl = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const rawClient = new IpcChild('./fanout-client.js');
    await rawClient.request({ open: { mode: 'raw', url: rawUrl, n } }, 'ready');
    const message = (i: number) =>
      JSON.stringify({
        id: '1',
        type: 'next',
        payload: {
          data: {
            batchUpdated: {
              at: new Date().toISOString(),
              cursor: String(1000 + i),
              status: 'PENDING',
              active: i % 2 === 0,
              counts: { total: 20, pending: 20, completed: 0 },
            },
          },
        },
      });
    let reached = rawClient.request<{ reached: number }>({ expect: n * events }, 'reached');
    let started = Date.now();
    for (let i = 0; i < events; i++) {
      const text = message(i);
      for (const socket of wss.clients) socket.send(text);
      if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
    }
    const rawRate = (n * events) / (((await reached).reached - started) / 1000);
    await rawClient.close();
    for (const socket of wss.clients) socket.terminate();
    wss.close();
    http.close();

    // graphql-ws: the real server, one batch, `n` subscribers in another process.
    const server = await startServer();
    const owner = { userId: 'bench', teams: [], admin: false };
    const { value } = await server.conveyor.client.submitBatch(
      { name: 'fan-out', active: false, jobs: [{ type: 'pdf', parameters: { url: 'https://example.com/a.pdf' } }] },
      owner,
    );
    const batchId = value.batch.id;
    const client = new IpcChild('./fanout-client.js');
    await client.request(
      { open: { mode: 'gql', url: `${server.url.replace('http', 'ws')}/graphql`, n, query: SUBSCRIPTION, variables: { id: batchId } } },
      'ready',
    );
    reached = client.request<{ reached: number }>({ expect: n * events }, 'reached');
    started = Date.now();
    for (let i = 0; i < events; i++) await server.conveyor.store.setBatchActive(batchId, i % 2 === 0);
    const gqlRate = (n * events) / (((await reached).reached - started) / 1000);
    const ratio = gqlRate / rawRate;
    results.push({
      name: `subscription fan-out to ${n.toLocaleString('en')} subscribers: graphql-ws ÷ raw ws broadcast`,
      value: `${ratio.toFixed(2)} (graphql-ws ≈ ${Math.round(gqlRate).toLocaleString('en')} msgs/s, raw ≈ ${Math.round(rawRate).toLocaleString('en')} msgs/s)`,
      target: '≥ 0.3',
      pass: ratio >= 0.3,
    });
    // RSS of a few MiB moves with pages and the collector: the median of three fresh
    // processes per side, alternating, so one noisy sample cannot decide the ratio.
    const rawSamples: { rss: number; heap: number }[] = [];
    const gqlSamples: { rss: number; heap: number }[] = [];
    const stockSamples: { rss: number; heap: number }[] = [];
    for (let i = 0; i < 3; i++) {
      rawSamples.push(await rssPerSubscriber('raw', n));
      gqlSamples.push(await rssPerSubscriber('gql', n));
      stockSamples.push(await rssPerSubscriber('stock', n));
    }
    const middle = (values: number[]) => [...values].sort((a, b) => a - b)[1] as number;
    const rawPerSocket = middle(rawSamples.map((x) => x.rss));
    const gqlPerSocket = middle(gqlSamples.map((x) => x.rss));
    const rawHeap = middle(rawSamples.map((x) => x.heap));
    const gqlHeap = middle(gqlSamples.map((x) => x.heap));
    const stockHeap = middle(stockSamples.map((x) => x.heap));
    const memoryRatio = gqlPerSocket / rawPerSocket;
    // RSS grows in pages, and a few MiB of new objects can land in pages the process had
    // already touched. When the baseline's RSS shows less than three quarters of what its
    // heap grew, that happened, and its RSS says nothing per socket.
    const measurable = rawPerSocket >= 0.75 * rawHeap;
    const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
    results.push({
      name: `server RSS per idle subscriber (${n.toLocaleString('en')}): graphql-ws ÷ raw ws`,
      value: measurable
        ? `${memoryRatio.toFixed(2)} (${kib(gqlPerSocket)} vs ${kib(rawPerSocket)})`
        : `not measurable this run (${kib(gqlPerSocket)} vs ${kib(rawPerSocket)}; raw ws heap grew ${kib(rawHeap)} per socket)`,
      detail: [`samples: Conveyor ${gqlSamples.map((x) => kib(x.rss)).join(', ')}; raw ws ${rawSamples.map((x) => kib(x.rss)).join(', ')}`],
      target: '≤ 3',
      pass: measurable ? memoryRatio <= 3 : null,
    });
    const heapRatio = gqlHeap / rawHeap;
    results.push({
      name: `V8 heap + external memory per idle subscriber (${n.toLocaleString('en')}): graphql-ws ÷ raw ws`,
      value: `${heapRatio.toFixed(2)} (${kib(gqlHeap)} vs ${kib(rawHeap)}; graphql-ws's own ws server with graphql-js ${kib(stockHeap)})`,
      target: '≤ 3',
      pass: heapRatio <= 3,
    });

    // Latency at a steady 50 events/s.
    await client.request({ reset: true }, 'reset');
    const total = latencySeconds * 50;
    reached = client.request<{ reached: number }>({ expect: n * total }, 'reached');
    for (let i = 0; i < total; i++) {
      const due = Date.now() + 20;
      await server.conveyor.store.setBatchActive(batchId, i % 2 === 1);
      await sleep(Math.max(0, due - Date.now()));
    }
    await reached;
    const { latencies } = await client.request<{ latencies: number[] }>({ latency: true }, 'latencies');
    results.push({
      name: `event → client latency at 50 events/s, ${n.toLocaleString('en')} subscribers`,
      value: `p50 ${percentile(latencies, 0.5)} ms, p95 ${percentile(latencies, 0.95)} ms`,
      target: 'reported',
      pass: null,
    });
    await client.close();
    await server.dispose();
  }
  return results;
}
