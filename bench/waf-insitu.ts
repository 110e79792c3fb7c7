// Where the WAF path's CPU goes per process (issue #16, "the in-situ gap"): the bench:waf load
// (wrk -t1 -c50 on CPU 1, the benign GET or 2 KiB JSON POST with a counter), gateway and agent
// pinned together on CPU 0, and per window, for each process apart and per request:
// user and system CPU time (/proc/<pid>/stat), voluntary and involuntary context switches
// (/proc/<pid>/task/*/status), syscalls (perf stat on the kernel's syscall tracepoints: no
// ptrace, the processes run at full speed), and V8 GC (--trace-gc-nvp: scavenges, mark-compacts,
// their pause time, bytes promoted). Sides, all started at once and measured in interleaved
// windows (the order rotates each round) so the machine's drift spreads over every side:
//
//   pass          Sentinel passthrough (no agent)
//   allow         the WAF gateway config (same filter, events, body inspection) with the SDK's
//                 allow-all agent instead of sentinel-waf: the hop without the engine
//   waf           gateway + sentinel-waf (as bench:waf's "sentinel+waf")
//   waf:NAME=FLAGS  another sentinel-waf side whose agent runs with extra node FLAGS ('+' between
//                 flags), e.g. waf:semi32=--max-semi-space-size=32
//   gw:NAME=FLAGS   the waf side with extra node FLAGS for the gateway
//   env:NAME=K=V    the waf side with one more environment variable for both processes
//   both:NAME=FLAGS the waf side with extra node FLAGS for both processes
//   spin:NAME=US[@FLAGS]  the allow side with an agent that busy-waits US microseconds per request
//                 (the engine's CPU on the shared core, without its allocation: a "slow" agent);
//                 FLAGS ('+' between) for the gateway, e.g. spin:s250=250@--max-semi-space-size=32
//
//   node --import tsx bench/waf-insitu.ts [--requests get,post] [--rounds 3] [--duration 5]
//       [--sides pass,allow,waf] [--baseline DIR] [--no-syscalls] [--connections 50] [--warmup 3]
//       [--host NAME]
//
// --host NAME: send this Host header instead of wrk's numeric 127.0.0.1:port, which CRS 920350
// matches (a logged warning: detection headers in the reply and an audit line per request).
// --baseline DIR adds "waf[base]": the waf side from another checkout (with node_modules).
// Prints one line per side and window, then per side the medians over rounds and, for every
// waf variant, per-round ratios variant / "waf" of CPU per request (< 1: the variant is cheaper). CRS from
// $CRS_DIR (default ../shared/conformance/crs).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { originNginxConf, writeOriginFiles } from './lib/configs.ts';
import { benchScratchDir, freePort, killAll, requireCommands, runPinned, spawnPinned, waitForStatus200, type Proc } from './lib/processes.ts';
import { clockTicksPerSecond, loadAverage } from './lib/procfs.ts';
import { median } from './lib/stats.ts';
import { renderPassthrough } from './lib/targets.ts';
import { compiledWafEntries, sentinelWafConfig, wrkScript } from './lib/waf-path.ts';
import { perfStatDuring, syscallEvents } from './lib/perf-stat.ts';
import { parseWrkOutput } from './lib/wrk.ts';
import { BROWSER_HEADERS } from './lib/waf-requests.ts';

const REPO = resolve(import.meta.dirname, '..');
const { values: argv } = parseArgs({
  options: {
    requests: { type: 'string', default: 'get,post' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '3' },
    host: { type: 'string', default: '' },
    sides: { type: 'string', default: 'pass,allow,waf' },
    baseline: { type: 'string', default: '' },
    'no-syscalls': { type: 'boolean', default: false },
    'crs-dir': { type: 'string', default: process.env.CRS_DIR ?? join(REPO, '..', 'shared', 'conformance', 'crs') },
  },
});
const rounds = Number(argv.rounds);
const duration = Number(argv.duration);
const kinds = argv.requests.split(',') as ('get' | 'post')[];
const crsDir = resolve(argv['crs-dir']);
const CPU = 0;
const LOAD_CPU = 1;
/** The syscalls counted one by one (all of them are counted in `total`). */
const SYSCALLS = ['read', 'write', 'writev', 'epoll_wait', 'epoll_pwait', 'epoll_ctl', 'futex', 'mprotect', 'madvise', 'mmap', 'munmap', 'getpid'];

