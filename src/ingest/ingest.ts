/**
 * Inbound webhooks to jobs (`POST /hooks/<source>`): verify the request the way its
 * sender signs it, route its event to a job type, and store the job with the
 * sender's delivery id as its idempotency key, so a retried delivery finds the job it
 * already made. The answer goes out as soon as the job is stored; handler code never
 * runs here. Counters per source are summed in memory and added to the store every
 * second (and on stop), so every API process contributes to one set of figures.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { ResolvedConfig } from '../config.js';
import type { Job, JsonObject, Principal } from '../domain/types.js';
import { AppError, ConfigError, ConflictError, ValidationError } from '../errors.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import type { Submitter } from '../jobs/submit.js';
import type { Logger } from '../log.js';
import type { Created, IngestCounters, IngestCounts, IngestOutcome, JobsPort, NewJob } from '../store/port.js';
import { findRoute, parametersFor } from './routes.js';
import { secretProblem, verify } from './verify.js';

export type IngestSource = ResolvedConfig['ingest']['sources'][string] & { name: string };

/** How a request ended, for the answer, the counters and the metrics. */
export type IngestResult = 'accepted' | 'duplicate' | 'ignored' | 'rejected';

export interface IngestAnswer {
  status: number;
  body: JsonObject;
  result: IngestResult;
}

export interface Ingest {
  readonly sources: ReadonlyMap<string, IngestSource>;
  /** Handles one request to a configured source whose body has been read. */
  receive(source: IngestSource, headers: IncomingHttpHeaders, body: Buffer): Promise<IngestAnswer>;
  /** Counts a request refused before it could be verified (its body was too large). */
  refused(source: IngestSource): void;
  /** The counters of every source, this process's latest included. */
  counts(): Promise<Map<string, IngestCounts>>;
  /** Adds what this process counted to the store. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export interface IngestOptions {
  config: ResolvedConfig['ingest'];
  store: Pick<JobsPort, 'createJobs'> & IngestCounters;
  submitter: Submitter;
  registry: HandlerRegistry;
  logger: Logger;
  flushMs?: number;
  /** Sees every count as it happens (the metrics). */
  onCount?: (source: string, outcome: IngestOutcome) => void;
}

/** Checks the sources against the registry at start-up: every route names a known type. */
export function checkIngestSources(config: ResolvedConfig['ingest'], registry: HandlerRegistry): Map<string, IngestSource> {
  const sources = new Map<string, IngestSource>();
  for (const [name, source] of Object.entries(config.sources)) {
    const problem = secretProblem(source.kind, source.secret);
    if (problem !== null) throw new ConfigError(`invalid configuration:\ningest.sources.${name}.secret: ${problem}`, { key: name });
    source.routes.forEach((route, index) => {
      if (registry.get(route.type) === undefined) {
        throw new ConfigError(
          `invalid configuration:\ningest.sources.${name}.routes[${index}].type: unknown job type "${route.type}" (registered: ${registry.types.join(', ')})`,
          { key: `ingest.sources.${name}.routes` },
        );
      }
    });
    sources.set(name, { ...source, name });
  }
  return sources;
}

/**
 * Deepest nesting of objects and arrays a payload may have (as for GraphQL's JSON
 * values). JSON.parse reads any depth, but routing, validation, hashing and storing
 * recurse: a payload of 200,000 brackets would overflow their stacks.
 */
export const MAX_PAYLOAD_DEPTH = 100;

