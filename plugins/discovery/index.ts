// The discovery feature: registered when an upstream has a `discovery` block. Its runtime (the
// source factory per kind: dns, dns-srv, consul, kubernetes, file) is what upstream groups use
// to refresh their targets. The sources still live in src/upstream/discovery (see
// docs/architecture.md, "Follow-ups").
import { defineFeature } from '../../src/pipeline/feature.ts';
import { createDiscoverySource, validateDiscovery } from '../../src/upstream/discovery/index.ts';

export interface DiscoveryRuntime {
  readonly createSource: typeof createDiscoverySource;
  readonly validate: typeof validateDiscovery;
}

export const discoveryFeature = defineFeature({
  name: 'discovery',
  dependencies: [],
  uses: (config) => [...config.upstreams.values()].some((u) => u.discovery !== undefined),
  register(app) {
    const runtime: DiscoveryRuntime = { createSource: createDiscoverySource, validate: validateDiscovery };
    app.decorate('discovery', runtime);
  },
});

export default discoveryFeature;
