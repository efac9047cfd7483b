/** Subscriptions through the real graphql-ws client against a real server and worker. */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../src/store/port.js';
import { startApi, subscribe, type TestApi } from '../helpers/api.js';

let api: TestApi;

afterEach(async () => {
  await api?.stop();
});

const BATCH_UPDATED = `subscription ($id: ID!, $after: String) {
  batchUpdated(id: $id, after: $after) {
    cursor op status counts { total pending processing completed failed cancelled }
    job { jobId status }
  }
}`;

interface BatchChange {
  cursor: string;
  op: string;
  status: string;
  counts: { total: number; pending: number; processing: number; completed: number; failed: number; cancelled: number };
  job: { jobId: string; status: string } | null;
}

async function submitGateBatch(n: number, active: boolean): Promise<string> {
  const jobs = Array.from({ length: n }, (_, i) => ({ type: 'gate', parameters: { key: `g${i}` } }));
  const { body } = await api.gql<{ submitBatch: { batch: { id: string } } }>(
    'mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { id } } }',
    { input: { name: 'track A', jobs, active } },
  );
  expect(body.errors).toBeUndefined();
  return body.data?.submitBatch.batch.id as string;
}

/** The batch's change events as the store recorded them, after `cursor`. */
async function storeBatchEvents(id: string, after: string, until: (e: ChangeEvent) => boolean): Promise<ChangeEvent[]> {
  const controller = new AbortController();
  const events: ChangeEvent[] = [];
  for await (const event of api.conveyor.store.watch({ after, signal: controller.signal })) {
    if (event.entity === 'batch' && event.id === id) events.push(event);
    if (until(event)) break;
  }
  controller.abort();
  return events;
}

/** Subscriptions open on the server, as /metrics reports them. */
async function activeSubscriptions(): Promise<number> {
  return Number(/^conveyor_subscriptions_active (\d+)$/m.exec(await api.conveyor.metrics.render())?.[1]);
}

const countsOf = (c: BatchChange['counts']) => [c.pending, c.processing, c.completed, c.failed, c.cancelled];

