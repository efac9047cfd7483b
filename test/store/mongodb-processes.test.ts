/**
 * MongoDB with real OS processes (`src/main.ts`): three worker processes run 10,000 jobs
 * in five batches while two API processes serve subscriptions. One batch is cancelled
 * mid-way; every subscriber hops between the two API processes, resuming with its last
 * cursor, also during a quiet period in which nothing is written. Checks: each job ran
 * at most once (its one attempt claimed once), every batch's counts equal the per-status
 * counts of its jobs, and every subscriber's events equal the uninterrupted feed.
 *
 * Runs where MONGODB_URI names a replica set (`npm run test:mongodb`, and the GitHub
 * workflow); otherwise it says why on one line and counts as skipped. The quiet period
 * lasts MONGODB_TEST_QUIET_MS (default 5000; 60000 gives the quiet minute in which an
 * idle replica set writes only its periodic no-ops to the oplog).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type Client, createClient } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { JobStatus } from '../../src/domain/types.js';
import { openStore } from '../../src/store/index.js';
import type { ChangeEvent, JobStore } from '../../src/store/port.js';
import { mongoAdapter } from '../helpers/adapters.js';
import { withHeaders } from '../helpers/api.js';

const mongo = await mongoAdapter();
const QUIET_MS = Number(process.env.MONGODB_TEST_QUIET_MS ?? 5000);
const BATCHES = 5;
const JOBS_PER_BATCH = 2000;
const TOTAL = BATCHES * JOBS_PER_BATCH;
const TERMINAL: JobStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

/** Every waiter re-checks its condition when anything is recorded. */
const waiters = new Set<() => void>();
const notify = () => {
  for (const check of [...waiters]) check();
};
const failures: Error[] = [];

/** Resolves once `done()` holds (checked on every recorded event); fails after `ms` or on a recorded failure. */
function until(what: string, done: () => boolean, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (failures.length > 0) {
        finish();
        reject(failures[0]);
      } else if (done()) {
        finish();
        resolve();
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`waited ${ms} ms for ${what}`));
    }, ms);
    const finish = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
}

interface Proc {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr(): string;
  exited: Promise<number | null>;
}

function start(role: 'api' | 'worker', env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--role', role], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    notify();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    notify();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  // A child that dies fails the test at once, with what it said.
  void exited.then((code) => {
    if (!stopping) failures.push(new Error(`a ${role} process exited (code ${code}); stderr:\n${stderr.slice(-4000)}`));
    notify();
  });
  return { child, lines, stderr: () => stderr, exited };
}
let stopping = false;

const QUERY = 'subscription ($id: ID!, $after: String) { jobEvents(filter: { batchId: $id }, after: $after) { cursor jobId status op } }';

/** A subscriber to one batch's jobEvents that disconnects and resumes with its last cursor on the other API process. */
class Hopper {
  readonly cursors: string[] = [];
  hops = 0;
  private client: Client | null = null;
  private generation = 0;
  private api: number;

  constructor(
    readonly batchId: string,
    private readonly apis: string[],
    /** The first subscription's `after`: "" is from the oldest change. */
    private readonly start: string,
    private readonly hopEvery: number,
    first: number,
  ) {
    this.api = first;
    this.connect();
  }

  private connect(): void {
    const generation = ++this.generation;
    const client = createClient({
      url: `${(this.apis[this.api] as string).replace('http', 'ws')}/graphql`,
      webSocketImpl: withHeaders({ 'x-user-id': 'alice' }),
      retryAttempts: 0,
      lazy: true,
    });
    this.client = client;
    const after = this.cursors.at(-1) ?? this.start;
    const left = () => generation !== this.generation;
    client.subscribe<{ jobEvents: { cursor: string } }>(
      { query: QUERY, variables: { id: this.batchId, after } },
      {
        next: (result) => {
          // What a connection we left still sends is not ours any more: we resume after our last cursor.
          if (left()) return;
          if (result.errors !== undefined) failures.push(new Error(`subscription error: ${JSON.stringify(result.errors)}`));
          else this.cursors.push((result.data as { jobEvents: { cursor: string } }).jobEvents.cursor);
          notify();
          if (this.cursors.length % this.hopEvery === 0) void this.hop();
        },
        error: (error) => {
          if (left()) return;
          failures.push(new Error(`subscription to batch ${this.batchId} failed: ${String((error as Error)?.message ?? error)}`));
          notify();
        },
        complete: () => {
          if (left()) return;
          failures.push(new Error(`subscription to batch ${this.batchId} completed`));
          notify();
        },
      },
    );
  }

  /** Disconnects, then resumes on the other API process after the last cursor received. */
  async hop(): Promise<void> {
    this.generation++;
    const old = this.client;
    this.client = null;
    await old?.dispose();
    this.api = 1 - this.api;
    this.hops++;
    this.connect();
  }

