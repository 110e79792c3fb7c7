// `node --import tsx bench/tracing.ts [--rounds 3] [--duration 5] [--warmup 8] [--connections 20] [--rates 0.01,1] [--profile DIR]`
// `node --import tsx bench/tracing.ts --mode instr [--rates 0,0.01] [--windows 5] [--requests 2000] [--baseline DIR] [--keep DIR]
//      [--replicates R] [--export-batch 300] [--restarts 3]`
// --rates: off, a rate, RATE:noexport / :inline / :thread, off:tp, RATE:one (one request with a sampled client
// traceparent before the warm-up, e.g. 0:one, 0:one:noexport; RATE:lone the same request unsampled, its
// control): bench/lib/tracing-variants.ts
// `node --import tsx bench/tracing.ts --mode fresh [--blocks 20] [--rates 0.01,1] [--baseline DIR [--baseline-rates off,0.01]]
//      [--warmup-requests 60000] [--requests 40000] [--connections 20] [--slow-host 1.25] [--interleave K] [--max-minutes M] [--json FILE]
//      [--node-flags "--min-semi-space-size=16"] [--threads] [--lone]`
//
// What OpenTelemetry tracing costs (docs/tracing.md, issue 15: 1% sampling <= 3%, 100% <= 25%):
// the compiled Sentinel (passthrough config) with tracing off, at sampling-rate 0.01 and at 1,
// exporting OTLP/HTTP to a local sink, interleaved in rounds (the order rotates each round), each
// variant started fresh and warmed up. Two figures per run, both as ratios to "off" in the same
// round: throughput (wrk, closed loop) and the gateway's CPU time per request (from /proc, the
// process's own utime+stime over the run). On a shared machine the CPU per request is the steadier
// of the two: throughput follows whatever else the scheduler runs, CPU per request much less.
// --profile DIR: run each gateway with --cpu-prof (DIR/<variant>-r<round>.cpuprofile, warm-up included).
// --warmup: seconds of unmeasured load per gateway. At 1% the sampled paths (span recording, the
// encoder, the exporter's HTTP client) run ~100 times a second and reach TurboFan only after some
// seconds: with the old 2 s warm-up their compilation (tens of ms per function, on V8's threads)
// fell inside the measured window and made 1% look dearer than 100% per sampled request
// (docs/tracing.md "Cost"). The bench process (it runs the OTLP sink) is pinned to the load CPU.
//
// --mode instr: load-independent. Every variant's gateway runs under callgrind (bench/lib/instr.ts),
// all at once, unpinned; each gets --warmup-requests uninstrumented, then per window exactly
// --requests requests (keep-alive, --concurrency connections) are counted: instructions per
// request of the whole process (JIT code, GC, libuv, the exporter), as a ratio to "off" of the
// same tree. --baseline DIR adds the same variants built from another checkout (ratios
// current/baseline per variant). --keep DIR keeps each window's callgrind dump for
// callgrind_annotate. Rate 0 isolates what an unsampled request pays.
// Since session 24 it is the figure of record for 1% (docs/tracing.md "Session 24"): the last
// line block, "counted figure of record", gives each rate / off from every process's last window
// without GC and TurboFan, the median over --replicates processes per variant, the range over
// process pairs and off against off (the count's own noise). Two things made the count misread
// 1% before: --export-batch N (default 300, what a 1% gateway at ~10,000 requests a second sends
// a second) has every traced gateway export each N spans and never on its 1 s timer, which under
// valgrind (~50-100 requests a second) fired ~100x as often per request as natively (~2.4k of the
// ~2.4k instructions a request 1% counted over 0% in session 23's run were that export); 0 keeps the
// timer. And a gateway that ends its warm-up in V8's slow state (~24-36 runtime define calls and
// ~40k instructions a request more, an effect of valgrind's timing: docs/architecture.md "A
// per-process V8 state") is replaced, up to --restarts times, after a probe of 300 requests.
//
// --mode fresh: settles a few percent with an interval over PROCESSES. Each block starts a fresh
// compiled gateway per variant (off and each --rates entry; with --baseline DIR also the
// --baseline-rates variants built from that checkout), in an order rotated block by block, one
// at a time: gateway pinned to CPU 0, h2load, the nginx origin and this runner (the OTLP sink) on
// CPU 1. Each gateway gets exactly --warmup-requests, then the host's speed is taken (a fixed
// loop pinned to CPU 0, bench/lib/host-speed.ts), then exactly --requests are measured in two
// halves (the gateway's CPU time per request from schedstat, and h2load's req/s), then the host's
// speed again. Per block, each variant's ratio to "off" of its tree (and current/baseline at the
// same rate); reported: the median ratio with a bootstrap 95% interval over blocks, i.e. over
// fresh processes. A measurement whose calibration (the slower of the two) took more than
// --slow-host x the run's median is flagged: its blocks are left out of the first line of each
// comparison and counted in the second (bench/lib/block-ratios.ts). Why: one long-lived process
// per side (bench/ab.ts) has an interval that ignores which V8 state each process lands in, and
// 5 s wall-clock rounds (--mode time) cannot tell a slow process from a slow host phase.
// --interleave K (K >= 2): all the gateways of a block are started, then each gets its warm-up and
// then its measured requests in K segments taken in turn with the others' (A B, B A, A B, ...), so the
// host's slow phases (seconds to a minute long) fall on both sides of a block's ratio; without it
// (0) one gateway is measured at a time and the report's figure of record is the host-normalised
// ratio (docs/tracing.md "Cost": why, and the figures of the quiet run that decided it).
// --max-minutes M: start no block that would end after M minutes of blocks (at the run's seconds
// per block so far), so a run fits a quiet window; --blocks is then the upper bound.
// --json FILE writes every measurement and the trees' commits, after every block (a run stopped
// early keeps its blocks); bench/tracing-fresh-analyse.ts prints the report from one or several
// such files (pooled only when commits and options agree). `--baseline . --baseline-rates 0.01`
// is an A/A check of the method: "1%" against "base 1%" of the same build.
// --threads (with --interleave): each gateway's measured-span CPU split by thread (main, V8's
// platform threads: GC and compiler workers, the other threads alive at ready: libuv's pool and
// the export thread if on, threads started later), per request and against off, per block
// (bench/lib/fresh-threads.ts; three /proc reads per gateway a block, nothing in the gateways).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { originNginxConf, SMALL_PATH, writeOriginFiles } from './lib/configs.ts';
import { benchScratchDir, freePort, hasCommand, killAll, requireCommands, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { callgrindWrap, countWindow, instrumentationOn, sendFixed } from './lib/instr.ts';
import { countedFigureLines } from './lib/instr-figure.ts';
import { buildSentinel, renderPassthrough } from './lib/targets.ts';
import { clockTicksPerSecond, loadAverage, readyThreadGroups, splitThreadCpu, threadCpuNs, treeCpuNs, treeCpuTicks, type ThreadGroup } from './lib/procfs.ts';
import { parseWrkOutput } from './lib/wrk.ts';
import { median } from './lib/stats.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';
import { collectLines, sumJitLines, type JitSums } from './lib/gc-trace.ts';
import { startHopOrigin } from './lib/agent-hop-side.ts';
import { h2loadFixed, type H2loadResult } from './lib/h2load.ts';
import { measureHostSpeed, type HostSpeed } from './lib/host-speed.ts';
import type { FreshData, FreshRun, FreshSegment } from './lib/fresh-data.ts';
import { freshReport } from './lib/fresh-report.ts';
import { threadSplitReport, THREAD_GROUPS } from './lib/fresh-threads.ts';
import { blockOrder, turnOrder } from './lib/fresh-positions.ts';
import { parseRates, loneRequestTraceparent, UNSAMPLED_CLIENT_TRACEPARENT, type Variant } from './lib/tracing-variants.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    rates: { type: 'string', default: '0.01,1' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '8' },
    connections: { type: 'string', default: '20' },
    profile: { type: 'string' },
    mode: { type: 'string', default: 'time' },
    // instr and fresh modes (defaults per mode below)
    windows: { type: 'string', default: '5' },
    // instr mode: how many times a gateway found in V8's slow state after its warm-up is replaced (0: none probed)
    restarts: { type: 'string', default: '3' },
    // instr mode: the export paced by spans, not by valgrind's slow wall clock (0: the configured 1 s timer)
    'export-batch': { type: 'string', default: '300' },
    // instr mode: gateways per variant and tree (process-to-process spread of the counts; the 1% headline over them)
    replicates: { type: 'string', default: '1' },
    requests: { type: 'string' },
    'warmup-requests': { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    baseline: { type: 'string' },
    keep: { type: 'string' },
    // fresh mode
    blocks: { type: 'string', default: '20' },
    'baseline-rates': { type: 'string' },
    'slow-host': { type: 'string', default: '1.25' },
    json: { type: 'string' },
    interleave: { type: 'string', default: '0' },
    'max-minutes': { type: 'string' },
    // instr and fresh modes: extra node flags for every gateway (e.g. --perf-basic-prof to name JIT code in
    // the kept dumps; --min-semi-space-size=16 to start every fresh gateway with a grown young generation)
    'node-flags': { type: 'string', default: '' },
    // fresh mode, interleaved: `perf record -e cpu-clock` of each gateway over its measured span, DIR/<tag>.data
    perf: { type: 'string' },
    // fresh mode, interleaved: each gateway's CPU over its measured span split by thread (main, V8's
    // platform threads, libuv's pool and the export thread), reported per request and against off (bench/lib/fresh-threads.ts)
    threads: { type: 'boolean', default: false },
    // fresh mode: every gateway (off included) gets RATE:lone's request (an unsampled client traceparent,
    // on a keep-alive connection, after the readiness probe's GET) once ready, before its
    // warm-up: a gateway whose first requests come as a flood drew a deopt cascade through Node's HTTP
    // server (docs/tracing.md, "Session 30 (trace30)") that made it ~2-4% dearer ("Session 30 figures"),
    // at random per gateway; with --lone no variant draws it
    lone: { type: 'boolean', default: false },
  },
});
if (values.mode !== 'time' && values.mode !== 'instr' && values.mode !== 'fresh') throw new Error(`--mode ${values.mode}: expected time, instr or fresh`);
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const connections = Number(values.connections);
const repoRoot = resolve(import.meta.dirname, '..');
const PROXY_CPU = 0;
const LOAD_CPU = 1;

