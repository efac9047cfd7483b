/**
 * Attacks through the real server (HTTP and graphql-ws on port 0): cross-site websocket
 * hijacking, identities smuggled in connectionParams, DNS rebinding, request ids, and
 * the caps on connections, subscriptions and slow requests.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { type Client, createClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hashApiKey } from '../../src/auth/auth.js';
import { startApi, subscribe, type TestApi, withHeaders } from '../helpers/api.js';

let api: TestApi | null = null;
const sockets: Socket[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
  await api?.stop();
  api = null;
});

/** Opens a raw websocket; resolves with the upgrade's status (101 when accepted) and the answer's headers and body. */
function upgrade(
  url: string,
  options: WebSocket.ClientOptions,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', options);
    let headers: Record<string, unknown> = {};
    socket.on('upgrade', (response) => {
      headers = response.headers as Record<string, unknown>;
    });
    socket.on('open', () => {
      socket.close();
      resolve({ status: 101, headers, body: '' });
    });
    socket.on('unexpected-response', (_req, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers as Record<string, unknown>, body }));
    });
    socket.on('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

/** A graphql-ws client with these upgrade headers and connectionParams; resolves the viewer or rejects with the close event. */
function viewerOver(
  url: string,
  headers: Record<string, string>,
  connectionParams: Record<string, unknown>,
): Promise<{ userId: string | null; admin: boolean }> {
  const client = createClient({ url, webSocketImpl: withHeaders(headers), connectionParams, retryAttempts: 0, lazy: true });
  clients.push(client);
  return new Promise((resolve, reject) => {
    client.subscribe<{ viewer: { userId: string | null; admin: boolean } }>(
      { query: '{ viewer { userId admin } }' },
      {
        next: (result) => (result.data ? resolve(result.data.viewer) : reject(new Error(JSON.stringify(result.errors)))),
        error: reject,
        complete: () => undefined,
      },
    );
  });
}

/** A raw HTTP request with any Host header (fetch cannot set one). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, unknown>, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A TCP connection to the server, kept open; `answer` resolves with everything read until
 * the server closes. With `halfOpen` the client never closes its own side, as an attacker
 * holding connections would not: `answer` then resolves when the server's side ends.
 */
async function tcp(url: string, options: { halfOpen?: boolean } = {}): Promise<{ socket: Socket; answer: Promise<string> }> {
  const { hostname, port } = new URL(url);
  const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: options.halfOpen === true });
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const answer = new Promise<string>((resolve) => socket.once(options.halfOpen === true ? 'end' : 'close', () => resolve(text)));
  socket.on('error', () => undefined);
  return { socket, answer };
}

/** GET /healthz's status, or 0 when the connection is refused before an answer arrives. */
async function healthStatus(url: string): Promise<number> {
  try {
    return (await fetch(`${url}/healthz`)).status;
  } catch {
    return 0;
  }
}

