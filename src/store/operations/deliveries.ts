/**
 * The webhook outbox: claims of due deliveries with a lease, attempts recorded by the
 * dispatcher that holds the lease, releases, and replays of dead letters. Records are
 * written in place by the lease holder only (`Tx.saveDelivery` with an owner).
 */
import type { Delivery } from '../../domain/types.js';
import { ConflictError, LeaseLostError, NotFoundError } from '../../errors.js';
import type { Op, Tx } from '../engine.js';
import type { DeliveryOutcome, DeliveryRecord } from '../port.js';
import { afterAttempt, disabledAttempt } from '../prepare.js';
import { deliveryChange } from './commit.js';

function* loadDelivery(tx: Tx, id: string): Op<Delivery> {
  const delivery = yield* tx.getDelivery(id);
  if (delivery === null) throw new NotFoundError('delivery', id);
  return delivery;
}

/**
 * Records an attempt on the record the dispatcher claimed, without reading it again:
 * while the lease holds nobody else changes it, and the fenced write refuses the record
 * when the lease was lost.
 */
export function* recordClaimed(tx: Tx, claimed: Delivery, workerId: string, outcome: DeliveryOutcome): Op<Delivery> {
  const after = afterAttempt(claimed, outcome, tx.now);
  if (!(yield* tx.saveDelivery(after, workerId))) throw new LeaseLostError(after.id, claimed.attempts.length);
  yield* tx.insertChanges([deliveryChange(after, 'updated', tx.now)]);
  return after;
}

export function* recordAttempt(tx: Tx, id: string, workerId: string, outcome: DeliveryOutcome): Op<Delivery> {
  const before = yield* loadDelivery(tx, id);
  if (before.status !== 'SENDING' || before.leaseOwner !== workerId) throw new LeaseLostError(id, before.attempts.length);
  return yield* recordClaimed(tx, before, workerId, outcome);
}

/**
 * Leases up to `limit` due deliveries. A delivery whose URL answered 410 for the same
 * job (or batch) is recorded DISABLED instead, and another is looked for in its place.
 * `resetExpired`: first hand deliveries whose lease ended back to the queue.
 */
export function* claimDeliveries(
  tx: Tx,
  workerId: string,
  limit: number,
  leaseMs: number,
  resetExpired: boolean,
  now: Date = tx.now,
): Op<Delivery[]> {
  if (resetExpired) yield* tx.resetExpiredDeliveries(now);
  const claimed: Delivery[] = [];
  while (claimed.length < limit) {
    const want = limit - claimed.length;
    const page = yield* tx.claimDeliveries(workerId, want, now, new Date(now.getTime() + leaseMs));
    let skipped = 0;
    for (const delivery of page) {
      if (yield* tx.disabledTarget(delivery)) {
        yield* recordClaimed(tx, delivery, workerId, { attempt: disabledAttempt(now), status: 'DISABLED' });
        skipped++;
      } else {
        claimed.push(delivery);
      }
    }
    if (skipped === 0 || page.length < want) break;
  }
  return claimed;
}

/**
 * Records several attempts, then claims up to `claim.limit` more, in one unit of work.
 * A record refused for a lost lease comes back as its `LeaseLostError`; the others count.
 */
export function* recordAttempts(
  tx: Tx,
  workerId: string,
  outcomes: readonly DeliveryRecord[],
  claim: { limit: number; leaseMs: number } | null,
  resetExpired: boolean,
): Op<{ recorded: (Delivery | LeaseLostError)[]; claimed: Delivery[] }> {
  const recorded: (Delivery | LeaseLostError)[] = [];
  for (const { id, outcome, claimed } of outcomes) {
    try {
      recorded.push(
        claimed === undefined ? yield* recordAttempt(tx, id, workerId, outcome) : yield* recordClaimed(tx, claimed, workerId, outcome),
      );
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      recorded.push(error);
    }
  }
  const claimed = claim === null || claim.limit <= 0 ? [] : yield* claimDeliveries(tx, workerId, claim.limit, claim.leaseMs, resetExpired);
  return { recorded, claimed };
}

/** Puts a delivery that is not queued back in the queue, due now. */
export function* redeliver(tx: Tx, id: string): Op<Delivery> {
  const before = yield* loadDelivery(tx, id);
  if (before.status === 'SENDING' || before.status === 'PENDING') {
    throw new ConflictError(`delivery ${id} is already queued`, { deliveryId: id, status: before.status });
  }
  const after: Delivery = { ...before, status: 'PENDING', nextAttemptAt: tx.now, updatedAt: tx.now };
  yield* tx.saveDelivery(after, null);
  yield* tx.insertChanges([deliveryChange(after, 'updated', tx.now)]);
  return after;
}
