// A same-run A/B of two checkouts on the agent-hop routes (/pass: no filter; /agent: one
// allow-all agent on request headers) that can resolve a few percent (issue 18: "within 3% of
// today"). Two methods:
//
//   node --import tsx bench/ab.ts --baseline DIR [--mode time] [--pairs 40] [--duration 2]
//     Many short rounds, interleaved ABBA (A B B A, then B A A B, ...) so both sides see the same
//     drift and each position equally often; each adjacent A/B pair gives a ratio. Reported: the
//     median of the per-pair ratios current/baseline with a bootstrap 95% interval, for req/s
//     (wrk -c50, CPU 1) and for the gateway's CPU time per request (schedstat, ns; gateway on
//     CPU 0). Single rounds swing by up to 1.6x even on a quiet machine; the median over 40 pairs
//     and its interval say how far that averages out.
//
//   node --import tsx bench/ab.ts --baseline DIR --mode instr [--windows 5] [--requests 2000]
//     Deterministic: each gateway runs under valgrind (callgrind, --smc-check=all for V8's JIT),
//     gets --warmup requests per path, then per window the counters are zeroed, exactly
//     --requests requests are sent (keep-alive, --concurrency connections) and the instructions
//     the gateway process executed (every thread: JIT, GC, libuv) are dumped. Instructions per
//     request do not depend on what else runs on the machine; the spread between windows comes
//     from GC and JIT timing, and the interval says how large it is. Each window also prints the
//     calls per request of V8's Runtime_DefineKeyedOwnPropertyInLiteral: ~36 in a process in the
//     slow per-process state (docs/architecture.md), ~0 otherwise; compare sides in the same state.
//     "rest" is the same count without V8's GC and TurboFan and without once-a-second timer work
//     (bench/lib/callgrind-split.ts): what the requests themselves ran.
//     --keep-dumps DIR keeps each window's dump (callgrind_annotate shows where native code spends
//     them; JIT code is "???"). With `--node-flags='--perf-basic-prof ...'` bench/callgrind-diff.ts
//     names JIT code too: the dumps are named `<side>-<path>-<n>.<pid>.callgrind` for it.
//
//   node --import tsx bench/ab.ts --baseline DIR --mode sys [--windows 4] [--duration 3]
//     Syscalls per request, gateway and agent process apart, counted by the kernel's syscall
//     tracepoints (`perf stat -e syscalls:sys_enter_*`, no ptrace: the processes run at full
//     speed, so frames batch as they do unobserved) during a wrk -c50 run of --duration seconds;
//     per request = count / wrk's request count. Also the gateway's CPU time per request. Counts
//     of batched writes depend on how many requests share a turn, so both sides are measured in
//     alternating windows under the same load; needs perf and root (or perf_event_paranoid <= -1).
//
//   node --import tsx bench/ab.ts --baseline DIR --mode perf [--windows 2] [--duration 4] [--top 40]
//     Where the gateway's CPU goes, by function: each gateway runs with --perf-basic-prof (JIT
//     code named in /tmp/perf-PID.map) and `perf record -F 999` samples it during wrk -c50 runs
//     of --duration seconds; self samples per function are normalised per request (µs per request
//     = samples / 999 Hz / requests) and grouped (kernel, GC, JSON, promise machinery, V8 builtins,
//     the agent code, other JavaScript, other native). Printed per side: the groups for /pass and
//     /agent and the functions that differ most between them (what the hop costs), and the
//     current-minus-baseline groups per path. Samples are a ranking under load, not a speed.
//
// All: --baseline DIR is another checkout (git worktree with node_modules), built with its own
// tsc (.tmp/bench/dist); "current" is this checkout. --baseline . is an A/A run (the method's
// own noise). --paths pass,agent picks the routes. --tracing RATE turns OpenTelemetry tracing on
// in both gateways at that sampling rate, exporting to an OTLP/HTTP sink in this process;
// --baseline-tracing RATE|off gives the baseline another rate (issue 15: `--baseline .
// --mode instr --tracing 1 --baseline-tracing off --paths pass` is what tracing every request
// costs, export included). --node-flags "..." passes flags to both gateways (e.g. --predictable-gc-schedule: a fixed heap growth, so major GCs come at the same
// allocation points in both builds).
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { spawn, spawnSync } from 'node:child_process';
import { startHopOrigin, startHopSide, type HopSide } from './lib/agent-hop-side.ts';
import { benchScratchDir, hasCommand } from './lib/processes.ts';
import { treeCpuNs } from './lib/procfs.ts';
import { runLoad } from './lib/load.ts';
import type { WrkResult } from './lib/wrk.ts';
import { bootstrapMedianInterval, median } from './lib/stats.ts';
import { callgrindWrap, countWindow, instrumentationOn, sendFixed, SLOW_STATE_FN } from './lib/instr.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';
import { startPerfStat, syscallEvents, type PerfStatSession } from './lib/perf-stat.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    mode: { type: 'string', default: 'time' },
    paths: { type: 'string', default: 'pass,agent' },
    // time mode
    pairs: { type: 'string', default: '40' },
    duration: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    // instr mode
    windows: { type: 'string', default: '5' },
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '6000' },
    concurrency: { type: 'string', default: '8' },
    // both: tracing at this sampling rate on both gateways, to an OTLP sink in this process
    tracing: { type: 'string' },
    'baseline-tracing': { type: 'string' },
    // instr mode: keep each window's callgrind dump in this directory (for callgrind_annotate)
    'keep-dumps': { type: 'string' },
    // both: node flags for both gateways, space-separated (e.g. "--predictable-gc-schedule")
    'node-flags': { type: 'string', default: '' },
    // perf mode: how many functions of the agent-minus-pass difference to print
    top: { type: 'string', default: '40' },
  },
});
if (!values.baseline) {
  console.error('usage: bench/ab.ts --baseline DIR [--mode time|instr] (see the head of this file)');
  process.exit(2);
}
const mode = values.mode;
if (mode !== 'time' && mode !== 'instr' && mode !== 'sys' && mode !== 'perf') throw new Error(`--mode ${mode}: expected time, instr, sys or perf`);
if ((mode === 'sys' || mode === 'perf') && !hasCommand('perf')) throw new Error('--mode sys needs perf (apt-get install -y linux-perf or linux-tools)');
if (mode === 'instr' && !hasCommand('valgrind')) throw new Error('--mode instr needs valgrind (apt-get install -y valgrind)');
const paths = values.paths.split(',').map((p) => p.trim()) as ('pass' | 'agent')[];
for (const p of paths) if (p !== 'pass' && p !== 'agent') throw new Error(`--paths: unknown path ${p}`);
const REPO = resolve(import.meta.dirname, '..');

