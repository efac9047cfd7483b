/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signature is
 * `v1,<base64 HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>">` keyed with
 * the base64-decoded part of the `whsec_` secret.
 */
import { createHmac } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { secretKey } from './validate.js';

const keys = new LRUCache<string, Buffer>({ max: 1000 });

/** The decoded key of a secret; a batch's deliveries share one, so it is decoded once. */
function keyOf(secret: string): Buffer {
  let key = keys.get(secret);
  if (key === undefined) {
    key = secretKey(secret);
    keys.set(secret, key);
  }
  return key;
}

export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}
