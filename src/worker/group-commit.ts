/**
 * Group commit of a worker's writes: outcomes, progress and log lines that arrive in the
 * same event-loop turn go to the store together (`QueuePort.commitWrites`: one
 * transaction), with the claim of the jobs that take the freed slots. While a commit is
 * under way (MongoDB: a round trip or several), new writes wait and go together in the
 * next one as soon as it ends, so a slow store means larger groups, not a longer queue
 * of transactions. Each write is fenced on its own in the store; its promise settles with
 * its own result (a lost lease rejects only that write).
 */
import type { Job } from '../domain/types.js';
import { coerceError } from '../errors.js';
import type { ClaimRequest, QueuePort, QueueWrite } from '../store/port.js';

interface Pending {
  write: QueueWrite;
  resolve(job: Job): void;
  reject(error: Error): void;
}

/** What a group claims with its writes, and who takes the claimed jobs. */
export interface GroupClaims {
  /** The claim to make with these writes (their freed slots), or null; called when the group is sent. */
  request(writes: readonly QueueWrite[]): { request: ClaimRequest; limit: number } | null;
  /** The jobs claimed, before any write's promise settles; `requested` says whether a claim was made. */
  claimed(jobs: Job[], requested: boolean): void;
}

export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private committing = false;
  /** Groups sent so far (for tests and benchmarks). */
  groups = 0;

  constructor(
    private readonly store: Pick<QueuePort, 'commitWrites'>,
    private readonly claims: GroupClaims,
    /** Writes per transaction at most; more wait for the next one (default: no limit). */
    private readonly maxWrites = Number.POSITIVE_INFINITY,
  ) {}

  /** Queues a write for the next group; resolves with its job as written. */
  write(write: QueueWrite): Promise<Job> {
    return new Promise<Job>((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      this.schedule();
    });
  }

  /** Writes still waiting or under way. */
  get pending(): number {
    return this.queue.length + (this.committing ? 1 : 0);
  }

  private schedule(): void {
    if (this.scheduled || this.committing) return;
    this.scheduled = true;
    // After the current turn's microtasks: writes of handlers that finished together go together.
    setImmediate(() => {
      this.scheduled = false;
      void this.commit();
    });
  }

  private async commit(): Promise<void> {
    const group = this.queue.splice(0, this.maxWrites);
    if (group.length === 0) return;
    this.committing = true;
    this.groups++;
    const writes = group.map((p) => p.write);
    const claim = this.claims.request(writes);
    try {
      const { written, claimed } = await this.store.commitWrites(writes, claim);
      this.claims.claimed(claimed, claim !== null);
      group.forEach((pending, i) => {
        const result = written[i];
        if (result === undefined) pending.reject(new Error('internal: the store answered fewer writes than it was given'));
        else if (result instanceof Error) pending.reject(result);
        else pending.resolve(result);
      });
    } catch (error) {
      this.claims.claimed([], claim !== null);
      const failure = coerceError(error);
      for (const pending of group) pending.reject(failure);
    } finally {
      this.committing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }
}
