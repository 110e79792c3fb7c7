// What one allow-all agent on request headers costs (issue #16 item 3), A/B in one run:
//   node --import tsx bench/agent-hop.ts [--rounds 5] [--duration 5] [--connections 50]
//                                        [--baseline DIR] [--agent-cpu N|none] [--profile DIR]
//                                        [--only pass|agent] [--segments K] [--slow-host 1.25]
//                                        [--block-warmup 1] [--restart-every 2] [--gc]
// One compiled gateway (tsc build, as the `sentinel` bench target) pinned to CPU 0 serves two
// routes to an nginx origin (CPU 1): `/pass` (no filter) and `/agent` (one agent filter, v2 UDS,
// request headers, fail-closed). The agent is the SDK's allow-all agent, compiled too. wrk (CPU 1)
// alternates between the two paths (bench/lib/hop-order.ts says in which order), so each round
// gives a same-run ratio agent/passthrough of req/s and of CPU time per request, for the gateway
// and the agent (from /proc, so it is less sensitive than req/s to other work stealing the core).
// --baseline DIR: the same measurement for another checkout (a git worktree with node_modules) in
// the same rounds, e.g. the parent commit, for before/after figures.
// --profile DIR: run the gateway and the agent with --cpu-prof (profiles written into DIR).
// --only pass|agent: load one path only (no ratios): with --profile, a profile of that path
// alone, to set against one of the other path (the request counts are printed).
// --segments K (default 1): each round's --duration per path is taken in K segments, the two
// paths in turn (pass agent, agent pass, ...), so one of the host's slow phases (seconds to a
// minute, docs/tracing.md "Cost") falls on both sides of the round's ratio instead of on one.
// --slow-host X: the host-speed loop (bench/lib/host-speed.ts) runs on CPU 0 before and after
// each round; a round whose loop took more than X times the run's median is flagged. The ratios
// are then given with a bootstrap 95% interval over all rounds and over the unflagged ones.
// --block-warmup S (default 1): with --baseline each side takes its round's segments as one block
// while the other side idles; S seconds of load on each path, not counted, start every block, so
// the cold start after the idle is not measured (bench/lib/hop-order.ts; 0: none). Rounds in
// multiples of 4 with --baseline (of 2 without) give every side and path the same positions.
// --restart-every N (default 2; 0: never; none with --profile): every N rounds the gateways and
// agents are stopped and started fresh, one side after the other, the side started first
// alternating, so a process's own draw (JIT and GC timing, where the unpinned agent settles)
// and the start order are spread over both slots instead of fixed to one.
// --gc: the gateways run with --trace-gc-nvp; each segment prints its scavenges per 1,000 requests.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide, type HopSide } from './lib/agent-hop-side.ts';
import { flagSlowHost } from './lib/block-ratios.ts';
import { balancedRounds, roundPlan } from './lib/hop-order.ts';
import { measureHostSpeed } from './lib/host-speed.ts';
import { bootstrapMedianInterval } from './lib/stats.ts';
import { benchScratchDir } from './lib/processes.ts';
import { clockTicksPerSecond, treeCpuTicks } from './lib/procfs.ts';
import { ensureOpenloop, runLoad, type OpenloopOutput } from './lib/load.ts';
import { collectLines, sumGcLines } from './lib/gc-trace.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    baseline: { type: 'string' },
    'agent-cpu': { type: 'string', default: 'none' },
    profile: { type: 'string' },
    rate: { type: 'string', default: '0' },
    only: { type: 'string' },
    segments: { type: 'string', default: '1' },
    'slow-host': { type: 'string', default: '1.25' },
    'block-warmup': { type: 'string', default: '1' },
    gc: { type: 'boolean', default: false },
    'restart-every': { type: 'string', default: '2' },
  },
});
// --rate N: open loop at N req/s (bench/openloop) instead of wrk's closed loop. On a shared
// machine neither process may get a whole core, so req/s mostly measures the scheduler; at a
// fixed rate below capacity both paths do the same work per second and CPU time per request
// compares like with like.
const rate = Number(values.rate);
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const connections = Number(values.connections);
if (values.only !== undefined && values.only !== 'pass' && values.only !== 'agent') throw new Error('--only takes pass or agent');
const only = values.only as 'pass' | 'agent' | undefined;
const agentCpu = values['agent-cpu'] === 'none' ? null : Number(values['agent-cpu']);
const segments = Number(values.segments);
if (!Number.isInteger(segments) || segments < 1) throw new Error('--segments takes a whole number >= 1');
const slowHost = Number(values['slow-host']);
const blockWarmup = Number(values['block-warmup']);
if (!Number.isInteger(blockWarmup) || blockWarmup < 0) throw new Error('--block-warmup takes whole seconds >= 0');
// a profile is one process's whole life: no restarts with --profile
const restartEvery = values.profile ? 0 : Number(values['restart-every']);
if (!Number.isInteger(restartEvery) || restartEvery < 0) throw new Error('--restart-every takes a whole number of rounds >= 0');
const REPO = resolve(import.meta.dirname, '..');

