/**
 * `POST /ws-ticket`: a websocket ticket (see `auth/ticket.ts`) for the caller of this
 * request, authenticated like any other (in header mode: its `X-User-ID` headers).
 * Answers `{ ticket, expiresAt }`; a browser sends it as `connectionParams.ticket`.
 * Anonymous callers get 401: an anonymous websocket needs no ticket. A foreign web
 * page can make the request but cannot read the answer (no CORS headers).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../auth/auth.js';
import type { TicketIssuer } from '../auth/ticket.js';
import { AppError, coerceError } from '../errors.js';
import { sendError, sendJson } from './respond.js';

export const WS_TICKET_PATH = '/ws-ticket';

export function createWsTicketRoute(options: { authenticator: Authenticator; tickets: TicketIssuer }) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    if ((req.url ?? '/').split('?')[0] !== WS_TICKET_PATH) return false;
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${WS_TICKET_PATH}`);
      return true;
    }
    let principal: Awaited<ReturnType<Authenticator['authenticate']>>;
    try {
      principal = await options.authenticator.authenticate(req.headers);
    } catch (error) {
      const app = coerceError(error);
      sendError(res, 401, app instanceof AppError ? app.code : 'UNAUTHENTICATED', app.message);
      return true;
    }
    if (principal.userId === null) {
      sendError(res, 401, 'UNAUTHENTICATED', 'a ticket stands for a signed-in caller: send credentials with this request');
      return true;
    }
    const { ticket, expiresAt } = options.tickets.issue(principal);
    sendJson(res, 200, { ticket, expiresAt: expiresAt.toISOString() });
    return true;
  };
}
