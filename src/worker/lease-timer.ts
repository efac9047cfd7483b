/**
 * One lease timer per worker (as BullMQ's lock manager): every `heartbeatMs` it renews the
 * leases of all the worker's running jobs in one store call (`QueuePort.renewLeases`: one
 * transaction, one statement for the renewal), instead of a timer and a transaction per
 * job. It runs only while jobs run, so an idle worker has no timer; a renewal still under
 * way when the next is due is not doubled.
 */
import { coerceError, LeaseLostError } from '../errors.js';
import type { ClaimToken, Lease, QueuePort } from '../store/port.js';

/** The running jobs the timer renews, and what it tells the worker. */
export interface LeaseHolder {
  /** Tokens of the jobs whose leases to renew now. */
  tokens(): ClaimToken[];
  /** A job's lease was renewed (its `cancelRequested` included). */
  renewed(token: ClaimToken, lease: Lease): void;
  /** A job's lease is no longer this worker's. */
  lost(token: ClaimToken): void;
  /** The renewal failed for another reason (the store is unreachable…); tried again at the next tick. */
  failed(error: Error): void;
}

export class LeaseTimer {
  private timer: NodeJS.Timeout | null = null;
  private renewing = false;
  /** Renewal calls made (for tests and benchmarks). */
  renewals = 0;

  constructor(
    private readonly store: Pick<QueuePort, 'renewLeases'>,
    private readonly holder: LeaseHolder,
    private readonly options: { heartbeatMs: number; leaseMs: number },
  ) {}

  /** Starts ticking (the first job started); a no-op when already running. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.renew(), this.options.heartbeatMs);
  }

  /** Stops ticking (no job runs any more). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  /** Renews every running job's lease now. */
  async renew(): Promise<void> {
    if (this.renewing) return;
    const tokens = this.holder.tokens();
    if (tokens.length === 0) return;
    this.renewing = true;
    this.renewals++;
    try {
      const leases = await this.store.renewLeases(tokens, this.options.leaseMs);
      tokens.forEach((token, i) => {
        const lease = leases[i];
        if (lease instanceof LeaseLostError) this.holder.lost(token);
        else if (lease !== undefined) this.holder.renewed(token, lease);
      });
    } catch (error) {
      this.holder.failed(coerceError(error));
    } finally {
      this.renewing = false;
    }
  }
}
