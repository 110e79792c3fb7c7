// `npm run bench`: the side-by-side benchmark (issue #9). Starts an nginx origin, then every
// target in turn, interleaved over rounds, pinned to its own core, and measures closed-loop
// throughput (wrk) and open-loop latency at a fixed rate (bench/openloop). Feature scenarios from
// bench/scenarios/*.ts run on Sentinel and are compared with Sentinel passthrough. Writes
// bench/results/<timestamp>.md and .json. See bench/README.md.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, USAGE, type BenchOptions } from './lib/args.ts';
import { body, LARGE_PATH, originNginxConf, SMALL_BYTES, SMALL_PATH, writeOriginFiles } from './lib/configs.ts';
import { originCacheLocations } from './lib/cache.ts';
import { ensureOpenloop, loadKey, loadUnavailable, resolveLoad, runLoad, type ResolvedLoad } from './lib/load.ts';
import { freePort, hasCommand, killAll, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { startResourceSampler, loadAverage } from './lib/procfs.ts';
import { renderTable, summarize, type Baseline, type RunRecord, type SummaryRow } from './lib/report.ts';
import { isFeatureScenario, type FeatureScenario, type ScenarioContext } from './lib/scenario.ts';
import { renderPassthrough, TARGETS, type Target } from './lib/targets.ts';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));

interface BuiltinScenario {
  name: string;
  title: string;
  load(o: BenchOptions): ResolvedLoad;
}

const BUILTIN: BuiltinScenario[] = [
  {
    name: 'max-100b',
    title: 'Max throughput, 100 B responses (closed loop: wrk -t1)',
    load: (o) => resolveLoad({ kind: 'closed', path: SMALL_PATH }, { rate: o.rate, connections: o.connections, path: SMALL_PATH }),
  },
  {
    name: 'max-16k',
    title: 'Max throughput, 16 KiB responses (closed loop: wrk -t1)',
    load: (o) => resolveLoad({ kind: 'closed', path: LARGE_PATH }, { rate: o.rate, connections: o.connections, path: SMALL_PATH }),
  },
  {
    name: 'fixed-rate',
    title: 'Latency at a fixed rate, 100 B responses (open loop: bench/openloop, latency from the scheduled send time)',
    load: (o) => resolveLoad({ kind: 'open', path: SMALL_PATH }, { rate: o.rate, connections: o.connections, path: SMALL_PATH }),
  },
];

/** A unit of measurement: one load shape against one running target. */
interface Measurement {
  scenario: string;
  load: ResolvedLoad;
}

async function loadFeatureScenarios(): Promise<{ scenarios: FeatureScenario[]; problems: string[] }> {
  const dir = join(repoRoot, 'bench', 'scenarios');
  const scenarios: FeatureScenario[] = [];
  const problems: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts') && !f.startsWith('_')).sort();
  } catch {
    return { scenarios, problems };
  }
  for (const f of files) {
    try {
      const mod = (await import(pathToFileURL(join(dir, f)).href)) as Record<string, unknown>;
      const found = [mod.default, mod.scenario, ...(Array.isArray(mod.scenarios) ? mod.scenarios : [])].filter(isFeatureScenario);
      if (found.length === 0) problems.push(`bench/scenarios/${f}: exports no scenario (default, scenario or scenarios[] with name, description, sentinelConfig)`);
      scenarios.push(...found);
    } catch (err) {
      problems.push(`bench/scenarios/${f}: failed to load: ${(err as Error).message}`);
    }
  }
  return { scenarios, problems };
}

function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
  return text || 'not installed';
}


