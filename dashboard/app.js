// Conveyor dashboard: plain ES module, no build step. Reads with GraphQL queries over
// HTTP and stays current through graphql-ws subscriptions (no polling), or through
// Server-Sent Events where a websocket cannot connect.
const { createClient } = window.graphqlWs;
const main = document.getElementById('main');
const account = document.getElementById('account');
const toast = document.getElementById('toast');
const KEY = 'conveyor.credentials';

let auth = JSON.parse(sessionStorage.getItem(KEY) ?? 'null'); // { kind: 'user' | 'token', value }
let ws = null;
const subscriptions = []; // unsubscribe functions of the current view
let authMode = 'header';

const esc = (value) =>
  String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const headers = () => (auth === null ? {} : auth.kind === 'user' ? { 'x-user-id': auth.value } : { authorization: `Bearer ${auth.value}` });

async function gql(query, variables = {}) {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers() },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(`${body.errors[0].extensions?.code ?? 'ERROR'}: ${body.errors[0].message}`);
  return body.data;
}

/**
 * What the websocket sends in connection_init. Browsers cannot set headers on a
 * websocket, and the server does not take a user id from connectionParams, so in
 * header mode the page asks for a short-lived ticket over HTTP (with its headers) and
 * presents that; tokens go as they are.
 */
async function connectionParams() {
  if (auth === null) return {};
  if (auth.kind !== 'user') return headers();
  const response = await fetch('/ws-ticket', { method: 'POST', headers: headers() });
  if (!response.ok) throw new Error(`no websocket ticket (${response.status})`);
  return { ticket: (await response.json()).ticket };
}

/**
 * Live updates go over graphql-ws; where a websocket cannot connect (a proxy that
 * refuses upgrades), the page falls back to Server-Sent Events at /graphql/stream
 * (graphql-sse, sending the same headers as its queries) and moves every live
 * subscription of the view over. `?transport=sse` asks for SSE from the start.
 */
let transport = new URLSearchParams(location.search).get('transport') === 'sse' ? 'sse' : 'ws';
let sse = null;
const active = new Set(); // live subscriptions of the current view: { query, variables, sink, stop }

function socket() {
  let connected = false;
  ws ??= createClient({
    url: `${location.origin.replace(/^http/, 'ws')}/graphql`,
    connectionParams,
    lazy: true,
    retryAttempts: Infinity,
    on: {
      connected: () => {
        connected = true;
      },
      closed: () => {
        if (!connected && transport === 'ws') useSse();
      },
    },
  });
  return ws;
}

function sseClient() {
  sse ??= window.graphqlSse.createClient({ url: `${location.origin}/graphql/stream`, headers, retryAttempts: Infinity });
  return sse;
}

/** A websocket that never opened: every live subscription moves to Server-Sent Events. */
function useSse() {
  transport = 'sse';
  const old = ws;
  ws = null;
  document.body.dataset.transport = 'sse';
  for (const subscription of active) {
    subscription.stop = sseClient().subscribe({ query: subscription.query, variables: subscription.variables }, subscription.sink);
  }
  // Not from inside the client's own close event: its subscriptions end with the disposal.
  setTimeout(() => old?.dispose());
}

/** Subscribes for the current view; `onData` gets each `data`. */
function live(query, variables, onData) {
  const sink = {
    next: (result) => (result.data ? onData(result.data) : result.errors && say(result.errors[0].message)),
    error: () => undefined,
    complete: () => undefined,
  };
  const subscription = { query, variables, sink, stop: () => undefined };
  document.body.dataset.transport = transport;
  subscription.stop = (transport === 'sse' ? sseClient() : socket()).subscribe({ query, variables }, sink);
  active.add(subscription);
  subscriptions.push(() => {
    active.delete(subscription);
    subscription.stop();
  });
}

function say(message) {
  toast.textContent = message;
  toast.hidden = false;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => {
    toast.hidden = true;
  }, 4000);
}

const status = (value) => `<span class="status ${esc(value)}">${esc(value)}</span>`;
/** A job's status, with a "retrying" badge while it waits for another attempt after a failed one. */
const jobStatus = (job) =>
  `${status(job.status)}${job.retrying ? ` <span class="status retrying" title="next attempt at ${esc(time(job.nextAttemptAt))}">retrying</span>` : ''}`;
