/** Bad input gets a documented error code, never a 5xx, and the server keeps answering. */
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startApi, type TestApi } from '../helpers/api.js';

let api: TestApi;

afterEach(async () => {
  await api?.stop();
});

async function post(body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-id': 'alice', ...headers },
    body,
  });
  return {
    status: response.status,
    body: JSON.parse(await response.text()) as { errors?: { message: string; extensions: Record<string, unknown> }[] },
  };
}

const codeOf = (result: { body: { errors?: { extensions: Record<string, unknown> }[] } }) => result.body.errors?.[0]?.extensions.code;

describe('errors', () => {
  it('gives each kind of bad request its code and stays up', async () => {
    api = await startApi({
      role: 'api',
      overrides: { 'limits.maxBatchSize': 3, 'graphql.maxDepth': 6, 'graphql.maxRequestBytes': 20_000 },
    });
    const cases: [string, { status: number; code: string }, { body: string; headers?: Record<string, string> }][] = [
      ['syntax error', { status: 400, code: 'GRAPHQL_PARSE_FAILED' }, { body: JSON.stringify({ query: '{ job(id: ' }) }],
      ['unknown field', { status: 400, code: 'GRAPHQL_VALIDATION_FAILED' }, { body: JSON.stringify({ query: '{ nope }' }) }],
      ['not JSON', { status: 400, code: 'BAD_REQUEST' }, { body: '{"query": ' }],
      [
        'unknown job type',
        { status: 200, code: 'BAD_USER_INPUT' },
        { body: JSON.stringify({ query: 'mutation { submitJob(input: { type: "nope" }) { job { id } } }' }) },
      ],
      [
        'invalid parameters',
        { status: 200, code: 'BAD_USER_INPUT' },
        { body: JSON.stringify({ query: 'mutation { submitJob(input: { type: "gate", parameters: { key: 5 } }) { job { id } } }' }) },
      ],
      [
        'malformed pdf URL',
        { status: 200, code: 'BAD_USER_INPUT' },
        {
          body: JSON.stringify({
            query: 'mutation { submitJob(input: { type: "pdf", parameters: { url: "not a url" } }) { job { id } } }',
          }),
        },
      ],
      [
        'oversized batch',
        { status: 200, code: 'LIMIT_EXCEEDED' },
        {
          body: JSON.stringify({
            query: 'mutation ($jobs: [BatchJobInput!]!) { submitBatch(input: { name: "x", jobs: $jobs }) { batch { id } } }',
            variables: { jobs: Array.from({ length: 4 }, () => ({ type: 'echo' })) },
          }),
        },
      ],
      [
        'too deep',
        { status: 400, code: 'LIMIT_EXCEEDED' },
        { body: JSON.stringify({ query: '{ jobs { edges { node { batch { jobs { edges { node { id } } } } } } } }' }) },
      ],
      [
        'too costly',
        { status: 400, code: 'LIMIT_EXCEEDED' },
        {
          body: JSON.stringify({
            query: '{ batches(first: 1000) { edges { node { jobs(first: 1000) { edges { node { id logs(first: 1000) { seq } } } } } } } }',
          }),
        },
      ],
      [
        'bad variable type',
        { status: 400, code: 'BAD_USER_INPUT' },
        { body: JSON.stringify({ query: 'query ($id: ID!) { job(id: $id) { id } }', variables: { id: {} } }) },
      ],
      [
        'bad DateTime',
        { status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
        { body: JSON.stringify({ query: '{ jobs(filter: { createdAfter: "yesterday" }) { totalCount } }' }) },
      ],
      ['bad cursor', { status: 200, code: 'BAD_USER_INPUT' }, { body: JSON.stringify({ query: '{ jobs(after: "???") { totalCount } }' }) }],
      [
        'body too large',
        { status: 413, code: 'LIMIT_EXCEEDED' },
        { body: JSON.stringify({ query: `{ viewer { userId } } #${'x'.repeat(30_000)}` }) },
      ],
      [
        'anonymous submit',
        { status: 200, code: 'UNAUTHENTICATED' },
        { body: JSON.stringify({ query: 'mutation { submitJob(input: { type: "echo" }) { job { id } } }' }), headers: { 'x-user-id': '' } },
      ],
      [
        'missing job',
        { status: 200, code: 'NOT_FOUND' },
        { body: JSON.stringify({ query: 'mutation { cancelJob(id: "job_missing") { id } }' }) },
      ],
    ];
    for (const [name, expected, request] of cases) {
      const result = await post(request.body, request.headers);
      expect({ name, status: result.status, code: codeOf(result) }).toEqual({ name, ...expected });
    }
    // Nothing was stored by any of them, and the server still answers.
    expect(await api.conveyor.store.countJobs({})).toBe(0);
    const health = await fetch(`${api.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('closes a websocket that sends bad messages with graphql-ws codes, and keeps serving others', async () => {
    api = await startApi({ role: 'api' });
    const url = `${api.url.replace('http', 'ws')}/graphql`;
    /** Opens a graphql-ws socket, sends `messages` one by one, and resolves with the close code and what arrived. */
    const session = (messages: string[]) =>
      new Promise<{ code: number; received: { type: string; payload?: unknown }[] }>((resolve, reject) => {
        const socket = new WebSocket(url, 'graphql-transport-ws');
        const received: { type: string; payload?: unknown }[] = [];
        socket.on('open', () => {
          for (const message of messages) socket.send(message);
        });
        socket.on('message', (data) => received.push(JSON.parse(String(data))));
        socket.on('close', (code) => resolve({ code, received }));
        socket.on('error', reject);
      });
    const init = JSON.stringify({ type: 'connection_init', payload: {} });
    expect((await session(['{"type": '])).code).toBe(4400); // not JSON
    expect((await session([JSON.stringify({ type: 'subscribe', id: '1', payload: { query: '{ x }' } })])).code).toBe(4401); // before init
    expect((await session([init, JSON.stringify({ type: 'nonsense' })])).code).toBe(4400);
    // Queries that do not parse or validate are answered with the codes HTTP uses, on the open socket.
    let parseError: string | undefined;
    const socket = new WebSocket(url, 'graphql-transport-ws');
    const answer = await new Promise<{ type: string; id: string; payload: { extensions?: { code?: string } }[] }>((resolve, reject) => {
      socket.on('open', () => socket.send(init));
      socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        if (message.type === 'connection_ack') {
          socket.send(JSON.stringify({ type: 'subscribe', id: 'p', payload: { query: 'subscription {' } }));
          socket.send(JSON.stringify({ type: 'subscribe', id: 'a', payload: { query: 'subscription { nope }' } }));
        }
        if (message.type === 'error' && message.id === 'p') parseError = message.payload[0]?.extensions?.code;
        if (message.type === 'error' && message.id === 'a') resolve(message);
      });
      socket.on('close', (code) => reject(new Error(`closed with ${code}`)));
      socket.on('error', reject);
    });
    socket.close();
    expect(answer).toMatchObject({ type: 'error', id: 'a' });
    expect(answer.payload[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(parseError).toBe('GRAPHQL_PARSE_FAILED');
  });

  it('answers 413 to an oversized body sent without a length', async () => {
    api = await startApi({ role: 'api', overrides: { 'graphql.maxRequestBytes': 10_000 } });
    const chunk = new TextEncoder().encode(`{"query":"{ viewer { userId } }","pad":"${'x'.repeat(30_000)}"}`);
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(chunk);
        controller.close();
      },
    });
    const response = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'alice' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('LIMIT_EXCEEDED');
  });

  it('keeps CSRF prevention on: a simple cross-site request cannot run an operation', async () => {
    api = await startApi({ role: 'api' });
    const response = await fetch(`${api.url}/graphql?query=${encodeURIComponent('{ viewer { userId } }')}`, {
      headers: { 'x-user-id': 'alice' },
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/CSRF/);
    const allowed = await fetch(`${api.url}/graphql?query=${encodeURIComponent('{ viewer { userId } }')}`, {
      headers: { 'x-user-id': 'alice', 'apollo-require-preflight': 'true' },
    });
    expect(allowed.status).toBe(200);
  });

  it('masks unexpected errors and logs them with the request id', async () => {
    api = await startApi({ role: 'api' });
    // A store that fails underneath: the client sees a masked error, not the cause.
    const store = api.conveyor.store as unknown as { stats: () => Promise<never> };
    store.stats = () => Promise.reject(new Error('disk on fire at /secret/path'));
    const result = await post(JSON.stringify({ query: '{ stats { queueDepth } }' }));
    expect(result.status).toBe(200);
    const error = result.body.errors?.[0];
    expect(error?.extensions.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error?.message).not.toMatch(/secret|fire/);
    expect(error?.extensions.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const logged = api.logs.map((line) => JSON.parse(line)).find((entry) => entry.requestId === error?.extensions.requestId);
    expect(logged).toMatchObject({ level: 'error', error: { message: 'disk on fire at /secret/path' } });
  });

  it('refuses an expired or forged JWT with UNAUTHENTICATED (401)', async () => {
    const secret = 'a-test-secret-of-enough-length-123456';
    api = await startApi({ role: 'api', user: null, overrides: { 'auth.mode': 'jwt', 'auth.jwt.secret': secret } });
    const key = new TextEncoder().encode(secret);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ teams: ['red'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(now - 60)
      .sign(key);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .sign(new TextEncoder().encode('another-secret-entirely-0000000000'));
    const valid = await new SignJWT({ teams: ['red'], admin: false })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(now + 60)
      .sign(key);
    const query = JSON.stringify({ query: '{ viewer { userId teams } }' });
    const bad = await post(query, { authorization: `Bearer ${expired}` });
    expect({ status: bad.status, code: codeOf(bad), message: bad.body.errors?.[0]?.message }).toEqual({
      status: 401,
      code: 'UNAUTHENTICATED',
      message: 'the token has expired',
    });
    expect(codeOf(await post(query, { authorization: `Bearer ${forged}` }))).toBe('UNAUTHENTICATED');
    expect(codeOf(await post(query, { authorization: 'Basic abc' }))).toBe('UNAUTHENTICATED');
    const good = await post(query, { authorization: `Bearer ${valid}` });
    expect(good.body).toEqual({ data: { viewer: { userId: 'alice', teams: ['red'] } } });
  });
});
