/**
 * Workers as real OS processes (`src/main.ts --role worker`, test handlers loaded
 * through handlers.modules): a crash with SIGKILL, a cancel from another process,
 * and graceful SIGTERM.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/types.js';
import type { HandlerDefinition } from '../../src/handlers/registry.js';
import { createNetGuard } from '../../src/net/guard.js';
import { validateWebhook } from '../../src/webhooks/validate.js';
import testHandlers from '../fixtures/handlers/test-handlers.js';
import { startReceiver } from '../helpers/receiver.js';
import { createHarness, type Harness } from '../helpers/worker-harness.js';

interface WorkerProcess {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the stdout line that starts with `prefix` (the n-th such line). */
  line(prefix: string, nth?: number): Promise<string>;
  exited: Promise<number | null>;
  stderr(): string;
  /** Every stdout line so far that starts with `prefix`. */
  lines(prefix: string): string[];
  /** `promise`, or a failure with the worker's stderr as soon as the worker exits first. */
  alive<T>(promise: Promise<T>): Promise<T>;
}

function startWorker(dataDir: string, env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--role', 'worker'], {
    env: {
      ...process.env,
      CONVEYOR_DATA_DIR: dataDir,
      // Every role listens (health and metrics); several workers side by side need free ports.
      CONVEYOR_PORT: '0',
      CONVEYOR_HANDLERS__MODULES: 'test/fixtures/handlers/test-handlers.ts',
      CONVEYOR_WORKER__LEASE_MS: '1500',
      CONVEYOR_WORKER__HEARTBEAT_MS: '300',
      CONVEYOR_WORKER__POLL_MS: '200',
      CONVEYOR_STORE__SQLITE__CHANGE_POLL_MS: '20',
      CONVEYOR_RETENTION__INTERVAL_MS: '0',
      CONVEYOR_LOG__LEVEL: 'warn',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const wake of waiters) wake();
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    exited,
    stderr: () => stderr,
    lines: (prefix) => lines.filter((l) => l.startsWith(prefix)),
    alive: (promise) =>
      Promise.race([
        promise,
        exited.then((code) => {
          throw new Error(`the worker exited first (code ${code}); stderr:\n${stderr}`);
        }),
      ]),
    line(prefix, nth = 1) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.filter((l) => l.startsWith(prefix))[nth - 1];
          if (found !== undefined) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        check();
        exited.then(() => {
          check();
          reject(new Error(`worker exited before printing "${prefix}" #${nth}; stderr: ${stderr}`));
        });
      });
    },
  };
}

const sleepy = testHandlers[0] as unknown as HandlerDefinition;

