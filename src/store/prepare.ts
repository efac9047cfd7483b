/**
 * Engine-independent preparation of writes: validation of new jobs and batches,
 * defaults, idempotency fingerprints, and the change/delivery records that a state
 * change implies. Both adapters call these so that they cannot disagree.
 */
import { createHash } from 'node:crypto';
import { defaultAccessControl, invalidAclEntry } from '../domain/access.js';
import { newId } from '../domain/ids.js';
import { batchStatus, emptyCounts } from '../domain/status.js';
import type { AccessControl, Batch, Delivery, DeliveryAttempt, Job, JobStatus, Json, JsonObject, WebhookEvent } from '../domain/types.js';
import { VISIBILITIES } from '../domain/types.js';
import { ValidationError } from '../errors.js';
import { canonicalJson } from '../lib/canonical-json.js';
import type { DeliveryOutcome, NewBatch, NewBatchJob, NewJob } from './port.js';

/** Largest page a list call returns. */
export const MAX_PAGE = 1000;

function fail(message: string, field: string, index?: number): never {
  const where = index === undefined ? field : `jobs[${index}].${field}`;
  throw new ValidationError(`${where}: ${message}`, index === undefined ? { field } : { field: where, index });
}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function checkAccess(acl: AccessControl | undefined, index?: number): void {
  if (acl === undefined) return;
  if (!VISIBILITIES.includes(acl.visibility)) {
    fail(`must be one of ${VISIBILITIES.join(', ')}`, 'accessControl.visibility', index);
  }
  for (const list of ['read', 'write', 'admin'] as const) {
    if (!Array.isArray(acl[list])) fail('must be a list of user:<id> or team:<id>', `accessControl.${list}`, index);
  }
  const bad = invalidAclEntry(acl);
  if (bad !== null) fail(`"${bad}" is not user:<id> or team:<id>`, 'accessControl', index);
}

function checkJobFields(job: NewBatchJob, index?: number): void {
  if (typeof job.type !== 'string' || job.type.length === 0 || job.type.length > 100) {
    fail('must be a non-empty string of at most 100 characters', 'type', index);
  }
  if (!isPlainObject(job.parameters)) fail('must be a JSON object', 'parameters', index);
  if (job.priority !== undefined && (!Number.isInteger(job.priority) || Math.abs(job.priority) > 1_000_000)) {
    fail('must be an integer between -1000000 and 1000000', 'priority', index);
  }
  if (job.runAt !== undefined && (!(job.runAt instanceof Date) || Number.isNaN(job.runAt.getTime()))) {
    fail('must be a valid date', 'runAt', index);
  }
  if (!Number.isInteger(job.maxAttempts) || job.maxAttempts < 1 || job.maxAttempts > 1000) {
    fail('must be an integer from 1 to 1000', 'maxAttempts', index);
  }
  if (job.webhook !== undefined && job.webhook !== null && !isPlainObject(job.webhook)) {
    fail('must be an object', 'webhook', index);
  }
  if (job.correlationId !== undefined && job.correlationId !== null) {
    if (typeof job.correlationId !== 'string' || job.correlationId.length > MAX_CORRELATION_ID) {
      fail(`must be a string of at most ${MAX_CORRELATION_ID} characters`, 'correlationId', index);
    }
  }
}

/** Longest `correlationId` a job takes. */
export const MAX_CORRELATION_ID = 200;

function checkOwner(ownerId: unknown, teamIds: unknown): void {
  if (typeof ownerId !== 'string' || ownerId.length === 0) fail('must be a non-empty string', 'ownerId');
  if (teamIds !== undefined && (!Array.isArray(teamIds) || teamIds.some((t) => typeof t !== 'string' || t === ''))) {
    fail('must be a list of non-empty strings', 'teamIds');
  }
}

/** The idempotency fingerprint of a submit: the payload as given, canonicalised. */
export function fingerprint(payload: unknown): string {
  return createHash('sha256').update(canonicalJson(payload)).digest('base64url');
}

/** A job input without what the result cache adds (found at submit time, not part of what was asked). */
function asked<T extends NewBatchJob>(input: T): Omit<T, 'cacheKey' | 'cachedFrom'> {
  const { cacheKey: _key, cachedFrom: _from, ...rest } = input;
  return rest;
}

/** `parameters.track` when it is a string (indexed for filters and stats). */
export function trackOf(parameters: JsonObject): string | null {
  const track: Json | undefined = parameters.track;
  return typeof track === 'string' ? track : null;
}

