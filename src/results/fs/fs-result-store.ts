/**
 * Result files on the local filesystem: `<dir>/<jobId>/<name>`, written via a temp
 * file and rename. Reads resolve the real path and refuse anything outside the job's
 * folder, so a symlink placed inside it cannot expose other files.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  type ByteRange,
  checkJobId,
  measured,
  normaliseResultName,
  type ResultBody,
  type ResultFile,
  type ResultStore,
  type StoredFile,
} from '../port.js';

const TEMP = /\.[0-9a-f]{12}\.tmp$/;

export function createFsResultStore(dir: string): ResultStore {
  const folderOf = (jobId: string) => join(dir, checkJobId(jobId));
  const pathOf = (jobId: string, name: string) => join(folderOf(jobId), ...normaliseResultName(name).split('/'));

  /** The file's real path when it is a regular file inside the job's real folder; null otherwise. */
  async function inside(jobId: string, name: string): Promise<string | null> {
    try {
      const [folder, target] = await Promise.all([realpath(folderOf(jobId)), realpath(pathOf(jobId, name))]);
      if (!target.startsWith(folder + sep)) return null;
      return (await stat(target)).isFile() ? target : null;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return null;
      throw error;
    }
  }

  async function walk(folder: string, base: string, out: StoredFile[]): Promise<void> {
    const entries = await readdir(folder, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path, base, out);
      else if (entry.isFile() && !TEMP.test(entry.name)) {
        out.push({ name: relative(base, path).split(sep).join('/'), size: (await stat(path)).size });
      }
    }
  }

  return {
    async put(jobId, name, body: ResultBody, contentType) {
      const target = pathOf(jobId, name);
      await mkdir(dirname(target), { recursive: true });
      const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
      const body$ = measured(body);
      try {
        await pipeline(body$.stream, createWriteStream(temp));
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      const file: ResultFile = { name: normaliseResultName(name), contentType, size: body$.size(), sha256: body$.sha256() };
      return file;
    },
    async open(jobId, name, range?: ByteRange) {
      const path = await inside(jobId, name);
      if (path === null) return null;
      return createReadStream(path, range === undefined ? {} : { start: range.start, end: range.end });
    },
    async read(jobId, name) {
      const path = await inside(jobId, name);
      return path === null ? null : readFile(path);
    },
    async list(jobId) {
      const folder = folderOf(jobId);
      const files: StoredFile[] = [];
      await walk(folder, folder, files);
      return files.sort((a, b) => a.name.localeCompare(b.name));
    },
    async folders(prefix) {
      const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [];
        throw error;
      });
      return entries.filter((e) => e.isDirectory() && e.name.startsWith(prefix)).map((e) => e.name);
    },
    async deleteJob(jobId) {
      await rm(folderOf(jobId), { recursive: true, force: true });
    },
  };
}
