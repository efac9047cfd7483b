/** Relay connections over the store's cursor pages. */
import type { Batch, Job } from '../domain/types.js';
import type { Page } from '../store/port.js';
import { encodePageCursor } from '../store/query.js';

/** A page plus a lazy total: `totalCount` costs a count query only when asked for. */
export interface ConnectionModel<T extends { id: string }> {
  page: Page<T>;
  totalCount: () => Promise<number>;
}

export type JobConnectionModel = ConnectionModel<Job>;
export type BatchConnectionModel = ConnectionModel<Batch>;

/** The field resolvers every connection type shares. */
export function connectionResolvers<T extends { id: string }>() {
  return {
    edges: (connection: ConnectionModel<T>) => connection.page.items.map((node) => ({ cursor: encodePageCursor(node.id), node })),
    pageInfo: (connection: ConnectionModel<T>) => ({
      hasNextPage: connection.page.hasNextPage,
      endCursor: connection.page.endCursor,
    }),
    totalCount: (connection: ConnectionModel<T>) => connection.totalCount(),
  };
}
