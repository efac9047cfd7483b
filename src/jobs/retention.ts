/**
 * The retention sweep: deletes what `retention.*` and `uploads.ttlHours` say is too old,
 * and result folders whose job is gone. It spans the job store and the result store,
 * so it lives above both.
 */
import type { ResolvedConfig } from '../config.js';
import type { ResultStore } from '../results/port.js';
import type { JobStore, PurgeResult } from '../store/port.js';
import type { UploadStore } from '../uploads/uploads.js';
import { deleteOrphanedResults } from './removal.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export interface SweepResult extends PurgeResult {
  /** Unused uploads past `uploads.ttlHours`. */
  uploads: number;
  /** Result folders of jobs deleted earlier (a crash between a job and its files). */
  orphanedResults: number;
}

export async function sweepRetention(
  store: JobStore,
  config: Pick<ResolvedConfig, 'retention' | 'uploads'>,
  files: { results: ResultStore; uploads: UploadStore } | null = null,
  now: Date = new Date(),
): Promise<SweepResult> {
  const { completedDays, failedDays, changesHours } = config.retention;
  const purged = await store.purge({
    ...(completedDays > 0 ? { completedBefore: new Date(now.getTime() - completedDays * DAY) } : {}),
    ...(failedDays > 0 ? { failedBefore: new Date(now.getTime() - failedDays * DAY) } : {}),
    ...(changesHours > 0 ? { changesBefore: new Date(now.getTime() - changesHours * HOUR) } : {}),
  });
  if (files === null) return { ...purged, uploads: 0, orphanedResults: 0 };
  // The jobs are gone first: a crash in between leaves files nobody lists, never a job without its files.
  for (const id of purged.jobIds) await files.results.deleteJob(id);
  const orphanedResults = await deleteOrphanedResults(store, files.results);
  const uploads = config.uploads.ttlHours > 0 ? await files.uploads.sweep(new Date(now.getTime() - config.uploads.ttlHours * HOUR)) : 0;
  return { ...purged, uploads, orphanedResults };
}
