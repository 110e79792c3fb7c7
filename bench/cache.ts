// `npm run bench:cache`: the HTTP cache (docs/cache.md, issue #14) against its anchor, in one run,
// interleaved over rounds, every proxy pinned to the same core (CPU 0; the nginx origin and wrk get
// CPU 1):
//   * cache hits (GET /c/small 100 B, /c/large 16 KiB, both max-age=3600): Sentinel's memory and
//     disk backends vs Sentinel passthrough and vs nginx proxy_cache (and nginx passthrough);
//   * a Zipf-distributed key workload (--keys 16 KiB objects, exponent --zipf-s) with every cache
//     given the same --budget: hit ratio and origin requests with and without the cache, counted
//     at the origin (nginx stub_status), and Sentinel's max RSS against budget + 32 MiB.
// See bench/README.md ("HTTP cache").
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'node:http';
import { spawnSync } from 'node:child_process';
import { parseArgs as parseNodeArgs } from 'node:util';

import { body, nginxProxyConf, originNginxConf, SMALL_BYTES, writeOriginFiles } from './lib/configs.ts';
import { CACHE_LARGE, CACHE_SMALL, nginxProxyCacheDirectives, ORIGIN_STATUS, originCacheLocations, parseStubStatusRequests, sentinelCacheConfig, STATS_PATH, ZIPF_PREFIX, zipfSequence, zipfTopShare, type SentinelCacheOptions } from './lib/cache.ts';
import { ensureOpenloop, resolveLoad, runLoad } from './lib/load.ts';
import { freePort, requireCommands, killAll, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { startResourceSampler, loadAverage } from './lib/procfs.ts';
import { median, percentile } from './lib/stats.ts';
import { buildSentinel, renderPassthrough } from './lib/targets.ts';
import { parseWrkOutput } from './lib/wrk.ts';
import { parseSize } from '../src/config/types-helpers.ts';

const REPO = resolve(import.meta.dirname, '..');
const PROXY_CPU = 0;
const LOAD_CPU = 1;
const MIB = 1024 * 1024;

const { values: argv } = parseNodeArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    targets: { type: 'string', default: 'passthrough,cache-memory,cache-disk,nginx,nginx-cache' },
    scenarios: { type: 'string', default: 'hit-small,hit-large,fixed-small,zipf' },
    rate: { type: 'string', default: '500' },
    keys: { type: 'string', default: '2000' },
    requests: { type: 'string', default: '6000' },
    'zipf-s': { type: 'string', default: '1.0' },
    budget: { type: 'string', default: '16MiB' },
    out: { type: 'string', default: join(REPO, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});

if (argv.help) {
  console.log(`usage: npm run bench:cache -- [--duration S] [--rounds N] [--connections N]
    [--targets passthrough,cache-memory,cache-disk,nginx,nginx-cache(,cache-hybrid)] [--scenarios hit-small,hit-large,fixed-small,zipf]
    [--rate N] [--keys N] [--requests N] [--zipf-s S] [--budget 16MiB] [--out DIR]
  zipf: the same --requests Zipf-distributed requests over --keys 16 KiB objects (seeded) to every
  target, 16 at a time from this process (pinned to the load core), origin requests counted.
  fixed-small: GET /c/small at a fixed --rate (open loop, bench/openloop): latency at the same
  offered load, the fair way to compare p99 of targets whose maximum throughputs differ.`);
  process.exit(0);
}

const duration = Number(argv.duration);
const rounds = Number(argv.rounds);
const connections = Number(argv.connections);
const wanted = argv.targets.split(',');
const scenarios = argv.scenarios.split(',') as ScenarioName[];
const keys = Number(argv.keys);
const zipfS = Number(argv['zipf-s']);
const budget = parseSize(argv.budget)!;
const rate = Number(argv.rate);
const zipfRequests = Number(argv.requests);
const ZIPF_CONCURRENCY = 16;

type ScenarioName = 'hit-small' | 'hit-large' | 'fixed-small' | 'zipf';

interface Running {
  port: number;
  proc: Proc;
  sentinel: boolean;
}

interface TargetSpec {
  name: string;
  start(dir: string, originPort: number, tag: string): Promise<Running>;
}

let gatewayEntry: string | undefined;
let openloopBin: string | undefined;

async function startSentinel(dir: string, name: string, config: string): Promise<Running> {
  gatewayEntry ??= await buildSentinel(REPO);
  const port = await freePort();
  const metrics = await freePort();
  const file = join(dir, `${name}.kdl`);
  writeFileSync(file, config.replaceAll('{{listen}}', `127.0.0.1:${port}`).replaceAll('{{metrics}}', `127.0.0.1:${metrics}`));
  const proc = spawnPinned(name, PROXY_CPU, process.execPath, [gatewayEntry, 'run', '-c', file], { cwd: REPO, env: { ...process.env, NODE_ENV: 'production' } });
  await waitReady(proc, port, CACHE_SMALL, 30_000);
  return { port, proc, sentinel: true };
}

async function startNginx(dir: string, name: string, conf: (port: number) => string): Promise<Running> {
  const port = await freePort();
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, conf(port));
  const proc = spawnPinned(name, PROXY_CPU, 'nginx', ['-e', 'stderr', '-p', dir, '-c', file]);
  await waitReady(proc, port, CACHE_SMALL, 10_000);
  return { port, proc, sentinel: false };
}