const tmp = benchScratchDir('ab-');

const fmt = (x: number, d = 3) => x.toFixed(d);

/** "×0.987 (95% 0.975-0.999, n 40)" plus what the interval resolves at 3%. */
function verdict(ratios: number[]): string {
  const [lo, hi] = bootstrapMedianInterval(ratios);
  const within = lo >= 0.97 && hi <= 1.03 ? 'within 3%' : hi < 0.97 || lo > 1.03 ? 'differs by more than 3%' : 'not resolved at 3%';
  return `×${fmt(median(ratios))} (95% ${fmt(lo)}-${fmt(hi)}, n ${ratios.length}): ${within}`;
}

// ---- the origin and the two sides --------------------------------------------------------------
const { port: originPort, proc: origin } = await startHopOrigin(tmp);
const sink = values.tracing === undefined && values['baseline-tracing'] === undefined ? undefined : await startOtlpSink();
const tracingAt = (rate: string | undefined) => (sink && rate !== undefined && rate !== 'off' ? { endpoint: `http://127.0.0.1:${sink.port}`, rate: Number(rate) } : undefined);
const tracingOf = (name: string) => tracingAt(name === 'baseline' ? (values['baseline-tracing'] ?? values.tracing) : values.tracing);

const cgDir = join(tmp, 'callgrind');
mkdirSync(cgDir);
// --instr-atstart=no: start-up and warm-up run uninstrumented (several times faster; V8 tiers
// up by counts, not by time), instrumentation goes on before the first window
const callgrind = (name: string) => callgrindWrap(cgDir, name);
const nodeFlags = [...values['node-flags'].split(/\s+/).filter(Boolean), ...(mode === 'perf' ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(tmp, 'v8-%p.log')}`] : [])];
const startSide = (name: string, root: string): Promise<HopSide> =>
  mode === 'instr'
    ? // under valgrind nothing is pinned: the counts do not depend on the core, and two sides may share the machine
      startHopSide(name, root, { dir: join(tmp, name), originPort, gatewayCpu: null, agentCpu: null, wrap: callgrind(name), readyMs: 600_000, agentTimeoutMs: 120_000, nodeFlags, tracing: tracingOf(name) })
    : startHopSide(name, root, { dir: join(tmp, name), originPort, gatewayCpu: 0, agentCpu: null, nodeFlags, tracing: tracingOf(name) });
// started one after the other: two tsc builds at once would double the start-up on two cores
const current = await startSide('current', REPO);
const baseline = await startSide('baseline', resolve(values.baseline));
const sides = [current, baseline] as const;

// ---- time mode ---------------------------------------------------------------------------------
interface Round {
  requests: number;
  rps: number;
  cpuUsPerReq: number;
  errors: number;
}

async function timed(side: HopSide, path: string, seconds: number): Promise<Round> {
  const c0 = treeCpuNs(side.gateway.pid);
  const r = await runLoad({ kind: 'closed', rate: 0, path: `/${path}`, headers: [], wrkArgs: [], connections: Number(values.connections), scheme: 'http' }, side.port, 1, seconds, { warmupS: 0 });
  const cpuNs = treeCpuNs(side.gateway.pid) - c0;
  const n = Math.max(1, (r.raw as WrkResult).requests);
  return { rps: r.rps, cpuUsPerReq: cpuNs / 1000 / n, errors: r.errors + r.non2xx, requests: n };
}

async function timeMode(): Promise<void> {
  const pairs = Number(values.pairs);
  const duration = Number(values.duration);
  const blocks = Math.ceil(pairs / 2);
  console.log(`time mode: ${blocks} ABBA blocks x ${paths.length} paths x 4 rounds of ${duration} s (~${Math.round((blocks * paths.length * 4 * (duration + 0.2)) / 60)} min)`);
  for (const s of sides) for (const p of paths) await timed(s, p, 2); // warm-up
  const got = new Map(paths.map((p) => [p, { rps: [] as number[], cpu: [] as number[], cur: [] as Round[], base: [] as Round[] }]));
  for (let b = 0; b < blocks; b++) {
    const [x, y] = b % 2 === 0 ? [current, baseline] : [baseline, current];
    for (const p of b % 2 === 0 ? paths : [...paths].reverse()) {
      const g = got.get(p)!;
      const seq = [x, y, y, x];
      const rounds: Round[] = [];
      for (const s of seq) rounds.push(await timed(s, p, duration));
      // pairs (seq[0], seq[1]) and (seq[3], seq[2]): each has one current and one baseline round
      for (const [i, j] of [
        [0, 1],
        [3, 2],
      ] as const) {
        const [c, base] = seq[i] === current ? [rounds[i]!, rounds[j]!] : [rounds[j]!, rounds[i]!];
        g.rps.push(c.rps / base.rps);
        g.cpu.push(c.cpuUsPerReq / base.cpuUsPerReq);
        g.cur.push(c);
        g.base.push(base);
        const err = c.errors + base.errors;
        console.log(
          `[block ${b + 1}] ${p.padEnd(5)} current ${c.rps.toFixed(0)} req/s ${c.cpuUsPerReq.toFixed(1)} µs/req | baseline ${base.rps.toFixed(0)} req/s ${base.cpuUsPerReq.toFixed(1)} µs/req | ratio req/s ×${fmt(c.rps / base.rps)} CPU ×${fmt(c.cpuUsPerReq / base.cpuUsPerReq)}${err ? ` errors ${err}` : ''}`,
        );
      }
    }
  }
  console.log(`\nA/B time mode: ${blocks * 2} pairs per path, ${duration} s rounds in ABBA order, wrk -c${values.connections} on CPU 1, gateways on CPU 0`);
  console.log(`current = ${REPO}, baseline = ${resolve(values.baseline!)}; median of per-pair ratios current/baseline, bootstrap 95% interval`);
  for (const p of paths) {
    const g = got.get(p)!;
    console.log(`/${p}: req/s ${verdict(g.rps)}`);
    console.log(`/${p}: gateway CPU/req ${verdict(g.cpu)}`);
    console.log(
      `/${p}: medians current ${median(g.cur.map((r) => r.rps)).toFixed(0)} req/s ${median(g.cur.map((r) => r.cpuUsPerReq)).toFixed(1)} µs/req, baseline ${median(g.base.map((r) => r.rps)).toFixed(0)} req/s ${median(g.base.map((r) => r.cpuUsPerReq)).toFixed(1)} µs/req`,
    );
  }
}

// ---- instr mode --------------------------------------------------------------------------------
/** Zeroes the side's callgrind counters, runs the requests, dumps, and returns instructions. */
async function countSide(side: HopSide, path: string, n: number): Promise<{ instr: number; rest: number; define: number; bad: number }> {
  const keepDir = values['keep-dumps'];
  if (keepDir) mkdirSync(keepDir, { recursive: true });
  // named `<side>-<path>-<n>.<pid>.callgrind`, the form bench/callgrind-diff.ts reads the pid from (for the perf map)
  const keep = keepDir ? (dump: string) => join(keepDir, `${side.name}-${path}-${dump.split('.').slice(2).join('-')}.${side.gateway.pid}.callgrind`) : undefined;
  const { instr, defineCalls, split, result } = await countWindow(cgDir, side.name, side.gateway.pid, () => sendFixed(side.port, `/${path}`, n, Number(values.concurrency)), keep);
  return { instr, rest: split.rest, define: defineCalls / n, bad: result };
}

async function instrMode(): Promise<void> {
  const windows = Number(values.windows);
  const n = Number(values.requests);
  const warmup = Number(values.warmup);
  console.log(`instr mode: warm-up ${warmup} requests per side and path, then ${windows} windows of ${n} requests, both sides counted at the same time, callgrind`);
  // warm-up: both sides at once (independent processes; the counts do not care)
  await Promise.all(sides.map(async (s) => {
    for (const p of paths) await sendFixed(s.port, `/${p}`, warmup, Number(values.concurrency));
    instrumentationOn(s.gateway.pid);
    for (const p of paths) await sendFixed(s.port, `/${p}`, Math.min(warmup, 200), Number(values.concurrency)); // re-translate the hot code instrumented
  }));
  const got = new Map(paths.map((p) => [p, { cur: [] as number[], base: [] as number[], curRest: [] as number[], baseRest: [] as number[] }]));
  for (let w = 0; w < windows; w++) {
    for (const p of w % 2 === 0 ? paths : [...paths].reverse()) {
      const g = got.get(p)!;
      // the two sides measured at the same time: a window's order does not matter to a count
      const [c, b] = await Promise.all([countSide(current, p, n), countSide(baseline, p, n)]);
      g.cur.push(c.instr / n);
      g.base.push(b.instr / n);
      g.curRest.push(c.rest / n);
      g.baseRest.push(b.rest / n);
      console.log(`[window ${w + 1}] ${p.padEnd(5)} current ${(c.instr / n).toFixed(0)} (rest ${(c.rest / n).toFixed(0)}) instr/req | baseline ${(b.instr / n).toFixed(0)} (rest ${(b.rest / n).toFixed(0)}) instr/req | ×${fmt(c.instr / b.instr)} (rest ×${fmt(c.rest / b.rest)}) | ${SLOW_STATE_FN} per request: current ${c.define.toFixed(1)}, baseline ${b.define.toFixed(1)}${c.bad + b.bad ? ` non-200 ${c.bad + b.bad}` : ''}`);
    }
  }
  console.log(`\nA/B instr mode: gateway instructions per request under callgrind, ${windows} windows of ${n} requests after ${warmup} warm-up, ${values.concurrency} keep-alive connections`);
  console.log(`current = ${REPO}, baseline = ${resolve(values.baseline!)}`);
  for (const p of paths) {
    const g = got.get(p)!;
    const ratios = g.cur.map((c, i) => c / g.base[i]!);
    const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
    console.log(`/${p}: instr/req ${verdict(ratios)}; current median ${median(g.cur).toFixed(0)} (${spread(g.cur)}), baseline ${median(g.base).toFixed(0)} (${spread(g.base)})`);
    const restRatios = g.curRest.map((c, i) => c / g.baseRest[i]!);
    console.log(`/${p}: rest (no GC, TurboFan, timers) ${verdict(restRatios)}; current median ${median(g.curRest).toFixed(0)} (${spread(g.curRest)}), baseline ${median(g.baseRest).toFixed(0)} (${spread(g.baseRest)})`);
  }
}

// ---- sys mode ----------------------------------------------------------------------------------
/** The syscalls the hop can change (socket I/O, the event loop's waits, timers, GC's memory calls). */
const SYSCALLS = ['read', 'write', 'writev', 'recvfrom', 'sendto', 'epoll_wait', 'epoll_pwait', 'epoll_ctl', 'futex', 'mprotect', 'madvise', 'mmap', 'munmap'];

/** Scheduler events: a process switched out (it blocked or was preempted), woken, moved to another core; and its page faults (kernel time that is no syscall: a V8 heap touching fresh pages). */
const SCHED = ['context-switches', 'cpu-migrations', 'sched:sched_wakeup', 'page-faults'];

/** Starts counting the syscalls and scheduler events of `pid` (all its threads). */
function countSyscalls(pid: number): Promise<PerfStatSession> {
  return startPerfStat(pid, [...syscallEvents(SYSCALLS), ...SCHED]);
}

/** [voluntary, involuntary] context switches of a process, all threads (/proc/PID/task/TID/status). */
function ctxSwitches(pid: number): [number, number] {
  let v = 0;
  let nv = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    v += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
    nv += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
  }
  return [v, nv];
}

async function sysMode(): Promise<void> {
  const windows = Number(values.windows);
  const duration = Number(values.duration);
  console.log(`sys mode: ${windows} windows x ${paths.length} paths x 2 sides of ${duration} s, wrk -c${values.connections}; syscalls per request from perf's syscall tracepoints`);
  for (const s of sides) for (const p of paths) await timed(s, p, 2); // warm-up
  type Got = { gw: Map<string, number[]>; agent: Map<string, number[]>; cpu: number[] };
  const got = new Map<string, Got>();
  const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
  for (let w = 0; w < windows; w++) {
    for (const p of w % 2 === 0 ? paths : [...paths].reverse()) {
      for (const s of w % 2 === 0 ? sides : [...sides].reverse()) {
        const key = `${s.name} /${p}`;
        if (!got.has(key)) got.set(key, { gw: new Map(), agent: new Map(), cpu: [] });
        const g = got.get(key)!;
        const gwCount = await countSyscalls(s.gateway.pid);
        const agCount = await countSyscalls(s.agent.pid);
        const cs0 = [ctxSwitches(s.gateway.pid), ctxSwitches(s.agent.pid)];
        const r = await timed(s, p, duration);
        const n = r.requests;
        const cs1 = [ctxSwitches(s.gateway.pid), ctxSwitches(s.agent.pid)];
        const [gw, ag] = [await gwCount.stop(), await agCount.stop()];
        gw.set('voluntary-switches', cs1[0]![0] - cs0[0]![0]);
        gw.set('preempted', cs1[0]![1] - cs0[0]![1]);
        ag.set('voluntary-switches', cs1[1]![0] - cs0[1]![0]);
        ag.set('preempted', cs1[1]![1] - cs0[1]![1]);
        for (const [k, v] of gw) push(g.gw, k, v / n);
        for (const [k, v] of ag) push(g.agent, k, v / n);
        g.cpu.push(r.cpuUsPerReq);
        const brief = (m: Map<string, number>) => ['all', 'read', 'writev', 'write', 'epoll_pwait', 'voluntary-switches', 'preempted'].filter((k) => m.get(k)).map((k) => `${k} ${fmt(m.get(k)! / n, 2)}`).join(' ');
        console.log(`[window ${w + 1}] ${key.padEnd(16)} ${r.rps.toFixed(0)} req/s ${r.cpuUsPerReq.toFixed(1)} µs/req | gateway ${brief(gw)} | agent ${brief(ag)}${r.errors ? ` errors ${r.errors}` : ''}`);
      }
    }
  }
  console.log(`\nsyscalls per request (median of ${windows} windows, range), wrk -c${values.connections}; current = ${REPO}, baseline = ${resolve(values.baseline!)}`);
  const cell = (xs: number[] | undefined) => (xs?.length ? `${fmt(median(xs), 2)} (${fmt(Math.min(...xs), 2)}-${fmt(Math.max(...xs), 2)})` : '-');
  for (const [key, g] of got) {
    console.log(`${key}: gateway CPU ${cell(g.cpu)} µs/req`);
    for (const proc of ['gw', 'agent'] as const) {
      const m = g[proc];
      const names = ['all', ...SYSCALLS, 'context-switches', 'voluntary-switches', 'preempted', 'cpu-migrations', 'wakeup', 'page-faults'].filter((k) => (m.get(k) ?? []).some((v) => v > 0.005));
      console.log(`  ${proc === 'gw' ? 'gateway' : 'agent  '} ${names.map((k) => `${k} ${cell(m.get(k))}`).join(', ')}`);
    }
  }
}

