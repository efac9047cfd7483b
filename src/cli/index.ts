#!/usr/bin/env node
/**
 * The `conveyor` command: runs the service, or talks to one over its GraphQL API.
 *
 *   conveyor serve [--role all|api|worker] [--config FILE]
 *   conveyor submit <type> [--param k=v]… [--webhook URL] [--watch] [--json]
 *   conveyor submit --file batch.json|batch.yaml [--webhook URL] [--watch] [--json]
 *   conveyor status <id> [--json]      conveyor watch <jobId|batchId> [--json]
 *   conveyor cancel <id>               conveyor restart <id>
 *   conveyor download <id> [-o FILE]   conveyor demo
 *
 * Server and credentials: --url (CONVEYOR_URL, default http://127.0.0.1:4000),
 * --user (CONVEYOR_USER, header mode) or --token (CONVEYOR_TOKEN, apiKey/jwt).
 * Exit codes: 0 completed (or done), 1 failed, 2 usage error, 3 cancelled; 4 the
 * server refused or could not be reached.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { exitOnStartupError, serve, startBanner } from '../main.js';
import { type Connection, gql, RemoteError, subscribe } from './api.js';
import { createProgress } from './progress.js';

export const EXIT = { completed: 0, failed: 1, usage: 2, cancelled: 3, error: 4 } as const;

const USAGE = `usage: conveyor <command> [options]

commands:
  serve [--role all|api|worker] [--config FILE]   run the service
  submit <type> [--param key=value]…               submit one job (values: JSON or text)
  submit --file batch.json|batch.yaml              submit a batch { name, jobs: [{ type, parameters }] }
         [--webhook URL] [--watch] [--json]
  status <id> [--json]                             a job's or a batch's state
  watch <id> [--json]                              live progress until it ends
  cancel <id> | restart <id>                       cancel or restart a job or a batch
  download <id> [-o FILE]                          the ZIP of a job's or a batch's results
  demo [--port N] [--exit]                         run a batch of real session jobs against a local sample site

options: --url URL (CONVEYOR_URL), --user ID (CONVEYOR_USER), --token T (CONVEYOR_TOKEN)
exit codes: 0 completed, 1 failed, 2 usage error, 3 cancelled, 4 server error`;

export class UsageError extends Error {}

interface Parsed {
  command: string;
  positional: string[];
  flags: Map<string, string[]>;
}

const FLAGS: Record<string, { value: boolean; commands: string[] }> = {
  '--url': { value: true, commands: ['*'] },
  '--user': { value: true, commands: ['*'] },
  '--token': { value: true, commands: ['*'] },
  '--json': { value: false, commands: ['submit', 'status', 'watch', 'cancel', 'restart', 'demo'] },
  '--param': { value: true, commands: ['submit'] },
  '--file': { value: true, commands: ['submit'] },
  '--webhook': { value: true, commands: ['submit'] },
  '--watch': { value: false, commands: ['submit'] },
  '-o': { value: true, commands: ['download'] },
  '--role': { value: true, commands: ['serve'] },
  '--config': { value: true, commands: ['serve'] },
  '--help': { value: false, commands: ['*'] },
  '--port': { value: true, commands: ['demo'] },
  '--exit': { value: false, commands: ['demo'] },
};

export function parseArgs(argv: string[]): Parsed {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === 'help') throw new UsageError('');
  const known = ['serve', 'submit', 'status', 'watch', 'cancel', 'restart', 'download', 'demo'];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}"`);
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (!arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] =
      arg.includes('=') && arg.startsWith('--') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const spec = FLAGS[name as string];
    if (spec === undefined || !(spec.commands.includes('*') || spec.commands.includes(command))) {
      throw new UsageError(`unknown option ${name} for "${command}"`);
    }
    let value = 'true';
    if (spec.value) {
      value = inline ?? (rest[++i] as string);
      if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`${name} needs a value`);
    }
    flags.set(name as string, [...(flags.get(name as string) ?? []), value]);
  }
  if (flags.has('--help')) throw new UsageError('');
  return { command, positional, flags };
}

function connection(flags: Map<string, string[]>, env: NodeJS.ProcessEnv): Connection {
  const url = (flags.get('--url')?.[0] ?? env.CONVEYOR_URL ?? 'http://127.0.0.1:4000').replace(/\/+$/, '');
  const headers: Record<string, string> = {};
  const token = flags.get('--token')?.[0] ?? env.CONVEYOR_TOKEN;
  const user = flags.get('--user')?.[0] ?? env.CONVEYOR_USER ?? (token === undefined ? env.USER : undefined);
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (user !== undefined && token === undefined) headers['x-user-id'] = user;
  return { url, headers };
}

/** `key=value`: the value as JSON when it parses (numbers, booleans, lists), else as text. */
function parameters(values: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of values) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--param needs key=value, not "${pair}"`);
    const raw = pair.slice(at + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // plain text
    }
    out[pair.slice(0, at)] = value;
  }
  return out;
}

const JOB_FIELDS = 'id type status attempts maxAttempts progress { percent step message } error { code message } batch { id } archiveUrl';
const BATCH_FIELDS = 'id name status counts { total pending processing completed failed cancelled } archiveUrl';

type Status = string;
const exitFor = (status: Status): number =>
  status === 'COMPLETED'
    ? EXIT.completed
    : status === 'CANCELLED'
      ? EXIT.cancelled
      : status === 'FAILED' || status === 'PARTIAL'
        ? EXIT.failed
        : EXIT.completed;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'PARTIAL']);

async function find(conn: Connection, id: string): Promise<{ kind: 'job' | 'batch'; value: Record<string, unknown> }> {
  const kind = id.startsWith('bat_') ? 'batch' : 'job';
  const data = await gql<Record<string, Record<string, unknown> | null>>(
    conn,
    `query ($id: ID!) { ${kind}(id: $id) { ${kind === 'job' ? JOB_FIELDS : BATCH_FIELDS} } }`,
    { id },
  );
  const value = data[kind];
  if (value === null || value === undefined) throw new RemoteError(`${kind} ${id} not found (or not yours to read)`, 'NOT_FOUND');
  return { kind, value };
}

/** Follows a job or a batch to its end, drawing progress; resolves with its final status. */
async function watch(conn: Connection, id: string, out: NodeJS.WriteStream, json: boolean): Promise<Status> {
  const { kind, value } = await find(conn, id);
  const progress = createProgress(out, json);
  if (kind === 'job') {
    progress.job(value as never);
    if (TERMINAL.has(value.status as string)) return progress.finish(value.status as string);
    let final = value.status as string;
    await subscribe<{ jobUpdated: { status: string | null; job: Record<string, unknown> | null } }>(
      conn,
      `subscription ($id: ID!) { jobUpdated(id: $id) { status job { ${JOB_FIELDS} } } }`,
      { id },
      ({ jobUpdated }) => {
        if (jobUpdated.job !== null) progress.job(jobUpdated.job as never);
        final = jobUpdated.status ?? final;
        return TERMINAL.has(final);
      },
    );
    return progress.finish(final);
  }
  progress.batch(value as never);
  if (TERMINAL.has(value.status as string)) return finishBatch(conn, id, progress, value.status as string);
  let final = value.status as string;
  const controller = new AbortController();
  const jobs = subscribe<{ jobEvents: { job: Record<string, unknown> | null } }>(
    conn,
    `subscription ($b: ID!) { jobEvents(filter: { batchId: $b }) { job { ${JOB_FIELDS} } } }`,
    { b: id },
    ({ jobEvents }) => {
      if (jobEvents.job !== null) progress.job(jobEvents.job as never);
      return controller.signal.aborted;
    },
  ).catch(() => undefined);
  await subscribe<{ batchUpdated: { status: string | null; batch: Record<string, unknown> | null } }>(
    conn,
    `subscription ($id: ID!) { batchUpdated(id: $id) { status batch { ${BATCH_FIELDS} } } }`,
    { id },
    ({ batchUpdated }) => {
      if (batchUpdated.batch !== null) progress.batch(batchUpdated.batch as never);
      final = batchUpdated.status ?? final;
      return TERMINAL.has(final);
    },
  );
  controller.abort();
  void jobs;
  return finishBatch(conn, id, progress, final);
}

/** Shows every job's end state (the batch's last event can overtake its jobs' last events), then the batch's. */
async function finishBatch(conn: Connection, id: string, progress: ReturnType<typeof createProgress>, final: string): Promise<Status> {
  const ended = await gql<{ batch: { jobs: { edges: { node: Record<string, unknown> }[] } } | null }>(
    conn,
    `query ($id: ID!) { batch(id: $id) { jobs(first: 1000) { edges { node { ${JOB_FIELDS} } } } } }`,
    { id },
  );
  for (const { node } of ended.batch?.jobs.edges ?? []) progress.job(node as never);
  return progress.finish(final);
}

export async function run(
  argv: string[],
  io: { out: NodeJS.WriteStream; err: NodeJS.WriteStream; env: NodeJS.ProcessEnv },
): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message !== '') io.err.write(`conveyor: ${error.message}\n\n`);
    io.err.write(`${USAGE}\n`);
    return error.message === '' ? EXIT.completed : EXIT.usage;
  }
  const { command, positional, flags } = parsed;
  const json = flags.has('--json');
  const conn = connection(flags, io.env);
  const print = (value: unknown, text: string) => io.out.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
  const needId = () => {
    if (positional.length !== 1) throw new UsageError(`${command} needs exactly one job or batch id`);
    return positional[0] as string;
  };
  try {
    switch (command) {
      case 'serve': {
        const args = [
          ...(flags.has('--role') ? ['--role', flags.get('--role')?.[0] as string] : []),
          ...(flags.has('--config') ? ['--config', flags.get('--config')?.[0] as string] : []),
        ];
        await serve(args, {
          onStarted: (url, config) => io.out.write(startBanner(url, config)),
        }).catch(exitOnStartupError);
        return new Promise<number>(() => undefined); // runs until a signal stops the process
      }
      case 'demo': {
        const { runDemo } = await import('./demo.js');
        return runDemo(flags, io, (c, id) => watch(c, id, io.out, json));
      }
      case 'submit': {
        const webhook = flags.get('--webhook')?.[0];
        const file = flags.get('--file')?.[0];
        let id: string;
        if (file !== undefined) {
          if (positional.length > 0) throw new UsageError('submit takes either a type or --file, not both');
          let input: Record<string, unknown>;
          try {
            const text = readFileSync(file, 'utf8');
            input = (/\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text)) as Record<string, unknown>;
          } catch (error) {
            throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
          }
          if (webhook !== undefined) input.webhook = { ...(input.webhook as object), url: webhook };
          const data = await gql<{ submitBatch: { batch: Record<string, unknown> } }>(
            conn,
            `mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { ${BATCH_FIELDS} } } }`,
            { input },
          );
          id = data.submitBatch.batch.id as string;
          // Watching prints the id too (as text: with --json, every watch line carries it).
          if (!flags.has('--watch') || !json)
            print(data.submitBatch.batch, `submitted batch ${id} (${(data.submitBatch.batch.counts as { total: number }).total} jobs)`);
        } else {
          const [type, ...extra] = positional;
          if (type === undefined || extra.length > 0) throw new UsageError('submit needs one job type (or --file)');
          const data = await gql<{ submitJob: { job: Record<string, unknown> } }>(
            conn,
            `mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { ${JOB_FIELDS} } } }`,
            {
              input: {
                type,
                parameters: parameters(flags.get('--param') ?? []),
                ...(webhook === undefined ? {} : { webhook: { url: webhook } }),
              },
            },
          );
          id = data.submitJob.job.id as string;
          if (!flags.has('--watch') || !json) print(data.submitJob.job, `submitted job ${id}`);
        }
        if (!flags.has('--watch')) return EXIT.completed;
        return exitFor(await watch(conn, id, io.out, json));
      }
      case 'status': {
        const { kind, value } = await find(conn, needId());
        const text =
          kind === 'job'
            ? `${value.id} ${value.type} ${value.status} ${(value.progress as { percent?: number } | null)?.percent ?? 0}%${value.error === null ? '' : ` ${(value.error as { code: string; message: string }).code}: ${(value.error as { message: string }).message}`}`
            : `${value.id} "${value.name}" ${value.status} ${JSON.stringify(value.counts)}`;
        print(value, text);
        return TERMINAL.has(value.status as string) ? exitFor(value.status as string) : EXIT.completed;
      }
      case 'watch':
        return exitFor(await watch(conn, needId(), io.out, json));
      case 'cancel':
      case 'restart': {
        const id = needId();
        const batch = id.startsWith('bat_');
        const field = `${command}${batch ? 'Batch' : 'Job'}`;
        const data = await gql<Record<string, Record<string, unknown>>>(conn, `mutation ($id: ID!) { ${field}(id: $id) { id status } }`, {
          id,
        });
        print(data[field], `${id} ${(data[field] as { status: string }).status}`);
        return EXIT.completed;
      }
      case 'download': {
        const { kind, value } = await find(conn, needId());
        const target = flags.get('-o')?.[0] ?? `${value.id}.zip`;
        const response = await fetch(value.archiveUrl as string);
        if (!response.ok || response.body === null) throw new RemoteError(`the archive answered ${response.status}`, 'DOWNLOAD_FAILED');
        await pipeline(Readable.fromWeb(response.body as never), createWriteStream(target));
        io.err.write(`saved the ${kind}'s results to ${target}\n`);
        return EXIT.completed;
      }
    }
    throw new UsageError(`unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err.write(`conveyor: ${error.message}\n\n${USAGE}\n`);
      return EXIT.usage;
    }
    if (error instanceof RemoteError) {
      io.err.write(`conveyor: ${error.message} (${error.code})\n`);
      return EXIT.error;
    }
    throw error;
  }
}

const invoked = process.argv[1] === undefined ? '' : pathToFileURL(process.argv[1]).href;
if (invoked === import.meta.url || /\/cli\/index\.[jt]s$|\/conveyor$/.test(process.argv[1] ?? '')) {
  run(process.argv.slice(2), { out: process.stdout, err: process.stderr, env: process.env }).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`conveyor: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(EXIT.error);
    },
  );
}