// tracing off, then one variant per --rates entry (e.g. `--rates 0,0.01,1`: rate 0 isolates the unsampled path)
const VARIANTS: Variant[] = [{ name: 'off', rate: undefined }, ...parseRates(values.rates)];
/** --node-flags in fresh mode: given to every gateway of every block (recorded in --json; files pool only with the same flags) */
const freshNodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
/**
 * Fresh mode with `--trace-opt` / `--trace-deopt` among --node-flags: each gateway's optimising
 * compiles and deoptimisations inside its measured span are counted from its output, printed with
 * its run and kept in --json (`jit`). Timed 1% read above its instruction count (docs/tracing.md,
 * session 25): what a process still compiles and deoptimises while it is measured is in its CPU
 * (every thread counts) and not in the count's figure (taken without TurboFan).
 */
const freshJitTrace = freshNodeFlags.some((f) => f === '--trace-opt' || f === '--trace-deopt');
const jitOf = (lines: string[] | undefined, from: number, to: number): FreshRun['jit'] => {
  if (!lines) return undefined;
  const { compiles, compileMs, deopts, deopted, compiled }: JitSums = sumJitLines(lines.slice(from, to));
  // the dearest compiles by name: which code was still settling while measured
  const dearest = [...compiled].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([name, ms]): [string, number] => [name, Math.round(ms * 10) / 10]);
  return { compiles, compileMs: Math.round(compileMs * 10) / 10, deopts, deopted, compiled: dearest };
};