/** Builds the full record of a new job; `nowMs` is shared by the whole insert. */
function buildJob(
  input: NewBatchJob,
  owner: { ownerId: string; teamIds: string[]; accessControl: AccessControl },
  batch: { id: string; active: boolean } | null,
  now: Date,
  idempotencyKey: string | null,
): Job {
  return {
    id: newId('job', now.getTime()),
    type: input.type,
    parameters: input.parameters,
    status: 'PENDING',
    priority: input.priority ?? 0,
    runAt: input.runAt ?? now,
    attempts: 0,
    maxAttempts: input.maxAttempts,
    progress: null,
    results: null,
    error: null,
    errors: [],
    ownerId: owner.ownerId,
    teamIds: owner.teamIds,
    accessControl: owner.accessControl,
    batchId: batch?.id ?? null,
    track: trackOf(input.parameters),
    webhook: input.webhook ?? null,
    idempotencyKey,
    cacheKey: input.cacheKey ?? null,
    cachedFrom: input.cachedFrom ?? null,
    ingest: input.ingest ?? null,
    correlationId: input.correlationId ?? null,
    workerId: null,
    usage: null,
    cancelRequested: false,
    leaseOwner: null,
    leaseUntil: null,
    leaseToken: 0,
    version: 1,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
  };
}

export interface PreparedJob {
  job: Job;
  /** Set when the submit carried an idempotency key. */
  fingerprint: string | null;
}

/** Validates every job first (nothing is written when one is invalid) and builds the records. */
export function prepareJobs(inputs: NewJob[], now: Date): PreparedJob[] {
  if (!Array.isArray(inputs)) fail('must be a list', 'jobs');
  inputs.forEach((input, index) => {
    checkJobFields(input, index);
    if (typeof input.ownerId !== 'string' || input.ownerId === '') fail('must be a non-empty string', 'ownerId', index);
    checkAccess(input.accessControl, index);
  });
  // Jobs without their own teams or access control share one object: writers encode it once.
  const noTeams: string[] = [];
  const defaultAcl = defaultAccessControl();
  return inputs.map((input) => {
    const key = input.idempotencyKey ?? null;
    return {
      job: buildJob(
        input,
        {
          ownerId: input.ownerId,
          teamIds: input.teamIds ?? noTeams,
          accessControl: input.accessControl ?? defaultAcl,
        },
        null,
        now,
        key,
      ),
      fingerprint: key === null ? null : fingerprint(asked(input)),
    };
  });
}

export interface PreparedBatch {
  batch: Batch;
  jobs: Job[];
  fingerprint: string | null;
}

/** Validates a batch and all its jobs, then builds the batch with exact initial counts. */
export function prepareBatch(input: NewBatch, now: Date): PreparedBatch {
  if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 500) {
    fail('must be a non-empty string of at most 500 characters', 'name');
  }
  checkOwner(input.ownerId, input.teamIds);
  checkAccess(input.accessControl);
  if (!Array.isArray(input.jobs) || input.jobs.length === 0) fail('a batch needs at least one job', 'jobs');
  if (input.metadata !== undefined && input.metadata !== null && !isPlainObject(input.metadata)) {
    fail('must be an object', 'metadata');
  }
  input.jobs.forEach((job, index) => {
    checkJobFields(job, index);
  });
  const owner = {
    ownerId: input.ownerId,
    teamIds: input.teamIds ?? [],
    accessControl: input.accessControl ?? defaultAccessControl(),
  };
  const active = input.active ?? true;
  const counts = { ...emptyCounts(), total: input.jobs.length, pending: input.jobs.length };
  const batch: Batch = {
    id: newId('bat', now.getTime()),
    name: input.name,
    ...owner,
    active,
    archived: false,
    webhook: input.webhook ?? null,
    metadata: input.metadata ?? null,
    counts,
    status: batchStatus(counts),
    summary: emptySummary(),
    idempotencyKey: input.idempotencyKey ?? null,
    version: 1,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  };
  const jobs = input.jobs.map((job) => buildJob(job, owner, { id: batch.id, active }, now, null));
  const key = input.idempotencyKey ?? null;
  return { batch, jobs, fingerprint: key === null ? null : fingerprint({ ...input, jobs: input.jobs.map(asked) }) };
}

export function emptySummary(): Batch['summary'] {
  return { firstStartedAt: null, lastFinishedAt: null, tokens: 0, costUsd: 0 };
}

/** Run time of a job's successful attempt (its last start → its finish); null unless it completed. */
export function jobDurationMs(job: Job): number | null {
  if (job.status !== 'COMPLETED' || job.startedAt === null || job.finishedAt === null) return null;
  return job.finishedAt.getTime() - job.startedAt.getTime();
}

/** A batch's figures for clients and webhook payloads (durations from first start to last finish). */
export function batchSummaryView(batch: Batch): {
  durationMs: number | null;
  tokens: number;
  costUsd: number;
  jobsPerMinute: number | null;
} {
  const { firstStartedAt, lastFinishedAt, tokens, costUsd } = batch.summary;
  const durationMs =
    firstStartedAt === null || lastFinishedAt === null ? null : Math.max(0, lastFinishedAt.getTime() - firstStartedAt.getTime());
  const ended = batch.counts.completed + batch.counts.failed + batch.counts.cancelled;
  const jobsPerMinute = durationMs === null || ended === 0 ? null : ended / Math.max(durationMs / 60_000, 1 / 60_000);
  return { durationMs, tokens, costUsd, jobsPerMinute };
}

