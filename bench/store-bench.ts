/**
 * Store benchmarks. Every figure that has a target is a ratio against a baseline
 * measured in the same run on the same machine (raw better-sqlite3 doing the same
 * rows), interleaved over several rounds so that machine noise hits both sides.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NewJob } from '../src/store/port.js';
import { createSqliteStore, type SqliteStore } from '../src/store/sqlite/sqlite-store.js';

export interface BenchResult {
  name: string;
  value: string;
  target: string;
  pass: boolean | null;
  detail?: string[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

function tempStore(label: string): { store: SqliteStore; dispose: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), `conveyor-bench-${label}-`));
  const store = createSqliteStore({ path: join(dir, 'bench.db') });
  return {
    store,
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function newJobs(count: number, offset = 0): NewJob[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'noop',
    parameters: { n: offset + i, track: `t${i % 10}` },
    maxAttempts: 3,
    ownerId: 'bench',
  }));
}

/** The column list and values of the store's own rows, for a raw INSERT of the same rows. */
function rawInsert(store: SqliteStore) {
  const db = store.connection;
  const insert = db.prepare(`INSERT INTO jobs (id, type, parameters, status, priority, run_at, attempts, max_attempts,
    lease_token, cancel_requested, errors, owner_id, team_ids, access, visibility, readers, paused, track, version,
    created_at, updated_at) VALUES (?, 'noop', ?, 'PENDING', 0, ?, 0, 3, 0, 0, '[]', 'bench', '[]',
    '{"visibility":"PRIVATE","read":[],"write":[],"admin":[]}', 'PRIVATE', '[]', 0, ?, 1, ?, ?)`);
  let seq = 0;
  return db.transaction((count: number) => {
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      insert.run(`raw_${(seq++).toString().padStart(10, '0')}`, JSON.stringify({ n: i, track: `t${i % 10}` }), now, `t${i % 10}`, now, now);
    }
  });
}

/** Bulk enqueue: store.createJobs of 1,000 jobs ÷ raw INSERT of the same rows in one transaction. */
export async function benchBulkEnqueue(rounds = 5, calls = 10): Promise<BenchResult> {
  const subject = tempStore('enqueue');
  const baseline = tempStore('enqueue-raw');
  const raw = rawInsert(baseline.store);
  const ratios: number[] = [];
  let storeRate = 0;
  for (let r = 0; r < rounds; r++) {
    let start = performance.now();
    for (let c = 0; c < calls; c++) raw(1000);
    const rawMs = performance.now() - start;
    start = performance.now();
    for (let c = 0; c < calls; c++) await subject.store.createJobs(newJobs(1000, c * 1000));
    const storeMs = performance.now() - start;
    ratios.push(rawMs / storeMs);
    storeRate = (calls * 1000) / (storeMs / 1000);
  }
  await subject.dispose();
  await baseline.dispose();
  const ratio = median(ratios);
  return {
    name: 'bulk enqueue (1,000 jobs per call) ÷ raw INSERT in one transaction',
    value: `${ratio.toFixed(2)} (store ≈ ${Math.round(storeRate).toLocaleString('en')} jobs/s)`,
    target: '≥ 0.5',
    pass: ratio >= 0.5,
  };
}

/**
 * Claim + complete: the store ÷ raw UPDATE … RETURNING + UPDATE in one transaction.
 * The baseline uses the same claim index as the store (without it the planner sorts
 * every pending job, which would flatter the store).
 */
