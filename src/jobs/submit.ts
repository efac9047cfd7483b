/**
 * Submitting work: validates the job type and parameters against the handler registry
 * before anything is stored, applies per-type defaults, and creates the jobs. The
 * GraphQL mutations and the programmatic client both go through here.
 */
import { createHash } from 'node:crypto';
import type { ResolvedConfig } from '../config.js';
import type { AccessControl, Batch, IngestOrigin, Job, JsonObject, Principal } from '../domain/types.js';
import { AppError, LimitExceededError, UnauthenticatedError, UploadExpiredError, ValidationError } from '../errors.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import { canonicalJson } from '../lib/canonical-json.js';
import type { NetGuard } from '../net/guard.js';
import type { Created, JobPatch, JobStore, NewBatchJob, NewJob } from '../store/port.js';
import type { UploadStore } from '../uploads/uploads.js';
import { validateWebhook } from '../webhooks/validate.js';

export interface JobInput {
  type: string;
  parameters?: JsonObject;
  priority?: number;
  runAt?: Date;
  maxAttempts?: number;
  webhook?: JsonObject | null;
  idempotencyKey?: string | null;
  accessControl?: AccessControl;
  /** Reuse the results of an identical completed job the caller may read; default `results.cacheByDefault`. */
  useCache?: boolean;
  /** Run the handler even when a cached result exists. */
  forceRefresh?: boolean;
  /** Set by inbound webhooks (`src/ingest/`), never by clients. */
  ingest?: IngestOrigin;
  /** The submitter's own reference, echoed in webhook payloads (at most 200 characters). */
  correlationId?: string | null;
}

export interface BatchInput {
  name: string;
  jobs: Omit<JobInput, 'idempotencyKey' | 'accessControl' | 'ingest'>[];
  active?: boolean;
  webhook?: JsonObject | null;
  metadata?: JsonObject | null;
  idempotencyKey?: string | null;
  accessControl?: AccessControl;
  /** Parameters every job shares: each job's own parameters are merged over them, then validated. */
  parameters?: JsonObject;
  /** As `JobInput.useCache`, for every job. */
  useCache?: boolean;
  /** As `JobInput.forceRefresh`, for every job. */
  forceRefresh?: boolean;
}

/** The result-cache key: job type and parameters after validation (defaults applied), hashed. */
export function cacheKeyOf(type: string, parameters: JsonObject): string {
  return createHash('sha256').update(type).update('\u0000').update(canonicalJson(parameters)).digest('hex');
}

export interface Submitter {
  submitJob(input: JobInput, principal: Principal): Promise<Created<Job>>;
  /** Everything `submitJob` checks and fills in, without storing: the record to pass to `store.createJobs`. */
  prepareJob(input: JobInput, principal: Principal): Promise<NewJob>;
  submitBatch(input: BatchInput, principal: Principal): Promise<Created<{ batch: Batch; jobs: Job[] }>>;
  /** Throws UPLOAD_EXPIRED when the upload the job reads (`parameters.uploadId`) is gone: a restart could not run. */
  assertRestartable(job: Job): Promise<void>;
  /**
   * Checks a change to a waiting job (`updateJob`): new parameters against the job's type,
   * and an upload they name against the job's owner, as at submit (NOT_FOUND otherwise).
   */
  preparePatch(job: Job, input: { priority?: number; runAt?: Date; maxAttempts?: number; parameters?: JsonObject }): Promise<JobPatch>;
}

/** Longest `idempotencyKey` or `correlationId` a caller may send. */
export const MAX_REFERENCE_LENGTH = 200;

/** Control, format and separator characters: invisible, and able to forge lines in logs and headers. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

/** A caller's own key or reference: at most 200 printable characters (`BAD_USER_INPUT` naming the field otherwise). */
function checkReference(value: unknown, field: string): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string' || value.length > MAX_REFERENCE_LENGTH || UNPRINTABLE.test(value)) {
    throw new ValidationError(
      `${field}: must be a string of at most ${MAX_REFERENCE_LENGTH} printable characters (no control characters)`,
      {
        field,
        limit: MAX_REFERENCE_LENGTH,
      },
    );
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `guard` refuses literal private-network webhook targets at submit (the process's one
 * SSRF guard); `uploads`, when given, checks that a job's `parameters.uploadId` names an
 * upload of the submitter (NOT_FOUND otherwise, the same for someone else's upload as for
 * a missing one).
 */
