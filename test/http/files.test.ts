/**
 * Result files, archives and uploads over real HTTP: signed URLs, credentials, ranges,
 * path tricks, ZIPs read back with yauzl, and the result cache.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createUrlSigner, urlSecret } from '../../src/results/urls.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { unzip } from '../helpers/zip.js';

let api: TestApi;
afterEach(async () => {
  await api?.stop();
});

const RESULTS = `results { markdown { file { name url } text truncated } files { name contentType size sha256 url } metadata data }`;

interface FileInfo {
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  url: string;
}
interface JobView {
  id: string;
  status: string;
  cached: boolean;
  cachedFrom: string | null;
  archiveUrl: string;
  results: {
    markdown: { file: { name: string; url: string }; text: string; truncated: boolean } | null;
    files: FileInfo[];
    metadata: Record<string, unknown>;
    data: Record<string, unknown>;
  } | null;
}

async function runFiles(parameters: Record<string, unknown>, extra = '', user = 'alice'): Promise<JobView> {
  const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
    `mutation ($parameters: JSON) { submitJob(input: { type: "files", parameters: $parameters ${extra} }) { job { id } } }`,
    { parameters },
    { 'x-user-id': user },
  );
  expect(body.errors).toBeUndefined();
  const id = body.data?.submitJob.job.id as string;
  let job: JobView | null = null;
  await expect
    .poll(async () => {
      const read = await api.gql<{ job: JobView }>(
        `query ($id: ID!) { job(id: $id) { id status cached cachedFrom archiveUrl ${RESULTS} } }`,
        { id },
        { 'x-user-id': user },
      );
      job = read.body.data?.job ?? null;
      return job?.status;
    })
    .toBe('COMPLETED');
  return job as unknown as JobView;
}

/** GET with the path sent exactly as written (fetch would normalise `..`). */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('result files', () => {
  it('lists files with sha256 and signed URLs that work without credentials, with ranges and ETags', async () => {
    api = await startApi();
    const job = await runFiles({ title: 'Queues' });
    const results = job.results;
    expect(results?.metadata).toEqual({ title: 'Queues' });
    expect(results?.data).toEqual({ words: 4 });
    expect(results?.markdown?.text).toBe('# Queues\n\nGrüße aus der Warteschlange — ✓\n');
    expect(results?.files.map((f) => f.name)).toEqual(['report.md', 'assets/figure 1.png', 'data.json']);

    const png = results?.files[1] as FileInfo;
    const response = await fetch(png.url);
    expect(response.status).toBe(200);
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(png.sha256);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('content-length')).toBe('64');
    expect(response.headers.get('etag')).toBe(`"${png.sha256}"`);
    expect(response.headers.get('content-disposition')).toBe(`inline; filename="figure 1.png"; filename*=UTF-8''figure%201.png`);

    const part = await fetch(png.url, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 10-19/64');
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(10, 20));
    const tail = await fetch(png.url, { headers: { range: 'bytes=-4' } });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(bytes.subarray(60));
    expect((await fetch(png.url, { headers: { range: 'bytes=64-' } })).status).toBe(416);
    expect((await fetch(png.url, { headers: { 'if-none-match': `"${png.sha256}"` } })).status).toBe(304);
    expect((await fetch(png.url, { method: 'HEAD' })).headers.get('content-length')).toBe('64');
  });

  it('cuts Markdown text at maxBytes on a character boundary', async () => {
    api = await startApi();
    const job = await runFiles({ title: 'Q' });
    const { body } = await api.gql<{ job: JobView & { results: { markdown: { text: string; truncated: boolean } } } }>(
      'query ($id: ID!) { job(id: $id) { results { markdown { text(maxBytes: 16) truncated(maxBytes: 16) } } } }',
      { id: job.id },
    );
    // "# Q\n\nGrüße aus" is 16 bytes up to the middle of "ü"'s neighbours; whole characters only.
    const text = body.data?.job.results.markdown.text as string;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(16);
    expect('# Q\n\nGrüße aus der'.startsWith(text)).toBe(true);
    expect(body.data?.job.results.markdown.truncated).toBe(true);
    const bad = await api.gql('query ($id: ID!) { job(id: $id) { results { markdown { text(maxBytes: 0) } } } }', { id: job.id });
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('refuses changed, extended and expired signed URLs', async () => {
    api = await startApi();
    const job = await runFiles({ title: 'Signed' });
    const url = new URL(job.results?.files[0]?.url as string);
    const exp = url.searchParams.get('exp') as string;
    const sig = url.searchParams.get('sig') as string;
    const by = url.searchParams.get('by') as string;
    const codeOf = async (target: string) => {
      const response = await fetch(target);
      return { status: response.status, code: ((await response.json()) as { error: { code: string } }).error.code };
    };
    const base = `${url.origin}${url.pathname}`;
    expect(await codeOf(`${base}?exp=${Number(exp) + 1}&by=${by}&sig=${sig}`)).toEqual({ status: 403, code: 'SIGNATURE_INVALID' });
    expect(await codeOf(`${base}?exp=${exp}&by=${by}&sig=${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`)).toEqual({
      status: 403,
      code: 'SIGNATURE_INVALID',
    });
    expect(await codeOf(`${base}?exp=${exp}&by=${by}&sig=${sig}&x=1`)).toEqual({ status: 403, code: 'SIGNATURE_INVALID' });
    // The signer cannot be swapped (for an admin, say), nor left out.
    const admin = Buffer.from(JSON.stringify(['alice', [], 1])).toString('base64url');
    expect(await codeOf(`${base}?exp=${exp}&by=${admin}&sig=${sig}`)).toEqual({ status: 403, code: 'SIGNATURE_INVALID' });
    expect(await codeOf(`${base}?exp=${exp}&sig=${sig}`)).toEqual({ status: 403, code: 'SIGNATURE_INVALID' });
    expect(await codeOf(`${url.origin}${url.pathname.replace('report.md', 'report.me')}?exp=${exp}&by=${by}&sig=${sig}`)).toEqual({
      status: 403,
      code: 'SIGNATURE_INVALID',
    });
    const expired = createUrlSigner({ secret: urlSecret(api.conveyor.config), ttl: -10, baseUrl: url.origin });
    expect(await codeOf(expired.fileUrl(job.id, 'report.md', 'owner'))).toEqual({ status: 403, code: 'URL_EXPIRED' });
    const fresh = createUrlSigner({ secret: urlSecret(api.conveyor.config), ttl: 60, baseUrl: url.origin });
    expect((await fetch(fresh.fileUrl(job.id, 'report.md', 'owner'))).status).toBe(200);
  });

  it('serves by credentials with read access, and answers 404 to others and to path tricks', async () => {
    api = await startApi();
    const job = await runFiles({ title: 'Private' });
    const other = await runFiles({ title: 'Other' });
    const path = `/files/${job.id}/report.md`;
    expect((await rawGet(api.url, path, { 'x-user-id': 'alice' })).status).toBe(200);
    expect((await rawGet(api.url, path, { 'x-user-id': 'bob' })).status).toBe(404);
    expect((await rawGet(api.url, path)).status).toBe(404);
    expect((await rawGet(api.url, `/archives/jobs/${job.id}.zip`, { 'x-user-id': 'bob' })).status).toBe(404);
    for (const trick of [
      `/files/${job.id}/../${other.id}/report.md`,
      `/files/${job.id}/%2e%2e/${other.id}/report.md`,
      `/files/${job.id}/assets%2Ffigure%201.png`,
      `/files/${job.id}/assets%5C..%5Creport.md`,
      `/files/${job.id}//etc/passwd`,
      `/files/${job.id}/%2Fetc%2Fpasswd`,
      `/files/${job.id}/missing.md`,
      `/files/${job.id}/upload.json`,
      `/files/..%2F..%2Fetc/passwd`,
    ]) {
      const response = await rawGet(api.url, trick, { 'x-user-id': 'alice' });
      expect(response.status, trick).toBe(404);
    }
  });
});

describe('archives', () => {
  it('streams a job ZIP and a batch ZIP with folders by track/session and a manifest whose sha256 match', async () => {
    api = await startApi();
    const job = await runFiles({ title: 'Solo' });
    const jobZip = await unzip(Buffer.from(await (await fetch(job.archiveUrl)).arrayBuffer()));
    expect([...jobZip.keys()].sort()).toEqual(['assets/figure 1.png', 'data.json', 'manifest.json', 'report.md']);

    const { body } = await api.gql<{ submitBatch: { batch: { id: string; archiveUrl: string } } }>(
      `mutation { submitBatch(input: { name: "Day 1", jobs: [
        { type: "files", parameters: { title: "Keynote", track: "Main Hall", session: "Opening keynote" } },
        { type: "files", parameters: { title: "Queues", track: "Room B", session: "Queues/at scale" } },
        { type: "files", parameters: { title: "Untracked" } }
      ] }) { batch { id archiveUrl } } }`,
    );
    const batch = body.data?.submitBatch.batch as { id: string; archiveUrl: string };
    await expect
      .poll(
        async () =>
          (await api.gql<{ batch: { status: string } }>('query ($id: ID!) { batch(id: $id) { status } }', { id: batch.id })).body.data
            ?.batch.status,
      )
      .toBe('COMPLETED');
    const response = await fetch(batch.archiveUrl);
    expect(response.headers.get('content-type')).toBe('application/zip');
    const entries = await unzip(Buffer.from(await response.arrayBuffer()));
    const manifest = JSON.parse((entries.get('manifest.json') as Buffer).toString()) as {
      kind: string;
      jobs: { folder: string; files: { path: string; sha256: string; size: number }[] }[];
    };
    expect(manifest.kind).toBe('batch');
    expect(manifest.jobs.map((j) => j.folder)).toEqual([
      'Main Hall/Opening keynote',
      'Room B/Queues_at scale',
      expect.stringMatching(/^job_/),
    ]);
    const listed = manifest.jobs.flatMap((j) => j.files);
    expect(listed).toHaveLength(9);
    for (const file of listed) {
      const content = entries.get(file.path);
      expect(content, file.path).toBeInstanceOf(Buffer);
      expect(
        createHash('sha256')
          .update(content as Buffer)
          .digest('hex'),
      ).toBe(file.sha256);
      expect(content?.length).toBe(file.size);
    }
    expect(entries.get('Main Hall/Opening keynote/report.md')?.toString()).toContain('# Keynote');
  });

  it('gives jobs whose track/session make the same folder a folder each, so no file overwrites another', async () => {
    api = await startApi();
    // "Talk." loses its trailing dot: all three ask for Main/Talk.
    const { body } = await api.gql<{ submitBatch: { batch: { id: string; archiveUrl: string } } }>(
      `mutation { submitBatch(input: { name: "Clash", jobs: [
        { type: "files", parameters: { title: "First", track: "Main", session: "Talk" } },
        { type: "files", parameters: { title: "Second", track: "Main", session: "Talk" } },
        { type: "files", parameters: { title: "Third", track: "Main", session: "Talk." } }
      ] }) { batch { id archiveUrl } } }`,
    );
    const batch = body.data?.submitBatch.batch as { id: string; archiveUrl: string };
    await expect.poll(async () => (await api.conveyor.client.getBatch(batch.id))?.status).toBe('COMPLETED');
    const entries = await unzip(Buffer.from(await (await fetch(batch.archiveUrl)).arrayBuffer()));
    const manifest = JSON.parse((entries.get('manifest.json') as Buffer).toString()) as {
      jobs: { id: string; folder: string; files: { path: string; sha256: string }[] }[];
    };
    const folders = manifest.jobs.map((j) => j.folder);
    expect(new Set(folders).size).toBe(3);
    expect(folders.filter((f) => f === 'Main/Talk')).toHaveLength(1);
    for (const folder of folders) expect(folder).toMatch(/^Main\/Talk(-[0-9A-Za-z]{8})?$/);
    // Every listed file is in the ZIP with its own content; each report is its own job's.
    const titles = new Set<string>();
    for (const job of manifest.jobs) {
      for (const file of job.files) {
        const content = entries.get(file.path);
        expect(content, file.path).toBeInstanceOf(Buffer);
        expect(
          createHash('sha256')
            .update(content as Buffer)
            .digest('hex'),
        ).toBe(file.sha256);
      }
      titles.add(/^# (\w+)/.exec(entries.get(`${job.folder}/report.md`)?.toString() ?? '')?.[1] ?? '');
    }
    expect([...titles].sort()).toEqual(['First', 'Second', 'Third']);
    expect([...entries.keys()].filter((k) => k.endsWith('report.md'))).toHaveLength(3);
  });

  it("carries its signer's access: a job made PRIVATE leaves another reader's signed archive and file URLs", async () => {
    api = await startApi();
    const { body } = await api.gql<{ submitBatch: { batch: { id: string } } }>(
      `mutation { submitBatch(input: { name: "Open day", accessControl: { visibility: PUBLIC }, jobs: [
        { type: "files", parameters: { title: "Shown", track: "T", session: "shown" } },
        { type: "files", parameters: { title: "Hidden", track: "T", session: "hidden" } }
      ] }) { batch { id } } }`,
    );
    const batchId = body.data?.submitBatch.batch.id as string;
    const view = async (user: string) =>
      (
        await api.gql<{ batch: { status: string; archiveUrl: string; jobs: { edges: { node: JobView }[] } } }>(
          `query ($id: ID!) { batch(id: $id) { status archiveUrl jobs { edges { node { id ${RESULTS} } } } } }`,
          { id: batchId },
          { 'x-user-id': user },
        )
      ).body.data?.batch;
    await expect.poll(async () => (await view('alice'))?.status).toBe('COMPLETED');
    const bobs = await view('bob');
    const alices = await view('alice');
    const hidden = bobs?.jobs.edges.map((e) => e.node).find((job) => job.results?.markdown?.text.includes('Hidden')) as JobView;
    const hiddenFile = hidden.results?.files[0]?.url as string;
    const folders = async (archiveUrl: string) => {
      const zip = await unzip(Buffer.from(await (await fetch(archiveUrl)).arrayBuffer()));
      return (JSON.parse((zip.get('manifest.json') as Buffer).toString()) as { jobs: { folder: string }[] }).jobs.map((j) => j.folder);
    };
    expect((await folders(bobs?.archiveUrl as string)).sort()).toEqual(['T/hidden', 'T/shown']);
    expect((await fetch(hiddenFile)).status).toBe(200);

    await api.gql('mutation ($id: ID!) { setJobAccess(id: $id, accessControl: { visibility: PRIVATE }) { id } }', { id: hidden.id });
    // Bob's URLs, signed before, no longer reach the job; alice's still do.
    expect(await folders(bobs?.archiveUrl as string)).toEqual(['T/shown']);
    expect((await fetch(hiddenFile)).status).toBe(404);
    expect((await folders(alices?.archiveUrl as string)).sort()).toEqual(['T/hidden', 'T/shown']);
  });

  // Its memory (RSS growth while streaming) is measured by bench/archive-bench.ts, not here.
  it('streams the whole archive of a 1,000-job batch with 100 KB per job', async () => {
    api = await startApi({ overrides: { 'worker.concurrency': 1 } });
    const { store, results } = api.conveyor;
    // Stop the worker from racing us: the jobs are completed here, by hand, with 100 KB files.
    const { value } = await store.createBatch({
      name: 'big',
      ownerId: 'alice',
      active: false,
      jobs: Array.from({ length: 1000 }, (_, n) => ({ type: 'none', parameters: { session: `s${n}` }, maxAttempts: 1 })),
    });
    await store.setBatchActive(value.batch.id, true);
    const blob = Buffer.alloc(100_000, 7);
    for (;;) {
      const job = await store.claimNext({ workerId: 'test', leaseMs: 60_000, types: ['none'] });
      if (job === null) break;
      const file = await results.put(job.id, 'talk.bin', blob, 'application/octet-stream');
      await store.complete({ jobId: job.id, workerId: 'test', leaseToken: job.leaseToken }, { files: [{ ...file }] });
    }
    const archive = createUrlSigner({ secret: urlSecret(api.conveyor.config), ttl: 60, baseUrl: api.url }).archiveUrl(
      'batches',
      value.batch.id,
      'owner',
    );
    const response = await fetch(archive);
    expect(response.status).toBe(200);
    let bytes = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    expect(bytes).toBeGreaterThan(100_000_000);
  }, 120_000);
});

describe('uploads', () => {
  const slides = readFileSync('test/fixtures/pdf/slides.pdf');

  it('accepts raw and multipart uploads that pdf jobs use, and keeps them so a restart works until they expire', async () => {
    api = await startApi();
    const raw = await fetch(`${api.url}/uploads`, {
      method: 'POST',
      headers: { 'x-user-id': 'alice', 'content-type': 'application/pdf' },
      body: slides,
    });
    expect(raw.status).toBe(201);
    const uploaded = (await raw.json()) as { uploadId: string; size: number; sha256: string; expiresAt: string };
    expect(uploaded).toMatchObject({ size: slides.length, sha256: createHash('sha256').update(slides).digest('hex') });
    const form = new FormData();
    form.append('file', new Blob([slides], { type: 'application/pdf' }), 'slides.pdf');
    const multipart = await fetch(`${api.url}/uploads`, { method: 'POST', headers: { 'x-user-id': 'alice' }, body: form });
    expect(multipart.status).toBe(201);
    expect(await multipart.json()).toMatchObject({ size: slides.length, contentType: 'application/pdf' });

    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation ($id: String!) { submitJob(input: { type: "pdf", parameters: { uploadId: $id, name: "talk" } }) { job { id } } }',
      { id: uploaded.uploadId },
    );
    const id = body.data?.submitJob.job.id as string;
    const status = async () =>
      (await api.gql<{ job: { status: string; attempts: number } }>('query ($id: ID!) { job(id: $id) { status attempts } }', { id })).body
        .data?.job;
    await expect.poll(status).toMatchObject({ status: 'COMPLETED' });
    // The upload stays after the job ended: a restart reads it again.
    expect(await api.conveyor.results.folders('upl_')).toContain(uploaded.uploadId);
    const restart = () => api.gql('mutation ($id: ID!) { restartJob(id: $id) { id status } }', { id });
    expect((await restart()).body.errors).toBeUndefined();
    await expect.poll(status).toMatchObject({ status: 'COMPLETED', attempts: 1 });
    expect((await api.gql('query ($id: ID!) { job(id: $id) { error { code } } }', { id })).body.data).toEqual({ job: { error: null } });

    // Once the TTL sweep took it, a restart says so instead of failing later.
    expect(await api.conveyor.uploads.sweep(new Date(Date.now() + 60_000))).toBe(2);
    const expired = await restart();
    expect(expired.body.errors?.[0]).toMatchObject({
      message: expect.stringContaining(`upload ${uploaded.uploadId} of job ${id} is no longer kept`),
      extensions: { code: 'UPLOAD_EXPIRED' },
    });
    await expect.poll(status).toMatchObject({ status: 'COMPLETED' });
  });

  it('deletes an upload with the job that used it (uploads.deleteAfterUse)', async () => {
    api = await startApi();
    const upload = await api.conveyor.uploads.put('alice', slides, 'application/pdf');
    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation ($id: String!) { submitJob(input: { type: "pdf", parameters: { uploadId: $id } }) { job { id } } }',
      { id: upload.uploadId },
    );
    const id = body.data?.submitJob.job.id as string;
    await expect
      .poll(
        async () =>
          (await api.gql<{ job: { status: string } }>('query ($id: ID!) { job(id: $id) { status } }', { id })).body.data?.job.status,
      )
      .toBe('COMPLETED');
    expect((await api.gql('mutation ($id: ID!) { deleteJob(id: $id) }', { id })).body.errors).toBeUndefined();
    expect(await api.conveyor.results.folders('upl_')).not.toContain(upload.uploadId);
  });

  it("answers another user's upload exactly like a missing one, and never touches it", async () => {
    api = await startApi();
    const alices = await api.conveyor.uploads.put('alice', slides, 'application/pdf');
    const missing = `upl_${'0'.repeat(32)}`;
    const submit = (uploadId: string, user: string) =>
      api.gql<{ submitJob: { job: { id: string } } }>(
        'mutation ($id: String!) { submitJob(input: { type: "pdf", parameters: { uploadId: $id } }) { job { id } } }',
        { id: uploadId },
        { 'x-user-id': user },
      );
    const foreign = (await submit(alices.uploadId, 'bob')).body.errors?.[0];
    const absent = (await submit(missing, 'bob')).body.errors?.[0];
    expect(foreign?.extensions?.code).toBe('NOT_FOUND');
    expect(absent?.extensions?.code).toBe('NOT_FOUND');
    expect(foreign?.message.replace(alices.uploadId, '<id>')).toBe(absent?.message.replace(missing, '<id>'));
    expect(await api.conveyor.store.countJobs({})).toBe(0);
    // Alice's upload is still there, and still hers to use.
    expect(await api.conveyor.results.folders('upl_')).toContain(alices.uploadId);
    const own = await submit(alices.uploadId, 'alice');
    expect(own.body.errors).toBeUndefined();
  });

  it("updateJob answers another user's upload exactly like a missing one, and changes nothing", async () => {
    api = await startApi({ role: 'api' });
    const alices = await api.conveyor.uploads.put('alice', slides, 'application/pdf');
    const bobs = await api.conveyor.uploads.put('bob', slides, 'application/pdf');
    const missing = `upl_${'0'.repeat(32)}`;
    const submitted = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation ($id: String!) { submitJob(input: { type: "pdf", parameters: { uploadId: $id } }) { job { id } } }',
      { id: bobs.uploadId },
      { 'x-user-id': 'bob' },
    );
    const id = submitted.body.data?.submitJob.job.id as string;
    const update = (uploadId: string) =>
      api.gql(
        'mutation ($id: ID!, $parameters: JSON!) { updateJob(id: $id, input: { parameters: $parameters }) { parameters } }',
        { id, parameters: { uploadId } },
        { 'x-user-id': 'bob' },
      );
    const foreign = (await update(alices.uploadId)).body.errors?.[0];
    const absent = (await update(missing)).body.errors?.[0];
    expect(foreign?.extensions?.code).toBe('NOT_FOUND');
    expect(absent?.extensions?.code).toBe('NOT_FOUND');
    expect(foreign?.message.replace(alices.uploadId, '<id>')).toBe(absent?.message.replace(missing, '<id>'));
    const stored = await api.gql<{ job: { parameters: { uploadId: string } } }>(
      'query ($id: ID!) { job(id: $id) { parameters } }',
      { id },
      { 'x-user-id': 'bob' },
    );
    expect(stored.body.data?.job.parameters.uploadId).toBe(bobs.uploadId);
    // Bob's own upload is accepted.
    expect((await update(bobs.uploadId)).body.errors).toBeUndefined();
  });

  it('refuses oversized, anonymous and empty multipart uploads and keeps nothing', async () => {
    api = await startApi({ overrides: { 'limits.maxUploadBytes': 1000 } });
    const big = await fetch(`${api.url}/uploads`, { method: 'POST', headers: { 'x-user-id': 'alice' }, body: Buffer.alloc(5000) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    // Without Content-Length (chunked), the limit is found while streaming.
    const chunked = await fetch(`${api.url}/uploads`, {
      method: 'POST',
      headers: { 'x-user-id': 'alice' },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 5; i++) controller.enqueue(new Uint8Array(500));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await fetch(`${api.url}/uploads`, { method: 'POST', body: 'x' })).status).toBe(401);
    const form = new FormData();
    form.append('note', 'no file here');
    const empty = await fetch(`${api.url}/uploads`, { method: 'POST', headers: { 'x-user-id': 'alice' }, body: form });
    expect(empty.status).toBe(400);
    expect((await fetch(`${api.url}/uploads`, { headers: { 'x-user-id': 'alice' } })).status).toBe(405);
    expect(await api.conveyor.results.folders('upl_')).toEqual([]);
  });
});

