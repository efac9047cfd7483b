/**
 * Worker benchmarks: end-to-end throughput of no-op jobs (SQLite file ÷ the same
 * worker on an in-memory SQLite store, measured alternately in this run), idle
 * enqueue→start latency, and memory over a long run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULTS } from '../src/config.js';
import { createRegistry, defineHandler, type HandlerDefinition } from '../src/handlers/registry.js';
import { createLogger } from '../src/log.js';
import { createNetGuard } from '../src/net/guard.js';
import { createFsResultStore } from '../src/results/fs/fs-result-store.js';
import type { JobStore } from '../src/store/port.js';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { createUploadStore } from '../src/uploads/uploads.js';
import { createWorker, type Worker } from '../src/worker/worker.js';
import type { BenchResult } from './store-bench.js';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)] as number;
};

interface Rig {
  store: JobStore;
  start(onRun: () => void): Worker;
  dispose(): Promise<void>;
}

function rig(path: string | null, concurrency: number): Rig {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-wbench-'));
  const store = createSqliteStore({ path: path === null ? ':memory:' : join(dir, 'bench.db') });
  let worker: Worker | null = null;
  return {
    store,
    start(onRun) {
      const noop = defineHandler({
        type: 'noop',
        parameters: z.looseObject({}),
        async run() {
          onRun();
          return undefined;
        },
      }) as unknown as HandlerDefinition;
      const results = createFsResultStore(join(dir, 'results'));
      worker = createWorker({
        store,
        registry: createRegistry([noop]),
        results,
        services: { net: createNetGuard([]), uploads: createUploadStore(results), limits: DEFAULTS.limits },
        config: { ...DEFAULTS.worker, concurrency, pollMs: 1000 },
        logger: createLogger('error'),
      });
      worker.start();
      return worker;
    },
    async dispose() {
      await worker?.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const jobs = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'noop', parameters: { i }, maxAttempts: 1, ownerId: 'bench' }));

/** Enqueues `count` jobs in bulk, starts a worker, and times until all completed. */
async function throughput(path: string | null, count: number): Promise<number> {
  const r = rig(path, 32);
  for (let i = 0; i < count; i += 1000) await r.store.createJobs(jobs(Math.min(1000, count - i)));
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const start = performance.now();
  const after = await r.store.headCursor();
  r.start(() => {});
  const controller = new AbortController();
  void (async () => {
    for await (const change of r.store.watch({ after, signal: controller.signal })) {
      if (change.entity === 'job' && change.status === 'COMPLETED' && ++done === count) finish();
    }
  })();
  await finished;
  const seconds = (performance.now() - start) / 1000;
  controller.abort();
  await r.dispose();
  return count / seconds;
}

export async function benchWorkerThroughput(rounds = 3, count = 5000): Promise<BenchResult> {
  const ratios: number[] = [];
  let fileRate = 0;
  let memoryRate = 0;
  for (let i = 0; i < rounds; i++) {
    memoryRate = await throughput(null, count);
    fileRate = await throughput('file', count);
    ratios.push(fileRate / memoryRate);
  }
  const ratio = median(ratios);
  return {
    name: 'worker end to end, no-op jobs, concurrency 32: SQLite file ÷ in-memory SQLite',
    value: `${ratio.toFixed(2)} (file ≈ ${Math.round(fileRate).toLocaleString('en')} jobs/s, memory ≈ ${Math.round(memoryRate).toLocaleString('en')} jobs/s)`,
    target: '≥ 0.5',
    pass: ratio >= 0.5,
  };
}

/** Idle worker: one job submitted at a time; time from submit to the handler starting. */
export async function benchLatency(samples = 1000): Promise<BenchResult[]> {
  const r = rig('file', 5);
  let started: () => void = () => {};
  r.start(() => started());
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const t0 = performance.now();
    await r.store.createJobs(jobs(1));
    await running;
    latencies.push(performance.now() - t0);
  }
  await r.dispose();
  const p95 = percentile(latencies, 0.95);
  return [
    {
      name: `idle enqueue → handler start latency (${samples} single submits)`,
      value: `p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p95 ${p95.toFixed(2)} ms`,
      target: 'p95 ≤ 10 ms',
      pass: p95 <= 10,
    },
  ];
}

/** RSS after a warm-up of 10,000 jobs, then after `total` jobs: growth must stay under 10 %. */
export async function benchMemory(total = 100_000): Promise<BenchResult> {
  const r = rig('file', 32);
  const gc = (globalThis as { gc?: () => void }).gc;
  let done = 0;
  let waiting: { target: number; resolve: () => void } | null = null;
  r.start(() => {
    done++;
    if (waiting !== null && done >= waiting.target) waiting.resolve();
  });
  const runUntil = async (target: number) => {
    for (let submitted = done; submitted < target; submitted += 1000) await r.store.createJobs(jobs(1000));
    await new Promise<void>((resolve) => {
      waiting = { target, resolve };
      if (done >= target) resolve();
    });
    // Let the last completions commit before measuring.
    await new Promise((resolve) => setTimeout(resolve, 200));
  };
  const warmup = Math.min(10_000, total / 10);
  await runUntil(warmup);
  gc?.();
  const before = process.memoryUsage().rss;
  await runUntil(total);
  gc?.();
  const after = process.memoryUsage().rss;
  await r.dispose();
  const growth = (after - before) / before;
  return {
    name: `worker RSS growth from ${warmup.toLocaleString('en')} to ${total.toLocaleString('en')} no-op jobs`,
    value: `${(growth * 100).toFixed(1)} % (${Math.round(before / 2 ** 20)} → ${Math.round(after / 2 ** 20)} MiB)${gc ? '' : ' (no --expose-gc)'}`,
    target: '< 10 %',
    pass: growth < 0.1,
  };
}
