// `bench/tracing.ts --mode fresh --interleave K --threads`: each gateway's CPU over its measured
// span split by thread (bench/lib/procfs.ts splitThreadCpu: main, V8's platform threads, the other
// threads alive at ready, threads started later), and which of them holds a variant's extra CPU against the reference (off). The
// unit is CPU per request, per block (the same blocks as the ratios: over processes). Pure.
import { bootstrapMedianInterval, median } from './stats.ts';
import type { ThreadGroup } from './procfs.ts';

export const THREAD_GROUPS: readonly ThreadGroup[] = ['main', 'v8', 'other', 'late'];

/** What a run records: µs of CPU a request per group, the thread counts, threads lost in the span. */
export interface RunThreads {
  us: Record<ThreadGroup, number>;
  threads: Record<ThreadGroup, number>;
  gone: number;
}

export interface ThreadRun {
  block: number;
  variant: string;
  threads?: RunThreads;
}

const total = (t: RunThreads) => THREAD_GROUPS.reduce((a, g) => a + t.us[g], 0);

/**
 * Per variant: the median µs a request of each group (and in all); and for every variant but the
 * reference, per block, (variant's group - reference's group) / reference's total: the share of
 * the reference's CPU a request that each group adds, its median over blocks and 95% interval.
 */
export function threadSplitReport(runs: readonly ThreadRun[], reference = 'off'): string {
  const withThreads = runs.filter((r): r is ThreadRun & { threads: RunThreads } => r.threads !== undefined);
  if (withThreads.length === 0) return '';
  const variants = [...new Set(withThreads.map((r) => r.variant))];
  const lines: string[] = ['', `CPU a request by thread (median over blocks, µs; main = the process's thread, v8 = V8's platform: GC and compiler workers, other = the rest alive at ready: libuv's pool, the export thread if on; late = started after ready)`];
  lines.push(`| variant | blocks | ${THREAD_GROUPS.join(' | ')} | all | threads (${THREAD_GROUPS.join('/')}) |`, `|:--|--:|${THREAD_GROUPS.map(() => '--:|').join('')}--:|:--|`);
  for (const v of variants) {
    const rs = withThreads.filter((r) => r.variant === v);
    const m = (f: (t: RunThreads) => number) => median(rs.map((r) => f(r.threads))).toFixed(2);
    const counts = [...new Set(rs.map((r) => THREAD_GROUPS.map((g) => r.threads.threads[g]).join('/')))].join(', ');
    const gone = rs.reduce((a, r) => a + r.threads.gone, 0);
    lines.push(`| ${v} | ${rs.length} | ${THREAD_GROUPS.map((g) => m((t) => t.us[g])).join(' | ')} | ${m(total)} | ${counts}${gone ? ` (${gone} gone)` : ''} |`);
  }
  const refs = new Map(withThreads.filter((r) => r.variant === reference).map((r) => [r.block, r.threads]));
  if (refs.size === 0) return lines.join('\n');
  lines.push('', `what each group adds against ${reference}, in % of ${reference}'s CPU a request (per block; median and 95% interval over blocks)`);
  lines.push(`| variant | blocks | ${THREAD_GROUPS.join(' | ')} | all |`, `|:--|--:|${THREAD_GROUPS.map(() => '--:|').join('')}--:|`);
  const pct = (xs: number[]) => {
    const [lo, hi] = bootstrapMedianInterval(xs);
    return `${(100 * median(xs)).toFixed(2)} (${(100 * lo).toFixed(2)} .. ${(100 * hi).toFixed(2)})`;
  };
  for (const v of variants) {
    if (v === reference) continue;
    const pairs = withThreads.filter((r) => r.variant === v && refs.has(r.block)).map((r) => [r.threads, refs.get(r.block)!] as const);
    if (pairs.length === 0) continue;
    const by = (f: (t: RunThreads) => number) => pct(pairs.map(([a, b]) => (f(a) - f(b)) / total(b)));
    lines.push(`| ${v} | ${pairs.length} | ${THREAD_GROUPS.map((g) => by((t) => t.us[g])).join(' | ')} | ${by(total)} |`);
  }
  return lines.join('\n');
}
