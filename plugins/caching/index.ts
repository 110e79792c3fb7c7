// The HTTP cache feature (docs/cache.md): registration only. Registered when the top-level cache
// is enabled and a route caches or a cache builtin exists; after forwarding (the background
// refresh uses the route's upstream group). Decorates the instance with the runtime (the
// cache-purge / cache-stats builtins read it) and appends one filter to each caching route.
import { defineFeature, DECORATION } from '../../src/pipeline/feature.ts';
import type { CompiledConfig } from '../../src/config/compile.ts';
import { CacheRuntime } from './runtime.ts';
import { CachingConfigKeys, cachingCompile } from './config.ts';

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
  schema: CachingConfigKeys,
  compile: cachingCompile,
  explainRoute(config, route) {
    const c = route.cache;
    if (!c || !usesCache(config)) return [];
    return [{ title: 'cache', settings: { 'default-ttl-secs': c.defaultTtlSecs, 'max-entry-bytes': c.maxEntryBytes, methods: [...c.methods], statuses: [...c.statuses], 'vary-headers': [...c.varyHeaders], 'stale-while-revalidate-secs': c.staleWhileRevalidateSecs, 'stale-if-error-secs': c.staleIfErrorSecs, backend: config.cache.backend } }];
  },
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