interface Run {
  variant: string;
  round: number;
  rps: number;
  cpuUsPerRequest: number;
  errors: number;
  sinkBatches: number;
}

/** what `off:tp` sends upstream: the W3C example ids, flags 00, as long as an unsampled root's header (55 characters) */
const CONSTANT_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';

/**
 * `exportBatch` (instr mode): every traced gateway sends a batch each time that many spans have
 * ended, and never on its timer (`scheduled-delay` an hour). Under callgrind a gateway serves
 * ~50-100 requests a second, so the 1 s timer sent a batch every ~100 requests, ~100x the native
 * cadence, and its share of a counted window was the cadence's (docs/tracing.md, sessions 14 and 24).
 */
function configFor(v: Variant, listen: string, origin: string, metrics: string, sinkPort: number, exportBatch = 0): string {
  const base = renderPassthrough(repoRoot, { listen, origin, metrics });
  if (v.upstreamTraceparent) {
    const withHeader = base.replace(/\n(\s*)upstream "origin"\n/, `\n$1upstream "origin"\n$1policies { request-headers { set { traceparent "${CONSTANT_TRACEPARENT}" } } }\n`);
    if (withHeader === base) throw new Error('the passthrough config no longer has its route\'s upstream "origin" line');
    return withHeader;
  }
  if (v.rate === undefined) return base;
  const traced = base.replace(/\nobservability \{\n/, `\nobservability {\n    tracing {\n        backend "otlp" { endpoint "http://127.0.0.1:${sinkPort}" }\n        sampling-rate ${v.rate}\n${v.noExport ? '        max-queue-size 10000000\n        max-export-batch-size 10000000\n        scheduled-delay "3600s"\n' : exportBatch > 0 ? `        max-queue-size ${Math.max(2048, 4 * exportBatch)}\n        max-export-batch-size ${exportBatch}\n        scheduled-delay "3600s"\n` : ''}${v.exportThread !== undefined ? `        export-thread #${v.exportThread}\n` : ''}    }\n`);
  if (traced === base) throw new Error('the passthrough config no longer has an observability block');
  return traced;
}

async function wrk(port: number, seconds: number): Promise<ReturnType<typeof parseWrkOutput>> {
  const out = await runPinned('wrk', LOAD_CPU, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}${SMALL_PATH}`], (seconds + 30) * 1000);
  return parseWrkOutput(out);
}

async function main(): Promise<void> {
  if (values.mode === 'instr') return instrMode();
  if (values.mode === 'fresh') return freshMode();
  // the OTLP sink answers in this process: keep it off the gateway's CPU
  pinSelf(LOAD_CPU);
  const entry = await buildSentinel(repoRoot);
  const tmp = mkdtempSync(join(tmpdir(), 'bench-tracing-'));
  const originDir = join(tmp, 'origin');
  mkdirSync(originDir);
  writeOriginFiles(originDir);
  const originPort = await freePort();
  writeFileSync(join(originDir, 'origin.conf'), originNginxConf(originPort, originDir));
  const origin = spawnPinned('origin nginx', LOAD_CPU, 'nginx', ['-e', 'stderr', '-p', originDir, '-c', join(originDir, 'origin.conf')]);
  const sink = await startOtlpSink();
  const runs: Run[] = [];
  try {
    await waitReady(origin, originPort, SMALL_PATH, 10_000);
    for (let round = 1; round <= rounds; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round - 1) % VARIANTS.length]!);
      for (const v of order) {
        const prof = values.profile ? ['--cpu-prof', '--cpu-prof-dir', resolve(values.profile), '--cpu-prof-name', `${v.name.replace('%', 'pct')}-r${round}.cpuprofile`] : [];
        const { proc, port } = await startGateway({ entry, root: repoRoot, v, tmp, tag: `${round}-${v.name.replace('%', 'pct')}`, originPort, sinkPort: sink.port, nodeArgs: prof });
        try {
          await wrk(port, warmupS); // warm-up, not measured
          sink.reset();
          const before = treeCpuTicks(proc.pid);
          const r = await wrk(port, durationS);
          const ticks = treeCpuTicks(proc.pid) - before;
          const errors = r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout + r.non2xx3xx;
          const run: Run = { variant: v.name, round, rps: r.requestsPerSec, cpuUsPerRequest: ((ticks / clockTicksPerSecond()) * 1e6) / Math.max(1, r.requests), errors, sinkBatches: sink.batches() };
          runs.push(run);
          console.log(`[round ${round}] ${v.name.padEnd(5)} ${Math.round(run.rps)} req/s  ${run.cpuUsPerRequest.toFixed(1)} µs CPU/request  errors ${errors}  OTLP batches ${run.sinkBatches}`);
        } finally {
          await proc.stop();
        }
      }
    }
  } finally {
    await sink.close();
    await origin.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  report(runs);
}

/** A fresh compiled gateway (`entry`, built from `root`) for variant `v` on PROXY_CPU, answering; `tag` names its config file. */
async function startGateway(o: { entry: string; root: string; v: Variant; tmp: string; tag: string; originPort: number; sinkPort: number; nodeArgs?: string[] }): Promise<{ proc: Proc; port: number }> {
  // A port freePort() picked can still be bound by another process before the gateway listens
  // (freePort now picks outside the ephemeral range, so no longer by an outgoing connection's
  // source port: that ended a 50-minute run once). Such a start is retried on new ports; any
  // other start-up failure ends the run.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const file = join(o.tmp, `sentinel-${o.tag}.kdl`);
    writeFileSync(file, configFor(o.v, `127.0.0.1:${port}`, `127.0.0.1:${o.originPort}`, `127.0.0.1:${await freePort()}`, o.sinkPort));
    const proc = spawnPinned(`sentinel ${o.tag}`, PROXY_CPU, process.execPath, [...(o.nodeArgs ?? []), o.entry, 'run', '-c', file], { cwd: o.root, env: { ...process.env, NODE_ENV: 'production' } });
    try {
      await waitReady(proc, port, SMALL_PATH, 30_000);
      // `RATE:one`: one request recorded (a client traceparent with flags 01) before anything else is sent
      const lone = loneRequestTraceparent(o.v);
      if (lone !== undefined) await sendLone(port, lone);
      else if (values.lone) await sendLone(port, UNSAMPLED_CLIENT_TRACEPARENT);
      return { proc, port };
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
      console.error(`  sentinel ${o.tag}: a port was taken between freePort() and listen (EADDRINUSE), starting again on new ports`);
    }
  }
}

/** One GET of SMALL_PATH with a client `traceparent` (`RATE:one`: sampled, `RATE:lone` and --lone: not); refuses anything but a 200. */
async function sendLone(port: number, traceparent: string): Promise<void> {
  const bad = await sendFixed(port, SMALL_PATH, 1, 1, { traceparent });
  if (bad !== 0) throw new Error(`the lone request to port ${port} was not answered 200`);
}

function pinSelf(cpu: number): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
  } catch {
    console.error('taskset failed: the OTLP sink is not pinned');
  }
}

function report(runs: Run[]): void {
  const lines = ['', `tracing cost, ${rounds} rounds x ${durationS} s (after ${warmupS} s warm-up), wrk -c${connections}, proxy on CPU ${PROXY_CPU} (ratios to "off" in the same round)`, ''];
  lines.push('| variant | req/s (median) | ×off per round (throughput) | median | CPU µs/request (median) | ×off per round (CPU/request) | median |');
  lines.push('|:--|--:|:--|--:|--:|:--|--:|');
  for (const v of VARIANTS) {
    const mine = runs.filter((r) => r.variant === v.name);
    const tput: number[] = [];
    const cpu: number[] = [];
    for (const r of mine) {
      const off = runs.find((o) => o.variant === 'off' && o.round === r.round)!;
      tput.push(r.rps / off.rps);
      cpu.push(r.cpuUsPerRequest / off.cpuUsPerRequest);
    }
    const f = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(', ');
    lines.push(`| ${v.name} | ${Math.round(median(mine.map((r) => r.rps)))} | ${f(tput)} | ${median(tput).toFixed(3)} | ${median(mine.map((r) => r.cpuUsPerRequest)).toFixed(1)} | ${f(cpu)} | ${median(cpu).toFixed(3)} |`);
  }
  console.log(lines.join('\n'));
}

/** --mode instr: instructions per request of each variant (and of the baseline's), counted at the same time. */
async function instrMode(): Promise<void> {
  if (!hasCommand('valgrind')) throw new Error('--mode instr needs valgrind (apt-get install -y valgrind)');
  const windows = Number(values.windows);
  const replicates = Number(values.replicates);
  if (!(Number.isInteger(replicates) && replicates >= 1)) throw new Error(`--replicates ${values.replicates}: expected a whole number >= 1`);
  const n = Number(values.requests ?? 2000);
  const exportBatch = Number(values['export-batch']);
  if (!(Number.isInteger(exportBatch) && exportBatch >= 0)) throw new Error(`--export-batch ${values['export-batch']}: expected a whole number >= 0`);
  const warmup = Number(values['warmup-requests'] ?? 6000);
  if (values.lone || VARIANTS.some((v) => loneRequestTraceparent(v) !== undefined)) throw new Error('--mode instr: RATE:one and RATE:lone are for --mode fresh and time');
  const maxRestarts = Number(values.restarts);
  const concurrency = Number(values.concurrency);
  const tmp = benchScratchDir('bench-tracing-instr-');
  const cgDir = join(tmp, 'callgrind');
  mkdirSync(cgDir);
  if (values.keep) mkdirSync(resolve(values.keep), { recursive: true });
  const trees = [{ label: '', root: repoRoot }, ...(values.baseline ? [{ label: 'base ', root: resolve(values.baseline) }] : [])];
  const entries: string[] = [];
  for (const t of trees) entries.push(await buildSentinel(t.root, { ownDir: true })); // one tsc at a time, each run its own output (another bench rebuilding a shared tree cannot pull it away)
  const originDir = join(tmp, 'origin');
  mkdirSync(originDir);
  writeOriginFiles(originDir);
  const originPort = await freePort();
  writeFileSync(join(originDir, 'origin.conf'), originNginxConf(originPort, originDir));
  const origin = spawnPinned('origin nginx', null, 'nginx', ['-e', 'stderr', '-p', originDir, '-c', join(originDir, 'origin.conf')]);
  await waitReady(origin, originPort, SMALL_PATH, 10_000);
  const sink = await startOtlpSink();
  const gateways: InstrGateway[] = [];
  const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
  try {
    for (const [i, t] of trees.entries()) {
      for (let r = 1; r <= replicates; r++) for (const v of VARIANTS) {
        const name = `${t.label}${v.name}${replicates > 1 ? ` #${r}` : ''}`;
        const file = name.replace('%', 'pct').replaceAll(' ', '-').replace('#', 'r');
        const port = await freePort();
        writeFileSync(join(tmp, `${file}.kdl`), configFor(v, `127.0.0.1:${port}`, `127.0.0.1:${originPort}`, `127.0.0.1:${await freePort()}`, sink.port, exportBatch));
        const spawn = () => spawnPinned(`sentinel ${name}`, null, 'valgrind', [...callgrindWrap(cgDir, file).slice(1), process.execPath, ...nodeFlags, entries[i]!, 'run', '-c', join(tmp, `${file}.kdl`)], { cwd: t.root, env: { ...process.env, NODE_ENV: 'production' } });
        gateways.push({ name, tree: t.label, variant: v, replicate: r, port, proc: spawn(), spawn, restarts: 0, counts: [], rest: [], gc: [], compiler: [], define: [] });
      }
    }
    console.log(`instr mode: ${gateways.length} gateways under callgrind, ${warmup} warm-up requests each, then ${windows} windows of ${n} requests (${concurrency} keep-alive connections); ${exportBatch > 0 ? `traced gateways export every ${exportBatch} spans, no timer` : 'export on the configured timer'}; a gateway in V8's slow state after its warm-up is replaced up to ${maxRestarts} times`);
    await Promise.all(
      gateways.map(async (g) => {
        for (;;) {
          await waitReady(g.proc, g.port, SMALL_PATH, 600_000);
          await sendFixed(g.port, SMALL_PATH, warmup, concurrency);
          instrumentationOn(g.proc.pid);
          await sendFixed(g.port, SMALL_PATH, Math.min(warmup, 200), concurrency); // the hot code re-translated instrumented
          if (maxRestarts === 0) return;
          // V8's slow state (docs/architecture.md "A per-process V8 state"): ~24-36 runtime calls
          // and ~40k instructions a request more, by chance per process and (natively: 0 of 24
          // gateways) an effect of valgrind's timing; a process in it is replaced, not counted
          const probe = await countWindow(cgDir, `${g.name.replace('%', 'pct').replaceAll(' ', '-').replace('#', 'r')}`, g.proc.pid, () => sendFixed(g.port, SMALL_PATH, PROBE_REQUESTS, concurrency));
          const define = probe.defineCalls / PROBE_REQUESTS;
          if (define < 1 || g.restarts >= maxRestarts) return;
          g.restarts++;
          console.log(`${g.name}: ${define.toFixed(1)} define calls a request after the warm-up (V8's slow state): restarted (${g.restarts} of ${maxRestarts})`);
          await g.proc.stop();
          g.proc = g.spawn();
        }
      }),
    );
    for (let w = 1; w <= windows; w++) {
      await Promise.all(
        gateways.map(async (g) => {
          const file = g.name.replace('%', 'pct').replaceAll(' ', '-').replace('#', 'r');
          // the gateway's pid in the name (the dump's own name is <file>.<pid>.<n>): its /tmp/perf-<pid>.map names JIT code (--node-flags=--perf-basic-prof)
          const keep = values.keep ? (dump: string) => join(resolve(values.keep!), `${file}.w${w}.${dump.split('.').at(-2)}.callgrind`) : undefined;
          const { instr, split, defineCalls, result: bad } = await countWindow(cgDir, file, g.proc.pid, () => sendFixed(g.port, SMALL_PATH, n, concurrency), keep);
          if (bad) throw new Error(`${g.name}: ${bad} non-200 answers`);
          g.counts.push(instr / n);
          g.rest.push(split.rest / n);
          g.gc.push(split.gc / n);
          g.compiler.push(split.compiler / n);
          g.define.push(defineCalls / n);
        }),
      );
      console.log(`[window ${w}] ${gateways.map((g) => `${g.name} ${g.counts[w - 1]!.toFixed(0)} (rest ${g.rest[w - 1]!.toFixed(0)}, gc ${g.gc[w - 1]!.toFixed(0)}, jit ${g.compiler[w - 1]!.toFixed(0)}, define ${g.define[w - 1]!.toFixed(1)})`).join(' | ')} instr/req`);
    }
  } finally {
    for (const g of gateways) await g.proc.stop();
    await sink.close();
    await origin.stop();
  }
  const lines = ['', `tracing cost in instructions per request (callgrind, whole gateway process), ${windows} windows x ${n} requests after ${warmup} warm-up; ratios to "off" of the same tree per window`, ''];
  lines.push('| gateway | instr/req per window | median | ×off per window | median |');
  lines.push('|:--|:--|--:|:--|--:|');
  const offOf = (g: InstrGateway) => gateways.find((o) => o.tree === g.tree && o.replicate === g.replicate && o.variant === VARIANTS[0])!;
  for (const g of gateways) {
    const off = offOf(g);
    const ratios = g.counts.map((c, i) => c / off.counts[i]!);
    lines.push(`| ${g.name} | ${g.counts.map((c) => c.toFixed(0)).join(', ')} | ${median(g.counts).toFixed(0)} | ${ratios.map((r) => r.toFixed(3)).join(', ')} | ${median(ratios).toFixed(3)} |`);
  }
  // the same without V8's garbage collector and optimising compiler (bench/lib/callgrind-split.ts): what the request path itself ran
  lines.push('', 'without GC and TurboFan ("rest"), and the GC and the slow-state calls (Runtime_DefineKeyedOwnPropertyInLiteral) per request:', '');
  lines.push('| gateway | rest instr/req per window | median | ×off per window | median | GC instr/req (median) | define calls/req per window |');
  lines.push('|:--|:--|--:|:--|--:|--:|:--|');
  for (const g of gateways) {
    const off = offOf(g);
    const ratios = g.rest.map((c, i) => c / off.rest[i]!);
    lines.push(`| ${g.name} | ${g.rest.map((c) => c.toFixed(0)).join(', ')} | ${median(g.rest).toFixed(0)} | ${ratios.map((r) => r.toFixed(3)).join(', ')} | ${median(ratios).toFixed(3)} | ${median(g.gc).toFixed(0)} | ${g.define.map((d) => d.toFixed(1)).join(', ')} |`);
  }
  if (trees.length > 1) {
    lines.push('', `current (${repoRoot}) / baseline (${trees[1]!.root}), per window:`);
    for (const v of VARIANTS) {
      for (let r = 1; r <= replicates; r++) {
        const cur = gateways.find((g) => g.tree === '' && g.variant === v && g.replicate === r)!;
        const base = gateways.find((g) => g.tree !== '' && g.variant === v && g.replicate === r)!;
        const ratios = cur.counts.map((c, i) => c / base.counts[i]!);
        const rest = cur.rest.map((c, i) => c / base.rest[i]!);
        lines.push(`${cur.name}: ×${median(ratios).toFixed(3)} (${ratios.map((x) => x.toFixed(3)).join(', ')}); instr/req ${median(cur.counts).toFixed(0)} vs ${median(base.counts).toFixed(0)}; without GC and TurboFan ×${median(rest).toFixed(3)} (${rest.map((x) => x.toFixed(3)).join(', ')})`);
      }
    }
  }
  const last = windows - 1;
  lines.push('', ...countedFigureLines(gateways.map((g) => ({ name: g.name, tree: g.tree, variant: g.variant.name, rest: g.rest[last]!, gc: g.gc[last]!, define: g.define[last]!, restarts: g.restarts })), VARIANTS[0]!.name, windows));
  console.log(lines.join('\n'));
}

/** requests of the slow-state probe after a gateway's warm-up (not counted) */
const PROBE_REQUESTS = 300;

interface InstrGateway {
  name: string;
  tree: string;
  variant: Variant;
  /** 1..--replicates: the processes of one variant */
  replicate: number;
  port: number;
  proc: Proc;
  /** starts the gateway's process (again, when the one before landed in V8's slow state) */
  spawn: () => Proc;
  restarts: number;
  counts: number[];
  rest: number[];
  gc: number[];
  compiler: number[];
  define: number[];
}

// ---- fresh mode --------------------------------------------------------------------------------
interface FreshVariant extends Variant {
  /** "off", "1%", "base 1%" */
  label: string;
  tree: 'current' | 'baseline';
  root: string;
}

/**
 * The commit a tree is at and whether its tracked files differ from it (recorded so that runs can
 * be pooled: bench/lib/fresh-data.ts). Untracked files do not count: nothing the gateway runs can
 * reach one without a tracked file changing (an import), and a run's own --json file may sit there.
 */
function gitState(root: string): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim();
    return { commit, dirty: status.length > 0 };
  } catch {
    return { commit: null, dirty: null };
  }
}

