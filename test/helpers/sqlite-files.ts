/**
 * SQLite stores on real files in temp folders, for tests that open stores themselves
 * (several stores on one file stand for several processes), and the change feed as the
 * table holds it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChangeEvent, JobStore } from '../../src/store/port.js';
import { createSqliteStore, type SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite/sqlite-store.js';

export interface SqliteFiles {
  /** A database path in a fresh temp folder. */
  path(): string;
  /** A store on `path` (default: a new one), polling changes every 10 ms unless told otherwise; closed by `cleanup`. */
  open(path?: string, options?: Omit<SqliteStoreOptions, 'path'>): SqliteStore;
  /** Closes the stores and removes the folders (call it in `afterEach`). */
  cleanup(): Promise<void>;
}

export function sqliteFiles(prefix = 'conveyor-test-'): SqliteFiles {
  const dirs: string[] = [];
  const stores: SqliteStore[] = [];
  const files: SqliteFiles = {
    path() {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return join(dir, 'conveyor.db');
    },
    open(path = files.path(), options = {}) {
      const store = createSqliteStore({ changePollMs: 10, ...options, path });
      stores.push(store);
      return store;
    },
    async cleanup() {
      for (const store of stores.splice(0)) await store.close();
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
  return files;
}

/** Every change the store holds, from the first, read by a replay (no live events involved). */
export async function storedChanges(store: JobStore): Promise<ChangeEvent[]> {
  const head = await store.headCursor();
  const events: ChangeEvent[] = [];
  if (head === null) return events;
  await new Promise<void>((resolve, reject) => {
    const listening = store.listen(null, {
      event(event) {
        events.push(event);
        if (event.cursor === head) {
          listening.stop();
          resolve();
        }
      },
      error: reject,
    });
  });
  return events;
}
