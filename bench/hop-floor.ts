// The floor of the agent hop (issue #16 item 3): what one Unix-socket request/response per HTTP
// request costs the smallest Node proxy, next to what it costs Sentinel, in one run.
//   node --import tsx bench/hop-floor.ts [--rounds 6] [--duration 4] [--segments 2] [--connections 50]
//        [--paths pass,json,batch,small,small-batch] [--sentinel] [--mode time|instr]
//        [--windows 3] [--requests 2000] [--concurrency 8] [--keep-dumps DIR]
// The floor proxy (bench/peers/hop-floor-proxy.ts: node:http + undici Pool, dispatch handler)
// and its agent (bench/peers/hop-floor-agent.ts) are transpiled to plain JavaScript (no tsx
// loader) and run as bench/agent-hop.ts runs Sentinel: the proxy pinned to CPU 0, the nginx
// origin and wrk on CPU 1, the agent unpinned. Its paths (see the proxy's head): /pass, /json
// (a request_headers-sized JSON event, one write per event), /batch (the same, one write per
// event-loop turn), /small (a 9-byte frame), /small-batch.
// --sentinel: Sentinel of this checkout (compiled, its SDK allow-all agent; bench/lib/agent-hop-side.ts)
// in the same rounds, as two more paths `sentinel-pass` and `sentinel-agent`.
// time mode: each round takes every path --duration seconds in --segments segments, the order
// mirrored segment by segment and rotated round by round; per round, each hop path's req/s and
// CPU per request over its own proxy's passthrough; medians with bootstrap 95% intervals.
// instr mode: the proxies run under callgrind (bench/lib/instr.ts), are warmed up, then get
// --windows windows of exactly --requests requests per path (keep-alive, --concurrency
// connections); instructions per request per path, and the hop's (path minus pass).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import { startHopOrigin, startHopSide, type HopSide } from './lib/agent-hop-side.ts';
import { callgrindWrap, countWindow, instrumentationOn, sendFixed } from './lib/instr.ts';
import { runLoad } from './lib/load.ts';
import { benchScratchDir, freePort, hasCommand, spawnPinned, waitReady, type Proc } from './lib/processes.ts';
import { clockTicksPerSecond, treeCpuTicks } from './lib/procfs.ts';
import { bootstrapMedianInterval, median } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '4' },
    segments: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    paths: { type: 'string', default: 'pass,json,batch,small,small-batch' },
    sentinel: { type: 'boolean', default: false },
    mode: { type: 'string', default: 'time' },
    windows: { type: 'string', default: '3' },
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '6000' },
    concurrency: { type: 'string', default: '8' },
    'keep-dumps': { type: 'string' },
    'node-flags': { type: 'string', default: '' },
  },
});
const mode = values.mode;
if (mode !== 'time' && mode !== 'instr') throw new Error('--mode takes time or instr');
if (mode === 'instr' && !hasCommand('valgrind')) throw new Error('--mode instr needs valgrind');
const REPO = resolve(import.meta.dirname, '..');
const tmp = benchScratchDir('hop-floor-');
const nodeFlags = values['node-flags'] ? values['node-flags'].split(' ').filter(Boolean) : [];
const floorPaths = values.paths.split(',');
if (!floorPaths.includes('pass')) throw new Error('--paths must include pass (the ratios are over it)');

/**
 * The floor's two programs and their shared framing as plain JavaScript under the repository (so
 * `undici` resolves; `./x.ts` imports become `./x.js`), removed at exit.
 */
function transpile(): { proxy: string; agent: string } {
  const dir = join(REPO, '.tmp', 'bench', `hop-floor-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  const out = (name: string): string => {
    const src = readFileSync(join(REPO, 'bench', 'peers', `${name}.ts`), 'utf8');
    const compilerOptions = { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, rewriteRelativeImportExtensions: true };
    const file = join(dir, `${name}.js`);
    writeFileSync(file, ts.transpileModule(src, { compilerOptions }).outputText);
    return file;
  };
  out('hop-floor-frames');
  return { proxy: out('hop-floor-proxy'), agent: out('hop-floor-agent') };
}

interface Target {
  /** the process whose CPU (or instructions) is measured */
  proxy: Proc;
  agent: Proc;
  port: number;
}

async function startFloor(originPort: number, wrap?: readonly string[]): Promise<Target> {
  const files = transpile();
  const socket = join(tmp, 'floor-agent.sock');
  const agent = spawnPinned('floor agent', null, process.execPath, [files.agent, '--socket', socket]);
  await new Promise<void>((ok, fail) => {
    agent.child.stdout!.on('data', (c: Buffer) => c.toString().includes('listening') && ok());
    void agent.done.then(() => fail(new Error(`floor agent exited: ${agent.output()}`)));
  });
  const port = await freePort();
  const [cmd, ...pre] = wrap?.length ? [...wrap, process.execPath] : [process.execPath];
  const proxy = spawnPinned('floor proxy', 0, cmd!, [...pre, ...nodeFlags, files.proxy, '--port', String(port), '--upstream', `http://127.0.0.1:${originPort}`, '--agent', socket], {
    env: { ...process.env, NODE_ENV: 'production' },
  });
  await waitReady(proxy, port, '/pass', wrap ? 300_000 : 30_000);
  return { proxy, agent, port };
}