describe('subscriptions', () => {
  it('batchUpdated: snapshot, then every count change of a 20-job batch in order, ending COMPLETED', async () => {
    api = await startApi();
    const id = await submitGateBatch(20, false);
    const client = api.client();
    const sub = subscribe<BatchChange>(client, BATCH_UPDATED, { id }, (values) => values.at(-1)?.status === 'COMPLETED');
    await expect.poll(() => sub.values.length).toBe(1);
    const [snapshot] = sub.values as [BatchChange];
    expect(snapshot).toMatchObject({ op: 'SNAPSHOT', status: 'PENDING', counts: { total: 20, pending: 20 } });

    await api.gql('mutation ($id: ID!) { setBatchActive(id: $id, active: true) { active } }', { id });
    for (let i = 0; i < 20; i++) api.gates.open(`g${i}`);
    const values = await sub.finished;

    const recorded = await storeBatchEvents(id, snapshot.cursor, (e) => e.entity === 'batch' && e.status === 'COMPLETED');
    const live = values.slice(1);
    expect(live.map((v) => v.cursor)).toEqual(recorded.map((e) => e.cursor));
    expect(live.map((v) => countsOf(v.counts))).toEqual(
      recorded.map((e) => countsOf((e.data as { counts: BatchChange['counts'] }).counts)),
    );
    const last = values.at(-1) as BatchChange;
    expect(last).toMatchObject({ status: 'COMPLETED', counts: { total: 20, completed: 20, pending: 0, processing: 0 } });
    // Every job's completion shows up, with the job that moved the counts.
    const completedJobs = new Set(live.filter((v) => v.job?.status === 'COMPLETED').map((v) => v.job?.jobId));
    expect(completedJobs.size).toBe(20);
    for (let i = 1; i < live.length; i++) {
      expect((live[i] as BatchChange).counts.completed).toBeGreaterThanOrEqual((live[i - 1] as BatchChange).counts.completed);
    }
  });

  it('changeCursor read before a change lets jobEvents(after:) replay that change', async () => {
    api = await startApi();
    // Read on an empty store: "" (before the first change), and a job submitted after it is replayed.
    const empty = await api.gql<{ changeCursor: string | null }>('{ changeCursor }');
    expect(empty.body.data?.changeCursor).toBe('');
    const first = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "echo", parameters: {} }) { job { id } } }',
    );
    const firstId = first.body.data?.submitJob.job.id as string;
    const fromStart = subscribe<{ op: string; jobId: string }>(
      api.client(),
      'subscription ($after: String) { jobEvents(after: $after) { op jobId } }',
      { after: '' },
      (values) => values.some((v) => v.jobId === firstId),
    );
    expect((await fromStart.finished).find((v) => v.jobId === firstId)).toMatchObject({ op: 'CREATED', jobId: firstId });
    const { body } = await api.gql<{ changeCursor: string | null }>('{ changeCursor }');
    const cursor = body.data?.changeCursor as string;
    expect(typeof cursor).toBe('string');
    // A job submitted before anyone subscribes…
    const submitted = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "gate", parameters: { key: "early" } }) { job { id } } }',
    );
    const id = submitted.body.data?.submitJob.job.id as string;
    // …is replayed to a subscription that starts from the cursor read before it.
    const events = subscribe<{ op: string; jobId: string }>(
      api.client(),
      'subscription ($after: String) { jobEvents(after: $after) { op jobId } }',
      { after: cursor },
      (values) => values.some((v) => v.jobId === id),
    );
    expect((await events.finished).find((v) => v.jobId === id)).toMatchObject({ op: 'CREATED', jobId: id });
    const later = await api.gql<{ changeCursor: string | null }>('{ changeCursor }');
    expect(later.body.data?.changeCursor).not.toBe(cursor);
    // A cursor tells where the feed of all changes stands: not for anonymous callers.
    const anonymous = await api.gql<{ changeCursor: string | null }>('{ changeCursor }', {}, {});
    expect(anonymous.body.data?.changeCursor ?? null).toBeNull();
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('a subscriber that disconnects mid-batch and resumes with its last cursor misses nothing', async () => {
    api = await startApi();
    const id = await submitGateBatch(20, false);
    const first = subscribe<BatchChange>(api.client(), BATCH_UPDATED, { id }, (values) => (values.at(-1)?.counts.completed ?? 0) >= 8);
    await expect.poll(() => first.values.length).toBe(1);
    const start = (first.values[0] as BatchChange).cursor;
    await api.gql('mutation ($id: ID!) { setBatchActive(id: $id, active: true) { active } }', { id });
    for (let i = 0; i < 10; i++) api.gates.open(`g${i}`);
    const before = await first.finished; // unsubscribed once 8 had completed
    // The batch goes on while nobody listens.
    for (let i = 10; i < 20; i++) api.gates.open(`g${i}`);
    await expect.poll(async () => (await api.conveyor.client.getBatch(id))?.status, { timeout: 10_000 }).toBe('COMPLETED');

    const resumed = subscribe<BatchChange>(
      api.client(),
      BATCH_UPDATED,
      { id, after: (before.at(-1) as BatchChange).cursor },
      (values) => values.at(-1)?.status === 'COMPLETED',
    );
    const after = await resumed.finished;
    expect(after[0]?.op).not.toBe('SNAPSHOT');
    const seen = [...before.slice(1), ...after].map((v) => v.cursor);
    const recorded = await storeBatchEvents(id, start, (e) => e.entity === 'batch' && e.status === 'COMPLETED');
    expect(seen).toEqual(recorded.map((e) => e.cursor));
    expect(after.at(-1)).toMatchObject({ status: 'COMPLETED', counts: { completed: 20 } });
  });

  it('jobUpdated sends the current state, then progress and the final state; jobLogs streams the log', async () => {
    api = await startApi();
    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "gate", parameters: { key: "one" } }) { job { id } } }',
    );
    const id = body.data?.submitJob.job.id as string;
    const client = api.client();
    const updates = subscribe<{ op: string; status: string; job: { id: string; status: string } | null }>(
      client,
      'subscription ($id: ID!) { jobUpdated(id: $id) { op status cursor job { id status } } }',
      { id },
      (values) => values.at(-1)?.status === 'COMPLETED',
    );
    const logs = subscribe<{ seq: number; message: string }>(
      client,
      'subscription ($id: ID!) { jobLogs(id: $id) { seq message level } }',
      { id },
      (values) => values.some((v) => v.message.startsWith('completed in')),
    );
    await expect.poll(() => logs.values.some((v) => v.message === 'waiting for one'), { timeout: 5000 }).toBe(true);
    api.gates.open('one');
    const values = await updates.finished;
    expect(values[0]).toMatchObject({ op: 'SNAPSHOT', job: { id } });
    expect(values.map((v) => v.status)).toContain('PROCESSING');
    expect(values.at(-1)).toMatchObject({ op: 'UPDATED', status: 'COMPLETED', job: { status: 'COMPLETED' } });
    const lines = await logs.finished;
    // The claim line comes first; the outcome's line travels in the completion's change.
    expect(lines.map((l) => l.message)).toEqual([
      expect.stringMatching(/^claimed by worker /),
      'waiting for one',
      'opened one',
      expect.stringMatching(/^completed in \d+ ms$/),
    ]);
    const seqs = lines.map((l) => l.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(4);
  });

  it('jobLogs streams every line of a write of more lines than a page, in order, once', async () => {
    api = await startApi();
    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "gate", parameters: { key: "many", lines: 1200 } }) { job { id } } }',
    );
    const id = body.data?.submitJob.job.id as string;
    const logs = subscribe<{ seq: number; message: string }>(
      api.client(),
      'subscription ($id: ID!) { jobLogs(id: $id) { seq message } }',
      { id },
      (values) => values.some((v) => v.message.startsWith('completed in')),
    );
    await expect.poll(() => logs.values.some((v) => v.message === 'waiting for many'), { timeout: 5000 }).toBe(true);
    api.gates.open('many');
    const lines = await logs.finished;
    const numbered = Array.from({ length: 1200 }, (_, i) => `line ${i + 1}`);
    expect(lines.map((l) => l.message)).toEqual([
      expect.stringMatching(/^claimed by worker /),
      'waiting for many',
      'opened many',
      ...numbered,
      expect.stringMatching(/^completed in \d+ ms$/),
    ]);
    const seqs = lines.map((l) => l.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    // The stored log is the same, line for line.
    const stored = await api.conveyor.store.listLogs(id, null, 1000);
    expect(stored.map((l) => l.seq)).toEqual(seqs.slice(0, 1000));
  });

  it('jobUpdated with a cursor the store no longer holds starts over from a fresh snapshot', async () => {
    api = await startApi();
    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "gate", parameters: { key: "late" } }) { job { id } } }',
    );
    const id = body.data?.submitJob.job.id as string;
    const query = 'subscription ($id: ID!, $after: String) { jobUpdated(id: $id, after: $after) { op status cursor } }';
    const first = subscribe<{ op: string; status: string; cursor: string }>(api.client(), query, { id }, (values) => values.length === 1);
    const [snapshot] = await first.finished;
    expect(snapshot).toMatchObject({ op: 'SNAPSHOT', status: expect.stringMatching(/PENDING|PROCESSING/) });
    api.gates.open('late');
    await expect.poll(async () => (await api.conveyor.client.getJob(id))?.status).toBe('COMPLETED');
    // One more change, so that the completion is not the newest change (which purge keeps).
    await api.gql('mutation { submitJob(input: { type: "echo" }) { job { id } } }');
    // Retention drops every change up to now: the snapshot's cursor has expired.
    const purged = await api.conveyor.store.purge({ changesBefore: new Date(Date.now() + 60_000) });
    expect(purged.changes).toBeGreaterThan(0);
    await expect(
      api.conveyor.store
        .watch({ after: snapshot?.cursor as string })
        [Symbol.asyncIterator]()
        .next(),
    ).rejects.toMatchObject({
      code: 'CURSOR_EXPIRED',
    });
    const resumed = subscribe<{ op: string; status: string; cursor: string }>(
      api.client(),
      query,
      { id, after: snapshot?.cursor },
      (values) => values.length === 1,
    );
    const [fresh] = await resumed.finished;
    expect(fresh).toMatchObject({ op: 'SNAPSHOT', status: 'COMPLETED' });
    expect(fresh?.cursor).not.toBe(snapshot?.cursor);
  });

  it('jobEvents delivers matching changes of readable jobs only, and ends its watch when the client leaves', async () => {
    api = await startApi({ role: 'api' });
    // after: "" replays from the first change: no write can precede the subscription's start.
    const sub = subscribe<{ jobId: string; op: string; status: string }>(
      api.client({ 'x-user-id': 'bob' }),
      'subscription { jobEvents(filter: { type: ["echo"] }, after: "") { jobId op status } }',
      {},
      (values) => values.length >= 2,
    );
    await expect.poll(activeSubscriptions).toBe(1);
    const submit = (user: string, type: string, visibility: string) =>
      api.gql(
        `mutation { submitJob(input: { type: "${type}", parameters: ${type === 'gate' ? '{ key: "x" }' : '{}'}, accessControl: { visibility: ${visibility} } }) { job { id } } }`,
        {},
        { 'x-user-id': user },
      );
    await submit('alice', 'echo', 'PRIVATE'); // not bob's to see
    await submit('alice', 'gate', 'PUBLIC'); // filtered out by type
    const visible = await submit('alice', 'echo', 'PUBLIC');
    const own = await submit('bob', 'echo', 'PRIVATE');
    const values = await sub.finished;
    const ids = values.map((v) => v.jobId);
    expect(ids).toEqual([
      (visible.body.data as { submitJob: { job: { id: string } } }).submitJob.job.id,
      (own.body.data as { submitJob: { job: { id: string } } }).submitJob.job.id,
    ]);
    expect(values.every((v) => v.op === 'CREATED' && v.status === 'PENDING')).toBe(true);
    await expect.poll(activeSubscriptions).toBe(0);
  });

  it("never shares one subscriber's view with another principal on the same batch", async () => {
    api = await startApi({ role: 'api' });
    const { body } = await api.gql<{ submitBatch: { batch: { id: string } } }>(
      'mutation { submitBatch(input: { name: "shared", accessControl: { visibility: PUBLIC }, jobs: [{ type: "echo" }] }) { batch { id } } }',
    );
    const id = body.data?.submitBatch.batch.id as string;
    const [job] = (await api.conveyor.store.listJobs({ batchId: id }, { first: 1 })).items;
    // The batch stays PUBLIC; its only job becomes private to alice.
    await api.conveyor.store.setJobAccess(job?.id as string, { visibility: 'PRIVATE', read: [], write: [], admin: [] });
    const query = 'subscription ($id: ID!) { batchUpdated(id: $id) { op status job { jobId job { id } } } }';
    const done = (values: unknown[]) => values.length >= 2;
    const alice = subscribe<{ job: { job: { id: string } | null } | null }>(api.client({ 'x-user-id': 'alice' }), query, { id }, done);
    const bob = subscribe<{ job: { job: { id: string } | null } | null }>(api.client({ 'x-user-id': 'bob' }), query, { id }, done);
    // The snapshot is read after the subscription took its cursor: what follows cannot be missed.
    await expect.poll(() => alice.values.length + bob.values.length).toBe(2);
    await api.gql('mutation ($id: ID!) { cancelBatch(id: $id) { id } }', { id });
    const [a, b] = await Promise.all([alice.finished, bob.finished]);
    expect(a[1]?.job).toEqual({ jobId: job?.id, job: { id: job?.id } });
    // Bob sees the counts move, but not which job moved them, nor its status.
    expect(b[1]).toMatchObject({ op: 'UPDATED', status: 'CANCELLED', job: null });
  });

  it('refuses a bad credential on connect with close code 4403, and a missing job with NOT_FOUND', async () => {
    api = await startApi({
      overrides: { 'auth.mode': 'apiKey', 'auth.apiKeys': [{ hash: `sha256:${'0'.repeat(64)}`, userId: 'svc' }] },
    });
    const bad = subscribe(api.client({ authorization: 'Bearer wrong' }), 'subscription { jobEvents { jobId } }', {}, () => true);
    await expect(bad.finished).rejects.toMatchObject({ code: 4403 });

    const missing = subscribe(api.client({}), 'subscription { jobUpdated(id: "job_missing") { op } }', {}, () => true);
    await expect(missing.finished).rejects.toMatchObject({ errors: [{ extensions: { code: 'NOT_FOUND' } }] });
  });
});
