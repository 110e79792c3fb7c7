// The `upstreams` builtin's view of upstream groups (sentinel-reference.md §3.1).
import type { LatencySnapshot } from '../status/latency.ts';
import type { Target } from './target.ts';

export interface UpstreamSnapshot {
  id: string;
  load_balancing: string;
  /** discovery kind and how many targets its last good answer had */
  discovery?: { kind: string; targets: number };
  targets: {
    address: string;
    weight: number;
    status: 'healthy' | 'unhealthy' | 'unknown';
    failure_rate: number;
    last_error: string | null;
    circuit_breaker: string;
    in_flight: number;
    /** per-route breakers (routes with their own circuit-breaker block) */
    route_circuit_breakers?: Record<string, string>;
    last_check?: { ok: boolean; detail: string };
    /** only in the status page's snapshot */
    latency?: LatencySnapshot;
  }[];
}

/**
 * One target's entry. `openNow`: its own breaker is open and still refusing; `routes`: the routes
 * with their own breaker in this generation; `latency`: add the attempt latency (the status page).
 */
export function targetSnapshot(t: Target, openNow: boolean, routes: ReadonlyMap<string, unknown>, latency: boolean): UpstreamSnapshot['targets'][number] {
  const failureRate = t.failureRate();
  const unhealthy = !t.active.healthy || openNow || failureRate > 0.5;
  const observed = t.window.length > 0 || t.lastCheck !== undefined;
  const routeBreakers = [...t.routeBreakers].filter(([r]) => routes.has(r));
  return {
    address: t.address,
    weight: t.weight,
    status: unhealthy ? 'unhealthy' : observed ? 'healthy' : 'unknown',
    failure_rate: Math.round(failureRate * 1000) / 1000,
    last_error: t.lastError ?? null,
    circuit_breaker: t.breaker.phase,
    in_flight: t.inFlight,
    ...(routeBreakers.length > 0 ? { route_circuit_breakers: Object.fromEntries(routeBreakers.map(([r, b]) => [r, b.phase])) } : {}),
    ...(t.lastCheck ? { last_check: { ok: t.lastCheck.ok, detail: t.lastCheck.detail } } : {}),
    ...(latency ? { latency: t.latency.snapshot() } : {}),
  };
}

/** The whole `upstreams` builtin body (§3.1) for a generation's groups. */
export function upstreamsReport(groups: Iterable<{ snapshot(): UpstreamSnapshot }>, requestId: string, timestamp: string): Record<string, unknown> {
  const upstreams = [...groups].map((g) => g.snapshot());
  const all = upstreams.flatMap((u) => u.targets);
  return {
    timestamp,
    request_id: requestId,
    summary: {
      total_upstreams: upstreams.length,
      total_targets: all.length,
      healthy: all.filter((t) => t.status === 'healthy').length,
      unhealthy: all.filter((t) => t.status === 'unhealthy').length,
      unknown: all.filter((t) => t.status === 'unknown').length,
    },
    upstreams,
  };
}