export function createSubmitter(
  store: JobStore,
  registry: HandlerRegistry,
  config: ResolvedConfig,
  guard: NetGuard,
  uploads?: Pick<UploadStore, 'check'>,
): Submitter {
  const uploadOf = (parameters: JsonObject): string | null => (typeof parameters.uploadId === 'string' ? parameters.uploadId : null);
  async function checkUpload(parameters: JsonObject, ownerId: string): Promise<void> {
    const uploadId = uploadOf(parameters);
    if (uploads !== undefined && uploadId !== null) await uploads.check(uploadId, ownerId);
  }

  const webhookOf = (input: JsonObject | null | undefined, field: string) =>
    input === undefined || input === null ? input : validateWebhook(input, { allowHttp: config.webhooks.allowHttp, guard, field });

  const owner = (principal: Principal): string => {
    if (principal.userId === null)
      throw new UnauthenticatedError('anonymous callers cannot submit jobs: sign in (see docs/API.md, Authentication)');
    return principal.userId;
  };

  function prepare(input: Omit<JobInput, 'idempotencyKey' | 'accessControl'>, field: string): NewBatchJob {
    if (typeof input?.type !== 'string') throw new ValidationError(`${field}.type: required`, { field: `${field}.type` });
    checkReference(input.correlationId, `${field}.correlationId`);
    const parameters = registry.validate(input.type, input.parameters, `${field}.parameters`);
    const defaults = registry.get(input.type)?.defaults ?? {};
    return {
      type: input.type,
      parameters,
      cacheKey: cacheKeyOf(input.type, parameters),
      maxAttempts: input.maxAttempts ?? config.worker.perType[input.type]?.maxAttempts ?? defaults.maxAttempts ?? config.worker.maxAttempts,
      ...(input.priority === undefined ? {} : { priority: input.priority }),
      ...(input.runAt === undefined ? {} : { runAt: input.runAt }),
      ...(input.webhook === undefined ? {} : { webhook: webhookOf(input.webhook, `${field}.webhook`) ?? null }),
      ...(input.correlationId === undefined || input.correlationId === null ? {} : { correlationId: input.correlationId }),
    };
  }

  /** With the cache on, names the newest completed job with the same key that the caller may read. */
  async function withCache(job: NewBatchJob, principal: Principal, useCache: boolean | undefined, forceRefresh: boolean | undefined) {
    if (!(useCache ?? config.results.cacheByDefault) || forceRefresh === true || typeof job.cacheKey !== 'string') return job;
    const page = await store.listJobs({ cacheKey: job.cacheKey, status: ['COMPLETED'], visibleTo: principal }, { first: 1 });
    const source = page.items[0];
    return source === undefined ? job : { ...job, cachedFrom: source.id };
  }

  async function prepareJob(input: JobInput, principal: Principal): Promise<NewJob> {
    const job = await withCache(prepare(input, 'job'), principal, input.useCache, input.forceRefresh);
    await checkUpload(job.parameters, owner(principal));
    return {
      ...job,
      ownerId: owner(principal),
      teamIds: principal.teams,
      ...(input.accessControl === undefined ? {} : { accessControl: input.accessControl }),
      ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
      ...(input.ingest === undefined ? {} : { ingest: input.ingest }),
    };
  }

  return {
    prepareJob,
    async assertRestartable(job) {
      const uploadId = uploadOf(job.parameters);
      if (uploads === undefined || uploadId === null) return;
      try {
        await uploads.check(uploadId, job.ownerId);
      } catch (error) {
        if (error instanceof AppError && error.code === 'NOT_FOUND') throw new UploadExpiredError(uploadId, job.id);
        throw error;
      }
    },
    async preparePatch(job, input) {
      const patch: JobPatch = {};
      if (input.priority !== undefined) patch.priority = input.priority;
      if (input.runAt !== undefined) patch.runAt = input.runAt;
      if (input.maxAttempts !== undefined) patch.maxAttempts = input.maxAttempts;
      if (input.parameters !== undefined) {
        const parameters = registry.validate(job.type, input.parameters, 'input.parameters');
        // The job reads its upload as its owner, whoever edits it.
        await checkUpload(parameters, job.ownerId);
        patch.parameters = parameters;
        patch.cacheKey = cacheKeyOf(job.type, parameters);
      }
      return patch;
    },
    async submitJob(input, principal) {
      // Callers' keys only: inbound webhooks make their own (from the sender's delivery id) through prepareJob.
      checkReference(input.idempotencyKey, 'idempotencyKey');
      const [created] = await store.createJobs([await prepareJob(input, principal)]);
      return created as Created<Job>;
    },
    async submitBatch(input, principal) {
      if (!Array.isArray(input.jobs)) throw new ValidationError('jobs: must be a list', { field: 'jobs' });
      checkReference(input.idempotencyKey, 'idempotencyKey');
      if (input.jobs.length > config.limits.maxBatchSize) {
        throw new LimitExceededError(
          `a batch holds at most ${config.limits.maxBatchSize} jobs (limits.maxBatchSize); this one has ${input.jobs.length}`,
          {
            limit: config.limits.maxBatchSize,
          },
        );
      }
      const webhook = webhookOf(input.webhook, 'webhook');
      // A batch's webhook also hears about its jobs when it asks for job events (the default: all events).
      const events = (webhook?.events as string[] | null | undefined) ?? null;
      const forJobs = webhook !== null && webhook !== undefined && (events === null || events.some((e) => e.startsWith('job.')));
      if (input.parameters !== undefined && !isObject(input.parameters)) {
        throw new ValidationError('parameters: must be a JSON object', { field: 'parameters' });
      }
      const shared = input.parameters ?? null;
      const prepared = input.jobs.map((job, index) => {
        // A job's own parameters win field by field over the batch's shared ones.
        const merged =
          shared === null || (job.parameters !== undefined && !isObject(job.parameters))
            ? job
            : { ...job, parameters: { ...shared, ...(isObject(job.parameters) ? job.parameters : {}) } };
        const one = prepare(merged, `jobs[${index}]`);
        return forJobs && one.webhook === undefined ? { ...one, webhook } : one;
      });
      const jobs: NewBatchJob[] = [];
      for (const job of prepared) {
        await checkUpload(job.parameters, owner(principal));
        jobs.push(await withCache(job, principal, input.useCache, input.forceRefresh));
      }
      return store.createBatch({
        name: input.name,
        ownerId: owner(principal),
        teamIds: principal.teams,
        jobs,
        ...(input.active === undefined ? {} : { active: input.active }),
        ...(webhook === undefined ? {} : { webhook }),
        ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
        ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
        ...(input.accessControl === undefined ? {} : { accessControl: input.accessControl }),
      });
    },
  };
}
