/**
 * Which `Host` names the server answers to and which browser origins may open a
 * websocket. Both defend browsers' users rather than the server:
 *
 * - DNS rebinding: a page on `evil.example` whose name is re-pointed at 127.0.0.1 is,
 *   for the browser, same-origin with this server, and may then read its answers. Its
 *   requests still name `evil.example` in `Host`, so only names this server knows are
 *   answered. IP addresses are always accepted: a page can only be same-origin with
 *   an address by being served from it.
 * - Cross-site websocket hijacking: browsers let any page open a websocket to any
 *   server, and say who asked in `Origin`. Only the server's own origins are accepted;
 *   clients that send no `Origin` (CLI, SDKs, curl) are not browsers and pass.
 */
import { isIP } from 'node:net';

export interface HostCheckOptions {
  /** `server.publicUrl` ('' when unset). */
  publicUrl: string;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}

export interface HostCheck {
  /** Tells the check the address and port the server listens on (the port is known only after listen, with port 0). */
  listening(host: string, port: number): void;
  hostAllowed(host: string | undefined): boolean;
  /** `origin` may open a websocket on a request that named `host`. */
  originAllowed(origin: string | undefined, host: string | undefined): boolean;
}

/** `Host: Example.com.:4000` → `example.com`; `[::1]:4000` → `::1`; null when it does not parse. */
export function hostName(host: string): string | null {
  try {
    const name = new URL(`http://${host}`).hostname.toLowerCase().replace(/\.$/, '');
    return name.startsWith('[') ? name.slice(1, -1) : name;
  } catch {
    return null;
  }
}

const isLoopbackName = (name: string) =>
  name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);

function matches(pattern: string, name: string): boolean {
  const wanted = pattern.toLowerCase();
  return wanted.startsWith('*.') ? name.endsWith(wanted.slice(1)) : name === wanted;
}

export function createHostCheck(options: HostCheckOptions): HostCheck {
  let port = 0;
  const anyHost = options.allowedHosts.includes('*');
  const anyOrigin = options.allowedOrigins.includes('*');
  const names = [...options.allowedHosts];
  const publicOrigin = options.publicUrl === '' ? null : new URL(options.publicUrl);
  if (publicOrigin !== null) names.push(publicOrigin.hostname.replace(/^\[|\]$/g, ''));
  const origins = new Set<string>();
  for (const entry of options.allowedOrigins) {
    try {
      origins.add(new URL(entry).origin);
    } catch {
      // Not a URL: matches nothing (config validation names such entries).
    }
  }
  if (publicOrigin !== null) origins.add(publicOrigin.origin);

  const hostAllowed = (host: string | undefined): boolean => {
    // Browsers always send Host; a request without one (HTTP/1.0) is not a rebinding.
    if (anyHost || host === undefined) return true;
    const name = hostName(host);
    if (name === null) return false;
    return isIP(name) !== 0 || isLoopbackName(name) || names.some((pattern) => matches(pattern, name));
  };

  return {
    listening(host, listeningPort) {
      // A host name to listen on (`myhost`) is a name the server answers to.
      names.push(host.replace(/^\[|\]$/g, ''));
      port = listeningPort;
    },
    hostAllowed,
    originAllowed(origin, host) {
      if (origin === undefined || anyOrigin) return true;
      let url: URL;
      try {
        url = new URL(origin);
      } catch {
        return false; // `null` (sandboxed frames, file://) and garbage
      }
      if (origins.has(url.origin)) return true;
      const name = url.hostname.replace(/^\[|\]$/g, '');
      const urlPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
      if (isLoopbackName(name) && urlPort === port) return true;
      // The page comes from the very host the request names (a host already checked).
      return host !== undefined && url.host === host.toLowerCase() && hostAllowed(host);
    },
  };
}
