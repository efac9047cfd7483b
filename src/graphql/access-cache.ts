/**
 * What subscription filters need to know about a job (owner, teams, ACL, type, inbound
 * source), cached per process and loaded in shared batches, so the events of one tick
 * cost one store read whatever the number of subscribers.
 *
 * The cache is kept right by the change feed itself: while any subscription is open the
 * cache follows the store's changes from a cursor read before anything was cached, and
 * an event flagged `access: true` (setJobAccess, made in this process or any other)
 * drops that job's entry. When the last subscription closes the cache stops following
 * and forgets everything, so an access change made while nobody listened can never be
 * judged by an older entry. Subscriptions also hand each event to `note()` before they
 * check it: within one fan-out a subscriber may be called before the cache's own
 * listener, and its check must already see the change.
 */
import DataLoader from 'dataloader';
import { LRUCache } from 'lru-cache';
import type { Owned } from '../domain/access.js';
import type { ChangeListener, Listening } from '../store/change-stream.js';
import type { ChangeEvent, JobStore } from '../store/port.js';

export type JobAccessInfo = Owned & { type: string | null; source: string | null };

export class JobAccessCache implements ChangeListener {
  private readonly entries: LRUCache<string, JobAccessInfo>;
  private readonly loader: DataLoader<string, JobAccessInfo | null>;
  /** Open subscriptions. */
  private users = 0;
  private listening: Listening | null = null;
  /** Following the feed, or about to (reading the head cursor). */
  private following = false;
  /** Moves whenever following stops, so a head read that arrives too late is dropped. */
  private generation = 0;
  /** Following the feed from a cursor read before any entry now cached was loaded. */
  private live = false;
  /** Moves on every invalidation: a load that saw it move while in flight is not kept. */
  private epoch = 0;
  /** The last access change noted: many subscribers hand over the same event. */
  private lastNoted: string | null = null;

  constructor(
    private readonly store: JobStore,
    maxEntries = 50_000,
  ) {
    this.entries = new LRUCache({ max: maxEntries });
    this.loader = new DataLoader<string, JobAccessInfo | null>(
      async (ids) =>
        (await store.getJobs(ids)).map((job) =>
          job === null
            ? null
            : {
                ownerId: job.ownerId,
                teamIds: job.teamIds,
                accessControl: job.accessControl,
                type: job.type,
                source: job.ingest?.source ?? null,
              },
        ),
      { cache: false, maxBatchSize: 500 },
    );
  }

  /** A subscription opened: follow the feed (again) if nobody did. */
  open(): void {
    this.users++;
    if (!this.following) this.follow();
  }

  /** A subscription closed: the last one stops following and empties the cache. */
  close(): void {
    this.users--;
    if (this.users > 0) return;
    this.listening?.stop();
    this.forget();
  }

  /** The job's access info, or null when it does not exist. */
  async get(id: string): Promise<JobAccessInfo | null> {
    const cached = this.entries.get(id);
    if (cached !== undefined) return cached;
    const epoch = this.epoch;
    const info = await this.loader.load(id);
    if (info !== null && this.live && epoch === this.epoch) {
      this.entries.set(id, info);
    }
    return info;
  }

  /** Drops what `event` makes stale. Cheap: call it for every event before checking access. */
  note(event: ChangeEvent): void {
    if (event.entity !== 'job') return;
    if (event.data?.access === true) {
      if (event.cursor === this.lastNoted) return;
      this.lastNoted = event.cursor;
      this.epoch++;
      this.entries.delete(event.id);
    } else if (event.op === 'deleted') {
      this.entries.delete(event.id);
    }
  }

  event(event: ChangeEvent): void {
    this.note(event);
  }

  /** The feed failed for the cache: nothing is cached until a subscription opens again. */
  error(): void {
    this.forget();
  }

  private follow(): void {
    this.following = true;
    const generation = this.generation;
    this.store.headCursor().then(
      (head) => {
        if (generation !== this.generation) return;
        this.listening = this.store.listen(head, this);
        // Loads that started before this point may predate a change the listener will not replay.
        this.live = true;
        this.epoch++;
      },
      () => {
        // Without a position to follow from, nothing is cached; the next subscription tries again.
        if (generation === this.generation) this.following = false;
      },
    );
  }

  private forget(): void {
    this.generation++;
    this.following = false;
    this.listening = null;
    this.live = false;
    this.epoch++;
    this.lastNoted = null;
    this.entries.clear();
  }
}
