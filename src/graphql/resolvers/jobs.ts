import type { AccessControl, Job, JsonObject } from '../../domain/types.js';
import { deleteJobWithResults } from '../../jobs/removal.js';
import type { JobFilter } from '../../store/port.js';
import { jobDurationMs } from '../../store/prepare.js';
import { connectionResolvers } from '../connections.js';
import type { GraphQLContext } from '../context.js';
import type { AccessControlInput, JobFilter as JobFilterInput, Resolvers } from '../generated/resolvers-types.js';
import { jobFor, primeJob, readableBatch, readableJob, requireSignedIn } from './access.js';

/** GraphQL input → store filter (nulls mean "not filtered"). */
export function jobFilter(input: JobFilterInput | null | undefined, ctx: GraphQLContext): JobFilter {
  const filter: JobFilter = { visibleTo: ctx.principal };
  if (input?.status != null) filter.status = input.status;
  if (input?.type != null) filter.type = input.type;
  if (input?.batchId != null) filter.batchId = input.batchId;
  if (input?.ownerId != null) filter.ownerId = input.ownerId;
  if (input?.track != null) filter.track = input.track;
  if (input?.source != null) filter.source = input.source;
  if (input?.retrying != null) filter.retrying = input.retrying;
  if (input?.createdAfter != null) filter.createdAfter = input.createdAfter;
  if (input?.createdBefore != null) filter.createdBefore = input.createdBefore;
  return filter;
}

/** PENDING again after a failed attempt (a restart clears the error, so it does not count). */
export function isRetrying(job: Job): boolean {
  return job.status === 'PENDING' && job.error !== null;
}

export function jobConnection(ctx: GraphQLContext, filter: JobFilter, first: number, after: string | null | undefined) {
  return ctx.services.store.listJobs(filter, { first, after: after ?? null }).then((page) => ({
    page,
    totalCount: () => ctx.services.store.countJobs(filter),
  }));
}

/** Input defaults are applied by GraphQL; these cover values the types still call optional. */
export function accessInput(input: AccessControlInput): AccessControl {
  return { visibility: input.visibility ?? 'PRIVATE', read: input.read ?? [], write: input.write ?? [], admin: input.admin ?? [] };
}

export const jobResolvers: Resolvers = {
  Query: {
    job: (_root, { id }, ctx) => readableJob(ctx, id),
    jobs: (_root, { filter, first, after }, ctx) => jobConnection(ctx, jobFilter(filter, ctx), first, after),
  },
  Mutation: {
    async submitJob(_root, { input }, ctx) {
      requireSignedIn(ctx);
      const { value, created } = await ctx.services.submitter.submitJob(
        {
          type: input.type,
          ...(input.parameters == null ? {} : { parameters: input.parameters as JsonObject }),
          ...(input.priority == null ? {} : { priority: input.priority }),
          ...(input.runAt == null ? {} : { runAt: input.runAt }),
          ...(input.maxAttempts == null ? {} : { maxAttempts: input.maxAttempts }),
          ...(input.accessControl == null ? {} : { accessControl: accessInput(input.accessControl) }),
          ...(input.webhook == null ? {} : { webhook: input.webhook as unknown as JsonObject }),
          ...(input.idempotencyKey == null ? {} : { idempotencyKey: input.idempotencyKey }),
          ...(input.correlationId == null ? {} : { correlationId: input.correlationId }),
          ...(input.useCache == null ? {} : { useCache: input.useCache }),
          ...(input.forceRefresh == null ? {} : { forceRefresh: input.forceRefresh }),
        },
        ctx.principal,
      );
      return { job: primeJob(ctx, value), created };
    },
    async cancelJob(_root, { id }, ctx) {
      await jobFor(ctx, id, 'write');
      return primeJob(ctx, await ctx.services.store.cancelJob(id));
    },
    async restartJob(_root, { id }, ctx) {
      const job = await jobFor(ctx, id, 'write');
      await ctx.services.submitter.assertRestartable(job);
      return primeJob(ctx, await ctx.services.store.restartJob(id));
    },
    async updateJob(_root, { id, input }, ctx) {
      const job = await jobFor(ctx, id, 'write');
      const patch = await ctx.services.submitter.preparePatch(job, {
        ...(input.priority == null ? {} : { priority: input.priority }),
        ...(input.runAt == null ? {} : { runAt: input.runAt }),
        ...(input.maxAttempts == null ? {} : { maxAttempts: input.maxAttempts }),
        ...(input.parameters == null ? {} : { parameters: input.parameters as JsonObject }),
      });
      return primeJob(ctx, await ctx.services.store.updateJob(id, patch));
    },
    async deleteJob(_root, { id }, ctx) {
      const job = await jobFor(ctx, id, 'admin');
      await deleteJobWithResults(ctx.services.store, ctx.services.results, id);
      const uploadId = job.parameters.uploadId;
      if (typeof uploadId === 'string') await ctx.services.uploadsDeletedWithJobs?.deleteOwned(uploadId, job.ownerId);
      ctx.loaders.jobs.clear(id);
      return id;
    },
    async setJobAccess(_root, { id, accessControl }, ctx) {
      await jobFor(ctx, id, 'admin');
      return primeJob(ctx, await ctx.services.store.setJobAccess(id, accessInput(accessControl)));
    },
  },
  Job: {
    batch: (job, _args, ctx) => (job.batchId === null ? null : readableBatch(ctx, job.batchId)),
    logs: (job, { after, first }, ctx) => ctx.services.store.listLogs(job.id, after ?? null, first),
    parameters: (job) => job.parameters,
    retrying: (job) => isRetrying(job),
    nextAttemptAt: (job) => (isRetrying(job) ? job.runAt : null),
    durationMs: (job) => jobDurationMs(job),
  },
  JobConnection: connectionResolvers(),
};
