// What the scheduler and the GC do per request on the agent-hop routes (issue #16 item 3): one side
// of bench/agent-hop.ts (compiled gateway on CPU 0 with --trace-gc-nvp, the SDK allow-all agent
// unpinned or on --agent-cpu, nginx origin and wrk -c50 on CPU 1), /pass and /agent in turn. Per
// path and round: req/s; gateway and agent CPU a request (schedstat; the gateway's kernel share
// from /proc stime); context switches a request of each process, all threads (voluntary: it slept,
// e.g. in epoll_wait; involuntary: it was preempted); where each process's threads ran (perf record
// --sample-cpu of both processes: samples per CPU, the gateway's main thread apart from its V8/libuv
// helpers), and young GC a request (scavenges a 1,000 requests, their pause, bytes surviving a
// scavenge). Counts per request move with load less than req/s does, but on a loaded machine the
// placement figures describe that load, not a quiet host.
//   node --import tsx bench/agent-hop-sched.ts [--root .] [--rounds 2] [--seconds 4] [--agent-cpu none|1]
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide } from './lib/agent-hop-side.ts';
import { collectLines } from './lib/gc-trace.ts';
import { runLoad } from './lib/load.ts';
import { benchScratchDir, hasCommand, killAll } from './lib/processes.ts';
import { clockTicksPerSecond, treeCpuNs } from './lib/procfs.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '4' },
    'agent-cpu': { type: 'string', default: 'none' },
  },
});
const seconds = Number(values.seconds);
const agentCpu = values['agent-cpu'] === 'none' ? null : Number(values['agent-cpu']);
const withPerf = hasCommand('perf');
const tmp = benchScratchDir('agent-hop-sched');
const { port: originPort } = await startHopOrigin(tmp);
const side = await startHopSide('sched', resolve(values.root!), { dir: join(tmp, 'side'), originPort, gatewayCpu: 0, agentCpu, nodeFlags: ['--trace-gc-nvp'] });
const gcLines = collectLines(side.gateway.child.stdout!);

/** [voluntary, involuntary] context switches of every thread of `pid` */
function switches(pid: number): [number, number] {
  let v = 0;
  let n = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const s = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
    v += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    n += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
  }
  return [v, n];
}
/** stime of a process in µs */
function sysUs(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[12]) * 1e6) / clockTicksPerSecond();
}
interface GcSum {
  scavenges: number;
  pauseMs: number;
  survived: number;
}
function sumScavenges(lines: readonly string[]): GcSum {
  const o = { scavenges: 0, pauseMs: 0, survived: 0 };
  for (const l of lines) {
    if (!/(?:^|\s)gc=s(?:\s|$)/.test(l)) continue;
    o.scavenges++;
    o.pauseMs += Number(/\spause=([\d.]+)/.exec(l)?.[1] ?? 0);
    o.survived += Number(/\snew_space_survived=(\d+)/.exec(l)?.[1] ?? 0);
  }
  return o;
}
const agentThreads = new Set(readdirSync(`/proc/${side.agent.pid}/task`).map(Number));
/** perf samples of the two processes' threads by CPU: share of all samples, by who */
function placement(file: string): string {
  let out: string;
  try {
    // perf's `pid` key is the thread (tid:comm)
    out = execFileSync('perf', ['report', '-i', file, '--stdio', '-q', '--sort', 'pid,cpu'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return 'perf report failed';
  }
  const share = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /([\d.]+)%\s+(\d+):\S+\s+(\d+)/.exec(line);
    if (!m) continue;
    const [pct, tid, cpu] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const who = agentThreads.has(tid) ? 'agent' : tid === side.gateway.pid ? 'gateway main' : 'gateway helpers';
    share.set(`${who} cpu${cpu}`, (share.get(`${who} cpu${cpu}`) ?? 0) + pct);
  }
  return [...share].sort().map(([k, v]) => `${k} ${v.toFixed(1)}%`).join(', ');
}

const load = (path: string, s: number) => runLoad({ kind: 'closed', rate: 0, path, headers: [], wrkArgs: [], connections: 50, scheme: 'http' }, side.port, 1, s, { warmupS: 0 });
for (const p of ['/pass', '/agent', '/pass', '/agent']) await load(p, 3);
console.log(`gateway CPU 0, agent ${agentCpu ?? 'unpinned'}, wrk -c50 and origin CPU 1; ${seconds} s a path a round${withPerf ? '' : ' (no perf: placement not shown)'}`);
for (let round = 0; round < Number(values.rounds); round++) {
  for (const path of round % 2 === 0 ? ['/pass', '/agent'] : ['/agent', '/pass']) {
    const g0 = switches(side.gateway.pid);
    const a0 = switches(side.agent.pid);
    const gc0 = treeCpuNs(side.gateway.pid);
    const ac0 = treeCpuNs(side.agent.pid);
    const gs0 = sysUs(side.gateway.pid);
    const mark = gcLines.length;
    const perfFile = join(tmp, `perf-${round}-${path.slice(1)}.data`);
    const perf = withPerf ? spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '997', '--sample-cpu', '-o', perfFile, '-p', `${side.agent.pid},${side.gateway.pid}`, '--', 'sleep', String(seconds)], { stdio: 'ignore' }) : undefined;
    const r = await load(path, seconds);
    if (perf) await new Promise((ok) => perf.on('exit', ok));
    const n = Math.max(1, r.rps * seconds);
    const g1 = switches(side.gateway.pid);
    const a1 = switches(side.agent.pid);
    const gc = sumScavenges(gcLines.slice(mark));
    const per = (x: number, digits = 3) => (x / n).toFixed(digits);
    console.log(
      `[round ${round + 1}] ${path.padEnd(6)} ${r.rps.toFixed(0)} req/s  gateway ${((treeCpuNs(side.gateway.pid) - gc0) / n / 1e3).toFixed(1)} µs/req (kernel ${per(sysUs(side.gateway.pid) - gs0, 1)})  agent ${((treeCpuNs(side.agent.pid) - ac0) / n / 1e3).toFixed(1)} µs/req` +
        `\n    switches a request: gateway voluntary ${per(g1[0] - g0[0])} involuntary ${per(g1[1] - g0[1])}, agent voluntary ${per(a1[0] - a0[0])} involuntary ${per(a1[1] - a0[1])}` +
        `\n    young GC: ${((gc.scavenges / n) * 1000).toFixed(2)} scavenges a 1,000 requests, pause ${((gc.pauseMs * 1000) / n).toFixed(2)} µs a request (${(gc.pauseMs / Math.max(1, gc.scavenges)).toFixed(2)} ms each), ${(gc.survived / Math.max(1, gc.scavenges) / 1024).toFixed(0)} KiB surviving a scavenge` +
        (perf ? `\n    samples: ${placement(perfFile)}` : ''),
    );
  }
}
await side.gateway.stop();
await side.agent.stop();
killAll();
process.exit(0);
