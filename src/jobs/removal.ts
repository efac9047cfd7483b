/**
 * Deleting jobs together with their result files. The job store and the result store
 * are separate (SQLite + files, MongoDB + GridFS), so this sits above both: the job
 * goes first, then its folder. A crash in between leaves a folder that no job names,
 * never a job without its files; the retention sweep finds such folders later
 * (`deleteOrphanedResults`).
 */
import type { ResultStore } from '../results/port.js';
import type { JobStore } from '../store/port.js';

/** Job ids are `job_…`; upload folders (`upl_…`) belong to the upload sweep. */
const JOB_FOLDER_PREFIX = 'job_';
/** Ids read or checked per store call. */
const PAGE = 500;

/** Deletes a job that is not running (see `JobStore.deleteJob`), then its result files. */
export async function deleteJobWithResults(store: JobStore, results: ResultStore, id: string): Promise<void> {
  await store.deleteJob(id);
  await results.deleteJob(id);
}

/** Deletes a batch with its jobs (see `JobStore.deleteBatch`), then every job's result files. */
export async function deleteBatchWithResults(store: JobStore, results: ResultStore, id: string): Promise<void> {
  // A batch's jobs are fixed at creation, so the ids read before the delete are all of them.
  const jobIds: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await store.listJobs({ batchId: id }, { first: PAGE, after });
    jobIds.push(...page.items.map((job) => job.id));
    if (!page.hasNextPage || page.endCursor === null) break;
    after = page.endCursor;
  }
  await store.deleteBatch(id);
  for (const jobId of jobIds) await results.deleteJob(jobId);
}

/**
 * Deletes result folders whose job no longer exists (left by a crash between deleting
 * a job and its files, or by an older version that did not delete them). Returns how
 * many folders went.
 */
export async function deleteOrphanedResults(store: JobStore, results: ResultStore): Promise<number> {
  const folders = await results.folders(JOB_FOLDER_PREFIX);
  let deleted = 0;
  for (let i = 0; i < folders.length; i += PAGE) {
    const ids = folders.slice(i, i + PAGE);
    const jobs = await store.getJobs(ids);
    for (const [index, job] of jobs.entries()) {
      if (job !== null) continue;
      await results.deleteJob(ids[index] as string);
      deleted++;
    }
  }
  return deleted;
}
