// The builtins feature: `builtin-handler` routes (status, health, metrics, config, upstreams,
// not-found, status-page ...; the handlers are src/builtins/handlers.ts, the status page src/status). Registered when a route is a
// builtin; after forwarding (the upstreams report reads its groups), metrics and caching (cache-purge, cache-stats).
import { defineFeature, DECORATION, type BuiltinsRuntime, type CacheAdminRuntime, type ForwardingRuntime } from '../../src/pipeline/feature.ts';
import { runBuiltin, type BuiltinEnv } from '../../src/builtins/handlers.ts';

export const builtinsFeature = defineFeature({
  name: 'builtins',
  dependencies: [],
  after: ['forwarding', 'metrics', 'caching'],
  uses: (config) => config.routes.some((r) => r.builtin !== undefined),
  register(app, host) {
    const forwarding = app.hasDecorator(DECORATION.forwarding) ? app.getDecorator<ForwardingRuntime>(DECORATION.forwarding) : undefined;
    const env: BuiltinEnv = {
      config: host.config,
      metrics: host.services.metrics,
      instanceId: host.instance.id,
      startedAt: host.instance.startedAt,
      upstreamGroups: () => forwarding?.groups.values() ?? [],
      cache: () => (app.hasDecorator(DECORATION.cache) ? app.getDecorator<CacheAdminRuntime>(DECORATION.cache) : undefined),
      status: { generation: host.services.generation, filters: () => host.filters(), gateway: () => host.gateway() },
    };
    const runtime: BuiltinsRuntime = { run: (handler, traceId, req) => runBuiltin(handler, env, traceId, req) };
    app.decorate(DECORATION.builtins, runtime);
  },
});

export default builtinsFeature;
