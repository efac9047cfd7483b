/** Loading a job or batch for an operation, with the access rule applied. */
import { type Action, can } from '../../domain/access.js';
import type { Batch, Job } from '../../domain/types.js';
import { ForbiddenError, NotFoundError, UnauthenticatedError } from '../../errors.js';
import type { GraphQLContext } from '../context.js';

/** The job if the caller may read it, else null (queries do not reveal what exists). */
export async function readableJob(ctx: GraphQLContext, id: string): Promise<Job | null> {
  const job = await ctx.loaders.jobs.load(id);
  return job !== null && can(ctx.principal, 'read', job) ? job : null;
}

export async function readableBatch(ctx: GraphQLContext, id: string): Promise<Batch | null> {
  const batch = await ctx.loaders.batches.load(id);
  return batch !== null && can(ctx.principal, 'read', batch) ? batch : null;
}

/** Mutations need a signed-in caller. */
export function requireSignedIn(ctx: GraphQLContext): void {
  if (ctx.principal.userId === null && !ctx.principal.admin) {
    throw new UnauthenticatedError('this operation needs credentials (see docs/API.md, Authentication)');
  }
}

function authorize<T extends Job | Batch>(ctx: GraphQLContext, entity: string, id: string, found: T | null, action: Action): T {
  // What the caller may not even read does not exist for them: NOT_FOUND, not FORBIDDEN.
  if (found === null || !can(ctx.principal, 'read', found)) throw new NotFoundError(entity, id);
  if (!can(ctx.principal, action, found)) throw new ForbiddenError(`${action} access to ${entity} ${id} is needed`, { id, action });
  return found;
}

/** The job, when the caller may do `action` to it; NOT_FOUND or FORBIDDEN otherwise. */
export async function jobFor(ctx: GraphQLContext, id: string, action: Action): Promise<Job> {
  requireSignedIn(ctx);
  return authorize(ctx, 'job', id, await ctx.loaders.jobs.load(id), action);
}

export async function batchFor(ctx: GraphQLContext, id: string, action: Action): Promise<Batch> {
  requireSignedIn(ctx);
  return authorize(ctx, 'batch', id, await ctx.loaders.batches.load(id), action);
}

/** After a write: later reads in the same request see the new state. */
export function primeJob(ctx: GraphQLContext, job: Job): Job {
  ctx.loaders.jobs.clear(job.id).prime(job.id, job);
  return job;
}

export function primeBatch(ctx: GraphQLContext, batch: Batch): Batch {
  ctx.loaders.batches.clear(batch.id).prime(batch.id, batch);
  return batch;
}