async function freshMode(): Promise<void> {
  if (!requireCommands(['h2load', 'nginx', 'taskset'], 'nghttp2-client nginx util-linux')) process.exit(2);
  const blocks = Number(values.blocks);
  const n = Number(values.requests ?? 40_000);
  const warmup = Number(values['warmup-requests'] ?? 60_000);
  const threshold = Number(values['slow-host']);
  const interleave = Number(values.interleave);
  const maxMinutes = values['max-minutes'] === undefined ? undefined : Number(values['max-minutes']);
  if (maxMinutes !== undefined && !(maxMinutes > 0)) throw new Error(`--max-minutes ${values['max-minutes']}: expected a positive number`);
  if (!(Number.isInteger(interleave) && (interleave === 0 || interleave >= 2) && interleave * 2 <= n)) throw new Error(`--interleave ${values.interleave}: expected 0 (one gateway at a time) or 2 or more segments per gateway`);
  const tmp = benchScratchDir('bench-tracing-fresh-');
  if (values.perf) {
    if (!interleave || !requireCommands(['perf'], 'linux-perf')) throw new Error('--perf needs --interleave K and perf');
    mkdirSync(resolve(values.perf), { recursive: true });
  }
  if (values.threads && !interleave) throw new Error('--threads needs --interleave K');
  const baseRoot = values.baseline ? resolve(values.baseline) : undefined;
  const variants: FreshVariant[] = VARIANTS.map((v) => ({ ...v, label: v.name, tree: 'current', root: repoRoot }));
  if (baseRoot) {
    for (const v of parseRates(values['baseline-rates'] ?? `off,${values.rates}`)) variants.push({ ...v, label: `base ${v.name}`, tree: 'baseline', root: baseRoot });
  }
  const startedAt = new Date().toISOString();
  const git = new Map([...new Set(variants.map((v) => v.root))].map((root) => [root, gitState(root)]));
  // the OTLP sink answers in this process: keep it off the gateway's CPU
  pinSelf(LOAD_CPU);
  const entries = new Map<string, string>();
  for (const root of new Set(variants.map((v) => v.root))) entries.set(root, await buildSentinel(root, { ownDir: true })); // one tsc at a time
  const { port: originPort, proc: origin } = await startHopOrigin(tmp);
  await waitReady(origin, originPort, SMALL_PATH, 10_000);
  const sink = await startOtlpSink();
  console.log(
    `fresh mode: ${blocks} blocks x ${variants.length} fresh gateways (${variants.map((v) => v.label).join(', ')}), each ${warmup} warm-up then ${n} measured requests${interleave ? ` in ${interleave} segments taken in turn with the block's other gateways` : ', one gateway at a time'}, h2load --h1 -c${connections}; gateway on CPU ${PROXY_CPU}, load, origin and OTLP sink on CPU ${LOAD_CPU}${freshNodeFlags.length > 0 ? `; every gateway with node flags ${freshNodeFlags.join(' ')}` : ''}` +
      (baseRoot ? `\ncurrent = ${repoRoot}, baseline = ${baseRoot}` : ''),
  );
  const runs: FreshRun[] = [];
  const data: FreshData = {
    variants: variants.map((v) => ({ label: v.label, rate: v.rate ?? null, tree: v.tree, root: v.root, ...git.get(v.root)! })),
    warmup,
    requests: n,
    connections,
    threshold,
    interleave,
    node: process.version,
    nodeFlags: freshNodeFlags,
    startedAt,
    runs,
  };
  const t0 = performance.now();
  try {
    for (let block = 1; block <= blocks; block++) {
      const order = blockOrder(variants, block);
      const ctx = { block, entries, tmp, originPort, sink, warmup, n };
      if (interleave) runs.push(...(await freshBlockInterleaved(order, ctx, interleave)));
      else for (const v of order) runs.push(await freshRun(v, ctx));
      // after every block: a run stopped early (the quiet window ended) keeps its blocks for bench/tracing-fresh-analyse.ts
      if (values.json) writeFileSync(resolve(values.json), JSON.stringify(data, null, 1));
      const elapsedS = (performance.now() - t0) / 1000;
      const perBlock = elapsedS / block;
      // --max-minutes: no block is started that would not end inside the window (a rule on time only, never on the figures)
      const last = block === blocks || (maxMinutes !== undefined && elapsedS + perBlock > maxMinutes * 60);
      console.log(`  (${perBlock.toFixed(0)} s per block so far; ${!last ? `~${((perBlock * (blocks - block)) / 60).toFixed(1)} min to go` : `${(elapsedS / 60).toFixed(1)} min of blocks in all${block < blocks ? `: --max-minutes ${maxMinutes} reached after ${block} of ${blocks} blocks` : ''}`}, load average ${loadAverage()})`);
      if (last) break;
    }
  } finally {
    await sink.close();
    await origin.stop();
  }
  console.log(freshReport(data));
  if (values.threads) console.log(threadSplitReport(runs));
}

