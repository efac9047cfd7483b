/**
 * Verifying inbound webhooks, one way per sender kind, on the raw body before it is
 * parsed. Every comparison of a secret-derived value is constant-time. A verified
 * request yields the sender's event type and delivery id (the same across its retries).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { secretKey } from '../webhooks/validate.js';

export type SourceKind = 'github' | 'gitlab' | 'standard' | 'token';

export interface VerifyOptions {
  kind: SourceKind;
  secret: string;
  /** Standard Webhooks: allowed distance of `webhook-timestamp` from now, in seconds. */
  toleranceSec: number;
  now?: Date;
}

export type Verified = { ok: true; deliveryId: string; event: string | null };
export type Refused = { ok: false; code: 'UNAUTHENTICATED' | 'SIGNATURE_INVALID'; message: string };

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

function same(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const bodyHash = (body: Buffer) => `sha256:${createHash('sha256').update(body).digest('hex')}`;
const missing = (what: string): Refused => ({ ok: false, code: 'UNAUTHENTICATED', message: `missing ${what}` });
const wrong = (message: string): Refused => ({ ok: false, code: 'SIGNATURE_INVALID', message });

/** Checks a source's secret at start-up; returns what is wrong with it, or null. */
export function secretProblem(kind: SourceKind, secret: string): string | null {
  if (kind !== 'standard') return null;
  const key = secret.startsWith('whsec_') ? secret : `whsec_${secret}`;
  return /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(key) && secretKey(key).length >= 16
    ? null
    : 'a Standard Webhooks secret is whsec_ followed by base64 of at least 16 bytes';
}

export function verify(options: VerifyOptions, headers: IncomingHttpHeaders, body: Buffer): Verified | Refused {
  switch (options.kind) {
    case 'github': {
      const signature = header(headers, 'x-hub-signature-256');
      if (signature === undefined) return missing('X-Hub-Signature-256 (set a secret on the GitHub webhook)');
      const expected = `sha256=${createHmac('sha256', options.secret).update(body).digest('hex')}`;
      if (!same(signature, expected)) return wrong('X-Hub-Signature-256 does not match the body and the source secret');
      return {
        ok: true,
        deliveryId: header(headers, 'x-github-delivery') ?? bodyHash(body),
        event: header(headers, 'x-github-event') ?? null,
      };
    }
    case 'gitlab': {
      const token = header(headers, 'x-gitlab-token');
      if (token === undefined) return missing('X-Gitlab-Token (set a secret token on the GitLab webhook)');
      if (!same(token, options.secret)) return wrong('X-Gitlab-Token does not match the source secret');
      return {
        ok: true,
        // Idempotency-Key stays the same across GitLab's retries; the event UUID is per event.
        deliveryId: header(headers, 'idempotency-key') ?? header(headers, 'x-gitlab-event-uuid') ?? bodyHash(body),
        event: header(headers, 'x-gitlab-event') ?? null,
      };
    }
    case 'standard': {
      const id = header(headers, 'webhook-id');
      const timestamp = header(headers, 'webhook-timestamp');
      const signatures = header(headers, 'webhook-signature');
      if (id === undefined || timestamp === undefined || signatures === undefined) {
        return missing('webhook-id, webhook-timestamp or webhook-signature (Standard Webhooks)');
      }
      const seconds = Number(timestamp);
      const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
      if (!/^\d{1,12}$/.test(timestamp) || Math.abs(now - seconds) > options.toleranceSec) {
        return wrong(`webhook-timestamp ${timestamp} is more than ${options.toleranceSec} s from now (a replay, or a clock off)`);
      }
      const key = secretKey(options.secret.startsWith('whsec_') ? options.secret : `whsec_${options.secret}`);
      const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
      // Several space-separated signatures may be sent during a key rotation.
      const matches = signatures.split(' ').some((entry) => {
        const [version, value] = entry.split(',', 2);
        return version === 'v1' && value !== undefined && same(value, expected);
      });
      if (!matches) return wrong('webhook-signature does not match the body and the source secret');
      return { ok: true, deliveryId: id, event: null };
    }
    case 'token': {
      const authorization = header(headers, 'authorization');
      if (authorization === undefined) return missing('Authorization: Bearer <token>');
      if (!same(authorization, `Bearer ${options.secret}`)) return wrong('the bearer token does not match the source secret');
      return {
        ok: true,
        deliveryId:
          header(headers, 'idempotency-key') ?? header(headers, 'x-delivery-id') ?? header(headers, 'webhook-id') ?? bodyHash(body),
        event: header(headers, 'x-event-type') ?? null,
      };
    }
  }
}
