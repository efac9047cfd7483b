import { IllegalTransitionError } from '../errors.js';
import type { BatchCounts, BatchStatus, JobStatus } from './types.js';
import { TERMINAL_JOB_STATUSES } from './types.js';

/**
 * The job state machine. PROCESSING → PENDING is a retry, a stalled-lease recovery
 * or a graceful release; terminal → PENDING only happens through an explicit restart.
 */
const TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  PENDING: ['PROCESSING', 'CANCELLED'],
  PROCESSING: ['COMPLETED', 'FAILED', 'CANCELLED', 'PENDING'],
  COMPLETED: ['PENDING'],
  FAILED: ['PENDING'],
  CANCELLED: ['PENDING'],
};

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws `ILLEGAL_TRANSITION` unless `from → to` is allowed. */
export function assertTransition(jobId: string, from: JobStatus, to: JobStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError('job', jobId, from, to);
}

/** The statuses a job may be in for a move to `to` to be legal. */
export function sourcesOf(to: JobStatus): JobStatus[] {
  return (Object.keys(TRANSITIONS) as JobStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

export function emptyCounts(): BatchCounts {
  return { total: 0, pending: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 };
}

/** The counts field that holds jobs of a status. */
export function countKey(status: JobStatus): Exclude<keyof BatchCounts, 'total'> {
  switch (status) {
    case 'PENDING':
      return 'pending';
    case 'PROCESSING':
      return 'processing';
    case 'COMPLETED':
      return 'completed';
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
      return 'cancelled';
  }
}

/**
 * A batch's status, derived from its counts:
 * - some jobs still pending or running: PROCESSING once any job started or ended, else PENDING;
 * - all ended: COMPLETED (all completed), FAILED (all failed), CANCELLED (all cancelled),
 *   PARTIAL (any other mix).
 * An empty batch counts as COMPLETED.
 */
export function batchStatus(counts: BatchCounts): BatchStatus {
  const open = counts.pending + counts.processing;
  if (open > 0) return counts.pending === counts.total ? 'PENDING' : 'PROCESSING';
  if (counts.completed === counts.total) return 'COMPLETED';
  if (counts.failed === counts.total) return 'FAILED';
  if (counts.cancelled === counts.total) return 'CANCELLED';
  return 'PARTIAL';
}

/** True once every job of the batch has reached a terminal state. */
export function batchFinished(counts: BatchCounts): boolean {
  return counts.pending + counts.processing === 0;
}