interface BlockContext {
  block: number;
  entries: Map<string, string>;
  tmp: string;
  originPort: number;
  sink: Awaited<ReturnType<typeof startOtlpSink>>;
  warmup: number;
  n: number;
}

/** Wall seconds of each phase of a block or run, printed so that its length can be told from its load. */
function phaseClock() {
  const phase: Record<'start' | 'warmup' | 'measure' | 'loops' | 'stop', number> = { start: 0, warmup: 0, measure: 0, loops: 0, stop: 0 };
  let mark = performance.now();
  return {
    lap(p: keyof typeof phase) {
      const now = performance.now();
      phase[p] += (now - mark) / 1000;
      mark = now;
    },
    text: () => Object.entries(phase).map(([k, t]) => `${k} ${t.toFixed(1)}`).join(', '),
  };
}

const gatewayTag = (block: number, v: FreshVariant) => `b${block}-${v.label.replace('%', 'pct').replaceAll(' ', '-')}`;

function printRun(run: FreshRun, before: HostSpeed, after: HostSpeed, phases: string): void {
  console.log(
    `[block ${run.block}] ${run.variant.padEnd(9)} ${Math.round(run.rps)} req/s  ${run.cpuUsPerRequest.toFixed(1)} µs CPU/request (2nd half ×${run.drift.toFixed(3)})  host loop ${before.cpuMs.toFixed(0)}/${after.cpuMs.toFixed(0)} ms CPU  errors ${run.errors}  OTLP batches ${run.otlpBatches}  | s: ${phases}` +
      (run.threads ? `\n           by thread, µs a request: ${THREAD_GROUPS.map((g) => `${g} ${run.threads!.us[g].toFixed(2)} (${run.threads!.threads[g]})`).join(', ')}${run.threads.gone ? `, ${run.threads.gone} gone` : ''}` : '') +
      (run.jit ? `\n           measured span: ${run.jit.compiles} optimising compiles (${run.jit.compileMs} ms), ${run.jit.deopts} deopts${run.jit.deopts ? `: ${run.jit.deopted.join(', ')}` : ''}${run.jit.compiled?.length ? `\n           dearest compiles: ${run.jit.compiled.map(([name, ms]) => `${name} ${ms}`).join(', ')}` : ''}` : ''),
  );
}

