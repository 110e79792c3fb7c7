// Latency of one upstream target or agent as the status page shows it: an exponentially
// weighted moving average (how it feels now) and p50/p95 over the last samples (what is typical).
// Observing is O(1) and allocation-free (a fixed ring); percentiles are computed only when the
// status page asks.

export interface LatencySnapshot {
  /** samples seen since the tracker was created */
  count: number;
  /** EWMA in milliseconds (null before the first sample) */
  ewma_ms: number | null;
  /** median and 95th percentile of the last `window` samples (null before the first sample) */
  p50_ms: number | null;
  p95_ms: number | null;
  /** the most recent sample */
  last_ms: number | null;
}

export class LatencyStats {
  private readonly ring: Float64Array;
  private filled = 0;
  private pos = 0;
  private ewma = 0;
  private total = 0;
  private last = 0;

  /** `alpha`: weight of a new sample in the EWMA; `window`: samples kept for the percentiles */
  constructor(
    private readonly alpha = 0.2,
    window = 128,
  ) {
    this.ring = new Float64Array(Math.max(1, window));
  }

  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.ewma = this.total === 0 ? ms : this.ewma + this.alpha * (ms - this.ewma);
    this.total += 1;
    this.last = ms;
    this.ring[this.pos] = ms;
    this.pos = (this.pos + 1) % this.ring.length;
    if (this.filled < this.ring.length) this.filled += 1;
  }

  snapshot(): LatencySnapshot {
    if (this.total === 0) return { count: 0, ewma_ms: null, p50_ms: null, p95_ms: null, last_ms: null };
    const sorted = Array.from(this.ring.subarray(0, this.filled)).sort((a, b) => a - b);
    return { count: this.total, ewma_ms: round(this.ewma), p50_ms: round(nearestRank(sorted, 0.5)), p95_ms: round(nearestRank(sorted, 0.95)), last_ms: round(this.last) };
  }
}

/** The nearest-rank percentile of sorted, non-empty samples. */
export function nearestRank(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
