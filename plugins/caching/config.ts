// The caching feature's part of the config language (its manifest's `schema` and `compile`):
// the top-level `cache { }` storage, a route's `cache { }` (or `policies { cache { } }`), and
// their normalised forms on the compiled config and routes.
import { Type } from 'typebox';
import type { ConfigCompileSteps } from '../../src/config/compile.ts';
import { CacheStorageSchema, RouteCacheSchema, normaliseRouteCache, normaliseStorage, type CacheStorageSettings, type RouteCacheSettings } from './schema.ts';

export const CachingConfigKeys = {
  top: { cache: Type.Optional(CacheStorageSchema) },
  route: { cache: Type.Optional(RouteCacheSchema) },
  policies: { cache: Type.Optional(RouteCacheSchema) },
};

export const cachingCompile: ConfigCompileSteps = {
  routeView: (r) => (r.cache ? { cache: r.cache } : {}),
  view: (c) => (c.raw.cache ? { cache: c.cache } : {}),
  route(r, ctx) {
    const d = ctx.diagnostics;
    if (r.cache && r.policies?.cache) d.push({ severity: 'error', path: `${ctx.path} > cache`, message: 'given both on the route and in policies; keep one' });
    const raw = r.cache ?? r.policies?.cache;
    const cache = raw ? normaliseRouteCache(raw, `${ctx.path} > ${r.cache ? 'cache' : 'policies > cache'}`, d) : undefined;
    if (cache?.enabled && ctx.builtin) d.push({ severity: 'warning', path: `${ctx.path} > cache`, message: 'ignored on a builtin-handler route' });
    // Files are validated (ETag / Last-Modified) on every request; caching them again in the HTTP cache gains little.
    if (cache?.enabled && ctx.localService === 'static') d.push({ severity: 'warning', path: `${ctx.path} > cache`, message: 'ignored on a static-files route (files carry their own validators and Cache-Control)' });
    return { cache: cache?.enabled && !ctx.builtin && ctx.localService === undefined ? cache : undefined };
  },
  config(raw, routes, ctx) {
    const cache = normaliseStorage(raw.cache, ctx.baseDir, ctx.diagnostics);
    if (!cache.enabled && routes.some((r) => r.cache)) {
      ctx.diagnostics.push({ severity: 'warning', path: 'cache > enabled', message: "the cache is disabled here, so the routes' cache blocks do nothing" });
    }
    return { cache };
  },
};

declare module '../../src/config/schema.ts' {
  interface TopLevelKeys {
    cache: (typeof CachingConfigKeys)['top']['cache'];
  }
  interface RouteKeys {
    cache: (typeof CachingConfigKeys)['route']['cache'];
  }
  interface PoliciesKeys {
    cache: (typeof CachingConfigKeys)['policies']['cache'];
  }
}
declare module '../../src/config/compile.ts' {
  interface CompiledRouteSlices {
    /** the route's `cache { }` (or `policies { cache { } }`) when enabled */
    readonly cache: RouteCacheSettings | undefined;
  }
  interface CompiledConfigSlices {
    /** the top-level `cache { }` storage (memory defaults when absent) */
    readonly cache: CacheStorageSettings;
  }
}
