/**
 * What a change listener needs of the feed, declared up front so the store can skip the
 * rest before it turns rows into events. A worker needs pending jobs, cancel requests and
 * batches switched back on; a webhook dispatcher needs pending deliveries. Every other
 * change (another process's claims, progress and completions: almost all of a busy
 * feed) is nothing to them.
 *
 * An interest is a list of clauses; an event matches when it matches one of them. The
 * change hub applies it to every event it hands the listener (all engines), and the
 * SQLite engine also puts it into its poll of the `changes` table while every listener
 * of the process has one (a worker-only process), so the rows of other processes'
 * changes that nobody wants are never read into JavaScript.
 */
import type { ChangeEntity, ChangeEvent, ChangeOp } from './port.js';

export interface InterestClause {
  entity: ChangeEntity;
  /** Only these operations (default: any). */
  ops?: readonly ChangeOp[];
  /** Only these statuses (default: any). */
  statuses?: readonly string[];
  /** Only when the change's summary has this field set to `true` (e.g. `cancelRequested`). */
  flag?: string;
}

export type ChangeInterest = readonly InterestClause[];

const ENTITIES: readonly string[] = ['job', 'batch', 'delivery'];
const PLAIN = /^[A-Za-z_]+$/;

/**
 * Throws when a clause names an unknown entity or a name that is not plain (letters and
 * `_`): interests are declared in code, and engines may put their names into queries.
 * The hub checks every listener's interest when it is added, so a bad one fails there.
 */
export function checkInterest(interest: ChangeInterest): void {
  for (const clause of interest) {
    const names = [...(clause.ops ?? []), ...(clause.statuses ?? []), ...(clause.flag === undefined ? [] : [clause.flag])];
    if (!ENTITIES.includes(clause.entity)) throw new Error(`unknown entity in a change interest: ${JSON.stringify(clause.entity)}`);
    for (const name of names) if (!PLAIN.test(name)) throw new Error(`not a plain name in a change interest: ${JSON.stringify(name)}`);
  }
}

export function interested(interest: ChangeInterest, event: ChangeEvent): boolean {
  for (const clause of interest) {
    if (clause.entity !== event.entity) continue;
    if (clause.ops !== undefined && !clause.ops.includes(event.op)) continue;
    if (clause.statuses !== undefined && (event.status === null || !clause.statuses.includes(event.status))) continue;
    if (clause.flag !== undefined && event.data?.[clause.flag] !== true) continue;
    return true;
  }
  return false;
}

/**
 * Counts the interests of a hub's subscribers: `union` is every clause they want, or null
 * as soon as one subscriber wants every change (then nothing can be skipped).
 */
export class InterestCount {
  private uninterested = 0;
  private readonly counts = new Map<ChangeInterest, number>();
  private cached: ChangeInterest | null = null;

  add(interest: ChangeInterest | null): void {
    if (interest === null) this.uninterested++;
    else {
      this.counts.set(interest, (this.counts.get(interest) ?? 0) + 1);
      this.cached = null;
    }
  }

  remove(interest: ChangeInterest | null): void {
    if (interest === null) this.uninterested--;
    else {
      const n = (this.counts.get(interest) ?? 0) - 1;
      if (n > 0) this.counts.set(interest, n);
      else this.counts.delete(interest);
      this.cached = null;
    }
  }

  /** The clauses some subscriber wants (null: some subscriber wants everything, or none listens). */
  get union(): ChangeInterest | null {
    if (this.uninterested > 0 || this.counts.size === 0) return null;
    if (this.cached === null) this.cached = [...this.counts.keys()].flat();
    return this.cached;
  }
}
