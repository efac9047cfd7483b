/** Files that ship beside the code (schema/, package.json), found from src/ or dist/src/. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The package's root folder: one level up from src/, two from dist/src/. */
export function packageRoot(): string {
  if (root !== null) return root;
  for (const up of ['..', '../..']) {
    const dir = fileURLToPath(new URL(`${up}/`, import.meta.url));
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schema'))) {
      root = dir;
      return dir;
    }
  }
  throw new Error('cannot find the package root (package.json next to schema/)');
}

/** The package's version, for User-Agent headers and diagnostics. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
