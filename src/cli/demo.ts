/**
 * `conveyor demo`: a new user sees real work flow within a minute, with no internet.
 * Starts Conveyor on the embedded store (allow-list: the loopback address and port of
 * the sample site only), starts a small conference site on 127.0.0.1 (session pages,
 * a diagram, slides as PDF), submits one batch of real `session` jobs against it, and
 * shows the batch live in the terminal; the dashboard shows it too. `--exit` ends
 * the demo when the batch is done (otherwise the service keeps running until Ctrl-C).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../config.js';
import { createConveyor } from '../conveyor.js';
import { packageRoot } from '../package-root.js';
import type { Connection } from './api.js';

const SESSIONS = [
  {
    slug: 'queues-at-scale',
    title: 'Queues at scale: leases, fencing and outboxes',
    track: 'Systems',
    time: ['10:00', '10:45'],
    speakers: ['Ada Lovelace'],
    abstract:
      'Durable job queues keep working when machines fail, but only when every write is fenced. This talk walks through leases with heartbeats, fencing tokens that stop a stale worker from overwriting the new owner, and transactional outboxes that never lose a webhook.',
    pdf: 'queue-design-slides.pdf',
  },
  {
    slug: 'live-progress',
    title: 'Live progress for everyone',
    track: 'Frontend',
    time: ['11:00', '11:45'],
    speakers: ['Grace Hopper'],
    abstract:
      'Users would rather watch a progress bar than refresh a page. We show how GraphQL subscriptions over graphql-ws, fed by one change stream per process, reach thousands of browsers, and how backends without websockets get signed webhooks instead.',
    pdf: 'live-progress-slides.pdf',
  },
  {
    slug: 'markdown-pipelines',
    title: 'From slides to Markdown',
    track: 'Frontend',
    time: ['14:00', '14:30'],
    speakers: ['Katherine Johnson', 'Dorothy Vaughan'],
    abstract:
      'Conference material lives in PDFs and web pages. Turning it into clean Markdown with front matter makes it searchable, translatable and easy to publish. We compare extraction approaches and show a pipeline that runs every talk of a conference overnight.',
    pdf: 'queue-design-slides.pdf',
  },
  {
    slug: 'retries-that-help',
    title: 'Retries that help, retries that hurt',
    track: 'Systems',
    time: ['15:00', '15:45'],
    speakers: ['Margaret Hamilton'],
    abstract:
      'Exponential backoff with jitter, Retry-After, dead letters and replay: how to retry a call without turning an outage into a stampede, and how to tell a permanent failure from a passing one so that nobody waits for a retry that cannot succeed.',
    pdf: 'live-progress-slides.pdf',
  },
];

const DIAGRAM = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="120" viewBox="0 0 320 120"><rect width="320" height="120" fill="#f4f1ea"/><rect x="20" y="40" width="80" height="40" rx="6" fill="#2b6cb0"/><text x="60" y="65" font-size="14" text-anchor="middle" fill="#fff">submit</text><rect x="120" y="40" width="80" height="40" rx="6" fill="#2f855a"/><text x="160" y="65" font-size="14" text-anchor="middle" fill="#fff">queue</text><rect x="220" y="40" width="80" height="40" rx="6" fill="#c05621"/><text x="260" y="65" font-size="14" text-anchor="middle" fill="#fff">worker</text></svg>`;

function page(session: (typeof SESSIONS)[number]): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${session.title} | DemoConf 2026</title></head>
<body><header><nav><a href="/">DemoConf 2026</a> <a href="/schedule">Schedule</a> <a href="/venue">Venue</a></nav></header>
<main><article><h1>${session.title}</h1>
<p>${session.track} track · ${session.time[0]}–${session.time[1]}</p>
<p>Speakers: ${session.speakers.join(', ')}</p>
<h2>Abstract</h2><p>${session.abstract}</p>
<p>The talk closes with questions from the audience and pointers to further reading for everyone who wants to go deeper into the topic after the conference.</p>
<figure><img src="/media/diagram.svg" alt="How a job flows"><figcaption>How a job flows.</figcaption></figure>
<h2>Materials</h2><ul><li><a href="/files/${session.pdf}">Slides (PDF)</a></li></ul>
</article></main><footer>© DemoConf · <a href="/imprint">Imprint</a></footer></body></html>`;
}

/** The sample site on 127.0.0.1 (port 0); resolves with its base URL and a close function. */
export async function startDemoSite(): Promise<{ url: string; close: () => Promise<void> }> {
  const files = join(packageRoot(), 'demo');
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const session = SESSIONS.find((s) => path === `/sessions/${s.slug}.html`);
    if (session !== undefined) return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(session));
    if (path === '/media/diagram.svg') return void res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(DIAGRAM);
    const pdf = /^\/files\/([a-z-]+\.pdf)$/.exec(path)?.[1];
    if (pdf !== undefined) {
      try {
        return void res.writeHead(200, { 'content-type': 'application/pdf' }).end(readFileSync(join(files, pdf)));
      } catch {
        // falls through to 404
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The batch the demo submits: one `session` job per sample page. */
export function demoBatch(siteUrl: string) {
  return {
    name: 'DemoConf 2026 · day 1',
    jobs: SESSIONS.map((s) => ({
      type: 'session',
      parameters: {
        url: `${siteUrl}/sessions/${s.slug}.html`,
        event: 'DemoConf 2026',
        session: s.title,
        track: s.track,
        day: '2026-06-12',
        starttime: s.time[0],
        endtime: s.time[1],
        speakers: s.speakers,
        filename: s.slug,
      },
    })),
  };
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export async function runDemo(
  flags: Map<string, string[]>,
  io: { out: NodeJS.WriteStream; err: NodeJS.WriteStream; env: NodeJS.ProcessEnv },
  watch: (conn: Connection, id: string) => Promise<string>,
): Promise<number> {
  const site = await startDemoSite();
  const asked = flags.get('--port')?.[0] ?? io.env.CONVEYOR_PORT;
  // Port 4000 unless told otherwise; when a service already runs there, any free port.
  const port = asked !== undefined ? Number(asked) : (await isFree(4000)) ? 4000 : 0;
  const base = loadConfig({ env: io.env });
  const config = loadConfig({
    env: io.env,
    overrides: {
      'server.port': port,
      // A queue of its own: a service running beside the demo neither takes its jobs
      // (it could not reach the sample site) nor shows up in it.
      'store.driver': 'sqlite',
      'store.sqlite.path': '',
      dataDir: join(base.dataDir, 'demo'),
      // Only the sample site's loopback address and port; the demo reaches nothing else that is private.
      'net.allow': [new URL(site.url).host],
      'auth.mode': 'header',
      // The terminal shows progress bars; process logs only when something is wrong.
      ...(io.env.CONVEYOR_LOG__LEVEL === undefined ? { 'log.level': 'warn' } : {}),
    },
  });
  const conveyor = await createConveyor({ config });
  const { url } = await conveyor.start('all');
  const user = 'demo';
  io.out.write(
    `\nConveyor demo\n  sample site  ${site.url}/sessions/queues-at-scale.html\n  dashboard    ${url}/  (sign in as "${user}")\n  GraphQL      ${url}/graphql\n  metrics      ${url}/metrics\n\n`,
  );
  const conn: Connection = { url, headers: { 'x-user-id': user } };
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...conn.headers },
    body: JSON.stringify({
      query: 'mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { id } } }',
      variables: { input: demoBatch(site.url) },
    }),
  });
  const { data } = (await response.json()) as { data: { submitBatch: { batch: { id: string } } } };
  const batchId = data.submitBatch.batch.id;
  io.out.write(`submitted batch ${batchId}: ${SESSIONS.length} session jobs\n`);
  const status = await watch(conn, batchId);
  io.out.write(
    `\nResults: ${url}/archives/batches/${batchId}.zip (with header x-user-id: ${user}), or "conveyor download ${batchId} --user ${user} --url ${url}"\n`,
  );
  if (flags.has('--exit')) {
    await conveyor.stop();
    await site.close();
    return status === 'COMPLETED' ? 0 : 1;
  }
  io.out.write('The service keeps running; press Ctrl-C to stop.\n');
  const stop = () => void Promise.all([conveyor.stop(), site.close()]).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise<number>(() => undefined);
}
