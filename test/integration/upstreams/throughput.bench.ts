// Passthrough throughput with 3 targets + active health checks, as a ratio against 1 target,
// measured in the same run (autocannon, bounded). Not part of `npm test`:
//   node --import tsx test/integration/upstreams/throughput.bench.ts [--seconds 5] [--rounds 2] [--connections 32]
// The upstreams and the gateway run as separate processes; autocannon runs here.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { freePort } from '../../helpers/ports.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

/** The slice of autocannon's API used here (it ships no type declarations). */
interface CannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  errors: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: { url: string; connections: number; duration: number }) => Promise<CannonResult>;

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const seconds = arg('seconds', 5);
const rounds = arg('rounds', 2);
const connections = arg('connections', 32);
const repoRoot = new URL('../../../', import.meta.url).pathname;


async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} never came up`);
}

function upstreamProcess(ports: number[]): ChildProcess {
  const code = `
    const http = require('node:http');
    for (const p of ${JSON.stringify(ports)}) {
      http.createServer((req, res) => {
        if (req.url === '/health') return res.end('ok');
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 13 });
        res.end('hello, world\\n');
      }).listen(p, '127.0.0.1');
    }`;
  return spawn(process.execPath, ['-e', code], { stdio: 'inherit' });
}

function gatewayConfig(port: number, targets: number[], health: boolean): string {
  return `
listeners { listener "http" { address "127.0.0.1:${port}" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams {
  upstream "backend" {
    ${targets.map((t) => `target "127.0.0.1:${t}"`).join('\n    ')}
    load-balancing "round_robin"
    ${health ? 'health-check { type "http" { path "/health" }; interval-secs 1; timeout-secs 1 }' : ''}
  }
}
observability { logging { access-log { enabled #false } } }
`;
}

async function measure(name: string, config: string, port: number, dir: string): Promise<number> {
  const file = join(dir, `${name}.kdl`);
  writeFileSync(file, config);
  const gw = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'run', '-c', file, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'], cwd: repoRoot });
  try {
    await waitHttp(`http://127.0.0.1:${port}/`);
    await autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: 1 }); // warm-up
    const r = await autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: seconds });
    const errors = r.errors + r.non2xx;
    console.log(`${name}: ${r.requests.average.toFixed(0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${errors}`);
    return r.requests.average;
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sentinel-upstream-bench-'));
const ups = [await freePort(), await freePort(), await freePort()];
const upstreams = upstreamProcess(ups);
try {
  await Promise.all(ups.map((p) => waitHttp(`http://127.0.0.1:${p}/health`)));
  const single: number[] = [];
  const triple: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const port = await freePort();
    single.push(await measure(`1 target (round ${i + 1})`, gatewayConfig(port, ups.slice(0, 1), false), port, dir));
    const port3 = await freePort();
    triple.push(await measure(`3 targets + health checks (round ${i + 1})`, gatewayConfig(port3, ups, true), port3, dir));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`ratio 3 targets + health / 1 target: ${(median(triple) / median(single)).toFixed(3)} (medians ${median(triple).toFixed(0)} / ${median(single).toFixed(0)} req/s)`);
} finally {
  upstreams.kill();
  rmSync(dir, { recursive: true, force: true });
}
