// What one allow-all agent on request headers costs (issue #16 item 3), A/B in one run:
//   node --import tsx bench/agent-hop.ts [--rounds 5] [--duration 5] [--connections 50]
//                                        [--baseline DIR] [--agent-cpu N|none] [--profile DIR]
//                                        [--only pass|agent] [--segments K] [--slow-host 1.25]
// One compiled gateway (tsc build, as the `sentinel` bench target) pinned to CPU 0 serves two
// routes to an nginx origin (CPU 1): `/pass` (no filter) and `/agent` (one agent filter, v2 UDS,
// request headers, fail-closed). The agent is the SDK's allow-all agent, compiled too. wrk (CPU 1)
// alternates between the two paths every round (the order flips each round), so each round gives
// a same-run ratio agent/passthrough of req/s and of CPU time per request, for the gateway and the
// agent (from /proc, so it is less sensitive than req/s to other work stealing the core).
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
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide, type HopSide } from './lib/agent-hop-side.ts';
import { flagSlowHost } from './lib/block-ratios.ts';
import { measureHostSpeed } from './lib/host-speed.ts';
import { bootstrapMedianInterval } from './lib/stats.ts';
import { benchScratchDir } from './lib/processes.ts';
import { clockTicksPerSecond, treeCpuTicks } from './lib/procfs.ts';
import { ensureOpenloop, runLoad, type OpenloopOutput } from './lib/load.ts';

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
const REPO = resolve(import.meta.dirname, '..');

const tmp = benchScratchDir('agent-hop-');

const startSide = (name: string, root: string, originPort: number): Promise<HopSide> =>
  startHopSide(name, root, { dir: join(tmp, name), originPort, gatewayCpu: 0, agentCpu, ...(values.profile ? { profileDir: values.profile } : {}) });

interface Run {
  rps: number;
  gwCpuUs: number;
  /** the kernel's share of gwCpuUs (stime: socket reads and writes, epoll) */
  gwSysUs: number;
  agentCpuUs: number;
  errors: number;
}

async function measure(side: HopSide, path: string, seconds: number): Promise<Run> {
  const g0 = treeCpuTicks(side.gateway.pid);
  const s0 = sysTicks(side.gateway.pid);
  const a0 = treeCpuTicks(side.agent.pid);
  const load = rate > 0 ? { kind: 'open' as const, rate } : { kind: 'closed' as const, rate: 0 };
  const r = await runLoad({ ...load, path, headers: [], wrkArgs: [], connections, scheme: 'http' }, side.port, 1, seconds, { warmupS: 0, ...(openloopBin ? { openloopBin } : {}) });
  const tick = 1e6 / clockTicksPerSecond();
  const gw = (treeCpuTicks(side.gateway.pid) - g0) * tick;
  const ag = (treeCpuTicks(side.agent.pid) - a0) * tick;
  const sys = (sysTicks(side.gateway.pid) - s0) * tick;
  const n = Math.max(1, rate > 0 ? (r.raw as OpenloopOutput).completed : r.rps * seconds);
  served.set(side.name, (served.get(side.name) ?? 0) + n);
  return { rps: r.rps, gwCpuUs: gw / n, gwSysUs: sys / n, agentCpuUs: ag / n, errors: r.errors + r.non2xx + (r.unfinished ?? 0) };
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
  return { rps: total / (secondsEach * parts.length), gwCpuUs: per((r) => r.gwCpuUs), gwSysUs: per((r) => r.gwSysUs), agentCpuUs: per((r) => r.agentCpuUs), errors: parts.reduce((a, r) => a + r.errors, 0) };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

const openloopBin = rate > 0 ? await ensureOpenloop(REPO) : undefined;
const { port: originPort, proc: origin } = await startHopOrigin(tmp);

const sides: HopSide[] = [await startSide('current', REPO, originPort)];
if (values.baseline) sides.push(await startSide('baseline', resolve(values.baseline), originPort));
for (const s of sides) for (const p of only ? [`/${only}`] : ['/pass', '/agent']) await measure(s, p, 2); // warm-up

const results = new Map<string, { pass: Run[]; agent: Run[] }>(sides.map((s) => [s.name, { pass: [], agent: [] }]));
/** the host-speed loop around each round (mean of before and after, CPU ms) */
const roundLoops: { calibrationMs: number }[] = [];
const segmentSeconds = duration / segments;
// wrk takes whole seconds
if (!Number.isInteger(segmentSeconds) || segmentSeconds < 1) throw new Error(`--duration ${duration} / --segments ${segments} must be a whole number of seconds (>= 1)`);
for (let round = 0; round < rounds; round++) {
  const before = await measureHostSpeed(0);
  const order = round % 2 === 0 ? sides : [...sides].reverse();
  for (const s of order) {
    const first = only ? [only] : round % 2 === 0 ? (['pass', 'agent'] as const) : (['agent', 'pass'] as const);
    const parts = new Map<string, Run[]>(first.map((p) => [p, []]));
    for (let k = 0; k < segments; k++) {
      // mirrored every other segment: A B, B A, A B ... so both paths see the same moments
      for (const p of k % 2 === 0 ? first : [...first].reverse()) parts.get(p)!.push(await measure(s, `/${p}`, segmentSeconds));
    }
    for (const p of first) {
      const r = combine(parts.get(p)!, segmentSeconds);
      results.get(s.name)![p].push(r);
      console.log(`[round ${round + 1}] ${s.name.padEnd(8)} ${p.padEnd(5)} ${r.rps.toFixed(0)} req/s  gateway ${r.gwCpuUs.toFixed(1)} µs/req (sys ${r.gwSysUs.toFixed(1)})  agent ${r.agentCpuUs.toFixed(1)} µs/req${r.errors ? `  errors ${r.errors}` : ''}`);
    }
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
      `\n  req/s agent/pass ${ratioLine(rps)}\n  gateway CPU/req agent/pass ${ratioLine(gw)}\n  medians: pass ${median(pass.map((r) => r.rps)).toFixed(0)} req/s ${median(pass.map((r) => r.gwCpuUs)).toFixed(1)} µs/req (sys ${median(pass.map((r) => r.gwSysUs)).toFixed(1)}), agent ${median(agent.map((r) => r.rps)).toFixed(0)} req/s ${median(agent.map((r) => r.gwCpuUs)).toFixed(1)} µs/req (sys ${median(agent.map((r) => r.gwSysUs)).toFixed(1)}) + agent process ${median(agent.map((r) => r.agentCpuUs)).toFixed(1)} µs/req`,
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
for (const s of sides) {
  await s.gateway.stop();
  await s.agent.stop();
}
await origin.stop();
