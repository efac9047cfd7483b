/** DataLoader: a page of jobs with their batches costs a constant number of store calls. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { type Conveyor, createConveyor } from '../../src/conveyor.js';
import { openStore } from '../../src/store/index.js';
import type { JobStore } from '../../src/store/port.js';
import { Gates, testHandlers } from '../helpers/api.js';

let conveyor: Conveyor | null = null;
let dir = '';

afterEach(async () => {
  await conveyor?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The real store, with every call counted by method name. */
function counted(store: JobStore): { store: JobStore; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(property), (calls.get(String(property)) ?? 0) + 1);
        return value.apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

describe('DataLoader', () => {
  it('jobs(first: 50) { batch { name } } costs the same few store calls for 5 or 50 jobs in 10 batches', async () => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-dl-'));
    const config = loadConfig({
      file: null,
      env: {},
      overrides: { dataDir: dir, 'server.port': 0, 'log.level': 'error', 'retention.intervalMs': 0 },
    });
    const { store, calls } = counted(await openStore(config));
    conveyor = await createConveyor({ config, store, handlers: testHandlers(new Gates()) });
    const { url } = await conveyor.start('api');
    const alice = { userId: 'alice', teams: [], admin: false };
    for (let b = 0; b < 10; b++) {
      await conveyor.client.submitBatch({ name: `batch ${b}`, jobs: Array.from({ length: 5 }, () => ({ type: 'echo' })) }, alice);
    }
    const run = async (first: number) => {
      calls.clear();
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user-id': 'alice' },
        body: JSON.stringify({ query: `{ jobs(first: ${first}) { edges { node { id batch { name counts { total } } } } } }` }),
      });
      const body = (await response.json()) as { data: { jobs: { edges: { node: { batch: { name: string } } }[] } } };
      expect(body.data.jobs.edges).toHaveLength(first);
      return Object.fromEntries(calls);
    };
    const small = await run(5);
    const large = await run(50);
    expect(large).toEqual({ listJobs: 1, getBatches: 1 });
    expect(small).toEqual(large);
  });
});