describe('websocket origin and identity', () => {
  it('refuses a websocket from a foreign page with 403, and accepts its own pages and non-browser clients', async () => {
    api = await startApi();
    const port = new URL(api.url).port;
    const foreign = await upgrade(api.wsUrl, { origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body).error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect((await upgrade(api.wsUrl, { origin: 'null' })).status).toBe(403);
    // The same loopback host on another port is another origin.
    expect((await upgrade(api.wsUrl, { origin: 'http://localhost:1' })).status).toBe(403);
    for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
      expect((await upgrade(api.wsUrl, { origin })).status).toBe(101);
    }
    expect((await upgrade(api.wsUrl, {})).status).toBe(101);
  });

  it('accepts the origins of server.allowedOrigins and publicUrl', async () => {
    api = await startApi({
      overrides: { 'server.allowedOrigins': ['https://app.example.com'], 'server.publicUrl': 'https://jobs.example.com' },
    });
    expect((await upgrade(api.wsUrl, { origin: 'https://app.example.com' })).status).toBe(101);
    expect((await upgrade(api.wsUrl, { origin: 'https://jobs.example.com' })).status).toBe(101);
    expect((await upgrade(api.wsUrl, { origin: 'https://other.example.com' })).status).toBe(403);
  });

  it('in header mode takes the identity from the upgrade headers only: connectionParams cannot make anyone admin', async () => {
    api = await startApi();
    // A page (or anything) naming itself admin in connection_init is refused outright.
    await expect(viewerOver(api.wsUrl, {}, { 'x-user-id': 'mallory', 'x-admin': 'true' })).rejects.toMatchObject({ code: 4403 });
    // Behind a proxy that set X-User-ID: bob, the client cannot become alice or admin.
    await expect(viewerOver(api.wsUrl, { 'x-user-id': 'bob' }, { 'x-user-id': 'alice', 'x-admin': 'true' })).rejects.toMatchObject({
      code: 4403,
    });
    expect(await viewerOver(api.wsUrl, { 'x-user-id': 'bob' }, {})).toEqual({ userId: 'bob', admin: false });
  });

  it('in apiKey mode a credential in the upgrade headers wins over connectionParams', async () => {
    api = await startApi({
      user: null,
      overrides: {
        'auth.mode': 'apiKey',
        'auth.apiKeys': [
          { hash: hashApiKey('key-bob'), userId: 'bob' },
          { hash: hashApiKey('key-root'), userId: 'root', admin: true },
        ],
      },
    });
    expect(await viewerOver(api.wsUrl, {}, { authorization: 'Bearer key-root' })).toEqual({ userId: 'root', admin: true });
    expect(await viewerOver(api.wsUrl, { authorization: 'Bearer key-bob' }, { authorization: 'Bearer key-root' })).toEqual({
      userId: 'bob',
      admin: false,
    });
  });

  it('hands a signed-in browser a short-lived ticket for its websocket, and refuses forged tickets', async () => {
    api = await startApi();
    const anonymous = await fetch(`${api.url}/ws-ticket`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    const issued = await fetch(`${api.url}/ws-ticket`, { method: 'POST', headers: { 'x-user-id': 'alice', 'x-team-ids': 'ops' } });
    expect(issued.status).toBe(200);
    const { ticket } = (await issued.json()) as { ticket: string };
    expect(await viewerOver(api.wsUrl, {}, { ticket })).toEqual({ userId: 'alice', admin: false });
    const [prefix, payload, signature] = ticket.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload as string, 'base64url').toString()), a: true })).toString(
      'base64url',
    );
    await expect(viewerOver(api.wsUrl, {}, { ticket: `${prefix}.${forged}.${signature}` })).rejects.toMatchObject({ code: 4403 });
    expect((await fetch(`${api.url}/ws-ticket`)).status).toBe(405);
  });

  it('takes a ticket once: a second websocket with the same ticket is closed with 4403', async () => {
    api = await startApi();
    const issued = await fetch(`${api.url}/ws-ticket`, { method: 'POST', headers: { 'x-user-id': 'alice' } });
    const { ticket } = (await issued.json()) as { ticket: string };
    expect(await viewerOver(api.wsUrl, {}, { ticket })).toEqual({ userId: 'alice', admin: false });
    await expect(viewerOver(api.wsUrl, {}, { ticket })).rejects.toMatchObject({ code: 4403 });
    // A new ticket for the next connection works.
    const next = (await (await fetch(`${api.url}/ws-ticket`, { method: 'POST', headers: { 'x-user-id': 'alice' } })).json()) as {
      ticket: string;
    };
    expect(await viewerOver(api.wsUrl, {}, { ticket: next.ticket })).toEqual({ userId: 'alice', admin: false });
  });
});

