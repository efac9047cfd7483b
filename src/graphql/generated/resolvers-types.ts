import type { GraphQLResolveInfo, GraphQLScalarType, GraphQLScalarTypeConfig } from 'graphql';
import type { Job as JobRecord, Batch as BatchRecord, LogEntry as LogEntryRecord, Principal as PrincipalRecord, Delivery as DeliveryRecord } from '../../domain/types.js';
import type { StatsModel } from '../resolvers/stats.js';
import type { JobTypeInfo } from '../../handlers/registry.js';
import type { JobConnectionModel, BatchConnectionModel } from '../connections.js';
import type { JobChangeModel, BatchChangeModel, DeliveryChangeModel } from '../feed.js';
import type { JobResultsModel, MarkdownModel, ResultFileModel } from '../resolvers/results.js';
import type { GraphQLContext } from '../context.js';
export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
export type Omit<T, K extends keyof T> = Pick<T, Exclude<keyof T, K>>;
export type RequireFields<T, K extends keyof T> = Omit<T, K> & { [P in K]-?: NonNullable<T[P]> };
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
  /** An ISO 8601 date and time in UTC, e.g. 2026-11-22T18:00:00.000Z. */
  DateTime: { input: Date; output: Date; }
  /** Any JSON value. */
  JSON: { input: unknown; output: unknown; }
};

/** Who besides the owner may read, change or administer a job or batch. Entries are user:<id> or team:<id>. */
export type AccessControl = {
  __typename?: 'AccessControl';
  admin: Array<Scalars['String']['output']>;
  read: Array<Scalars['String']['output']>;
  visibility: Visibility;
  write: Array<Scalars['String']['output']>;
};

export type AccessControlInput = {
  /** May do anything the owner may, including delete and setJobAccess. */
  admin?: Array<Scalars['String']['input']>;
  /** May read. */
  read?: Array<Scalars['String']['input']>;
  visibility?: Visibility;
  /** May read, cancel and restart. */
  write?: Array<Scalars['String']['input']>;
};

/** A named group of jobs, created atomically. */
export type Batch = {
  __typename?: 'Batch';
  accessControl: AccessControl;
  /** Paused batches (active: false) are not claimed. */
  active: Scalars['Boolean']['output'];
  /** Signed URL of a ZIP with one folder per job and a manifest.json. */
  archiveUrl: Scalars['String']['output'];
  /** Archived batches are hidden from default lists; their results stay. */
  archived: Scalars['Boolean']['output'];
  /** Live counts, kept exact in the same transaction as every job change. */
  counts: BatchCounts;
  createdAt: Scalars['DateTime']['output'];
  /** Deliveries of the batch and of its jobs, oldest first. */
  deliveries: Array<Delivery>;
  finishedAt?: Maybe<Scalars['DateTime']['output']>;
  id: Scalars['ID']['output'];
  /** The batch's jobs the caller may read, newest first. */
  jobs: JobConnection;
  metadata?: Maybe<Scalars['JSON']['output']>;
  name: Scalars['String']['output'];
  ownerId: Scalars['ID']['output'];
  status: BatchStatus;
  summary: BatchSummary;
  teamIds: Array<Scalars['ID']['output']>;
  updatedAt: Scalars['DateTime']['output'];
  version: Scalars['Int']['output'];
  webhook?: Maybe<WebhookInfo>;
};


/** A named group of jobs, created atomically. */
export type BatchJobsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  filter?: InputMaybe<JobFilter>;
  first?: Scalars['Int']['input'];
};

/** A change of a batch's counts, status or flags. */
export type BatchChange = {
  __typename?: 'BatchChange';
  active?: Maybe<Scalars['Boolean']['output']>;
  archived?: Maybe<Scalars['Boolean']['output']>;
  at: Scalars['DateTime']['output'];
  /** The batch as it is now (null once deleted). */
  batch?: Maybe<Batch>;
  batchId: Scalars['ID']['output'];
  counts?: Maybe<BatchCounts>;
  cursor: Scalars['String']['output'];
  /** The job change that moved the counts, when one did. */
  job?: Maybe<JobChange>;
  op: ChangeOp;
  status?: Maybe<BatchStatus>;
  version: Scalars['Int']['output'];
};

export type BatchConnection = {
  __typename?: 'BatchConnection';
  edges: Array<BatchEdge>;
  pageInfo: PageInfo;
  totalCount: Scalars['Int']['output'];
};

export type BatchCounts = {
  __typename?: 'BatchCounts';
  cancelled: Scalars['Int']['output'];
  completed: Scalars['Int']['output'];
  failed: Scalars['Int']['output'];
  pending: Scalars['Int']['output'];
  processing: Scalars['Int']['output'];
  total: Scalars['Int']['output'];
};

export type BatchEdge = {
  __typename?: 'BatchEdge';
  cursor: Scalars['String']['output'];
  node: Batch;
};

export type BatchFilter = {
  active?: InputMaybe<Scalars['Boolean']['input']>;
  /** Default false: archived batches are hidden. Pass null for both. */
  archived?: InputMaybe<Scalars['Boolean']['input']>;
  createdAfter?: InputMaybe<Scalars['DateTime']['input']>;
  createdBefore?: InputMaybe<Scalars['DateTime']['input']>;
  ownerId?: InputMaybe<Scalars['ID']['input']>;
  /** Only batches in one of these statuses. */
  status?: InputMaybe<Array<BatchStatus>>;
};

/** A job of a new batch: owner, teams and access control come from the batch. */
export type BatchJobInput = {
  /** As SubmitJobInput.correlationId. */
  correlationId?: InputMaybe<Scalars['String']['input']>;
  maxAttempts?: InputMaybe<Scalars['Int']['input']>;
  parameters?: InputMaybe<Scalars['JSON']['input']>;
  priority?: InputMaybe<Scalars['Int']['input']>;
  runAt?: InputMaybe<Scalars['DateTime']['input']>;
  type: Scalars['String']['input'];
};

export type BatchStats = {
  __typename?: 'BatchStats';
  /** Not paused and not finished (status PENDING or PROCESSING, active). */
  active: Scalars['Int']['output'];
  /** Status PROCESSING: some jobs started or ended, some still open. */
  processing: Scalars['Int']['output'];
  /** Batches that are not archived. */
  total: Scalars['Int']['output'];
};

/** Derived from a batch's counts. */
export type BatchStatus =
  | 'CANCELLED'
  | 'COMPLETED'
  | 'FAILED'
  /** Finished with a mix of outcomes (some failed or cancelled). */
  | 'PARTIAL'
  | 'PENDING'
  | 'PROCESSING';

/** Timing and usage over a batch's jobs, kept in the same transaction as the counts. */
export type BatchSummary = {
  __typename?: 'BatchSummary';
  /** Cost the jobs reported, in US dollars. */
  costUsd: Scalars['Float']['output'];
  /** From the first job's start to the latest job's finish; null before a job finished. */
  durationMs?: Maybe<Scalars['Float']['output']>;
  firstStartedAt?: Maybe<Scalars['DateTime']['output']>;
  /** Finished jobs (completed, failed, cancelled) per minute of durationMs. */
  jobsPerMinute?: Maybe<Scalars['Float']['output']>;
  lastFinishedAt?: Maybe<Scalars['DateTime']['output']>;
  /** Tokens the jobs reported (Job.usage). */
  tokens: Scalars['Float']['output'];
};

/** What happened in a change event. SNAPSHOT is the current state sent when a subscription starts. */
export type ChangeOp =
  | 'CREATED'
  | 'DELETED'
  | 'SNAPSHOT'
  | 'UPDATED';

/** One webhook message for one job or batch event. Its id is the webhook-id header, the same on every attempt. */
export type Delivery = {
  __typename?: 'Delivery';
  attempts: Array<DeliveryAttempt>;
  batchId?: Maybe<Scalars['ID']['output']>;
  createdAt: Scalars['DateTime']['output'];
  /** job.completed, job.failed, job.cancelled or batch.completed. */
  event: Scalars['String']['output'];
  id: Scalars['ID']['output'];
  jobId?: Maybe<Scalars['ID']['output']>;
  nextAttemptAt: Scalars['DateTime']['output'];
  status: DeliveryStatus;
  updatedAt: Scalars['DateTime']['output'];
  url: Scalars['String']['output'];
};

/** One attempt to send a delivery. */
export type DeliveryAttempt = {
  __typename?: 'DeliveryAttempt';
  at: Scalars['DateTime']['output'];
  durationMs: Scalars['Int']['output'];
  /** HTTP_<status>, TIMEOUT, ECONNREFUSED, TARGET_FORBIDDEN, ENDPOINT_DISABLED, ...; null on success. */
  error?: Maybe<Scalars['String']['output']>;
  /** The first 1 KB of the receiver's answer. */
  responseSnippet?: Maybe<Scalars['String']['output']>;
  /** HTTP status; null for network errors and timeouts. */
  statusCode?: Maybe<Scalars['Int']['output']>;
};