interface SideSpec {
  name: string;
  kind: 'pass' | 'allow' | 'waf';
  /** allow side only: microseconds the agent busy-waits per request headers event */
  spinUs?: number;
  root: string;
  agentFlags: string[];
  gatewayFlags: string[];
  env: Record<string, string>;
}

function parseSides(): SideSpec[] {
  const out: SideSpec[] = [];
  for (const s of argv.sides.split(',').filter(Boolean)) {
    const base: SideSpec = { name: s, kind: 'waf', root: REPO, agentFlags: [], gatewayFlags: [], env: {} };
    if (s === 'pass' || s === 'allow' || s === 'waf') out.push({ ...base, kind: s });
    else {
      const m = /^(waf|gw|both|env|spin):([\w.-]+)=(.+)$/.exec(s);
      if (!m) throw new Error(`--sides: cannot read "${s}" (pass, allow, waf, waf:NAME=FLAGS, gw:NAME=FLAGS, env:NAME=K=V, spin:NAME=US[@FLAGS])`);
      const [, what, name, rest] = m as unknown as [string, string, string, string];
      if (what === 'spin') {
        const [us, flags] = rest.split('@') as [string, string | undefined];
        out.push({ ...base, name, kind: 'allow', spinUs: Number(us), gatewayFlags: flags ? flags.split('+') : [] });
      } else if (what === 'env') {
        const eq = rest.indexOf('=');
        out.push({ ...base, name, env: { [rest.slice(0, eq)]: rest.slice(eq + 1) } });
      } else if (what === 'both') out.push({ ...base, name, agentFlags: rest.split('+'), gatewayFlags: rest.split('+') });
      else out.push({ ...base, name, [what === 'waf' ? 'agentFlags' : 'gatewayFlags']: rest.split('+') });
    }
  }
  if (argv.baseline) out.push({ name: 'waf[base]', kind: 'waf', root: resolve(argv.baseline), agentFlags: [], gatewayFlags: [], env: {} });
  return out;
}

/** One V8 process's GC lines (--trace-gc-nvp on stdout), counted as they arrive. */
class GcCounter {
  scavenges = 0;
  others = 0;
  pauseMs = 0;
  promotedBytes = 0;
  survivedBytes = 0;
  /** bytes allocated between GCs (the nvp line's allocated=, summed) */
  allocatedBytes = 0;
  /** mark-compacts started by V8's memory reducer (reduce_memory=1), not by heap growth */
  reducing = 0;
  private partial = '';
  attach(p: Proc): void {
    p.child.stdout!.on('data', (c: Buffer) => {
      const lines = (this.partial + c.toString('latin1')).split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) {
        const kind = / gc=(\w+)/.exec(l)?.[1];
        if (!kind) continue;
        if (kind === 's') this.scavenges++;
        else {
          this.others++;
          if (/ reduce_memory=1/.test(l)) this.reducing++;
        }
        this.survivedBytes += Number(/\bnew_space_survived=(\d+)/.exec(l)?.[1] ?? 0);
        this.allocatedBytes += Number(/\ballocated=(\d+)/.exec(l)?.[1] ?? 0);
        this.pauseMs += Number(/\bpause=([\d.]+)/.exec(l)?.[1] ?? 0);
        this.promotedBytes += Number(/\bpromoted=(\d+)/.exec(l)?.[1] ?? 0);
      }
    });
  }
  snapshot(): { scavenges: number; others: number; pauseMs: number; promotedBytes: number; survivedBytes: number; allocatedBytes: number; reducing: number } {
    return { scavenges: this.scavenges, others: this.others, pauseMs: this.pauseMs, promotedBytes: this.promotedBytes, survivedBytes: this.survivedBytes, allocatedBytes: this.allocatedBytes, reducing: this.reducing };
  }
}

