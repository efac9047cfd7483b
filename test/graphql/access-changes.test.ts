/**
 * Access changes while streams are open, through the real graphql-ws client against
 * real servers: streams that follow one job end with FORBIDDEN, streams over many jobs
 * leave out what the subscriber may no longer read, in this process and in others.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startApi, subscribe, type TestApi } from '../helpers/api.js';

let api: TestApi;
/** A second process on the same SQLite file, when a test needs one. */
let other: TestApi | undefined;

afterEach(async () => {
  await other?.stop();
  other = undefined;
  await api?.stop();
});

/**
 * Listeners on a process's change feed: one per open subscription that follows changes,
 * plus the feed's access cache while any subscription is open (src/graphql/access-cache.ts).
 */
const listeners = (of: TestApi) =>
  (of.conveyor.store as unknown as { engine: { hub: { subscriberCount: number } } }).engine.hub.subscriberCount;

const submitPublic = async (extra = '') => {
  const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
    `mutation { submitJob(input: { type: "echo", accessControl: { visibility: PUBLIC }${extra} }) { job { id } } }`,
  );
  expect(body.errors).toBeUndefined();
  return body.data?.submitJob.job.id as string;
};
const setVisibility = (id: string, visibility: string) =>
  api.gql(`mutation ($id: ID!) { setJobAccess(id: $id, accessControl: { visibility: ${visibility} }) { id } }`, { id });
const forbidden = { errors: [{ extensions: { code: 'FORBIDDEN' } }] };

describe('access changes on live streams', () => {
  it('jobLogs and deliveryUpdated end with FORBIDDEN at once when read access is withdrawn, as jobUpdated does', async () => {
    api = await startApi({ role: 'api' });
    const id = await submitPublic(', webhook: { url: "https://example.test/hook" }');
    const bob = api.client({ 'x-user-id': 'bob' });
    const never = () => false;
    const logs = subscribe(bob, 'subscription ($id: ID!) { jobLogs(id: $id) { seq message } }', { id }, never);
    const deliveries = subscribe(bob, 'subscription ($id: ID!) { deliveryUpdated(jobId: $id) { op status } }', { id }, never);
    const updates = subscribe(bob, 'subscription ($id: ID!) { jobUpdated(id: $id) { op } }', { id }, never);
    // The owner's own stream goes on.
    const alice = subscribe<{ op: string; status: string }>(
      api.client({ 'x-user-id': 'alice' }),
      'subscription ($id: ID!) { deliveryUpdated(jobId: $id) { op status } }',
      { id },
      (values) => values.some((v) => v.op === 'CREATED'),
    );
    await expect.poll(() => listeners(api)).toBe(5);
    await setVisibility(id, 'PRIVATE');
    await expect(logs.finished).rejects.toMatchObject(forbidden);
    await expect(deliveries.finished).rejects.toMatchObject(forbidden);
    await expect(updates.finished).rejects.toMatchObject(forbidden);
    // A cancel makes a delivery: alice, still allowed, sees it.
    await api.gql('mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id });
    expect((await alice.finished).at(-1)).toMatchObject({ op: 'CREATED', status: 'PENDING' });
  });

  it('deliveryUpdated of a batch leaves out the deliveries of a job the subscriber may no longer read', async () => {
    api = await startApi({ role: 'api' });
    const { body } = await api.gql<{ submitBatch: { batch: { id: string } } }>(
      'mutation { submitBatch(input: { name: "b", accessControl: { visibility: PUBLIC }, webhook: { url: "https://example.test/hook" }, jobs: [{ type: "echo" }, { type: "echo" }] }) { batch { id } } }',
    );
    expect(body.errors).toBeUndefined();
    const batchId = body.data?.submitBatch.batch.id as string;
    const [hidden, shown] = (await api.conveyor.store.listJobs({ batchId }, { first: 2 })).items.map((job) => job.id) as [string, string];
    await setVisibility(hidden, 'PRIVATE');
    const bob = subscribe<{ jobId: string | null; event: string }>(
      api.client({ 'x-user-id': 'bob' }),
      'subscription ($id: ID!) { deliveryUpdated(batchId: $id) { op jobId event } }',
      { id: batchId },
      (values) => values.some((v) => v.event === 'batch.completed'),
    );
    await expect.poll(() => listeners(api)).toBe(2);
    await api.gql('mutation ($id: ID!) { cancelBatch(id: $id) { id } }', { id: batchId });
    const jobIds = (await bob.finished).map((v) => v.jobId);
    expect(jobIds).toContain(shown);
    expect(jobIds).not.toContain(hidden);
  });

  it('jobEvents stops delivering a job made PRIVATE in another process, to live and to new subscribers', async () => {
    api = await startApi({ role: 'api' }); // where alice writes
    const bobs = await startApi({ role: 'api', overrides: { dataDir: api.conveyor.config.dataDir } }); // where bob listens
    other = bobs;
    const query = 'subscription { jobEvents(filter: { status: [PENDING] }) { jobId op status } }';
    let marker = '';
    const follow = () =>
      subscribe<{ jobId: string; op: string }>(bobs.client({ 'x-user-id': 'bob' }), query, {}, (values) =>
        values.some((v) => v.jobId === marker),
      );
    const cancelAndRestart = async (id: string) => {
      await api.gql('mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id });
      await api.gql('mutation ($id: ID!) { restartJob(id: $id) { id } }', { id });
    };

    // Live: bob has seen the job (its access info is cached in his process); then it becomes
    // PRIVATE while CANCELLED, so the access change is not an event his filter lets through.
    const live = follow();
    await expect.poll(() => listeners(bobs)).toBe(2);
    const job = await submitPublic();
    await expect.poll(() => live.values.map((v) => v.jobId)).toEqual([job]);
    await api.gql('mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id: job });
    await setVisibility(job, 'PRIVATE');
    await api.gql('mutation ($id: ID!) { restartJob(id: $id) { id } }', { id: job });
    marker = await submitPublic();
    expect((await live.finished).map((v) => v.jobId)).toEqual([job, marker]);
    await expect.poll(() => listeners(bobs)).toBe(0);

    // A new subscription in the same process.
    const next = follow();
    await expect.poll(() => listeners(bobs)).toBe(2);
    await cancelAndRestart(job);
    marker = await submitPublic();
    expect((await next.finished).map((v) => v.jobId)).toEqual([marker]);
    await expect.poll(() => listeners(bobs)).toBe(0);

    // An access change made while nobody in bob's process listened.
    const seen = follow();
    await expect.poll(() => listeners(bobs)).toBe(2);
    const quiet = await submitPublic();
    marker = quiet;
    await seen.finished;
    await expect.poll(() => listeners(bobs)).toBe(0);
    await setVisibility(quiet, 'PRIVATE');
    const later = follow();
    await expect.poll(() => listeners(bobs)).toBe(2);
    await cancelAndRestart(quiet);
    marker = await submitPublic();
    expect((await later.finished).map((v) => v.jobId)).toEqual([marker]);
  }, 30_000);
});
