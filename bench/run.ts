/**
 * `npm run bench`: runs every benchmark, prints the results, writes them into
 * docs/PERFORMANCE.md (between the bench markers) and exits 1 when a target is missed.
 * `BENCH_QUICK=1` runs smaller sizes (a smoke run; figures are not written);
 * `BENCH_ONLY=<words>` runs the benchmarks whose label contains them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, totalmem } from 'node:os';
import { benchFiles } from './files-bench.js';
import { benchFanout, benchJobQuery } from './graphql-bench.js';
import { benchIngest } from './ingest-bench.js';
import { isolated } from './isolated.js';
import { benchLive } from './live-bench.js';
import { type BenchResult, benchBulkEnqueue, benchClaimComplete, benchMillion } from './store-bench.js';
import { benchWebhooks } from './webhook-bench.js';
import { benchIoBound, benchLatency, benchWorkerProcesses, benchWorkerThroughput } from './worker-bench.js';

const quick = process.env.BENCH_QUICK === '1';
/** `BENCH_ONLY=<words>`: only the benchmarks whose label contains them (figures are not written). */
const only = process.env.BENCH_ONLY ?? '';

async function main(): Promise<void> {
  const results: BenchResult[] = [];
  const run = async (label: string, fn: () => Promise<BenchResult | BenchResult[]>) => {
    if (!label.includes(only)) return;
    process.stdout.write(`running ${label}…\n`);
    const out = await fn();
    for (const result of Array.isArray(out) ? out : [out]) {
      results.push(result);
      const mark = result.pass === null ? '' : result.pass ? 'PASS' : 'FAIL';
      process.stdout.write(`  ${mark.padEnd(4)} ${result.name}: ${result.value} (target ${result.target})\n`);
      for (const line of result.detail ?? []) process.stdout.write(`         ${line}\n`);
    }
  };
  await run('bulk enqueue', () => benchBulkEnqueue(quick ? 2 : 5, quick ? 2 : 10));
  await run('claim + complete', () => benchClaimComplete(quick ? 2 : 5, quick ? 300 : 2000));
  await run('1,000,000 jobs', () => benchMillion(quick ? 50_000 : 1_000_000));
  await run('worker throughput', () => benchWorkerThroughput(quick ? 1 : 3, quick ? 5000 : 20_000));
  await run('worker processes', () => benchWorkerProcesses(quick ? 1 : 3, quick ? 5000 : 20_000));
  await run('worker I/O-bound', () => benchIoBound(quick ? 1 : 3, quick ? 5000 : 20_000));
  await run('enqueue → start latency', () => benchLatency(quick ? 200 : 1000));
  // In a fresh process: RSS would otherwise carry what the benchmarks before it left behind.
  await run('worker memory', () => isolated('./worker-bench.js', 'benchMemory', quick ? 100_000 : 1_000_000));
  await run('job(id) over HTTP', () => benchJobQuery(quick ? 1 : 5, quick ? 300 : 2000));
  await run('webhook dispatcher', () => benchWebhooks(quick ? 1 : 5, quick ? 300 : 2000));
  await run('/files download', () => benchFiles(quick ? 1 : 7));
  await run('batch archive memory', () => isolated('./archive-bench.js', 'benchArchiveMemory', quick ? 200 : 1000));
  await run('inbound webhooks', () => benchIngest(quick ? 1 : 5, quick ? 500 : 3000));
  await run('subscription fan-out', () => benchFanout(quick ? [200] : [1000, 5000], quick ? 20 : 100, quick ? 1 : 3));
  // BENCH_LIVE_SIZES=10000 (comma-separated socket counts) to run chosen sizes only.
  const liveSizes = process.env.BENCH_LIVE_SIZES?.split(',').map(Number) ?? (quick ? [200] : [1000, 5000, 10_000]);
  await run('live progress', () => benchLive(liveSizes, quick ? 20 : 1000, quick ? 3 : 20));

  if (!quick && only === '') {
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (${arch()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    const table = [
      `Last run: ${new Date().toISOString().slice(0, 10)} on ${machine}.`,
      '',
      '| benchmark | result | target | |',
      '| --- | --- | --- | --- |',
      ...results.map((r) => `| ${r.name} | ${r.value} | ${r.target} | ${r.pass === null ? '' : r.pass ? 'pass' : '**FAIL**'} |`),
      '',
      ...results.filter((r) => r.detail).flatMap((r) => [`${r.name}:`, '', '```', ...(r.detail ?? []), '```', '']),
    ].join('\n');
    const doc = readFileSync('docs/PERFORMANCE.md', 'utf8');
    const updated = doc.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${table}\n<!-- bench:end -->`);
    writeFileSync('docs/PERFORMANCE.md', updated);
    process.stdout.write('figures written to docs/PERFORMANCE.md\n');
  }
  if (results.some((r) => r.pass === false)) process.exit(1);
}

await main();
