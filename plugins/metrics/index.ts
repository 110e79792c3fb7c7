// The metrics feature: the Prometheus registry (src/metrics) as the generation's `metrics`
// decoration, for the builtins' metrics handler and other features. The registry itself is
// process-wide (it outlives generations); the standalone metrics listener is the gateway's.
import { defineFeature } from '../../src/pipeline/feature.ts';

export const metricsFeature = defineFeature({
  name: 'metrics',
  dependencies: [],
  uses: (config) => config.observability.metrics?.enabled !== false,
  register(app, host) {
    app.decorate('metrics', host.services.metrics);
  },
});

export default metricsFeature;
