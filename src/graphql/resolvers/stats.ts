import { can } from '../../domain/access.js';
import { JOB_STATUSES, type JobStatus } from '../../domain/types.js';
import type { CountRow, Stats, StatsFilter } from '../../store/port.js';
import { statsJobFilter } from '../../store/query.js';

/** The store's figures plus what GraphQL counts itself. */
export type StatsModel = Stats & { cachedJobs: number };

import type { Resolvers } from '../generated/resolvers-types.js';
import { requireSignedIn } from './access.js';

type Group = { key: string; total: number } & Record<Lowercase<JobStatus>, number>;

/** Rows of (key, status, count) → one entry per key with a count per status. */
function grouped(rows: CountRow[]): Group[] {
  const byKey = new Map<string, Group>();
  for (const row of rows) {
    let group = byKey.get(row.key);
    if (group === undefined) {
      group = { key: row.key, total: 0, pending: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 };
      byKey.set(row.key, group);
    }
    group[row.status.toLowerCase() as Lowercase<JobStatus>] += row.count;
    group.total += row.count;
  }
  return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key));
}

export const statsResolvers: Resolvers = {
  Query: {
    // A cursor is a position in the feed of every change (with SQLite, the count of
    // changes so far): signed-in callers only, like everything the feed shows.
    // "" before the first change: `after: ""` replays from the first change, so a client
    // that read an empty store misses nothing either.
    changeCursor: async (_root, _args, ctx) => {
      requireSignedIn(ctx);
      return (await ctx.services.store.headCursor()) ?? '';
    },
    async stats(_root, { filter }, ctx) {
      const where: StatsFilter = { visibleTo: ctx.principal };
      if (filter?.batchId != null) where.batchId = filter.batchId;
      if (filter?.ownerId != null) where.ownerId = filter.ownerId;
      if (filter?.type != null) where.type = filter.type;
      const [stats, cachedJobs] = await Promise.all([
        ctx.services.store.stats(where),
        ctx.services.store.countJobs({ ...statsJobFilter(where), cached: true }),
      ]);
      const model: StatsModel = { ...stats, cachedJobs };
      return model;
    },
    jobTypes: (_root, _args, ctx) => ctx.services.registry.describe(),
    viewer: (_root, _args, ctx) => ctx.principal,
  },
  Stats: {
    byStatus: (stats) => {
      const counts = Object.fromEntries(JOB_STATUSES.map((status) => [status.toLowerCase(), stats.byStatus[status]]));
      return { ...counts, total: JOB_STATUSES.reduce((sum, status) => sum + stats.byStatus[status], 0) } as Group;
    },
    byType: (stats) => grouped(stats.byType),
    byTrack: (stats) => grouped(stats.byTrack),
    lastRetentionSweep: (_stats, _args, ctx) => ctx.services.retention?.last ?? null,
    async batches(_stats, _args, ctx) {
      const base = { visibleTo: ctx.principal, archived: false };
      const store = ctx.services.store;
      const [total, active, processing] = await Promise.all([
        store.countBatches(base),
        store.countBatches({ ...base, active: true, status: ['PENDING', 'PROCESSING'] }),
        store.countBatches({ ...base, status: ['PROCESSING'] }),
      ]);
      return { total, active, processing };
    },
    async ingest(_stats, _args, ctx) {
      const ingest = ctx.services.ingest;
      if (ingest === undefined || ingest.sources.size === 0) return [];
      const counts = await ingest.counts();
      const { principal } = ctx;
      return (
        [...ingest.sources.values()]
          // A source's counters are readable like the jobs it makes (anonymous callers: none).
          .filter((source) =>
            can(principal, 'read', {
              ownerId: source.owner.userId,
              teamIds: source.owner.teams,
              accessControl: { visibility: source.visibility, read: [], write: [], admin: [] },
            }),
          )
          .map((source) => ({
            source: source.name,
            kind: source.kind,
            ...(counts.get(source.name) ?? { received: 0, verified: 0, rejected: 0, accepted: 0, duplicate: 0, ignored: 0 }),
          }))
      );
    },
  },
  JobType: {
    name: (info) => info.type,
    defaults: (info) => info.defaults,
  },
  Viewer: {
    authenticated: (principal) => principal.userId !== null,
    authMode: (_principal, _args, ctx) => ctx.services.authenticator.mode,
  },
};
