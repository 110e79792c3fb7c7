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
  register(app) {
    const runtime: HealthRuntime = { breakerSettings, healthCheckSettings };
    app.decorate('health', runtime);
  },
});

export default healthFeature;
