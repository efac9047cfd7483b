/** The retention sweep: deletes what `retention.*` says is too old. */
import type { ResolvedConfig } from '../config.js';
import type { JobStore, PurgeResult } from './port.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export function sweepRetention(store: JobStore, config: Pick<ResolvedConfig, 'retention'>, now: Date = new Date()): Promise<PurgeResult> {
  const { completedDays, failedDays, changesHours } = config.retention;
  return store.purge({
    ...(completedDays > 0 ? { completedBefore: new Date(now.getTime() - completedDays * DAY) } : {}),
    ...(failedDays > 0 ? { failedBefore: new Date(now.getTime() - failedDays * DAY) } : {}),
    ...(changesHours > 0 ? { changesBefore: new Date(now.getTime() - changesHours * HOUR) } : {}),
  });
}
