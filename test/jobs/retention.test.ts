/**
 * The retention sweep with real files: purged jobs lose their result files, archived
 * batches keep theirs, folders of deleted jobs and old uploads go.
 */
import { afterEach, expect, it } from 'vitest';
import { sweepRetention } from '../../src/jobs/retention.js';
import { startApi, type TestApi } from '../helpers/api.js';

let api: TestApi;
afterEach(async () => {
  await api?.stop();
});

it('deletes old jobs with their result files, folders of deleted jobs and unused uploads, keeps archived batches, and reports the sweep', async () => {
  api = await startApi({ overrides: { 'retention.completedDays': 30, 'uploads.ttlHours': 24 } });
  const { store, results, uploads, config } = api.conveyor;
  const submit = async (query: string) => {
    const { body } = await api.gql<Record<string, { job?: { id: string }; batch?: { id: string } }>>(query);
    expect(body.errors).toBeUndefined();
    return body.data as Record<string, { job?: { id: string }; batch?: { id: string } }>;
  };
  const loose = (await submit('mutation { submitJob(input: { type: "files", parameters: { title: "old" } }) { job { id } } }')).submitJob
    ?.job?.id as string;
  const batchId = (
    await submit(
      'mutation { submitBatch(input: { name: "keep", jobs: [{ type: "files", parameters: { title: "kept" } }] }) { batch { id } } }',
    )
  ).submitBatch?.batch?.id as string;
  await expect.poll(async () => (await store.countJobs({ status: ['COMPLETED'] })) === 2).toBe(true);
  await store.archiveBatch(batchId, true);
  const kept = (await store.listJobs({ batchId }, { first: 1 })).items[0]?.id as string;
  const upload = await uploads.put('alice', Buffer.from('%PDF-1.4 not used'), 'application/pdf');
  // A folder whose job is gone (deleted before its files were, or by an older version).
  await results.put('job_00000000000000000000000000', 'left.md', 'left behind', 'text/markdown');

  const later = new Date(Date.now() + 31 * 86_400_000);
  const result = await sweepRetention(store, config, { results, uploads }, later);
  expect(result).toMatchObject({ jobs: 1, jobIds: [loose], uploads: 1, orphanedResults: 1 });
  expect(await results.list(loose)).toEqual([]);
  expect(await results.folders('job_')).toEqual([kept]);
  expect((await results.list(kept)).map((f) => f.name)).toContain('report.md');
  expect(await results.folders('upl_')).not.toContain(upload.uploadId);
  expect(await store.getJobs([loose, kept])).toEqual([null, expect.objectContaining({ id: kept })]);
});

it('runs on its interval in the API process and shows its last run in stats', async () => {
  api = await startApi({ overrides: { 'retention.intervalMs': 50 } });
  await expect
    .poll(
      async () =>
        (await api.gql<{ stats: { lastRetentionSweep: unknown } }>('{ stats { lastRetentionSweep { at jobs changes uploads } } }')).body
          .data?.stats.lastRetentionSweep,
    )
    .toMatchObject({ jobs: 0, uploads: 0 });
});
