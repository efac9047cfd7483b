import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
    // A server and store of its own: the shared store stays open for the other tests.
    const closedStore = createSqliteStore({ path: join(dir, 'closed.db') });
    const own: string[] = [];
    const server = createHttpServer({ store: closedStore, logger: createLogger('debug', {}, (l) => own.push(l)), shutdownGraceMs: 1000 });
    const address: AddressInfo = await server.listen(0, '127.0.0.1');
    try {
      await closedStore.close();
      const ready = await fetch(`http://127.0.0.1:${address.port}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { error: { code: string } }).error.code).toBe('STORE_UNAVAILABLE');
      expect(own.some((l) => l.includes('readiness check failed'))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('on close lets a request in flight finish within shutdownGraceMs, and cuts one that takes longer', async () => {
    const started = new Map<string, () => void>();
    const release = new Map<string, () => void>();
    const route = async (req: IncomingMessage, res: ServerResponse) => {
      const name = req.url?.slice(1) ?? '';
      await new Promise<void>((resolve) => {
        release.set(name, resolve);
        started.get(name)?.();
      });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`done ${name}`);
      return true;
    };
    const arrived = (name: string) => new Promise<void>((resolve) => started.set(name, resolve));
    // A long grace for the request that finishes, a short one for the request that never does.
    const patient = createHttpServer({ store, logger: createLogger('error'), shutdownGraceMs: 30_000, routes: [route] });
    const hasty = createHttpServer({ store, logger: createLogger('error'), shutdownGraceMs: 300, routes: [route] });
    const [a, b] = [await patient.listen(0, '127.0.0.1'), await hasty.listen(0, '127.0.0.1')];
    const inFlight = [arrived('quick'), arrived('stuck')];
    const quick = fetch(`http://127.0.0.1:${a.port}/quick`).then((r) => r.text());
    const stuck = fetch(`http://127.0.0.1:${b.port}/stuck`).then(
      (r) => r.text(),
      (error: Error) => `failed: ${error.message}`,
    );
    await Promise.all(inFlight);
    let patientClosed = false;
    const closing = patient.close().then(() => {
      patientClosed = true;
    });
    // The hasty server cuts its request when its 300 ms are up, and close() returns…
    await hasty.close();
    expect(await stuck).toMatch(/^failed/);
    // …while the patient one still waits for its request, which then gets its answer.
    expect(patientClosed).toBe(false);
    release.get('quick')?.();
    expect(await quick).toBe('done quick');
    await closing;
    release.get('stuck')?.();
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
