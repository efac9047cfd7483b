/**
 * Websocket tickets: a short-lived, signed statement "this principal", handed out over
 * HTTP (`POST /ws-ticket`, authenticated like any request) and presented once in a
 * websocket's `connectionParams`. Browsers cannot set headers on a websocket upgrade,
 * so in header mode this is how the dashboard carries the identity its HTTP requests
 * have into a websocket, without letting `connectionParams` name an identity itself.
 * A ticket never stands for more than the HTTP request that obtained it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../domain/types.js';
import { UnauthenticatedError } from '../errors.js';

const PREFIX = 'cwt1';

export interface TicketIssuer {
  issue(principal: Principal): { ticket: string; expiresAt: Date };
  /** The principal a ticket stands for; `UNAUTHENTICATED` when it is forged or expired. */
  verify(ticket: string): Principal;
}

export function createTicketIssuer(options: { secret: string; ttlSec?: number; now?: () => number }): TicketIssuer {
  // A key of its own, so a ticket signature can never pass as a file URL signature.
  const key = createHmac('sha256', options.secret).update('conveyor websocket ticket').digest();
  const ttl = (options.ttlSec ?? 60) * 1000;
  const now = options.now ?? Date.now;
  const sign = (payload: string) => createHmac('sha256', key).update(payload).digest();
  return {
    issue(principal) {
      const expiresAt = new Date(now() + ttl);
      const body = { u: principal.userId, t: principal.teams, a: principal.admin, e: expiresAt.getTime() };
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
      };
      if (body.e < now()) throw new UnauthenticatedError('the ticket has expired: ask for a new one (POST /ws-ticket)');
      return { userId: body.u, teams: body.t, admin: body.a };
    },
  };
}