/** True when `value` nests deeper than `max`; measured without recursion. */
function nestsDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The payload as an object: JSON, or GitHub's form encoding (`payload=<json>`); else why not. */
function parsePayload(headers: IncomingHttpHeaders, body: Buffer): { payload: JsonObject } | { problem: string } {
  const notObject = { problem: 'the body must be a JSON object' };
  let value: unknown;
  try {
    const form = (headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const text = form ? (new URLSearchParams(body.toString('utf8')).get('payload') ?? '') : body.toString('utf8');
    value = JSON.parse(text) as unknown;
  } catch {
    return notObject;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return notObject;
  if (nestsDeeper(value, MAX_PAYLOAD_DEPTH)) return { problem: `the body is nested more than ${MAX_PAYLOAD_DEPTH} levels deep` };
  return { payload: value as JsonObject };
}

/**
 * Group commit: jobs of requests that arrive together are stored in one `createJobs`
 * call (one transaction), each request still answered with its own job. When the
 * group is refused (a conflicting payload, say), each job is tried on its own so one
 * bad delivery cannot fail the others.
 */
function createJobWriter(store: Pick<JobsPort, 'createJobs'>) {
  let queue: { job: NewJob; resolve: (created: Created<Job>) => void; reject: (error: unknown) => void }[] = [];
  let scheduled = false;
  async function write(): Promise<void> {
    scheduled = false;
    const group = queue;
    queue = [];
    try {
      const created = await store.createJobs(group.map((item) => item.job));
      group.forEach((item, i) => {
        item.resolve(created[i] as Created<Job>);
      });
    } catch (error) {
      if (group.length === 1) {
        group[0]?.reject(error);
        return;
      }
      for (const item of group) {
        store.createJobs([item.job]).then(([created]) => item.resolve(created as Created<Job>), item.reject);
      }
    }
  }
  return (job: NewJob) =>
    new Promise<Created<Job>>((resolve, reject) => {
      queue.push({ job, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void write());
      }
    });
}

/** Long ids are hashed so the idempotency key stays small. */
const shortId = (id: string) => (id.length <= 200 ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`);

export function createIngest(options: IngestOptions): Ingest {
  const { store, submitter, logger } = options;
  const sources = checkIngestSources(options.config, options.registry);
  const createJob = createJobWriter(store);
  let pending = new Map<string, Partial<IngestCounts>>();
  const count = (source: string, ...outcomes: IngestOutcome[]) => {
    let counts = pending.get(source);
    if (counts === undefined) {
      counts = {};
      pending.set(source, counts);
    }
    for (const outcome of outcomes) {
      counts[outcome] = (counts[outcome] ?? 0) + 1;
      options.onCount?.(source, outcome);
    }
  };

  let flushing: Promise<void> = Promise.resolve();
  function flush(): Promise<void> {
    flushing = flushing.then(async () => {
      if (pending.size === 0) return;
      const batch = pending;
      pending = new Map();
      try {
        await store.addIngestCounts(batch);
      } catch (error) {
        // Counted again next time rather than lost.
        for (const [source, counts] of batch) {
          for (const [outcome, n] of Object.entries(counts)) {
            const current = pending.get(source) ?? {};
            current[outcome as IngestOutcome] = (current[outcome as IngestOutcome] ?? 0) + n;
            pending.set(source, current);
          }
        }
        logger.warn('could not store ingest counters; will retry', { error });
      }
    });
    return flushing;
  }
  const timer = setInterval(() => void flush(), options.flushMs ?? 1000);
  timer.unref();

  const answer = (source: string, status: number, body: JsonObject, result: IngestResult): IngestAnswer => {
    count(source, result);
    return { status, body, result };
  };
  const refuse = (source: string, status: number, code: string, message: string) =>
    answer(source, status, { error: { code, message } }, 'rejected');

  return {
    sources,
    refused(source) {
      count(source.name, 'received', 'rejected');
    },
    async receive(source, headers, body) {
      count(source.name, 'received');
      const verified = verify({ kind: source.kind, secret: source.secret, toleranceSec: source.toleranceSec }, headers, body);
      if (!verified.ok) return refuse(source.name, 401, verified.code, verified.message);
      count(source.name, 'verified');
      const parsed = parsePayload(headers, body);
      if ('problem' in parsed) return refuse(source.name, 400, 'BAD_USER_INPUT', parsed.problem);
      const payload = parsed.payload;
      const event =
        verified.event ?? (typeof payload.type === 'string' ? payload.type : typeof payload.event === 'string' ? payload.event : '');
      const deliveryId = shortId(verified.deliveryId);
      const route = findRoute(source.routes, event, payload);
      if (route === undefined) {
        return answer(
          source.name,
          202,
          { ignored: true, event, deliveryId, message: `no route for event "${event}" of source ${source.name}` },
          'ignored',
        );
      }
      const principal: Principal = { userId: source.owner.userId, teams: source.owner.teams, admin: false };
      try {
        const prepared = await submitter.prepareJob(
          {
            type: route.type,
            parameters: parametersFor(route, payload),
            idempotencyKey: `hook:${source.name}:${deliveryId}`,
            accessControl: { visibility: source.visibility, read: [], write: [], admin: [] },
            ingest: { source: source.name, event, deliveryId },
            ...(route.priority === undefined ? {} : { priority: route.priority }),
            ...(route.maxAttempts === undefined ? {} : { maxAttempts: route.maxAttempts }),
          },
          principal,
        );
        const { value: job, created } = await createJob(prepared);
        return answer(source.name, 202, { jobId: job.id, duplicate: !created, event, deliveryId }, created ? 'accepted' : 'duplicate');
      } catch (error) {
        if (error instanceof ValidationError) {
          return refuse(source.name, 422, error.code, `route to ${route.type}: ${error.message}`);
        }
        if (error instanceof ConflictError) {
          return refuse(source.name, 409, error.code, `delivery ${deliveryId} was already received with another payload`);
        }
        if (error instanceof AppError && error.code === 'STORE_UNAVAILABLE') {
          return refuse(source.name, 503, error.code, 'the store is unavailable; send the delivery again later');
        }
        throw error;
      }
    },
    async counts() {
      await flush();
      return store.ingestCounts();
    },
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
