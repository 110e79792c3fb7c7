// `npm run bench:soak`: a long run of the compiled Sentinel at a fixed request rate (open loop),
// watching memory. Answers issue #9's "no growth over a 10-minute run (report the slope)".
// RSS is read from /proc every --sample seconds, the V8 heap from Sentinel's own metrics endpoint
// (sentinel_process_nodejs_heap_size_used_bytes). Slopes are least-squares fits over the samples
// after the warm-up window; a leak shows as a slope that stays positive in the second half too.
//
//   npm run bench:soak                               # 600 s at 3000 req/s
//   npm run bench:soak -- --duration 120 --rate 5000 --path /large
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'node:http';
import { LARGE_PATH, originNginxConf, SMALL_PATH, writeOriginFiles } from './lib/configs.ts';
import { ensureOpenloop, parseOpenloopOutput } from './lib/load.ts';
import { freePort, hasCommand, killAll, runPinned, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { treeRssKiB } from './lib/procfs.ts';
import { linearSlope } from './lib/stats.ts';
import { buildSentinel, renderPassthrough } from './lib/targets.ts';

interface SoakOptions {
  durationS: number;
  rate: number;
  connections: number;
  path: string;
  sampleS: number;
  warmupS: number;
  proxyCpu: number;
  loadCpu: number;
}

const USAGE = `usage: npm run bench:soak -- [--duration S (600)] [--rate N (3000)] [--connections N (50)]
  [--path /small|/large (/small)] [--sample S (5)] [--warmup S (30)] [--proxy-cpu N (0)] [--load-cpu N (1)]`;

function parse(argv: readonly string[]): SoakOptions {
  const o: SoakOptions = { durationS: 600, rate: 3000, connections: 50, path: SMALL_PATH, sampleS: 5, warmupS: 30, proxyCpu: 0, loadCpu: 1 };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!;
    const value = argv[++i];
    const num = Number(value);
    const needNumber = (): number => {
      if (value === undefined || !Number.isFinite(num) || num < 0) throw new Error(`${name} needs a number\n${USAGE}`);
      return num;
    };
    switch (name) {
      case '--duration': o.durationS = needNumber(); break;
      case '--rate': o.rate = needNumber(); break;
      case '--connections': o.connections = needNumber(); break;
      case '--sample': o.sampleS = needNumber(); break;
      case '--warmup': o.warmupS = needNumber(); break;
      case '--proxy-cpu': o.proxyCpu = needNumber(); break;
      case '--load-cpu': o.loadCpu = needNumber(); break;
      case '--path':
        if (value !== SMALL_PATH && value !== LARGE_PATH) throw new Error(`--path is ${SMALL_PATH} or ${LARGE_PATH}`);
        o.path = value;
        break;
      default: throw new Error(`unknown option ${name}\n${USAGE}`);
    }
  }
  if (o.warmupS >= o.durationS) throw new Error('--warmup must be shorter than --duration');
  return o;
}

function scrapeHeapBytes(port: number): Promise<number | null> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', timeout: 2000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const m = /^sentinel_process_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
        done(m ? Number(m[1]) : null);
      });
    });
    req.on('error', () => done(null));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

interface Sample {
  t: number;
  rssKiB: number;
  heapBytes: number | null;
}

/** Least-squares slope of one series over the samples from `fromS` on, per second. */
function slopeFrom(samples: readonly Sample[], fromS: number, pick: (s: Sample) => number | null): number | null {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of samples) {
    const v = pick(s);
    if (s.t >= fromS && v !== null) {
      xs.push(s.t);
      ys.push(v);
    }
  }
  return xs.length >= 3 ? linearSlope(xs, ys) : null;
}