const percentOf = (counts) =>
  counts.total === 0 ? 100 : Math.round(((counts.completed + counts.failed + counts.cancelled) / counts.total) * 100);
const bar = (value, label) => `<progress max="100" value="${value}" aria-label="${esc(label)}">${value}%</progress>`;
const time = (value) => (value ? new Date(value).toLocaleString() : '—');

function renderAccount() {
  if (auth !== null) {
    account.innerHTML = `<span>Signed in as <strong>${esc(auth.kind === 'user' ? auth.value : 'token')}</strong></span><button type="button" id="signout">Sign out</button>`;
    document.getElementById('signout').onclick = () => {
      sessionStorage.removeItem(KEY);
      auth = null;
      ws?.dispose();
      ws = null;
      sse?.dispose();
      sse = null;
      route();
    };
    return;
  }
  const field = authMode === 'header' ? 'User id' : authMode === 'apiKey' ? 'API key' : 'Token';
  account.innerHTML = `<form id="signin"><label for="credential" class="sr-only">${field}</label>
    <input id="credential" name="credential" placeholder="${field}" autocomplete="off" ${authMode === 'header' ? '' : 'type="password"'} required>
    <button class="primary" type="submit">Sign in</button></form>`;
  document.getElementById('signin').onsubmit = (event) => {
    event.preventDefault();
    const value = document.getElementById('credential').value.trim();
    auth = { kind: authMode === 'header' ? 'user' : 'token', value };
    sessionStorage.setItem(KEY, JSON.stringify(auth));
    ws?.dispose();
    ws = null;
    sse?.dispose();
    sse = null;
    route();
  };
}

