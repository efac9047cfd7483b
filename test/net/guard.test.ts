import type { lookup } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { download } from '../../src/net/download.js';
import { createNetGuard, parseAllowEntry, TargetForbiddenError } from '../../src/net/guard.js';
import { startApi, type TestApi } from '../helpers/api.js';

describe('net.allow entries', () => {
  it('parses host names, addresses, ranges and address:port endpoints', () => {
    expect(parseAllowEntry('Files.Internal')).toEqual({ kind: 'host', host: 'files.internal' });
    expect(parseAllowEntry('10.1.2.3')).toEqual({ kind: 'address', address: '10.1.2.3', family: 4 });
    expect(parseAllowEntry('10.0.0.0/8')).toEqual({ kind: 'address', address: '10.0.0.0', family: 4, bits: 8 });
    expect(parseAllowEntry('127.0.0.1:8080')).toEqual({ kind: 'endpoint', address: '127.0.0.1', family: 4, port: 8080 });
    expect(parseAllowEntry('[::1]:8080')).toEqual({ kind: 'endpoint', address: '::1', family: 6, port: 8080 });
    for (const bad of ['', '10.0.0.0/33', 'a.example:8080', '127.0.0.1:0', '127.0.0.1:70000', 'a/b/c', 'http://x/']) {
      expect(parseAllowEntry(bad), bad).toBeUndefined();
    }
  });

  it('refuses an invalid entry at start-up, naming the key', () => {
    expect(() => loadConfig({ env: {}, overrides: { 'net.allow': ['a.example:8080'] } })).toThrow(/net\.allow.*address and port/s);
  });
});

describe('the guard', () => {
  it('refuses private targets unless allowed', () => {
    const guard = createNetGuard([]);
    for (const url of [
      'http://10.0.0.1/',
      'http://169.254.169.254/',
      'http://[::ffff:127.0.0.1]/',
      'http://localhost:3000/',
      'http://[fe80::1]/',
    ]) {
      expect(() => guard.checkUrl(new URL(url)), url).toThrow(TargetForbiddenError);
    }
    expect(() => guard.checkUrl(new URL('http://93.184.216.34/'))).not.toThrow();
  });

  it('lets an address:port entry through for that port only', () => {
    const guard = createNetGuard(['127.0.0.1:4321']);
    expect(() => guard.checkUrl(new URL('http://127.0.0.1:4321/page.html'))).not.toThrow();
    expect(() => guard.checkUrl(new URL('http://[::ffff:127.0.0.1]:4321/'))).not.toThrow();
    expect(() => guard.checkUrl(new URL('http://127.0.0.1:4322/'))).toThrow(TargetForbiddenError);
    expect(() => guard.checkUrl(new URL('http://127.0.0.1/'))).toThrow(TargetForbiddenError);
    // A name that resolves to the address is checked without a port: still refused.
    expect(() => guard.checkAddress('localhost', '127.0.0.1')).toThrow(TargetForbiddenError);
  });

  it('lets whole addresses and ranges through on every port', () => {
    const guard = createNetGuard(['127.0.0.1', '10.0.0.0/8']);
    expect(() => guard.checkUrl(new URL('http://127.0.0.1:9/'))).not.toThrow();
    expect(() => guard.checkUrl(new URL('https://10.200.0.1/'))).not.toThrow();
    expect(() => guard.checkUrl(new URL('http://192.168.0.1/'))).toThrow(TargetForbiddenError);
  });
});

describe('reserved ranges', () => {
  it('refuses 172.16/12, 0/8, 198.18/15 and IPv4 inside IPv6 in every form', () => {
    const guard = createNetGuard([]);
    for (const address of [
      '172.16.0.1',
      '172.31.255.254',
      '0.1.2.3',
      '198.18.0.1',
      '198.19.255.254',
      '::ffff:10.0.0.1',
      '::ffff:a00:1',
      '0:0:0:0:0:ffff:7f00:1',
      // IPv4-compatible (`::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`) and the unspecified address
      '::127.0.0.1',
      '::7f00:1',
      '::a9fe:a9fe',
      '::ffff:0:7f00:1',
      '::ffff:0:a9fe:a9fe',
      '::',
      // 6to4 (`2002:AABB:CCDD::/48`) of a private or metadata address, and Teredo (`2001::/32`)
      '2002:7f00:1::',
      '2002:7f00:0001:0:0:0:0:1',
      '2002:a9fe:a9fe::1',
      '2002:c0a8:101:1::5',
      '2002:a00:1::10.0.0.1',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      '2001::1',
    ]) {
      expect(() => guard.checkAddress('target.test', address), address).toThrow(TargetForbiddenError);
    }
    // 6to4 of a public IPv4 address, and the addresses around Teredo's range, are not refused.
    for (const address of [
      '172.32.0.1',
      '172.15.255.254',
      '198.20.0.1',
      '1.0.0.1',
      '2606:4700:4700::1111',
      '2002:808:808::1',
      '2001:1::1',
      '2003::1',
    ]) {
      expect(() => guard.checkAddress('target.test', address), address).not.toThrow();
    }
    expect(() => guard.checkUrl(new URL('http://[::7f00:1]/'))).toThrow(TargetForbiddenError);
    expect(() => guard.checkUrl(new URL('http://[::ffff:0:a9fe:a9fe]/'))).toThrow(TargetForbiddenError);
    expect(() => guard.checkUrl(new URL('http://[2002:a9fe:a9fe::]/latest/meta-data/'))).toThrow(/6to4 for 169\.254\.169\.254/);
    expect(() => guard.checkUrl(new URL('http://[2001:0:4136:e378::1]/'))).toThrow(TargetForbiddenError);
    // An allowed IPv4 address is allowed through its 6to4 form too.
    expect(() => createNetGuard(['127.0.0.1']).checkAddress('target.test', '2002:7f00:1::')).not.toThrow();
  });
});

