import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

describe('http server', () => {
  let dir: string;
  let store: SqliteStore;
  let http: HttpServer;
  let base: string;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-http-'));
    store = createSqliteStore({ path: join(dir, 'c.db') });
    http = createHttpServer({ store, logger: createLogger('debug', {}, (l) => logs.push(l)), shutdownGraceMs: 1000 });
    const address: AddressInfo = await http.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await http.close();
    await store.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /healthz and /readyz', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', store: 'sqlite' });
  });

  it('answers unknown routes and methods with JSON errors', async () => {
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    const post = await fetch(`${base}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('reports 503 on /readyz when the store does not answer', async () => {
    await store.close();
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: { code: string } }).error.code).toBe('STORE_UNAVAILABLE');
    expect(logs.some((l) => l.includes('readiness check failed'))).toBe(true);
  });

  it("gives every request an id (or keeps the caller's) in the x-request-id header and a structured log line", async () => {
    const own = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'proxy-123' } });
    expect(own.headers.get('x-request-id')).toBe('proxy-123');
    const fresh = await fetch(`${base}/healthz`);
    const id = fresh.headers.get('x-request-id') as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await expect
      .poll(() => logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === id))
      .toMatchObject({
        level: 'debug',
        msg: 'http request',
        method: 'GET',
        path: '/healthz',
        status: 200,
      });
  });
});
