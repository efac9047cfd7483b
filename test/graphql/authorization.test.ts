/**
 * The authorisation matrix: {owner, same team, other user, anonymous, admin} ×
 * {PRIVATE, TEAM, PUBLIC} × {read, list, subscribe, cancel, restart, delete}, through
 * real HTTP and the real graphql-ws client, including what leaks into `jobEvents`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, subscribe, type TestApi } from '../helpers/api.js';

type Who = 'owner' | 'teammate' | 'other' | 'anonymous' | 'admin';
type Visibility = 'PRIVATE' | 'TEAM' | 'PUBLIC';

const HEADERS: Record<Who, Record<string, string>> = {
  owner: { 'x-user-id': 'alice', 'x-team-ids': 'red' },
  teammate: { 'x-user-id': 'carol', 'x-team-ids': 'red' },
  other: { 'x-user-id': 'bob', 'x-team-ids': 'blue' },
  anonymous: {},
  admin: { 'x-user-id': 'root', 'x-admin': 'true' },
};
const WHO = Object.keys(HEADERS) as Who[];
const VISIBILITIES: Visibility[] = ['PRIVATE', 'TEAM', 'PUBLIC'];

/** The rule the matrix checks, written out independently of `can()`. PUBLIC means every signed-in user. */
function expected(who: Who, visibility: Visibility, action: 'read' | 'write'): boolean {
  if (who === 'owner' || who === 'admin') return true;
  if (who === 'anonymous') return false;
  if (action === 'write') return false;
  if (visibility === 'PUBLIC') return true;
  return visibility === 'TEAM' && who === 'teammate';
}

let api: TestApi;
const seen = new Map<Who, Set<string>>();
const streams: { finished: Promise<unknown>; cancel: () => void }[] = [];

async function submit(visibility: Visibility): Promise<string> {
  const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
    `mutation { submitJob(input: { type: "echo", accessControl: { visibility: ${visibility} } }) { job { id } } }`,
    {},
    HEADERS.owner,
  );
  const id = body.data?.submitJob.job.id;
  if (id === undefined) throw new Error(`submit failed: ${JSON.stringify(body.errors)}`);
  created.push({ id, visibility });
  return id;
}

/** Every job the matrix made, so the expected jobEvents of each principal can be derived. */
const created: { id: string; visibility: Visibility }[] = [];

beforeAll(async () => {
  api = await startApi({ role: 'api' });
  for (const who of WHO) {
    const ids = new Set<string>();
    seen.set(who, ids);
    // after: "" replays from the first change, so no event is missed however long the
    // subscription takes to start listening.
    const stream = subscribe<{ jobId: string }>(
      api.client(HEADERS[who]),
      'subscription { jobEvents(after: "") { jobId } }',
      {},
      (values) => {
        for (const v of values) ids.add(v.jobId);
        return false;
      },
      60_000,
    );
    streams.push(stream);
  }
});

afterAll(async () => {
  await api.stop();
});

describe('authorisation matrix', () => {
  it.each(VISIBILITIES)('%s jobs: read, list, subscribe, cancel, restart, delete', async (visibility) => {
    for (const who of WHO) {
      const headers = HEADERS[who];
      const canRead = expected(who, visibility, 'read');
      const canWrite = expected(who, visibility, 'write');
      const id = await submit(visibility);
      const cell = `${who} × ${visibility}`;

      const read = await api.gql<{ job: { id: string } | null }>('query ($id: ID!) { job(id: $id) { id } }', { id }, headers);
      expect(read.body.errors, `${cell}: read errors`).toBeUndefined();
      expect(read.body.data?.job, `${cell}: read`).toEqual(canRead ? { id } : null);

      const list = await api.gql<{ jobs: { edges: { node: { id: string } }[] } }>(
        '{ jobs(first: 1000) { edges { node { id } } } }',
        {},
        headers,
      );
      expect(list.body.errors, `${cell}: list errors`).toBeUndefined();
      expect(
        list.body.data?.jobs.edges.some((e) => e.node.id === id),
        `${cell}: list`,
      ).toBe(canRead);

      const sub = subscribe<{ op: string }>(
        api.client(headers),
        'subscription ($id: ID!) { jobUpdated(id: $id) { op } }',
        { id },
        (v) => v.length > 0,
      );
      const outcome = await sub.finished.then(
        (values) => values[0]?.op,
        (error: { errors?: { extensions: { code: string } }[] }) => error.errors?.[0]?.extensions.code,
      );
      expect(outcome, `${cell}: subscribe`).toBe(canRead ? 'SNAPSHOT' : 'NOT_FOUND');

      const denied = canRead
        ? who === 'anonymous'
          ? 'UNAUTHENTICATED'
          : 'FORBIDDEN'
        : who === 'anonymous'
          ? 'UNAUTHENTICATED'
          : 'NOT_FOUND';
      const mutate = async (mutation: string, target: string) => {
        const { body } = await api.gql(
          `mutation ($id: ID!) { ${mutation}(id: $id) ${mutation === 'deleteJob' ? '' : '{ id }'} }`,
          { id: target },
          headers,
        );
        return body.errors === undefined ? 'ok' : body.errors[0]?.extensions?.code;
      };
      expect(await mutate('cancelJob', id), `${cell}: cancel`).toBe(canWrite ? 'ok' : denied);
      const finished = await submit(visibility);
      await api.gql('mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id: finished }, HEADERS.owner);
      expect(await mutate('restartJob', finished), `${cell}: restart`).toBe(canWrite ? 'ok' : denied);
      const doomed = await submit(visibility);
      expect(await mutate('deleteJob', doomed), `${cell}: delete`).toBe(canWrite ? 'ok' : denied);
    }
  });

  it('jobEvents delivered exactly the readable jobs to each subscriber', async () => {
    // A last PUBLIC job every signed-in user sees: once it arrives, every earlier event has been
    // filtered (anonymous callers see nothing at all, the sentinel neither).
    const sentinel = await submit('PUBLIC');
    for (const who of WHO.filter((w) => w !== 'anonymous')) {
      await expect.poll(() => seen.get(who)?.has(sentinel), { timeout: 10_000 }).toBe(true);
    }
    for (const who of WHO) {
      const readable = created.filter((job) => expected(who, job.visibility, 'read')).map((job) => job.id);
      expect([...(seen.get(who) ?? [])].sort(), who).toEqual(readable.sort());
    }
    for (const stream of streams) stream.cancel();
    // Each stream ends only by the cancel above: an error or an early end fails here.
    await Promise.all(streams.map((stream) => stream.finished));
  });
});
