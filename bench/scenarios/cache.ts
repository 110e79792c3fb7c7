// Feature scenarios: the HTTP cache (docs/cache.md). Every request after the first is a cache
// hit answered by the gateway itself; the ratio to Sentinel passthrough under the same load is
// what a cache hit saves. The origin's /small and /large carry no Cache-Control, so they are
// stored with the heuristic lifetime (default-ttl-secs) — the same entry for the whole run.
import type { FeatureScenario } from '../lib/scenario.ts';

function withCache(base: string): string {
  const out = base.replace(/( {8}upstream "origin"\n)/, `$1        cache { enabled #true }\n`);
  if (out === base) throw new Error('the passthrough config no longer has the route line this scenario extends');
  return out;
}

export const scenarios: FeatureScenario[] = [
  {
    name: 'cache-hit',
    description: 'route cache, every request a memory hit (GET /small, 100 B)',
    sentinelConfig: (ctx) => withCache(ctx.passthroughConfig()),
    load: { path: '/small' },
  },
  {
    name: 'cache-hit-large',
    description: 'route cache, every request a memory hit (GET /large, 16 KiB)',
    sentinelConfig: (ctx) => withCache(ctx.passthroughConfig()),
    load: { path: '/large' },
  },
];
