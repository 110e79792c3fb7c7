// The state of one target address of an upstream: shared with the balancer (the TargetState
// fields), driven by the breakers and active checks (target-health.ts), and kept across discovery
// refreshes and config reloads for as long as the address stays (the next generation's group
// adopts the object, target-set.ts).
import type { AttemptOutcome, TargetState } from './types.ts';
import type { BreakerState, HealthVerdict, ProbeResult, UpstreamPolicies } from './policies.ts';
import { LatencyStats } from '../status/latency.ts';

/** how many recent outcomes the passive failure rate (the `upstreams` builtin) looks at */
const PASSIVE_WINDOW = 100;

export class Target implements TargetState {
  healthy = true;
  inFlight = 0;
  breaker: BreakerState;
  /** per-route breakers, for routes with their own circuit-breaker block */
  readonly routeBreakers = new Map<string, BreakerState>();
  /** active health check verdict (thresholds applied); healthy until checks say otherwise */
  active: HealthVerdict;
  lastCheck: ProbeResult | undefined;
  /** last PASSIVE_WINDOW outcomes (true = failure), ring buffer */
  window: boolean[] = [];
  windowPos = 0;
  lastError: string | undefined;
  /** attempt latency for the status page (src/status); kept across reloads with the target */
  readonly latency = new LatencyStats();
  constructor(
    readonly address: string,
    readonly host: string,
    readonly port: number,
    public weight: number,
    readonly index: number,
    policies: UpstreamPolicies,
  ) {
    this.breaker = policies.breakers.closed;
    this.active = policies.health.initial;
  }

  /** Records one attempt's outcome in the passive window. */
  recordOutcome(outcome: AttemptOutcome, failed: boolean): void {
    if (this.window.length < PASSIVE_WINDOW) this.window.push(failed);
    else this.window[this.windowPos] = failed;
    this.windowPos = (this.windowPos + 1) % PASSIVE_WINDOW;
    if (failed) this.lastError = outcome.kind === 'error' ? outcome.reason : `status ${outcome.status}`;
  }

  /** share of failures among the recent outcomes (0 when none) */
  failureRate(): number {
    return this.window.length === 0 ? 0 : this.window.filter(Boolean).length / this.window.length;
  }
}
