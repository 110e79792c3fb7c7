// `node --import tsx bench/tracing.ts [--rounds 3] [--duration 5] [--warmup 8] [--connections 20] [--rates 0.01,1] [--profile DIR]`
// `node --import tsx bench/tracing.ts --mode instr [--rates 0,0.01] [--windows 5] [--requests 2000] [--baseline DIR] [--keep DIR]`
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
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { originNginxConf, SMALL_PATH, writeOriginFiles } from './lib/configs.ts';
import { benchScratchDir, freePort, hasCommand, killAll, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { callgrindWrap, countWindow, instrumentationOn, sendFixed } from './lib/instr.ts';
import { buildSentinel, renderPassthrough } from './lib/targets.ts';
import { clockTicksPerSecond, treeCpuTicks } from './lib/procfs.ts';
import { parseWrkOutput } from './lib/wrk.ts';
import { median } from './lib/stats.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    rates: { type: 'string', default: '0.01,1' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '8' },
    connections: { type: 'string', default: '20' },
    profile: { type: 'string' },
    mode: { type: 'string', default: 'time' },
    // instr mode
    windows: { type: 'string', default: '5' },
    requests: { type: 'string', default: '2000' },
    'warmup-requests': { type: 'string', default: '6000' },
    concurrency: { type: 'string', default: '8' },
    baseline: { type: 'string' },
    keep: { type: 'string' },
  },
});
if (values.mode !== 'time' && values.mode !== 'instr') throw new Error(`--mode ${values.mode}: expected time or instr`);
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const connections = Number(values.connections);
const repoRoot = resolve(import.meta.dirname, '..');
const PROXY_CPU = 0;
const LOAD_CPU = 1;

interface Variant {
  name: string;
  /** sampling rate, or undefined for tracing off */
  rate: number | undefined;
}
// tracing off, then one variant per --rates entry (e.g. `--rates 0,0.01,1`: rate 0 isolates the unsampled path)
const VARIANTS: Variant[] = [{ name: 'off', rate: undefined }, ...values.rates.split(',').map((r) => ({ name: `${Number(r) * 100}%`, rate: Number(r) }))];

interface Run {
  variant: string;
  round: number;
  rps: number;
  cpuUsPerRequest: number;
  errors: number;
  sinkBatches: number;
}