async function overview() {
  // The cursor first: the live subscription below replays every change after it, so a
  // job that arrives between this read and the subscription still shows.
  const { changeCursor } = await gql('{ changeCursor }');
  const data =
    await gql(`{ stats { byStatus { pending processing completed failed cancelled total } queueDepth throughputPerMinute p95DurationMs cachedJobs
    byTrack { key total pending processing completed failed cancelled }
    ingest { source kind received accepted duplicate ignored rejected } }
    batches(first: 20, filter: { archived: false }) { edges { node { id name status active counts { total pending processing completed failed cancelled } createdAt } } }
    jobs(first: 10) { edges { node { id type status retrying nextAttemptAt createdAt batch { id name } ingest { source event } parameters } } } }`);
  const s = data.stats;
  main.innerHTML = `<h1>Overview</h1>
    <section class="cards" aria-label="Statistics">
      ${[
        ['Pending', s.byStatus.pending],
        ['Running', s.byStatus.processing],
        ['Completed', s.byStatus.completed],
        ['Failed', s.byStatus.failed],
        ['Queue depth', s.queueDepth],
        ['Per minute', s.throughputPerMinute.toFixed(1)],
        ['p95 duration', s.p95DurationMs == null ? '—' : `${(s.p95DurationMs / 1000).toFixed(1)} s`],
      ]
        .map(
          ([label, n]) =>
            `<div class="card"><div class="n" data-stat="${esc(label)}">${esc(n)}</div><div class="l">${esc(label)}</div></div>`,
        )
        .join('')}
    </section>
    <h2>Batches</h2>
    ${
      data.batches.edges.length === 0
        ? '<p class="muted">No batches yet. Submit one with the API, the CLI (<code>conveyor submit --file</code>) or <code>conveyor demo</code>.</p>'
        : `
    <table><thead><tr><th>Name</th><th>Status</th><th>Progress</th><th class="hide-sm">Jobs</th><th class="hide-sm">Created</th></tr></thead><tbody>
    ${data.batches.edges
      .map(
        ({
          node: b,
        }) => `<tr data-batch="${esc(b.id)}"><td><a href="#/batch/${esc(b.id)}">${esc(b.name)}</a>${b.active ? '' : ' <span class="muted">(paused)</span>'}</td>
      <td data-field="status">${status(b.status)}</td><td data-field="progress">${bar(percentOf(b.counts), `${b.name} progress`)}</td>
      <td class="hide-sm" data-field="counts">${b.counts.completed + b.counts.failed + b.counts.cancelled}/${b.counts.total}</td><td class="hide-sm">${time(b.createdAt)}</td></tr>`,
      )
      .join('')}
    </tbody></table>`
    }
    <h2>Recent jobs</h2>
    ${
      data.jobs.edges.length === 0
        ? '<p class="muted">No jobs yet.</p>'
        : `<table><thead><tr><th>Job</th><th>Type</th><th>Status</th><th class="hide-sm">From</th><th class="hide-sm">Created</th></tr></thead><tbody>
    ${data.jobs.edges
      .map(
        ({
          node: j,
        }) => `<tr data-job="${esc(j.id)}"><td><a href="#/job/${esc(j.id)}">${esc(j.parameters.session ?? j.parameters.title ?? j.id)}</a></td>
      <td>${esc(j.type)}</td><td data-field="status">${jobStatus(j)}</td>
      <td class="hide-sm">${j.ingest ? `webhook ${esc(j.ingest.source)} · ${esc(j.ingest.event)}` : j.batch ? `batch <a href="#/batch/${esc(j.batch.id)}">${esc(j.batch.name)}</a>` : 'API'}</td>
      <td class="hide-sm">${time(j.createdAt)}</td></tr>`,
      )
      .join('')}
    </tbody></table>`
    }
    ${
      s.byTrack.length === 0
        ? ''
        : `<h2>Tracks</h2>
    <table aria-label="Jobs per track"><thead><tr><th>Track</th><th>Jobs</th><th>Pending</th><th>Running</th><th>Completed</th><th>Failed</th><th class="hide-sm">Cancelled</th></tr></thead><tbody>
    ${s.byTrack.map((t) => `<tr data-track="${esc(t.key)}"><td>${esc(t.key)}</td>${trackCells(t)}</tr>`).join('')}
    </tbody></table>`
    }
    ${
      s.ingest.length === 0
        ? ''
        : `<h2>Inbound webhooks</h2>
    <table><thead><tr><th>Source</th><th>Received</th><th>Jobs</th><th class="hide-sm">Duplicates</th><th class="hide-sm">Ignored</th><th>Rejected</th></tr></thead><tbody>
    ${s.ingest
      .map(
        (
          i,
        ) => `<tr data-source="${esc(i.source)}"><td>${esc(i.source)} <span class="muted">${esc(i.kind)}</span></td><td data-field="received">${i.received}</td>
      <td data-field="accepted">${i.accepted}</td><td class="hide-sm" data-field="duplicate">${i.duplicate}</td><td class="hide-sm" data-field="ignored">${i.ignored}</td><td data-field="rejected">${i.rejected}</td></tr>`,
      )
      .join('')}
    </tbody></table>`
    }`;
  for (const { node } of data.batches.edges) {
    live(
      'subscription ($id: ID!) { batchUpdated(id: $id) { status counts { total completed failed cancelled } } }',
      { id: node.id },
      ({ batchUpdated: u }) => {
        const row = main.querySelector(`[data-batch="${node.id}"]`);
        if (!row || !u.counts) return;
        row.querySelector('[data-field=status]').innerHTML = status(u.status);
        row.querySelector('progress').value = percentOf(u.counts);
        row.querySelector('progress').textContent = `${percentOf(u.counts)}%`;
        row.querySelector('[data-field=counts]').textContent =
          `${u.counts.completed + u.counts.failed + u.counts.cancelled}/${u.counts.total}`;
      },
    );
  }
  // New batches and job changes refresh the overview (debounced), driven by the subscription.
  let timer = null;
  live(
    'subscription ($after: String) { jobEvents(after: $after) { op jobId batchId status } }',
    { after: changeCursor },
    ({ jobEvents: e }) => {
      const row = main.querySelector(`tr[data-job="${e.jobId}"] [data-field=status]`);
      if (row && e.status) row.innerHTML = status(e.status);
      // A job or batch not on the page yet (a new batch, an ingested job) re-reads the page; other changes the figures.
      const known =
        e.batchId !== null
          ? main.querySelector(`[data-batch="${e.batchId}"]`) !== null
          : main.querySelector(`tr[data-job="${e.jobId}"]`) !== null;
      clearTimeout(timer);
      timer = setTimeout(() => (known ? refreshStats() : route()), known ? 500 : 200);
    },
  );
}

/** The count cells of a track's row in the overview. */
const TRACK_FIELDS = ['total', 'pending', 'processing', 'completed', 'failed', 'cancelled'];
const trackCells = (t) =>
  TRACK_FIELDS.map((f) => `<td${f === 'cancelled' ? ' class="hide-sm"' : ''} data-field="${f}">${esc(t[f])}</td>`).join('');

