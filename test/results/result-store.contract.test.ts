/**
 * The result store contract: the filesystem adapter always, GridFS whenever a MongoDB
 * replica set is available (same rules as the job store contract; see
 * test/helpers/adapters.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { type Db, MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/types.js';
import { deleteBatchWithResults, deleteJobWithResults, deleteOrphanedResults } from '../../src/jobs/removal.js';
import { createFsResultStore } from '../../src/results/fs/fs-result-store.js';
import { copyFolder, type ResultStore } from '../../src/results/port.js';
import type { MongoStore } from '../../src/store/mongodb/mongodb-store.js';
import type { JobStore } from '../../src/store/port.js';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { mongoAdapter, suite } from '../helpers/adapters.js';

interface ResultAdapter {
  name: string;
  /** A result store with the job store it goes with (SQLite beside files, MongoDB under GridFS). */
  open(): Promise<{ results: ResultStore; store: JobStore }>;
  cleanup(): Promise<void>;
}

const dirs: string[] = [];
const jobStores: JobStore[] = [];
const fsAdapter: ResultAdapter = {
  name: 'fs',
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-results-'));
    dirs.push(dir);
    const store = createSqliteStore({ path: join(dir, 'conveyor.db') });
    jobStores.push(store);
    return { results: createFsResultStore(join(dir, 'results')), store };
  },
  async cleanup() {
    for (const store of jobStores.splice(0)) await store.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  },
};

const mongo = await mongoAdapter();
const { createGridFsResultStore } = await import('../../src/results/gridfs/gridfs-result-store.js');
type GridFsResultStoreOptions = NonNullable<Parameters<typeof createGridFsResultStore>[1]>;
const gridfsAdapter: ResultAdapter = {
  name: 'gridfs',
  async open() {
    if (mongo.adapter === null) throw new Error(`no MongoDB: ${mongo.skipped}`);
    const store = (await mongo.adapter.open()) as unknown as MongoStore;
    // Small chunks: a file of a few hundred kilobytes spans several reads of its chunks.
    return { results: createGridFsResultStore(store.database(), { chunkSizeBytes: 1024 }), store: store as unknown as JobStore };
  },
  cleanup: async () => mongo.adapter?.cleanup(),
};
const suites = [
  suite('result store', 'fs', fsAdapter, null, fsAdapter),
  suite('result store', 'gridfs', mongo.adapter === null ? null : gridfsAdapter, mongo.skipped, gridfsAdapter),
];

