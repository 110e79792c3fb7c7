// The counted figure of record of `bench/tracing.ts --mode instr` (docs/tracing.md "Session 24"):
// per tree and rate, the instructions a request of each process's last window without GC and
// TurboFan (the most settled window: under valgrind TurboFan is still compiling in the first
// ones), the median over the rate's processes against the median over off's, with the range of
// every process pair's ratio, and off's processes against each other (an A/A: the count's own
// noise). A process in V8's slow state in its last window (docs/architecture.md "A per-process V8
// state": ~24-36 runtime define calls and ~40k instructions a request more) is left out and named.
import { median } from './stats.ts';

/** One counted gateway process, as the figure reads it. */
export interface CountedProcess {
  name: string;
  /** '' for the tree under test, else the baseline's label */
  tree: string;
  /** the variant's name: 'off', '0%', '1%', ... */
  variant: string;
  /** instructions a request of the last window without GC and TurboFan */
  rest: number;
  /** the GC's instructions a request in the last window (a real cost, but one a single major GC moves by ~10k) */
  gc: number;
  /** Runtime_DefineKeyedOwnPropertyInLiteral calls a request in the last window */
  define: number;
  /** how many times the process was replaced after landing in the slow state */
  restarts: number;
}

/** define calls a request from which a process counts as in V8's slow state */
export const SLOW_STATE_DEFINES = 1;

export interface RateFigure {
  tree: string;
  variant: string;
  processes: number;
  /** median over the variant's processes / median over off's of the same tree */
  ratio: number;
  /** median - off's median, instructions a request */
  extra: number;
  /** the smallest and largest ratio over every (variant process, off process) pair */
  pairs: [number, number];
  /** the same ratio with the GC's instructions counted in */
  withGc: number;
}

export interface CountedFigure {
  rates: RateFigure[];
  /** per tree, off's processes against each other (undefined with one off process) */
  offAA: Map<string, [number, number] | undefined>;
  slow: CountedProcess[];
}

export function countedFigure(processes: readonly CountedProcess[], off: string): CountedFigure {
  const slow = processes.filter((p) => p.define >= SLOW_STATE_DEFINES);
  const kept = processes.filter((p) => p.define < SLOW_STATE_DEFINES);
  const rates: RateFigure[] = [];
  const offAA = new Map<string, [number, number] | undefined>();
  for (const tree of [...new Set(processes.map((p) => p.tree))]) {
    const of = (variant: string) => kept.filter((p) => p.tree === tree && p.variant === variant).map((p) => p.rest);
    const gcOf = (variant: string) => kept.filter((p) => p.tree === tree && p.variant === variant).map((p) => p.rest + p.gc);
    const offs = of(off);
    const aa = offs.flatMap((a, i) => offs.filter((_, j) => j !== i).map((b) => a / b));
    offAA.set(tree, aa.length > 0 ? [Math.min(...aa), Math.max(...aa)] : undefined);
    for (const variant of [...new Set(processes.filter((p) => p.tree === tree && p.variant !== off).map((p) => p.variant))]) {
      const xs = of(variant);
      if (xs.length === 0 || offs.length === 0) continue;
      const pairs = xs.flatMap((a) => offs.map((b) => a / b));
      rates.push({ tree, variant, processes: xs.length, ratio: median(xs) / median(offs), extra: median(xs) - median(offs), pairs: [Math.min(...pairs), Math.max(...pairs)], withGc: median(gcOf(variant)) / median(gcOf(off)) });
    }
  }
  return { rates, offAA, slow };
}

/** The figure as report lines. */
export function countedFigureLines(processes: readonly CountedProcess[], off: string, windows: number): string[] {
  const f = countedFigure(processes, off);
  const out = [`counted figure of record: the last window (${windows}) without GC and TurboFan, median over processes against off's ("pairs": every process pair's ratio)`];
  const restarted = processes.filter((p) => p.restarts > 0);
  if (restarted.length > 0) out.push(`replaced after landing in V8's slow state: ${restarted.map((p) => `${p.name} ${p.restarts}x`).join(', ')}`);
  if (f.slow.length > 0) out.push(`left out (V8's slow state in the last window): ${f.slow.map((p) => `${p.name} (${p.define.toFixed(1)} define calls/req)`).join(', ')}`);
  for (const [tree, aa] of f.offAA) {
    const offs = processes.filter((p) => p.tree === tree && p.variant === off && p.define < SLOW_STATE_DEFINES);
    out.push(`${tree || 'current '}off: ${offs.length > 0 ? median(offs.map((p) => p.rest)).toFixed(0) : '-'} instr/req, ${offs.length} process(es)${aa ? `; off / off (A/A) ${aa[0].toFixed(4)}-${aa[1].toFixed(4)}` : ''}`);
    for (const r of f.rates.filter((x) => x.tree === tree)) {
      out.push(`${tree || 'current '}${r.variant} / off: ×${r.ratio.toFixed(4)} (${r.extra >= 0 ? '+' : ''}${r.extra.toFixed(0)} instr/req; pairs ${r.pairs[0].toFixed(4)}-${r.pairs[1].toFixed(4)}, ${r.processes} process(es); with GC ×${r.withGc.toFixed(4)})`);
    }
  }
  return out;
}
