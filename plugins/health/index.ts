// The health feature: passive health (per-target and per-route circuit breakers, circuit-breaker.ts) and
// active checks (http, tcp, grpc; active.ts, grpc-health.ts). Registered whenever the config has
// upstreams: passive breakers guard every target even without a `health-check` block. Its
// manifest hands the core the `breakers` and `health` upstream policies (src/upstream/policies.ts).
import { defineFeature } from '../../src/pipeline/feature.ts';
import { HealthConfigKeys } from './schema.ts';
import type { BreakerPolicy, HealthPolicy } from '../../src/upstream/policies.ts';
import { urlHost } from '../../src/upstream/address.ts';
import { CLOSED, breakerSettings, canPass, isFailure, next, phaseGauge, type BreakerSettings } from './circuit-breaker.ts';
import { HealthScheduler, INITIAL_THRESHOLD, healthCheckSettings, httpProbe, tcpProbe, thresholdNext, type HealthCheckSettings, type ThresholdState } from './active.ts';
import { grpcHealthCheck } from './grpc-health.ts';

export const breakerPolicy: BreakerPolicy = { settings: breakerSettings, closed: CLOSED, canPass, next, isFailure: (o, s) => isFailure(o, s as BreakerSettings), gauge: phaseGauge };

export const healthPolicy: HealthPolicy = {
  settings: healthCheckSettings,
  initial: INITIAL_THRESHOLD,
  next: (verdict, ok, settings) => thresholdNext(verdict as ThresholdState, ok, settings as HealthCheckSettings),
  probe(target, settings) {
    const h = settings as HealthCheckSettings;
    if (h.kind === 'tcp') return tcpProbe(target.host, target.port, h.timeoutMs);
    if (h.kind === 'grpc') return grpcHealthCheck(target.origin, h.service, h.timeoutMs, target.tls ?? {});
    const client = target.checkClient(h.timeoutMs, Math.max(h.intervalMs * 2, 4000));
    return httpProbe(client, target.origin, h, `${urlHost(target.host)}:${target.port}`);
  },
  scheduler: (ids, intervalMs, check, rng) => new HealthScheduler(ids, intervalMs, check, rng),
};

export const healthFeature = defineFeature({
  name: 'health',
  dependencies: [],
  after: ['balancing'],
  uses: (config) => config.upstreams.size > 0,
  schema: HealthConfigKeys,
  explainRoute(config, route) {
    const u = route.upstream ? config.upstreams.get(route.upstream) : undefined;
    if (!u) return [];
    const b = breakerSettings(u['circuit-breaker']);
    const hc = u['health-check'] ? healthCheckSettings(u['health-check']) : undefined;
    const active =
      hc === undefined ? { active: 'none (passive only)' } : typeof hc === 'string' ? { active: hc } : { active: hc.kind, ...(hc.kind === 'http' ? { path: hc.path, 'expected-status': hc.expectedText } : {}), 'interval-ms': hc.intervalMs, 'timeout-ms': hc.timeoutMs, 'healthy-threshold': hc.healthyThreshold, 'unhealthy-threshold': hc.unhealthyThreshold };
    return [{ title: 'health', settings: { ...active, 'circuit-breaker': `${b.failureThreshold} failures -> open ${b.timeoutMs / 1000} s, ${b.successThreshold} successes to close${b.failureStatuses.size > 0 ? `; statuses ${[...b.failureStatuses].join(' ')} count as failures` : ''}` } }];
  },
  upstreamPolicies: { breakers: breakerPolicy, health: healthPolicy },
  register(app) {
    app.decorate('health', { breakers: breakerPolicy, health: healthPolicy });
  },
});

export default healthFeature;
