// `node --import tsx bench/tracing.ts [--rounds 3] [--duration 5] [--warmup 8] [--connections 20] [--rates 0.01,1] [--profile DIR]`
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
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { originNginxConf, SMALL_PATH, writeOriginFiles } from './lib/configs.ts';
import { freePort, killAll, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
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
  },
});
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

main().catch((err: unknown) => {
  console.error(err);
  killAll();
  process.exit(1);
});
