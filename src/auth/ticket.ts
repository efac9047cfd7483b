/**
 * Websocket tickets: a short-lived, signed statement "this principal", handed out over
 * HTTP (`POST /ws-ticket`, authenticated like any request) and presented once in a
 * websocket's `connectionParams`. Browsers cannot set headers on a websocket upgrade,
 * so in header mode this is how the dashboard carries the identity its HTTP requests
 * have into a websocket, without letting `connectionParams` name an identity itself.
 * A ticket never stands for more than the HTTP request that obtained it.
 *
 * Single use: a ticket carries a random id, and the issuer remembers the ids presented
 * until their tickets expire, so a ticket read from a log or a page's memory cannot
 * open a second websocket. The memory is per process (several API processes each take
 * a ticket once) and bounded (`maxUsed`): when it is full, tickets are refused until
 * older ones expire, never forgotten early.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../domain/types.js';
import { UnauthenticatedError } from '../errors.js';

const PREFIX = 'cwt1';

export interface TicketIssuer {
  issue(principal: Principal): { ticket: string; expiresAt: Date };
  /** The principal a ticket stands for, once; `UNAUTHENTICATED` when it is forged, expired or used before. */
  verify(ticket: string): Principal;
}

/** Ids of presented tickets this process remembers at most (with the default TTL, 100,000 websockets a minute). */
const MAX_USED = 100_000;

export function createTicketIssuer(options: { secret: string; ttlSec?: number; now?: () => number; maxUsed?: number }): TicketIssuer {
  // A key of its own, so a ticket signature can never pass as a file URL signature.
  const key = createHmac('sha256', options.secret).update('conveyor websocket ticket').digest();
  const ttl = (options.ttlSec ?? 60) * 1000;
  const now = options.now ?? Date.now;
  const sign = (payload: string) => createHmac('sha256', key).update(payload).digest();
  const maxUsed = options.maxUsed ?? MAX_USED;
  /** Presented ticket ids and their expiry, in the order presented. */
  const used = new Map<string, number>();
  /**
   * Forgets ids whose tickets have expired, from the oldest presented. One TTL for all
   * makes that nearly expiry order; an id behind a younger one waits one TTL at most.
   */
  const forgetExpired = (at: number) => {
    for (const [id, expires] of used) {
      if (expires >= at) break;
      used.delete(id);
    }
  };
  return {
    issue(principal) {
      const expiresAt = new Date(now() + ttl);
      const body = {
        u: principal.userId,
        t: principal.teams,
        a: principal.admin,
        e: expiresAt.getTime(),
        n: randomBytes(16).toString('base64url'),
      };
      const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
      return { ticket: `${PREFIX}.${payload}.${sign(payload).toString('base64url')}`, expiresAt };
    },
    verify(ticket) {
      const [prefix, payload, signature] = ticket.split('.');
      if (prefix !== PREFIX || payload === undefined || signature === undefined) throw new UnauthenticatedError('the ticket is not valid');
      const given = Buffer.from(signature, 'base64url');
      const expected = sign(payload);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new UnauthenticatedError('the ticket is not valid');
      const body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        u: string | null;
        t: string[];
        a: boolean;
        e: number;
        n?: string;
      };
      const at = now();
      if (body.e < at) throw new UnauthenticatedError('the ticket has expired: ask for a new one (POST /ws-ticket)');
      if (typeof body.n !== 'string') throw new UnauthenticatedError('the ticket is not valid');
      forgetExpired(at);
      if (used.has(body.n))
        throw new UnauthenticatedError('the ticket was used already: ask for a new one for every connection (POST /ws-ticket)');
      if (used.size >= maxUsed) throw new UnauthenticatedError('too many websocket tickets in use: try again in a minute');
      used.set(body.n, body.e);
      return { userId: body.u, teams: body.t, admin: body.a };
    },
  };
}