describe('worker processes', () => {
  let h: Harness;
  const children: ChildProcessWithoutNullStreams[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await h.close();
  });

  async function submitSleepy(count: number, ms: number): Promise<string[]> {
    const created = await h.store.createJobs(
      Array.from({ length: count }, (_, n) => ({ type: 'sleepy', parameters: { ms, n }, maxAttempts: 3, ownerId: 'alice' })),
    );
    return created.map((c) => c.value.id);
  }

  it('recovers a job from a worker killed with SIGKILL: another worker completes it once', async () => {
    h = createHarness();
    const [id] = await submitSleepy(1, 300);
    const crashing = startWorker(h.dir);
    children.push(crashing.child);
    await crashing.line(`started ${id}`);
    crashing.child.kill('SIGKILL');
    await crashing.exited;

    const [stranded] = (await h.store.getJobs([id as string])) as Job[];
    expect(stranded?.status).toBe('PROCESSING');
    h.worker([sleepy], { leaseMs: 1500 }, { workerId: 'rescuer' }).start();
    const [job] = await h.waitForStatus([id as string], ['COMPLETED'], 10_000);
    expect(job).toMatchObject({ attempts: 2, results: { pid: process.pid } });
    expect(job?.errors.map((e) => e.code)).toEqual(['LEASE_EXPIRED']);
    expect((await h.results.read(id as string, 'done.txt'))?.toString()).toBe(`finished by ${process.pid}`);
  });

  it('aborts a handler in another process on cancelJob, and keeps working afterwards', async () => {
    h = createHarness();
    // The handler would run for a minute: only the cancel can end it within the test.
    const [id] = await submitSleepy(1, 60_000);
    const worker = startWorker(h.dir);
    children.push(worker.child);
    await worker.line(`started ${id}`);
    await h.store.cancelJob(id as string);
    await worker.line(`aborted ${id}`);
    const [job] = await worker.alive(h.waitForStatus([id as string], ['CANCELLED'], 5000));
    expect(job?.finishedAt).toBeInstanceOf(Date);
    // The process is still up and takes the next job.
    const [next] = await submitSleepy(1, 0);
    await worker.alive(h.waitForStatus([next as string], ['COMPLETED']));
    expect(worker.child.exitCode).toBeNull();
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });

  it('on SIGTERM releases running jobs it cannot finish in time, leaves pending ones alone, exits 0; a new worker finishes all', async () => {
    h = createHarness();
    const ids = await submitSleepy(25, 1500);
    const worker = startWorker(h.dir, { CONVEYOR_WORKER__CONCURRENCY: '5', CONVEYOR_WORKER__SHUTDOWN_GRACE_MS: '200' });
    children.push(worker.child);
    await worker.line('started', 5);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const jobs = (await h.store.getJobs(ids)) as Job[];
    expect(jobs.filter((j) => j.status === 'PROCESSING')).toHaveLength(0);
    expect(jobs.every((j) => j.status === 'PENDING' && j.attempts === 0)).toBe(true);
    expect(jobs.filter((j) => j.leaseToken === 1)).toHaveLength(5); // the five that ran were released

    h.worker([sleepy], { concurrency: 25 }).start();
    const done = await h.waitForStatus(ids, ['COMPLETED'], 15_000);
    expect(done.every((j) => j.attempts === 1)).toBe(true);
  });

  it('on SIGTERM lets running jobs finish within the grace period', async () => {
    h = createHarness();
    const ids = await submitSleepy(25, 400);
    const worker = startWorker(h.dir, { CONVEYOR_WORKER__CONCURRENCY: '5', CONVEYOR_WORKER__SHUTDOWN_GRACE_MS: '10000' });
    children.push(worker.child);
    await worker.line('started', 5);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const jobs = (await h.store.getJobs(ids)) as Job[];
    expect(jobs.filter((j) => j.status === 'PROCESSING')).toHaveLength(0);
    expect(jobs.filter((j) => j.status === 'COMPLETED').length).toBeGreaterThanOrEqual(5);
    expect(jobs.filter((j) => j.status === 'PENDING').every((j) => j.attempts === 0 && j.leaseToken === 0)).toBe(true);
  });

  it('never shares a claim between worker processes on one file: 300 jobs claimed in batches, each run once', async () => {
    h = createHarness();
    const env = { CONVEYOR_WORKER__CONCURRENCY: '20', CONVEYOR_SERVER__PORT: '0', CONVEYOR_LOG__LEVEL: 'info' };
    const workers = [1, 2, 3].map(() => startWorker(h.dir, env));
    children.push(...workers.map((w) => w.child));
    // All three are up before the jobs arrive, so that they compete for them.
    for (const worker of workers) {
      await worker.alive(expect.poll(() => worker.stderr().includes('worker started'), { timeout: 30_000 }).toBe(true));
    }
    const ids = await submitSleepy(300, 20);
    const done = await workers[0]?.alive(h.waitForStatus(ids, ['COMPLETED'], 60_000));
    expect(done?.every((job) => job.attempts === 1 && job.leaseToken === 1 && job.errors.length === 0)).toBe(true);
    for (const worker of workers) worker.child.kill('SIGTERM');
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes).toEqual([0, 0, 0]);
    // Every handler start, across the three processes, was a different job.
    const started = workers.flatMap((w) => w.lines('started '));
    expect(started).toHaveLength(300);
    expect(new Set(started).size).toBe(300);
    expect(workers.every((w) => w.lines('started ').length > 0)).toBe(true);
  });

  it('sends a webhook exactly once more after the worker was killed in the middle of sending it', async () => {
    h = createHarness();
    // The first request never gets an answer: the worker dies while it waits.
    const receiver = await startReceiver((_request, index) => (index === 0 ? 'hang' : 200));
    try {
      const webhook = validateWebhook({ url: receiver.url }, { allowHttp: true, guard: createNetGuard(['127.0.0.1']) });
      const [created] = await h.store.createJobs([{ type: 'sleepy', parameters: { ms: 0 }, maxAttempts: 1, ownerId: 'alice', webhook }]);
      const id = created?.value.id as string;
      const env = {
        CONVEYOR_NET_ALLOW: '127.0.0.1',
        CONVEYOR_WEBHOOKS__LEASE_MS: '1500',
        CONVEYOR_WEBHOOKS__TIMEOUT_MS: '1000',
        CONVEYOR_WEBHOOKS__POLL_MS: '100',
      };
      const first = startWorker(h.dir, env);
      children.push(first.child);
      await first.alive(expect.poll(() => receiver.requests.length, { timeout: 10_000 }).toBe(1));
      first.child.kill('SIGKILL');
      await first.exited;
      const [job] = (await h.store.getJobs([id])) as Job[];
      expect(job?.status).toBe('COMPLETED');
      const [inFlight] = await h.store.listDeliveries({ jobId: id });
      expect(inFlight).toMatchObject({ status: 'SENDING', attempts: [] });

      const second = startWorker(h.dir, env);
      children.push(second.child);
      await second.alive(
        expect.poll(async () => (await h.store.listDeliveries({ jobId: id }))[0]?.status, { timeout: 15_000 }).toBe('DELIVERED'),
      );
      const [delivered] = await h.store.listDeliveries({ jobId: id });
      expect(delivered?.attempts.map((a) => a.statusCode)).toEqual([200]);
      expect(receiver.requests).toHaveLength(2);
      expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([delivered?.id, delivered?.id]);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      await receiver.close();
    }
  });
});
