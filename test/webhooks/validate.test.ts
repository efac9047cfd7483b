/** Webhook settings validation, the retry schedule and signing, as pure functions. */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { createNetGuard } from '../../src/net/guard.js';
import { nextDelay, retryAfterMs } from '../../src/webhooks/schedule.js';
import { sign } from '../../src/webhooks/signing.js';
import { describeWebhook, validateWebhook } from '../../src/webhooks/validate.js';

const guard = createNetGuard([]);
const check = (input: unknown, allowHttp = false) => validateWebhook(input, { allowHttp, guard });
const refusal = (input: unknown, allowHttp = false): string => {
  try {
    check(input, allowHttp);
  } catch (error) {
    if (error instanceof AppError) return `${error.code} ${String(error.details?.field)}: ${error.message}`;
    throw error;
  }
  return 'accepted';
};

describe('webhook settings', () => {
  it('normalises valid settings', () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    expect(
      check({
        url: 'https://hooks.example.com/x?y=1',
        secret,
        token: 't',
        headers: { 'X-Tenant': 'a' },
        events: ['job.failed', 'job.failed'],
      }),
    ).toEqual({
      url: 'https://hooks.example.com/x?y=1',
      secret,
      token: 't',
      headers: { 'x-tenant': 'a' },
      events: ['job.failed'],
      includeMarkdown: false,
      includeMetadata: false,
    });
  });

  it('refuses what it cannot send safely, naming the field', () => {
    expect(refusal({ url: 'http://hooks.example.com/' })).toMatch(/^BAD_USER_INPUT webhook.url: .*https/);
    expect(refusal({ url: 'http://hooks.example.com/' }, true)).toBe('accepted');
    expect(refusal({ url: 'https://user:pw@hooks.example.com/' })).toMatch(/webhook.url: .*credentials/);
    expect(refusal({ url: '/relative' })).toMatch(/webhook.url: .*absolute/);
    expect(refusal({ url: 'https://192.168.1.10/' })).toMatch(/webhook.url: .*private/);
    expect(refusal({ url: 'https://[fd00:ec2::254]/' })).toMatch(/webhook.url: .*private/);
    expect(refusal({ url: 'https://100.64.0.1/' })).toMatch(/webhook.url/);
    expect(refusal({ url: 'https://a.example/', secret: 'not-whsec' })).toMatch(/webhook.secret/);
    expect(refusal({ url: 'https://a.example/', secret: `whsec_${randomBytes(8).toString('base64')}` })).toMatch(/webhook.secret/);
    expect(refusal({ url: 'https://a.example/', headers: { Host: 'x' } })).toMatch(/webhook.headers: "Host" is set by Conveyor/);
    expect(refusal({ url: 'https://a.example/', headers: { 'webhook-id': 'x' } })).toMatch(/webhook.headers/);
    expect(refusal({ url: 'https://a.example/', headers: { 'bad name': 'x' } })).toMatch(/webhook.headers/);
    expect(refusal({ url: 'https://a.example/', headers: { x: 'line\nbreak' } })).toMatch(/webhook.headers/);
    expect(refusal({ url: 'https://a.example/', events: ['job.done'] })).toMatch(/webhook.events/);
    expect(refusal({ url: 'https://a.example/', retries: 3 })).toMatch(/webhook.retries: unknown setting/);
    expect(refusal('https://a.example/')).toMatch(/webhook: must be an object/);
  });

  it('never repeats a secret or token in an error or a description', () => {
    const token = 'tok\u0001secret';
    expect(refusal({ url: 'https://a.example/', token })).not.toContain('secret');
    const secret = 'whsec_!!notbase64!!';
    expect(refusal({ url: 'https://a.example/', secret })).not.toContain('notbase64');
    const described = describeWebhook(check({ url: 'https://a.example/', token: 'abc', headers: { 'x-k': 'v' } }));
    expect(described).toEqual({
      url: 'https://a.example/',
      events: null,
      includeMarkdown: false,
      includeMetadata: false,
      hasSecret: false,
      hasToken: true,
      headerNames: ['x-k'],
    });
  });
});

describe('retry schedule', () => {
  it('follows the schedule within the jitter, then stops', () => {
    const schedule = [5000, 30_000, 120_000];
    expect(nextDelay(schedule, 1, 0.2, () => 0)).toBe(4000);
    expect(nextDelay(schedule, 1, 0.2, () => 1)).toBe(6000);
    expect(nextDelay(schedule, 2, 0.2, () => 0.5)).toBe(30_000);
    expect(nextDelay(schedule, 3, 0, () => 0.9)).toBe(120_000);
    expect(nextDelay(schedule, 4, 0.2)).toBeNull();
    for (let i = 0; i < 100; i++) {
      const delay = nextDelay(schedule, 2, 0.2) as number;
      expect(delay).toBeGreaterThanOrEqual(24_000);
      expect(delay).toBeLessThanOrEqual(36_000);
    }
  });

  it('reads Retry-After as seconds or a date, capped', () => {
    const now = Date.parse('2026-11-22T12:00:00Z');
    expect(retryAfterMs('2', 60_000, now)).toBe(2000);
    expect(retryAfterMs('7200', 60_000, now)).toBe(60_000);
    expect(retryAfterMs('Sun, 22 Nov 2026 12:00:30 GMT', 60_000, now)).toBe(30_000);
    expect(retryAfterMs('Sun, 22 Nov 2026 11:00:00 GMT', 60_000, now)).toBe(0);
    expect(retryAfterMs('soon', 60_000, now)).toBeNull();
    expect(retryAfterMs(undefined, 60_000, now)).toBeNull();
  });
});

describe('signing', () => {
  it('produces Standard Webhooks signatures that the reference library accepts', () => {
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const body = JSON.stringify({ type: 'job.completed', n: 1 });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'dlv_1',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': sign(secret, 'dlv_1', timestamp, body),
    };
    expect(new Webhook(secret).verify(body, headers)).toEqual({ type: 'job.completed', n: 1 });
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'dlv_2' })).toThrow();
  });
});
