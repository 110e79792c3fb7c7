// What the runner reads from /proc about the proxy under test: resident memory (VmRSS) and CPU
// ticks, summed over the process and its descendants (a CLI may fork workers or a child node).
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { linearSlope } from './stats.ts';

/** VmRSS in KiB from the text of /proc/<pid>/status; null when the line is absent (a zombie). */
export function parseVmRssKiB(statusText: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB\s*$/m.exec(statusText);
  return m ? Number(m[1]) : null;
}

/** utime + stime (clock ticks) from the text of /proc/<pid>/stat. The command name may hold spaces
 * and parentheses, so fields are counted after the last ')'. */
export function parseStatCpuTicks(statText: string): number {
  const rest = statText.slice(statText.lastIndexOf(')') + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('unreadable /proc/<pid>/stat');
  return utime + stime;
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Each live thread directory (/proc/<pid>/task/<tid>) of the pid and its descendants. */
function* treeThreads(pid: number): Generator<string> {
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const dir = `/proc/${p}/task/${tid}`;
      yield dir;
      const kids = readOr(`${dir}/children`);
      if (kids) for (const k of kids.trim().split(/\s+/).filter(Boolean)) queue.push(Number(k));
    }
  }
}

/** The pid and all its live descendants (via /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out = new Set<number>([pid]);
  for (const dir of treeThreads(pid)) out.add(Number(dir.split('/')[2]));
  return [...out];
}

export function treeRssKiB(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) sum += parseVmRssKiB(readOr(`/proc/${p}/status`) ?? '') ?? 0;
  return sum;
}

export function treeCpuTicks(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) {
    const stat = readOr(`/proc/${p}/stat`);
    if (stat) sum += parseStatCpuTicks(stat);
  }
  return sum;
}

/** The first field of /proc/<pid>/task/<tid>/schedstat: nanoseconds that thread ran. */
export function parseSchedstatNs(text: string): number {
  const ns = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isFinite(ns)) throw new Error('unreadable schedstat');
  return ns;
}

/**
 * CPU time of the process tree in nanoseconds, summed over every live thread's schedstat: finer
 * than the clock ticks of treeCpuTicks (10 ms), for short rounds. A thread that exited between
 * two reads takes its time with it, so use it for processes with long-lived threads (node).
 */
export function treeCpuNs(pid: number): number {
  let sum = 0;
  for (const dir of treeThreads(pid)) {
    const text = readOr(`${dir}/schedstat`);
    if (text) sum += parseSchedstatNs(text);
  }
  return sum;
}

let ticksPerSecond: number | undefined;
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ResourceUsage {
  /** CPU used by the process tree over the window, in % of one core. */
  cpuPct: number;
  rssMaxKiB: number;
  /** Least-squares growth of RSS over the window, KiB per second. */
  rssSlopeKiBps: number;
  rssSamples: number;
}

/** Samples RSS every `intervalMs` and CPU ticks at start and stop. */
export function startResourceSampler(pid: number, intervalMs = 250): { stop(): ResourceUsage } {
  const t0 = performance.now();
  const ticks0 = treeCpuTicks(pid);
  const times: number[] = [];
  const rss: number[] = [];
  const sample = (): void => {
    times.push((performance.now() - t0) / 1000);
    rss.push(treeRssKiB(pid));
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop(): ResourceUsage {
      clearInterval(timer);
      sample();
      const wall = (performance.now() - t0) / 1000;
      const cpu = (treeCpuTicks(pid) - ticks0) / clockTicksPerSecond();
      return {
        cpuPct: wall > 0 ? (100 * cpu) / wall : 0,
        rssMaxKiB: Math.max(...rss),
        rssSlopeKiBps: linearSlope(times, rss),
        rssSamples: rss.length,
      };
    },
  };
}

/** The 1/5/15-minute load averages as printed in a report ("unknown" off Linux). */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

/** CPU nanoseconds (schedstat) of each live thread of one process, by thread id. */
export function threadCpuNs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const text = readOr(`/proc/${pid}/task/${tid}/schedstat`);
    if (text) out.set(Number(tid), parseSchedstatNs(text));
  }
  return out;
}

/**
 * Which thread of a node process did the CPU. Node 20 names every thread "node" (comm), and under
 * load their start times spread over several clock ticks, so the threads are told apart by the
 * order they were created in (thread ids rise): `main` is the process's own thread (tid = pid);
 * `v8` the next `platform` ones, the platform Node creates before any JavaScript runs (the
 * delayed-task thread and V8's four workers at the default --v8-pool-size: parallel scavenging,
 * concurrent marking, concurrent compiles); `other` the rest alive when the gateway was ready
 * (libuv's pool, started at its first use; the OTLP export thread with `export-thread #true`,
 * started with the tracer); `late` the threads started after that.
 */
export type ThreadGroup = 'main' | 'v8' | 'other' | 'late';

/** The groups of the threads alive at ready (their ids: threadCpuNs(pid).keys()). Pure. */
export function readyThreadGroups(pid: number, tids: Iterable<number>, platform = 5): Map<number, ThreadGroup> {
  const rest = [...tids].filter((t) => t !== pid).sort((a, b) => a - b);
  const out = new Map<number, ThreadGroup>([[pid, 'main']]);
  rest.forEach((t, i) => out.set(t, i < platform ? 'v8' : 'other'));
  return out;
}

export interface ThreadSplit {
  ns: Record<ThreadGroup, number>;
  /** threads counted in each group (a thread seen only in `after` counts from 0) */
  threads: Record<ThreadGroup, number>;
  /** threads of `before` gone by `after` (their time in the span is lost) */
  gone: number;
}

/** The CPU between two threadCpuNs() samples, by group (`ready`: readyThreadGroups; a thread not in it is late). Pure. */
export function splitThreadCpu(pid: number, ready: ReadonlyMap<number, ThreadGroup>, before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): ThreadSplit {
  const s: ThreadSplit = { ns: { main: 0, v8: 0, other: 0, late: 0 }, threads: { main: 0, v8: 0, other: 0, late: 0 }, gone: 0 };
  for (const [tid, ns] of after) {
    const g: ThreadGroup = tid === pid ? 'main' : (ready.get(tid) ?? 'late');
    s.ns[g] += ns - (before.get(tid) ?? 0);
    s.threads[g]++;
  }
  for (const tid of before.keys()) if (!after.has(tid)) s.gone++;
  return s;
}