async function startSentinel(originPort: number, wrap?: readonly string[]): Promise<Target> {
  const side: HopSide = await startHopSide('sentinel', REPO, {
    dir: join(tmp, 'sentinel'),
    originPort,
    gatewayCpu: 0,
    agentCpu: null,
    ...(wrap ? { wrap, readyMs: 300_000, agentTimeoutMs: 60_000 } : {}),
    nodeFlags,
  });
  return { proxy: side.gateway, agent: side.agent, port: side.port };
}

/** A path of the run: which target serves it, the URL path, and the passthrough path it is compared with. */
interface PathSpec {
  name: string;
  target: Target;
  url: string;
  pass: string;
}

const { port: originPort, proc: origin } = await startHopOrigin(tmp);
const cgDir = join(tmp, 'callgrind');
mkdirSync(cgDir, { recursive: true });
const wrap = mode === 'instr' ? callgrindWrap(cgDir, 'proxy') : undefined;
const floor = await startFloor(originPort, wrap);
const specs: PathSpec[] = floorPaths.map((p) => ({ name: p, target: floor, url: `/${p}`, pass: 'pass' }));
let sentinel: Target | undefined;
if (values.sentinel) {
  sentinel = await startSentinel(originPort, wrap);
  specs.push({ name: 'sentinel-pass', target: sentinel, url: '/pass', pass: 'sentinel-pass' }, { name: 'sentinel-agent', target: sentinel, url: '/agent', pass: 'sentinel-pass' });
}
const targets = sentinel ? [floor, sentinel] : [floor];

const fmt = (x: number, d = 3) => x.toFixed(d);
function withInterval(xs: number[], d = 3): string {
  const [lo, hi] = bootstrapMedianInterval(xs);
  return `${fmt(median(xs), d)} (95% ${fmt(lo, d)}-${fmt(hi, d)})`;
}

if (mode === 'time') await timeMode();
else await instrMode();
for (const t of targets) {
  await t.proxy.stop();
  await t.agent.stop();
}
await origin.stop();

interface Run {
  rps: number;
  /** the proxy's CPU per request (µs) */
  cpuUs: number;
  agentUs: number;
  errors: number;
}