describe('result cache', () => {
  it('reuses an identical completed job without running the handler; forceRefresh runs it; others do not share', async () => {
    api = await startApi();
    const first = await runFiles({ title: 'Cache me' }, ', useCache: true');
    expect(first.cached).toBe(false);
    expect(api.gates.runs.get('files')).toBe(1);
    const second = await runFiles({ title: 'Cache me' }, ', useCache: true');
    expect(second).toMatchObject({ cached: true, cachedFrom: first.id });
    expect(api.gates.runs.get('files')).toBe(1);
    expect(second.results?.files.map((f) => f.sha256)).toEqual(first.results?.files.map((f) => f.sha256));
    expect((await fetch(second.results?.files[0]?.url as string)).status).toBe(200);
    const forced = await runFiles({ title: 'Cache me' }, ', useCache: true, forceRefresh: true');
    expect(forced.cached).toBe(false);
    expect(api.gates.runs.get('files')).toBe(2);
    // Bob may not read Alice's private jobs, so he cannot reuse their results.
    const bobs = await runFiles({ title: 'Cache me' }, ', useCache: true', 'bob');
    expect(bobs.cached).toBe(false);
    expect(api.gates.runs.get('files')).toBe(3);
    const stats = await api.gql<{ stats: { cachedJobs: number } }>('{ stats { cachedJobs } }');
    expect(stats.body.data?.stats.cachedJobs).toBe(1);
  });
});