async function refreshStats() {
  const { stats: s } = await gql(
    '{ stats { byStatus { pending processing completed failed } queueDepth byTrack { key total pending processing completed failed cancelled } ingest { source received accepted duplicate ignored rejected } } }',
  );
  for (const t of s.byTrack) {
    const row = main.querySelector(`tr[data-track="${CSS.escape(t.key)}"]`);
    if (row) row.innerHTML = `<td>${esc(t.key)}</td>${trackCells(t)}`;
  }
  for (const i of s.ingest) {
    for (const field of ['received', 'accepted', 'duplicate', 'ignored', 'rejected']) {
      const cell = main.querySelector(`[data-source="${i.source}"] [data-field=${field}]`);
      if (cell) cell.textContent = i[field];
    }
  }
  const set = (label, n) => {
    const el = main.querySelector(`[data-stat="${label}"]`);
    if (el) el.textContent = n;
  };
  set('Pending', s.byStatus.pending);
  set('Running', s.byStatus.processing);
  set('Completed', s.byStatus.completed);
  set('Failed', s.byStatus.failed);
  set('Queue depth', s.queueDepth);
}

async function batchView(id) {
  const data = await gql(
    `query ($id: ID!) { batch(id: $id) { id name status active archived archiveUrl counts { total pending processing completed failed cancelled } } }`,
    { id },
  );
  if (!data.batch) {
    main.innerHTML = '<h1>Batch not found</h1><p>It does not exist, or you may not read it.</p>';
    return;
  }
  const b = data.batch;
  const { jobs } = await gql(
    `query ($id: ID!) { jobs(filter: { batchId: $id }, first: 500) { edges { node { id type status retrying nextAttemptAt track progress { percent step } parameters } } } }`,
    { id },
  );
  main.innerHTML = `<p><a href="#/">← Overview</a></p><h1>${esc(b.name)} <span id="batch-status">${status(b.status)}</span></h1>
    <p>${bar(percentOf(b.counts), 'Batch progress')} <span id="batch-counts">${b.counts.completed} completed, ${b.counts.failed} failed, ${b.counts.cancelled} cancelled of ${b.counts.total}</span></p>
    <div class="actions">
      <button type="button" data-act="cancelBatch" class="danger">Cancel</button>
      <button type="button" data-act="restartFailed">Restart failed</button>
      <button type="button" data-act="pause">${b.active ? 'Pause' : 'Resume'}</button>
      <button type="button" data-act="archive">${b.archived ? 'Unarchive' : 'Archive'}</button>
      <a href="${esc(b.archiveUrl)}" download>Download ZIP</a>
    </div>
    <table><thead><tr><th>Job</th><th>Type</th><th>Status</th><th>Progress</th><th class="hide-sm">Step</th></tr></thead><tbody>
    ${jobs.edges
      .reverse()
      .map(
        ({
          node: j,
        }) => `<tr data-job="${esc(j.id)}"><td><a href="#/job/${esc(j.id)}">${esc(j.parameters.session ?? j.parameters.title ?? j.id)}</a></td><td>${esc(j.type)}</td>
      <td data-field="status">${jobStatus(j)}</td><td>${bar(j.status === 'COMPLETED' ? 100 : (j.progress?.percent ?? 0), `${j.id} progress`)}</td><td class="hide-sm" data-field="step">${esc(j.progress?.step ?? '')}</td></tr>`,
      )
      .join('')}
    </tbody></table>`;
  const act = {
    cancelBatch: () => gql('mutation ($id: ID!) { cancelBatch(id: $id) { id } }', { id }),
    restartFailed: () => gql('mutation ($id: ID!) { restartBatch(id: $id, onlyFailed: true) { id } }', { id }),
    pause: () => gql('mutation ($id: ID!, $a: Boolean!) { setBatchActive(id: $id, active: $a) { id } }', { id, a: !b.active }).then(route),
    archive: () =>
      gql('mutation ($id: ID!, $a: Boolean!) { archiveBatch(id: $id, archived: $a) { id } }', { id, a: !b.archived }).then(route),
  };
  for (const button of main.querySelectorAll('[data-act]'))
    button.onclick = () =>
      act[button.dataset.act]().then(
        () => say('Done'),
        (e) => say(e.message),
      );
  const showJob = (e) => {
    const row = main.querySelector(`[data-job="${e.jobId ?? e.id}"]`);
    if (!row || !e.status) return;
    row.querySelector('[data-field=status]').innerHTML = jobStatus({ ...e, ...(e.job ?? {}), status: e.status });
    row.querySelector('progress').value = e.status === 'COMPLETED' ? 100 : (e.progress?.percent ?? row.querySelector('progress').value);
    row.querySelector('[data-field=step]').textContent = e.progress?.step ?? '';
  };
  let following = false;
  live(
    'subscription ($id: ID!) { batchUpdated(id: $id) { cursor status counts { total completed failed cancelled } } }',
    { id },
    ({ batchUpdated: u }) => {
      // The first event is a snapshot with the feed's position: job changes are followed from
      // there, and the table is read again, so nothing that happened since the first read is missed.
      if (!following) {
        following = true;
        live(
          'subscription ($id: ID!, $after: String) { jobEvents(filter: { batchId: $id }, after: $after) { jobId status progress { percent step } job { retrying nextAttemptAt } } }',
          { id, after: u.cursor },
          ({ jobEvents: e }) => showJob(e),
        );
        gql(
          `query ($id: ID!) { jobs(filter: { batchId: $id }, first: 500) { edges { node { id status retrying nextAttemptAt progress { percent step } } } } }`,
          {
            id,
          },
        ).then(({ jobs: fresh }) => {
          for (const { node } of fresh.edges) showJob(node);
        });
      }
      if (!u.counts) return;
      document.getElementById('batch-status').innerHTML = status(u.status);
      const p = main.querySelector('p progress');
      p.value = percentOf(u.counts);
      p.textContent = `${p.value}%`;
      document.getElementById('batch-counts').textContent =
        `${u.counts.completed} completed, ${u.counts.failed} failed, ${u.counts.cancelled} cancelled of ${u.counts.total}`;
    },
  );
}

