// Health of the targets of one upstream group: passive (a circuit breaker per target, and per
// route and target for routes with their own `circuit-breaker` block) and active checks (a
// scheduler probing every target). Both decide `Target.healthy`, which the balancer reads.
// The breaker and check logic are the health feature's policies (src/upstream/policies.ts).
import type { GenerationServices } from '../pipeline/types.ts';
import type { AttemptOutcome } from './types.ts';
import type { BreakerEvent, BreakerSettings, BreakerState, CircuitBreakerBlock, HealthCheckScheduler, HealthCheckSettings, ProbeResult, ProbeTarget, UpstreamPolicies } from './policies.ts';
import type { UpstreamGauges } from './gauges.ts';
import type { Target } from './target.ts';

const FAILURE: BreakerEvent = { type: 'failure' };
const SUCCESS: BreakerEvent = { type: 'success' };

export class TargetHealth {
  /** the settings of routes with their own circuit-breaker block */
  readonly routeBreakerCfg: ReadonlyMap<string, BreakerSettings>;
  private readonly breakerCfg: BreakerSettings;
  /** active checks (undefined: no `health-check` block) */
  readonly checks: HealthCheckSettings | undefined;
  private scheduler: HealthCheckScheduler | undefined;

  constructor(
    private readonly upstream: string,
    block: CircuitBreakerBlock | undefined,
    routeBlocks: ReadonlyMap<string, CircuitBreakerBlock>,
    checks: HealthCheckSettings | undefined,
    private readonly policies: UpstreamPolicies,
    private readonly gauges: UpstreamGauges,
    private readonly services: GenerationServices,
  ) {
    const breakers = policies.breakers;
    this.breakerCfg = breakers.settings(block);
    this.routeBreakerCfg = new Map([...routeBlocks].map(([r, c]) => [r, breakers.settings(c)]));
    this.checks = checks;
  }

  /**
   * Refreshes `healthy` from active checks and breakers (an open breaker whose timeout elapsed
   * admits probes); with a route that has its own breaker, that one must admit too.
   */
  refresh(members: readonly Target[], now: number, route: string | undefined): void {
    const b = this.policies.breakers;
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    for (const t of members) {
      let ok = t.active.healthy && b.canPass(t.breaker, now, this.breakerCfg);
      if (ok && rcfg) ok = b.canPass(t.routeBreakers.get(route!) ?? b.closed, now, rcfg);
      t.healthy = ok;
    }
  }

  /** A picked target's breakers take the attempt (an open breaker past its timeout turns half-open). */
  acquire(t: Target, now: number, route: string | undefined): void {
    const b = this.policies.breakers;
    if (t.breaker.phase !== 'closed') this.setBreaker(t, b.next(t.breaker, { type: 'acquire' }, now, this.breakerCfg));
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    if (rcfg) {
      const rb = t.routeBreakers.get(route!) ?? b.closed;
      if (rb.phase !== 'closed') this.setRouteBreaker(t, route!, b.next(rb, { type: 'acquire' }, now, rcfg));
    }
  }

  /**
   * One attempt's outcome: passive window and breaker(s). Each breaker judges it with its own
   * `failure-status-codes`; the passive window with the upstream's. Returns whether it counted as
   * a failure of the target (the upstream's verdict).
   */
  record(t: Target, outcome: AttemptOutcome, now: number, route: string | undefined): boolean {
    const b = this.policies.breakers;
    const failed = b.isFailure(outcome, this.breakerCfg);
    t.recordOutcome(outcome, failed);
    this.setBreaker(t, b.next(t.breaker, failed ? FAILURE : SUCCESS, now, this.breakerCfg));
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    if (rcfg) this.setRouteBreaker(t, route!, b.next(t.routeBreakers.get(route!) ?? b.closed, b.isFailure(outcome, rcfg) ? FAILURE : SUCCESS, now, rcfg));
    return failed;
  }

