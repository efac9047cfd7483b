import type { Resolvers } from '../generated/resolvers-types.js';
import { DateTime, JSONScalar } from '../scalars.js';
import { batchResolvers } from './batches.js';
import { jobResolvers } from './jobs.js';
import { resultResolvers } from './results.js';
import { statsResolvers } from './stats.js';
import { subscriptionResolvers } from './subscriptions.js';
import { webhookResolvers } from './webhooks.js';

/** Every resolver, merged by type. */
export function createResolvers(): Resolvers {
  const parts: Resolvers[] = [jobResolvers, batchResolvers, statsResolvers, subscriptionResolvers, webhookResolvers, resultResolvers];
  const merged: Record<string, Record<string, unknown>> = {};
  for (const part of parts) {
    for (const [type, fields] of Object.entries(part)) merged[type] = { ...merged[type], ...(fields as Record<string, unknown>) };
  }
  return { ...(merged as Resolvers), DateTime, JSON: JSONScalar };
}
