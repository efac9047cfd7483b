import type { JsonObject } from '../../domain/types.js';
import { deleteBatchWithResults } from '../../jobs/removal.js';
import type { BatchFilter } from '../../store/port.js';
import { batchSummaryView } from '../../store/prepare.js';
import { connectionResolvers } from '../connections.js';
import type { GraphQLContext } from '../context.js';
import type { BatchFilter as BatchFilterInput, Resolvers } from '../generated/resolvers-types.js';
import { batchFor, primeBatch, readableBatch, requireSignedIn } from './access.js';
import { accessInput, jobConnection, jobFilter } from './jobs.js';

function batchFilter(input: BatchFilterInput | null | undefined, ctx: GraphQLContext): BatchFilter {
  const filter: BatchFilter = { visibleTo: ctx.principal };
  // Archived batches stay hidden unless asked for; an explicit null lists both.
  if (input === null || input === undefined) filter.archived = false;
  else if (input.archived !== null && input.archived !== undefined) filter.archived = input.archived;
  if (input?.ownerId != null) filter.ownerId = input.ownerId;
  if (input?.status != null) filter.status = input.status;
  if (input?.active != null) filter.active = input.active;
  if (input?.createdAfter != null) filter.createdAfter = input.createdAfter;
  if (input?.createdBefore != null) filter.createdBefore = input.createdBefore;
  return filter;
}

export const batchResolvers: Resolvers = {
  Query: {
    batch: (_root, { id }, ctx) => readableBatch(ctx, id),
    async batches(_root, { filter, first, after }, ctx) {
      const where = batchFilter(filter, ctx);
      const page = await ctx.services.store.listBatches(where, { first, after: after ?? null });
      return {
        page,
        totalCount: () => ctx.services.store.countBatches(where),
      };
    },
  },
  Mutation: {
    async submitBatch(_root, { input }, ctx) {
      requireSignedIn(ctx);
      const { value, created } = await ctx.services.submitter.submitBatch(
        {
          name: input.name,
          jobs: input.jobs.map((job) => ({
            type: job.type,
            ...(job.parameters == null ? {} : { parameters: job.parameters as JsonObject }),
            ...(job.priority == null ? {} : { priority: job.priority }),
            ...(job.runAt == null ? {} : { runAt: job.runAt }),
            ...(job.maxAttempts == null ? {} : { maxAttempts: job.maxAttempts }),
            ...(job.correlationId == null ? {} : { correlationId: job.correlationId }),
          })),
          ...(input.parameters == null ? {} : { parameters: input.parameters as JsonObject }),
          ...(input.active == null ? {} : { active: input.active }),
          ...(input.metadata == null ? {} : { metadata: input.metadata as JsonObject }),
          ...(input.accessControl == null ? {} : { accessControl: accessInput(input.accessControl) }),
          ...(input.webhook == null ? {} : { webhook: input.webhook as unknown as JsonObject }),
          ...(input.idempotencyKey == null ? {} : { idempotencyKey: input.idempotencyKey }),
          ...(input.useCache == null ? {} : { useCache: input.useCache }),
          ...(input.forceRefresh == null ? {} : { forceRefresh: input.forceRefresh }),
        },
        ctx.principal,
      );
      return { batch: primeBatch(ctx, value.batch), created };
    },
    async cancelBatch(_root, { id }, ctx) {
      await batchFor(ctx, id, 'write');
      return primeBatch(ctx, await ctx.services.store.cancelBatch(id));
    },
    async restartBatch(_root, { id, onlyFailed }, ctx) {
      await batchFor(ctx, id, 'write');
      return primeBatch(ctx, await ctx.services.store.restartBatch(id, onlyFailed));
    },
    async deleteBatch(_root, { id }, ctx) {
      await batchFor(ctx, id, 'admin');
      await deleteBatchWithResults(ctx.services.store, ctx.services.results, id);
      ctx.loaders.batches.clear(id);
      return id;
    },
    async archiveBatch(_root, { id, archived }, ctx) {
      await batchFor(ctx, id, 'write');
      return primeBatch(ctx, await ctx.services.store.archiveBatch(id, archived));
    },
    async setBatchActive(_root, { id, active }, ctx) {
      await batchFor(ctx, id, 'write');
      return primeBatch(ctx, await ctx.services.store.setBatchActive(id, active));
    },
  },
  Batch: {
    summary: (batch) => ({ ...batchSummaryView(batch), ...batch.summary }),
    jobs: (batch, { filter, first, after }, ctx) => jobConnection(ctx, { ...jobFilter(filter, ctx), batchId: batch.id }, first, after),
  },
  BatchConnection: connectionResolvers(),
};