/** One fresh gateway: start, warm up, calibrate, measure n requests in two halves, calibrate, stop. */
async function freshRun(v: FreshVariant, c: BlockContext): Promise<FreshRun> {
  const clock = phaseClock();
  const { proc, port } = await startGateway({ entry: c.entries.get(v.root)!, root: v.root, v, tmp: c.tmp, tag: gatewayTag(c.block, v), originPort: c.originPort, sinkPort: c.sink.port, nodeArgs: freshNodeFlags });
  clock.lap('start');
  const lines = freshJitTrace ? collectLines(proc.child.stdout!) : undefined;
  try {
    const url = `http://127.0.0.1:${port}${SMALL_PATH}`;
    await h2loadFixed(url, c.warmup, connections, LOAD_CPU);
    clock.lap('warmup');
    const before = await measureHostSpeed(PROXY_CPU);
    clock.lap('loops');
    c.sink.reset();
    const jitFrom = lines?.length ?? 0;
    const halves: { cpuNs: number; r: H2loadResult }[] = [];
    for (const count of [Math.floor(c.n / 2), c.n - Math.floor(c.n / 2)]) {
      const c0 = treeCpuNs(proc.pid);
      const r = await h2loadFixed(url, count, connections, LOAD_CPU);
      halves.push({ cpuNs: treeCpuNs(proc.pid) - c0, r });
    }
    const jit = jitOf(lines, jitFrom, lines?.length ?? 0);
    clock.lap('measure');
    const after = await measureHostSpeed(PROXY_CPU);
    clock.lap('loops');
    const [h1, h2] = halves as [(typeof halves)[0], (typeof halves)[0]];
    const done = h1.r.succeeded + h2.r.succeeded;
    const run: FreshRun = {
      block: c.block,
      variant: v.label,
      cpuUsPerRequest: (h1.cpuNs + h2.cpuNs) / 1000 / Math.max(1, done),
      rps: done / (h1.r.durationS + h2.r.durationS),
      calibrationMs: Math.max(before.cpuMs, after.cpuMs),
      calibrationBeforeMs: before.cpuMs,
      calibrationAfterMs: after.cpuMs,
      calibrationWallMs: Math.max(before.wallMs, after.wallMs),
      drift: h2.cpuNs / Math.max(1, h2.r.succeeded) / (h1.cpuNs / Math.max(1, h1.r.succeeded)),
      errors: c.n - (h1.r.status2xx + h2.r.status2xx),
      otlpBatches: c.sink.batches(),
      ...(jit ? { jit } : {}),
    };
    await proc.stop();
    clock.lap('stop');
    printRun(run, before, after, clock.text());
    return run;
  } finally {
    await proc.stop(); // a no-op once stopped
  }
}