function passthroughTemplate(originPort: number): string {
  return renderPassthrough(REPO, { listen: '{{listen}}', origin: `127.0.0.1:${originPort}`, metrics: '{{metrics}}' });
}

function targetsFor(): TargetSpec[] {
  const sentinelCache = (name: string, o: (dir: string, tag: string) => SentinelCacheOptions): TargetSpec => ({
    name,
    start: (dir, originPort, tag) => startSentinel(dir, `${name}-${tag}`, sentinelCacheConfig(passthroughTemplate(originPort), o(dir, tag))),
  });
  const all: Record<string, TargetSpec> = {
    passthrough: { name: 'passthrough', start: (dir, originPort, tag) => startSentinel(dir, `sentinel-pass-${tag}`, passthroughTemplate(originPort)) },
    'cache-memory': sentinelCache('cache-memory', () => ({ backend: 'memory', memoryBytes: budget })),
    // a fresh directory per start: every target begins with an empty cache
    'cache-disk': sentinelCache('cache-disk', (dir, tag) => ({ backend: 'disk', memoryBytes: budget, diskPath: join(dir, `sentinel-disk-${tag}`), diskBytes: budget })),
    // memory in front of disk (opt-in): memory hits, and a bigger disk tier behind the same memory budget
    'cache-hybrid': sentinelCache('cache-hybrid', (dir, tag) => ({ backend: 'hybrid', memoryBytes: budget, diskPath: join(dir, `sentinel-hybrid-${tag}`), diskBytes: budget * 4 })),
    nginx: { name: 'nginx', start: (dir, originPort, tag) => startNginx(dir, `nginx-pass-${tag}`, (port) => nginxProxyConf(port, originPort, dir)) },
    'nginx-cache': {
      name: 'nginx-cache',
      start: (dir, originPort, tag) =>
        startNginx(dir, `nginx-cache-${tag}`, (port) => {
          const d = nginxProxyCacheDirectives(join(dir, `nginx-cache-${tag}`), budget);
          const conf = nginxProxyConf(port, originPort, dir).replace(/(\n {2}upstream origin \{)/, `\n${d.http}$1`).replace(/( {6}proxy_pass http:\/\/origin;\n)/, `$1${d.location}`);
          if (!conf.includes('proxy_cache bench')) throw new Error('nginxProxyConf changed shape: cannot add proxy_cache');
          return conf;
        }),
    },
  };
  return wanted.map((n) => {
    const t = all[n];
    if (!t) throw new Error(`unknown target "${n}" (known: ${Object.keys(all).join(', ')})`);
    return t;
  });
}

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ok(text));
    });
    req.on('error', fail);
    req.end();
  });
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  /** fixed-small only (open loop) */
  p999?: number;
  requests: number;
  rssMaxMiB: number;
  cpuPct: number;
  errors: number;
  non2xx: number;
  /** zipf: requests that reached the origin during the measured window */
  originRequests?: number;
  /** zipf: Sentinel's own cache-stats over the whole start (warm-up included) */
  cacheStats?: { hit_ratio: number; evictions: number; entries: number; size_bytes: number };
}

/** GET path on a keep-alive agent: the status (the body is read and dropped). */
function getStatus(port: number, path: string, agent: Agent): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode ?? 0));
    });
    req.on('error', fail);
    req.end();
  });
}

