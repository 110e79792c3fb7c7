// The HTTP cache feature (docs/cache.md): registration only. Registered when the top-level cache
// is enabled and a route caches or a cache builtin exists; after forwarding (the background
// refresh uses the route's upstream group). Decorates the instance with the runtime (the
// cache-purge / cache-stats builtins read it) and appends one filter to each caching route.
import { defineFeature, DECORATION } from '../../src/pipeline/feature.ts';
import type { CompiledConfig } from '../../src/config/compile.ts';
import { CacheRuntime } from './runtime.ts';

export { CacheRuntime } from './runtime.ts';

function usesCache(config: CompiledConfig): boolean {
  if (!config.cache.enabled) return false;
  return config.routes.some((r) => r.cache !== undefined || r.builtin === 'cache-purge' || r.builtin === 'cache-stats');
}

export const cachingFeature = defineFeature({
  name: 'caching',
  dependencies: [],
  after: ['forwarding', 'metrics'],
  uses: usesCache,
  register(app, host) {
    const runtime = new CacheRuntime(host.config, host.services);
    app.decorate(DECORATION.cache, runtime);
    host.onDispose(() => runtime.close());
    for (const route of host.config.routes) {
      const filter = route.builtin ? undefined : runtime.filterFor(route);
      if (filter) host.routeFilter(route.id, filter);
    }
  },
});

export default cachingFeature;
