// `node --import tsx bench/tracing-soak.ts [--blocks 30] [--duration 4] [--rates 0,0.01] [--node-flags "..."]`
//
// Does a tracing-on gateway get dearer the longer it runs? One gateway per variant (tracing off,
// then one per --rates entry), all started once and kept for the whole run; wrk blocks of
// --duration seconds rotate over them, so every variant sees the same machine drift. Per block:
// the gateway's CPU µs per request (schedstat of every thread), its RSS, and the OTLP batches
// the sink received. A growth over the blocks of one variant and not of "off" is something
// accumulating in that process (bench/tracing.ts starts each variant afresh each round).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { originNginxConf, SMALL_PATH, writeOriginFiles } from './lib/configs.ts';
import { benchScratchDir, freePort, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { buildSentinel, renderPassthrough } from './lib/targets.ts';
import { treeCpuNs, treeRssKiB } from './lib/procfs.ts';
import { parseWrkOutput } from './lib/wrk.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '30' },
    duration: { type: 'string', default: '4' },
    rates: { type: 'string', default: '0,0.01' },
    connections: { type: 'string', default: '20' },
    'node-flags': { type: 'string', default: '' },
    // keep each gateway's whole stdout/stderr in DIR/<variant>.log (e.g. with --node-flags "--trace-deopt")
    out: { type: 'string' },
  },
});
const repoRoot = resolve(import.meta.dirname, '..');
const tmp = benchScratchDir('bench-tracing-soak-');
const variants = [{ name: 'off', rate: undefined as number | undefined }, ...values.rates.split(',').map((r) => ({ name: `${Number(r) * 100}%`, rate: Number(r) as number | undefined }))];

const sink = await startOtlpSink();
const sinkPort = sink.port;

const entry = await buildSentinel(repoRoot);
const originDir = join(tmp, 'origin');
mkdirSync(originDir);
writeOriginFiles(originDir);
const originPort = await freePort();
writeFileSync(join(originDir, 'origin.conf'), originNginxConf(originPort, originDir));
const origin = spawnPinned('origin nginx', 1, 'nginx', ['-e', 'stderr', '-p', originDir, '-c', join(originDir, 'origin.conf')]);
await waitReady(origin, originPort, SMALL_PATH, 10_000);

const gws: { name: string; port: number; proc: Proc; cpu: number[]; rss: number[] }[] = [];
for (const v of variants) {
  const port = await freePort();
  let config = renderPassthrough(repoRoot, { listen: `127.0.0.1:${port}`, origin: `127.0.0.1:${originPort}`, metrics: `127.0.0.1:${await freePort()}` });
  if (v.rate !== undefined) config = config.replace(/\nobservability \{\n/, `\nobservability {\n    tracing {\n        backend "otlp" { endpoint "http://127.0.0.1:${sinkPort}" }\n        sampling-rate ${v.rate}\n    }\n`);
  const file = join(tmp, `${v.name.replace('%', 'pct')}.kdl`);
  writeFileSync(file, config);
  const flags = values['node-flags'].split(/\s+/).filter(Boolean);
  const argv = [process.execPath, ...flags, entry, 'run', '-c', file];
  const proc = values.out
    ? spawnPinned(`sentinel ${v.name}`, 0, 'sh', ['-c', 'exec "$@" > "$0" 2>&1', join(resolve(values.out), `${v.name.replace('%', 'pct')}.log`), ...argv], { cwd: repoRoot, env: { ...process.env, NODE_ENV: 'production' } })
    : spawnPinned(`sentinel ${v.name}`, 0, argv[0]!, argv.slice(1), { cwd: repoRoot, env: { ...process.env, NODE_ENV: 'production' } });
  await waitReady(proc, port, SMALL_PATH, 30_000);
  gws.push({ name: v.name, port, proc, cpu: [], rss: [] });
}
const blocks = Number(values.blocks);
const d = Number(values.duration);
for (let b = 0; b < blocks; b++) {
  const line: string[] = [];
  for (let k = 0; k < gws.length; k++) {
    const g = gws[(k + b) % gws.length]!;
    sink.reset();
    const c0 = treeCpuNs(g.proc.pid);
    const out = parseWrkOutput(await runPinned('wrk', 1, 'wrk', ['-t1', `-c${values.connections}`, `-d${d}s`, '--latency', `http://127.0.0.1:${g.port}${SMALL_PATH}`], (d + 30) * 1000));
    const us = (treeCpuNs(g.proc.pid) - c0) / 1000 / Math.max(1, out.requests);
    const rss = treeRssKiB(g.proc.pid) / 1024;
    g.cpu.push(us);
    g.rss.push(rss);
    line.push(`${g.name} ${Math.round(out.requestsPerSec)} req/s ${us.toFixed(1)} µs/req rss ${rss.toFixed(0)} MiB batches ${sink.batches()}`);
  }
  console.log(`[block ${b + 1}] ${line.join(' | ')}`);
}
for (const g of gws) await g.proc.stop();
await origin.stop();
await sink.close();