/** A change of a delivery (queued, attempted, delivered, failed). */
export type DeliveryChange = {
  __typename?: 'DeliveryChange';
  batchId?: Maybe<Scalars['ID']['output']>;
  cursor: Scalars['String']['output'];
  /** The delivery as it is now, with its attempts. */
  delivery?: Maybe<Delivery>;
  deliveryId: Scalars['ID']['output'];
  event?: Maybe<Scalars['String']['output']>;
  jobId?: Maybe<Scalars['ID']['output']>;
  op: ChangeOp;
  status?: Maybe<DeliveryStatus>;
};

export type DeliveryStatus =
  /** The receiver answered 2xx. */
  | 'DELIVERED'
  /** The receiver answered 410 Gone: nothing more is sent to that URL for this job or batch. */
  | 'DISABLED'
  /** Out of attempts, or a final answer (4xx other than 408/410/429, forbidden target): a dead letter that redeliverWebhook replays. */
  | 'FAILED'
  /** Waiting for its first attempt or a retry (see nextAttemptAt). */
  | 'PENDING'
  /** Being sent by a worker right now. */
  | 'SENDING';

/** Job counts of one type or one track. */
export type GroupCounts = {
  __typename?: 'GroupCounts';
  cancelled: Scalars['Int']['output'];
  completed: Scalars['Int']['output'];
  failed: Scalars['Int']['output'];
  key: Scalars['String']['output'];
  pending: Scalars['Int']['output'];
  processing: Scalars['Int']['output'];
  total: Scalars['Int']['output'];
};

/** Where an ingested job came from: an inbound webhook to `POST /hooks/<source>`. */
export type IngestOrigin = {
  __typename?: 'IngestOrigin';
  /** The sender's delivery id, the same across its retries: the job's idempotency key. */
  deliveryId: Scalars['String']['output'];
  /** The sender's event type (`pull_request`, `Merge Request Hook`, `invoice.paid`…); empty when the sender names none. */
  event: Scalars['String']['output'];
  /** The configured source (`ingest.sources.<name>`). */
  source: Scalars['String']['output'];
};

/** What happened to one source's inbound webhooks, summed over every API process. */
export type IngestSourceStats = {
  __typename?: 'IngestSourceStats';
  /** Deliveries that made a job. */
  accepted: Scalars['Int']['output'];
  /** Deliveries received before (a sender's retry): answered with the job they made. */
  duplicate: Scalars['Int']['output'];
  /** Events without a route: acknowledged, no job. */
  ignored: Scalars['Int']['output'];
  /** github, gitlab, standard or token. */
  kind: Scalars['String']['output'];
  /** Requests to the source. */
  received: Scalars['Int']['output'];
  /** Refused: signature or token missing or wrong, body too large or not JSON, parameters invalid for the job type, another payload for a known delivery id. */
  rejected: Scalars['Int']['output'];
  source: Scalars['String']['output'];
  /** Requests whose signature or token checked out. */
  verified: Scalars['Int']['output'];
};

/** One unit of work of a registered type. */
export type Job = {
  __typename?: 'Job';
  accessControl: AccessControl;
  /** Signed URL of a ZIP with the job's result files and a manifest.json. */
  archiveUrl: Scalars['String']['output'];
  attempts: Scalars['Int']['output'];
  batch?: Maybe<Batch>;
  /** True when the job reused the results of an identical completed job (see useCache). */
  cached: Scalars['Boolean']['output'];
  /** The job whose results were reused. */
  cachedFrom?: Maybe<Scalars['ID']['output']>;
  cancelRequested: Scalars['Boolean']['output'];
  /** The submitter's own reference, echoed in webhook payloads. */
  correlationId?: Maybe<Scalars['String']['output']>;
  createdAt: Scalars['DateTime']['output'];
  /** The job's webhook deliveries, oldest first, with every attempt. */
  deliveries: Array<Delivery>;
  /** Run time of the successful attempt (its start to its finish); null unless COMPLETED. */
  durationMs?: Maybe<Scalars['Float']['output']>;
  /** The last attempt's error, while the job is failed or waiting for a retry. */
  error?: Maybe<JobError>;
  /** Every failed attempt's error, oldest first. */
  errors: Array<JobError>;
  finishedAt?: Maybe<Scalars['DateTime']['output']>;
  id: Scalars['ID']['output'];
  /** Set for jobs made from inbound webhooks. */
  ingest?: Maybe<IngestOrigin>;
  /** The job's log, oldest first, after `after` (a LogEntry.seq). */
  logs: Array<LogEntry>;
  maxAttempts: Scalars['Int']['output'];
  /** When the next attempt may start, while retrying. */
  nextAttemptAt?: Maybe<Scalars['DateTime']['output']>;
  ownerId: Scalars['ID']['output'];
  parameters: Scalars['JSON']['output'];
  /** Higher runs first. */
  priority: Scalars['Int']['output'];
  progress?: Maybe<Progress>;
  /** Result files, Markdown and metadata, once the job has completed. */
  results?: Maybe<JobResults>;
  /** True while the job waits for another attempt after a failed one (PENDING with an error). */
  retrying: Scalars['Boolean']['output'];
  /** Not started before this time. */
  runAt: Scalars['DateTime']['output'];
  startedAt?: Maybe<Scalars['DateTime']['output']>;
  status: JobStatus;
  teamIds: Array<Scalars['ID']['output']>;
  /** parameters.track, when it is a string. */
  track?: Maybe<Scalars['String']['output']>;
  type: Scalars['String']['output'];
  updatedAt: Scalars['DateTime']['output'];
  /** Usage the handler reported (tokens, cost, models), summed over attempts; null when none was reported. */
  usage?: Maybe<Usage>;
  /** Increases with every change of the job. */
  version: Scalars['Int']['output'];
  webhook?: Maybe<WebhookInfo>;
  /** The worker of the current or last attempt. */
  workerId?: Maybe<Scalars['String']['output']>;
};


/** One unit of work of a registered type. */
export type JobLogsArgs = {
  after?: InputMaybe<Scalars['Int']['input']>;
  first?: Scalars['Int']['input'];
};

/** A change of one job, as the change feed saw it. */
export type JobChange = {
  __typename?: 'JobChange';
  at: Scalars['DateTime']['output'];
  attempts?: Maybe<Scalars['Int']['output']>;
  batchId?: Maybe<Scalars['ID']['output']>;
  cancelRequested?: Maybe<Scalars['Boolean']['output']>;
  /** Pass as `after` to resume right after this event. */
  cursor: Scalars['String']['output'];
  /** The job as it is now (null once deleted or no longer readable). */
  job?: Maybe<Job>;
  jobId: Scalars['ID']['output'];
  op: ChangeOp;
  progress?: Maybe<Progress>;
  /** Status after the change (null once deleted). */
  status?: Maybe<JobStatus>;
  version: Scalars['Int']['output'];
};

export type JobConnection = {
  __typename?: 'JobConnection';
  edges: Array<JobEdge>;
  pageInfo: PageInfo;
  /** Jobs matching the filter that the caller may read. */
  totalCount: Scalars['Int']['output'];
};

export type JobEdge = {
  __typename?: 'JobEdge';
  cursor: Scalars['String']['output'];
  node: Job;
};

/** One failed attempt. */
export type JobError = {
  __typename?: 'JobError';
  at: Scalars['DateTime']['output'];
  attempt: Scalars['Int']['output'];
  /** A stable code, e.g. LEASE_EXPIRED, TIMEOUT, or the handler's own. */
  code: Scalars['String']['output'];
  /** Facts the handler attached, e.g. { url, status } of a failed download. */
  details?: Maybe<Scalars['JSON']['output']>;
  message: Scalars['String']['output'];
  /** False when the handler said retrying cannot help. */
  retriable: Scalars['Boolean']['output'];
  /** The worker that ran the attempt (null for attempts recorded before workers were). */
  workerId?: Maybe<Scalars['String']['output']>;
};

export type JobEventFilter = {
  batchId?: InputMaybe<Scalars['ID']['input']>;
  ownerId?: InputMaybe<Scalars['ID']['input']>;
  /** Only jobs made from this inbound webhook source. */
  source?: InputMaybe<Scalars['String']['input']>;
  status?: InputMaybe<Array<JobStatus>>;
  type?: InputMaybe<Array<Scalars['String']['input']>>;
};

export type JobFilter = {
  batchId?: InputMaybe<Scalars['ID']['input']>;
  createdAfter?: InputMaybe<Scalars['DateTime']['input']>;
  createdBefore?: InputMaybe<Scalars['DateTime']['input']>;
  ownerId?: InputMaybe<Scalars['ID']['input']>;
  /** Only jobs waiting for a retry (true), or only the others (false). */
  retrying?: InputMaybe<Scalars['Boolean']['input']>;
  /** Only jobs made from this inbound webhook source. */
  source?: InputMaybe<Scalars['String']['input']>;
  status?: InputMaybe<Array<JobStatus>>;
  track?: InputMaybe<Scalars['String']['input']>;
  type?: InputMaybe<Array<Scalars['String']['input']>>;
};

