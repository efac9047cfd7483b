/**
 * The SSRF guard for every outbound request (PDF downloads, webhooks): targets that
 * resolve to loopback, private, link-local, shared, multicast or cloud-metadata
 * addresses are refused unless `net.allow` names the host, address or range.
 * The check runs on the addresses the connection will actually use (a custom DNS
 * lookup), so a name that resolves to a private address after validation cannot slip
 * through (DNS rebinding).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { PermanentJobError } from '../errors.js';

/** A refused target: the job fails with this code (not retried). */
export class TargetForbiddenError extends PermanentJobError {
  constructor(target: string, address: string) {
    super(
      'TARGET_FORBIDDEN',
      `refusing to connect to ${target}: ${address} is a private, loopback, link-local or reserved address (allow it with net.allow)`,
    );
  }
}

const BLOCKED_V4 = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const;

const BLOCKED_V6 = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const;

export interface NetGuard {
  /** Throws `TargetForbiddenError` when `address` (an IP) may not be reached for `host`. */
  checkAddress(host: string, address: string): void;
  /** Throws when a URL's host is an IP literal that may not be reached (names are checked at lookup). */
  checkUrl(url: URL): void;
  /** A `dns.lookup`-compatible function that refuses forbidden addresses. */
  lookup: typeof dnsLookup;
}

/** `allow`: host names, IP addresses and CIDR ranges that are let through although private. */
export function createNetGuard(allow: readonly string[]): NetGuard {
  const blocked = new BlockList();
  for (const [net, bits] of BLOCKED_V4) blocked.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of BLOCKED_V6) blocked.addSubnet(net, bits, 'ipv6');
  const allowed = new BlockList();
  const allowedHosts = new Set<string>();
  for (const entry of allow) {
    const [address, bits] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0) allowedHosts.add(entry.toLowerCase());
    else if (bits === undefined) allowed.addAddress(address as string, family === 4 ? 'ipv4' : 'ipv6');
    else allowed.addSubnet(address as string, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
  }

  function checkAddress(host: string, address: string): void {
    if (allowedHosts.has(host.toLowerCase())) return;
    let ip = address;
    // IPv4-mapped IPv6 (::ffff:10.0.0.1) is the IPv4 address.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped?.[1]) ip = mapped[1];
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (allowed.check(ip, family)) return;
    if (blocked.check(ip, family)) throw new TargetForbiddenError(host, ip);
  }

  function checkUrl(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) checkAddress(host, host);
    else if (host === 'localhost' || host.endsWith('.localhost')) checkAddress(host, '127.0.0.1');
  }

  const lookup = ((hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error);
      try {
        for (const { address } of addresses) checkAddress(hostname, address);
      } catch (refused) {
        return callback(refused);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  }) as unknown as typeof dnsLookup;

  return { checkAddress, checkUrl, lookup };
}