function configFor(v: Variant, listen: string, origin: string, metrics: string, sinkPort: number): string {
  const base = renderPassthrough(repoRoot, { listen, origin, metrics });
  if (v.rate === undefined) return base;
  const traced = base.replace(/\nobservability \{\n/, `\nobservability {\n    tracing {\n        backend "otlp" { endpoint "http://127.0.0.1:${sinkPort}" }\n        sampling-rate ${v.rate}\n    }\n`);
  if (traced === base) throw new Error('the passthrough config no longer has an observability block');
  return traced;
}

async function wrk(port: number, seconds: number): Promise<ReturnType<typeof parseWrkOutput>> {
  const out = await runPinned('wrk', LOAD_CPU, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}${SMALL_PATH}`], (seconds + 30) * 1000);
  return parseWrkOutput(out);
}

async function main(): Promise<void> {
  if (values.mode === 'instr') return instrMode();
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
        const port = await freePort();
        const file = join(tmp, `sentinel-${round}-${v.name.replace('%', 'pct')}.kdl`);
        writeFileSync(file, configFor(v, `127.0.0.1:${port}`, `127.0.0.1:${originPort}`, `127.0.0.1:${await freePort()}`, sink.port));
        const prof = values.profile ? ['--cpu-prof', '--cpu-prof-dir', resolve(values.profile), '--cpu-prof-name', `${v.name.replace('%', 'pct')}-r${round}.cpuprofile`] : [];
        const proc: Proc = spawnPinned(`sentinel ${v.name}`, PROXY_CPU, process.execPath, [...prof, entry, 'run', '-c', file], { cwd: repoRoot, env: { ...process.env, NODE_ENV: 'production' } });
        try {
          await waitReady(proc, port, SMALL_PATH, 30_000);
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
  const n = Number(values.requests);
  const warmup = Number(values['warmup-requests']);
  const concurrency = Number(values.concurrency);
  const tmp = benchScratchDir('bench-tracing-instr-');
  const cgDir = join(tmp, 'callgrind');
  mkdirSync(cgDir);
  if (values.keep) mkdirSync(resolve(values.keep), { recursive: true });
  const trees = [{ label: '', root: repoRoot }, ...(values.baseline ? [{ label: 'base ', root: resolve(values.baseline) }] : [])];
  const entries = [];
  for (const t of trees) entries.push(await buildSentinel(t.root)); // one tsc at a time
  const originDir = join(tmp, 'origin');
  mkdirSync(originDir);
  writeOriginFiles(originDir);
  const originPort = await freePort();
  writeFileSync(join(originDir, 'origin.conf'), originNginxConf(originPort, originDir));
  const origin = spawnPinned('origin nginx', null, 'nginx', ['-e', 'stderr', '-p', originDir, '-c', join(originDir, 'origin.conf')]);
  await waitReady(origin, originPort, SMALL_PATH, 10_000);
  const sink = await startOtlpSink();
  const gateways: { name: string; tree: string; variant: Variant; port: number; proc: Proc; counts: number[] }[] = [];
  try {
    for (const [i, t] of trees.entries()) {
      for (const v of VARIANTS) {
        const name = `${t.label}${v.name}`;
        const file = name.replace('%', 'pct').replace(' ', '-');
        const port = await freePort();
        writeFileSync(join(tmp, `${file}.kdl`), configFor(v, `127.0.0.1:${port}`, `127.0.0.1:${originPort}`, `127.0.0.1:${await freePort()}`, sink.port));
        const proc = spawnPinned(`sentinel ${name}`, null, 'valgrind', [...callgrindWrap(cgDir, file).slice(1), process.execPath, entries[i]!, 'run', '-c', join(tmp, `${file}.kdl`)], { cwd: t.root, env: { ...process.env, NODE_ENV: 'production' } });
        gateways.push({ name, tree: t.label, variant: v, port, proc, counts: [] });
      }
    }
    await Promise.all(gateways.map((g) => waitReady(g.proc, g.port, SMALL_PATH, 600_000)));
    console.log(`instr mode: ${gateways.length} gateways under callgrind, ${warmup} warm-up requests each, then ${windows} windows of ${n} requests (${concurrency} keep-alive connections)`);
    await Promise.all(
      gateways.map(async (g) => {
        await sendFixed(g.port, SMALL_PATH, warmup, concurrency);
        instrumentationOn(g.proc.pid);
        await sendFixed(g.port, SMALL_PATH, Math.min(warmup, 200), concurrency); // the hot code re-translated instrumented
      }),
    );
    for (let w = 1; w <= windows; w++) {
      await Promise.all(
        gateways.map(async (g) => {
          const file = g.name.replace('%', 'pct').replace(' ', '-');
          const keep = values.keep ? () => join(resolve(values.keep!), `${file}.w${w}.callgrind`) : undefined;
          const { instr, result: bad } = await countWindow(cgDir, file, g.proc.pid, () => sendFixed(g.port, SMALL_PATH, n, concurrency), keep);
          if (bad) throw new Error(`${g.name}: ${bad} non-200 answers`);
          g.counts.push(instr / n);
        }),
      );
      console.log(`[window ${w}] ${gateways.map((g) => `${g.name} ${g.counts[w - 1]!.toFixed(0)}`).join(' | ')} instr/req`);
    }
  } finally {
    for (const g of gateways) await g.proc.stop();
    await sink.close();
    await origin.stop();
  }
  const lines = ['', `tracing cost in instructions per request (callgrind, whole gateway process), ${windows} windows x ${n} requests after ${warmup} warm-up; ratios to "off" of the same tree per window`, ''];
  lines.push('| gateway | instr/req per window | median | ×off per window | median |');
  lines.push('|:--|:--|--:|:--|--:|');
  for (const g of gateways) {
    const off = gateways.find((o) => o.tree === g.tree && o.variant.rate === undefined)!;
    const ratios = g.counts.map((c, i) => c / off.counts[i]!);
    lines.push(`| ${g.name} | ${g.counts.map((c) => c.toFixed(0)).join(', ')} | ${median(g.counts).toFixed(0)} | ${ratios.map((r) => r.toFixed(3)).join(', ')} | ${median(ratios).toFixed(3)} |`);
  }
  if (trees.length > 1) {
    lines.push('', `current (${repoRoot}) / baseline (${trees[1]!.root}), per window:`);
    for (const v of VARIANTS) {
      const cur = gateways.find((g) => g.tree === '' && g.variant === v)!;
      const base = gateways.find((g) => g.tree !== '' && g.variant === v)!;
      const ratios = cur.counts.map((c, i) => c / base.counts[i]!);
      lines.push(`${v.name}: ×${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(3)).join(', ')}); instr/req ${median(cur.counts).toFixed(0)} vs ${median(base.counts).toFixed(0)}`);
    }
  }
  console.log(lines.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  killAll();
  process.exit(1);
});