export type JobResults = {
  __typename?: 'JobResults';
  /** Everything else the handler returned. */
  data?: Maybe<Scalars['JSON']['output']>;
  files: Array<ResultFile>;
  /** The main Markdown file, when the job type produces one. */
  markdown?: Maybe<MarkdownResult>;
  /** What the handler reports about its input (pages, title, speakers …). */
  metadata?: Maybe<Scalars['JSON']['output']>;
};

/** Where a job is in its life. PROCESSING → PENDING happens on a retry or when a worker's lease ran out. */
export type JobStatus =
  | 'CANCELLED'
  | 'COMPLETED'
  | 'FAILED'
  | 'PENDING'
  | 'PROCESSING';

/** A registered job type. */
export type JobType = {
  __typename?: 'JobType';
  /** Defaults of the type (maxAttempts, timeoutMs, ...). */
  defaults: Scalars['JSON']['output'];
  description?: Maybe<Scalars['String']['output']>;
  name: Scalars['String']['output'];
  /** The parameters' JSON Schema. */
  parameterSchema: Scalars['JSON']['output'];
};

/** One line of a job's own log, written by its handler. */
export type LogEntry = {
  __typename?: 'LogEntry';
  at: Scalars['DateTime']['output'];
  attempt: Scalars['Int']['output'];
  /** debug, info, warn or error. */
  level: Scalars['String']['output'];
  message: Scalars['String']['output'];
  /** Ordered within the store; pass as `after` to read on. */
  seq: Scalars['Int']['output'];
};

/** The job's main Markdown file. */
export type MarkdownResult = {
  __typename?: 'MarkdownResult';
  file: ResultFile;
  /** The Markdown text, cut after at most `maxBytes` bytes of UTF-8 (whole characters only). */
  text: Scalars['String']['output'];
  /** Whether `text(maxBytes)` would be cut at that size. */
  truncated: Scalars['Boolean']['output'];
};


/** The job's main Markdown file. */
export type MarkdownResultTextArgs = {
  maxBytes?: Scalars['Int']['input'];
};


/** The job's main Markdown file. */
export type MarkdownResultTruncatedArgs = {
  maxBytes?: Scalars['Int']['input'];
};

export type Mutation = {
  __typename?: 'Mutation';
  /** Hides (or shows again) a batch in default lists; results stay. Needs write access. */
  archiveBatch: Batch;
  /** Cancels pending jobs and asks running ones to stop. Needs write access. */
  cancelBatch: Batch;
  /** Pending jobs end CANCELLED at once; running ones are asked to stop (cancelRequested). Needs write access. */
  cancelJob: Job;
  /** Deletes a batch and its jobs; refused while any runs. Needs admin access. Returns the id. */
  deleteBatch: Scalars['ID']['output'];
  /** Deletes a job that is not running, with its logs. Needs admin access. Returns the id. */
  deleteJob: Scalars['ID']['output'];
  /** Sends a delivery again (a new attempt with the same webhook-id). Needs write access to its job or batch; CONFLICT while it is queued. */
  redeliverWebhook: Delivery;
  /** Restarts failed jobs (and cancelled ones unless onlyFailed). Needs write access. */
  restartBatch: Batch;
  /** A finished job (completed, failed, cancelled) runs again with a fresh attempt budget. Needs write access. */
  restartJob: Job;
  /** Pauses (false) or resumes (true) claiming of the batch's jobs. Needs write access. */
  setBatchActive: Batch;
  /** Replaces a job's access control. Needs admin access. */
  setJobAccess: Job;
  submitBatch: SubmitBatchPayload;
  submitJob: SubmitJobPayload;
  /**
   * Sends one signed `webhook.test` event to a receiver, the way deliveries are sent (same
   * signing, headers, SSRF guard and timeout), and answers what came back. Settings are
   * checked as on a job. Signed-in callers only, at most webhooks.testsPerMinute a minute.
   */
  testWebhook: WebhookTestResult;
  /** Changes a job that has not started (PENDING, also while retrying); CONFLICT once it runs or ended. Needs write access. */
  updateJob: Job;
};


export type MutationArchiveBatchArgs = {
  archived?: Scalars['Boolean']['input'];
  id: Scalars['ID']['input'];
};


export type MutationCancelBatchArgs = {
  id: Scalars['ID']['input'];
};


export type MutationCancelJobArgs = {
  id: Scalars['ID']['input'];
};


export type MutationDeleteBatchArgs = {
  id: Scalars['ID']['input'];
};


export type MutationDeleteJobArgs = {
  id: Scalars['ID']['input'];
};


export type MutationRedeliverWebhookArgs = {
  id: Scalars['ID']['input'];
};


export type MutationRestartBatchArgs = {
  id: Scalars['ID']['input'];
  onlyFailed?: Scalars['Boolean']['input'];
};


export type MutationRestartJobArgs = {
  id: Scalars['ID']['input'];
};


export type MutationSetBatchActiveArgs = {
  active: Scalars['Boolean']['input'];
  id: Scalars['ID']['input'];
};


export type MutationSetJobAccessArgs = {
  accessControl: AccessControlInput;
  id: Scalars['ID']['input'];
};


export type MutationSubmitBatchArgs = {
  input: SubmitBatchInput;
};


export type MutationSubmitJobArgs = {
  input: SubmitJobInput;
};


export type MutationTestWebhookArgs = {
  headers?: InputMaybe<Scalars['JSON']['input']>;
  secret?: InputMaybe<Scalars['String']['input']>;
  token?: InputMaybe<Scalars['String']['input']>;
  url: Scalars['String']['input'];
};


export type MutationUpdateJobArgs = {
  id: Scalars['ID']['input'];
  input: UpdateJobInput;
};

/** Relay page information. */
export type PageInfo = {
  __typename?: 'PageInfo';
  /** Pass as `after` to read the next page. */
  endCursor?: Maybe<Scalars['String']['output']>;
  hasNextPage: Scalars['Boolean']['output'];
};

export type Progress = {
  __typename?: 'Progress';
  message?: Maybe<Scalars['String']['output']>;
  /** 0 to 100. */
  percent: Scalars['Float']['output'];
  step?: Maybe<Scalars['String']['output']>;
  updatedAt: Scalars['DateTime']['output'];
};

export type Query = {
  __typename?: 'Query';
  /** A batch, or null when it does not exist or the caller may not read it. */
  batch?: Maybe<Batch>;
  /** Batches the caller may read, newest first. */
  batches: BatchConnection;
  /**
   * The newest change's cursor. Read it before your queries and pass it as `after` to a
   * subscription: the subscription then replays what changed since, so nothing between
   * the read and the subscription is missed. An empty string while the store has
   * recorded no change yet: `after: ""` replays from the first change. Signed-in callers
   * only (UNAUTHENTICATED).
   */
  changeCursor: Scalars['String']['output'];
  /** A job, or null when it does not exist or the caller may not read it. */
  job?: Maybe<Job>;
  jobTypes: Array<JobType>;
  /** Jobs the caller may read, newest first. */
  jobs: JobConnection;
  /** Counts and timings over the jobs the caller may read. */
  stats: Stats;
  /** Who the caller is, as the server sees it. */
  viewer: Viewer;
};


export type QueryBatchArgs = {
  id: Scalars['ID']['input'];
};


export type QueryBatchesArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  filter?: InputMaybe<BatchFilter>;
  first?: Scalars['Int']['input'];
};


export type QueryJobArgs = {
  id: Scalars['ID']['input'];
};


export type QueryJobsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  filter?: InputMaybe<JobFilter>;
  first?: Scalars['Int']['input'];
};


export type QueryStatsArgs = {
  filter?: InputMaybe<StatsFilter>;
};

/** A file a job produced, reachable by a signed URL. */
export type ResultFile = {
  __typename?: 'ResultFile';
  contentType: Scalars['String']['output'];
  /** From the content type: markdown, image, pdf, audio, video, json or other. */
  kind: Scalars['String']['output'];
  /** Path inside the job's folder, e.g. `talk.md` or `assets/figure-1.png`. */
  name: Scalars['String']['output'];
  /** Hex SHA-256 of the content (also the file's ETag). */
  sha256: Scalars['String']['output'];
  /** Size in bytes. */
  size: Scalars['Float']['output'];
  /** Signed URL that works without credentials for `results.urlTtl` seconds. */
  url: Scalars['String']['output'];
};

/** One run of the retention sweep (retention.* and uploads.ttlHours). */
export type RetentionSweep = {
  __typename?: 'RetentionSweep';
  at: Scalars['DateTime']['output'];
  /** Change events deleted. */
  changes: Scalars['Int']['output'];
  /** Jobs deleted with their logs, deliveries and result files. */
  jobs: Scalars['Int']['output'];
  /** Unused uploads deleted. */
  uploads: Scalars['Int']['output'];
};

