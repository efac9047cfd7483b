/** Result files, Markdown text and archive URLs of jobs and batches. */
import type { Job } from '../../domain/types.js';
import { ValidationError } from '../../errors.js';
import { resultFiles } from '../../results/archive.js';
import type { ResultFile } from '../../results/port.js';
import type { Resolvers } from '../generated/resolvers-types.js';

export interface ResultFileModel {
  jobId: string;
  file: ResultFile;
}
export type MarkdownModel = ResultFileModel;
export interface JobResultsModel {
  job: Job;
}

const MAX_TEXT_BYTES = 16 * 1024 * 1024;

/** What a result file is, from its content type: markdown, image, pdf, audio, video, json or other. */
export function resultKind(contentType: string): string {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'text/markdown' || type === 'text/x-markdown') return 'markdown';
  if (type === 'application/pdf' || type === 'application/x-pdf') return 'pdf';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  const top = type.split('/')[0];
  if (top === 'image' || top === 'audio' || top === 'video') return top;
  return 'other';
}

function checkMaxBytes(maxBytes: number): number {
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_TEXT_BYTES) {
    throw new ValidationError(`maxBytes: must be between 1 and ${MAX_TEXT_BYTES}`, { field: 'maxBytes' });
  }
  return maxBytes;
}

/** The longest prefix of `bytes` that ends on a whole UTF-8 character. */
export function utf8Prefix(bytes: Buffer): Buffer {
  let end = bytes.length;
  // Step back over continuation bytes (10xxxxxx) to the lead byte of the last character.
  let lead = end - 1;
  while (lead >= 0 && lead > end - 4 && ((bytes[lead] as number) & 0xc0) === 0x80) lead--;
  if (lead < 0) return bytes.subarray(0, 0);
  const byte = bytes[lead] as number;
  const length = byte < 0x80 ? 1 : byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
  if (lead + length > end) end = lead;
  return bytes.subarray(0, end);
}

export const resultResolvers: Resolvers = {
  Job: {
    results: (job) => (job.results === null ? null : { job }),
    archiveUrl: (job, _args, ctx) => ctx.services.signer.archiveUrl('jobs', job.id, ctx.principal),
    cached: (job) => job.cachedFrom !== null,
    cachedFrom: (job) => job.cachedFrom,
  },
  Batch: {
    archiveUrl: (batch, _args, ctx) => ctx.services.signer.archiveUrl('batches', batch.id, ctx.principal),
  },
  JobResults: {
    markdown({ job }) {
      const name = job.results?.markdown;
      const file = typeof name === 'string' ? resultFiles(job).find((f) => f.name === name) : undefined;
      return file === undefined ? null : { jobId: job.id, file };
    },
    files: ({ job }) => resultFiles(job).map((file) => ({ jobId: job.id, file })),
    metadata: ({ job }) => job.results?.metadata ?? null,
    data({ job }) {
      const { files: _files, markdown: _markdown, metadata: _metadata, ...rest } = job.results ?? {};
      return rest;
    },
  },
  ResultFile: {
    name: ({ file }) => file.name,
    contentType: ({ file }) => file.contentType,
    kind: ({ file }) => resultKind(file.contentType),
    size: ({ file }) => file.size,
    sha256: ({ file }) => file.sha256,
    url: ({ jobId, file }, _args, ctx) => ctx.services.signer.fileUrl(jobId, file.name, ctx.principal),
  },
  MarkdownResult: {
    file: (model) => model,
    async text({ jobId, file }, { maxBytes }, ctx) {
      const limit = checkMaxBytes(maxBytes);
      if (file.size === 0) return '';
      const stream = await ctx.services.results.open(jobId, file.name, { start: 0, end: Math.min(file.size, limit) - 1 });
      if (stream === null) return '';
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      return (file.size > limit ? utf8Prefix(bytes) : bytes).toString('utf8');
    },
    truncated: ({ file }, { maxBytes }) => file.size > checkMaxBytes(maxBytes),
  },
};
