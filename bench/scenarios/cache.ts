// Feature scenarios: the HTTP cache (docs/cache.md). Every request after the first is a cache
// hit answered by the gateway itself; the ratio to Sentinel passthrough under the same load is
// what a cache hit saves. /c/small and /c/large are the origin's /small and /large bodies with
// Cache-Control: max-age=3600 (bench/lib/cache.ts): the same entry for the whole run (/large is a
// file with a Last-Modified of a few seconds ago, whose heuristic lifetime would be ~0 s).
// The side-by-side against nginx proxy_cache and the Zipf workload: npm run bench:cache.
import type { FeatureScenario } from '../lib/scenario.ts';
import { CACHE_LARGE, CACHE_SMALL } from '../lib/cache.ts';

function withCache(base: string): string {
  const out = base.replace(/( {8}upstream "origin"\n)/, `$1        cache { enabled #true }\n`);
  if (out === base) throw new Error('the passthrough config no longer has the route line this scenario extends');
  return out;
}

export const scenarios: FeatureScenario[] = [
  {
    name: 'cache-hit',
    description: 'route cache, every request a memory hit (GET /c/small, 100 B)',
    sentinelConfig: (ctx) => withCache(ctx.passthroughConfig()),
    load: { path: CACHE_SMALL },
    readyPath: CACHE_SMALL,
  },
  {
    name: 'cache-hit-large',
    description: 'route cache, every request a memory hit (GET /c/large, 16 KiB)',
    sentinelConfig: (ctx) => withCache(ctx.passthroughConfig()),
    load: { path: CACHE_LARGE },
    readyPath: CACHE_LARGE,
  },
];