export type Stats = {
  __typename?: 'Stats';
  /** Run time (start to finish) of the jobs finished in the last hour. */
  avgDurationMs?: Maybe<Scalars['Float']['output']>;
  /** Batches the caller may read (archived ones left out). */
  batches: BatchStats;
  byStatus: StatusCounts;
  byTrack: Array<GroupCounts>;
  byType: Array<GroupCounts>;
  /** Jobs that reused the results of an identical completed job (result cache) instead of running. */
  cachedJobs: Scalars['Int']['output'];
  /** Jobs that finished in the last hour. */
  finishedLastHour: Scalars['Int']['output'];
  /** Inbound webhook counters of the sources whose jobs you may see (admins see all). */
  ingest: Array<IngestSourceStats>;
  /** What this API process's last retention sweep deleted; null before the first one. */
  lastRetentionSweep?: Maybe<RetentionSweep>;
  p95DurationMs?: Maybe<Scalars['Float']['output']>;
  /** Pending jobs whose runAt has come. */
  queueDepth: Scalars['Int']['output'];
  /** Jobs finished per minute over the last hour. */
  throughputPerMinute: Scalars['Float']['output'];
};

export type StatsFilter = {
  batchId?: InputMaybe<Scalars['ID']['input']>;
  ownerId?: InputMaybe<Scalars['ID']['input']>;
  type?: InputMaybe<Scalars['String']['input']>;
};

export type StatusCounts = {
  __typename?: 'StatusCounts';
  cancelled: Scalars['Int']['output'];
  completed: Scalars['Int']['output'];
  failed: Scalars['Int']['output'];
  pending: Scalars['Int']['output'];
  processing: Scalars['Int']['output'];
  total: Scalars['Int']['output'];
};

export type SubmitBatchInput = {
  accessControl?: InputMaybe<AccessControlInput>;
  /** False creates the batch paused. */
  active?: InputMaybe<Scalars['Boolean']['input']>;
  /** As SubmitJobInput.forceRefresh, for every job of the batch. */
  forceRefresh?: InputMaybe<Scalars['Boolean']['input']>;
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  /** At most limits.maxBatchSize jobs, inserted atomically: all of them or none. */
  jobs: Array<BatchJobInput>;
  metadata?: InputMaybe<Scalars['JSON']['input']>;
  name: Scalars['String']['input'];
  /** Parameters every job shares; a job's own parameters win field by field. Each job is checked with the merged set. */
  parameters?: InputMaybe<Scalars['JSON']['input']>;
  /** As SubmitJobInput.useCache, for every job of the batch. */
  useCache?: InputMaybe<Scalars['Boolean']['input']>;
  webhook?: InputMaybe<WebhookInput>;
};

export type SubmitBatchPayload = {
  __typename?: 'SubmitBatchPayload';
  batch: Batch;
  created: Scalars['Boolean']['output'];
};

export type SubmitJobInput = {
  /** Default: PRIVATE, no ACL entries. */
  accessControl?: InputMaybe<AccessControlInput>;
  /** Your own reference (at most 200 printable characters), echoed in the job's webhook payloads. */
  correlationId?: InputMaybe<Scalars['String']['input']>;
  /** Run the handler even when a cached result exists. */
  forceRefresh?: InputMaybe<Scalars['Boolean']['input']>;
  /** The same key with the same input returns the same job; with other input it is a CONFLICT. At most 200 printable characters. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  /** Attempt budget; default from the type or worker.maxAttempts. */
  maxAttempts?: InputMaybe<Scalars['Int']['input']>;
  /** Checked against the type's parameter schema before anything is stored. */
  parameters?: InputMaybe<Scalars['JSON']['input']>;
  priority?: InputMaybe<Scalars['Int']['input']>;
  /** Do not start before this time. */
  runAt?: InputMaybe<Scalars['DateTime']['input']>;
  /** A registered job type (see Query.jobTypes). */
  type: Scalars['String']['input'];
  /** Reuse the results of an identical completed job you may read (same type and parameters). Default: results.cacheByDefault. */
  useCache?: InputMaybe<Scalars['Boolean']['input']>;
  webhook?: InputMaybe<WebhookInput>;
};

export type SubmitJobPayload = {
  __typename?: 'SubmitJobPayload';
  /** False when an idempotency key matched an earlier identical submit. */
  created: Scalars['Boolean']['output'];
  job: Job;
};

export type Subscription = {
  __typename?: 'Subscription';
  /** The batch's current state (op SNAPSHOT), then every change of its counts and status. With `after`, what was missed first. */
  batchUpdated: BatchChange;
  /** Deliveries of a job (jobId) or a batch and its jobs (batchId): each existing one (SNAPSHOT), then every change. */
  deliveryUpdated: DeliveryChange;
  /** Changes of every job the caller may read that matches the filter, from now (or after `after`). */
  jobEvents: JobChange;
  /** The job's log so far (after the given seq), then each new line. */
  jobLogs: LogEntry;
  /** The job's current state (op SNAPSHOT), then every change. With `after`, first what was missed since that cursor. */
  jobUpdated: JobChange;
};


export type SubscriptionBatchUpdatedArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
};


export type SubscriptionDeliveryUpdatedArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  batchId?: InputMaybe<Scalars['ID']['input']>;
  jobId?: InputMaybe<Scalars['ID']['input']>;
};


export type SubscriptionJobEventsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  filter?: InputMaybe<JobEventFilter>;
};


export type SubscriptionJobLogsArgs = {
  after?: InputMaybe<Scalars['Int']['input']>;
  id: Scalars['ID']['input'];
};


export type SubscriptionJobUpdatedArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
};

/** Changes to a PENDING job; fields left out stay as they are. */
export type UpdateJobInput = {
  /** Must leave room for another attempt (more than the attempts already used). */
  maxAttempts?: InputMaybe<Scalars['Int']['input']>;
  /** Replaces the parameters; checked against the type's schema. */
  parameters?: InputMaybe<Scalars['JSON']['input']>;
  priority?: InputMaybe<Scalars['Int']['input']>;
  runAt?: InputMaybe<Scalars['DateTime']['input']>;
};

/** What a job's attempts reported using (handlers call ctx.usage()), summed over attempts. */
export type Usage = {
  __typename?: 'Usage';
  /** In US dollars. */
  costUsd: Scalars['Float']['output'];
  inputTokens: Scalars['Float']['output'];
  /** The models named in the reports. */
  models: Array<Scalars['String']['output']>;
  outputTokens: Scalars['Float']['output'];
  tokens: Scalars['Float']['output'];
};

/** The calling principal. */
export type Viewer = {
  __typename?: 'Viewer';
  admin: Scalars['Boolean']['output'];
  /** The server's auth mode: header, apiKey or jwt. */
  authMode: Scalars['String']['output'];
  authenticated: Scalars['Boolean']['output'];
  teams: Array<Scalars['ID']['output']>;
  /** Null for anonymous callers. */
  userId?: Maybe<Scalars['ID']['output']>;
};

export type Visibility =
  /** Only the owner, the ACL lists and admins. */
  | 'PRIVATE'
  /** Everyone, including anonymous callers (read only). */
  | 'PUBLIC'
  /** Also members of the resource's teams (read only). */
  | 'TEAM';

/** Webhook settings as stored. The secret and token are write-only: only whether they are set shows. */
export type WebhookInfo = {
  __typename?: 'WebhookInfo';
  /** Events sent; null means all. */
  events?: Maybe<Array<Scalars['String']['output']>>;
  hasSecret: Scalars['Boolean']['output'];
  hasToken: Scalars['Boolean']['output'];
  /** Names of the extra headers (values are not shown). */
  headerNames: Array<Scalars['String']['output']>;
  includeMarkdown: Scalars['Boolean']['output'];
  includeMetadata: Scalars['Boolean']['output'];
  url: Scalars['String']['output'];
};

/**
 * Where to send a callback when a job (or batch) finishes. The secret and token are
 * write-only: no query ever returns them.
 */
export type WebhookInput = {
  /** Which events to send; default all: job.completed, job.failed, job.cancelled, batch.completed. */
  events?: InputMaybe<Array<Scalars['String']['input']>>;
  /** Extra request headers. */
  headers?: InputMaybe<Scalars['JSON']['input']>;
  /** Put the Markdown result text into the payload. */
  includeMarkdown?: InputMaybe<Scalars['Boolean']['input']>;
  /** Put the result metadata into the payload. */
  includeMetadata?: InputMaybe<Scalars['Boolean']['input']>;
  /** Standard Webhooks signing secret, whsec_<base64>. */
  secret?: InputMaybe<Scalars['String']['input']>;
  /** Sent as Authorization: Bearer <token> and X-Callback-Token. */
  token?: InputMaybe<Scalars['String']['input']>;
  /** https URL of the receiver (http only where webhooks.allowHttp is true). */
  url: Scalars['String']['input'];
};

