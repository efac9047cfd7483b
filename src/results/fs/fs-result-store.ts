/** Result files on the local filesystem: `<dir>/<jobId>/<name>`, written via a temp file and rename. */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkJobId, normaliseResultName, type ResultBody, type ResultFile, type ResultStore } from '../port.js';

export function createFsResultStore(dir: string): ResultStore {
  const pathOf = (jobId: string, name: string) => join(dir, checkJobId(jobId), ...normaliseResultName(name).split('/'));

  return {
    async put(jobId, name, body: ResultBody, contentType) {
      const target = pathOf(jobId, name);
      await mkdir(dirname(target), { recursive: true });
      const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
      const hash = createHash('sha256');
      let size = 0;
      const source = typeof body === 'string' || body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
      const count = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      try {
        await pipeline(source, count, createWriteStream(temp));
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      const file: ResultFile = { name: normaliseResultName(name), contentType, size, sha256: hash.digest('hex') };
      return file;
    },
    async read(jobId, name) {
      try {
        return await readFile(pathOf(jobId, name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
    async deleteJob(jobId) {
      await rm(join(dir, checkJobId(jobId)), { recursive: true, force: true });
    },
  };
}
