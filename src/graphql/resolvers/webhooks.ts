import { ConflictError, ForbiddenError, NotFoundError } from '../../errors.js';
import { describeWebhook } from '../../webhooks/validate.js';
import type { Resolvers } from '../generated/resolvers-types.js';
import { batchFor, jobFor, requireSignedIn } from './access.js';

export const webhookResolvers: Resolvers = {
  Job: {
    webhook: (job) => describeWebhook(job.webhook),
    deliveries: (job, _args, ctx) => ctx.services.store.listDeliveries({ jobId: job.id }),
  },
  Batch: {
    webhook: (batch) => describeWebhook(batch.webhook),
    deliveries: (batch, _args, ctx) => ctx.services.store.listDeliveries({ batchId: batch.id }),
  },
  Delivery: {
    url: (delivery) => String(delivery.webhook.url ?? ''),
  },
  Mutation: {
    async redeliverWebhook(_root, { id }, ctx) {
      const delivery = await ctx.services.store.getDelivery(id);
      if (delivery === null) throw new NotFoundError('delivery', id);
      try {
        if (delivery.jobId !== null) await jobFor(ctx, delivery.jobId, 'write');
        else await batchFor(ctx, delivery.batchId as string, 'write');
      } catch (error) {
        // The delivery belongs to something the caller cannot see: it does not exist for them either.
        if (error instanceof NotFoundError) throw new NotFoundError('delivery', id);
        if (error instanceof ForbiddenError) throw new ForbiddenError(`write access to delivery ${id} is needed`, { id });
        throw error;
      }
      return ctx.services.store.redeliver(id);
    },
    async testWebhook(_root, { url, secret, token, headers }, ctx) {
      requireSignedIn(ctx);
      const tester = ctx.services.webhookTester;
      if (tester === undefined) throw new ConflictError('webhook tests are not available in this process');
      const result = await tester.test(ctx.principal.userId ?? 'admin', { url, secret, token, headers });
      return { ...result, ok: result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300 };
    },
  },
};
