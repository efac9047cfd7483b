/**
 * Where the browser tests find a browser: `CHROMIUM_PATH`, then the usual system
 * locations. Never a downloaded one. Without a browser the tests are skipped with one
 * line saying how to enable them, except under CI (`CI` set), where that is a failure.
 */
import { existsSync } from 'node:fs';

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
];

export interface FindBrowserOptions {
  /** Where to look after CHROMIUM_PATH (default: the usual system locations). */
  candidates?: readonly string[];
  /** Where the skip line goes (default: stdout). */
  print?: (line: string) => void;
}

/** The browser to launch, or null (after printing why the browser tests are skipped). */
export function findBrowser(env: NodeJS.ProcessEnv = process.env, options: FindBrowserOptions = {}): string | null {
  const candidates = options.candidates ?? CANDIDATES;
  const given = env.CHROMIUM_PATH;
  if (given !== undefined && given !== '') {
    if (!existsSync(given)) throw new Error(`CHROMIUM_PATH names no file: ${given}`);
    return given;
  }
  const found = candidates.find((path) => existsSync(path));
  if (found !== undefined) return found;
  const hint = `no Chromium found (looked at ${candidates.join(', ')}): install it (apt-get install chromium) or set CHROMIUM_PATH`;
  if (env.CI !== undefined && env.CI !== '' && env.CI !== 'false') throw new Error(`browser tests cannot run under CI: ${hint}`);
  (options.print ?? ((line) => process.stdout.write(`${line}\n`)))(`browser tests skipped: ${hint}`);
  return null;
}