export async function benchClaimComplete(rounds = 5, perRound = 2000): Promise<BenchResult> {
  const subject = tempStore('claim');
  const baseline = tempStore('claim-raw');
  const db = baseline.store.connection;
  const claim = db.prepare(`UPDATE jobs SET status = 'PROCESSING', attempts = attempts + 1, lease_owner = ?, lease_until = ?
    WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim WHERE status = 'PENDING' AND paused = 0 AND run_at <= ? ORDER BY priority DESC, run_at, id LIMIT 1)
    RETURNING id`);
  const complete = db.prepare(`UPDATE jobs SET status = 'COMPLETED', results = ?, finished_at = ?, lease_owner = NULL WHERE id = ?`);
  const rawOne = db.transaction(() => {
    const now = Date.now();
    const row = claim.get('raw', now + 30_000, now) as { id: string } | undefined;
    if (row !== undefined) complete.run('{}', now, row.id);
  });
  const raw = rawInsert(baseline.store);
  const ratios: number[] = [];
  const separateRatios: number[] = [];
  let storeRate = 0;
  for (let r = 0; r < rounds; r++) {
    raw(perRound);
    for (let i = 0; i < perRound; i += 1000) await subject.store.createJobs(newJobs(Math.min(1000, perRound - i)));
    let start = performance.now();
    for (let i = 0; i < perRound; i++) rawOne();
    const rawMs = performance.now() - start;
    // A worker with a free slot: complete and claim the next job in one transaction.
    start = performance.now();
    let job = await subject.store.claimNext({ workerId: 'bench', leaseMs: 30_000 });
    for (let i = 0; i < perRound; i++) {
      if (job === null) throw new Error('ran out of jobs');
      const claim = { workerId: 'bench', leaseMs: 30_000 };
      job = (await subject.store.completeAndClaim({ jobId: job.id, workerId: 'bench', leaseToken: job.leaseToken }, {}, claim)).next;
    }
    const storeMs = performance.now() - start;
    ratios.push(rawMs / storeMs);
    storeRate = perRound / (storeMs / 1000);
    if (job !== null) await subject.store.complete({ jobId: job.id, workerId: 'bench', leaseToken: job.leaseToken }, {});

    // Separate claimNext + complete calls (two transactions per job), for information.
    for (let i = 0; i < perRound; i += 1000) await subject.store.createJobs(newJobs(Math.min(1000, perRound - i)));
    start = performance.now();
    for (let i = 0; i < perRound; i++) {
      const claimed = await subject.store.claimNext({ workerId: 'bench', leaseMs: 30_000 });
      if (claimed === null) throw new Error('ran out of jobs');
      await subject.store.complete({ jobId: claimed.id, workerId: 'bench', leaseToken: claimed.leaseToken }, {});
    }
    separateRatios.push(rawMs / (performance.now() - start));
  }
  await subject.dispose();
  await baseline.dispose();
  const ratio = median(ratios);
  return {
    name: 'claim + complete (completeAndClaim) ÷ raw UPDATE … RETURNING + UPDATE in one transaction',
    value: `${ratio.toFixed(2)} (store ≈ ${Math.round(storeRate).toLocaleString('en')} jobs/s)`,
    target: '≥ 0.5',
    pass: ratio >= 0.5,
    detail: [`separate claimNext + complete calls (two transactions per job): ratio ${median(separateRatios).toFixed(2)}`],
  };
}

/**
 * With 1,000,000 jobs stored (100 batches of 10,000, created through the store):
 * the first page of jobs(filter: {status, batchId}) and a claim.
 */
export async function benchMillion(total = 1_000_000): Promise<BenchResult[]> {
  const subject = tempStore('million');
  const store = subject.store;
  const batches: string[] = [];
  const perBatch = 10_000;
  const started = performance.now();
  for (let b = 0; b < total / perBatch; b++) {
    const { value } = await store.createBatch({
      name: `track ${b}`,
      ownerId: `user${b % 20}`,
      jobs: newJobs(perBatch, b * perBatch).map(({ ownerId: _o, ...job }) => job),
    });
    batches.push(value.batch.id);
  }
  const loadSeconds = (performance.now() - started) / 1000;
  // Make the status filter selective: a slice of every batch is finished.
  for (let i = 0; i < 2000; i++) {
    const job = await store.claimNext({ workerId: 'bench', leaseMs: 60_000 });
    if (job !== null) await store.complete({ jobId: job.id, workerId: 'bench', leaseToken: job.leaseToken }, {});
  }
  const listTimes: number[] = [];
  for (let i = 0; i < 200; i++) {
    const batchId = batches[(i * 7) % batches.length] as string;
    const start = performance.now();
    const page = await store.listJobs({ status: ['PENDING'], batchId }, { first: 50 });
    listTimes.push(performance.now() - start);
    if (page.items.length !== 50) throw new Error('unexpected page size');
  }
  const claimTimes: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = performance.now();
    const job = await store.claimNext({ workerId: 'bench', leaseMs: 60_000 });
    claimTimes.push(performance.now() - start);
    if (job === null) throw new Error('no job to claim');
  }
  const listPlan = store.explain(`SELECT * FROM jobs WHERE status = ? AND batch_id = ? ORDER BY id DESC LIMIT 51`, 'PENDING', batches[0]);
  const claimPlan = store.explainClaim();
  await subject.dispose();
  const listMedian = median(listTimes);
  const claimMedian = median(claimTimes);
  return [
    {
      name: `first page (50) of jobs(filter: {status, batchId}) with ${total.toLocaleString('en')} jobs stored`,
      value: `${listMedian.toFixed(2)} ms median`,
      target: '< 5 ms',
      pass: listMedian < 5,
      detail: [`loaded through store.createBatch in ${loadSeconds.toFixed(0)} s`, ...listPlan.map((p) => `plan: ${p}`)],
    },
    {
      name: `claim (claimNext, committed) with ${total.toLocaleString('en')} jobs stored`,
      value: `${claimMedian.toFixed(2)} ms median`,
      target: '< 5 ms',
      pass: claimMedian < 5,
      detail: claimPlan.map((p) => `plan: ${p}`),
    },
  ];
}
