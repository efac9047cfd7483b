/**
 * Subscriptions over Server-Sent Events at /graphql/stream, through graphql-sse's own
 * client against a real server: snapshot then changes, resume after a cursor,
 * authentication from request headers, access checks, and what SSE refuses.
 */
import { type Client, createClient } from 'graphql-sse';
import { afterEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';

let api: TestApi;
const clients: Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.dispose();
  await api?.stop();
});

function sseClient(headers: Record<string, string>): Client {
  const client = createClient({ url: `${api.url}/graphql/stream`, headers, retryAttempts: 0 });
  clients.push(client);
  return client;
}

interface Collected<T> {
  values: T[];
  /** Resolves when `until` holds (then the subscription is ended), rejects on an error or an end before it. */
  finished: Promise<T[]>;
}

function follow<T>(client: Client, query: string, variables: Record<string, unknown>, until: (values: T[]) => boolean): Collected<T> {
  const values: T[] = [];
  const finished = new Promise<T[]>((resolve, reject) => {
    let done = false;
    const stop = client.subscribe<Record<string, T>>(
      { query, variables },
      {
        next(result) {
          if (result.errors !== undefined) {
            done = true;
            reject(Object.assign(new Error(result.errors[0]?.message), { errors: result.errors }));
            return;
          }
          values.push(Object.values(result.data ?? {})[0] as T);
          if (!done && until(values)) {
            done = true;
            stop();
            resolve(values);
          }
        },
        error(error) {
          if (!done) reject(error);
        },
        complete() {
          if (!done) reject(new Error(`the stream ended before its condition held: ${JSON.stringify(values)}`));
        },
      },
    );
  });
  return { values, finished };
}

const JOB_UPDATED = 'subscription ($id: ID!, $after: String) { jobUpdated(id: $id, after: $after) { op status cursor job { id status } } }';

interface JobChange {
  op: string;
  status: string;
  cursor: string;
  job: { id: string; status: string } | null;
}

async function submitGate(key: string, headers?: Record<string, string>): Promise<string> {
  const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
    'mutation ($key: String!) { submitJob(input: { type: "gate", parameters: { key: $key } }) { job { id } } }',
    { key },
    headers,
  );
  return body.data?.submitJob.job.id as string;
}

describe('subscriptions over Server-Sent Events', () => {
  it('jobUpdated sends the snapshot, then every change to the end; a resumed stream continues after its cursor', async () => {
    api = await startApi();
    const id = await submitGate('sse');
    const client = sseClient({ 'x-user-id': 'alice' });
    const first = follow<JobChange>(client, JOB_UPDATED, { id }, (values) => values.some((v) => v.status === 'PROCESSING'));
    const seen = await first.finished;
    expect(seen[0]).toMatchObject({ op: 'SNAPSHOT', job: { id } });
    const cursor = (seen.at(-1) as JobChange).cursor;

    // Disconnected: the job finishes meanwhile; the resumed stream replays what was missed.
    api.gates.open('sse');
    const resumed = follow<JobChange>(client, JOB_UPDATED, { id, after: cursor }, (values) => values.some((v) => v.status === 'COMPLETED'));
    const rest = await resumed.finished;
    expect(rest[0]?.op).not.toBe('SNAPSHOT');
    expect(rest.at(-1)).toMatchObject({ op: 'UPDATED', status: 'COMPLETED', job: { status: 'COMPLETED' } });
    expect(rest.every((v) => v.cursor > cursor)).toBe(true);
  });

  it('takes the identity from the request headers: another user may not follow a private job', async () => {
    api = await startApi();
    const id = await submitGate('private');
    const stranger = follow<JobChange>(sseClient({ 'x-user-id': 'mallory' }), JOB_UPDATED, { id }, () => true);
    await expect(stranger.finished).rejects.toMatchObject({
      errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'NOT_FOUND' }) })],
    });
  });

  it('answers bad credentials with 401 in apiKey mode', async () => {
    api = await startApi({ overrides: { 'auth.mode': 'apiKey' } });
    const response = await fetch(`${api.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: 'Bearer nope' },
      body: JSON.stringify({ query: 'subscription { jobEvents { cursor } }' }),
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });

  it('refuses event streams for pages of other origins (403), like websockets', async () => {
    api = await startApi();
    const response = await fetch(`${api.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-user-id': 'alice', origin: 'https://evil.example' },
      body: JSON.stringify({ query: 'subscription { jobEvents { cursor } }' }),
    });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('refuses a body larger than graphql.maxRequestBytes with 413, declared or streamed, from an anonymous caller', async () => {
    api = await startApi({ overrides: { 'graphql.maxRequestBytes': 2048 } });
    const body = JSON.stringify({ query: 'subscription { jobEvents { cursor } }', variables: { pad: 'x'.repeat(5000) } });
    const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
    const declared = await fetch(`${api.url}/graphql/stream`, { method: 'POST', headers, body });
    // Streamed in pieces without a content-length: the server must count what arrives.
    const pieces = [body.slice(0, 1500), body.slice(1500, 3000), body.slice(3000)];
    const streamed = await fetch(`${api.url}/graphql/stream`, {
      method: 'POST',
      headers,
      body: new ReadableStream({
        pull(controller) {
          const next = pieces.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(new TextEncoder().encode(next));
        },
      }),
      duplex: 'half',
    } as RequestInit);
    for (const response of [declared, streamed]) {
      expect(response.status).toBe(413);
      expect(((await response.json()) as { errors: { extensions: { code: string; limit: number } }[] }).errors[0]?.extensions).toEqual({
        code: 'LIMIT_EXCEEDED',
        limit: 2048,
      });
    }
    // A body within the limit still opens its stream.
    const ok = follow(sseClient({ 'x-user-id': 'alice' }), JOB_UPDATED, { id: await submitGate('small') }, (values) => values.length > 0);
    expect((await ok.finished)[0]).toMatchObject({ op: 'SNAPSHOT' });
  });

  it('refuses queries and mutations (they go to POST /graphql) and invalid documents, as an event with a code', async () => {
    api = await startApi();
    const client = sseClient({ 'x-user-id': 'alice' });
    await expect(follow(client, '{ __typename }', {}, () => true).finished).rejects.toMatchObject({
      errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_REQUEST' }) })],
    });
    await expect(follow(client, 'subscription { nope }', {}, () => true).finished).rejects.toMatchObject({
      errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'GRAPHQL_VALIDATION_FAILED' }) })],
    });
  });

  it('ends a stream with FORBIDDEN when the subscriber loses read access', async () => {
    api = await startApi();
    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "gate", parameters: { key: "shared" }, accessControl: { visibility: PRIVATE, read: ["user:bob"] } }) { job { id } } }',
    );
    const id = body.data?.submitJob.job.id as string;
    const bob = follow<JobChange>(sseClient({ 'x-user-id': 'bob' }), JOB_UPDATED, { id }, () => false);
    await expect.poll(() => bob.values.length, { timeout: 10_000 }).toBeGreaterThan(0);
    const revoked = await api.gql(
      'mutation ($id: ID!) { setJobAccess(id: $id, accessControl: { visibility: PRIVATE, read: [] }) { id } }',
      { id },
    );
    expect(revoked.body.errors).toBeUndefined();
    await expect(bob.finished).rejects.toMatchObject({
      errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'FORBIDDEN' }) })],
    });
  });
});