const tmp = benchScratchDir('agent-hop-');

/** --gc: each gateway's --trace-gc-nvp lines, by side */
const gcLines = new Map<string, string[]>();
async function startSide(name: string, root: string, originPort: number, generation: number): Promise<HopSide> {
  const side = await startHopSide(name, root, { dir: join(tmp, `${name}-${generation}`), originPort, gatewayCpu: 0, agentCpu, ...(values.gc ? { nodeFlags: ['--trace-gc-nvp'] } : {}), ...(values.profile ? { profileDir: values.profile } : {}) });
  if (values.gc) gcLines.set(name, collectLines(side.gateway.child.stdout!));
  return side;
}

interface Run {
  rps: number;
  gwCpuUs: number;
  /** the kernel's share of gwCpuUs (stime: socket reads and writes, epoll) */
  gwSysUs: number;
  agentCpuUs: number;
  /** --gc: the gateway's scavenges per 1,000 requests */
  scavengesPerK: number;
  errors: number;
}

async function measure(side: HopSide, path: string, seconds: number): Promise<Run> {
  const g0 = treeCpuTicks(side.gateway.pid);
  const s0 = sysTicks(side.gateway.pid);
  const a0 = treeCpuTicks(side.agent.pid);
  const lines = gcLines.get(side.name);
  const mark = lines?.length ?? 0;
  const load = rate > 0 ? { kind: 'open' as const, rate } : { kind: 'closed' as const, rate: 0 };
  const r = await runLoad({ ...load, path, headers: [], wrkArgs: [], connections, scheme: 'http' }, side.port, 1, seconds, { warmupS: 0, ...(openloopBin ? { openloopBin } : {}) });
  const tick = 1e6 / clockTicksPerSecond();
  const gw = (treeCpuTicks(side.gateway.pid) - g0) * tick;
  const ag = (treeCpuTicks(side.agent.pid) - a0) * tick;
  const sys = (sysTicks(side.gateway.pid) - s0) * tick;
  const n = Math.max(1, rate > 0 ? (r.raw as OpenloopOutput).completed : r.rps * seconds);
  served.set(side.name, (served.get(side.name) ?? 0) + n);
  const scavengesPerK = lines ? (sumGcLines(lines.slice(mark)).scavenges / n) * 1000 : 0;
  return { rps: r.rps, gwCpuUs: gw / n, gwSysUs: sys / n, agentCpuUs: ag / n, scavengesPerK, errors: r.errors + r.non2xx + (r.unfinished ?? 0) };
}

/** requests served per side, warm-up included (what a --profile of the side covers) */
const served = new Map<string, number>();
/** stime of one process (the gateway is one process; its threads are included) */
function sysTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]);
}
/** Several segments of one path as one run: requests and CPU summed, req/s over the time loaded. */
function combine(parts: readonly Run[], secondsEach: number): Run {
  const n = parts.map((r) => r.rps * secondsEach);
  const total = n.reduce((a, b) => a + b, 0);
  const per = (f: (r: Run) => number) => parts.reduce((a, r, i) => a + f(r) * n[i]!, 0) / Math.max(1, total);
  return { rps: total / (secondsEach * parts.length), gwCpuUs: per((r) => r.gwCpuUs), gwSysUs: per((r) => r.gwSysUs), agentCpuUs: per((r) => r.agentCpuUs), scavengesPerK: per((r) => r.scavengesPerK), errors: parts.reduce((a, r) => a + r.errors, 0) };
}
/** the share of CPU 0 the gateway used while loaded: well below 100% on the quiet machine means it waited (for the core, the origin, wrk) rather than computed */
const busy = (r: Run) => `${((r.rps * r.gwCpuUs) / 1e4).toFixed(0)}%`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

