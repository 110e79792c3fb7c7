// The statistics of a blocked bench over fresh processes (bench/tracing.ts --mode fresh): every
// block starts a new process per variant, so a ratio per block already carries the
// process-to-process variation (which V8 state each process lands in, docs/architecture.md), and a
// bootstrap over blocks gives an interval over processes, not over windows of one process.
// Measurements taken while the host ran slow (a calibration loop on the gateway's core took more
// than `threshold` times its median over the run) are flagged; a block ratio with either side
// flagged is reported apart, never silently dropped. Pure: runs in, summaries out.
import { bootstrapMedianInterval, median } from './stats.ts';

export interface BlockRun {
  block: number;
  variant: string;
  /** the gateway's CPU time per request, µs */
  cpuUsPerRequest: number;
  rps: number;
  /** CPU ms of the calibration loop on the gateway's core around this measurement (the slower of before and after) */
  calibrationMs: number;
  /** the loop before and after the measurement (runs recorded before 2026-12-05 10:00 have only the slower one) */
  calibrationBeforeMs?: number;
  calibrationAfterMs?: number;
}

/** What flagSlowHost adds to a measurement (also used by bench/waf-modsec.ts, which has no blocks). */
export interface HostFlag {
  /** calibrationMs / the run's median calibration */
  hostSlowdown: number;
  slowHost: boolean;
}

export interface FlaggedRun extends BlockRun, HostFlag {}

/** Marks the runs whose calibration took more than `threshold` x the median calibration of all runs. */
export function flagSlowHost<T extends Pick<BlockRun, 'calibrationMs'>>(runs: readonly T[], threshold: number): (T & HostFlag)[] {
  if (!(threshold > 1)) throw new RangeError(`slow-host threshold ${threshold} must be above 1`);
  const mid = median(runs.map((r) => r.calibrationMs));
  return runs.map((r) => {
    const hostSlowdown = mid > 0 ? r.calibrationMs / mid : Number.NaN;
    return { ...r, hostSlowdown, slowHost: hostSlowdown > threshold };
  });
}

export interface RatioSummary {
  /** per-block ratios, in block order */
  ratios: number[];
  median: number;
  /** bootstrap 95% interval of the median, resampling blocks */
  lo: number;
  hi: number;
}

export interface BlockComparison {
  variant: string;
  reference: string;
  /** blocks where neither side was flagged */
  clean: { blocks: number[]; cpu: RatioSummary; rps: RatioSummary };
  /** every block with both sides measured, flagged ones included */
  all: { blocks: number[]; cpu: RatioSummary; rps: RatioSummary };
  /** blocks left out of `clean` because a side was flagged */
  flaggedBlocks: number[];
}

function summarize(ratios: number[], seed: number): RatioSummary {
  const [lo, hi] = bootstrapMedianInterval(ratios, { seed });
  return { ratios, median: median(ratios), lo, hi };
}

/** Per block, variant / reference for CPU per request and req/s; blocks missing either side are skipped. */
export function compareByBlock(runs: readonly FlaggedRun[], variant: string, reference: string, seed = 1): BlockComparison {
  const byBlock = new Map<number, { v?: FlaggedRun; ref?: FlaggedRun }>();
  for (const r of runs) {
    if (r.variant !== variant && r.variant !== reference) continue;
    const e = byBlock.get(r.block) ?? {};
    if (r.variant === variant) e.v = r;
    if (r.variant === reference) e.ref = r;
    byBlock.set(r.block, e);
  }
  const all = { blocks: [] as number[], cpu: [] as number[], rps: [] as number[] };
  const clean = { blocks: [] as number[], cpu: [] as number[], rps: [] as number[] };
  const flaggedBlocks: number[] = [];
  for (const block of [...byBlock.keys()].sort((a, b) => a - b)) {
    const { v, ref } = byBlock.get(block)!;
    if (!v || !ref) continue;
    const cpu = v.cpuUsPerRequest / ref.cpuUsPerRequest;
    const rps = v.rps / ref.rps;
    all.blocks.push(block);
    all.cpu.push(cpu);
    all.rps.push(rps);
    if (v.slowHost || ref.slowHost) {
      flaggedBlocks.push(block);
      continue;
    }
    clean.blocks.push(block);
    clean.cpu.push(cpu);
    clean.rps.push(rps);
  }
  return {
    variant,
    reference,
    clean: { blocks: clean.blocks, cpu: summarize(clean.cpu, seed), rps: summarize(clean.rps, seed) },
    all: { blocks: all.blocks, cpu: summarize(all.cpu, seed), rps: summarize(all.rps, seed) },
    flaggedBlocks,
  };
}

export type Verdict = 'meets' | 'exceeds' | 'not resolved' | 'too few blocks';

/** Below this many blocks a bootstrap interval of the median says nothing (with 1 block it has zero width). */
export const MIN_BLOCKS_FOR_VERDICT = 5;

/**
 * A cost goal against a ratio's interval: `cost` is the allowed fraction (0.03 for "costs <= 3%").
 * For CPU per request (dearer = higher) the goal is met when the whole interval is <= 1 + cost and
 * missed when it is all above; for throughput (dearer = lower), >= 1 - cost and all below.
 */