/**
 * What a receiver did with a `webhook.test` event. Nothing is stored: the same request
 * again sends another test.
 */
export type WebhookTestResult = {
  __typename?: 'WebhookTestResult';
  at: Scalars['DateTime']['output'];
  durationMs: Scalars['Int']['output'];
  /** HTTP_<status>, TIMEOUT, ECONNREFUSED, TARGET_FORBIDDEN, ...; null on success. */
  error?: Maybe<Scalars['String']['output']>;
  /** True when the receiver answered 2xx. */
  ok: Scalars['Boolean']['output'];
  /** The first 1 KB of the receiver's answer. */
  responseSnippet?: Maybe<Scalars['String']['output']>;
  /** HTTP status; null when no answer came (network error, timeout, refused target). */
  statusCode?: Maybe<Scalars['Int']['output']>;
  /** The webhook-id the test was sent with. */
  webhookId: Scalars['String']['output'];
};

export type WithIndex<TObject> = TObject & Record<string, any>;
export type ResolversObject<TObject> = WithIndex<TObject>;

export type ResolverTypeWrapper<T> = Promise<T> | T;


export type ResolverWithResolve<TResult, TParent, TContext, TArgs> = {
  resolve: ResolverFn<TResult, TParent, TContext, TArgs>;
};
export type Resolver<TResult, TParent = Record<PropertyKey, never>, TContext = Record<PropertyKey, never>, TArgs = Record<PropertyKey, never>> = ResolverFn<TResult, TParent, TContext, TArgs> | ResolverWithResolve<TResult, TParent, TContext, TArgs>;

export type ResolverFn<TResult, TParent, TContext, TArgs> = (
  parent: TParent,
  args: TArgs,
  context: TContext,
  info: GraphQLResolveInfo
) => Promise<TResult> | TResult;

export type SubscriptionSubscribeFn<TResult, TParent, TContext, TArgs> = (
  parent: TParent,
  args: TArgs,
  context: TContext,
  info: GraphQLResolveInfo
) => AsyncIterable<TResult> | Promise<AsyncIterable<TResult>>;

export type SubscriptionResolveFn<TResult, TParent, TContext, TArgs> = (
  parent: TParent,
  args: TArgs,
  context: TContext,
  info: GraphQLResolveInfo
) => TResult | Promise<TResult>;

export interface SubscriptionSubscriberObject<TResult, TKey extends string, TParent, TContext, TArgs> {
  subscribe: SubscriptionSubscribeFn<{ [key in TKey]: TResult }, TParent, TContext, TArgs>;
  resolve?: SubscriptionResolveFn<TResult, { [key in TKey]: TResult }, TContext, TArgs>;
}

export interface SubscriptionResolverObject<TResult, TParent, TContext, TArgs> {
  subscribe: SubscriptionSubscribeFn<any, TParent, TContext, TArgs>;
  resolve: SubscriptionResolveFn<TResult, any, TContext, TArgs>;
}

export type SubscriptionObject<TResult, TKey extends string, TParent, TContext, TArgs> =
  | SubscriptionSubscriberObject<TResult, TKey, TParent, TContext, TArgs>
  | SubscriptionResolverObject<TResult, TParent, TContext, TArgs>;

export type SubscriptionResolver<TResult, TKey extends string, TParent = Record<PropertyKey, never>, TContext = Record<PropertyKey, never>, TArgs = Record<PropertyKey, never>> =
  | ((...args: any[]) => SubscriptionObject<TResult, TKey, TParent, TContext, TArgs>)
  | SubscriptionObject<TResult, TKey, TParent, TContext, TArgs>;

export type TypeResolveFn<TTypes, TParent = Record<PropertyKey, never>, TContext = Record<PropertyKey, never>> = (
  parent: TParent,
  context: TContext,
  info: GraphQLResolveInfo
) => Maybe<TTypes> | Promise<Maybe<TTypes>>;

export type IsTypeOfResolverFn<T = Record<PropertyKey, never>, TContext = Record<PropertyKey, never>> = (obj: T, context: TContext, info: GraphQLResolveInfo) => boolean | Promise<boolean>;

export type NextResolverFn<T> = () => Promise<T>;

export type DirectiveResolverFn<TResult = Record<PropertyKey, never>, TParent = Record<PropertyKey, never>, TContext = Record<PropertyKey, never>, TArgs = Record<PropertyKey, never>> = (
  next: NextResolverFn<TResult>,
  parent: TParent,
  args: TArgs,
  context: TContext,
  info: GraphQLResolveInfo
) => TResult | Promise<TResult>;





/** Mapping between all available schema types and the resolvers types */
export type ResolversTypes = ResolversObject<{
  AccessControl: ResolverTypeWrapper<AccessControl>;
  AccessControlInput: AccessControlInput;
  Batch: ResolverTypeWrapper<BatchRecord>;
  BatchChange: ResolverTypeWrapper<BatchChangeModel>;
  BatchConnection: ResolverTypeWrapper<BatchConnectionModel>;
  BatchCounts: ResolverTypeWrapper<BatchCounts>;
  BatchEdge: ResolverTypeWrapper<Omit<BatchEdge, 'node'> & { node: ResolversTypes['Batch'] }>;
  BatchFilter: BatchFilter;
  BatchJobInput: BatchJobInput;
  BatchStats: ResolverTypeWrapper<BatchStats>;
  BatchStatus: BatchStatus;
  BatchSummary: ResolverTypeWrapper<BatchSummary>;
  Boolean: ResolverTypeWrapper<Scalars['Boolean']['output']>;
  ChangeOp: ChangeOp;
  DateTime: ResolverTypeWrapper<Scalars['DateTime']['output']>;
  Delivery: ResolverTypeWrapper<DeliveryRecord>;
  DeliveryAttempt: ResolverTypeWrapper<DeliveryAttempt>;
  DeliveryChange: ResolverTypeWrapper<DeliveryChangeModel>;
  DeliveryStatus: DeliveryStatus;
  Float: ResolverTypeWrapper<Scalars['Float']['output']>;
  GroupCounts: ResolverTypeWrapper<GroupCounts>;
  ID: ResolverTypeWrapper<Scalars['ID']['output']>;
  IngestOrigin: ResolverTypeWrapper<IngestOrigin>;
  IngestSourceStats: ResolverTypeWrapper<IngestSourceStats>;
  Int: ResolverTypeWrapper<Scalars['Int']['output']>;
  JSON: ResolverTypeWrapper<Scalars['JSON']['output']>;
  Job: ResolverTypeWrapper<JobRecord>;
  JobChange: ResolverTypeWrapper<JobChangeModel>;
  JobConnection: ResolverTypeWrapper<JobConnectionModel>;
  JobEdge: ResolverTypeWrapper<Omit<JobEdge, 'node'> & { node: ResolversTypes['Job'] }>;
  JobError: ResolverTypeWrapper<JobError>;
  JobEventFilter: JobEventFilter;
  JobFilter: JobFilter;
  JobResults: ResolverTypeWrapper<JobResultsModel>;
  JobStatus: JobStatus;
  JobType: ResolverTypeWrapper<JobTypeInfo>;
  LogEntry: ResolverTypeWrapper<LogEntryRecord>;
  MarkdownResult: ResolverTypeWrapper<MarkdownModel>;
  Mutation: ResolverTypeWrapper<Record<PropertyKey, never>>;
  PageInfo: ResolverTypeWrapper<PageInfo>;
  Progress: ResolverTypeWrapper<Progress>;
  Query: ResolverTypeWrapper<Record<PropertyKey, never>>;
  ResultFile: ResolverTypeWrapper<ResultFileModel>;
  RetentionSweep: ResolverTypeWrapper<RetentionSweep>;
  Stats: ResolverTypeWrapper<StatsModel>;
  StatsFilter: StatsFilter;
  StatusCounts: ResolverTypeWrapper<StatusCounts>;
  String: ResolverTypeWrapper<Scalars['String']['output']>;
  SubmitBatchInput: SubmitBatchInput;
  SubmitBatchPayload: ResolverTypeWrapper<Omit<SubmitBatchPayload, 'batch'> & { batch: ResolversTypes['Batch'] }>;
  SubmitJobInput: SubmitJobInput;
  SubmitJobPayload: ResolverTypeWrapper<Omit<SubmitJobPayload, 'job'> & { job: ResolversTypes['Job'] }>;
  Subscription: ResolverTypeWrapper<Record<PropertyKey, never>>;
  UpdateJobInput: UpdateJobInput;
  Usage: ResolverTypeWrapper<Usage>;
  Viewer: ResolverTypeWrapper<PrincipalRecord>;
  Visibility: Visibility;
  WebhookInfo: ResolverTypeWrapper<WebhookInfo>;
  WebhookInput: WebhookInput;
  WebhookTestResult: ResolverTypeWrapper<WebhookTestResult>;
}>;