/** The fixed Zipf sequence, ZIPF_CONCURRENCY requests at a time; origin requests from stub_status. */
async function zipfRun(run: Running, originPort: number, seq: readonly number[]): Promise<Sample> {
  const agent = new Agent({ keepAlive: true, maxSockets: ZIPF_CONCURRENCY });
  const before = parseStubStatusRequests(await httpGet(originPort, ORIGIN_STATUS));
  const sampler = startResourceSampler(run.proc.pid);
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  let non2xx = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < seq.length) {
      const k = seq[next++]!;
      const t = performance.now();
      try {
        if ((await getStatus(run.port, `${ZIPF_PREFIX}${k}`, agent)) !== 200) non2xx++;
      } catch {
        errors++;
      }
      lat.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: ZIPF_CONCURRENCY }, worker));
  const secs = (performance.now() - t0) / 1000;
  const usage = sampler.stop();
  agent.destroy();
  const s: Sample = { rps: seq.length / secs, p50: percentile(lat, 50), p99: percentile(lat, 99), requests: seq.length, rssMaxMiB: usage.rssMaxKiB / 1024, cpuPct: usage.cpuPct, errors, non2xx };
  // the status request itself is one of the counted requests
  s.originRequests = parseStubStatusRequests(await httpGet(originPort, ORIGIN_STATUS)) - before - 1;
  if (run.sentinel) {
    const text = await httpGet(run.port, STATS_PATH).catch(() => '');
    if (text.startsWith('{')) s.cacheStats = JSON.parse(text) as Sample['cacheStats'];
  }
  return s;
}

async function measure(sc: Exclude<ScenarioName, 'zipf'>, run: Running, secs: number): Promise<Sample> {
  if (sc === 'fixed-small') {
    openloopBin ??= await ensureOpenloop(REPO);
    const sampler = startResourceSampler(run.proc.pid);
    const r = await runLoad(resolveLoad({ kind: 'open', path: CACHE_SMALL, rate }, { rate, connections, path: CACHE_SMALL }), run.port, LOAD_CPU, secs, { warmupS: 1, openloopBin });
    const usage = sampler.stop();
    return { rps: r.rps, p50: r.p50Ms, p99: r.p99Ms, p999: r.p999Ms ?? undefined, requests: Math.round(r.rps * secs), rssMaxMiB: usage.rssMaxKiB / 1024, cpuPct: usage.cpuPct, errors: r.errors + (r.unfinished ?? 0), non2xx: r.non2xx };
  }
  const args = ['-t1', `-c${connections}`, `-d${secs}s`, '--latency'];
  const url = `http://127.0.0.1:${run.port}${sc === 'hit-small' ? CACHE_SMALL : CACHE_LARGE}`;
  const sampler = startResourceSampler(run.proc.pid);
  const out = await runPinned('wrk', LOAD_CPU, 'wrk', [...args, url], (secs + 30) * 1000);
  const usage = sampler.stop();
  const w = parseWrkOutput(out);
  const e = w.socketErrors;
  return { rps: w.requestsPerSec, p50: w.latencyMs.p50, p99: w.latencyMs.p99, requests: w.requests, rssMaxMiB: usage.rssMaxKiB / 1024, cpuPct: usage.cpuPct, errors: e.connect + e.read + e.write + e.timeout, non2xx: w.non2xx3xx };
}

/**
 * CPU time the server spent per request (µs): on a machine shared with other work a process gets a
 * varying share of its core, which moves req/s, but not the CPU each request costs.
 */
const cpuPerRequest = (s: Sample): number => (s.cpuPct / 100) * 1e6 / s.rps;
const fmtN = (n: number | undefined, d = 0): string => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b !== undefined && b > 0 ? `×${(a / b).toFixed(2)}` : 'n/a');


