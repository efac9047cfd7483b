/**
 * The MongoDB change source beyond the store contract: cursor encoding (no server
 * needed), and against a replica set (skipped without one, see test/helpers/adapters.ts)
 * the TTL index on `changes`, a dropped `changes` collection failing live listeners,
 * and a resume token of another collection refused as a cursor.
 */
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { canonicalCursor, compareCursors, encodeCursor, ensureChangeIndexes } from '../../src/store/mongodb/change-source.js';
import type { JobStore } from '../../src/store/port.js';
import { mongoAdapter } from '../helpers/adapters.js';

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('mongodb change cursors', () => {
  // Two resume tokens' _data as the server writes them (uppercase hex KeyStrings), in stream order.
  const earlier = '8266A0C5E1000000012B022C0100296E5A1004';
  const later = '8266A0C5E1000000022B022C0100296E5A1004';

  it('are lowercase hex of the token, whatever case the server or a client used', () => {
    expect(encodeCursor({ _data: earlier })).toBe(`m${earlier.toLowerCase()}`);
    expect(canonicalCursor(`m${earlier}`)).toBe(`m${earlier.toLowerCase()}`);
    expect(canonicalCursor(`M${earlier.toLowerCase()}`)).toBe(`m${earlier.toLowerCase()}`);
  });

  it('compare in stream order across letter cases', () => {
    const upperEarlier = `m${earlier}`;
    const lowerLater = `m${later.toLowerCase()}`;
    // Compared as plain strings, a lowercase cursor sorts after every uppercase one.
    expect(`m${later}` < `m${earlier.toLowerCase()}`).toBe(true);
    expect(compareCursors(`m${later}`, `m${earlier.toLowerCase()}`)).toBe(1);
    expect(compareCursors(upperEarlier, lowerLater)).toBe(-1);
    expect(compareCursors(lowerLater, `m${later}`)).toBe(0);
  });

  it('refuse what cannot be a resume token with BAD_USER_INPUT', () => {
    for (const bad of ['', 'garbage', '42', 'm', 'm82', `m${earlier}0`, `m${earlier}zz`, `m00${earlier.slice(2)}`, `x${earlier}`]) {
      expect(
        codeOf(() => canonicalCursor(bad)),
        bad,
      ).toBe('BAD_USER_INPUT');
      expect(
        codeOf(() => compareCursors(bad, `m${earlier}`)),
        bad,
      ).toBe('BAD_USER_INPUT');
    }
    expect(codeOf(() => encodeCursor({ _data: 'not hex' }))).toBe('STORE_UNAVAILABLE');
  });
});

const mongo = await mongoAdapter();

describe.skipIf(mongo.adapter === null)(`mongodb change source${mongo.adapter === null ? ` (skipped: ${mongo.skipped})` : ''}`, () => {
  const client = mongo.adapter === null ? null : new MongoClient(mongo.adapter.uri);
  const stores: JobStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    await client?.close();
    await mongo.adapter?.cleanup();
  });
  async function open(): Promise<{ store: JobStore; name: string }> {
    const store = await (mongo.adapter as NonNullable<typeof mongo.adapter>).open();
    stores.push(store);
    const name = (store as unknown as { database(): { databaseName: string } }).database().databaseName;
    return { store, name };
  }

  it('expires changes with a TTL index set from retention.changesHours, changed in place and removed with 0', async () => {
    const db = (client as MongoClient).db((mongo.adapter as NonNullable<typeof mongo.adapter>).database());
    const ttl = async () => (await db.collection('changes').indexes()).find((index) => index.key.at === 1)?.expireAfterSeconds;
    await ensureChangeIndexes(db, { retentionHours: 2 });
    expect(await ttl()).toBe(7200);
    await ensureChangeIndexes(db, { retentionHours: 24 });
    expect(await ttl()).toBe(86_400);
    await ensureChangeIndexes(db, { retentionHours: 0 });
    expect(await ttl()).toBeUndefined();
    expect((await db.collection('changes').indexes()).filter((index) => index.key.at === 1)).toHaveLength(1);
  });

  it('fails live listeners with STORE_UNAVAILABLE when the changes collection is dropped', async () => {
    const { store, name } = await open();
    const seen: string[] = [];
    const checks = new Set<() => void>();
    /** True once `done()` holds (checked on every call of the listener), false after `ms`. */
    const until = (done: () => boolean, ms: number) =>
      new Promise<boolean>((resolve) => {
        const check = () => {
          if (!done()) return;
          checks.delete(check);
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          checks.delete(check);
          resolve(done());
        }, ms);
        checks.add(check);
        check();
      });
    const errors: AppError[] = [];
    const listening = store.listen(undefined, {
      event: (event) => {
        seen.push(event.id);
        for (const check of [...checks]) check();
      },
      error: (error) => {
        errors.push(error as AppError);
        for (const check of [...checks]) check();
      },
    });
    // "From now" says nothing when it is live: write probes until one arrives.
    for (let probes = 0; ; probes++) {
      if (probes === 20) throw new Error('the listener never went live');
      const [probe] = await store.createJobs([{ type: 'probe', parameters: {}, maxAttempts: 1, ownerId: 'alice' }]);
      if (await until(() => seen.includes(probe?.value.id as string), 1000)) break;
    }
    await (client as MongoClient).db(name).collection('changes').drop();
    expect(await until(() => errors.length > 0, 10_000)).toBe(true);
    listening.stop();
    expect(errors.map((error) => error.code)).toEqual(['STORE_UNAVAILABLE']);
  });

  it('refuses a resume token of another collection as a cursor with BAD_USER_INPUT', async () => {
    const { store, name } = await open();
    const other = (client as MongoClient).db(name).collection('other');
    const stream = other.watch([], { maxAwaitTimeMS: 50 });
    await stream.tryNext();
    await other.insertOne({ n: 1 });
    let change = await stream.tryNext();
    while (change === null) change = await stream.tryNext();
    await stream.close();
    const foreign = encodeCursor(change._id);
    // A change after the foreign token's time: the stream passes that point without finding the token.
    await store.createJobs([{ type: 'after', parameters: {}, maxAttempts: 1, ownerId: 'alice' }]);
    const iterator = store.watch({ after: foreign })[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});