  async stop(): Promise<void> {
    this.generation++;
    await this.client?.dispose();
  }
}

describe.skipIf(mongo.adapter === null)(
  `mongodb store across processes${mongo.adapter === null ? ` (skipped: ${mongo.skipped})` : ''}`,
  () => {
    const procs: Proc[] = [];
    const dirs: string[] = [];
    let store: JobStore | null = null;
    afterAll(async () => {
      stopping = true;
      for (const proc of procs) if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await store?.close();
      await mongo.adapter?.cleanup();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it(
      'runs 10,000 jobs on three workers once each, with exact batch counts and gapless subscribers that hop between two API processes',
      async () => {
        const adapter = mongo.adapter as NonNullable<typeof mongo.adapter>;
        const database = adapter.database();
        const env = { MONGODB_URI: adapter.uri, CONVEYOR_STORE__DRIVER: 'mongodb', CONVEYOR_STORE__MONGODB__DATABASE: database };
        store = await openStore(loadConfig({ file: null, env }));
        const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-mongo-proc-'));
        dirs.push(dataDir);
        const childEnv = {
          ...env,
          CONVEYOR_PORT: '0',
          CONVEYOR_DATA_DIR: dataDir,
          CONVEYOR_HANDLERS__MODULES: 'test/fixtures/handlers/test-handlers.ts',
          CONVEYOR_RETENTION__INTERVAL_MS: '0',
        };

        // The uninterrupted feed every subscriber is compared with, and what it says of each job.
        const reference: ChangeEvent[] = [];
        const status = new Map<string, string>();
        const batchOf = new Map<string, string>();
        /** The attempt numbers each job was seen PROCESSING with. */
        const attemptsSeen = new Map<string, Set<number>>();
        const count = (of: (s: string | undefined) => boolean, batchId?: string) =>
          [...status].filter(([id, s]) => of(s) && (batchId === undefined || batchOf.get(id) === batchId)).length;
        const isTerminal = (s: string | undefined) => TERMINAL.includes(s as JobStatus);
        // From the oldest change (the database is new): everything this test writes.
        const listening = store.listen(null, {
          event: (event) => {
            reference.push(event);
            if (event.entity === 'job' && event.op !== 'logged') {
              if (event.batchId !== null) batchOf.set(event.id, event.batchId);
              if (event.status !== null) status.set(event.id, event.status);
              const attempts = (event.data as { attempts?: number } | null)?.attempts;
              if (event.status === 'PROCESSING' && typeof attempts === 'number') {
                const seen = attemptsSeen.get(event.id) ?? new Set<number>();
                seen.add(attempts);
                attemptsSeen.set(event.id, seen);
              }
            }
            notify();
          },
          error: (error) => {
            failures.push(new Error(`the reference listener failed: ${error.message}`));
            notify();
          },
        });

        const apis = [
          start('api', { ...childEnv, CONVEYOR_LOG__LEVEL: 'info' }),
          start('api', { ...childEnv, CONVEYOR_LOG__LEVEL: 'info' }),
        ];
        procs.push(...apis);
        const urls = await Promise.all(
          apis.map(async (api) => {
            await until('an API process to listen', () => /"url":"http:[^"]+"/.test(api.stderr()), 60_000);
            return (/"url":"(http:[^"]+)"/.exec(api.stderr()) as RegExpExecArray)[1] as string;
          }),
        );
        const workers = [1, 2, 3].map(() =>
          start('worker', { ...childEnv, CONVEYOR_LOG__LEVEL: 'warn', CONVEYOR_WORKER__CONCURRENCY: '8' }),
        );
        procs.push(...workers);

        const batches: string[] = [];
        for (let b = 0; b < BATCHES; b++) {
          const { value } = await store.createBatch({
            name: `b${b}`,
            ownerId: 'alice',
            jobs: Array.from({ length: JOBS_PER_BATCH }, (_, n) => ({ type: 'sleepy', parameters: { ms: 0, n }, maxAttempts: 1 })),
          });
          batches.push(value.batch.id);
        }
        const hoppers = batches.map((id, b) => new Hopper(id, urls, '', 500 + 97 * b, b % 2));
        const ofBatch = (id: string) =>
          reference.filter((e) => e.entity === 'job' && e.op !== 'logged' && e.batchId === id).map((e) => e.cursor);

        // Mid-way through the second batch: cancel it.
        await until('the second batch to be running', () => count((s) => s === 'COMPLETED', batches[1]) >= 300, 10 * 60_000);
        await store.cancelBatch(batches[1] as string);

        // A quiet period: pause what is left, wait until nothing runs, then write nothing at all.
        await until('half of the jobs to finish', () => count(isTerminal) >= TOTAL / 2, 10 * 60_000);
        const paused: string[] = [];
        for (const batch of await store.getBatches(batches)) {
          if (batch !== null && batch.counts.pending > 0) {
            await store.setBatchActive(batch.id, false);
            paused.push(batch.id);
          }
        }
        await expect.poll(() => store?.countJobs({ status: ['PROCESSING'] }), { timeout: 60_000, interval: 200 }).toBe(0);
        // The feed has everything written so far: no job running, every pause seen.
        const pausedSeen = (id: string) =>
          reference.some((e) => e.entity === 'batch' && e.id === id && (e.data as { active?: boolean } | null)?.active === false);
        await until('the feed to show the pause', () => count((s) => s === 'PROCESSING') === 0 && paused.every(pausedSeen), 60_000);
        const quietFrom = reference.length;
        const caughtUp = () => hoppers.every((h) => h.cursors.at(-1) === ofBatch(h.batchId).at(-1));
        await until('every subscriber to catch up before the quiet period', caughtUp, 60_000);
        for (const hopper of hoppers) await hopper.hop();
        // Time is the subject here: the cluster stays idle for the whole period.
        await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
        for (const hopper of hoppers) await hopper.hop();
        await until('every subscriber resumed after the quiet period to reach the end of the feed', caughtUp, 60_000);
        expect(reference.length).toBe(quietFrom);
        for (const id of paused) await store.setBatchActive(id, true);

        await until('every job to finish', () => count(isTerminal) === TOTAL, 15 * 60_000);
        await until('every subscriber to receive its batch to the end', caughtUp, 120_000);
        for (const hopper of hoppers) await hopper.stop();
        listening.stop();
        expect(failures).toEqual([]);

        // Every subscriber's events are the uninterrupted feed of its batch: no gap, no duplicate, same order.
        for (const hopper of hoppers) {
          const expected = ofBatch(hopper.batchId);
          expect(new Set(expected).size).toBe(expected.length);
          expect(hopper.cursors.length, hopper.batchId).toBe(expected.length);
          expect(hopper.cursors, hopper.batchId).toEqual(expected);
          expect(hopper.hops).toBeGreaterThanOrEqual(4);
        }

        // Each job ran at most once: its one attempt was claimed once, by one process.
        const started = workers.flatMap((w) => w.lines.filter((l) => l.startsWith('started ')).map((l) => l.slice('started '.length)));
        expect(started.length).toBe(new Set(started).size);
        expect(workers.every((w) => w.lines.some((l) => l.startsWith('started ')))).toBe(true);
        const ids = [...status.keys()];
        expect(ids).toHaveLength(TOTAL);
        const ran = new Set(started);
        for (let i = 0; i < ids.length; i += 500) {
          for (const job of await store.getJobs(ids.slice(i, i + 500))) {
            const id = job?.id as string;
            expect(job?.attempts, id).toBeLessThanOrEqual(1);
            expect(job?.leaseToken, id).toBeLessThanOrEqual(1);
            expect([...(attemptsSeen.get(id) ?? [])], id).toEqual(job?.attempts === 1 ? [1] : []);
            if (job?.status === 'COMPLETED') expect(ran.has(id), id).toBe(true);
            if (!ran.has(id)) expect(job?.status, id).toBe('CANCELLED');
          }
        }
        expect(started.every((id) => status.has(id))).toBe(true);

        // Batch counts equal the per-status counts of the batch's jobs.
        for (const batch of await store.getBatches(batches)) {
          const counted = {
            total: await store.countJobs({ batchId: batch?.id as string }),
            pending: await store.countJobs({ batchId: batch?.id as string, status: ['PENDING'] }),
            processing: await store.countJobs({ batchId: batch?.id as string, status: ['PROCESSING'] }),
            completed: await store.countJobs({ batchId: batch?.id as string, status: ['COMPLETED'] }),
            failed: await store.countJobs({ batchId: batch?.id as string, status: ['FAILED'] }),
            cancelled: await store.countJobs({ batchId: batch?.id as string, status: ['CANCELLED'] }),
          };
          expect(batch?.counts).toMatchObject(counted);
          expect(counted.total).toBe(JOBS_PER_BATCH);
        }
        const [, cancelled] = await store.getBatches([batches[0] as string, batches[1] as string]);
        expect(cancelled?.counts.cancelled).toBeGreaterThan(0);
        expect(cancelled?.counts.completed).toBeGreaterThanOrEqual(300);

        stopping = true;
        for (const proc of procs) proc.child.kill('SIGTERM');
        expect(await Promise.all(procs.map((proc) => proc.exited))).toEqual(procs.map(() => 0));
      },
      20 * 60_000,
    );
  },
);