function fmtRun(r: RunRecord): string {
  if (!r.metrics) return `FAILED: ${r.error?.split('\n')[0] ?? 'unknown error'}`;
  const m = r.metrics;
  const extra = [m.errors ? `${m.errors} socket errors` : '', m.non2xx ? `${m.non2xx} non-2xx` : '', m.unfinished ? `${m.unfinished} unfinished` : ''].filter(Boolean).join(', ');
  return (
    `${Math.round(m.rps).toLocaleString('en-US')} req/s  p50 ${m.p50Ms.toFixed(3)} ms  p99 ${m.p99Ms.toFixed(3)} ms` +
    `${m.p999Ms != null ? `  p99.9 ${m.p999Ms.toFixed(3)} ms` : ''}  cpu ${m.cpuPct.toFixed(0)}%  rss ${(m.rssMaxKiB / 1024).toFixed(1)} MiB` +
    (extra ? `  (${extra})` : '')
  );
}

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const { scenarios: features, problems } = await loadFeatureScenarios();
  for (const p of problems) console.warn(`warning: ${p}`);

  const known = [...BUILTIN.map((s) => s.name), ...features.map((f) => f.name)];
  if (opts.list) {
    console.log('targets:');
    for (const t of TARGETS) {
      const reason = await t.unavailable(repoRoot);
      console.log(`  ${t.name.padEnd(20)} ${t.optIn ? '(opt-in) ' : ''}${t.description}${reason ? `  [${reason}]` : ''}`);
    }
    console.log('scenarios:');
    for (const s of BUILTIN) console.log(`  ${s.name.padEnd(20)} ${s.title}`);
    for (const f of features) console.log(`  ${f.name.padEnd(20)} (feature, Sentinel only) ${f.description}`);
    return 0;
  }
  const unknownTargets = (opts.targets ?? []).filter((t) => !TARGETS.some((x) => x.name === t));
  const unknownScenarios = (opts.scenarios ?? []).filter((s) => !known.includes(s));
  if (unknownTargets.length || unknownScenarios.length) {
    console.error(
      [unknownTargets.length ? `unknown targets: ${unknownTargets.join(', ')} (known: ${TARGETS.map((t) => t.name).join(', ')})` : '', unknownScenarios.length ? `unknown scenarios: ${unknownScenarios.join(', ')} (known: ${known.join(', ')})` : '']
        .filter(Boolean)
        .join('\n'),
    );
    return 2;
  }

  // The origin is nginx; wrk drives the closed loop. Without them nothing can be measured.
  const missing = ['nginx', 'wrk'].filter((c) => !hasCommand(c));
  if (missing.length) {
    console.error(`missing ${missing.join(' and ')}: apt-get install -y nginx haproxy wrk`);
    return 1;
  }
  const pin = opts.pin && hasCommand('taskset') && availableParallelism() > Math.max(opts.proxyCpu, opts.loadCpu);
  if (!pin && opts.pin) console.warn(`warning: not pinning (taskset missing or fewer than ${Math.max(opts.proxyCpu, opts.loadCpu) + 1} CPUs): figures will be noisier`);
  const proxyCpu = pin ? opts.proxyCpu : null;
  const loadCpu = pin ? opts.loadCpu : null;

  const builtins = BUILTIN.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  let selectedFeatures = features.filter((f) => !opts.scenarios || opts.scenarios.includes(f.name));
  const wanted = TARGETS.filter((t) => (opts.targets ? opts.targets.includes(t.name) : !t.optIn));
  const targets: Target[] = [];
  const leftOut: Array<{ target: string; reason: string }> = [];
  if (!opts.targets) for (const t of TARGETS.filter((x) => x.optIn)) leftOut.push({ target: t.name, reason: `opt-in, not run by default (add it with --targets)` });
  for (const t of wanted) {
    const reason = await t.unavailable(repoRoot);
    if (reason) {
      console.warn(`leaving out ${t.name}: ${reason}`);
      leftOut.push({ target: t.name, reason });
    } else targets.push(t);
  }
  const sentinelOk = !leftOut.some((l) => l.target === 'sentinel') && (!opts.targets || opts.targets.includes('sentinel'));
  if (selectedFeatures.length && !sentinelOk) {
    for (const f of selectedFeatures) leftOut.push({ target: `sentinel+${f.name}`, reason: 'feature scenarios run on Sentinel, which is not in this run' });
    console.warn(`leaving out feature scenarios (${selectedFeatures.map((f) => f.name).join(', ')}): Sentinel is not in this run`);
    selectedFeatures = [];
  }

  // Every target runs every selected built-in scenario; Sentinel also runs a passthrough baseline
  // for each feature whose load shape no built-in scenario already measures.
  const measurements: Measurement[] = builtins.map((s) => ({ scenario: s.name, load: s.load(opts) }));
  const featureLoads = new Map<string, ResolvedLoad>();
  const baselineOf = new Map<string, string>();
  const sentinelExtra: Measurement[] = [];
  for (const f of selectedFeatures) {
    const load = resolveLoad(f.load, { rate: opts.rate, connections: opts.connections, path: SMALL_PATH });
    featureLoads.set(f.name, load);
    const same = [...measurements, ...sentinelExtra].find((m) => loadKey(m.load) === loadKey(load));
    if (same) baselineOf.set(f.name, same.scenario);
    else {
      const name = `passthrough@${f.name}`;
      sentinelExtra.push({ scenario: name, load });
      baselineOf.set(f.name, name);
    }
  }
  for (const m of [...measurements, ...sentinelExtra, ...[...featureLoads.values()].map((load) => ({ scenario: '', load }))]) {
    const why = loadUnavailable(m.load);
    if (why) {
      console.error(`cannot run scenario ${m.scenario || 'of a feature'}: ${why}`);
      return 1;
    }
  }
  if (targets.length === 0) {
    console.error('no target can run here');
    return 1;
  }
  const needsOpenloop = [...measurements, ...sentinelExtra, ...[...featureLoads.values()].map((load) => ({ load }))].some((m) => m.load.kind === 'open');
  const openloopBin = needsOpenloop ? await ensureOpenloop(repoRoot) : undefined;
  // Each target start is warmed up with wrk (JIT, pools) before its first measured run; a Node
  // target on a busy machine needs more than a second. The open-loop generator also discards
  // its first second. Whole seconds: wrk's -d.
  const targetWarmupS = opts.quick ? 1 : 2;
  const openloopWarmupS = 1;

  const runsPerRound = targets.length * measurements.length + (sentinelOk ? sentinelExtra.length + selectedFeatures.length : 0);
  const estimateS = opts.rounds * (runsPerRound * (opts.durationS + 1) + (targets.length + selectedFeatures.length) * (targetWarmupS + 2));
  console.log(
    `bench: ${targets.map((t) => t.name).join(', ')} x ${[...measurements.map((m) => m.scenario), ...selectedFeatures.map((f) => f.name)].join(', ')}; ` +
      `${opts.rounds} round(s) of ${opts.durationS} s runs, ~${Math.ceil(estimateS / 60)} min; proxy on CPU ${proxyCpu ?? '-'}, origin + load on CPU ${loadCpu ?? '-'}`,
  );

  const startedAt = new Date();
  const loadBefore = loadAverage();
  const tmpRoot = mkdtempSync(join(tmpdir(), 'sentinel-bench-'));
  const records: RunRecord[] = [];
  let origin: Proc | undefined;
  try {
    const originDir = join(tmpRoot, 'origin');
    mkdirSync(originDir);
    const originPort = await freePort();
    writeOriginFiles(originDir);
    // + explicitly cacheable copies of the bodies (the cache-hit scenarios)
    writeFileSync(join(originDir, 'origin.conf'), originNginxConf(originPort, originDir, originCacheLocations(originDir, body(SMALL_BYTES))));
    origin = spawnPinned('origin nginx', loadCpu, 'nginx', ['-e', 'stderr', '-p', originDir, '-c', join(originDir, 'origin.conf')]);
    await waitReady(origin, originPort, SMALL_PATH, 10_000);

    let startSeq = 0;
    const runOne = async (
      round: number,
      target: Target,
      label: { scenario: string; target: string },
      work: Measurement[],
      extra: { sentinelConfig?: string; readyPath?: string; ctx?: ScenarioContext; setup?: () => Promise<void>; teardown?: () => Promise<void> } = {},
    ): Promise<void> => {
      const dir = extra.ctx?.tmpDir ?? join(tmpRoot, `run-${++startSeq}`);
      mkdirSync(dir, { recursive: true });
      const port = extra.ctx?.listenPort ?? (await freePort());
      const metricsPort = extra.ctx ? Number(extra.ctx.metrics.split(':')[1]) : await freePort();
      const fail = (err: unknown): void => {
        const message = (err as Error).message ?? String(err);
        for (const m of work) records.push({ round, scenario: m.scenario, target: label.target, error: message });
        console.log(`[round ${round}] ${label.target}: FAILED: ${message.split('\n').slice(0, 6).join('\n    ')}`);
      };
      let proc: Proc | undefined;
      try {
        await extra.setup?.();
        const first = work[0]!.load;
        proc = await target.start({
          repoRoot,
          tmpDir: dir,
          originPort,
          port,
          metricsPort,
          cpu: proxyCpu,
          ...(extra.sentinelConfig ? { sentinelConfig: extra.sentinelConfig } : {}),
          readyPath: extra.readyPath ?? first.path,
          readyScheme: first.scheme,
        });
        // Warm-up (JIT, connection pools), not measured.
        await runLoad({ ...first, kind: 'closed' }, port, loadCpu, targetWarmupS, { warmupS: 0 });
        for (const m of work) {
          if (proc.exited()) throw new Error(`${target.name} exited:\n${proc.output().trim()}`);
          const sampler = startResourceSampler(proc.pid);
          try {
            const r = await runLoad(m.load, port, loadCpu, opts.durationS, { warmupS: openloopWarmupS, ...(openloopBin ? { openloopBin } : {}) });
            const usage = sampler.stop();
            const { raw, ...metrics } = r;
            const rec: RunRecord = {
              round,
              scenario: m.scenario,
              target: label.target,
              metrics: { ...metrics, cpuPct: usage.cpuPct, rssMaxKiB: usage.rssMaxKiB, rssSlopeKiBps: usage.rssSlopeKiBps },
              raw,
              loadavg1: Number(loadAverage().split(' ')[0]),
            };
            records.push(rec);
            console.log(`[round ${round}] ${label.target.padEnd(20)} ${m.scenario.padEnd(12)} ${fmtRun(rec)}`);
          } catch (err) {
            sampler.stop();
            records.push({ round, scenario: m.scenario, target: label.target, error: (err as Error).message });
            console.log(`[round ${round}] ${label.target.padEnd(20)} ${m.scenario.padEnd(12)} FAILED: ${(err as Error).message.split('\n')[0]}`);
          }
        }
      } catch (err) {
        fail(err);
      } finally {
        await proc?.stop();
        try {
          await extra.teardown?.();
        } catch (err) {
          console.warn(`warning: teardown of ${label.target} failed: ${(err as Error).message}`);
        }
      }
    };

    for (let round = 1; round <= opts.rounds; round++) {
      // Rotate the order each round so no target always runs first (or right after a heavy one).
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!);
      for (const target of order) {
        const work = target.name === 'sentinel' ? [...measurements, ...sentinelExtra] : measurements;
        if (work.length) await runOne(round, target, { scenario: '', target: target.name }, work);
      }
      // Feature scenarios run on Sentinel, and on the baseline build when it is selected (A/B of two commits).
      for (const sentinel of targets.filter((t) => t.name === 'sentinel' || t.name === 'sentinel-baseline'))
      for (const f of sentinelOk ? selectedFeatures : []) {
        const dir = join(tmpRoot, `feature-${f.name}-${round}`);
        mkdirSync(dir, { recursive: true });
        const listenPort = await freePort();
        const vars = { listen: `127.0.0.1:${listenPort}`, origin: `127.0.0.1:${originPort}`, metrics: `127.0.0.1:${await freePort()}` };
        const ctx: ScenarioContext = {
          origin: vars.origin,
          originPort,
          listen: vars.listen,
          listenPort,
          metrics: vars.metrics,
          tmpDir: dir,
          repoRoot,
          passthroughConfig: () => renderPassthrough(repoRoot, vars),
        };
        let config: string;
        try {
          config = f.sentinelConfig(ctx);
        } catch (err) {
          records.push({ round, scenario: f.name, target: sentinel.name, error: `sentinelConfig() threw: ${(err as Error).message}` });
          continue;
        }
        await runOne(round, sentinel, { scenario: f.name, target: sentinel.name }, [{ scenario: f.name, load: featureLoads.get(f.name)! }], {
          sentinelConfig: config,
          ...(f.readyPath ? { readyPath: f.readyPath } : {}),
          ctx,
          ...(f.setup ? { setup: () => f.setup!(ctx) } : {}),
          ...(f.teardown ? { teardown: () => f.teardown!(ctx) } : {}),
        });
      }
    }
  } finally {
    await origin?.stop();
    rmSync(tmpRoot, { recursive: true, force: true });
  }

  // Report.
  const builtinNames = new Set(builtins.map((b) => b.name));
  const baselinesFor = (scenario: string): Baseline[] => {
    if (builtinNames.has(scenario)) {
      return [
        { label: 'raw', scenario, target: 'raw' },
        { label: 'nginx', scenario, target: 'nginx' },
      ];
    }
    const base = baselineOf.get(scenario);
    return base ? [{ label: 'passthrough', scenario: base, target: 'sentinel' }] : [];
  };
  const summary = summarize(records, baselinesFor);
  const finishedAt = new Date();
  const machine = {
    cpus: availableParallelism(),
    loadavgBefore: loadBefore,
    loadavgAfter: loadAverage(),
    node: process.version,
    nginx: versionOf('nginx', ['-v']),
    haproxy: versionOf('haproxy', ['-v']),
    wrk: versionOf('wrk', ['-v']),
  };
  const md = renderMarkdown({ opts, startedAt, finishedAt, machine, leftOut, summary, builtins, features: selectedFeatures, baselineOf, proxyCpu, loadCpu });
  const outDir = opts.outDir ?? join(repoRoot, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(outDir, `${stamp}.md`), md);
  writeFileSync(
    join(outDir, `${stamp}.json`),
    JSON.stringify({ startedAt, finishedAt, options: opts, pinning: { proxyCpu, loadCpu }, machine, leftOut, baselines: Object.fromEntries(baselineOf), summary, records }, null, 2),
  );
  console.log(`\n${md}\nwrote ${join(outDir, stamp)}.{md,json}`);
  return records.some((r) => r.metrics) ? 0 : 1;
}

