// `npm run bench:static`: static files and the compress filter (docs/static-files.md, issue #14),
// same run, interleaved over rounds, every server pinned to CPU 0 (the nginx origin and wrk on
// CPU 1):
//   * file:     GET of a 16 KiB file from Sentinel's static-files (compress #false) vs nginx
//               serving the same file with `sendfile on` (and open_file_cache);
//   * compress: GET of the origin's 16 KiB text through Sentinel with the compress filter (gzip
//               level 6, Accept-Encoding: gzip) vs the same request through Sentinel passthrough.
// Ratios are per round (same machine state) and their median. See bench/README.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs as parseNodeArgs } from 'node:util';
import { body, LARGE_BYTES, LARGE_PATH, nginxHttpCommon, originNginxConf, writeOriginFiles } from './lib/configs.ts';
import { freePort, requireCommands, killAll, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { loadAverage } from './lib/procfs.ts';
import { median } from './lib/stats.ts';
import { buildSentinel } from './lib/targets.ts';
import { parseWrkOutput } from './lib/wrk.ts';

const REPO = resolve(import.meta.dirname, '..');
const SERVER_CPU = 0;
const LOAD_CPU = 1;
const FILE_PATH = '/files/page.txt';
const GZ_PATH = '/gz/large';

const { values: argv } = parseNodeArgs({
  options: {
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    out: { type: 'string', default: join(REPO, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (argv.help) {
  console.log('usage: npm run bench:static -- [--duration S] [--rounds N] [--connections N] [--out DIR]');
  process.exit(0);
}
const duration = Number(argv.duration);
const rounds = Number(argv.rounds);
const connections = Number(argv.connections);

function sentinelConfig(port: number, metrics: number, originPort: number, dir: string): string {
  return `system { worker-threads 1 }
listeners { listener "bench" { address "127.0.0.1:${port}"; protocol "http" } }
filters { filter "c" { type "compress"; algorithms "gzip"; level 6 } }
routes {
  route "files" { matches { path-prefix "/files/" }; static-files { root "${dir}/www"; compress #false } }
  route "gz" { matches { path-prefix "/gz/" }; upstream "origin"; filters "c" }
  route "all" { matches { path-prefix "/" }; upstream "origin" }
}
upstreams { upstream "origin" { target "127.0.0.1:${originPort}" } }
observability {
  metrics { enabled #true; address "127.0.0.1:${metrics}"; path "/metrics" }
  logging { level "warn"; access-log { enabled #false } }
}
`;
}

function nginxStaticConf(port: number, dir: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx-static.pid;
error_log stderr warn;
events { worker_connections 4096; multi_accept on; }
http {
${nginxHttpCommon(dir)}  default_type text/plain;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${dir}/www;
  }
}
`;
}

interface Case {
  name: string;
  port: () => number;
  path: string;
  headers: string[];
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  bytesPerReq: number;
  errors: number;
  non2xx: number;
}

async function measure(c: Case, secs: number): Promise<Sample> {
  const args = ['-t1', `-c${connections}`, `-d${secs}s`, '--latency', ...c.headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${c.port()}${c.path}`];
  const w = parseWrkOutput(await runPinned('wrk', LOAD_CPU, 'wrk', args, (secs + 30) * 1000));
  const e = w.socketErrors;
  return { rps: w.requestsPerSec, p50: w.latencyMs.p50, p99: w.latencyMs.p99, bytesPerReq: w.transferBytesPerSec / Math.max(1, w.requestsPerSec), errors: e.connect + e.read + e.write + e.timeout, non2xx: w.non2xx3xx };
}

const fmt = (n: number | undefined, d = 0): string => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

async function main(): Promise<number> {
  if (!requireCommands(['nginx', 'wrk', 'taskset'], 'nginx wrk util-linux')) return 1;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-bench-static-'));
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'www/files']) mkdirSync(join(dir, d), { recursive: true });
  writeOriginFiles(dir);
  writeFileSync(join(dir, 'www', 'files', 'page.txt'), body(LARGE_BYTES));
  const procs: Proc[] = [];
  const loadBefore = loadAverage();
  const results = new Map<string, Sample[]>();
  try {
    const originPort = await freePort();
    writeFileSync(join(dir, 'origin.conf'), originNginxConf(originPort, dir, `    location = ${GZ_PATH} { alias ${dir}/large.body; }\n`));
    const origin = spawnPinned('origin', LOAD_CPU, 'nginx', ['-e', 'stderr', '-p', dir, '-c', join(dir, 'origin.conf')]);
    procs.push(origin);
    await waitReady(origin, originPort, LARGE_PATH, 10_000);
    const entry = await buildSentinel(REPO);
    const sPort = await freePort();
    writeFileSync(join(dir, 'sentinel.kdl'), sentinelConfig(sPort, await freePort(), originPort, dir));
    const sentinel = spawnPinned('sentinel', SERVER_CPU, process.execPath, [entry, 'run', '-c', join(dir, 'sentinel.kdl')], { cwd: REPO, env: { ...process.env, NODE_ENV: 'production' } });
    procs.push(sentinel);
    await waitReady(sentinel, sPort, FILE_PATH, 30_000);
    const nPort = await freePort();
    writeFileSync(join(dir, 'nginx-static.conf'), nginxStaticConf(nPort, dir));
    const nginx = spawnPinned('nginx-static', SERVER_CPU, 'nginx', ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx-static.conf')]);
    procs.push(nginx);
    await waitReady(nginx, nPort, FILE_PATH, 10_000);
    const gzip = ['Accept-Encoding: gzip'];
    const cases: Case[] = [
      { name: 'file sentinel', port: () => sPort, path: FILE_PATH, headers: [] },
      { name: 'file nginx-sendfile', port: () => nPort, path: FILE_PATH, headers: [] },
      { name: 'proxy passthrough', port: () => sPort, path: LARGE_PATH, headers: gzip },
      { name: 'proxy compress-gzip', port: () => sPort, path: GZ_PATH, headers: gzip },
    ];
    console.log(`static bench: ${rounds} rounds x ${duration} s, ${connections} connections, 16 KiB bodies, load ${loadBefore}`);
    for (const c of cases) await measure(c, 2); // warm-up (JIT, page cache), not recorded
    for (let round = 0; round < rounds; round++) {
      const order = cases.map((_, i) => cases[(i + round) % cases.length]!);
      for (const c of order) {
        const s = await measure(c, duration);
        (results.get(c.name) ?? results.set(c.name, []).get(c.name)!).push(s);
        console.log(`  round ${round + 1} ${c.name.padEnd(20)} ${fmt(s.rps).padStart(7)} req/s  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  ${fmt(s.bytesPerReq)} B/req${s.non2xx || s.errors ? `  (${s.non2xx} non-2xx, ${s.errors} errors)` : ''}`);
      }
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const perRound = (a: string, b: string): number[] => (results.get(a) ?? []).map((s, i) => s.rps / (results.get(b)?.[i]?.rps ?? NaN));
  const lines = [`medians of ${rounds} interleaved rounds, ${duration} s each, ${connections} connections (load average ${loadBefore} -> ${loadAverage()})`, '', '| case | req/s (per round) | p50 ms | p99 ms | bytes/response |', '|:--|--:|--:|--:|--:|'];
  for (const [name, xs] of results) {
    lines.push(`| ${name} | ${fmt(median(xs.map((s) => s.rps)))} (${xs.map((s) => fmt(s.rps)).join(' / ')}) | ${fmt(median(xs.map((s) => s.p50)), 2)} | ${fmt(median(xs.map((s) => s.p99)), 2)} | ${fmt(median(xs.map((s) => s.bytesPerReq)))} |`);
  }
  const r1 = perRound('file sentinel', 'file nginx-sendfile');
  const r2 = perRound('proxy compress-gzip', 'proxy passthrough');
  lines.push('', `static 16 KiB file, Sentinel / nginx sendfile, per round: ${r1.map((x) => x.toFixed(2)).join(', ')} (median ×${median(r1).toFixed(2)})`);
  lines.push(`compress filter (gzip) / passthrough, per round: ${r2.map((x) => x.toFixed(2)).join(', ')} (median ×${median(r2).toFixed(2)})`);
  const report = lines.join('\n');
  console.log(`\n${report}`);
  mkdirSync(argv.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(argv.out, `static-${stamp}.md`), report);
  return 0;
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
process.exitCode = await main();
