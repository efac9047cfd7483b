/**
 * The result store contract: the filesystem adapter always, GridFS whenever a MongoDB
 * replica set is available (same rules as the job store contract; see
 * test/helpers/adapters.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createFsResultStore } from '../../src/results/fs/fs-result-store.js';
import { copyFolder, type ResultStore } from '../../src/results/port.js';
import type { MongoStore } from '../../src/store/mongodb/mongodb-store.js';
import { mongoAdapter } from '../helpers/adapters.js';

interface ResultAdapter {
  name: string;
  open(): Promise<ResultStore>;
  cleanup(): Promise<void>;
}

const dirs: string[] = [];
const adapters: ResultAdapter[] = [
  {
    name: 'fs',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'conveyor-results-'));
      dirs.push(dir);
      return createFsResultStore(dir);
    },
    async cleanup() {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  },
];
const mongo = await mongoAdapter();
if (mongo !== null) {
  const { createGridFsResultStore } = await import('../../src/results/gridfs/gridfs-result-store.js');
  adapters.push({
    name: 'gridfs',
    async open() {
      const store = (await mongo.open()) as MongoStore;
      return createGridFsResultStore(store.database());
    },
    cleanup: () => mongo.cleanup(),
  });
}

async function text(stream: Readable | null): Promise<string | null> {
  if (stream === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe.each(adapters)('result store: $name', (adapter) => {
  afterAll(() => adapter.cleanup());

  it('writes from strings, bytes and streams with size and sha256, and reads back whole or by range', async () => {
    const results = await adapter.open();
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
    const results = await adapter.open();
    await results.put('job_2', 'a.txt', 'one', 'text/plain');
    await results.put('job_2', 'a.txt', 'two!', 'text/plain');
    expect((await results.read('job_2', 'a.txt'))?.toString()).toBe('two!');
    expect(await results.list('job_2')).toEqual([{ name: 'a.txt', size: 4 }]);
    expect(await results.read('job_2', 'missing.txt')).toBeNull();
    expect(await results.open('job_404', 'a.txt')).toBeNull();
    expect(await results.list('job_404')).toEqual([]);
  });

  it('refuses names that could leave the folder and ids outside the id alphabet', async () => {
    const results = await adapter.open();
    for (const name of ['../x', '/etc/passwd', 'a/../../b', 'a\\b', '', 'a//b', './a']) {
      await expect(results.put('job_3', name, 'x', 'text/plain'), name).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    }
    await expect(results.put('../job', 'a', 'x', 'text/plain')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('lists folders by prefix, copies a folder, and deletes one folder only', async () => {
    const results = await adapter.open();
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
});

describe('fs result store', () => {
  it('does not follow a symlink out of the job folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-results-'));
    dirs.push(dir);
    const results = createFsResultStore(join(dir, 'results'));
    await results.put('job_1', 'ok.txt', 'fine', 'text/plain');
    writeFileSync(join(dir, 'secret.txt'), 'top secret');
    mkdirSync(join(dir, 'results', 'job_1', 'sub'), { recursive: true });
    symlinkSync(join(dir, 'secret.txt'), join(dir, 'results', 'job_1', 'leak.txt'));
    symlinkSync(dir, join(dir, 'results', 'job_1', 'sub', 'up'));
    expect(await results.read('job_1', 'leak.txt')).toBeNull();
    expect(await results.open('job_1', 'sub/up/secret.txt')).toBeNull();
    expect((await results.read('job_1', 'ok.txt'))?.toString()).toBe('fine');
  });
});
