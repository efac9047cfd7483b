/** How the browser tests find a browser, and what they do without one. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findBrowser } from '../helpers/browser.js';

const dir = mkdtempSync(join(tmpdir(), 'conveyor-browser-'));
const present = join(dir, 'chromium');
writeFileSync(present, '');
const absent = join(dir, 'google-chrome');

describe('finding a browser', () => {
  it('takes CHROMIUM_PATH first, and refuses one that names no file', () => {
    expect(findBrowser({ CHROMIUM_PATH: present }, { candidates: [] })).toBe(present);
    expect(() => findBrowser({ CHROMIUM_PATH: absent })).toThrow('CHROMIUM_PATH names no file');
  });

  it('looks at the system locations in order', () => {
    expect(findBrowser({}, { candidates: [absent, present] })).toBe(present);
  });

  it('without a browser: skips with one line saying how to enable the tests', () => {
    const printed: string[] = [];
    expect(findBrowser({}, { candidates: [absent], print: (line) => printed.push(line) })).toBeNull();
    expect(printed).toEqual([expect.stringContaining('browser tests skipped')]);
    expect(printed[0]).toContain('apt-get install chromium');
    expect(printed[0]).toContain('CHROMIUM_PATH');
  });

  it('without a browser under CI: fails', () => {
    expect(() => findBrowser({ CI: 'true' }, { candidates: [absent] })).toThrow('browser tests cannot run under CI');
  });
});