const openloopBin = rate > 0 ? await ensureOpenloop(REPO) : undefined;
const { port: originPort, proc: origin } = await startHopOrigin(tmp);

const roots = values.baseline ? [REPO, resolve(values.baseline)] : [REPO];
const names = ['current', 'baseline'];
let generation = 0;
/**
 * Every side's gateway and agent, fresh, started one side after the other (the start order
 * reversed every other generation, so neither slot is always the one started first), then each
 * path of each side warmed up for 3 s (~30,000 requests on a quiet machine).
 */
async function startSides(): Promise<HopSide[]> {
  const order = roots.map((_, i) => i);
  if (generation % 2 === 1) order.reverse();
  const out: HopSide[] = [];
  for (const i of order) out[i] = await startSide(names[i]!, roots[i]!, originPort, generation);
  for (const i of order) for (const p of only ? [`/${only}`] : ['/pass', '/agent']) await measure(out[i]!, p, 3);
  generation++;
  return out;
}
async function stopSides(list: readonly HopSide[]): Promise<void> {
  for (const s of list) {
    await s.gateway.stop();
    await s.agent.stop();
  }
}
let sides = await startSides();

const results = new Map<string, { pass: Run[]; agent: Run[] }>(sides.map((s) => [s.name, { pass: [], agent: [] }]));
/** the host-speed loop around each round (mean of before and after, CPU ms) */
const roundLoops: { calibrationMs: number }[] = [];
const segmentSeconds = duration / segments;
// wrk takes whole seconds
if (!Number.isInteger(segmentSeconds) || segmentSeconds < 1) throw new Error(`--duration ${duration} / --segments ${segments} must be a whole number of seconds (>= 1)`);
const paths = only ? [only] : ['pass', 'agent'];
if (rounds % balancedRounds(sides.length, paths.length) !== 0) console.log(`note: --rounds ${rounds} is not a multiple of ${balancedRounds(sides.length, paths.length)}: the sides and paths do not take every position equally often (bench/lib/hop-order.ts)`);
for (let round = 0; round < rounds; round++) {
  if (restartEvery > 0 && round > 0 && round % restartEvery === 0) {
    await stopSides(sides);
    sides = await startSides();
    console.log(`  fresh gateways and agents (generation ${generation}, ${names[roots.length > 1 && generation % 2 === 0 ? 1 : 0]} started first)`);
  }
  const before = await measureHostSpeed(0);
  const parts = new Map<string, Run[]>();
  // one side never idles between its blocks: no warm-up needed
  const plan = roundPlan(round, sides.length, paths, segments, blockWarmup > 0 && sides.length > 1);
  for (const seg of plan) {
    const s = sides[seg.side]!;
    if (!seg.measured) {
      const w = await measure(s, `/${seg.path}`, blockWarmup);
      console.log(`[round ${round + 1}] ${s.name.padEnd(8)} ${seg.path.padEnd(5)} warm-up ${w.rps.toFixed(0)} req/s, not counted${values.gc ? `  scavenges ${w.scavengesPerK.toFixed(1)}/1k req` : ''}`);
      continue;
    }
    const key = `${s.name}\0${seg.path}`;
    if (!parts.has(key)) parts.set(key, []);
    parts.get(key)!.push(await measure(s, `/${seg.path}`, segmentSeconds));
  }
  for (const [key, runs] of parts) {
    const [name, p] = key.split('\0') as [string, 'pass' | 'agent'];
    const r = combine(runs, segmentSeconds);
    results.get(name)![p].push(r);
    console.log(`[round ${round + 1}] ${name.padEnd(8)} ${p.padEnd(5)} ${r.rps.toFixed(0)} req/s  gateway ${r.gwCpuUs.toFixed(1)} µs/req (sys ${r.gwSysUs.toFixed(1)}, busy ${busy(r)})  agent ${r.agentCpuUs.toFixed(1)} µs/req${values.gc ? `  scavenges ${r.scavengesPerK.toFixed(1)}/1k req` : ''}${r.errors ? `  errors ${r.errors}` : ''}`);
  }
  const after = await measureHostSpeed(0);
  roundLoops.push({ calibrationMs: (before.cpuMs + after.cpuMs) / 2 });
  console.log(`  host-speed loop on CPU 0: ${before.cpuMs.toFixed(0)} / ${after.cpuMs.toFixed(0)} ms`);
}
const flags = flagSlowHost(roundLoops, slowHost);
const slowRounds = flags.flatMap((f, i) => (f.slowHost ? [i] : []));
/** median ratio with its bootstrap 95% interval, over all rounds and over the unflagged ones */
function ratioLine(ratios: number[]): string {
  const fmt = (xs: number[]) => {
    const [lo, hi] = bootstrapMedianInterval(xs);
    return `×${median(xs).toFixed(3)} (95% ${lo.toFixed(3)}-${hi.toFixed(3)}, ${xs.length} rounds)`;
  };
  const clean = ratios.filter((_, i) => !slowRounds.includes(i));
  return `${fmt(ratios)}${slowRounds.length && clean.length ? `; unflagged rounds ${fmt(clean)}` : ''}`;
}

