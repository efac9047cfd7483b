/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signature is
 * `v1,<base64 HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>">` keyed with
 * the base64-decoded part of the `whsec_` secret.
 */
import { createHmac } from 'node:crypto';
import { secretKey } from './validate.js';

const keys = new Map<string, Buffer>();

/** The decoded key of a secret; a batch's deliveries share one, so it is decoded once. */
function keyOf(secret: string): Buffer {
  let key = keys.get(secret);
  if (key === undefined) {
    if (keys.size >= 1000) keys.delete(keys.keys().next().value as string);
    key = secretKey(secret);
    keys.set(secret, key);
  }
  return key;
}

export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}
