// `perf stat` attached to one running process (all its threads) for a stretch of load: the counts
// of kernel tracepoints (syscalls, scheduler events) or uprobes, read from its CSV output.
// Used by bench/ab.ts (--mode sys), bench/waf-insitu.ts and bench/v8-state.ts.

import { spawn } from 'node:child_process';

/**
 * Parses `perf stat -x ,` output: one `value,unit,event,...` line per event. perf writes
 * `<not counted>` when the counter never ran, which for `-p PID` means no thread of the process
 * ran while it counted: zero events. `<not supported>` (or anything else that is not a number)
 * becomes NaN, so a caller can tell "zero" from "not measured". Lines that are not counts
 * (comments, blank lines, perf's own messages) are skipped.
 */
export function parsePerfStatCsv(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const fields = line.split(',');
    const event = fields[2]?.trim();
    const value = fields[0]?.trim();
    if (!event || value === undefined || value === '') continue;
    counts.set(event, /^\d+(\.\d+)?$/.test(value) ? Number(value) : value === '<not counted>' ? 0 : Number.NaN);
  }
  return counts;
}

/**
 * A short name for a tracepoint: `syscalls:sys_enter_read` -> `read`, `sched:sched_wakeup` ->
 * `wakeup`, `raw_syscalls:sys_enter` (every syscall) -> `all`, `GROUP:probe` -> `probe`; software
 * events such as `context-switches` stay as they are.
 */
export function shortEventName(event: string): string {
  if (event === 'raw_syscalls:sys_enter') return 'all';
  if (event.startsWith('syscalls:sys_enter_')) return event.slice('syscalls:sys_enter_'.length);
  if (event.startsWith('sched:sched_')) return event.slice('sched:sched_'.length);
  const colon = event.indexOf(':');
  return colon < 0 ? event : event.slice(colon + 1);
}

/** The tracepoints that count every syscall plus each named one. */
export function syscallEvents(names: readonly string[]): string[] {
  return ['raw_syscalls:sys_enter', ...names.map((s) => `syscalls:sys_enter_${s}`)];
}

export interface PerfStatSession {
  /** Stops perf (SIGINT, as ^C would) and returns the counts by short event name. */
  stop(): Promise<Map<string, number>>;
}

/**
 * Starts `perf stat` on process `pid` for `events`. Resolves once perf has had time to attach
 * (300 ms), so the load can start. perf's counts arrive on stderr with its errors; if none of
 * the events was reported, stop() throws with what perf said.
 */
export async function startPerfStat(pid: number, events: readonly string[]): Promise<PerfStatSession> {
  const perf = spawn('perf', ['stat', '-x', ',', ...events.flatMap((e) => ['-e', e]), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  perf.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => perf.once('exit', () => resolve()));
  await new Promise((r) => setTimeout(r, 300));
  return {
    async stop() {
      perf.kill('SIGINT');
      await exited;
      const counts = new Map<string, number>();
      for (const [event, n] of parsePerfStatCsv(stderr)) if (events.includes(event)) counts.set(shortEventName(event), n);
      if (counts.size === 0) throw new Error(`perf stat -p ${pid} reported no counts: ${stderr.trim() || 'no output'}`);
      return counts;
    },
  };
}

/** Counts `events` in process `pid` while `during` runs. */
export async function perfStatDuring<T>(pid: number, events: readonly string[], during: () => Promise<T>): Promise<[T, Map<string, number>]> {
  const session = await startPerfStat(pid, events);
  let result: T;
  try {
    result = await during();
  } catch (err) {
    await session.stop().catch(() => undefined);
    throw err;
  }
  return [result, await session.stop()];
}
