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

/** The URI without credentials, for messages. */
const redact = (uri: string) => uri.replace(/\/\/[^@/]*@/, '//***@');

async function mongoTarget(): Promise<MongoTarget | string> {
  const uri = process.env.MONGODB_URI;
  if (uri !== undefined && uri !== '') {
    // Reachable and a replica set (createMongoStore checks `hello`), or the reason why not.
    const { createMongoStore } = await import('../../src/store/mongodb/mongodb-store.js');
    try {
      const probe = await createMongoStore({ uri, database: `conveyor_probe_${process.pid}`, serverSelectionTimeoutMS: 5000 });
      await probe.close();
      return { uri, stop: async () => {} };
    } catch (error) {
      return `MONGODB_URI=${redact(uri)} is not a reachable replica set: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`;
    }
  }
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
let printed = false;

/** The MongoDB adapter, or the reason there is none (printed once per test file). */
export async function mongoAdapter(): Promise<{ adapter: AdapterUnderTest; skipped: null } | { adapter: null; skipped: string }> {
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
  let n = 0;
  return {
    skipped: null,
    adapter: {
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
    suite('store contract', 'mongodb', mongo.adapter, mongo.skipped, unavailableAdapter('mongodb', mongo.skipped ?? '')),
  ];
}
