/**
 * Conveyor's domain types. Glossary (see docs/ARCHITECTURE.md for the full one):
 *
 * - job: one unit of work of a registered `type`, with JSON `parameters`.
 * - batch: a named group of jobs; its status is derived from its counts.
 * - lease: a claimed job belongs to one worker until `leaseUntil`.
 * - fencing token: the claim's attempt number; writes with a stale token are refused.
 * - change: every write yields a change event with an opaque, ordered cursor.
 * - delivery: one webhook message for one job or batch event, with its attempts.
 * - principal: who calls (user id, teams, admin flag).
 *
 * Everything here is pure data: no I/O, no driver types.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const JOB_STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

export const BATCH_STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'PARTIAL', 'FAILED', 'CANCELLED'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

export const VISIBILITIES = ['PRIVATE', 'TEAM', 'PUBLIC'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Who may see and change a job or batch besides its owner. Entries are `user:<id>` or `team:<id>`. */
export interface AccessControl {
  visibility: Visibility;
  read: string[];
  write: string[];
  admin: string[];
}

/** The caller. `userId` is null for anonymous callers. */
export interface Principal {
  userId: string | null;
  teams: string[];
  admin: boolean;
}

export interface Progress {
  /** 0..100 */
  percent: number;
  step: string | null;
  message: string | null;
  updatedAt: Date;
}

export interface LogEntry {
  /** Ordered per store; also the paging key of a job's log. */
  seq: number;
  jobId: string;
  attempt: number;
  at: Date;
  level: LogLevel;
  message: string;
}

/** One attempt's failure. `retriable: false` means the handler asked not to retry. */
export interface JobError {
  code: string;
  message: string;
  retriable: boolean;
  attempt: number;
  at: Date;
  /** The worker that ran the attempt (null when unknown, e.g. records written before workers were recorded). */
  workerId?: string | null;
  /** What the handler attached (e.g. the HTTP status and URL of a failed download). */
  details?: JsonObject | null;
}

/**
 * What handlers reported using (`ctx.usage()`), summed over a job's attempts. Every
 * figure is optional: a handler reports what it knows.
 */
export interface Usage {
  tokens: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** The models named in the reports, in the order first seen. */
  models: string[];
}

export interface Job {
  id: string;
  type: string;
  parameters: JsonObject;
  status: JobStatus;
  /** Higher runs first. */
  priority: number;
  /** Not claimed before this time (delayed jobs, retry backoff). */
  runAt: Date;
  /** Attempts used of the budget (`maxAttempts`); a restart resets it, a graceful release refunds one. */
  attempts: number;
  maxAttempts: number;
  progress: Progress | null;
  results: JsonObject | null;
  /** The last attempt's error, if the last attempt failed. */
  error: JobError | null;
  /** Every failed attempt's error, oldest first. */
  errors: JobError[];
  ownerId: string;
  /** Teams the job belongs to: with TEAM visibility, their members may read it. */
  teamIds: string[];
  accessControl: AccessControl;
  batchId: string | null;
  /** `parameters.track` when it is a string, indexed for filters and stats. */
  track: string | null;
  /** Webhook settings as submitted (secrets included: never return this to clients as is). */
  webhook: JsonObject | null;
  idempotencyKey: string | null;
  /** Type and normalised parameters hashed: jobs with equal keys would produce equal results (result cache). */
  cacheKey: string | null;
  /** The completed job whose results this one reuses instead of running its handler. */
  cachedFrom: string | null;
  /** Where an ingested job came from (`POST /hooks/<source>`); null for submitted jobs. */
  ingest: IngestOrigin | null;
  /** The submitter's own reference, echoed in webhook payloads (at most 200 characters). */
  correlationId: string | null;
  /** The worker of the current or last attempt (kept after the lease ends). */
  workerId: string | null;
  /** What the job's attempts reported using; null until one reports. */
  usage: Usage | null;
  cancelRequested: boolean;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  /**
   * The fencing token: increases with every claim and never goes back, so a worker that
   * lost its lease can never write over the new owner's work.
   */
  leaseToken: number;
  /** Increases with every write; lets readers order snapshots of the same job. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** The inbound webhook a job was made from. */
export interface IngestOrigin {
  /** The configured source (`ingest.sources.<name>`). */
  source: string;
  /** The sender's event type (`pull_request`, `Merge Request Hook`, `invoice.paid`…). */
  event: string;
  /** The sender's delivery id: the same across the sender's retries. */
  deliveryId: string;
}

export interface BatchCounts {
  total: number;
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** Figures a batch gathers from its jobs' writes. */
export interface BatchSummary {
  /** When the first of its jobs was claimed. */
  firstStartedAt: Date | null;
  /** When the latest of its jobs reached a terminal state. */
  lastFinishedAt: Date | null;
  /** Tokens and cost its jobs reported (`Job.usage`). */
  tokens: number;
  costUsd: number;
}

export interface Batch {
  id: string;
  name: string;
  ownerId: string;
  teamIds: string[];
  accessControl: AccessControl;
  /** Paused batches (`active: false`) are not claimed. */
  active: boolean;
  /** Archived batches are hidden from default lists; archiving never deletes results. */
  archived: boolean;
  webhook: JsonObject | null;
  metadata: JsonObject | null;
  counts: BatchCounts;
  /** Derived from `counts` by `batchStatus()`. */
  status: BatchStatus;
  /** Timing and usage over the batch's jobs, kept in the same write as the counts. */
  summary: BatchSummary;
  idempotencyKey: string | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  /** When the last job of the batch reached a terminal state. */
  finishedAt: Date | null;
}

export const WEBHOOK_EVENTS = ['job.completed', 'job.failed', 'job.cancelled', 'batch.completed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const DELIVERY_STATUSES = ['PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'DISABLED'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One recorded attempt to send a delivery. */
export interface DeliveryAttempt {
  at: Date;
  /** HTTP status, or null for network errors and timeouts. */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  /** The first bytes of the receiver's answer. */
  responseSnippet: string | null;
}

/** One webhook message for one job or batch event (outbox row). */
export interface Delivery {
  id: string;
  event: WebhookEvent;
  jobId: string | null;
  batchId: string | null;
  /** The target (url, secret, token, headers...) copied from the job or batch at enqueue time. */
  webhook: JsonObject;
  /** The event body, fixed at enqueue time so retries send the same message. */
  payload: JsonObject;
  status: DeliveryStatus;
  attempts: DeliveryAttempt[];
  nextAttemptAt: Date;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}