// ---- perf mode ---------------------------------------------------------------------------------
const PERF_HZ = 999;

/** The group a sampled symbol belongs to (perf's [k] marks kernel symbols). */
function perfGroup(sym: string, kernel: boolean): string {
  if (kernel) return 'kernel';
  if (/Scaveng|GarbageCollect|Heap::|Marking|MarkCompact|Sweep|Evacuat|Compactor|ConcurrentMark/.test(sym)) return 'gc';
  if (/^JS:.*(agent-protocol|plugins\/agents)/.test(sym)) return 'agent js';
  if (/^JS:/.test(sym)) return 'other js';
  if (/Json/.test(sym)) return 'json';
  if (/Promise|Microtask|AsyncFunction|Await/.test(sym)) return 'promise';
  if (/^Builtins_/.test(sym)) return 'v8 builtins';
  return 'other native';
}

/** Self samples per symbol of one perf.data (JIT tiers merged: *, ~, ^ prefixes dropped). */
function perfSymbols(file: string): Map<string, { n: number; kernel: boolean }> {
  const out = spawnSync('perf', ['report', '-i', file, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none', '-F', 'sample,sym'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const m = new Map<string, { n: number; kernel: boolean }>();
  for (const line of out.stdout.split('\n')) {
    const r = /^\s*(\d+)\s+\[(.)\]\s+(.*)$/.exec(line);
    if (!r) continue;
    const sym = r[3]!.replace(/^JS:[*~^]?/, 'JS:').replace(/-\d+-turbofan/, '').trim();
    const e = m.get(sym) ?? { n: 0, kernel: r[2] === 'k' };
    e.n += Number(r[1]);
    m.set(sym, e);
  }
  return m;
}

async function perfMode(): Promise<void> {
  const windows = Number(values.windows);
  const duration = Number(values.duration);
  console.log(`perf mode: ${windows} windows x ${paths.length} paths x 2 sides of ${duration} s, wrk -c${values.connections}; perf record -F ${PERF_HZ} of each gateway`);
  for (const s of sides) for (const p of paths) await timed(s, p, 2); // warm-up
  // per side and path: µs per request by symbol, summed over windows, and the requests
  const acc = new Map<string, { us: Map<string, { us: number; kernel: boolean }>; windows: number }>();
  for (let w = 0; w < windows; w++) {
    for (const p of w % 2 === 0 ? paths : [...paths].reverse()) {
      for (const s of w % 2 === 0 ? sides : [...sides].reverse()) {
        const file = join(tmp, `perf-${s.name}-${p}-${w}.data`);
        const rec = spawn('perf', ['record', '-F', String(PERF_HZ), '-o', file, '-p', String(s.gateway.pid)], { stdio: 'ignore' });
        await new Promise((r) => setTimeout(r, 300));
        const r = await timed(s, p, duration);
        const exited = new Promise((res) => rec.once('exit', res));
        rec.kill('SIGINT');
        await exited;
        const key = `${s.name} /${p}`;
        const a = acc.get(key) ?? { us: new Map(), windows: 0 };
        a.windows++;
        for (const [sym, e] of perfSymbols(file)) {
          const cell = a.us.get(sym) ?? { us: 0, kernel: e.kernel };
          cell.us += (e.n / PERF_HZ / r.requests) * 1e6;
          a.us.set(sym, cell);
        }
        acc.set(key, a);
        console.log(`[window ${w + 1}] ${key.padEnd(16)} ${r.rps.toFixed(0)} req/s ${r.cpuUsPerReq.toFixed(1)} µs/req (schedstat)`);
      }
    }
  }
  const mean = (key: string) => {
    const a = acc.get(key);
    const m = new Map<string, { us: number; kernel: boolean }>();
    if (a) for (const [sym, c] of a.us) m.set(sym, { us: c.us / a.windows, kernel: c.kernel });
    return m;
  };
  const groups = (m: Map<string, { us: number; kernel: boolean }>) => {
    const g = new Map<string, number>();
    for (const [sym, c] of m) g.set(perfGroup(sym, c.kernel), (g.get(perfGroup(sym, c.kernel)) ?? 0) + c.us);
    return g;
  };
  const NAMES = ['kernel', 'gc', 'json', 'promise', 'v8 builtins', 'agent js', 'other js', 'other native'];
  const total = (g: Map<string, number>) => [...g.values()].reduce((x, y) => x + y, 0);
  const row = (label: string, g: Map<string, number>) => `${label.padEnd(24)} ${NAMES.map((n) => fmt(g.get(n) ?? 0, 1).padStart(12)).join('')}${fmt(total(g), 1).padStart(9)}`;
  const head = `${''.padEnd(24)} ${NAMES.map((n) => n.padStart(12)).join('')}${'total'.padStart(9)}`;
  console.log(`\nsampled gateway CPU, µs per request by group (mean of ${windows} windows)\n${head}`);
  const minus = (a: Map<string, number>, b: Map<string, number>) => new Map(NAMES.map((n) => [n, (a.get(n) ?? 0) - (b.get(n) ?? 0)]));
  for (const s of sides) {
    const gs = paths.map((p) => [p, groups(mean(`${s.name} /${p}`))] as const);
    for (const [p, g] of gs) console.log(row(`${s.name} /${p}`, g));
    if (paths.length === 2) console.log(row(`${s.name} agent-pass`, minus(gs.find(([p]) => p === 'agent')![1], gs.find(([p]) => p === 'pass')![1])));
  }
  for (const p of paths) console.log(row(`current-baseline /${p}`, minus(groups(mean(`current /${p}`)), groups(mean(`baseline /${p}`)))));
  // one path: the functions that differ most between the sides (e.g. tracing on against off: --tracing 0.01 --baseline-tracing off)
  if (paths.length === 1) {
    const p = paths[0]!;
    const a = mean(`current /${p}`);
    const b = mean(`baseline /${p}`);
    const diff = [...new Set([...a.keys(), ...b.keys()])].map((sym) => [sym, (a.get(sym)?.us ?? 0) - (b.get(sym)?.us ?? 0), b.get(sym)?.us ?? 0, a.get(sym)?.us ?? 0] as const).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
    console.log(`\nfunctions by current minus baseline on /${p}, µs per request (baseline, current)`);
    for (const [sym, d, bu, cu] of diff.slice(0, Number(values.top))) console.log(`${fmt(d, 2).padStart(7)} ${fmt(bu, 2).padStart(7)} ${fmt(cu, 2).padStart(7)}  ${sym.slice(0, 140)}`);
  }
  if (paths.length !== 2) return;
  for (const s of sides) {
    const a = mean(`${s.name} /agent`);
    const b = mean(`${s.name} /pass`);
    const diff = [...new Set([...a.keys(), ...b.keys()])].map((sym) => [sym, (a.get(sym)?.us ?? 0) - (b.get(sym)?.us ?? 0), b.get(sym)?.us ?? 0, a.get(sym)?.us ?? 0] as const).sort((x, y) => y[1] - x[1]);
    console.log(`\n${s.name}: functions by /agent minus /pass, µs per request (pass, agent)`);
    for (const [sym, d, pu, au] of diff.slice(0, Number(values.top))) console.log(`${fmt(d, 2).padStart(7)} ${fmt(pu, 2).padStart(7)} ${fmt(au, 2).padStart(7)}  ${sym.slice(0, 140)}`);
  }
}

if (mode === 'time') await timeMode();
else if (mode === 'instr') await instrMode();
else if (mode === 'perf') await perfMode();
else await sysMode();
for (const s of sides) {
  await s.gateway.stop();
  await s.agent.stop();
}
await origin.stop();
if (sink) {
  console.log(`OTLP sink (both sides): ${sink.batches()} batches, ${sink.bytes()} bytes`);
  await sink.close();
}