async function main(): Promise<number> {
  const opts = parse(process.argv.slice(2));
  const repoRoot = resolve(import.meta.dirname, '..');
  for (const cmd of ['nginx', 'cc', 'taskset']) if (!hasCommand(cmd)) throw new Error(`${cmd} is missing: apt-get install -y nginx gcc util-linux`);
  const entry = await buildSentinel(repoRoot);
  const openloop = await ensureOpenloop(repoRoot);
  const tmp = mkdtempSync(join(tmpdir(), 'sentinel-soak-'));
  let origin: Proc | undefined;
  let sentinel: Proc | undefined;
  try {
    const originDir = join(tmp, 'origin');
    mkdirSync(originDir);
    const originPort = await freePort();
    writeOriginFiles(originDir);
    writeFileSync(join(originDir, 'origin.conf'), originNginxConf(originPort, originDir));
    origin = spawnPinned('origin nginx', opts.loadCpu, 'nginx', ['-e', 'stderr', '-p', originDir, '-c', join(originDir, 'origin.conf')]);
    await waitReady(origin, originPort, SMALL_PATH, 10_000);

    const port = await freePort();
    const metricsPort = await freePort();
    const config = join(tmp, 'sentinel.kdl');
    writeFileSync(config, renderPassthrough(repoRoot, { listen: `127.0.0.1:${port}`, origin: `127.0.0.1:${originPort}`, metrics: `127.0.0.1:${metricsPort}` }));
    sentinel = spawnPinned('sentinel', opts.proxyCpu, process.execPath, [entry, 'run', '-c', config], { cwd: repoRoot, env: { ...process.env, NODE_ENV: 'production' } });
    await waitReady(sentinel, port, opts.path, 30_000);
    const idleRssKiB = treeRssKiB(sentinel.pid);

    console.log(`soak: ${opts.durationS} s at ${opts.rate} req/s on ${opts.path}, ${opts.connections} connections; sampling every ${opts.sampleS} s`);
    const samples: Sample[] = [];
    const t0 = performance.now();
    const pid = sentinel.pid;
    const sample = async (): Promise<void> => {
      const t = (performance.now() - t0) / 1000;
      const rssKiB = treeRssKiB(pid);
      const heapBytes = await scrapeHeapBytes(metricsPort);
      samples.push({ t, rssKiB, heapBytes });
      if (samples.length % Math.max(1, Math.round(60 / opts.sampleS)) === 0) {
        console.log(`  t=${t.toFixed(0)}s rss=${(rssKiB / 1024).toFixed(1)} MiB heap=${heapBytes === null ? '?' : (heapBytes / 1048576).toFixed(1)} MiB`);
      }
    };
    const timer = setInterval(() => void sample(), opts.sampleS * 1000);
    // The openloop warm-up is not recorded in its latency figures; memory samples cover it all.
    const args = ['-p', String(port), '-u', opts.path, '-r', String(opts.rate), '-d', String(opts.durationS - opts.warmupS), '-w', String(opts.warmupS), '-c', String(opts.connections), '-t', '2'];
    const load = parseOpenloopOutput(await runPinned('openloop', opts.loadCpu, openloop, args, (opts.durationS + 60) * 1000));
    clearInterval(timer);
    await sample();

    const half = opts.warmupS + (opts.durationS - opts.warmupS) / 2;
    const rss = samples.map((s) => s.rssKiB);
    const result = {
      startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
      options: opts,
      node: process.version,
      load: {
        achievedRps: load.achieved_rps,
        completed: load.completed,
        errors: load.errors,
        non2xx: load.non2xx,
        unfinished: load.unfinished,
        latencyMs: Object.fromEntries(Object.entries(load.latency_us).map(([k, v]) => [k, v / 1000])),
      },
      memory: {
        idleRssMiB: idleRssKiB / 1024,
        maxRssMiB: Math.max(...rss) / 1024,
        endRssMiB: rss[rss.length - 1]! / 1024,
        rssSlopeKiBps: slopeFrom(samples, opts.warmupS, (s) => s.rssKiB),
        rssSlopeSecondHalfKiBps: slopeFrom(samples, half, (s) => s.rssKiB),
        heapSlopeKiBps: slopeFrom(samples, opts.warmupS, (s) => (s.heapBytes === null ? null : s.heapBytes / 1024)),
        heapSlopeSecondHalfKiBps: slopeFrom(samples, half, (s) => (s.heapBytes === null ? null : s.heapBytes / 1024)),
      },
      samples,
    };
    const m = result.memory;
    const fmt = (v: number | null, d = 1): string => (v === null ? 'n/a' : v.toFixed(d));
    const md = [
      `# Sentinel soak, ${result.startedAt}`,
      '',
      `${opts.durationS} s at ${opts.rate} req/s (open loop, ${opts.connections} connections, ${opts.path}); compiled build, pinned to CPU ${opts.proxyCpu}; node ${process.version}.`,
      '',
      '| figure | value |',
      '|:--|--:|',
      `| achieved req/s | ${load.achieved_rps.toFixed(0)} |`,
      `| completed / errors / non-2xx / unfinished | ${load.completed} / ${load.errors} / ${load.non2xx} / ${load.unfinished} |`,
      `| latency p50 / p99 / p99.9 ms | ${fmt(load.latency_us.p50 / 1000, 2)} / ${fmt(load.latency_us.p99 / 1000, 2)} / ${fmt(load.latency_us.p999 / 1000, 2)} |`,
      `| RSS idle / max / end MiB | ${fmt(m.idleRssMiB)} / ${fmt(m.maxRssMiB)} / ${fmt(m.endRssMiB)} |`,
      `| RSS slope after warm-up, KiB/s (second half) | ${fmt(m.rssSlopeKiBps, 2)} (${fmt(m.rssSlopeSecondHalfKiBps, 2)}) |`,
      `| heap-used slope after warm-up, KiB/s (second half) | ${fmt(m.heapSlopeKiBps, 2)} (${fmt(m.heapSlopeSecondHalfKiBps, 2)}) |`,
      '',
    ].join('\n');
    const outDir = join(repoRoot, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const stamp = result.startedAt.replace(/[:.]/g, '-');
    writeFileSync(join(outDir, `soak-${stamp}.json`), JSON.stringify(result, null, 2));
    writeFileSync(join(outDir, `soak-${stamp}.md`), md);
    console.log(`\n${md}\nwrote ${join(outDir, `soak-${stamp}`)}.{md,json}`);
    return 0;
  } finally {
    await sentinel?.stop();
    await origin?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    killAll();
    console.error((err as Error).message ?? err);
    process.exit(1);
  },
);
