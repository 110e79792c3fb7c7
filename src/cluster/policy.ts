// The pure decisions of cluster mode: how many workers, and whether a dead worker is replaced.

/**
 * Effective worker count: the `--workers` flag wins over `system { worker-threads }`; 0 means
 * one worker per CPU the process may use (os.availableParallelism()).
 */
export function resolveWorkerCount(configured: number, cliOverride: number | undefined, cpus: number): number {
  const n = cliOverride ?? configured;
  if (!Number.isInteger(n) || n < 0) throw new Error(`worker count must be a non-negative integer, got ${n}`);
  return n === 0 ? Math.max(1, cpus) : n;
}

/** Parses the value of `--workers`: a non-negative integer. */
export function parseWorkersFlag(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new Error(`--workers needs a non-negative integer (0 = one per CPU), got ${text === undefined ? 'nothing' : `"${text}"`}`);
  return Number(text);
}

export interface RestartPolicyOptions {
  /** restarts allowed inside `windowMs`; one more means a crash loop */
  maxRestarts: number;
  windowMs: number;
  /** delay before the first restart in a window; doubles per restart, capped at maxDelayMs */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = { maxRestarts: 5, windowMs: 60_000, baseDelayMs: 100, maxDelayMs: 5_000 };

export type RestartDecision = { action: 'restart'; delayMs: number } | { action: 'give-up'; restarts: number };

/**
 * Replacement of workers that die unexpectedly: every death inside the sliding window counts,
 * the delay doubles with each, and the (maxRestarts + 1)-th death inside the window gives up
 * (the primary then stops the cluster and exits non-zero instead of spinning).
 */
export class RestartPolicy {
  private deaths: number[] = [];
  private failedStarts = 0;

  constructor(private readonly opts: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /**
   * `started`: whether the dead worker had finished starting. Replacements that die before they
   * are ready also give up after maxRestarts in a row, however slowly each one fails (a start can
   * take longer than windowMs / maxRestarts on a loaded machine, which the window alone misses).
   */
  onDeath(now: number, started = true): RestartDecision {
    this.deaths = this.deaths.filter((t) => now - t < this.opts.windowMs);
    this.deaths.push(now);
    this.failedStarts = started ? 0 : this.failedStarts + 1;
    const n = this.deaths.length;
    if (n > this.opts.maxRestarts || this.failedStarts > this.opts.maxRestarts) return { action: 'give-up', restarts: Math.max(n, this.failedStarts) - 1 };
    return { action: 'restart', delayMs: Math.min(this.opts.baseDelayMs * 2 ** (n - 1), this.opts.maxDelayMs) };
  }

  /** A worker finished starting: the run of failed starts is over. */
  onReady(): void {
    this.failedStarts = 0;
  }
}
