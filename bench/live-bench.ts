/**
 * Live progress at scale: S sockets, one `jobUpdated` subscription each (opened by a
 * separate client process), over J jobs that report progress once a second for T
 * seconds, served by Conveyor started as `npm start` starts it (API and worker in one
 * process) and, for the largest S, as separate `api` and `worker` processes on one
 * SQLite file. Measured: event → client latency from the change's own timestamp
 * (p50/p95/p99), whether every subscriber saw its job's terminal state, and server RSS
 * per idle subscriber. Baseline in the same run: a raw `ws` server sending the same
 * messages on the same schedule to the same client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type WebSocket, WebSocketServer } from 'ws';
import { IpcChild } from './ipc-child.js';
import type { BenchResult } from './store-bench.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))] ?? Number.NaN;

interface Outcome {
  latencies: number[];
  ended: number;
}

/** Asks the client for its figures until every socket saw its job end (or the deadline passes). */
async function untilEnded(client: IpcChild, sockets: number, deadline: number): Promise<Outcome> {
  for (;;) {
    const stats = await client.request<{ latencies: number[]; ended: number }>({ stats: true }, 'latencies');
    if (stats.ended >= sockets || Date.now() > deadline) return stats;
    await sleep(1000);
  }
}

const message = (at: Date, status: string, percent: number | null) =>
  JSON.stringify({
    id: '1',
    type: 'next',
    payload: { data: { jobUpdated: { at: at.toISOString(), status, progress: percent === null ? null : { percent } } } },
  });

/** The baseline: a bare `ws` server sending each job's changes to the sockets that follow it. */
async function rawRun(sockets: number, jobs: number, seconds: number): Promise<Outcome> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  const byJob = new Map<string, WebSocket[]>();
  wss.on('connection', (socket, request) => {
    const id = new URL(request.url ?? '/', 'http://x').searchParams.get('id') as string;
    const list = byJob.get(id) ?? [];
    byJob.set(id, list);
    list.push(socket);
    socket.send(message(new Date(), 'PENDING', null));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const ids = Array.from({ length: jobs }, (_, i) => `job_${i}`);
  const client = new IpcChild('./live-client.js');
  try {
    await client.request({ open: { mode: 'raw', url, ids, n: sockets } }, 'ready');
    // Like the worker starting J jobs: each ticks once a second from its own start.
    const timers: NodeJS.Timeout[] = [];
    for (const id of ids) {
      let second = 0;
      const send = (text: string) => {
        for (const socket of byJob.get(id) ?? []) socket.send(text);
      };
      send(message(new Date(), 'PROCESSING', 0));
      const timer = setInterval(() => {
        second++;
        if (second < seconds) send(message(new Date(), 'PROCESSING', Math.round((second / seconds) * 100)));
        else {
          send(message(new Date(), 'COMPLETED', 100));
          clearInterval(timer);
        }
      }, 1000);
      timers.push(timer);
    }
    const outcome = await untilEnded(client, sockets, Date.now() + (seconds + 60) * 1000);
    for (const timer of timers) clearInterval(timer);
    return outcome;
  } finally {
    await client.close();
    for (const socket of wss.clients) socket.terminate();
    wss.close();
    http.close();
  }
}

/** Conveyor: `role all` in one process, or `api` and `worker` processes on one SQLite file. */
async function conveyorRun(sockets: number, jobs: number, seconds: number, split: boolean): Promise<Outcome & { rssPerSocket: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-live-'));
  // BENCH_CPU_PROF=<dir>: a CPU profile of the API process (open it in Chrome's DevTools or speedscope).
  const profile = process.env.BENCH_CPU_PROF;
  const api = new IpcChild(
    './live-server.js',
    [split ? 'api' : 'all', dataDir],
    ['--expose-gc', ...(profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`])],
  );
  let worker: IpcChild | null = null;
  const client = new IpcChild('./live-client.js');
  try {
    const { url } = await api.request<{ url: string }>(null, 'url');
    const { batchId, ids } = await api.request<{ batchId: string; ids: string[] }>({ submit: { jobs, seconds } }, 'ids');
    if (split) {
      worker = new IpcChild('./live-server.js', ['worker', dataDir]);
      await worker.request(null, 'url');
    }
    const snapshots = process.env.BENCH_HEAP_SNAPSHOTS;
    if (snapshots !== undefined) await api.request({ snapshot: join(snapshots, 'before.heapsnapshot') }, 'snapshot');
    const before = await api.request<{ rss: number }>({ measure: true }, 'rss');
    await client.request({ open: { mode: 'gql', url: `${url.replace('http', 'ws')}/graphql`, ids, n: sockets } }, 'ready');
    const after = await api.request<{ rss: number }>({ measure: true }, 'rss');
    // BENCH_HEAP_SNAPSHOTS=<dir>: heap snapshots of the API process before and after the sockets opened.
    if (snapshots !== undefined) await api.request({ snapshot: join(snapshots, 'after.heapsnapshot') }, 'snapshot');
    await api.request({ activate: batchId }, 'activated');
    const outcome = await untilEnded(client, sockets, Date.now() + (seconds + 60) * 1000);
    return { ...outcome, rssPerSocket: (after.rss - before.rss) / sockets };
  } finally {
    await client.close();
    await worker?.close();
    await api.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const describe = (latencies: number[]) => {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) };
};

/** The live-progress benchmark for each number of sockets in `sizes`. */
export async function benchLive(sizes: number[], jobs: number, seconds: number): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const largest = Math.max(...sizes);
  for (const sockets of sizes) {
    const raw = await rawRun(sockets, jobs, seconds);
    const all = await conveyorRun(sockets, jobs, seconds, false);
    const r = describe(raw.latencies);
    const c = describe(all.latencies);
    const label = `${sockets.toLocaleString('en')} sockets over ${jobs.toLocaleString('en')} jobs, progress once a second for ${seconds} s`;
    results.push({
      name: `event → client latency, ${label} (role all)`,
      value: `p50 ${c.p50} ms, p95 ${c.p95} ms, p99 ${c.p99} ms; terminal state seen by ${all.ended}/${sockets} (raw ws: p50 ${r.p50}, p95 ${r.p95}, p99 ${r.p99} ms, ${raw.ended}/${sockets})`,
      target: 'p95 ≤ 250 ms, every terminal state',
      pass: c.p95 <= 250 && all.ended >= sockets,
    });
    results.push({
      name: `server RSS per idle subscriber, ${sockets.toLocaleString('en')} sockets (role all)`,
      value: `${(all.rssPerSocket / 1024).toFixed(1)} KiB`,
      target: sockets === largest ? '≤ 6 KiB' : 'reported',
      pass: sockets === largest ? all.rssPerSocket <= 6 * 1024 : null,
    });
    if (sockets === largest) {
      const split = await conveyorRun(sockets, jobs, seconds, true);
      const s = describe(split.latencies);
      results.push({
        name: `event → client latency, ${label} (role api + role worker processes)`,
        value: `p50 ${s.p50} ms, p95 ${s.p95} ms, p99 ${s.p99} ms; terminal state seen by ${split.ended}/${sockets}`,
        target: 'reported',
        pass: null,
      });
    }
  }
  return results;
}