describe('the lookup path', () => {
  /** A resolver that answers from a table, as DNS under an attacker's control would. */
  const table = (names: Record<string, { address: string; family: 4 | 6 }[]>): typeof lookup =>
    ((hostname: string, _options: unknown, callback: (error: Error | null, addresses?: unknown) => void) => {
      const found = names[hostname];
      if (found === undefined) callback(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
      else callback(null, found);
    }) as unknown as typeof lookup;

  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it('refuses a name that resolves to a private address, before connecting, through download()', async () => {
    let requests = 0;
    server = createServer((_req, res) => {
      requests++;
      res.end('secret');
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const guard = createNetGuard([], {
      resolve: table({
        'rebind.test': [{ address: '127.0.0.1', family: 4 }],
        'mixed.test': [
          { address: '93.184.216.34', family: 4 },
          { address: '172.20.1.1', family: 4 },
        ],
        'compat.test': [{ address: '::7f00:1', family: 6 }],
        'translated.test': [{ address: '::ffff:0:7f00:1', family: 6 }],
        'benchmark.test': [{ address: '198.18.5.5', family: 4 }],
        'zero.test': [{ address: '0.0.0.0', family: 4 }],
        'six-to-four.test': [{ address: '2002:7f00:1::1', family: 6 }],
        'teredo.test': [{ address: '2001:0:4136:e378:8000:63bf:3fff:fdd2', family: 6 }],
      }),
    });
    for (const name of [
      'rebind.test',
      'mixed.test',
      'compat.test',
      'translated.test',
      'benchmark.test',
      'zero.test',
      'six-to-four.test',
      'teredo.test',
    ]) {
      const attempt = download(`http://${name}:${port}/`, { guard, maxBytes: 1000, timeoutMs: 5000 });
      await expect(attempt, name).rejects.toMatchObject({ code: 'TARGET_FORBIDDEN' });
    }
    expect(requests).toBe(0);
    // The same resolver with the address allowed reaches the server: the refusal above was the guard's.
    const allowing = createNetGuard(['127.0.0.1'], { resolve: table({ 'rebind.test': [{ address: '127.0.0.1', family: 4 }] }) });
    const fetched = await download(`http://rebind.test:${port}/`, { guard: allowing, maxBytes: 1000, timeoutMs: 5000 });
    expect(fetched.body.toString()).toBe('secret');
    expect(requests).toBe(1);
  });
});

describe('through the server', () => {
  let api: TestApi | null = null;
  afterEach(async () => {
    await api?.stop();
    api = null;
  });

  it('refuses webhooks and PDF downloads to 6to4 forms of private addresses and to Teredo addresses', async () => {
    api = await startApi();
    for (const url of [
      'https://[2002:a9fe:a9fe::]/latest/meta-data',
      'https://[2002:7f00:1::1]:4000/hook',
      'https://[2001:0:4136:e378::1]/',
    ]) {
      const { body } = await api.gql(
        'mutation ($url: String!) { submitJob(input: { type: "echo", webhook: { url: $url } }) { job { id } } }',
        { url },
      );
      expect(body.errors?.[0]?.extensions, url).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'TARGET_FORBIDDEN' });
    }
    const submitted = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "pdf", parameters: { url: "http://[2002:a9fe:a9fe::]/latest/meta-data.pdf" } }) { job { id } } }',
    );
    const id = submitted.body.data?.submitJob.job.id as string;
    const failed = async () =>
      (
        await api?.gql<{ job: { status: string; error: { code: string } | null } }>(
          'query ($id: ID!) { job(id: $id) { status error { code } } }',
          { id },
        )
      )?.body.data?.job;
    await expect.poll(failed).toMatchObject({ status: 'FAILED', error: { code: 'TARGET_FORBIDDEN' } });
  });
});
