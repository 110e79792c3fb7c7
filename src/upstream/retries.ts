// Retries of one upstream group: the retry feature's decision plus the group's retry budget,
// which also bounds the pools' replays of requests an h2 upstream never processed.
import type { Logger } from 'pino';
import type { RawUpstream } from '../config/schema.ts';
import type { RetryBudget, RetryInput, RetryPolicy, RetrySettings } from './policies.ts';

export class Retries {
  private readonly settings: RetrySettings;
  private readonly budget: RetryBudget;

  constructor(
    private readonly upstream: string,
    block: RawUpstream['retry-policy'],
    private readonly policy: RetryPolicy,
    private readonly now: () => number,
    private readonly rng: () => number,
    private readonly log: Logger,
  ) {
    this.settings = policy.settings(block);
    this.budget = policy.budget(this.settings);
  }

  /** a first attempt (retries are a share of these) */
  recordRequest(now: number): void {
    this.budget.recordRequest(now);
  }

  /** takes one retry from the budget */
  take(): boolean {
    return this.budget.tryTake(this.now());
  }

  /** Retry decision for the forwarder (`attempt` = the attempt that just finished, 1-based). */
  decide(input: RetryInput): { retry: boolean; delayMs: number } {
    const v = this.policy.decide(this.settings, input, this.rng);
    if (!v.retry) return { retry: false, delayMs: 0 };
    if (!this.take()) {
      this.log.debug({ upstream: this.upstream }, 'retry budget exhausted');
      return { retry: false, delayMs: 0 };
    }
    return { retry: true, delayMs: v.delayMs };
  }
}