interface Counted {
  proc: Proc;
  gc: GcCounter;
}

interface Side {
  spec: SideSpec;
  port: number;
  gateway: Counted;
  agent?: Counted;
}

function counted(p: Proc): Counted {
  const gc = new GcCounter();
  gc.attach(p);
  return { proc: p, gc };
}

async function waitLine(p: Proc, text: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!p.output().includes(text)) {
    if (p.exited()) throw new Error(`${p.name} exited during start-up:\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`${p.name}: no "${text}" after ${ms} ms:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startSide(spec: SideSpec, dir: string, originPort: number): Promise<Side> {
  const { gateway, agent, dist } = await compiledWafEntries(spec.root);
  const sideDir = join(dir, spec.name.replace(/\W/g, '_'));
  mkdirSync(sideDir, { recursive: true });
  const env = { ...process.env, NODE_ENV: 'production', SENTINEL_WAF_REQUEST_SIDE_ONLY: 'true', ...spec.env };
  const base = renderPassthrough(spec.root, { listen: '{{listen}}', origin: `127.0.0.1:${originPort}`, metrics: '{{metrics}}' }).replace(/worker-threads \d+/, 'worker-threads 1');
  const socket = join(sideDir, 'agent.sock');
  let agentProc: Counted | undefined;
  if (spec.kind === 'waf') {
    agentProc = counted(
      spawnPinned(`${spec.name} agent`, CPU, process.execPath, ['--trace-gc-nvp', ...spec.agentFlags, agent, '--socket', socket, '--crs-dir', crsDir, '--paranoia-level', '1', '--mode', 'blocking', '--workers', '1'], { cwd: spec.root, env }),
    );
    await waitLine(agentProc.proc, 'listening', 120_000);
  } else if (spec.kind === 'allow') {
    const file = join(sideDir, 'allow.mjs');
    writeFileSync(
      file,
      `import { runAgent, allow } from ${JSON.stringify(join(dist, 'src', 'agent-sdk', 'index.js'))};
const spinUs = ${spec.spinUs ?? 0};
const spin = () => { if (spinUs > 0) { const end = process.hrtime.bigint() + BigInt(spinUs * 1000); while (process.hrtime.bigint() < end); } };
await runAgent({ socketPath: ${JSON.stringify(socket)}, name: 'bench-allow', onRequestHeaders: () => (spin(), allow()), onRequestBodyChunk: () => allow() });
process.stderr.write('listening\\n');
process.on('SIGTERM', () => process.exit(0));
`,
    );
    agentProc = counted(spawnPinned(`${spec.name} agent`, CPU, process.execPath, ['--trace-gc-nvp', ...spec.agentFlags, file], { cwd: spec.root, env }));
    await waitLine(agentProc.proc, 'listening', 30_000);
  }
  const port = await freePort();
  const metrics = await freePort();
  const config = (spec.kind === 'pass' ? base : sentinelWafConfig(base, `unix-socket "${socket}"`, 1)).replaceAll('{{listen}}', `127.0.0.1:${port}`).replaceAll('{{metrics}}', `127.0.0.1:${metrics}`);
  writeFileSync(join(sideDir, 'gw.kdl'), config);
  const gw = counted(spawnPinned(`${spec.name} gateway`, CPU, process.execPath, ['--trace-gc-nvp', ...spec.gatewayFlags, gateway, 'run', '-c', join(sideDir, 'gw.kdl')], { cwd: spec.root, env }));
  await waitForStatus200(gw.proc, `${spec.name} /small`, () => probe(port), 60_000);
  return { spec, port, gateway: gw, ...(agentProc ? { agent: agentProc } : {}) };
}

async function probe(port: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/small`, { headers: Object.fromEntries(BROWSER_HEADERS) });
  await r.arrayBuffer();
  return r.status;
}

// ---- per-process counters ------------------------------------------------------------------------

interface ProcCounters {
  userTicks: number;
  sysTicks: number;
  /** utime + stime of the threads other than the main (JS) thread: V8's GC helpers and
   * compilers, libuv's pool; on one pinned core they take time from the main thread */
  otherThreadTicks: number;
  voluntary: number;
  involuntary: number;
}

function readCounters(pid: number): ProcCounters {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let voluntary = 0;
  let involuntary = 0;
  let otherThreadTicks = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let s: string;
    try {
      s = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      if (Number(tid) !== pid) {
        const ts = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const tf = ts.slice(ts.lastIndexOf(')') + 2).split(' ');
        otherThreadTicks += Number(tf[11]) + Number(tf[12]);
      }
    } catch {
      continue; // the thread ended
    }
    voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
  }
  return { userTicks: Number(f[11]), sysTicks: Number(f[12]), otherThreadTicks, voluntary, involuntary };
}

/** perf stat on the syscall tracepoints of one process for as long as `during` runs. */
function countSyscalls<T>(pid: number, during: () => Promise<T>): Promise<[T, Map<string, number>]> {
  return perfStatDuring(pid, syscallEvents(SYSCALLS), during);
}

interface ProcWindow {
  userUs: number;
  sysUs: number;
  otherThreadsUs: number;
  voluntary: number;
  involuntary: number;
  syscalls: Map<string, number>;
  scavenges: number;
  otherGcs: number;
  gcPauseUs: number;
  promotedBytes: number;
  survivedBytes: number;
  allocatedBytes: number;
  reducing: number;
}

interface Window {
  rps: number;
  requests: number;
  non2xx: number;
  gateway: ProcWindow;
  agent?: ProcWindow;
}

async function measure(side: Side, kind: 'get' | 'post', script: string, secs: number): Promise<Window> {
  const procs = [side.gateway, ...(side.agent ? [side.agent] : [])];
  const c0 = procs.map((p) => readCounters(p.proc.pid));
  const g0 = procs.map((p) => p.gc.snapshot());
  const run = (): Promise<string> => runPinned('wrk', LOAD_CPU, 'wrk', ['-t1', `-c${argv.connections}`, `-d${secs}s`, '--latency', '-s', script, `http://127.0.0.1:${side.port}/`], (secs + 30) * 1000);
  let out: string;
  let sys: Map<string, number>[] = procs.map(() => new Map());
  if (argv['no-syscalls']) out = await run();
  else {
    // One perf per process, nested, both attached before wrk starts.
    const [[o, agentSys], gwSys] = await countSyscalls(procs[0]!.proc.pid, () =>
      procs[1] ? countSyscalls(procs[1].proc.pid, run) : run().then((x) => [x, new Map<string, number>()] as [string, Map<string, number>]),
    );
    out = o;
    sys = [gwSys, agentSys];
  }
  const c1 = procs.map((p) => readCounters(p.proc.pid));
  const g1 = procs.map((p) => p.gc.snapshot());
  const w = parseWrkOutput(out);
  const n = Math.max(1, w.requests);
  const tickUs = 1e6 / clockTicksPerSecond();
  const per = (i: number): ProcWindow => ({
    userUs: ((c1[i]!.userTicks - c0[i]!.userTicks) * tickUs) / n,
    sysUs: ((c1[i]!.sysTicks - c0[i]!.sysTicks) * tickUs) / n,
    otherThreadsUs: ((c1[i]!.otherThreadTicks - c0[i]!.otherThreadTicks) * tickUs) / n,
    voluntary: (c1[i]!.voluntary - c0[i]!.voluntary) / n,
    involuntary: (c1[i]!.involuntary - c0[i]!.involuntary) / n,
    syscalls: new Map([...(sys[i] ?? new Map<string, number>())].map(([k, v]) => [k, v / n])),
    scavenges: (g1[i]!.scavenges - g0[i]!.scavenges) / n,
    otherGcs: (g1[i]!.others - g0[i]!.others) / n,
    gcPauseUs: ((g1[i]!.pauseMs - g0[i]!.pauseMs) * 1000) / n,
    promotedBytes: (g1[i]!.promotedBytes - g0[i]!.promotedBytes) / n,
    survivedBytes: (g1[i]!.survivedBytes - g0[i]!.survivedBytes) / n,
    allocatedBytes: (g1[i]!.allocatedBytes - g0[i]!.allocatedBytes) / n,
    reducing: (g1[i]!.reducing - g0[i]!.reducing) / n,
  });
  return { rps: w.requestsPerSec, requests: n, non2xx: w.non2xx3xx, gateway: per(0), ...(procs[1] ? { agent: per(1) } : {}) };
}

const f1 = (x: number): string => x.toFixed(1);
function procLine(p: ProcWindow): string {
  const sc = [...p.syscalls].filter(([k, v]) => k !== 'all' && v >= 0.05).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(' ');
  return `cpu ${f1(p.userUs + p.sysUs)} us (usr ${f1(p.userUs)} sys ${f1(p.sysUs)}; not main thread ${f1(p.otherThreadsUs)})  cs ${p.voluntary.toFixed(2)}v+${p.involuntary.toFixed(2)}i  syscalls ${(p.syscalls.get('all') ?? 0).toFixed(2)}${sc ? ` [${sc}]` : ''}  gc ${(p.scavenges * 1000).toFixed(1)} scav+${(p.otherGcs * 1000).toFixed(2)} other (${(p.reducing * 1000).toFixed(2)} memory-reducing) /1k req, pause ${f1(p.gcPauseUs)} us, allocated ${(p.allocatedBytes / 1024).toFixed(1)} survived ${(p.survivedBytes / 1024).toFixed(1)} promoted ${(p.promotedBytes / 1024).toFixed(1)} KiB`;
}

function summarise(ws: ProcWindow[]): ProcWindow {
  const m = (f: (p: ProcWindow) => number): number => median(ws.map(f));
  const keys = new Set(ws.flatMap((w) => [...w.syscalls.keys()]));
  return {
    userUs: m((p) => p.userUs),
    sysUs: m((p) => p.sysUs),
    otherThreadsUs: m((p) => p.otherThreadsUs),
    voluntary: m((p) => p.voluntary),
    involuntary: m((p) => p.involuntary),
    syscalls: new Map([...keys].map((k) => [k, m((p) => p.syscalls.get(k) ?? 0)])),
    scavenges: m((p) => p.scavenges),
    otherGcs: m((p) => p.otherGcs),
    gcPauseUs: m((p) => p.gcPauseUs),
    promotedBytes: m((p) => p.promotedBytes),
    survivedBytes: m((p) => p.survivedBytes),
    allocatedBytes: m((p) => p.allocatedBytes),
    reducing: m((p) => p.reducing),
  };
}

const total = (w: Window): number => w.gateway.userUs + w.gateway.sysUs + (w.agent ? w.agent.userUs + w.agent.sysUs : 0);

async function main(): Promise<number> {
  if (!requireCommands(['nginx', 'wrk', 'taskset', ...(argv['no-syscalls'] ? [] : ['perf'])], 'nginx wrk util-linux linux-perf')) return 1;
  const dir = benchScratchDir('waf-insitu-');
  const scripts = { get: join(dir, 'get.lua'), post: join(dir, 'post.lua') };
  writeFileSync(scripts.get, wrkScript('get', argv.host));
  writeFileSync(scripts.post, wrkScript('post', argv.host));
  const originDir = join(dir, 'origin');
  mkdirSync(originDir);
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(originDir, d), { recursive: true });
  writeOriginFiles(originDir);
  const originPort = await freePort();
  writeFileSync(join(originDir, 'origin.conf'), originNginxConf(originPort, originDir));
  const origin = spawnPinned('origin', LOAD_CPU, 'nginx', ['-e', 'stderr', '-p', originDir, '-c', join(originDir, 'origin.conf')]);
  const specs = parseSides();
  console.log(`waf in-situ: ${rounds} rounds x ${duration} s, wrk -c${argv.connections} on CPU ${LOAD_CPU}, gateway + agent on CPU ${CPU}, CRS PL1, Host ${argv.host || '127.0.0.1:port (matches 920350)'}, load ${loadAverage()}`);
  const results = new Map<string, Window[]>();
  const sides: Side[] = [];
  try {
    for (const s of specs) sides.push(await startSide(s, dir, originPort));
    for (const kind of kinds) for (const s of sides) await measure(s, kind, scripts[kind], Number(argv.warmup)); // warm-up (JIT, caches)
    for (let round = 0; round < rounds; round++) {
      for (const kind of kinds) {
        const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
        for (const s of order) {
          const w = await measure(s, kind, scripts[kind], duration);
          (results.get(`${kind}|${s.spec.name}`) ?? results.set(`${kind}|${s.spec.name}`, []).get(`${kind}|${s.spec.name}`)!).push(w);
          console.log(`  r${round + 1} ${kind.toUpperCase().padEnd(4)} ${s.spec.name.padEnd(12)} ${w.rps.toFixed(0).padStart(6)} req/s  total ${f1(total(w))} us/req${w.non2xx ? `  (${w.non2xx} non-2xx)` : ''}`);
          console.log(`       gateway ${procLine(w.gateway)}`);
          if (w.agent) console.log(`       agent   ${procLine(w.agent)}`);
        }
      }
    }
    // Resident memory at the end (a larger young generation costs memory): VmRSS and VmHWM.
    for (const s of sides)
      for (const [what, p] of [['gateway', s.gateway], ['agent', s.agent]] as const)
        if (p) {
          const st = readFileSync(`/proc/${p.proc.pid}/status`, 'utf8');
          console.log(`  ${s.spec.name} ${what}: VmRSS ${/VmRSS:\s+(\d+)/.exec(st)?.[1]} kB, VmHWM ${/VmHWM:\s+(\d+)/.exec(st)?.[1]} kB`);
        }
  } finally {
    for (const s of sides) for (const p of [s.gateway, s.agent]) if (p) await p.proc.stop();
    await origin.stop();
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nmedians over ${rounds} rounds, per request (load after: ${loadAverage()})`);
  for (const kind of kinds) {
    const ref = results.get(`${kind}|waf`);
    for (const s of specs) {
      const ws = results.get(`${kind}|${s.name}`) ?? [];
      if (!ws.length) continue;
      console.log(`  ${kind.toUpperCase()} ${s.name}: ${median(ws.map((w) => w.rps)).toFixed(0)} req/s, total ${f1(median(ws.map(total)))} us/req (rounds ${ws.map((w) => f1(total(w))).join(' ')})`);
      console.log(`      gateway ${procLine(summarise(ws.map((w) => w.gateway)))}`);
      if (ws[0]!.agent) console.log(`      agent   ${procLine(summarise(ws.map((w) => w.agent!)))}`);
      if (ref && s.name !== 'waf' && s.kind === 'waf') {
        // Per round (the rounds interleave the sides): this side's CPU per request / waf's; < 1: cheaper than waf.
        const r = ws.map((w, i) => (ref[i] ? total(w) / total(ref[i]) : NaN));
        const ra = ws.map((w, i) => (ref[i]?.agent && w.agent ? (w.agent.userUs + w.agent.sysUs) / (ref[i].agent.userUs + ref[i].agent.sysUs) : NaN));
        console.log(`      ${s.name} / waf, CPU per request: both processes x${median(r).toFixed(3)} (rounds ${r.map((x) => x.toFixed(2)).join(' ')}), agent x${median(ra).toFixed(3)} (rounds ${ra.map((x) => x.toFixed(2)).join(' ')})`);
      }
    }
  }
  return 0;
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
process.exitCode = await main();
