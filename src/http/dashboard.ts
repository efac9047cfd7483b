/**
 * The dashboard: static files from `dashboard/` at `/` and `/dashboard/*`, plus the
 * graphql-ws and graphql-sse browser clients from the installed packages (no CDN,
 * works offline).
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

/** A package's browser build (UMD): the packages do not export it; it sits beside their entry's folder. */
function browserClient(name: 'graphql-ws' | 'graphql-sse'): string {
  const entry = createRequire(import.meta.url).resolve(name);
  return join(dirname(entry), '..', 'umd', `${name}.min.js`);
}

export function createDashboardRoute() {
  const dir = join(packageRoot(), 'dashboard');
  const files = new Map<string, { type: string; body: Buffer }>();
  const load = (path: string, file: string) =>
    files.set(path, { type: TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', body: readFileSync(file) });
  load('/', join(dir, 'index.html'));
  load('/dashboard/app.js', join(dir, 'app.js'));
  load('/dashboard/style.css', join(dir, 'style.css'));
  load('/dashboard/vendor/graphql-ws.js', browserClient('graphql-ws'));
  load('/dashboard/vendor/graphql-sse.js', browserClient('graphql-sse'));

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