/** Mapping between all available schema types and the resolvers parents */
export type ResolversParentTypes = ResolversObject<{
  AccessControl: AccessControl;
  AccessControlInput: AccessControlInput;
  Batch: BatchRecord;
  BatchChange: BatchChangeModel;
  BatchConnection: BatchConnectionModel;
  BatchCounts: BatchCounts;
  BatchEdge: Omit<BatchEdge, 'node'> & { node: ResolversParentTypes['Batch'] };
  BatchFilter: BatchFilter;
  BatchJobInput: BatchJobInput;
  BatchStats: BatchStats;
  BatchSummary: BatchSummary;
  Boolean: Scalars['Boolean']['output'];
  DateTime: Scalars['DateTime']['output'];
  Delivery: DeliveryRecord;
  DeliveryAttempt: DeliveryAttempt;
  DeliveryChange: DeliveryChangeModel;
  Float: Scalars['Float']['output'];
  GroupCounts: GroupCounts;
  ID: Scalars['ID']['output'];
  IngestOrigin: IngestOrigin;
  IngestSourceStats: IngestSourceStats;
  Int: Scalars['Int']['output'];
  JSON: Scalars['JSON']['output'];
  Job: JobRecord;
  JobChange: JobChangeModel;
  JobConnection: JobConnectionModel;
  JobEdge: Omit<JobEdge, 'node'> & { node: ResolversParentTypes['Job'] };
  JobError: JobError;
  JobEventFilter: JobEventFilter;
  JobFilter: JobFilter;
  JobResults: JobResultsModel;
  JobType: JobTypeInfo;
  LogEntry: LogEntryRecord;
  MarkdownResult: MarkdownModel;
  Mutation: Record<PropertyKey, never>;
  PageInfo: PageInfo;
  Progress: Progress;
  Query: Record<PropertyKey, never>;
  ResultFile: ResultFileModel;
  RetentionSweep: RetentionSweep;
  Stats: StatsModel;
  StatsFilter: StatsFilter;
  StatusCounts: StatusCounts;
  String: Scalars['String']['output'];
  SubmitBatchInput: SubmitBatchInput;
  SubmitBatchPayload: Omit<SubmitBatchPayload, 'batch'> & { batch: ResolversParentTypes['Batch'] };
  SubmitJobInput: SubmitJobInput;
  SubmitJobPayload: Omit<SubmitJobPayload, 'job'> & { job: ResolversParentTypes['Job'] };
  Subscription: Record<PropertyKey, never>;
  UpdateJobInput: UpdateJobInput;
  Usage: Usage;
  Viewer: PrincipalRecord;
  WebhookInfo: WebhookInfo;
  WebhookInput: WebhookInput;
  WebhookTestResult: WebhookTestResult;
}>;

export type AccessControlResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['AccessControl'] = ResolversParentTypes['AccessControl']> = ResolversObject<{
  admin?: Resolver<Array<ResolversTypes['String']>, ParentType, ContextType>;
  read?: Resolver<Array<ResolversTypes['String']>, ParentType, ContextType>;
  visibility?: Resolver<ResolversTypes['Visibility'], ParentType, ContextType>;
  write?: Resolver<Array<ResolversTypes['String']>, ParentType, ContextType>;
}>;

export type BatchResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Batch'] = ResolversParentTypes['Batch']> = ResolversObject<{
  accessControl?: Resolver<ResolversTypes['AccessControl'], ParentType, ContextType>;
  active?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  archiveUrl?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  archived?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  counts?: Resolver<ResolversTypes['BatchCounts'], ParentType, ContextType>;
  createdAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  deliveries?: Resolver<Array<ResolversTypes['Delivery']>, ParentType, ContextType>;
  finishedAt?: Resolver<Maybe<ResolversTypes['DateTime']>, ParentType, ContextType>;
  id?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  jobs?: Resolver<ResolversTypes['JobConnection'], ParentType, ContextType, RequireFields<BatchJobsArgs, 'first'>>;
  metadata?: Resolver<Maybe<ResolversTypes['JSON']>, ParentType, ContextType>;
  name?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  ownerId?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  status?: Resolver<ResolversTypes['BatchStatus'], ParentType, ContextType>;
  summary?: Resolver<ResolversTypes['BatchSummary'], ParentType, ContextType>;
  teamIds?: Resolver<Array<ResolversTypes['ID']>, ParentType, ContextType>;
  updatedAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  version?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  webhook?: Resolver<Maybe<ResolversTypes['WebhookInfo']>, ParentType, ContextType>;
}>;

