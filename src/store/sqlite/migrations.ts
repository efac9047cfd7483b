/**
 * Versioned schema migrations, applied in order at open inside one IMMEDIATE
 * transaction (so two processes opening a new file at once cannot both migrate).
 * `PRAGMA user_version` records how many have run. Never edit a released migration:
 * append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    lease_token INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    cancel_requested INTEGER NOT NULL,
    progress TEXT,
    results TEXT,
    error TEXT,
    errors TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    team_ids TEXT NOT NULL,
    access TEXT NOT NULL,
    visibility TEXT NOT NULL,
    readers TEXT NOT NULL,
    batch_id TEXT,
    paused INTEGER NOT NULL,
    track TEXT,
    webhook TEXT,
    idempotency_key TEXT,
    idempotency_hash TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  -- The claim order, restricted to what can be claimed.
  CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id) WHERE status = 'PENDING' AND paused = 0;
  CREATE INDEX jobs_lease ON jobs (lease_until) WHERE status = 'PROCESSING';
  CREATE INDEX jobs_status ON jobs (status, id);
  CREATE INDEX jobs_type ON jobs (type, id);
  CREATE INDEX jobs_batch_status ON jobs (batch_id, status, id) WHERE batch_id IS NOT NULL;
  CREATE INDEX jobs_owner ON jobs (owner_id, id);
  CREATE INDEX jobs_track ON jobs (track, id) WHERE track IS NOT NULL;
  CREATE INDEX jobs_created ON jobs (created_at);
  CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
  CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

  CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    team_ids TEXT NOT NULL,
    access TEXT NOT NULL,
    visibility TEXT NOT NULL,
    readers TEXT NOT NULL,
    active INTEGER NOT NULL,
    archived INTEGER NOT NULL,
    webhook TEXT,
    metadata TEXT,
    total INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    processing INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    cancelled INTEGER NOT NULL,
    idempotency_key TEXT,
    idempotency_hash TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
  );
  CREATE INDEX batches_owner ON batches (owner_id, id);
  CREATE INDEX batches_flags ON batches (archived, active, id);
  CREATE INDEX batches_created ON batches (created_at);
  CREATE UNIQUE INDEX batches_idempotency ON batches (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

  CREATE TABLE job_logs (
    seq INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
  );
  CREATE INDEX job_logs_job ON job_logs (job_id, seq);

  CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    job_id TEXT,
    batch_id TEXT,
    webhook TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'PENDING';
  CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE status = 'SENDING';
  CREATE INDEX deliveries_job ON deliveries (job_id) WHERE job_id IS NOT NULL;
  CREATE INDEX deliveries_batch ON deliveries (batch_id) WHERE batch_id IS NOT NULL;

  -- The change feed, ordered by rowid. No AUTOINCREMENT (it costs a page write per
  -- insert): purge never deletes the newest change, so a sequence is never reused.
  CREATE TABLE changes (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    entity TEXT NOT NULL,
    op TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    batch_id TEXT,
    owner_id TEXT,
    status TEXT,
    version INTEGER NOT NULL,
    data TEXT
  );

  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
  `
  -- 2: deliveries refused for good (410 Gone) are looked up on every delivery claim.
  CREATE INDEX deliveries_disabled ON deliveries (batch_id, job_id) WHERE status = 'DISABLED';
  `,
  `
  -- 3: the result cache: jobs that would produce equal results share a key.
  ALTER TABLE jobs ADD COLUMN cache_key TEXT;
  ALTER TABLE jobs ADD COLUMN cached_from TEXT;
  CREATE INDEX jobs_cache ON jobs (cache_key, finished_at) WHERE cache_key IS NOT NULL AND status = 'COMPLETED';
  `,
  `
  -- 4: inbound webhooks: where an ingested job came from, and counters per source.
  ALTER TABLE jobs ADD COLUMN ingest TEXT;
  ALTER TABLE jobs ADD COLUMN source TEXT;
  CREATE INDEX jobs_source ON jobs (source, id) WHERE source IS NOT NULL;
  CREATE TABLE ingest_counts (
    source TEXT PRIMARY KEY,
    received INTEGER NOT NULL DEFAULT 0,
    verified INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    duplicate INTEGER NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0
  );
  `,
  `
  -- 5: the worker of a job's last attempt, reported usage, the submitter's correlation id;
  -- a batch's status as a column (for filters) and its timing and usage summary.
  ALTER TABLE jobs ADD COLUMN worker_id TEXT;
  ALTER TABLE jobs ADD COLUMN usage TEXT;
  ALTER TABLE jobs ADD COLUMN correlation_id TEXT;
  CREATE INDEX jobs_retrying ON jobs (id) WHERE status = 'PENDING' AND error IS NOT NULL;
  ALTER TABLE batches ADD COLUMN status TEXT NOT NULL DEFAULT 'PENDING';
  ALTER TABLE batches ADD COLUMN first_started_at INTEGER;
  ALTER TABLE batches ADD COLUMN last_finished_at INTEGER;
  ALTER TABLE batches ADD COLUMN tokens REAL NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
  -- The same rule as batchStatus() in src/domain/status.ts.
  UPDATE batches SET status = CASE
    WHEN pending + processing > 0 THEN CASE WHEN pending = total THEN 'PENDING' ELSE 'PROCESSING' END
    WHEN completed = total THEN 'COMPLETED'
    WHEN failed = total THEN 'FAILED'
    WHEN cancelled = total THEN 'CANCELLED'
    ELSE 'PARTIAL' END;
  CREATE INDEX batches_status ON batches (status, id);
  `,
  `
  -- 6: batch control holds a batch (claims skip its jobs) while it changes the jobs in chunks.
  ALTER TABLE batches ADD COLUMN held_until INTEGER;
  CREATE INDEX batches_held ON batches (held_until) WHERE held_until IS NOT NULL;
  `,
  `
  -- 7: batch count moves recorded by job changes, applied after the commit (engines that defer batch counts).
  CREATE TABLE batch_moves (seq INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, at INTEGER NOT NULL, move TEXT NOT NULL);
  CREATE INDEX batch_moves_batch ON batch_moves (batch_id, seq);
  `,
];