async function main(): Promise<number> {
  if (!requireCommands(['nginx', 'wrk', 'taskset'], 'nginx wrk util-linux')) return 1;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-bench-cache-'));
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
  const seq = zipfSequence(keys, zipfS, zipfRequests);
  // this process drives the Zipf requests: keep it off the proxies' core
  spawnSync('taskset', ['-apc', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' });
  writeOriginFiles(dir);
  const originPort = await freePort();
  const originConf = join(dir, 'origin.conf');
  writeFileSync(originConf, originNginxConf(originPort, dir, originCacheLocations(dir, body(SMALL_BYTES))));
  const origin = spawnPinned('origin', LOAD_CPU, 'nginx', ['-e', 'stderr', '-p', dir, '-c', originConf]);
  const targets = targetsFor();
  const results = new Map<string, Sample[]>();
  const failures: string[] = [];
  const loadBefore = loadAverage();
  console.log(`cache bench: ${rounds} rounds x ${duration} s, ${connections} connections, zipf ${zipfRequests} requests over ${keys} keys s=${zipfS}, budget ${fmtN(budget / MIB)} MiB, load ${loadBefore}`);
  try {
    await waitReady(origin, originPort, CACHE_SMALL, 10_000);
    for (let round = 0; round < rounds; round++) {
      // rotate the order each round so the machine's drift spreads over every target
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const sc of scenarios) {
        for (const t of order) {
          let run: Running | undefined;
          try {
            // a fresh process (and empty cache) for each scenario
            run = await t.start(dir, originPort, `${sc}-${round}`);
            let s: Sample;
            if (sc === 'zipf') s = await zipfRun(run, originPort, seq); // from a cold cache: the fill is part of it
            else {
              await measure(sc, run, 2); // warm-up (JIT, cache fill), not recorded
              s = await measure(sc, run, duration);
            }
            (results.get(`${sc}|${t.name}`) ?? results.set(`${sc}|${t.name}`, []).get(`${sc}|${t.name}`)!).push(s);
            const extra = sc === 'zipf' ? `  origin ${fmtN(s.originRequests)} of ${fmtN(s.requests)} (hit ratio ${fmtN(1 - s.originRequests! / s.requests, 3)})` : '';
            console.log(`  round ${round + 1} ${sc.padEnd(9)} ${t.name.padEnd(12)} ${fmtN(s.rps).padStart(7)} req/s  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  rss ${s.rssMaxMiB.toFixed(0)} MiB  cpu ${s.cpuPct.toFixed(0)}%${extra}${s.non2xx || s.errors ? `  (${s.non2xx} non-2xx, ${s.errors} errors)` : ''}`);
          } catch (err) {
            const msg = `${sc} ${t.name}: ${(err as Error).message.split('\n').slice(0, 6).join('\n')}`;
            failures.push(msg);
            console.error(`  FAILED ${msg}`);
          } finally {
            await run?.proc.stop();
          }
        }
      }
    }
  } finally {
    await origin.stop();
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const report = renderReport(results, targets.map((t) => t.name), loadBefore, loadAverage());
  console.log(`\n${report}`);
  for (const f of failures) console.log(`failed: ${f}`);
  mkdirSync(argv.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(argv.out, `cache-${stamp}.md`), report);
  writeFileSync(join(argv.out, `cache-${stamp}.json`), JSON.stringify({ options: { duration, rounds, connections, rate, keys, zipfRequests, zipfS, budget }, load: { before: loadBefore, after: loadAverage() }, runs: Object.fromEntries(results), failures }, null, 2));
  return failures.length ? 1 : 0;
}

function renderReport(results: Map<string, Sample[]>, names: string[], loadBefore: string, loadAfter: string): string {
  const med = (sc: string, t: string, f: (s: Sample) => number | undefined): number | undefined => {
    const xs = (results.get(`${sc}|${t}`) ?? []).map(f).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const per = (sc: string, t: string, f: (s: Sample) => number | undefined, d = 0): string => (results.get(`${sc}|${t}`) ?? []).map((s) => fmtN(f(s), d)).join(' / ');
  const lines: string[] = [`medians of ${rounds} interleaved rounds, ${duration} s each, ${connections} connections (load average ${loadBefore} -> ${loadAfter})`, ''];
  if (scenarios.includes('fixed-small')) {
    lines.push(`### fixed-small (GET ${CACHE_SMALL} at ${fmtN(rate)} req/s, open loop: latency from the scheduled send time)`, '', '| target | achieved req/s | p50 ms | p99 ms | p99.9 ms | CPU % | p99 ×passthrough |', '|:--|--:|--:|--:|--:|--:|--:|');
    const p99pass = med('fixed-small', 'passthrough', (s) => s.p99);
    for (const t of names) {
      const p99 = med('fixed-small', t, (s) => s.p99);
      lines.push(`| ${t} | ${fmtN(med('fixed-small', t, (s) => s.rps))} | ${fmtN(med('fixed-small', t, (s) => s.p50), 2)} | ${fmtN(p99, 2)} (${per('fixed-small', t, (s) => s.p99, 2)}) | ${fmtN(med('fixed-small', t, (s) => s.p999), 2)} | ${fmtN(med('fixed-small', t, (s) => s.cpuPct))} | ${ratio(p99, p99pass)} |`);
    }
    lines.push('');
  }
  for (const sc of scenarios.filter((s) => s === 'hit-small' || s === 'hit-large')) {
    lines.push(`### ${sc} (GET ${sc === 'hit-small' ? CACHE_SMALL : CACHE_LARGE})`, '', '| target | req/s (per round) | p50 ms | p99 ms | RSS max MiB | CPU µs/req (per round) | ×passthrough | ×nginx proxy_cache | CPU/req ÷ passthrough\'s |', '|:--|--:|--:|--:|--:|--:|--:|--:|--:|');
    const pass = med(sc, 'passthrough', (s) => s.rps);
    const ngc = med(sc, 'nginx-cache', (s) => s.rps);
    const passCpu = med(sc, 'passthrough', cpuPerRequest);
    for (const t of names) {
      const rps = med(sc, t, (s) => s.rps);
      const cpu = med(sc, t, cpuPerRequest);
      lines.push(`| ${t} | ${fmtN(rps)} (${per(sc, t, (s) => s.rps)}) | ${fmtN(med(sc, t, (s) => s.p50), 2)} | ${fmtN(med(sc, t, (s) => s.p99), 2)} | ${fmtN(med(sc, t, (s) => s.rssMaxMiB))} | ${fmtN(cpu)} (${per(sc, t, cpuPerRequest)}) | ${ratio(rps, pass)} | ${ratio(rps, ngc)} | ${ratio(cpu, passCpu)} |`);
    }
    // the same-round ratio is steadier than the ratio of medians on a machine that drifts
    const rs = (results.get(`${sc}|cache-memory`) ?? []).map((s, i) => {
      const p = results.get(`${sc}|passthrough`)?.[i];
      const n = results.get(`${sc}|nginx-cache`)?.[i];
      return `${p ? (s.rps / p.rps).toFixed(2) : 'n/a'} / ${n ? (s.rps / n.rps).toFixed(2) : 'n/a'} / ${p ? (cpuPerRequest(p) / cpuPerRequest(s)).toFixed(2) : 'n/a'}`;
    });
    if (rs.length) lines.push('', `cache-memory per round, req/s ×passthrough / req/s ×nginx proxy_cache / passthrough's CPU per request ÷ the hit's: ${rs.join(', ')}`);
    lines.push('');
  }
  if (scenarios.includes('zipf')) {
    lines.push(`### zipf (the same ${fmtN(zipfRequests)} requests over ${fmtN(keys)} keys of 16 KiB, s=${zipfS}, ${ZIPF_CONCURRENCY} at a time, from a cold cache; every cache has ${fmtN(budget / MIB)} MiB; a perfect LRU of that size holds ~${fmtN(Math.floor(budget / (17 * 1024)))} keys = ${fmtN(100 * zipfTopShare(keys, zipfS, Math.floor(budget / (17 * 1024))), 1)} % of requests)`, '');
    lines.push('| target | req/s | p99 ms | requests | origin requests | hit ratio (origin-counted) | cache-stats hit ratio | RSS max MiB | RSS over passthrough MiB |', '|:--|--:|--:|--:|--:|--:|--:|--:|--:|');
    const passRss = med('zipf', 'passthrough', (s) => s.rssMaxMiB);
    for (const t of names) {
      const req = med('zipf', t, (s) => s.requests);
      const org = med('zipf', t, (s) => s.originRequests);
      const rss = med('zipf', t, (s) => s.rssMaxMiB);
      const cacheStats = med('zipf', t, (s) => s.cacheStats?.hit_ratio);
      const hr = med('zipf', t, (s) => (s.originRequests !== undefined ? 1 - s.originRequests / s.requests : undefined));
      lines.push(`| ${t} | ${fmtN(med('zipf', t, (s) => s.rps))} | ${fmtN(med('zipf', t, (s) => s.p99), 2)} | ${fmtN(req)} | ${fmtN(org)} | ${fmtN(hr, 3)} | ${fmtN(cacheStats, 3)} | ${fmtN(rss)} (${per('zipf', t, (s) => s.rssMaxMiB)}) | ${t.startsWith('cache-') && rss !== undefined && passRss !== undefined ? `${fmtN(rss - passRss)} (budget ${fmtN(budget / MIB)} + 32)` : ''} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
process.exitCode = await main();