async function text(stream: Readable | null): Promise<string | null> {
  if (stream === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function contract(adapter: ResultAdapter): void {
  it('writes from strings, bytes and streams with size and sha256, and reads back whole or by range', async () => {
    const { results } = await adapter.open();
    const a = await results.put('job_1', 'notes.md', '# Hello\n', 'text/markdown');
    expect(a).toMatchObject({ name: 'notes.md', contentType: 'text/markdown', size: 8 });
    expect(a.sha256).toBe(createHash('sha256').update('# Hello\n').digest('hex'));
    await results.put('job_1', 'assets/p1.bin', new Uint8Array([1, 2, 3, 4]), 'application/octet-stream');
    const big = `${'x'.repeat(300_000)}END`;
    const streamed = await results.put('job_1', 'assets/big.txt', Readable.from([big.slice(0, 100_000), big.slice(100_000)]), 'text/plain');
    expect(streamed.size).toBe(300_003);
    expect((await results.read('job_1', 'notes.md'))?.toString()).toBe('# Hello\n');
    expect(await text(await results.open('job_1', 'assets/big.txt', { start: 299_998, end: 300_002 }))).toBe('xxEND');
    expect(await text(await results.open('job_1', 'notes.md', { start: 2, end: 6 }))).toBe('Hello');
    expect(await results.list('job_1')).toEqual([
      { name: 'assets/big.txt', size: 300_003 },
      { name: 'assets/p1.bin', size: 4 },
      { name: 'notes.md', size: 8 },
    ]);
  });

  it('replaces a file with a new version and reports missing ones as null', async () => {
    const { results } = await adapter.open();
    await results.put('job_2', 'a.txt', 'one', 'text/plain');
    await results.put('job_2', 'a.txt', 'two!', 'text/plain');
    expect((await results.read('job_2', 'a.txt'))?.toString()).toBe('two!');
    expect(await results.list('job_2')).toEqual([{ name: 'a.txt', size: 4 }]);
    expect(await results.read('job_2', 'missing.txt')).toBeNull();
    expect(await results.open('job_404', 'a.txt')).toBeNull();
    expect(await results.list('job_404')).toEqual([]);
  });

  it('keeps a version whole for a download that opened it while a new version is written', async () => {
    const { results } = await adapter.open();
    const old = 'a'.repeat(400_000);
    await results.put('job_6', 'big.txt', old, 'text/plain');
    const stream = (await results.open('job_6', 'big.txt')) as Readable;
    const download = stream[Symbol.asyncIterator]();
    // The download has begun before the new version is written.
    const first = await download.next();
    await results.put('job_6', 'big.txt', 'b'.repeat(1000), 'text/plain');
    const chunks: Buffer[] = [first.value as Buffer];
    for (let step = await download.next(); step.done !== true; step = await download.next()) chunks.push(step.value as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe(old);
    expect((await results.read('job_6', 'big.txt'))?.toString()).toBe('b'.repeat(1000));
    expect(await results.list('job_6')).toEqual([{ name: 'big.txt', size: 1000 }]);
  });

  it('refuses names that could leave the folder and ids outside the id alphabet', async () => {
    const { results } = await adapter.open();
    for (const name of ['../x', '/etc/passwd', 'a/../../b', 'a\\b', '', 'a//b', './a']) {
      await expect(results.put('job_3', name, 'x', 'text/plain'), name).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    }
    await expect(results.put('../job', 'a', 'x', 'text/plain')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('lists folders by prefix, copies a folder, and deletes one folder only', async () => {
    const { results } = await adapter.open();
    const file = await results.put('job_4', 'r.md', 'result', 'text/markdown');
    await results.put('upl_1', 'upload', 'bytes', 'application/pdf');
    await results.put('upl_2', 'upload', 'bytes', 'application/pdf');
    expect(await results.folders('upl_')).toEqual(['upl_1', 'upl_2']);
    const copied = await copyFolder(results, 'job_4', 'job_5', [file]);
    expect(copied).toEqual([file]);
    expect((await results.read('job_5', 'r.md'))?.toString()).toBe('result');
    await results.deleteJob('job_4');
    expect(await results.read('job_4', 'r.md')).toBeNull();
    expect((await results.read('job_5', 'r.md'))?.toString()).toBe('result');
  });

  it('deletes result files with their job, with their batch, and when their job is already gone', async () => {
    const { results, store } = await adapter.open();
    /** Runs one pending job to COMPLETED with one result file; returns its id. */
    const runOne = async (): Promise<string> => {
      const job = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await results.put(job.id, 'out.md', `# ${job.id}`, 'text/markdown');
      await store.complete({ jobId: job.id, workerId: 'w', leaseToken: job.leaseToken }, null);
      return job.id;
    };
    await store.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'alice' }]);
    const single = await runOne();
    const { value } = await store.createBatch({
      name: 'b',
      ownerId: 'alice',
      jobs: [
        { type: 'noop', parameters: { n: 1 }, maxAttempts: 1 },
        { type: 'noop', parameters: { n: 2 }, maxAttempts: 1 },
      ],
    });
    const batched = [await runOne(), await runOne()];
    expect(batched.sort()).toEqual(value.jobs.map((j) => j.id).sort());
    await store.createJobs([{ type: 'noop', parameters: { kept: true }, maxAttempts: 1, ownerId: 'alice' }]);
    const kept = await runOne();

    await deleteJobWithResults(store, results, single);
    expect(await results.list(single)).toEqual([]);
    await deleteBatchWithResults(store, results, value.batch.id);
    for (const id of batched) expect(await results.list(id), id).toEqual([]);
    // A folder whose job was deleted without it (a crash in between): found and deleted.
    await results.put('job_00000000000000000000000000', 'left.md', 'left behind', 'text/markdown');
    expect(await deleteOrphanedResults(store, results)).toBe(1);
    expect(await results.folders('job_')).toEqual([kept]);
    expect((await results.read(kept, 'out.md'))?.toString()).toBe(`# ${kept}`);
  });
}

for (const { title, adapter, skipped } of suites) {
  describe.skipIf(skipped !== null)(title, () => {
    afterAll(() => adapter.cleanup());
    contract(adapter);
  });
}

let gridClient: MongoClient | null = null;
/** A GridFS result store with `options` over a fresh database (dropped by the adapter's cleanup), and that database. */
function openGridFs(options: GridFsResultStoreOptions = {}): { results: ResultStore; db: Db } {
  if (mongo.adapter === null) throw new Error(`no MongoDB: ${mongo.skipped}`);
  gridClient ??= new MongoClient(mongo.adapter.uri);
  const db = gridClient.db(mongo.adapter.database());
  return { results: createGridFsResultStore(db, options), db };
}

describe.skipIf(mongo.adapter === null)(
  `gridfs result store versions${mongo.adapter === null ? ` (skipped: ${mongo.skipped})` : ''}`,
  () => {
    afterAll(async () => {
      await gridClient?.close();
      await mongo.adapter?.cleanup();
    });

    it('serves the version whose put began last: an earlier put that ends later does not displace it', async () => {
      const { results } = openGridFs();
      // The slow writer's body: its put reads it only once it has taken its place in the order.
      const slowBody = new PassThrough();
      const begun = new Promise<void>((resolve) => slowBody.once('resume', () => resolve()));
      const slow = results.put('job_7', 'out.md', slowBody, 'text/markdown');
      slowBody.write('stale ');
      await begun;
      await results.put('job_7', 'out.md', 'fresh', 'text/markdown');
      slowBody.end('result');
      await slow;
      expect((await results.read('job_7', 'out.md'))?.toString()).toBe('fresh');
      expect(await results.list('job_7')).toEqual([{ name: 'out.md', size: 5 }]);
    });

    it('deletes a displaced version only once its grace period has passed', async () => {
      const kept = openGridFs();
      await kept.results.put('job_8', 'a.txt', 'one', 'text/plain');
      await kept.results.put('job_8', 'a.txt', 'two', 'text/plain');
      const versions = await kept.db.collection('results.files').find({ filename: 'job_8/a.txt' }).toArray();
      expect(versions).toHaveLength(2);
      expect(versions.filter((v) => v.metadata?.supersededAt instanceof Date).map((v) => v.length)).toEqual([3]);
      expect((await kept.results.read('job_8', 'a.txt'))?.toString()).toBe('two');

      const reaped = openGridFs({ supersededGraceMs: 0 });
      await reaped.results.put('job_8', 'a.txt', 'one', 'text/plain');
      await reaped.results.put('job_8', 'a.txt', 'two', 'text/plain');
      expect(await reaped.db.collection('results.files').countDocuments({ filename: 'job_8/a.txt' })).toBe(1);
      expect(await reaped.db.collection('results.chunks').countDocuments({})).toBe(1);
      expect((await reaped.results.read('job_8', 'a.txt'))?.toString()).toBe('two');
    });
  },
);

describe('fs result store', () => {
  it('does not follow a symlink out of the job folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-results-'));
    try {
      const results = createFsResultStore(join(dir, 'results'));
      await results.put('job_1', 'ok.txt', 'fine', 'text/plain');
      writeFileSync(join(dir, 'secret.txt'), 'top secret');
      mkdirSync(join(dir, 'results', 'job_1', 'sub'), { recursive: true });
      symlinkSync(join(dir, 'secret.txt'), join(dir, 'results', 'job_1', 'leak.txt'));
      symlinkSync(dir, join(dir, 'results', 'job_1', 'sub', 'up'));
      expect(await results.read('job_1', 'leak.txt')).toBeNull();
      expect(await results.open('job_1', 'sub/up/secret.txt')).toBeNull();
      expect((await results.read('job_1', 'ok.txt'))?.toString()).toBe('fine');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
