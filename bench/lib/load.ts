// The two load generators. Closed loop: wrk (one thread, N connections, as fast as the proxy
// answers). Open loop: bench/openloop/openloop.c, compiled here with the machine's cc, which
// sends on a fixed timeline and measures latency from each request's scheduled time.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, runPinned } from './processes.ts';
import { parseWrkOutput } from './wrk.ts';
import type { LoadSpec } from './scenario.ts';

export interface ResolvedLoad {
  kind: 'closed' | 'open';
  path: string;
  headers: string[];
  wrkArgs: string[];
  rate: number;
  connections: number;
  scheme: 'http' | 'https';
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number | null;
  errors: number;
  non2xx: number;
  unfinished: number | null;
  raw: unknown;
}

export function resolveLoad(spec: LoadSpec | undefined, defaults: { rate: number; connections: number; path: string }): ResolvedLoad {
  return {
    kind: spec?.kind ?? 'closed',
    path: spec?.path ?? defaults.path,
    headers: spec?.headers ?? [],
    wrkArgs: spec?.wrkArgs ?? [],
    rate: spec?.rate ?? defaults.rate,
    connections: spec?.connections ?? defaults.connections,
    scheme: spec?.scheme ?? 'http',
  };
}

/** Identity of a load shape: two scenarios with equal keys can share a passthrough baseline. */
export function loadKey(l: ResolvedLoad): string {
  return JSON.stringify(l.kind === 'closed' ? { ...l, rate: 0 } : { ...l, wrkArgs: [] });
}

/** The open-loop generator does not speak TLS; wrk needs to be installed. Null when runnable. */
export function loadUnavailable(l: ResolvedLoad): string | null {
  if (l.kind === 'closed' && !hasCommand('wrk')) return 'wrk is not installed: apt-get install -y wrk';
  if (l.kind === 'open' && l.scheme === 'https') return 'the open-loop generator speaks plain HTTP only';
  if (l.kind === 'open' && !hasCommand('cc')) return 'no C compiler for the open-loop generator: apt-get install -y gcc';
  return null;
}

/** Compiles openloop.c into .tmp/bench (keyed by the source hash) and returns the binary path. */
export async function ensureOpenloop(repoRoot: string): Promise<string> {
  const src = join(repoRoot, 'bench', 'openloop', 'openloop.c');
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const dir = join(repoRoot, '.tmp', 'bench');
  const bin = join(dir, `openloop-${hash}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    await runPinned('cc', null, 'cc', ['-O2', '-Wall', '-o', bin, src], 60_000);
  }
  return bin;
}

export interface OpenloopOutput {
  rate: number;
  duration_s: number;
  scheduled: number;
  completed: number;
  errors: number;
  non2xx: number;
  unfinished: number;
  achieved_rps: number;
  latency_us: { min: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
}

export function parseOpenloopOutput(text: string): OpenloopOutput {
  const line = text.trim().split('\n').pop() ?? '';
  const o = JSON.parse(line) as OpenloopOutput;
  if (typeof o.completed !== 'number' || typeof o.latency_us?.p99 !== 'number') throw new Error(`openloop: unexpected output ${line.slice(0, 300)}`);
  return o;
}

export async function runLoad(l: ResolvedLoad, port: number, cpu: number | null, durationS: number, opts: { warmupS: number; openloopBin?: string }): Promise<LoadResult> {
  if (l.kind === 'closed') {
    const args = ['-t1', `-c${l.connections}`, `-d${durationS}s`, '--latency'];
    for (const h of l.headers) args.push('-H', h);
    args.push(...l.wrkArgs, `${l.scheme}://127.0.0.1:${port}${l.path}`);
    const out = await runPinned('wrk', cpu, 'wrk', args, (durationS + 30) * 1000);
    const w = parseWrkOutput(out);
    const e = w.socketErrors;
    return {
      rps: w.requestsPerSec,
      p50Ms: w.latencyMs.p50,
      p99Ms: w.latencyMs.p99,
      p999Ms: null,
      errors: e.connect + e.read + e.write + e.timeout,
      non2xx: w.non2xx3xx,
      unfinished: null,
      raw: w,
    };
  }
  if (!opts.openloopBin) throw new Error('open-loop run without the openloop binary');
  const args = ['-p', String(port), '-u', l.path, '-r', String(l.rate), '-d', String(durationS), '-w', String(opts.warmupS), '-c', String(l.connections), '-t', '2'];
  for (const h of l.headers) args.push('-H', h);
  const o = parseOpenloopOutput(await runPinned('openloop', cpu, opts.openloopBin, args, (durationS + opts.warmupS + 30) * 1000));
  return {
    rps: o.achieved_rps,
    p50Ms: o.latency_us.p50 / 1000,
    p99Ms: o.latency_us.p99 / 1000,
    p999Ms: o.latency_us.p999 / 1000,
    errors: o.errors,
    non2xx: o.non2xx,
    unfinished: o.unfinished,
    raw: o,
  };
}
