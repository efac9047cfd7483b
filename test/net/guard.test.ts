import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createNetGuard, parseAllowEntry, TargetForbiddenError } from '../../src/net/guard.js';

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