/** Clamps a page size to 1..MAX_PAGE. */
export function pageSize(first: number): number {
  if (!Number.isInteger(first) || first < 1) throw new ValidationError('first: must be a positive integer', { field: 'first' });
  return Math.min(first, MAX_PAGE);
}

/** The summary a job change event carries. */
export function jobChangeData(job: Job): JsonObject {
  return {
    status: job.status,
    attempts: job.attempts,
    cancelRequested: job.cancelRequested,
    progress: job.progress === null ? null : { ...job.progress, updatedAt: job.progress.updatedAt.toISOString() },
  };
}

/**
 * A job's access control changed: the summary carries `access: true` so change-feed
 * consumers that cache who may read the job know to look again.
 */
export function accessChangeData(job: Job): JsonObject {
  return { ...jobChangeData(job), access: true };
}

/** The job with new access control (validated), one version on. */
export function withAccess(job: Job, accessControl: AccessControl, now: Date): Job {
  checkAccess(accessControl);
  return {
    ...job,
    accessControl: {
      visibility: accessControl.visibility,
      read: [...accessControl.read],
      write: [...accessControl.write],
      admin: [...accessControl.admin],
    },
    version: job.version + 1,
    updatedAt: now,
  };
}

/** The summary a batch change event carries. */
export function batchChangeData(batch: Batch): JsonObject {
  return {
    status: batch.status,
    counts: { ...batch.counts },
    active: batch.active,
    archived: batch.archived,
  };
}

/** The webhook event a job's terminal status produces. */
export function jobEventFor(status: JobStatus): WebhookEvent | null {
  switch (status) {
    case 'COMPLETED':
      return 'job.completed';
    case 'FAILED':
      return 'job.failed';
    case 'CANCELLED':
      return 'job.cancelled';
    default:
      return null;
  }
}

/** True when a webhook config subscribes to an event (no `events` list means all). */
export function wantsEvent(webhook: JsonObject | null, event: WebhookEvent): boolean {
  if (webhook === null || typeof webhook.url !== 'string') return false;
  const events = webhook.events;
  return !Array.isArray(events) || events.includes(event);
}

function dateJson(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

/** The outbox body of a job event, fixed at the moment the job reached its state. */
export function jobDeliveryPayload(deliveryId: string, event: WebhookEvent, job: Job, now: Date): JsonObject {
  const data: JsonObject = { type: job.type, results: job.results, finishedAt: dateJson(job.finishedAt) };
  if (job.webhook?.includeMetadata === true) {
    data.usage = usageJson(job.usage);
    data.durationMs = jobDurationMs(job);
  }
  return {
    type: event,
    id: deliveryId,
    timestamp: now.toISOString(),
    jobId: job.id,
    batchId: job.batchId,
    status: job.status,
    success: job.status === 'COMPLETED',
    correlationId: job.correlationId,
    data,
    error:
      job.error === null
        ? null
        : { code: job.error.code, message: job.error.message, retriable: job.error.retriable, details: job.error.details ?? null },
  };
}

function usageJson(usage: Job['usage']): JsonObject | null {
  return usage === null ? null : { ...usage, models: [...usage.models] };
}

/** The outbox body of `batch.completed`. */
export function batchDeliveryPayload(deliveryId: string, batch: Batch, now: Date): JsonObject {
  return {
    type: 'batch.completed',
    id: deliveryId,
    timestamp: now.toISOString(),
    jobId: null,
    batchId: batch.id,
    status: batch.status,
    success: batch.status === 'COMPLETED',
    data: {
      name: batch.name,
      counts: { ...batch.counts },
      finishedAt: dateJson(batch.finishedAt),
      ...(batch.webhook?.includeMetadata === true ? { summary: batchSummaryView(batch) } : {}),
    },
    error: null,
  };
}

/** A delivery after one recorded attempt: its new state, the lease let go. */
export function afterAttempt(before: Delivery, outcome: DeliveryOutcome, now: Date): Delivery {
  return {
    ...before,
    status: outcome.status,
    attempts: [...before.attempts, outcome.attempt],
    nextAttemptAt: outcome.nextAttemptAt ?? before.nextAttemptAt,
    leaseOwner: null,
    leaseUntil: null,
    updatedAt: now,
  };
}

/** The attempt recorded for a delivery that is not sent because its URL answered 410 Gone before. */
export function disabledAttempt(now: Date): DeliveryAttempt {
  return { at: now, statusCode: null, durationMs: 0, error: 'ENDPOINT_DISABLED', responseSnippet: null };
}

/** Every ACL entry that grants read (read, write and admin lists): indexed for visibility filters. */
export function readerEntries(acl: AccessControl): string[] {
  return [...new Set([...acl.read, ...acl.write, ...acl.admin])];
}
