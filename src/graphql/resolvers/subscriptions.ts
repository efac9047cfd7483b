import { can } from '../../domain/access.js';
import type { GraphQLContext } from '../context.js';
import { StreamError } from '../feed.js';
import type {
  Resolvers,
  SubscriptionBatchUpdatedArgs,
  SubscriptionDeliveryUpdatedArgs,
  SubscriptionJobEventsArgs,
  SubscriptionJobLogsArgs,
  SubscriptionJobUpdatedArgs,
  SubscriptionResolvers,
} from '../generated/resolvers-types.js';

/** A subscription value, or the error that ends the stream (see `StreamError`). */
function unwrap<T>(value: T | StreamError): T {
  if (value instanceof StreamError) throw value.error;
  return value;
}

// Each stream yields the field's value itself; `resolve` passes it on (or throws its error).
const Subscription: SubscriptionResolvers = {
  jobUpdated: {
    subscribe: (_root: unknown, { id, after }: SubscriptionJobUpdatedArgs, ctx: GraphQLContext) =>
      ctx.services.feed.jobUpdated(ctx.principal, id, after),
    resolve: unwrap,
  },
  batchUpdated: {
    subscribe: (_root: unknown, { id, after }: SubscriptionBatchUpdatedArgs, ctx: GraphQLContext) =>
      ctx.services.feed.batchUpdated(ctx.principal, id, after),
    resolve: unwrap,
  },
  jobEvents: {
    subscribe: (_root: unknown, { filter, after }: Partial<SubscriptionJobEventsArgs>, ctx: GraphQLContext) =>
      ctx.services.feed.jobEvents(ctx.principal, filter ?? {}, after),
    resolve: unwrap,
  },
  deliveryUpdated: {
    subscribe: (_root: unknown, { jobId, batchId, after }: Partial<SubscriptionDeliveryUpdatedArgs>, ctx: GraphQLContext) =>
      ctx.services.feed.deliveryUpdated(ctx.principal, { jobId: jobId ?? null, batchId: batchId ?? null }, after),
    resolve: unwrap,
  },
  jobLogs: {
    subscribe: (_root: unknown, { id, after }: SubscriptionJobLogsArgs, ctx: GraphQLContext) =>
      ctx.services.feed.jobLogs(ctx.principal, id, after),
    resolve: unwrap,
  },
};

export const subscriptionResolvers: Resolvers = {
  Subscription,
  JobChange: {
    async job(change, _args, ctx) {
      const job = change.snapshot ?? (change.op === 'DELETED' ? null : await ctx.loaders.jobs.load(change.jobId));
      return job !== null && can(ctx.principal, 'read', job) ? job : null;
    },
  },
  DeliveryChange: {
    async delivery(change, _args, ctx) {
      return change.snapshot ?? (change.op === 'DELETED' ? null : await ctx.services.store.getDelivery(change.deliveryId));
    },
  },
  BatchChange: {
    async batch(change, _args, ctx) {
      const batch = change.snapshot ?? (change.op === 'DELETED' ? null : await ctx.loaders.batches.load(change.batchId));
      return batch !== null && can(ctx.principal, 'read', batch) ? batch : null;
    },
  },
};
