/** The job store on SQLite: the operations of `store.ts` over the SQLite engine. */
import type Database from 'better-sqlite3';
import type { ClaimRequest } from '../port.js';
import { Store, type StoreOptions } from '../store.js';
import { SqliteEngine, type SqliteEngineOptions } from './sqlite-engine.js';

export interface SqliteStoreOptions extends SqliteEngineOptions, StoreOptions {}

export class SqliteStore extends Store {
  declare readonly engine: SqliteEngine;

  /** The query plan of a statement (used by benchmarks to show index use). */
  explain(sql: string, ...params: unknown[]): string[] {
    return (this.engine.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
  }

  /** The query plan of the claim for a request's shape. */
  explainClaim(request: Pick<ClaimRequest, 'types' | 'excludeTypes'> = {}): string[] {
    const statement = this.engine.claimStatement(request);
    const params: Record<string, unknown> = { worker: '', until: 0, now: Date.now(), limit: 1 };
    if (request.types !== undefined) params.types = JSON.stringify(request.types);
    if (request.excludeTypes !== undefined && request.excludeTypes.length > 0) params.exclude = JSON.stringify(request.excludeTypes);
    return (this.engine.db.prepare(`EXPLAIN QUERY PLAN ${statement.source}`).all(params) as { detail: string }[]).map((r) => r.detail);
  }

  /** The raw connection, for benchmarks' baselines and integrity checks only. */
  get connection(): Database.Database {
    return this.engine.db;
  }
}

/** Opens (and migrates) a SQLite store. */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(new SqliteEngine(options), options);
}