function renderMarkdown(p: {
  opts: BenchOptions;
  startedAt: Date;
  finishedAt: Date;
  machine: Record<string, string | number>;
  leftOut: Array<{ target: string; reason: string }>;
  summary: SummaryRow[];
  builtins: BuiltinScenario[];
  features: FeatureScenario[];
  baselineOf: Map<string, string>;
  proxyCpu: number | null;
  loadCpu: number | null;
}): string {
  const { opts, machine } = p;
  const out: string[] = [];
  out.push(`# Sentinel side-by-side benchmark, ${p.startedAt.toISOString()}`);
  out.push('');
  out.push(
    `${opts.rounds} interleaved round(s) of ${opts.durationS} s per run; figures are medians over rounds. ` +
      `${opts.connections} connections; fixed rate ${opts.rate} req/s. Proxy pinned to CPU ${p.proxyCpu ?? '-'}, ` +
      `origin (nginx) and load generator to CPU ${p.loadCpu ?? '-'}. Took ${Math.round((p.finishedAt.getTime() - p.startedAt.getTime()) / 1000)} s.`,
  );
  out.push('');
  out.push(`Machine: ${machine.cpus} CPUs, load average ${machine.loadavgBefore} before / ${machine.loadavgAfter} after (other work on the machine skews figures); node ${machine.node}; ${machine.nginx}; ${machine.haproxy}; ${machine.wrk}.`);
  const busiest = Math.max(...[machine.loadavgBefore, machine.loadavgAfter].map((l) => Number(String(l).split(' ')[0])));
  if (busiest > Number(machine.cpus)) {
    out.push('');
    out.push(
      `**Warning: the machine was busy (1-minute load average up to ${busiest} on ${machine.cpus} CPUs).** Other processes competed with ` +
        'the proxies for their core (see the CPU column: a saturated proxy on a quiet machine uses ~100 %), so absolute figures are far below ' +
        'what these proxies do and even ratios are skewed (Node targets suffer more from preemption than nginx/HAProxy). Re-run on a quiet machine before drawing conclusions.',
    );
  }
  out.push('');
  out.push('Cells read `value (×raw ×nginx)`: the ratio of this target\'s median to the raw node forwarder\'s and to nginx\'s in the same run ' + '(req/s: higher is better; latency, CPU, RSS: lower is better). CPU is % of one core used by the proxy during the run; RSS is sampled every 250 ms from /proc (max, and least-squares slope).');
  if (p.leftOut.length) {
    out.push('');
    out.push('Left out:');
    for (const l of p.leftOut) out.push(`- ${l.target}: ${l.reason}`);
  }
  for (const s of p.builtins) {
    const rows = p.summary.filter((r) => r.scenario === s.name);
    if (!rows.length) continue;
    out.push('', `## ${s.name}: ${s.title}`, '', renderTable(rows, ['raw', 'nginx']));
  }
  if (p.features.length) {
    out.push('', '## Feature scenarios (Sentinel), `value (×passthrough)` under the same load in the same run');
    for (const f of p.features) {
      const base = p.baselineOf.get(f.name);
      const rows = [
        ...p.summary.filter((r) => r.scenario === base && r.target === 'sentinel').map((r) => ({ ...r, target: 'sentinel passthrough', ratios: {} })),
        ...p.summary.filter((r) => r.scenario === f.name).map((r) => ({ ...r, target: `${r.target} + ${f.name}` })),
      ];
      out.push('', `### ${f.name}: ${f.description}`, '', renderTable(rows, ['passthrough']));
    }
  }
  out.push('');
  return out.join('\n');
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