console.log(`\nagent hop, ${rounds} rounds x ${duration} s per path${segments > 1 ? ` in ${segments} segments taken in turn` : ''}, ${rate > 0 ? `open loop at ${rate} req/s` : 'wrk'} -c${connections}; gateway on CPU 0, agent ${agentCpu === null ? 'unpinned' : `on CPU ${agentCpu}`}`);
console.log(`host-speed loop: median ${median(roundLoops.map((r) => r.calibrationMs)).toFixed(1)} ms; ${slowRounds.length} of ${rounds} rounds flagged as slow (loop > ${slowHost}x median)${slowRounds.length ? `: ${slowRounds.map((i) => `round ${i + 1} x${flags[i]!.hostSlowdown.toFixed(2)}`).join(', ')}` : ''}`);
if (only) {
  for (const s of sides) {
    const runs = results.get(s.name)![only];
    console.log(`${s.name} ${only} only: medians ${median(runs.map((r) => r.rps)).toFixed(0)} req/s, gateway ${median(runs.map((r) => r.gwCpuUs)).toFixed(1)} µs/req, agent process ${median(runs.map((r) => r.agentCpuUs)).toFixed(1)} µs/req; ${Math.round(served.get(s.name) ?? 0)} requests served in all (warm-up included)`);
  }
}
for (const s of only ? [] : sides) {
  const { pass, agent } = results.get(s.name)!;
  const rps = agent.map((a, i) => a.rps / pass[i]!.rps);
  const gw = agent.map((a, i) => a.gwCpuUs / pass[i]!.gwCpuUs);
  console.log(
    `${s.name}: req/s agent/pass median ×${median(rps).toFixed(2)} (${range(rps)}); gateway CPU/req agent/pass ×${median(gw).toFixed(2)} (${range(gw)}); ` +
      `\n  req/s agent/pass ${ratioLine(rps)}\n  gateway CPU/req agent/pass ${ratioLine(gw)}\n  medians: pass ${median(pass.map((r) => r.rps)).toFixed(0)} req/s ${median(pass.map((r) => r.gwCpuUs)).toFixed(1)} µs/req (sys ${median(pass.map((r) => r.gwSysUs)).toFixed(1)}), agent ${median(agent.map((r) => r.rps)).toFixed(0)} req/s ${median(agent.map((r) => r.gwCpuUs)).toFixed(1)} µs/req (sys ${median(agent.map((r) => r.gwSysUs)).toFixed(1)}) + agent process ${median(agent.map((r) => r.agentCpuUs)).toFixed(1)} µs/req` +
      (values.gc ? `\n  gateway scavenges per 1,000 requests, medians: pass ${median(pass.map((r) => r.scavengesPerK)).toFixed(2)}, agent ${median(agent.map((r) => r.scavengesPerK)).toFixed(2)}` : ''),
  );
}
if (sides.length === 2 && !only) {
  const cur = results.get('current')!;
  const base = results.get('baseline')!;
  const rps = cur.agent.map((a, i) => a.rps / base.agent[i]!.rps);
  const gw = cur.agent.map((a, i) => a.gwCpuUs / base.agent[i]!.gwCpuUs);
  const ag = cur.agent.map((a, i) => a.agentCpuUs / base.agent[i]!.agentCpuUs);
  console.log(`current/baseline on /agent: req/s ×${median(rps).toFixed(2)} (${range(rps)}); gateway CPU/req ×${median(gw).toFixed(2)} (${range(gw)}); agent CPU/req ×${median(ag).toFixed(2)} (${range(ag)})`);
  console.log(`  req/s ${ratioLine(rps)}\n  gateway CPU/req ${ratioLine(gw)}\n  agent CPU/req ${ratioLine(ag)}`);
}
await stopSides(sides);
await origin.stop();
