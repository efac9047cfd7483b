/** Engine-independent pieces of reads: opaque cursors and the stats summary. */
import type { JobStatus } from '../domain/types.js';
import { JOB_STATUSES } from '../domain/types.js';
import { ValidationError } from '../errors.js';
import type { CountRow, JobFilter, Page, Stats, StatsFilter } from './port.js';

/** A list cursor: the id of the last item, opaque to clients. */
export function encodePageCursor(id: string): string {
  return Buffer.from(`id:${id}`).toString('base64url');
}

export function decodePageCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  if (!text.startsWith('id:') || text.length < 4) throw new ValidationError('after: not a valid cursor', { field: 'after' });
  return text.slice(3);
}

/** A change-feed cursor of the SQLite store: the change's sequence number. */
export function encodeSeqCursor(seq: number): string {
  return String(seq);
}

export function decodeSeqCursor(cursor: string): number {
  const seq = Number(cursor);
  if (!/^\d+$/.test(cursor) || !Number.isSafeInteger(seq)) {
    throw new ValidationError('after: not a valid change cursor', { field: 'after' });
  }
  return seq;
}

/** The 95th percentile (nearest rank) of unsorted numbers, or null for none. */
export function p95(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length * 0.95) - 1] ?? null;
}

/** Builds `Stats` from grouped counts and last hour's run times. */
export function summarizeStats(byType: CountRow[], byTrack: CountRow[], queueDepth: number, durations: number[]): Stats {
  const byStatus = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  for (const row of byType) byStatus[row.status] += row.count;
  const sum = durations.reduce((a, b) => a + b, 0);
  return {
    byStatus,
    byType,
    byTrack,
    queueDepth,
    finishedLastHour: durations.length,
    avgDurationMs: durations.length === 0 ? null : sum / durations.length,
    p95DurationMs: p95(durations),
    throughputPerMinute: durations.length / 60,
  };
}

/** A page from `limit + 1` rows fetched newest first: the extra row only says there is more. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, endCursor: last === undefined ? null : encodePageCursor(last.id), hasNextPage: rows.length > limit };
}

/** The job filter a stats request stands for. */
export function statsJobFilter(filter: StatsFilter): JobFilter {
  const base: JobFilter = {};
  if (filter.batchId !== undefined) base.batchId = filter.batchId;
  if (filter.ownerId !== undefined) base.ownerId = filter.ownerId;
  if (filter.type !== undefined) base.type = [filter.type];
  if (filter.visibleTo !== undefined) base.visibleTo = filter.visibleTo;
  return base;
}
