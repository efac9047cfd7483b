/**
 * The service side of the live-progress benchmark, in a process of its own (as
 * `npm start` runs it): `node live-server.js <role> <dataDir>` starts Conveyor with the
 * `ticker` job type (progress once a second) on a SQLite file in `dataDir`. Over IPC:
 * sends `{ url }` once listening; `{ submit: { jobs, seconds } }` → `{ batchId, ids }`
 * (a paused batch), `{ activate: batchId }` → `{ activated }`, `{ measure: true }` →
 * `{ rss }` (median of five samples after collecting garbage), `{ close: true }` stops.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { writeHeapSnapshot } from 'node:v8';
import { z } from 'zod';
import { loadConfig } from '../src/config.js';
import { createConveyor } from '../src/conveyor.js';
import { defineHandler } from '../src/handlers/registry.js';
import { createLogger } from '../src/log.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ticker = defineHandler({
  type: 'ticker',
  description: 'Reports progress once a second for `seconds` seconds, then completes.',
  parameters: z.strictObject({ seconds: z.number().int().min(1).max(600) }),
  async run(p, ctx) {
    for (let second = 1; second <= p.seconds; second++) {
      await delay(1000, undefined, { signal: ctx.signal });
      if (second < p.seconds) ctx.progress({ percent: Math.round((second / p.seconds) * 100), step: `second ${second}` });
    }
    return { seconds: p.seconds };
  },
});

async function main(): Promise<void> {
  const role = (process.argv[2] ?? 'all') as 'all' | 'api' | 'worker';
  const dataDir = process.argv[3] as string;
  const config = loadConfig({
    file: null,
    env: {},
    overrides: {
      role,
      dataDir,
      'server.port': 0,
      'log.level': 'error',
      'retention.intervalMs': 0,
      'graphql.keepAliveMs': 0,
      'metrics.enabled': false,
      // Every subscriber connects from the one loopback address of the client process.
      'server.maxConnectionsPerIp': 0,
      'server.maxConnections': 0,
      'worker.concurrency': 1000,
      'worker.progressIntervalMs': 250,
    },
  });
  const conveyor = await createConveyor({ config, handlers: [ticker], logger: createLogger('error') });
  const { url } = await conveyor.start(role);
  process.send?.({ url });
  const owner = { userId: 'bench', teams: [], admin: false };
  process.on(
    'message',
    async (message: {
      submit?: { jobs: number; seconds: number };
      activate?: string;
      measure?: boolean;
      snapshot?: string;
      close?: boolean;
    }) => {
      if (message.submit !== undefined) {
        const { jobs, seconds } = message.submit;
        const { value } = await conveyor.client.submitBatch(
          { name: 'live', active: false, jobs: Array.from({ length: jobs }, () => ({ type: 'ticker', parameters: { seconds } })) },
          owner,
        );
        process.send?.({ batchId: value.batch.id, ids: value.jobs.map((job) => job.id) });
      } else if (message.activate !== undefined) {
        await conveyor.store.setBatchActive(message.activate, true);
        process.send?.({ activated: true });
      } else if (message.measure === true) {
        const gc = (globalThis as { gc?: () => void }).gc;
        const samples: number[] = [];
        for (let i = 0; i < 5; i++) {
          gc?.();
          await sleep(100);
          samples.push(process.memoryUsage().rss);
        }
        samples.sort((a, b) => a - b);
        process.send?.({ rss: samples[2] });
      } else if (typeof message.snapshot === 'string') {
        // A heap snapshot for memory work (not part of the benchmark's figures).
        (globalThis as { gc?: () => void }).gc?.();
        process.send?.({ snapshot: writeHeapSnapshot(message.snapshot) });
      } else if (message.close === true) {
        await conveyor.stop();
        process.exit(0);
      }
    },
  );
}

await main();
