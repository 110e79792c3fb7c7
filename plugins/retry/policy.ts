// Retry decisions (pure): may this request be retried after this attempt's outcome, and after
// how long? Plus a retry budget so retries cannot amplify an outage.
import type { RetryInput } from '../../src/upstream/policies.ts';
import type { RetryPolicyConfig } from './schema.ts';

export interface RetrySettings {
  /** total attempts including the first */
  maxAttempts: number;
  /** upstream response statuses that may be retried (none by default) */
  retryableStatus: ReadonlySet<number>;
  /** when false only connect failures (request never reached the upstream) are retried */
  retryErrors: boolean;
  backoffBaseMs: number;
  backoffMaxMs: number;
  retryNonIdempotent: boolean;
  /** retries allowed as a share of requests in the budget window */
  budgetRatio: number;
  /** retries always allowed per second, so low traffic can still retry */
  budgetMinPerSec: number;
}

/**
 * No `retry-policy`: like nginx's default `proxy_next_upstream error timeout`, one more attempt on
 * another target after a connection error (any method: nothing reached the upstream) or a
 * reset/timeout (idempotent methods only). Statuses are never retried by default.
 */
export const DEFAULT_RETRY: RetrySettings = {
  maxAttempts: 2,
  retryableStatus: new Set(),
  retryErrors: true,
  backoffBaseMs: 0,
  backoffMaxMs: 0,
  retryNonIdempotent: false,
  budgetRatio: 0.2,
  budgetMinPerSec: 10,
};

export function retrySettings(cfg: RetryPolicyConfig | undefined): RetrySettings {
  if (!cfg) return DEFAULT_RETRY;
  const base = cfg['backoff-base-ms'] ?? 100;
  return {
    maxAttempts: cfg['max-attempts'] ?? 1,
    retryableStatus: new Set(cfg['retryable-status-codes'] ?? []),
    retryErrors: true,
    backoffBaseMs: base,
    backoffMaxMs: Math.max(base, cfg['backoff-max-ms'] ?? 2000),
    retryNonIdempotent: cfg['retry-non-idempotent'] ?? false,
    budgetRatio: (cfg['retry-budget-percent'] ?? 20) / 100,
    budgetMinPerSec: 10,
  };
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

// What the group asks about one finished attempt: the core's contract (src/upstream/policies.ts).
export type { RetryInput } from '../../src/upstream/policies.ts';

export type RetryVerdict = { retry: true; delayMs: number } | { retry: false; delayMs: 0; reason: string };

const CONNECT_FAILURES = new Set(['connect_refused', 'connect_timeout']);

/** The decision without the budget (see RetryBudget). `rng` in [0,1) jitters the backoff. */
export function decideRetry(s: RetrySettings, input: RetryInput, rng: () => number): RetryVerdict {
  const no = (reason: string): RetryVerdict => ({ retry: false, delayMs: 0, reason });
  if (input.responseStarted) return no('response_started');
  if (input.attempt >= s.maxAttempts) return no('attempts_exhausted');
  if (!input.bodyReplayable) return no('body_not_replayable');
  const o = input.outcome;
  // A connect failure never reached the upstream, so even a POST is safe to send elsewhere.
  const connectFailure = o.kind === 'error' && CONNECT_FAILURES.has(o.reason);
  if (!connectFailure && !s.retryNonIdempotent && !IDEMPOTENT.has(input.method.toUpperCase())) return no('not_idempotent');
  if (o.kind === 'response') {
    if (!s.retryableStatus.has(o.status)) return no('status_not_retryable');
  } else if (!connectFailure && !s.retryErrors) {
    return no('error_not_retryable');
  }
  return { retry: true, delayMs: backoffMs(s, input.attempt, rng) };
}

/** Full-jitter exponential backoff: uniform in [0, min(max, base * 2^(attempt-1))]. */
export function backoffMs(s: RetrySettings, attempt: number, rng: () => number): number {
  if (s.backoffBaseMs <= 0) return 0;
  const ceiling = Math.min(s.backoffMaxMs, s.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(rng() * ceiling);
}

/**
 * Retry budget over a sliding window of 1-second buckets: retries may not exceed
 * max(minPerSec * window, ratio * requests) within the window.
 */
export class RetryBudget {
  private readonly requests: number[];
  private readonly retries: number[];
  private bucketStart = 0;
  private head = 0;

  constructor(
    private readonly ratio: number,
    private readonly minPerSec: number,
    private readonly windowSecs = 10,
  ) {
    this.requests = new Array<number>(windowSecs).fill(0);
    this.retries = new Array<number>(windowSecs).fill(0);
  }

  private advance(nowMs: number): void {
    const sec = Math.floor(nowMs / 1000);
    if (this.bucketStart === 0) this.bucketStart = sec;
    const steps = Math.min(this.windowSecs, sec - this.bucketStart);
    for (let i = 0; i < steps; i++) {
      this.head = (this.head + 1) % this.windowSecs;
      this.requests[this.head] = 0;
      this.retries[this.head] = 0;
    }
    if (sec > this.bucketStart) this.bucketStart = sec;
  }

  recordRequest(nowMs: number): void {
    this.advance(nowMs);
    this.requests[this.head]!++;
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  tryTake(nowMs: number): boolean {
    this.advance(nowMs);
    const requests = this.requests.reduce((a, b) => a + b, 0);
    const retries = this.retries.reduce((a, b) => a + b, 0);
    if (retries >= Math.max(this.minPerSec * this.windowSecs, this.ratio * requests)) return false;
    this.retries[this.head]!++;
    return true;
  }
}
