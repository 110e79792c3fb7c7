// The metrics of one upstream group: breaker phases, target health, pool sizes, discovery.
// One place that knows the label sets, so publishing and removing a target stay symmetrical.
import type { Metrics } from '../metrics/registry.ts';
import type { BreakerPhase, BreakerPolicy } from './policies.ts';
import type { Target } from './target.ts';

export class UpstreamGauges {
  private readonly breakerGauge;
  private readonly healthGauge;
  private readonly poolSizeGauge;
  private readonly poolIdleGauge;
  private readonly discoveryCounter;
  private readonly discoveryGauge;
  private readonly droppedCounter;
  private readonly refusedCounter;

  constructor(
    private readonly upstream: string,
    metrics: Metrics,
    private readonly breakers: BreakerPolicy,
  ) {
    const m = metrics;
    this.breakerGauge = m.gauge('sentinel_circuit_breaker_state', 'Circuit breaker state (0 closed, 1 open, 2 half-open)', ['component', 'route'] as const);
    this.healthGauge = m.gauge('sentinel_upstream_target_healthy', 'Whether a target is in rotation (active checks and breaker), 1 or 0', [
      'upstream',
      'target',
    ] as const);
    this.poolSizeGauge = m.gauge('sentinel_connection_pool_size', 'Open upstream connections', ['upstream'] as const);
    this.poolIdleGauge = m.gauge('sentinel_connection_pool_idle', 'Idle upstream keep-alive connections', ['upstream'] as const);
    this.discoveryCounter = m.counter('sentinel_discovery_refresh_total', 'Discovery resolutions by result (changed, unchanged, error)', ['upstream', 'kind', 'result'] as const);
    this.droppedCounter = m.counter(
      'sentinel_discovery_targets_dropped_total',
      'Discovered targets dropped at a refresh for their address (link_local, unspecified, multicast, broadcast, own_listener, not_allowed), counted per answer',
      ['upstream', 'reason'] as const,
    );
    this.refusedCounter = m.counter(
      'sentinel_upstream_connect_addresses_refused_total',
      'Addresses a target host name resolved to that a new upstream connection refused (link_local, unspecified, multicast, broadcast, own_listener, not_allowed)',
      ['upstream', 'reason'] as const,
    );
    this.discoveryGauge = m.gauge('sentinel_discovery_targets', 'Targets from the last good discovery answer', ['upstream'] as const);
  }

  private component(t: Target): string {
    return `upstream:${this.upstream}:${t.address}`;
  }

  /** a breaker's phase; `route` '' is the target's own breaker */
  breaker(t: Target, route: string, phase: BreakerPhase): void {
    this.breakerGauge.set({ component: this.component(t), route }, this.breakers.gauge(phase));
  }

  health(t: Target): void {
    this.healthGauge.set({ upstream: this.upstream, target: t.address }, t.active.healthy && t.breaker.phase !== 'open' ? 1 : 0);
  }

  /** Gauges for a target as its (possibly adopted) state says; route breakers of `routes` only. */
  publish(t: Target, routes: ReadonlyMap<string, unknown>): void {
    this.breaker(t, '', t.breaker.phase);
    for (const [route, b] of t.routeBreakers) if (routes.has(route)) this.breaker(t, route, b.phase);
    this.health(t);
  }

  unpublish(t: Target): void {
    this.breakerGauge.remove({ component: this.component(t), route: '' });
    for (const route of t.routeBreakers.keys()) this.breakerGauge.remove({ component: this.component(t), route });
    this.healthGauge.remove({ upstream: this.upstream, target: t.address });
  }

  pools(connected: number, idle: number): void {
    this.poolSizeGauge.set({ upstream: this.upstream }, connected);
    this.poolIdleGauge.set({ upstream: this.upstream }, idle);
  }

  discoveryRefresh(kind: string, result: 'changed' | 'unchanged' | 'error'): void {
    this.discoveryCounter.inc({ upstream: this.upstream, kind, result });
  }

  discoveryDropped(reason: string, n: number): void {
    this.droppedCounter.inc({ upstream: this.upstream, reason }, n);
  }

  connectRefused(reason: string): void {
    this.refusedCounter.inc({ upstream: this.upstream, reason });
  }

  discoveredTargets(n: number): void {
    this.discoveryGauge.set({ upstream: this.upstream }, n);
  }
}