  /** An attempt that says nothing about the target: a half-open breaker gets its probe slot back. */
  release(t: Target, now: () => number, route: string | undefined): void {
    const b = this.policies.breakers;
    if (t.breaker.phase === 'half-open') this.setBreaker(t, b.next(t.breaker, { type: 'release' }, now(), this.breakerCfg));
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    const rb = route !== undefined ? t.routeBreakers.get(route) : undefined;
    if (rcfg && rb?.phase === 'half-open') this.setRouteBreaker(t, route!, b.next(rb, { type: 'release' }, now(), rcfg));
  }

  /** Whether the target's own breaker is open and still refusing at `now` (the `upstreams` builtin). */
  openNow(t: Target, now: number): boolean {
    return t.breaker.phase === 'open' && !this.policies.breakers.canPass(t.breaker, now, this.breakerCfg);
  }

  private setBreaker(t: Target, s: BreakerState): void {
    const before = t.breaker.phase;
    t.breaker = s;
    if (s.phase === before) return;
    this.gauges.breaker(t, '', s.phase);
    this.gauges.health(t);
    this.services.log.warn({ upstream: this.upstream, target: t.address, from: before, to: s.phase }, 'circuit breaker state changed');
    this.services.audit({ event_type: 'circuit_breaker_change', upstream: this.upstream, target: t.address, from: before, to: s.phase });
  }

  private setRouteBreaker(t: Target, route: string, s: BreakerState): void {
    const before = (t.routeBreakers.get(route) ?? this.policies.breakers.closed).phase;
    t.routeBreakers.set(route, s);
    if (s.phase === before) return;
    this.gauges.breaker(t, route, s.phase);
    this.services.log.warn({ upstream: this.upstream, route, target: t.address, from: before, to: s.phase }, 'route circuit breaker state changed');
    this.services.audit({ event_type: 'circuit_breaker_change', upstream: this.upstream, route, target: t.address, from: before, to: s.phase });
  }

  /** Without checks here nothing would ever re-admit a target the previous generation's checks ejected. */
  forgetChecks(members: readonly Target[]): void {
    if (this.checks) return;
    for (const t of members) {
      t.active = this.policies.health.initial;
      t.lastCheck = undefined;
    }
  }

  /** Starts the active checks of `members` (when configured); `check(id)` runs one. */
  startChecks(members: readonly Target[], check: (id: number) => Promise<unknown>, rng: () => number): void {
    if (!this.checks || this.scheduler) return;
    this.scheduler = this.policies.health.scheduler(
      members.map((t) => t.index),
      this.checks.intervalMs,
      async (id) => {
        await check(id);
      },
      rng,
    );
    this.scheduler.start();
  }

  added(t: Target): void {
    this.scheduler?.add(t.index);
  }

  removed(t: Target): void {
    this.scheduler?.remove(t.index);
  }

  stopChecks(): void {
    this.scheduler?.stop();
    this.scheduler = undefined;
  }

  /** Probes a target once and applies the verdict unless `stale()` says the result no longer matters. */
  async check(t: Target, probe: ProbeTarget, stale: () => boolean): Promise<ProbeResult> {
    const h = this.checks;
    if (!h) return { ok: true, detail: 'no health-check configured' };
    let result: ProbeResult;
    try {
      result = await this.policies.health.probe(probe, h);
    } catch (e) {
      result = { ok: false, detail: (e as Error).message };
    }
    if (stale()) return result;
    const before = t.active.healthy;
    t.active = this.policies.health.next(t.active, result.ok, h);
    t.lastCheck = result;
    if (!result.ok) t.lastError = `health check: ${result.detail}`;
    if (t.active.healthy !== before) {
      this.services.log[t.active.healthy ? 'info' : 'warn'](
        { upstream: this.upstream, target: t.address, check: h.kind, detail: result.detail },
        t.active.healthy ? 'upstream target healthy again' : 'upstream target unhealthy',
      );
    }
    this.gauges.health(t);
    return result;
  }
}