export type BatchChangeResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['BatchChange'] = ResolversParentTypes['BatchChange']> = ResolversObject<{
  active?: Resolver<Maybe<ResolversTypes['Boolean']>, ParentType, ContextType>;
  archived?: Resolver<Maybe<ResolversTypes['Boolean']>, ParentType, ContextType>;
  at?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  batch?: Resolver<Maybe<ResolversTypes['Batch']>, ParentType, ContextType>;
  batchId?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  counts?: Resolver<Maybe<ResolversTypes['BatchCounts']>, ParentType, ContextType>;
  cursor?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  job?: Resolver<Maybe<ResolversTypes['JobChange']>, ParentType, ContextType>;
  op?: Resolver<ResolversTypes['ChangeOp'], ParentType, ContextType>;
  status?: Resolver<Maybe<ResolversTypes['BatchStatus']>, ParentType, ContextType>;
  version?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type BatchConnectionResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['BatchConnection'] = ResolversParentTypes['BatchConnection']> = ResolversObject<{
  edges?: Resolver<Array<ResolversTypes['BatchEdge']>, ParentType, ContextType>;
  pageInfo?: Resolver<ResolversTypes['PageInfo'], ParentType, ContextType>;
  totalCount?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type BatchCountsResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['BatchCounts'] = ResolversParentTypes['BatchCounts']> = ResolversObject<{
  cancelled?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  completed?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  failed?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  pending?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  processing?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  total?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type BatchEdgeResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['BatchEdge'] = ResolversParentTypes['BatchEdge']> = ResolversObject<{
  cursor?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  node?: Resolver<ResolversTypes['Batch'], ParentType, ContextType>;
}>;

export type BatchStatsResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['BatchStats'] = ResolversParentTypes['BatchStats']> = ResolversObject<{
  active?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  processing?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  total?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type BatchSummaryResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['BatchSummary'] = ResolversParentTypes['BatchSummary']> = ResolversObject<{
  costUsd?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
  durationMs?: Resolver<Maybe<ResolversTypes['Float']>, ParentType, ContextType>;
  firstStartedAt?: Resolver<Maybe<ResolversTypes['DateTime']>, ParentType, ContextType>;
  jobsPerMinute?: Resolver<Maybe<ResolversTypes['Float']>, ParentType, ContextType>;
  lastFinishedAt?: Resolver<Maybe<ResolversTypes['DateTime']>, ParentType, ContextType>;
  tokens?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
}>;

export interface DateTimeScalarConfig extends GraphQLScalarTypeConfig<ResolversTypes['DateTime'], any> {
  name: 'DateTime';
}

export type DeliveryResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Delivery'] = ResolversParentTypes['Delivery']> = ResolversObject<{
  attempts?: Resolver<Array<ResolversTypes['DeliveryAttempt']>, ParentType, ContextType>;
  batchId?: Resolver<Maybe<ResolversTypes['ID']>, ParentType, ContextType>;
  createdAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  event?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  id?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  jobId?: Resolver<Maybe<ResolversTypes['ID']>, ParentType, ContextType>;
  nextAttemptAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  status?: Resolver<ResolversTypes['DeliveryStatus'], ParentType, ContextType>;
  updatedAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  url?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
}>;

export type DeliveryAttemptResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['DeliveryAttempt'] = ResolversParentTypes['DeliveryAttempt']> = ResolversObject<{
  at?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  durationMs?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  error?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  responseSnippet?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  statusCode?: Resolver<Maybe<ResolversTypes['Int']>, ParentType, ContextType>;
}>;

export type DeliveryChangeResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['DeliveryChange'] = ResolversParentTypes['DeliveryChange']> = ResolversObject<{
  batchId?: Resolver<Maybe<ResolversTypes['ID']>, ParentType, ContextType>;
  cursor?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  delivery?: Resolver<Maybe<ResolversTypes['Delivery']>, ParentType, ContextType>;
  deliveryId?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  event?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  jobId?: Resolver<Maybe<ResolversTypes['ID']>, ParentType, ContextType>;
  op?: Resolver<ResolversTypes['ChangeOp'], ParentType, ContextType>;
  status?: Resolver<Maybe<ResolversTypes['DeliveryStatus']>, ParentType, ContextType>;
}>;

export type GroupCountsResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['GroupCounts'] = ResolversParentTypes['GroupCounts']> = ResolversObject<{
  cancelled?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  completed?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  failed?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  key?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  pending?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  processing?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  total?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type IngestOriginResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['IngestOrigin'] = ResolversParentTypes['IngestOrigin']> = ResolversObject<{
  deliveryId?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  event?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  source?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
}>;

export type IngestSourceStatsResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['IngestSourceStats'] = ResolversParentTypes['IngestSourceStats']> = ResolversObject<{
  accepted?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  duplicate?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  ignored?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  kind?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  received?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  rejected?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  source?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  verified?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export interface JsonScalarConfig extends GraphQLScalarTypeConfig<ResolversTypes['JSON'], any> {
  name: 'JSON';
}

export type JobResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Job'] = ResolversParentTypes['Job']> = ResolversObject<{
  accessControl?: Resolver<ResolversTypes['AccessControl'], ParentType, ContextType>;
  archiveUrl?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  attempts?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  batch?: Resolver<Maybe<ResolversTypes['Batch']>, ParentType, ContextType>;
  cached?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  cachedFrom?: Resolver<Maybe<ResolversTypes['ID']>, ParentType, ContextType>;
  cancelRequested?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  correlationId?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  createdAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  deliveries?: Resolver<Array<ResolversTypes['Delivery']>, ParentType, ContextType>;
  durationMs?: Resolver<Maybe<ResolversTypes['Float']>, ParentType, ContextType>;
  error?: Resolver<Maybe<ResolversTypes['JobError']>, ParentType, ContextType>;
  errors?: Resolver<Array<ResolversTypes['JobError']>, ParentType, ContextType>;
  finishedAt?: Resolver<Maybe<ResolversTypes['DateTime']>, ParentType, ContextType>;
  id?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  ingest?: Resolver<Maybe<ResolversTypes['IngestOrigin']>, ParentType, ContextType>;
  logs?: Resolver<Array<ResolversTypes['LogEntry']>, ParentType, ContextType, RequireFields<JobLogsArgs, 'first'>>;
  maxAttempts?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  nextAttemptAt?: Resolver<Maybe<ResolversTypes['DateTime']>, ParentType, ContextType>;
  ownerId?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  parameters?: Resolver<ResolversTypes['JSON'], ParentType, ContextType>;
  priority?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  progress?: Resolver<Maybe<ResolversTypes['Progress']>, ParentType, ContextType>;
  results?: Resolver<Maybe<ResolversTypes['JobResults']>, ParentType, ContextType>;
  retrying?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  runAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  startedAt?: Resolver<Maybe<ResolversTypes['DateTime']>, ParentType, ContextType>;
  status?: Resolver<ResolversTypes['JobStatus'], ParentType, ContextType>;
  teamIds?: Resolver<Array<ResolversTypes['ID']>, ParentType, ContextType>;
  track?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  type?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  updatedAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  usage?: Resolver<Maybe<ResolversTypes['Usage']>, ParentType, ContextType>;
  version?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  webhook?: Resolver<Maybe<ResolversTypes['WebhookInfo']>, ParentType, ContextType>;
  workerId?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
}>;

export type JobChangeResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['JobChange'] = ResolversParentTypes['JobChange']> = ResolversObject<{
  at?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  attempts?: Resolver<Maybe<ResolversTypes['Int']>, ParentType, ContextType>;
  batchId?: Resolver<Maybe<ResolversTypes['ID']>, ParentType, ContextType>;
  cancelRequested?: Resolver<Maybe<ResolversTypes['Boolean']>, ParentType, ContextType>;
  cursor?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  job?: Resolver<Maybe<ResolversTypes['Job']>, ParentType, ContextType>;
  jobId?: Resolver<ResolversTypes['ID'], ParentType, ContextType>;
  op?: Resolver<ResolversTypes['ChangeOp'], ParentType, ContextType>;
  progress?: Resolver<Maybe<ResolversTypes['Progress']>, ParentType, ContextType>;
  status?: Resolver<Maybe<ResolversTypes['JobStatus']>, ParentType, ContextType>;
  version?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type JobConnectionResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['JobConnection'] = ResolversParentTypes['JobConnection']> = ResolversObject<{
  edges?: Resolver<Array<ResolversTypes['JobEdge']>, ParentType, ContextType>;
  pageInfo?: Resolver<ResolversTypes['PageInfo'], ParentType, ContextType>;
  totalCount?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type JobEdgeResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['JobEdge'] = ResolversParentTypes['JobEdge']> = ResolversObject<{
  cursor?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  node?: Resolver<ResolversTypes['Job'], ParentType, ContextType>;
}>;

export type JobErrorResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['JobError'] = ResolversParentTypes['JobError']> = ResolversObject<{
  at?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  attempt?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  code?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  details?: Resolver<Maybe<ResolversTypes['JSON']>, ParentType, ContextType>;
  message?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  retriable?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  workerId?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
}>;

export type JobResultsResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['JobResults'] = ResolversParentTypes['JobResults']> = ResolversObject<{
  data?: Resolver<Maybe<ResolversTypes['JSON']>, ParentType, ContextType>;
  files?: Resolver<Array<ResolversTypes['ResultFile']>, ParentType, ContextType>;
  markdown?: Resolver<Maybe<ResolversTypes['MarkdownResult']>, ParentType, ContextType>;
  metadata?: Resolver<Maybe<ResolversTypes['JSON']>, ParentType, ContextType>;
}>;

export type JobTypeResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['JobType'] = ResolversParentTypes['JobType']> = ResolversObject<{
  defaults?: Resolver<ResolversTypes['JSON'], ParentType, ContextType>;
  description?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  name?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  parameterSchema?: Resolver<ResolversTypes['JSON'], ParentType, ContextType>;
}>;

export type LogEntryResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['LogEntry'] = ResolversParentTypes['LogEntry']> = ResolversObject<{
  at?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  attempt?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  level?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  message?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  seq?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type MarkdownResultResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['MarkdownResult'] = ResolversParentTypes['MarkdownResult']> = ResolversObject<{
  file?: Resolver<ResolversTypes['ResultFile'], ParentType, ContextType>;
  text?: Resolver<ResolversTypes['String'], ParentType, ContextType, RequireFields<MarkdownResultTextArgs, 'maxBytes'>>;
  truncated?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType, RequireFields<MarkdownResultTruncatedArgs, 'maxBytes'>>;
}>;

export type MutationResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Mutation'] = ResolversParentTypes['Mutation']> = ResolversObject<{
  archiveBatch?: Resolver<ResolversTypes['Batch'], ParentType, ContextType, RequireFields<MutationArchiveBatchArgs, 'archived' | 'id'>>;
  cancelBatch?: Resolver<ResolversTypes['Batch'], ParentType, ContextType, RequireFields<MutationCancelBatchArgs, 'id'>>;
  cancelJob?: Resolver<ResolversTypes['Job'], ParentType, ContextType, RequireFields<MutationCancelJobArgs, 'id'>>;
  deleteBatch?: Resolver<ResolversTypes['ID'], ParentType, ContextType, RequireFields<MutationDeleteBatchArgs, 'id'>>;
  deleteJob?: Resolver<ResolversTypes['ID'], ParentType, ContextType, RequireFields<MutationDeleteJobArgs, 'id'>>;
  redeliverWebhook?: Resolver<ResolversTypes['Delivery'], ParentType, ContextType, RequireFields<MutationRedeliverWebhookArgs, 'id'>>;
  restartBatch?: Resolver<ResolversTypes['Batch'], ParentType, ContextType, RequireFields<MutationRestartBatchArgs, 'id' | 'onlyFailed'>>;
  restartJob?: Resolver<ResolversTypes['Job'], ParentType, ContextType, RequireFields<MutationRestartJobArgs, 'id'>>;
  setBatchActive?: Resolver<ResolversTypes['Batch'], ParentType, ContextType, RequireFields<MutationSetBatchActiveArgs, 'active' | 'id'>>;
  setJobAccess?: Resolver<ResolversTypes['Job'], ParentType, ContextType, RequireFields<MutationSetJobAccessArgs, 'accessControl' | 'id'>>;
  submitBatch?: Resolver<ResolversTypes['SubmitBatchPayload'], ParentType, ContextType, RequireFields<MutationSubmitBatchArgs, 'input'>>;
  submitJob?: Resolver<ResolversTypes['SubmitJobPayload'], ParentType, ContextType, RequireFields<MutationSubmitJobArgs, 'input'>>;
  testWebhook?: Resolver<ResolversTypes['WebhookTestResult'], ParentType, ContextType, RequireFields<MutationTestWebhookArgs, 'url'>>;
  updateJob?: Resolver<ResolversTypes['Job'], ParentType, ContextType, RequireFields<MutationUpdateJobArgs, 'id' | 'input'>>;
}>;

export type PageInfoResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['PageInfo'] = ResolversParentTypes['PageInfo']> = ResolversObject<{
  endCursor?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  hasNextPage?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
}>;

export type ProgressResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Progress'] = ResolversParentTypes['Progress']> = ResolversObject<{
  message?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  percent?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
  step?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  updatedAt?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
}>;

export type QueryResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Query'] = ResolversParentTypes['Query']> = ResolversObject<{
  batch?: Resolver<Maybe<ResolversTypes['Batch']>, ParentType, ContextType, RequireFields<QueryBatchArgs, 'id'>>;
  batches?: Resolver<ResolversTypes['BatchConnection'], ParentType, ContextType, RequireFields<QueryBatchesArgs, 'first'>>;
  changeCursor?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  job?: Resolver<Maybe<ResolversTypes['Job']>, ParentType, ContextType, RequireFields<QueryJobArgs, 'id'>>;
  jobTypes?: Resolver<Array<ResolversTypes['JobType']>, ParentType, ContextType>;
  jobs?: Resolver<ResolversTypes['JobConnection'], ParentType, ContextType, RequireFields<QueryJobsArgs, 'first'>>;
  stats?: Resolver<ResolversTypes['Stats'], ParentType, ContextType, Partial<QueryStatsArgs>>;
  viewer?: Resolver<ResolversTypes['Viewer'], ParentType, ContextType>;
}>;

export type ResultFileResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['ResultFile'] = ResolversParentTypes['ResultFile']> = ResolversObject<{
  contentType?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  kind?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  name?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  sha256?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  size?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
  url?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
}>;

export type RetentionSweepResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['RetentionSweep'] = ResolversParentTypes['RetentionSweep']> = ResolversObject<{
  at?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  changes?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  jobs?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  uploads?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type StatsResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Stats'] = ResolversParentTypes['Stats']> = ResolversObject<{
  avgDurationMs?: Resolver<Maybe<ResolversTypes['Float']>, ParentType, ContextType>;
  batches?: Resolver<ResolversTypes['BatchStats'], ParentType, ContextType>;
  byStatus?: Resolver<ResolversTypes['StatusCounts'], ParentType, ContextType>;
  byTrack?: Resolver<Array<ResolversTypes['GroupCounts']>, ParentType, ContextType>;
  byType?: Resolver<Array<ResolversTypes['GroupCounts']>, ParentType, ContextType>;
  cachedJobs?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  finishedLastHour?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  ingest?: Resolver<Array<ResolversTypes['IngestSourceStats']>, ParentType, ContextType>;
  lastRetentionSweep?: Resolver<Maybe<ResolversTypes['RetentionSweep']>, ParentType, ContextType>;
  p95DurationMs?: Resolver<Maybe<ResolversTypes['Float']>, ParentType, ContextType>;
  queueDepth?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  throughputPerMinute?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
}>;

export type StatusCountsResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['StatusCounts'] = ResolversParentTypes['StatusCounts']> = ResolversObject<{
  cancelled?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  completed?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  failed?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  pending?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  processing?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  total?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
}>;

export type SubmitBatchPayloadResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['SubmitBatchPayload'] = ResolversParentTypes['SubmitBatchPayload']> = ResolversObject<{
  batch?: Resolver<ResolversTypes['Batch'], ParentType, ContextType>;
  created?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
}>;

export type SubmitJobPayloadResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['SubmitJobPayload'] = ResolversParentTypes['SubmitJobPayload']> = ResolversObject<{
  created?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  job?: Resolver<ResolversTypes['Job'], ParentType, ContextType>;
}>;

export type SubscriptionResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Subscription'] = ResolversParentTypes['Subscription']> = ResolversObject<{
  batchUpdated?: SubscriptionResolver<ResolversTypes['BatchChange'], "batchUpdated", ParentType, ContextType, RequireFields<SubscriptionBatchUpdatedArgs, 'id'>>;
  deliveryUpdated?: SubscriptionResolver<ResolversTypes['DeliveryChange'], "deliveryUpdated", ParentType, ContextType, Partial<SubscriptionDeliveryUpdatedArgs>>;
  jobEvents?: SubscriptionResolver<ResolversTypes['JobChange'], "jobEvents", ParentType, ContextType, Partial<SubscriptionJobEventsArgs>>;
  jobLogs?: SubscriptionResolver<ResolversTypes['LogEntry'], "jobLogs", ParentType, ContextType, RequireFields<SubscriptionJobLogsArgs, 'id'>>;
  jobUpdated?: SubscriptionResolver<ResolversTypes['JobChange'], "jobUpdated", ParentType, ContextType, RequireFields<SubscriptionJobUpdatedArgs, 'id'>>;
}>;

export type UsageResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Usage'] = ResolversParentTypes['Usage']> = ResolversObject<{
  costUsd?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
  inputTokens?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
  models?: Resolver<Array<ResolversTypes['String']>, ParentType, ContextType>;
  outputTokens?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
  tokens?: Resolver<ResolversTypes['Float'], ParentType, ContextType>;
}>;

export type ViewerResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['Viewer'] = ResolversParentTypes['Viewer']> = ResolversObject<{
  admin?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  authMode?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
  authenticated?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  teams?: Resolver<Array<ResolversTypes['ID']>, ParentType, ContextType>;
  userId?: Resolver<Maybe<ResolversTypes['ID']>, ParentType, ContextType>;
}>;

export type WebhookInfoResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['WebhookInfo'] = ResolversParentTypes['WebhookInfo']> = ResolversObject<{
  events?: Resolver<Maybe<Array<ResolversTypes['String']>>, ParentType, ContextType>;
  hasSecret?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  hasToken?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  headerNames?: Resolver<Array<ResolversTypes['String']>, ParentType, ContextType>;
  includeMarkdown?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  includeMetadata?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  url?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
}>;

export type WebhookTestResultResolvers<ContextType = GraphQLContext, ParentType extends ResolversParentTypes['WebhookTestResult'] = ResolversParentTypes['WebhookTestResult']> = ResolversObject<{
  at?: Resolver<ResolversTypes['DateTime'], ParentType, ContextType>;
  durationMs?: Resolver<ResolversTypes['Int'], ParentType, ContextType>;
  error?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  ok?: Resolver<ResolversTypes['Boolean'], ParentType, ContextType>;
  responseSnippet?: Resolver<Maybe<ResolversTypes['String']>, ParentType, ContextType>;
  statusCode?: Resolver<Maybe<ResolversTypes['Int']>, ParentType, ContextType>;
  webhookId?: Resolver<ResolversTypes['String'], ParentType, ContextType>;
}>;

export type Resolvers<ContextType = GraphQLContext> = ResolversObject<{
  AccessControl?: AccessControlResolvers<ContextType>;
  Batch?: BatchResolvers<ContextType>;
  BatchChange?: BatchChangeResolvers<ContextType>;
  BatchConnection?: BatchConnectionResolvers<ContextType>;
  BatchCounts?: BatchCountsResolvers<ContextType>;
  BatchEdge?: BatchEdgeResolvers<ContextType>;
  BatchStats?: BatchStatsResolvers<ContextType>;
  BatchSummary?: BatchSummaryResolvers<ContextType>;
  DateTime?: GraphQLScalarType;
  Delivery?: DeliveryResolvers<ContextType>;
  DeliveryAttempt?: DeliveryAttemptResolvers<ContextType>;
  DeliveryChange?: DeliveryChangeResolvers<ContextType>;
  GroupCounts?: GroupCountsResolvers<ContextType>;
  IngestOrigin?: IngestOriginResolvers<ContextType>;
  IngestSourceStats?: IngestSourceStatsResolvers<ContextType>;
  JSON?: GraphQLScalarType;
  Job?: JobResolvers<ContextType>;
  JobChange?: JobChangeResolvers<ContextType>;
  JobConnection?: JobConnectionResolvers<ContextType>;
  JobEdge?: JobEdgeResolvers<ContextType>;
  JobError?: JobErrorResolvers<ContextType>;
  JobResults?: JobResultsResolvers<ContextType>;
  JobType?: JobTypeResolvers<ContextType>;
  LogEntry?: LogEntryResolvers<ContextType>;
  MarkdownResult?: MarkdownResultResolvers<ContextType>;
  Mutation?: MutationResolvers<ContextType>;
  PageInfo?: PageInfoResolvers<ContextType>;
  Progress?: ProgressResolvers<ContextType>;
  Query?: QueryResolvers<ContextType>;
  ResultFile?: ResultFileResolvers<ContextType>;
  RetentionSweep?: RetentionSweepResolvers<ContextType>;
  Stats?: StatsResolvers<ContextType>;
  StatusCounts?: StatusCountsResolvers<ContextType>;
  SubmitBatchPayload?: SubmitBatchPayloadResolvers<ContextType>;
  SubmitJobPayload?: SubmitJobPayloadResolvers<ContextType>;
  Subscription?: SubscriptionResolvers<ContextType>;
  Usage?: UsageResolvers<ContextType>;
  Viewer?: ViewerResolvers<ContextType>;
  WebhookInfo?: WebhookInfoResolvers<ContextType>;
  WebhookTestResult?: WebhookTestResultResolvers<ContextType>;
}>;

