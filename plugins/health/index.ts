// The health feature: passive health (per-target and per-route circuit breakers, breaker.ts) and
// active checks (http, tcp, grpc; active.ts, grpc-health.ts). Registered whenever the config has
// upstreams: passive breakers guard every target even without a `health-check` block.
import { defineFeature } from '../../src/pipeline/feature.ts';
import { breakerSettings } from './breaker.ts';
import { healthCheckSettings } from './active.ts';

export interface HealthRuntime {
  readonly breakerSettings: typeof breakerSettings;
  readonly healthCheckSettings: typeof healthCheckSettings;
}

export const healthFeature = defineFeature({
  name: 'health',
  dependencies: [],
  after: ['balancing'],
  uses: (config) => config.upstreams.size > 0,
  explainRoute(config, route) {
    const u = route.upstream ? config.upstreams.get(route.upstream) : undefined;
    if (!u) return [];
    const b = breakerSettings(u['circuit-breaker']);
    const hc = u['health-check'] ? healthCheckSettings(u['health-check']) : undefined;
    const active =
      hc === undefined ? { active: 'none (passive only)' } : typeof hc === 'string' ? { active: hc } : { active: hc.kind, ...(hc.kind === 'http' ? { path: hc.path, 'expected-status': hc.expectedText } : {}), 'interval-ms': hc.intervalMs, 'timeout-ms': hc.timeoutMs, 'healthy-threshold': hc.healthyThreshold, 'unhealthy-threshold': hc.unhealthyThreshold };
    return [{ title: 'health', settings: { ...active, 'circuit-breaker': `${b.failureThreshold} failures -> open ${b.timeoutMs / 1000} s, ${b.successThreshold} successes to close` } }];
  },
  register(app) {
    const runtime: HealthRuntime = { breakerSettings, healthCheckSettings };
    app.decorate('health', runtime);
  },
});

export default healthFeature;
