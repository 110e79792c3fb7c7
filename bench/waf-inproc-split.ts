// Where the in-process WAF gateway's CPU per benign GET goes, in situ (issue #16, "Session 21
// (waf21b)" in docs/waf.md): the engine's batches against the rest of the gateway's work. A copy of
// the compiled gateway is patched so that InProcessAgent's batch (the engine, WafService and the
// replies of one event-loop turn) adds its own process CPU (process.cpuUsage around the batch) and
// counts its calls, and V8's GC pauses are summed by kind (PerformanceObserver); on SIGUSR2 it
// writes the sums to a file. The gateway runs pinned to CPU 0 (nginx origin and wrk on CPU 1) with
// the bench GET of `npm run bench:waf` (query string, 5 browser headers, a counter), and per window
// prints CPU-ms per GET: the whole process, inside the batches, and the rest. `--pass` also starts
// a passthrough gateway (same compiled tree, no WAF) and measures it in alternating windows: the
// rest of the in-process gateway against passthrough is the cost of the WAF path outside the
// engine's batches (the agent filter, promises, GC, and the gateway's code run after the engine's).
// `--baseline DIR` (another checkout, node_modules present) also starts that tree's in-process
// gateway, measured the same way in alternating windows: per window the ratio baseline ÷ this tree,
// and per tree the spread of the batches' CPU a GET over the windows after the first (max ÷ min).
// wrk's counter restarts at 1 in every window, so from the second window on the query's values
// come back from the window before: the engine's caches admit ~2 values a GET and, once full
// (after ~10,000 GETs), evict as many (the periodic slow windows of session 21, docs/waf.md
// "Session 22 (waf22)"): use enough windows to get there.
//
//   node --import tsx bench/waf-inproc-split.ts [--root DIR] [--warmup 20] [--windows 5]
//       [--duration 5] [--connections 50] [--gateway-node-flags "--min-semi-space-size=16"] [--pass]
//       [--baseline DIR]
//
// The patch is a text replacement in the compiled plugins/agents/in-process.js; it fails loudly
// when the source no longer has the shape it expects. CRS from $CRS_DIR (default ../shared/conformance/crs).
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { originNginxConf, writeOriginFiles } from './lib/configs.ts';
import { benchScratchDir, freePort, killAll, requireCommands, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { median } from './lib/stats.ts';
import { renderPassthrough } from './lib/targets.ts';
import { compiledWafEntries, sentinelWafConfig, wrkScript } from './lib/waf-path.ts';

const REPO = resolve(import.meta.dirname, '..');
const { values: argv } = parseArgs({
  options: {
    root: { type: 'string', default: REPO },
    warmup: { type: 'string', default: '20' },
    windows: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    'gateway-node-flags': { type: 'string', default: '--min-semi-space-size=16' },
    pass: { type: 'boolean', default: false },
    baseline: { type: 'string', default: '' },
    host: { type: 'string', default: 'shop.example.com' },
  },
});
const root = resolve(argv.root);
const crsDir = resolve(process.env.CRS_DIR ?? join(REPO, '..', 'shared', 'conformance', 'crs'));
const GATEWAY_CPU = 0;
const LOAD_CPU = 1;

interface Sums {
  /** µs of process CPU inside batches, calls and batches run */
  batchCpu: number;
  calls: number;
  batches: number;
  /** ms of GC pauses by kind (1 minor, 2 major, 4 incremental, 8 weak callbacks) */
  gc: Record<string, number>;
  /** µs of process CPU since start */
  total: number;
}

/** The compiled tree copied next to it (node_modules still resolves) with the batch counters patched in. */
function patchedCopy(tree: string, dist: string): string {
  const copy = join(tree, '.tmp', 'bench', `split-dist-${process.pid}`);
  rmSync(copy, { recursive: true, force: true });
  cpSync(dist, copy, { recursive: true });
  process.on('exit', () => rmSync(copy, { recursive: true, force: true }));
  const file = join(copy, 'plugins', 'agents', 'in-process.js');
  const src = readFileSync(file, 'utf8');
  const open = /runBatch = \(\) => \{/;
  const close = /(\n\s*)\};(\s*\n\s*async close\(\))/;
  if (!open.test(src) || !close.test(src)) throw new Error(`${file}: runBatch no longer has the shape this bench patches`);
  const patched =
    src
      .replace(open, 'runBatch = () => { const __c0 = process.cpuUsage(); const __n = this.queue.length; try {')
      .replace(close, '$1} finally { const __d = process.cpuUsage(__c0); __split.batchCpu += __d.user + __d.system; __split.calls += __n; __split.batches++; } };$2') +
    `
const __split = { batchCpu: 0, calls: 0, batches: 0, gc: {} };
{
  const { PerformanceObserver } = await import('node:perf_hooks');
  const { writeFileSync } = await import('node:fs');
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) __split.gc[e.detail?.kind ?? 0] = (__split.gc[e.detail?.kind ?? 0] ?? 0) + e.duration;
  }).observe({ entryTypes: ['gc'] });
  process.on('SIGUSR2', () => {
    const u = process.cpuUsage();
    writeFileSync(process.env.BENCH_SPLIT_FILE, JSON.stringify({ ...__split, total: u.user + u.system }));
  });
}
`;
  writeFileSync(file, patched);
  return join(copy, 'src', 'cli', 'main.js');
}

async function sums(p: Proc, file: string): Promise<Sums> {
  rmSync(file, { force: true });
  process.kill(p.pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Sums;
    } catch {
      // not written (or not completely) yet
    }
  }
  throw new Error(`${p.name}: no counters after SIGUSR2:\n${p.output()}`);
}