async function timeMode(): Promise<void> {
  const rounds = Number(values.rounds);
  const segments = Number(values.segments);
  const seconds = Number(values.duration) / segments;
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error('--duration / --segments must be a whole number of seconds');
  const connections = Number(values.connections);
  const tick = 1e6 / clockTicksPerSecond();
  const measure = async (s: PathSpec, secs: number): Promise<Run> => {
    const p0 = treeCpuTicks(s.target.proxy.pid);
    const a0 = treeCpuTicks(s.target.agent.pid);
    const r = await runLoad({ kind: 'closed', rate: 0, path: s.url, headers: [], wrkArgs: [], connections, scheme: 'http' }, s.target.port, 1, secs, { warmupS: 0 });
    if (s.target.proxy.exited()) throw new Error(`${s.target.proxy.name} exited: ${s.target.proxy.output()}`);
    const n = Math.max(1, r.rps * secs);
    return { rps: r.rps, cpuUs: ((treeCpuTicks(s.target.proxy.pid) - p0) * tick) / n, agentUs: ((treeCpuTicks(s.target.agent.pid) - a0) * tick) / n, errors: r.errors + r.non2xx };
  };
  for (const s of specs) await measure(s, 2); // warm-up
  const runs = new Map<string, Run[]>(specs.map((s) => [s.name, []]));
  for (let round = 0; round < rounds; round++) {
    const k = round % specs.length;
    const order = [...specs.slice(k), ...specs.slice(0, k)];
    const parts = new Map<string, Run[]>(specs.map((s) => [s.name, []]));
    for (let seg = 0; seg < segments; seg++) {
      for (const s of seg % 2 === 0 ? order : [...order].reverse()) parts.get(s.name)!.push(await measure(s, seconds));
    }
    const line: string[] = [];
    for (const s of specs) {
      const ps = parts.get(s.name)!;
      const n = ps.map((r) => r.rps * seconds);
      const total = n.reduce((a, b) => a + b, 0);
      const per = (f: (r: Run) => number) => ps.reduce((a, r, i) => a + f(r) * n[i]!, 0) / Math.max(1, total);
      const run: Run = { rps: total / (seconds * segments), cpuUs: per((r) => r.cpuUs), agentUs: per((r) => r.agentUs), errors: ps.reduce((a, r) => a + r.errors, 0) };
      runs.get(s.name)!.push(run);
      line.push(`${s.name} ${run.rps.toFixed(0)}/s ${run.cpuUs.toFixed(1)}µs${run.errors ? ` err ${run.errors}` : ''}`);
    }
    console.log(`[round ${round + 1}] ${line.join(' | ')}`);
  }
  console.log(`\nhop floor, ${rounds} rounds x ${values.duration} s per path in ${segments} segments, wrk -c${connections}; proxies on CPU 0, origin and wrk on CPU 1, agents unpinned`);
  for (const s of specs) {
    const rs = runs.get(s.name)!;
    const base = runs.get(s.pass)!;
    const head = `${s.name.padEnd(14)} ${median(rs.map((r) => r.rps)).toFixed(0).padStart(6)} req/s, ${median(rs.map((r) => r.cpuUs)).toFixed(1)} µs CPU/req, agent ${median(rs.map((r) => r.agentUs)).toFixed(1)} µs/req`;
    if (s.name === s.pass) {
      console.log(head);
      continue;
    }
    const rps = rs.map((r, i) => r.rps / base[i]!.rps);
    const cpu = rs.map((r, i) => r.cpuUs / base[i]!.cpuUs);
    const extra = rs.map((r, i) => r.cpuUs - base[i]!.cpuUs);
    console.log(`${head}\n    over ${s.pass}: req/s ×${withInterval(rps)}, CPU/req ×${withInterval(cpu)}, hop ${withInterval(extra, 1)} µs CPU/req`);
  }
}

async function instrMode(): Promise<void> {
  const n = Number(values.requests);
  const windows = Number(values.windows);
  const concurrency = Number(values.concurrency);
  const warmup = Number(values.warmup);
  const keep = values['keep-dumps'] ? resolve(values['keep-dumps']) : undefined;
  if (keep) mkdirSync(keep, { recursive: true });
  for (const s of specs) await sendFixed(s.target.port, s.url, warmup, concurrency);
  for (const t of targets) instrumentationOn(t.proxy.pid);
  for (const s of specs) await sendFixed(s.target.port, s.url, 200, concurrency); // re-translate the hot code instrumented
  const counts = new Map<string, number[]>(specs.map((s) => [s.name, []]));
  for (let w = 0; w < windows; w++) {
    const order = w % 2 === 0 ? specs : [...specs].reverse();
    const line: string[] = [];
    for (const s of order) {
      const { instr, result } = await countWindow(cgDir, 'proxy', s.target.proxy.pid, () => sendFixed(s.target.port, s.url, n, concurrency), keep ? (dump) => join(keep, `${s.name}.w${w}.${dump.split('.')[1]}.callgrind`) : undefined);
      counts.get(s.name)!.push(instr / n);
      line.push(`${s.name} ${(instr / n).toFixed(0)}${result ? ` (non-200 ${result})` : ''}`);
    }
    console.log(`[window ${w + 1}] instr/req: ${line.join(' | ')}`);
  }
  console.log(`\nhop floor, instructions per request under callgrind: ${windows} windows of ${n} requests after ${warmup} warm-up, ${concurrency} keep-alive connections`);
  for (const s of specs) {
    const c = counts.get(s.name)!;
    const base = counts.get(s.pass)!;
    const head = `${s.name.padEnd(14)} ${median(c).toFixed(0)} instr/req (${Math.min(...c).toFixed(0)}-${Math.max(...c).toFixed(0)})`;
    if (s.name === s.pass) console.log(head);
    else console.log(`${head}; hop (minus ${s.pass}) per window: ${c.map((x, i) => (x - base[i]!).toFixed(0)).join(', ')}`);
  }
}