const JOB = `id type status retrying nextAttemptAt workerId attempts maxAttempts parameters cancelRequested createdAt startedAt finishedAt batch { id name } archiveUrl
  progress { percent step message } error { code message } results { markdown { file { name url } } files { name size url } metadata }
  deliveries { id event status url attempts { at statusCode error durationMs } }`;

async function jobView(id) {
  const { job } = await gql(`query ($id: ID!) { job(id: $id) { ${JOB} } }`, { id });
  if (!job) {
    main.innerHTML = '<h1>Job not found</h1><p>It does not exist, or you may not read it.</p>';
    return;
  }
  main.innerHTML = `<p><a href="${job.batch ? `#/batch/${esc(job.batch.id)}` : '#/'}">← ${esc(job.batch?.name ?? 'Overview')}</a></p>
    <h1>${esc(job.parameters.session ?? job.parameters.title ?? job.id)} <span id="job-status">${jobStatus(job)}</span></h1>
    <p>${bar(job.status === 'COMPLETED' ? 100 : (job.progress?.percent ?? 0), 'Job progress')} <span id="job-step">${esc(job.progress?.step ?? '')}</span></p>
    <div class="actions"><button type="button" id="cancel" class="danger">Cancel</button><button type="button" id="restart">Restart</button></div>
    <dl class="meta"><dt>Id</dt><dd>${esc(job.id)}</dd><dt>Type</dt><dd>${esc(job.type)}</dd><dt>Attempts</dt><dd id="job-attempts">${job.attempts} of ${job.maxAttempts}</dd>
      <dt>Worker</dt><dd id="job-worker">${esc(job.workerId ?? '—')}</dd>
      <dt>Created</dt><dd>${time(job.createdAt)}</dd><dt>Finished</dt><dd id="job-finished">${time(job.finishedAt)}</dd></dl>
    <div id="job-error">${job.error ? `<p class="error"><strong>${esc(job.error.code)}</strong>: ${esc(job.error.message)}</p>` : ''}</div>
    <h2>Results</h2><div id="job-results">${results(job)}</div>
    <h2>Webhook deliveries</h2><div id="job-deliveries">${deliveries(job)}</div>
    <h2>Log</h2><pre class="logs" id="logs" tabindex="0" aria-label="Job log"></pre>`;
  document.getElementById('cancel').onclick = () =>
    gql('mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id }).then(
      () => say('Cancel requested'),
      (e) => say(e.message),
    );
  document.getElementById('restart').onclick = () =>
    gql('mutation ($id: ID!) { restartJob(id: $id) { id } }', { id }).then(
      () => say('Restarted'),
      (e) => say(e.message),
    );
  live(`subscription ($id: ID!) { jobUpdated(id: $id) { job { ${JOB} } } }`, { id }, ({ jobUpdated: { job: j } }) => {
    if (!j) return;
    document.getElementById('job-status').innerHTML = jobStatus(j);
    document.getElementById('job-worker').textContent = j.workerId ?? '—';
    main.querySelector('p progress').value = j.status === 'COMPLETED' ? 100 : (j.progress?.percent ?? 0);
    document.getElementById('job-step').textContent = j.progress?.step ?? '';
    document.getElementById('job-attempts').textContent = `${j.attempts} of ${j.maxAttempts}`;
    document.getElementById('job-finished').textContent = time(j.finishedAt);
    document.getElementById('job-error').innerHTML = j.error
      ? `<p class="error"><strong>${esc(j.error.code)}</strong>: ${esc(j.error.message)}</p>`
      : '';
    document.getElementById('job-results').innerHTML = results(j);
    job.deliveries = j.deliveries;
    document.getElementById('job-deliveries').innerHTML = deliveries(job);
  });
  // Webhook attempts arrive as they happen (retries do not change the job itself).
  live(
    'subscription ($id: ID!) { deliveryUpdated(jobId: $id) { deliveryId delivery { id event status url attempts { at statusCode error durationMs } } } }',
    { id },
    ({ deliveryUpdated: { deliveryId, delivery } }) => {
      const at = job.deliveries.findIndex((d) => d.id === deliveryId);
      if (!delivery) job.deliveries = job.deliveries.filter((d) => d.id !== deliveryId);
      else if (at < 0) job.deliveries = [...job.deliveries, delivery];
      else job.deliveries = job.deliveries.map((d, i) => (i === at ? delivery : d));
      document.getElementById('job-deliveries').innerHTML = deliveries(job);
    },
  );
  const logs = document.getElementById('logs');
  live('subscription ($id: ID!) { jobLogs(id: $id) { at level message } }', { id }, ({ jobLogs: l }) => {
    logs.textContent += `${new Date(l.at).toLocaleTimeString()} ${l.level.padEnd(5)} ${l.message}\n`;
    logs.scrollTop = logs.scrollHeight;
  });
}

function results(job) {
  if (!job.results) return '<p class="muted">No results yet.</p>';
  return `<ul>${job.results.files.map((f) => `<li><a href="${esc(f.url)}" target="_blank" rel="noopener">${esc(f.name)}</a> <span class="muted">${f.size} bytes</span></li>`).join('')}</ul>
    <p><a href="${esc(job.archiveUrl)}" download>Download all as ZIP</a></p>`;
}

function deliveries(job) {
  if (job.deliveries.length === 0) return '<p class="muted">No webhook.</p>';
  return `<table><thead><tr><th>Event</th><th>Status</th><th>Attempts</th></tr></thead><tbody>${job.deliveries
    .map(
      (d) => `<tr><td>${esc(d.event)}</td><td>${status(d.status)}</td>
    <td>${d.attempts.map((a) => `${time(a.at)}: ${esc(a.statusCode ?? a.error)} (${a.durationMs} ms)`).join('<br>') || '—'}</td></tr>`,
    )
    .join('')}</tbody></table>`;
}

async function route() {
  for (const stop of subscriptions.splice(0)) stop();
  renderAccount();
  if (auth === null) {
    main.innerHTML = `<h1>Sign in</h1><p>Enter your ${authMode === 'header' ? 'user id' : authMode === 'apiKey' ? 'API key' : 'token'} at the top to see your jobs.</p>`;
    return;
  }
  const [, kind, id] = /^#\/(batch|job)\/([^/]+)$/.exec(location.hash) ?? [];
  try {
    if (kind === 'batch') await batchView(decodeURIComponent(id));
    else if (kind === 'job') await jobView(decodeURIComponent(id));
    else await overview();
  } catch (error) {
    main.innerHTML = `<h1>Something went wrong</h1><p class="error">${esc(error.message)}</p>`;
  }
}

window.addEventListener('hashchange', () => {
  route();
  main.focus();
});
gql('{ viewer { authMode } }')
  .then(
    ({ viewer }) => {
      authMode = viewer.authMode;
    },
    () => undefined,
  )
  .finally(route);
