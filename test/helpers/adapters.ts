/**
 * The store adapters the contract suites run against: SQLite always; MongoDB when
 * MONGODB_URI points at a replica set, or when mongodb-memory-server can start one.
 * When neither works, MongoDB is skipped with one printed line saying why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobStore } from '../../src/store/port.js';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';

export interface AdapterUnderTest {
  name: string;
  /** A fresh, empty store. */
  open(): Promise<JobStore>;
  /** Releases what `open` created (files, databases, servers). */
  cleanup(): Promise<void>;
}

export function sqliteAdapter(): AdapterUnderTest {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'conveyor-store-'));
      dirs.push(dir);
      return createSqliteStore({ path: join(dir, 'conveyor.db'), changePollMs: 10 });
    },
    async cleanup() {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface MongoTarget {
  uri: string;
  stop: () => Promise<void>;
}

async function startMemoryReplSet(): Promise<MongoTarget> {
  const { MongoMemoryReplSet } = await import('mongodb-memory-server-core');
  const replSet = await MongoMemoryReplSet.create({ replSet: { count: 1, storageEngine: 'wiredTiger' } });
  return { uri: replSet.getUri(), stop: async () => void (await replSet.stop()) };
}

async function mongoTarget(): Promise<MongoTarget | string> {
  const uri = process.env.MONGODB_URI;
  if (uri !== undefined && uri !== '') return { uri, stop: async () => {} };
  // The library prints its own stack traces when the download fails; the one line below says it all.
  const { warn, error: logError } = console;
  console.warn = () => {};
  console.error = () => {};
  try {
    return await startMemoryReplSet();
  } catch (error) {
    const reason = (error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error))
      .replace(/"?https?:\/\/[^\s"]+"?/g, '(mongod download)')
      .replace(/,? Details:$/, '');
    return `MONGODB_URI is not set and mongodb-memory-server could not start a replica set: ${reason}`;
  } finally {
    console.warn = warn;
    console.error = logError;
  }
}

let mongoPromise: Promise<MongoTarget | string> | null = null;

/** The MongoDB adapter, or null (after printing why) when no replica set can be had. */
export async function mongoAdapter(): Promise<AdapterUnderTest | null> {
  mongoPromise ??= mongoTarget();
  const target = await mongoPromise;
  if (typeof target === 'string') {
    // CI with a replica set sets REQUIRE_MONGODB=1 so that a broken connection fails instead of skipping.
    if (process.env.REQUIRE_MONGODB === '1') throw new Error(`REQUIRE_MONGODB=1 but ${target}`);
    console.log(`[store contract] MongoDB adapter skipped: ${target}`);
    return null;
  }
  const { createMongoStore } = await import('../../src/store/mongodb/mongodb-store.js');
  const stores: JobStore[] = [];
  let n = 0;
  return {
    name: 'mongodb',
    async open() {
      const store = await createMongoStore({
        uri: target.uri,
        database: `conveyor_test_${process.pid}_${Date.now()}_${n++}`,
      });
      stores.push(store);
      return store;
    },
    async cleanup() {
      for (const store of stores.splice(0)) {
        await (store as { dropDatabase?: () => Promise<void> }).dropDatabase?.();
        await store.close();
      }
      await target.stop();
    },
  };
}

/** Every adapter that can run here. */
export async function availableAdapters(): Promise<AdapterUnderTest[]> {
  const mongo = await mongoAdapter();
  return mongo === null ? [sqliteAdapter()] : [sqliteAdapter(), mongo];
}
