// Per-agent circuit breaker (defaults as Sentinel: 5 failures open it, 2 successes in half-open
// close it, 30 s open, 1 probe at a time). Pure: the caller passes the clock.

export interface BreakerSettings {
  failureThreshold: number;
  successThreshold: number;
  openMs: number;
  halfOpenMaxRequests: number;
}

export const DEFAULT_BREAKER: BreakerSettings = { failureThreshold: 5, successThreshold: 2, openMs: 30_000, halfOpenMaxRequests: 1 };

export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private failures = 0;
  private successes = 0;
  private openedAt = 0;
  private probes = 0;

  constructor(
    private readonly settings: BreakerSettings = DEFAULT_BREAKER,
    private readonly onChange?: (state: BreakerState) => void,
  ) {}

  state(now: number): BreakerState {
    if (this.stateValue === 'open' && now - this.openedAt >= this.settings.openMs) this.transition('half-open');
    return this.stateValue;
  }

  /** Closed: every call passes, nothing to reserve (the caller can skip reading the clock). */
  get closed(): boolean {
    return this.stateValue === 'closed';
  }

  /** Reserves a pass; false while open or when the half-open probe budget is used up. */
  tryPass(now: number): boolean {
    const s = this.state(now);
    if (s === 'closed') return true;
    if (s === 'open') return false;
    if (this.probes >= this.settings.halfOpenMaxRequests) return false;
    this.probes += 1;
    return true;
  }

  onSuccess(): void {
    if (this.stateValue === 'half-open') {
      this.probes = Math.max(0, this.probes - 1);
      this.successes += 1;
      if (this.successes >= this.settings.successThreshold) this.transition('closed');
      return;
    }
    this.failures = 0;
  }

  onFailure(now: number): void {
    if (this.stateValue === 'half-open') {
      this.open(now);
      return;
    }
    if (this.stateValue === 'open') return;
    this.failures += 1;
    if (this.failures >= this.settings.failureThreshold) this.open(now);
  }

  /** A call that passed but ended without a verdict on the agent (e.g. the client left). */
  onNeutral(): void {
    if (this.stateValue === 'half-open') this.probes = Math.max(0, this.probes - 1);
  }

  private open(now: number): void {
    this.openedAt = now;
    this.transition('open');
  }

  private transition(to: BreakerState): void {
    this.stateValue = to;
    this.failures = 0;
    this.successes = 0;
    this.probes = 0;
    this.onChange?.(to);
  }
}
