// sentinel_cache_* metrics (process-wide, created once; reloads reuse them) and the running
// totals the cache-stats builtin reports.
import type { Metrics } from '../../src/metrics/registry.ts';

export function cacheMetrics(m: Metrics) {
  return {
    // per request: fast.ts counters, a cell per route resolved once by the filter
    hits: m.fastCounter('sentinel_cache_hits_total', 'Requests answered from the cache (fresh, stale-while-revalidate, after a coalesced wait), by route', ['route']),
    misses: m.fastCounter('sentinel_cache_misses_total', 'Cacheable requests the cache could not answer (forwarded), by route', ['route']),
    staleServed: m.counter('sentinel_cache_stale_served_total', 'Stale responses served, by reason (stale-while-revalidate, stale-if-error)', ['reason']),
    stores: m.counter('sentinel_cache_stores_total', 'Responses stored (new or refreshed), by route', ['route']),
    revalidations: m.counter('sentinel_cache_revalidations_total', 'Conditional revalidations with the origin, by result (not-modified, modified)', ['result']),
    evictions: m.counter('sentinel_cache_evictions_total', 'Entries evicted to stay within the byte budget'),
    dropped: m.counter('sentinel_cache_dropped_total', 'Storable responses not stored, by reason (too-large, aborted, refused)', ['reason']),
    bytes: m.gauge('sentinel_cache_size_bytes', 'Bytes held by the cache, by tier (memory, disk)', ['tier']),
    entries: m.gauge('sentinel_cache_entries', 'Entries held by the cache, by tier (memory, disk)', ['tier']),
    purges: m.counter('sentinel_cache_purges_total', 'Entries removed by PURGE or the cache-purge builtin'),
    coalesced: m.counter('sentinel_cache_coalesced_waits_total', 'Misses that waited for another request fetching the same key, by outcome (hit, fallthrough, timeout)', ['outcome']),
  };
}
export type CacheMetrics = ReturnType<typeof cacheMetrics>;

/** Totals since the storage was created (the cache-stats builtin). */
export interface CacheTotals {
  hits: number;
  misses: number;
  stores: number;
  evictions: number;
  staleServed: number;
  purges: number;
  coalescedWaits: number;
}

export function newTotals(): CacheTotals {
  return { hits: 0, misses: 0, stores: 0, evictions: 0, staleServed: 0, purges: 0, coalescedWaits: 0 };
}