describe('host check (DNS rebinding)', () => {
  it('answers 421 to a request naming a foreign host, on HTTP and websocket upgrades', async () => {
    api = await startApi();
    const port = new URL(api.url).port;
    const rebound = await rawGet(`${api.url}/graphql?query=%7Bviewer%7BuserId%7D%7D`, {
      host: `evil.example:${port}`,
      'x-user-id': 'alice',
      'apollo-require-preflight': 'true',
    });
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body).error).toMatchObject({ code: 'HOST_NOT_ALLOWED' });
    expect(JSON.parse(rebound.body).error.message).toContain('server.allowedHosts');
    const ws = await upgrade(api.wsUrl, { headers: { host: `evil.example:${port}` }, origin: `http://evil.example:${port}` });
    expect(ws.status).toBe(421);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST.:${port}`]) {
      expect((await rawGet(`${api.url}/healthz`, { host })).status).toBe(200);
      expect((await rawGet(`${api.url}/nope`, { host })).status).toBe(404);
    }
    // Probes may use any name (a load balancer's, a pod's).
    expect((await rawGet(`${api.url}/healthz`, { host: 'conveyor-0.internal' })).status).toBe(200);
  });

  it('answers to the names of publicUrl and server.allowedHosts', async () => {
    api = await startApi({ overrides: { 'server.publicUrl': 'https://jobs.example.com', 'server.allowedHosts': ['*.corp.example'] } });
    expect((await rawGet(`${api.url}/nope`, { host: 'jobs.example.com' })).status).toBe(404);
    expect((await rawGet(`${api.url}/nope`, { host: 'a.corp.example:4000' })).status).toBe(404);
    expect((await rawGet(`${api.url}/nope`, { host: 'corp.example.evil' })).status).toBe(421);
  });
});

describe('request ids', () => {
  it('keeps a sane X-Request-ID from the HTTP layer through GraphQL, and replaces an unsafe one', async () => {
    api = await startApi({ overrides: { 'log.level': 'info' } });
    const headers = { 'content-type': 'application/json', 'x-user-id': 'alice' };
    const body = JSON.stringify({ query: '{ viewer { userId } }' });
    const kept = await fetch(`${api.url}/graphql`, { method: 'POST', headers: { ...headers, 'x-request-id': 'proxy:abc-1.2_3' }, body });
    expect(kept.headers.get('x-request-id')).toBe('proxy:abc-1.2_3');
    for (const bad of ['has space', 'a'.repeat(201), 'semi;colon']) {
      const replaced = await fetch(`${api.url}/graphql`, { method: 'POST', headers: { ...headers, 'x-request-id': bad }, body });
      expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    const ws = await upgrade(api.wsUrl, { headers: { 'x-request-id': 'proxy-ws-7' } });
    expect(ws.headers['x-request-id']).toBe('proxy-ws-7');
    // The websocket's log lines carry the same id.
    await expect(viewerOver(api.wsUrl, { 'x-request-id': 'proxy-ws-8' }, { 'x-admin': 'true' })).rejects.toMatchObject({ code: 4403 });
    expect(api.logs.some((line) => line.includes('websocket authentication refused') && line.includes('proxy-ws-8'))).toBe(true);
  });
});

describe('request ids in errors', () => {
  it('gives a masked GraphQL error and its log line the id the request came with', async () => {
    api = await startApi({ role: 'api' });
    const store = api.conveyor.store as unknown as { stats: () => Promise<never> };
    store.stats = () => Promise.reject(new Error('store failed underneath'));
    const response = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'alice', 'x-request-id': 'edge-42.a' },
      body: JSON.stringify({ query: '{ stats { queueDepth } }' }),
    });
    const body = (await response.json()) as { errors: { extensions: { code: string; requestId: string } }[] };
    expect(response.headers.get('x-request-id')).toBe('edge-42.a');
    expect(body.errors[0]?.extensions).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', requestId: 'edge-42.a' });
    const logged = api.logs
      .map((line) => JSON.parse(line) as { requestId?: string; level: unknown })
      .filter((entry) => entry.requestId === 'edge-42.a');
    expect(logged.length).toBeGreaterThan(0);
  });
});

describe('caps', () => {
  it('answers 503 to connections beyond server.maxConnectionsPerIp and server.maxConnections', async () => {
    api = await startApi({ overrides: { 'server.maxConnectionsPerIp': 2 } });
    const held = [await tcp(api.url), await tcp(api.url)];
    const third = await tcp(api.url);
    third.socket.write(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    const answer = await third.answer;
    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(answer).toContain('TOO_MANY_CONNECTIONS');
    expect(answer).toContain('server.maxConnectionsPerIp');
    // Once one closes, a new connection is served again.
    held[0]?.socket.destroy();
    await held[0]?.answer;
    await expect.poll(async () => (await fetch(`${api?.url}/healthz`)).status).toBe(200);
    await api.stop();

    api = await startApi({ overrides: { 'server.maxConnections': 1 } });
    await tcp(api.url);
    const refused = await upgrade(api.wsUrl, {});
    expect(refused.status).toBe(503);
    expect(refused.body).toContain('server.maxConnections');
  });

  it('answers a connection beyond a cap with 503 at once, before it sends anything, and does not count it', async () => {
    // A long header timeout: only the cap can answer these silent connections in time.
    api = await startApi({ overrides: { 'server.maxConnectionsPerIp': 2, 'server.headersTimeoutMs': 60_000 } });
    const held = [await tcp(api.url, { halfOpen: true }), await tcp(api.url, { halfOpen: true })];
    // A flood of silent connections that never close their side.
    const flood = await Promise.all(Array.from({ length: 20 }, () => tcp(api?.url as string, { halfOpen: true })));
    for (const connection of flood) {
      const answer = await connection.answer;
      expect(answer).toMatch(/^HTTP\/1\.1 503/);
      expect(answer).toContain('TOO_MANY_CONNECTIONS');
      expect(answer).toContain('server.maxConnectionsPerIp');
    }
    // The refused connections hold no place: once one held connection closes, the server answers again.
    held[0]?.socket.destroy();
    await expect.poll(() => healthStatus(api?.url as string)).toBe(200);
  });

  it('closes connections that send no complete headers in time, also when the client never closes its side', async () => {
    api = await startApi({
      overrides: { 'server.maxConnectionsPerIp': 2, 'server.headersTimeoutMs': 200, 'server.requestTimeoutMs': 400 },
    });
    const silent = await tcp(api.url, { halfOpen: true });
    const partial = await tcp(api.url, { halfOpen: true });
    partial.socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n');
    for (const answer of [await silent.answer, await partial.answer]) {
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(answer).toContain('REQUEST_TIMEOUT');
    }
    // Both half-open sockets are gone on the server's side: they no longer hold the cap.
    await expect.poll(() => healthStatus(api?.url as string), { timeout: 10_000 }).toBe(200);
  });

  it('closes an idle keep-alive connection after server.keepAliveTimeoutMs', async () => {
    api = await startApi({ overrides: { 'server.keepAliveTimeoutMs': 1000, 'server.headersTimeoutMs': 60_000 } });
    const idle = await tcp(api.url, { halfOpen: true });
    idle.socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    // The answer tells the client how long it may stay idle; the server then closes its side.
    const answer = await idle.answer;
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toMatch(/\r\nkeep-alive: timeout=1\r\n/i);
  });

  it('refuses operations beyond graphql.maxSubscriptionsPerSocket on one websocket with LIMIT_EXCEEDED', async () => {
    api = await startApi({ overrides: { 'graphql.maxSubscriptionsPerSocket': 2 } });
    const client = api.client();
    const query = 'subscription { jobEvents { jobId } }';
    const first = subscribe(client, query, {}, () => false);
    const second = subscribe(client, query, {}, () => false);
    const third = subscribe(client, query, {}, () => false);
    await expect(third.finished).rejects.toMatchObject([{ extensions: { code: 'LIMIT_EXCEEDED', limit: 2 } }]);
    first.cancel();
    second.cancel();
  });

  it('answers 408 to a request whose headers or body never finish arriving', async () => {
    api = await startApi({ overrides: { 'server.headersTimeoutMs': 200, 'server.requestTimeoutMs': 400 } });
    const slowHeaders = await tcp(api.url);
    slowHeaders.socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n');
    const slowBody = await tcp(api.url);
    slowBody.socket.write(
      'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"qu',
    );
    for (const answer of [await slowHeaders.answer, await slowBody.answer]) {
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(answer).toContain('REQUEST_TIMEOUT');
    }
  });
});
