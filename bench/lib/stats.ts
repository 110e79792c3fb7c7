// Small statistics used by the runner: medians across rounds, nearest-rank percentiles and the
// least-squares slope of RSS samples (memory growth during a run).
import { seededRng } from '../../plugins/balancing/common.ts';

/** Median of a list (mean of the two middle values for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an unsorted list; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  if (p < 0 || p > 100) throw new RangeError(`percentile ${p} is outside 0..100`);
  const xs = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * xs.length));
  return xs[rank - 1]!;
}

/** Least-squares slope dy/dx; 0 with fewer than two distinct x values. */
export function linearSlope(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length) throw new RangeError('linearSlope needs as many x as y values');
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    num += dx * (ys[i]! - my);
    den += dx * dx;
  }
  return den === 0 ? 0 : num / den;
}

/** a / b, or null when either side is missing or b is zero (a ratio that cannot be computed). */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** A seeded PRNG (the balancers' mulberry32): the same seed gives the same bootstrap interval. */
export const seededRandom = seededRng;

/**
 * Percentile bootstrap interval of the median: resample the values with replacement
 * `iterations` times and take the (1-level)/2 and (1+level)/2 quantiles of the resampled
 * medians. For per-pair ratios of an A/B: an interval that excludes 1 +- 3% resolves 3%.
 */
export function bootstrapMedianInterval(values: readonly number[], opts: { iterations?: number; level?: number; seed?: number } = {}): [number, number] {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) return [Number.NaN, Number.NaN];
  const iterations = opts.iterations ?? 10_000;
  const level = opts.level ?? 0.95;
  const rand = seededRandom(opts.seed ?? 1);
  const medians = new Float64Array(iterations);
  const sample = new Array<number>(xs.length);
  for (let i = 0; i < iterations; i++) {
    for (let j = 0; j < xs.length; j++) sample[j] = xs[Math.floor(rand() * xs.length)]!;
    medians[i] = median(sample);
  }
  medians.sort();
  const at = (q: number) => medians[Math.min(iterations - 1, Math.max(0, Math.round(q * (iterations - 1))))]!;
  return [at((1 - level) / 2), at((1 + level) / 2)];
}
