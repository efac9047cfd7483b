/**
 * The dashboard: static files from `dashboard/` at `/` and `/dashboard/*`, plus the
 * graphql-ws browser client from the installed package (no CDN, works offline).
 * Files are read once and kept in memory; they are small.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { packageRoot } from '../package-root.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

function graphqlWsBrowserClient(): string {
  // The package does not export its UMD build; it sits beside dist/.
  const entry = createRequire(import.meta.url).resolve('graphql-ws');
  return join(dirname(entry), '..', 'umd', 'graphql-ws.min.js');
}

export function createDashboardRoute() {
  const dir = join(packageRoot(), 'dashboard');
  const files = new Map<string, { type: string; body: Buffer }>();
  const load = (path: string, file: string) =>
    files.set(path, { type: TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', body: readFileSync(file) });
  load('/', join(dir, 'index.html'));
  load('/dashboard/app.js', join(dir, 'app.js'));
  load('/dashboard/style.css', join(dir, 'style.css'));
  load('/dashboard/vendor/graphql-ws.js', graphqlWsBrowserClient());

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0] as string;
    const file = files.get(path === '/index.html' ? '/' : path);
    if (file === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'content-security-policy':
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  };
}