/** `total` requests for each of `items` in `k` rounds, the order mirrored every other round (A B, B A, A B, ...); the last round takes the remainder. */
async function inTurn<T>(items: readonly T[], k: number, total: number, send: (item: T, count: number) => Promise<unknown>): Promise<void> {
  const per = Math.floor(total / k);
  for (let round = 0; round < k; round++) {
    const count = round === k - 1 ? total - per * (k - 1) : per;
    for (const item of turnOrder(items, round)) await send(item, count);
  }
}

/**
 * One interleaved block (--interleave K): every variant's fresh gateway started (in `order`) and
 * warmed up in K rounds of warmup/K requests each in turn, one calibration loop, then K rounds in
 * which each gateway in turn gets n/K requests (the order mirrored every other round: A B, B A,
 * A B, ...), one calibration loop, stop. All the
 * gateways live through the same seconds, so a slow host phase of a few seconds falls on both
 * sides of a ratio instead of on one; each gateway's CPU per request is its CPU over the whole
 * measured span (what it did between its own segments, e.g. the exporter's timer, included)
 * divided by its requests.
 */
async function freshBlockInterleaved(order: FreshVariant[], c: BlockContext, k: number): Promise<FreshRun[]> {
  const clock = phaseClock();
  const gws: { v: FreshVariant; proc: Proc; url: string; segs: FreshSegment[]; ok: number; cpu0: number; cpu1: number; lines?: string[]; jit0: number; jit1: number; ready: Map<number, ThreadGroup>; th0?: Map<number, number>; th1?: Map<number, number> }[] = [];
  try {
    for (const v of order) {
      const { proc, port } = await startGateway({ entry: c.entries.get(v.root)!, root: v.root, v, tmp: c.tmp, tag: gatewayTag(c.block, v), originPort: c.originPort, sinkPort: c.sink.port, nodeArgs: freshNodeFlags });
      // --threads: the threads alive once it answers, grouped by the order they were created in
      const ready = values.threads ? readyThreadGroups(proc.pid, threadCpuNs(proc.pid).keys()) : new Map<number, ThreadGroup>();
      gws.push({ v, proc, url: `http://127.0.0.1:${port}${SMALL_PATH}`, segs: [], ok: 0, cpu0: 0, cpu1: 0, lines: freshJitTrace ? collectLines(proc.child.stdout!) : undefined, jit0: 0, jit1: 0, ready });
    }
    clock.lap('start');
    // the warm-up in the same rhythm as the measurement (K chunks taken in turn): warmed up one
    // after the other, the first gateway sat idle through the others' warm-up and its first
    // measured segment came out dearer (a loaded run: 1.1-1.6x its later segments)
    await inTurn(gws, k, c.warmup, (g, count) => h2loadFixed(g.url, count, connections, LOAD_CPU));
    clock.lap('warmup');
    const before = await measureHostSpeed(PROXY_CPU);
    clock.lap('loops');
    c.sink.reset();
    // --perf DIR: each gateway sampled on CPU time over its whole measured span (its own segments and
    // what it does in the others'); perf itself on the load CPU. Name JIT code with --perf-basic-prof.
    const perfs = values.perf ? gws.map((g) => spawnPinned(`perf ${g.proc.name}`, LOAD_CPU, 'perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-p', String(g.proc.pid), '-o', join(resolve(values.perf!), `${gatewayTag(c.block, g.v)}.data`)])) : [];
    if (perfs.length) await new Promise((r) => setTimeout(r, 500)); // attached before the first segment
    for (const g of gws) [g.cpu0, g.jit0, g.th0] = [treeCpuNs(g.proc.pid), g.lines?.length ?? 0, values.threads ? threadCpuNs(g.proc.pid) : undefined];
    await inTurn(gws, k, c.n, async (g, count) => {
      const s0 = treeCpuNs(g.proc.pid);
      const r = await h2loadFixed(g.url, count, connections, LOAD_CPU);
      g.segs.push({ requests: r.succeeded, cpuNs: treeCpuNs(g.proc.pid) - s0, durationS: r.durationS });
      g.ok += r.status2xx;
    });
    for (const g of gws) [g.cpu1, g.jit1, g.th1] = [treeCpuNs(g.proc.pid), g.lines?.length ?? 0, values.threads ? threadCpuNs(g.proc.pid) : undefined];
    for (const p of perfs) await p.stop(); // SIGTERM: perf writes its file and exits
    clock.lap('measure');
    const after = await measureHostSpeed(PROXY_CPU);
    clock.lap('loops');
    const batches = c.sink.batches();
    for (const g of gws) await g.proc.stop();
    clock.lap('stop');
    return gws.map((g) => {
      const done = g.segs.reduce((a, s) => a + s.requests, 0);
      const half = Math.floor(k / 2);
      const perReq = (segs: FreshSegment[]) => segs.reduce((a, s) => a + s.cpuNs, 0) / Math.max(1, segs.reduce((a, s) => a + s.requests, 0));
      const run: FreshRun = {
        block: c.block,
        variant: g.v.label,
        cpuUsPerRequest: (g.cpu1 - g.cpu0) / 1000 / Math.max(1, done),
        rps: done / g.segs.reduce((a, s) => a + s.durationS, 0),
        calibrationMs: Math.max(before.cpuMs, after.cpuMs),
        calibrationBeforeMs: before.cpuMs,
        calibrationAfterMs: after.cpuMs,
        calibrationWallMs: Math.max(before.wallMs, after.wallMs),
        drift: perReq(g.segs.slice(k - half)) / perReq(g.segs.slice(0, half)),
        errors: c.n - g.ok,
        otlpBatches: batches, // the sink is shared: the block's batches from every gateway
        segments: g.segs,
      };
      const jit = jitOf(g.lines, g.jit0, g.jit1);
      if (jit) run.jit = jit;
      if (g.th0 && g.th1) {
        const split = splitThreadCpu(g.proc.pid, g.ready, g.th0, g.th1);
        const per = (ns: number) => ns / 1000 / Math.max(1, done);
        run.threads = { us: { main: per(split.ns.main), v8: per(split.ns.v8), other: per(split.ns.other), late: per(split.ns.late) }, threads: split.threads, gone: split.gone };
      }
      printRun(run, before, after, clock.text());
      return run;
    });
  } finally {
    for (const g of gws) await g.proc.stop(); // a no-op once stopped
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killAll();
  process.exit(1);
});
