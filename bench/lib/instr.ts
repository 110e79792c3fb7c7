// Counting a gateway's instructions per request under callgrind (bench/ab.ts and
// bench/tracing.ts --mode instr): the process runs under `valgrind --tool=callgrind
// --instr-atstart=no`, is warmed up uninstrumented, then per window its counters are zeroed,
// exactly n requests are sent and the counters are dumped. Deterministic up to GC and JIT timing:
// what else runs on the machine does not change a count.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { parseCallgrindCallsTo, parseCallgrindSummary } from './callgrind.ts';
import { splitCallgrindDump, type InstrSplit } from './callgrind-split.ts';

/** The valgrind command line that runs a gateway counted; dumps go to `dir/<name>.<pid>.N`. */
export function callgrindWrap(dir: string, name: string): string[] {
  // --smc-check=all: V8 writes and patches machine code; --instr-atstart=no: start-up and warm-up
  // run uninstrumented (several times faster; V8 tiers up by counts, not by time)
  // BENCH_CALLGRIND_FLAGS: more callgrind options, e.g. "--cache-sim=yes --branch-sim=yes" (the
  // dumps then carry cache and branch-miss events after Ir, which stays the first event)
  const extra = process.env.BENCH_CALLGRIND_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
  return ['valgrind', '--tool=callgrind', '--smc-check=all', '--instr-atstart=no', ...extra, `--callgrind-out-file=${join(dir, `${name}.%p`)}`];
}

/** One request of sendFixed, as a request builder gives it. */
export interface FixedRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * Sends exactly n requests over `concurrency` keep-alive connections: GETs of `path` with
 * `headers`, or, when `path` is a builder, the request it returns for each one (a fresh counter, a
 * POST body: bench/waf-path-instr.ts); returns the non-200 count.
 */
export async function sendFixed(port: number, path: string | (() => FixedRequest), n: number, concurrency: number, headers: Record<string, string> = {}): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const fixed: FixedRequest | undefined = typeof path === 'string' ? { path, headers } : undefined;
  let sent = 0;
  let bad = 0;
  const worker = async (): Promise<void> => {
    while (sent < n) {
      sent++;
      const r = fixed ?? (path as () => FixedRequest)();
      const status = await new Promise<number>((ok) => {
        const req = request({ host: '127.0.0.1', port, method: r.method ?? 'GET', path: r.path, agent, headers: r.headers }, (res) => {
          res.resume();
          res.on('end', () => ok(res.statusCode ?? 0));
          res.on('error', () => ok(0));
        });
        req.on('error', () => ok(0));
        req.end(r.body);
      });
      if (status !== 200) bad++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return bad;
}

/** Instrumentation on for a process started with callgrindWrap. */
export function instrumentationOn(pid: number): void {
  execFileSync('callgrind_control', ['-i', 'on', String(pid)], { stdio: 'ignore' });
}

/**
 * V8's runtime function that object-literal properties after a computed key go through when the
 * site's feedback is megamorphic; Node's process.nextTick builds its tick object that way, and
 * some processes (per process, by chance) call it 4 times per nextTick for their whole life
 * (docs/architecture.md, "A per-process V8 state"). Counted per window so that a reader can tell
 * which state each process was in: instruction counts of processes in different states differ by
 * 10-15% whatever the code under test.
 */
export const SLOW_STATE_FN = 'Runtime_DefineKeyedOwnPropertyInLiteral';

/**
 * Zeroes the process's counters, runs `load`, dumps, and returns the instructions executed
 * meanwhile (every thread: JIT, GC, libuv) and the calls of SLOW_STATE_FN. `keep` names the file to keep the dump as (for
 * callgrind_annotate), given the dump's own name; otherwise it is removed.
 */
export async function countWindow<T>(dir: string, name: string, pid: number, load: () => Promise<T>, keep?: (dump: string) => string): Promise<{ instr: number; defineCalls: number; split: InstrSplit; result: T }> {
  execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore' });
  const result = await load();
  const before = new Set(readdirSync(dir));
  execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
  const fresh = readdirSync(dir).filter((f) => f.startsWith(`${name}.${pid}.`) && !before.has(f));
  if (fresh.length !== 1) throw new Error(`expected one new callgrind dump for ${name}, found ${fresh.join(', ') || 'none'}`);
  const file = join(dir, fresh[0]!);
  const text = readFileSync(file, 'utf8');
  const instr = parseCallgrindSummary(text);
  const defineCalls = parseCallgrindCallsTo(text, SLOW_STATE_FN);
  // GC and TurboFan are split off: a compile or a full GC that falls into one window moves its total by far more than the code under test
  const split = splitCallgrindDump(text);
  if (keep) renameSync(file, keep(fresh[0]!));
  else rmSync(file);
  return { instr, defineCalls, split, result };
}
