/**
 * The store adapters the contract suites run against: SQLite always; MongoDB when
 * MONGODB_URI points at a reachable replica set, or when mongodb-memory-server can
 * start one. Otherwise the MongoDB suites are registered as skipped (counted in the
 * summary) with the reason in their title, and the reason is printed once.
 * REQUIRE_MONGODB=1 turns "no replica set" into a failure, with or without MONGODB_URI.
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

/**
 * SQLite; with `deferBatchCounts`, job changes record their batch count moves and the
 * store applies them after the commit, the path MongoDB takes, so it runs here too.
 */
export function sqliteAdapter(options: { deferBatchCounts?: boolean } = {}): AdapterUnderTest {
  const dirs: string[] = [];
  const deferBatchCounts = options.deferBatchCounts ?? false;
  return {
    name: deferBatchCounts ? 'sqlite, batch counts deferred' : 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'conveyor-store-'));
      dirs.push(dir);
      return createSqliteStore({ path: join(dir, 'conveyor.db'), changePollMs: 10, deferBatchCounts });
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

/** The URI without credentials, for messages. */
const redact = (uri: string) => uri.replace(/\/\/[^@/]*@/, '//***@');

/** Reachable and a replica set (change streams and transactions need one), or the reason why not. */
async function probe(uri: string): Promise<string | null> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    const hello = await client.db('admin').command({ hello: 1 });
    if (typeof hello.setName !== 'string' && hello.msg !== 'isdbgrid') return 'the server is standalone, not a replica set';
    return null;
  } catch (error) {
    return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'unreachable';
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function mongoTarget(): Promise<MongoTarget | string> {
  const uri = process.env.MONGODB_URI;
  if (uri !== undefined && uri !== '') {
    const reason = await probe(uri);
    if (reason !== null) return `MONGODB_URI=${redact(uri)} is not a reachable replica set: ${reason}`;
    return { uri, stop: async () => {} };
  }
  // The library prints its own stack traces when the download fails; the one line below says it all.
  const { warn, error: logError } = console;
  console.warn = () => {};
  console.error = () => {};
  try {
    const target = await startMemoryReplSet();
    process.once('beforeExit', () => void target.stop());
    return target;
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
let printed = false;

export interface MongoAdapterUnderTest extends AdapterUnderTest {
  /** The replica set's connection string. */
  uri: string;
  /** A fresh database name, dropped by `cleanup()` (for stores a test opens itself, in this process or others). */
  database(): string;
}

/** The MongoDB adapter, or the reason there is none (printed once per test file). */
export async function mongoAdapter(): Promise<{ adapter: MongoAdapterUnderTest; skipped: null } | { adapter: null; skipped: string }> {
  mongoPromise ??= mongoTarget();
  const target = await mongoPromise;
  if (typeof target === 'string') {
    // CI with a replica set sets REQUIRE_MONGODB=1 so that a missing or broken one fails instead of skipping.
    if (process.env.REQUIRE_MONGODB === '1') throw new Error(`REQUIRE_MONGODB=1 but ${target}`);
    if (!printed) console.log(`[contract suites] MongoDB skipped: ${target}`);
    printed = true;
    return { adapter: null, skipped: target };
  }
  const { createMongoStore } = await import('../../src/store/mongodb/mongodb-store.js');
  const stores: JobStore[] = [];
  const databases: string[] = [];
  let n = 0;
  const database = () => {
    const name = `conveyor_test_${process.pid}_${Date.now()}_${n++}`;
    databases.push(name);
    return name;
  };
  return {
    skipped: null,
    adapter: {
      name: 'mongodb',
      uri: target.uri,
      database,
      async open() {
        const store = await createMongoStore({ uri: target.uri, database: database() });
        stores.push(store);
        return store;
      },
      async cleanup() {
        // Tests close their stores (closing twice is allowed); the databases go through a client of
        // our own, since a closed store's client refuses to run anything.
        for (const store of stores.splice(0)) await store.close();
        const names = databases.splice(0);
        if (names.length === 0) return;
        const { MongoClient } = await import('mongodb');
        const client = new MongoClient(target.uri, { serverSelectionTimeoutMS: 10_000 });
        try {
          for (const name of names) await client.db(name).dropDatabase();
        } finally {
          await client.close();
        }
      },
    },
  };
}

export interface Suite<A> {
  /** The suite's title: `<prefix>: <name>`, with the reason when skipped. */
  title: string;
  adapter: A;
  /** Why the suite is skipped, or null when it runs. */
  skipped: string | null;
}

/**
 * A suite per adapter for `describe.skipIf(suite.skipped !== null)(suite.title, …)`: a
 * skipped suite still registers its tests, so the summary counts them as skipped.
 * `unavailable` stands in for the adapter of a skipped suite (its tests never run).
 */
export function suite<A>(prefix: string, name: string, adapter: A | null, skipped: string | null, unavailable: A): Suite<A> {
  return {
    title: `${prefix}: ${name}${skipped === null ? '' : ` (skipped: ${skipped})`}`,
    adapter: adapter ?? unavailable,
    skipped: adapter === null ? (skipped ?? 'unavailable') : null,
  };
}

/** Never opened: stands in for an adapter whose suite is skipped. */
export function unavailableAdapter(name: string, reason: string): AdapterUnderTest {
  return {
    name,
    open: () => Promise.reject(new Error(`${name} is not available: ${reason}`)),
    cleanup: async () => {},
  };
}

/** The store contract's suites: SQLite always, MongoDB (maybe skipped). */
export async function storeSuites(): Promise<Suite<AdapterUnderTest>[]> {
  const mongo = await mongoAdapter();
  return [
    suite('store contract', 'sqlite', sqliteAdapter(), null, sqliteAdapter()),
    suite('store contract', 'sqlite, batch counts deferred', sqliteAdapter({ deferBatchCounts: true }), null, sqliteAdapter()),
    suite('store contract', 'mongodb', mongo.adapter, mongo.skipped, unavailableAdapter('mongodb', mongo.skipped ?? '')),
  ];
}