export function verdictAgainst(s: Pick<RatioSummary, 'lo' | 'hi' | 'ratios'>, cost: number, dearerIs: 'higher' | 'lower'): Verdict {
  if (s.ratios.length < MIN_BLOCKS_FOR_VERDICT) return 'too few blocks';
  if (!Number.isFinite(s.lo) || !Number.isFinite(s.hi)) return 'not resolved';
  if (dearerIs === 'higher') return s.hi <= 1 + cost ? 'meets' : s.lo > 1 + cost ? 'exceeds' : 'not resolved';
  return s.lo >= 1 - cost ? 'meets' : s.hi < 1 - cost ? 'exceeds' : 'not resolved';
}

/**
 * How many blocks an interval as wide as this one would need to shrink to +-`halfWidth` (0.02 for
 * +-2%): the width of a median's interval falls as 1/sqrt(blocks). A sizing hint for the next run,
 * from the spread this run saw; null when there is no interval to scale.
 */
export function blocksForHalfWidth(s: Pick<RatioSummary, 'lo' | 'hi' | 'ratios'>, halfWidth: number): number | null {
  const now = (s.hi - s.lo) / 2;
  if (s.ratios.length < 2 || !Number.isFinite(now) || !(halfWidth > 0)) return null;
  if (now === 0) return s.ratios.length;
  // less a hair, so that float noise in hi - lo (1.04 - 0.96 is not 0.08) does not add a block
  return Math.max(s.ratios.length, Math.ceil(s.ratios.length * (now / halfWidth) ** 2 - 1e-9));
}

/** The host's speed around a run as a loop time: the mean of the loops before and after when both were recorded, else the slower one. */
export function hostLoopMs(r: BlockRun): number {
  return r.calibrationBeforeMs !== undefined && r.calibrationAfterMs !== undefined ? (r.calibrationBeforeMs + r.calibrationAfterMs) / 2 : r.calibrationMs;
}

/**
 * Each run's CPU per request and req/s as if the host had run at the median speed of all runs:
 * CPU / (loop / median loop), req/s x (loop / median loop), with the loop of hostLoopMs. The same
 * fixed rule for every run and variant (no exponent fitted on the outcome, nothing dropped), so a
 * block ratio changes only by the two sides' loop ratio. Flags and other fields are kept.
 */
export function normaliseByHost<T extends BlockRun>(runs: readonly T[]): T[] {
  const mid = median(runs.map(hostLoopMs));
  return runs.map((r) => {
    const speed = hostLoopMs(r) / mid;
    if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError(`block ${r.block} ${r.variant}: no usable calibration (${hostLoopMs(r)} ms)`);
    return { ...r, cpuUsPerRequest: r.cpuUsPerRequest / speed, rps: r.rps * speed };
  });
}

/** Sample standard deviation of the natural logs of positive ratios (0.05 = a ~5% spread per block); NaN below two. */
export function logSpread(ratios: readonly number[]): number {
  const xs = ratios.filter((x) => x > 0 && Number.isFinite(x)).map(Math.log);
  if (xs.length < 2) return Number.NaN;
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * How much of the run-to-run spread of CPU per request the host's speed explains: log CPU per
 * request against log host loop, each centred on its variant's mean (so the variants' own costs
 * do not count), pooled over variants. slope 1 = CPU per request moves as the loop does; r the
 * correlation; spread / residual the standard deviation of log CPU before and after removing the
 * fitted slope. A diagnostic for docs/tracing.md, not an estimator.
 */
export function hostDependence(runs: readonly BlockRun[]): { n: number; slope: number; r: number; spread: number; residual: number } {
  const xs: number[] = [];
  const ys: number[] = [];
  let groups = 0;
  for (const v of new Set(runs.map((r) => r.variant))) {
    const mine = runs.filter((r) => r.variant === v && r.cpuUsPerRequest > 0 && hostLoopMs(r) > 0);
    if (mine.length < 2) continue;
    const x = mine.map((r) => Math.log(hostLoopMs(r)));
    const y = mine.map((r) => Math.log(r.cpuUsPerRequest));
    const mx = x.reduce((a, b) => a + b, 0) / x.length;
    const my = y.reduce((a, b) => a + b, 0) / y.length;
    groups++;
    for (let i = 0; i < x.length; i++) {
      xs.push(x[i]! - mx);
      ys.push(y[i]! - my);
    }
  }
  const n = xs.length;
  const sxx = xs.reduce((a, x) => a + x * x, 0);
  const syy = ys.reduce((a, y) => a + y * y, 0);
  const sxy = xs.reduce((a, x, i) => a + x * ys[i]!, 0);
  // degrees of freedom: one mean per variant, and the slope
  if (n < groups + 2 || sxx === 0 || syy === 0) return { n, slope: Number.NaN, r: Number.NaN, spread: Number.NaN, residual: Number.NaN };
  const slope = sxy / sxx;
  const res = ys.map((y, i) => y - slope * xs[i]!);
  return { n, slope, r: sxy / Math.sqrt(sxx * syy), spread: Math.sqrt(syy / (n - groups)), residual: Math.sqrt(res.reduce((a, e) => a + e * e, 0) / (n - groups - 1)) };
}
