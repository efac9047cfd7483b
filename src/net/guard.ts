/**
 * The SSRF guard for every outbound request (PDF downloads, webhooks): targets that
 * resolve to loopback, private, link-local, shared, multicast or cloud-metadata
 * addresses are refused unless `net.allow` names the host, address or range. IPv4
 * inside IPv6 is judged as the IPv4 address (mapped, 6to4) or refused as a whole
 * range (IPv4-compatible, translated, NAT64, Teredo).
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
  // IPv4-compatible (deprecated, `::a.b.c.d`); holds `::` and `::1` too.
  ['::', 96],
  // IPv4-translated (`::ffff:0:a.b.c.d`). IPv4-mapped (`::ffff:a.b.c.d`) needs no entry:
  // BlockList checks it against the IPv4 ranges above (an entry here would match every IPv4 address).
  ['::ffff:0:0:0', 96],
  ['64:ff9b::', 96],
  ['100::', 64],
  // Teredo: tunnels to an IPv4 host through a relay; nothing this service should call.
  ['2001::', 32],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const;

export interface NetGuard {
  /**
   * Throws `TargetForbiddenError` when `address` (an IP) may not be reached for `host`.
   * `port` is known for IP-literal URLs; only then can an `address:port` entry match.
   */
  checkAddress(host: string, address: string, port?: number): void;
  /** Throws when a URL's host is an IP literal that may not be reached (names are checked at lookup). */
  checkUrl(url: URL): void;
  /** A `dns.lookup`-compatible function that refuses forbidden addresses. */
  lookup: typeof dnsLookup;
}

/** One `net.allow` entry, parsed. */
export type AllowEntry =
  | { kind: 'host'; host: string }
  | { kind: 'address'; address: string; family: 4 | 6; bits?: number }
  | { kind: 'endpoint'; address: string; family: 4 | 6; port: number };

/**
 * Parses a `net.allow` entry: a host name (`files.internal`), an address (`10.1.2.3`),
 * a CIDR range (`10.0.0.0/8`) or one address and port (`127.0.0.1:8080`,
 * `[::1]:8080`). Returns undefined when the entry is none of these.
 */
export function parseAllowEntry(entry: string): AllowEntry | undefined {
  const endpoint = /^(?:\[([0-9a-f:.]+)\]|(\d+\.\d+\.\d+\.\d+)):(\d{1,5})$/i.exec(entry);
  if (endpoint) {
    const address = (endpoint[1] ?? endpoint[2]) as string;
    const family = isIP(address);
    const port = Number(endpoint[3]);
    if ((family !== 4 && family !== 6) || port < 1 || port > 65535) return undefined;
    return { kind: 'endpoint', address: normalise(address), family, port };
  }
  const [address, bits, ...rest] = entry.split('/');
  if (rest.length > 0 || address === undefined || address === '') return undefined;
  const family = isIP(address);
  if (family !== 4 && family !== 6) {
    if (bits !== undefined || !/^[a-z0-9.-]+$/i.test(address)) return undefined;
    return { kind: 'host', host: address.toLowerCase() };
  }
  if (bits === undefined) return { kind: 'address', address, family };
  if (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return undefined;
  return { kind: 'address', address, family, bits: Number(bits) };
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.1`, or `::ffff:a00:1` as URLs write it) is the IPv4 address. */
function normalise(ip: string): string {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (dotted?.[1]) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (hex?.[1] && hex[2]) {
    const high = Number.parseInt(hex[1], 16);
    const low = Number.parseInt(hex[2], 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return ip.toLowerCase();
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a trailing dotted quad as two groups), or null. */
function ipv6Groups(ip: string): number[] | null {
  let text = ip.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const groups = halves.length === 2 ? [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

/** The IPv4 address a 6to4 address (`2002:AABB:CCDD::/48`) leads to, or null for other addresses. */
function sixToFourTarget(ip: string): string | null {
  const groups = ipv6Groups(ip);
  if (groups?.[0] !== 0x2002) return null;
  const high = groups[1] as number;
  const low = groups[2] as number;
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

export interface NetGuardOptions {
  /** Resolves names (default: `dns.lookup`); tests use it to make a name resolve to a chosen address. */
  resolve?: typeof dnsLookup;
}

/**
 * `allow`: host names, IP addresses, CIDR ranges and `address:port` endpoints that are
 * let through although private. An endpoint entry lets through that one port of an
 * address named literally in the URL (the demo allows only its own sample site).
 */
export function createNetGuard(allow: readonly string[], { resolve = dnsLookup }: NetGuardOptions = {}): NetGuard {
  const blocked = new BlockList();
  for (const [net, bits] of BLOCKED_V4) blocked.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of BLOCKED_V6) blocked.addSubnet(net, bits, 'ipv6');
  const allowed = new BlockList();
  const allowedHosts = new Set<string>();
  const allowedEndpoints = new Set<string>();
  for (const raw of allow) {
    const entry = parseAllowEntry(raw);
    if (entry === undefined) throw new TypeError(`net.allow: "${raw}" is not a host name, address, CIDR range or address:port`);
    if (entry.kind === 'host') allowedHosts.add(entry.host);
    else if (entry.kind === 'endpoint') allowedEndpoints.add(`${entry.address}|${entry.port}`);
    else if (entry.bits === undefined) allowed.addAddress(entry.address, entry.family === 4 ? 'ipv4' : 'ipv6');
    else allowed.addSubnet(entry.address, entry.bits, entry.family === 4 ? 'ipv4' : 'ipv6');
  }

  function checkAddress(host: string, address: string, port?: number): void {
    if (allowedHosts.has(host.toLowerCase())) return;
    const ip = normalise(address);
    if (port !== undefined && allowedEndpoints.has(`${ip}|${port}`)) return;
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (allowed.check(ip, family)) return;
    if (blocked.check(ip, family)) throw new TargetForbiddenError(host, ip);
    // 6to4 (2002::/16) carries the IPv4 address it leads to: the IPv4 rules and allow entries apply to that.
    const embedded = family === 'ipv6' ? sixToFourTarget(ip) : null;
    if (embedded !== null && !allowed.check(embedded, 'ipv4') && blocked.check(embedded, 'ipv4')) {
      throw new TargetForbiddenError(host, `${ip} (6to4 for ${embedded})`);
    }
  }

  function checkUrl(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    if (isIP(host) !== 0) checkAddress(host, host, port);
    else if (host === 'localhost' || host.endsWith('.localhost')) checkAddress(host, '127.0.0.1');
  }

  const lookup = ((hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void) => {
    resolve(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
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