/** CPU µs of a process from /proc (utime + stime, clock ticks of 10 ms). */
function procCpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

async function main(): Promise<number> {
  if (!requireCommands(['nginx', 'wrk', 'taskset'], 'nginx wrk util-linux')) return 1;
  const dir = benchScratchDir('sentinel-waf-inproc-split-');
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
  writeOriginFiles(dir);
  const originPort = await freePort();
  writeFileSync(join(dir, 'origin.conf'), originNginxConf(originPort, dir));
  const origin = spawnPinned('origin', LOAD_CPU, 'nginx', ['-e', 'stderr', '-p', dir, '-c', join(dir, 'origin.conf')]);
  await waitReady(origin, originPort, '/small', 10_000);
  const baseRoot = argv.baseline ? resolve(argv.baseline) : '';
  const main = patchedCopy(root, (await compiledWafEntries(root)).dist);
  const baseMain = baseRoot ? patchedCopy(baseRoot, (await compiledWafEntries(baseRoot)).dist) : '';
  const flags = argv['gateway-node-flags'].split(/\s+/).filter(Boolean);
  const start = async (name: string, waf: boolean, entry = main, tree = root): Promise<{ proc: Proc; port: number; counters: string }> => {
    const port = await freePort();
    const metrics = await freePort();
    const base = renderPassthrough(tree, { listen: `127.0.0.1:${port}`, origin: `127.0.0.1:${originPort}`, metrics: `127.0.0.1:${metrics}` }).replace(/worker-threads \d+/, 'worker-threads 1');
    const cfg = waf ? sentinelWafConfig(base, `in-process "sentinel-waf"\n        config { crs-dir "${crsDir}"; paranoia-level 1; mode "blocking" }`, 1) : base;
    writeFileSync(join(dir, `${name}.kdl`), cfg);
    const counters = join(dir, `${name}.split.json`);
    const proc = spawnPinned(name, GATEWAY_CPU, process.execPath, [...flags, entry, 'run', '-c', join(dir, `${name}.kdl`)], { cwd: tree, env: { ...process.env, NODE_ENV: 'production', BENCH_SPLIT_FILE: counters } });
    await waitReady(proc, port, '/', 120_000); // the in-process WAF loads the CRS first
    return { proc, port, counters };
  };
  writeFileSync(join(dir, 'get.lua'), wrkScript('get', argv.host, 'restart'));
  const wrk = async (port: number, secs: number): Promise<number> => {
    const out = await runPinned('wrk', LOAD_CPU, 'wrk', ['-t1', `-c${argv.connections}`, `-d${secs}s`, '-s', join(dir, 'get.lua'), `http://127.0.0.1:${port}/`], (secs + 30) * 1000);
    const m = /(\d+) requests in/.exec(out);
    if (!m || /Non-2xx/.test(out)) throw new Error(`wrk: no clean run:\n${out}`);
    return Number(m[1]);
  };
  type Row = { total: number; batch: number; rest: number; gc: number };
  /** One window of wrk on an in-process gateway, its CPU split per GET. */
  const window = async (g: { proc: Proc; port: number; counters: string }): Promise<Row & { n: number; calls: number }> => {
    const a = await sums(g.proc, g.counters);
    const n = await wrk(g.port, Number(argv.duration));
    const b = await sums(g.proc, g.counters);
    const per = (x: number): number => x / 1000 / n;
    const gcMs = (s: Sums): number => Object.values(s.gc).reduce((x, y) => x + y, 0);
    const total = per(b.total - a.total);
    const batch = per(b.batchCpu - a.batchCpu);
    return { n, calls: (b.calls - a.calls) / (b.batches - a.batches), total, batch, rest: total - batch, gc: (gcMs(b) - gcMs(a)) / n };
  };
  const show = (r: Row): string => `${r.total.toFixed(3)} = batches ${r.batch.toFixed(3)} + rest ${r.rest.toFixed(3)} (GC pauses ${r.gc.toFixed(3)} ms wall)`;
  try {
    const inproc = await start('inproc', true);
    const baseline = baseRoot ? await start('baseline', true, baseMain, baseRoot) : undefined;
    const pass = argv.pass ? await start('pass', false) : undefined;
    console.log(`in-process WAF gateway split: ${root}${baseRoot ? ` against ${baseRoot}` : ''}, ${argv.windows} windows x ${argv.duration} s after ${argv.warmup} s warm-up, ${argv.connections} connections, node ${flags.join(' ')}`);
    await wrk(inproc.port, Number(argv.warmup));
    if (baseline) await wrk(baseline.port, Number(argv.warmup));
    if (pass) await wrk(pass.port, Number(argv.warmup));
    const rows: (Row & { pass?: number })[] = [];
    const baseRows: Row[] = [];
    for (let w = 0; w < Number(argv.windows); w++) {
      const row: Row & { n: number; calls: number; pass?: number } = await window(inproc);
      let more = '';
      if (baseline) {
        const b = await window(baseline);
        baseRows.push(b);
        more += `\n     baseline: ${b.n} GETs, CPU-ms a GET ${show(b)}; baseline ÷ this x${(b.total / row.total).toFixed(3)}, batches x${(b.batch / row.batch).toFixed(3)}`;
      }
      if (pass) {
        const c0 = procCpu(pass.proc.pid);
        const m = await wrk(pass.port, Number(argv.duration));
        row.pass = (procCpu(pass.proc.pid) - c0) / 1000 / m;
        more += `; passthrough ${row.pass.toFixed(3)}`;
      }
      rows.push(row);
      console.log(`  window ${w + 1}: ${row.n} GETs, ${row.calls.toFixed(1)} calls a batch; CPU-ms a GET: in-process ${show(row)}${more}`);
    }
    const med = (rs: Row[], k: keyof Row): string => median(rs.map((r) => r[k])).toFixed(3);
    // The batches' CPU a GET over the windows after the first: how far the dearest is from the cheapest.
    const spread = (rs: Row[]): string => {
      const b = rs.slice(1).map((r) => r.batch);
      return b.length ? `x${(Math.max(...b) / Math.min(...b)).toFixed(2)}` : '-';
    };
    const passMed = pass ? median(rows.map((r) => r.pass!)) : undefined;
    console.log(`medians: in-process ${med(rows, 'total')} CPU-ms a GET = batches ${med(rows, 'batch')} + rest ${med(rows, 'rest')}; GC pauses ${med(rows, 'gc')} ms; batches' spread (windows 2-) ${spread(rows)}${passMed === undefined ? '' : `; passthrough ${passMed.toFixed(3)}, rest - passthrough ${median(rows.map((r) => r.rest - r.pass!)).toFixed(3)} (per window)`}`);
    if (baseline) {
      const ratios = (k: keyof Row): string => median(baseRows.slice(1).map((b, i) => b[k] / rows[i + 1]![k])).toFixed(3);
      console.log(`baseline: ${med(baseRows, 'total')} CPU-ms a GET = batches ${med(baseRows, 'batch')} + rest ${med(baseRows, 'rest')}; batches' spread (windows 2-) ${spread(baseRows)}`);
      console.log(`baseline ÷ this, median of windows 2-: whole gateway x${ratios('total')}, batches x${ratios('batch')}, rest x${ratios('rest')}`);
    }
    return 0;
  } finally {
    killAll();
  }
}

process.exitCode = await main();
