// One generation's view of the HTTP cache: the storage (shared across generations while the
// top-level cache block is unchanged), the coalescing locks, metrics, the per-route filters and
// the admin side (PURGE, cache-purge, cache-stats).
import { timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type CachePolicy from 'http-cache-semantics';
import type { CompiledConfig, CompiledRoute } from '../../src/config/compile.ts';
import type { GenerationServices, HeaderMap, LocalResponse, RequestFilter } from '../../src/pipeline/types.ts';
import type { CacheStats } from '../../src/pipeline/feature.ts';
import { acquire, gatewayOf, type Lease } from '../../src/pipeline/shared.ts';
import { compileTrusted, isTrusted, type TrustedMatcher } from '../../src/server/trusted-proxies.ts';
import type { CacheBackend } from './store/entry.ts';
import { Locks } from './coalesce.ts';
import { cacheMetrics, newTotals, type CacheMetrics, type CacheTotals } from './metrics.ts';
import { policyClass, type Clock } from './policy.ts';
import type { CacheStorageSettings } from './schema.ts';
import { MemoryBackend } from './store/memory.ts';
import { openBackend } from './store/open.ts';
import { globToRegExp } from './glob.ts';
import { normalisePath, normaliseQuery } from './key.ts';
import { CacheFilter } from './filter.ts';

/** What survives reloads: storage, locks, in-flight refreshes, totals. */
export interface SharedCache {
  readonly backend: CacheBackend;
  readonly locks: Locks;
  /** variant keys with a background refresh running (stale-while-revalidate: once per key) */
  readonly refreshing: Set<string>;
  readonly totals: CacheTotals;
  /** hit-for-pass: keys recently answered with something not storable (not coalesced for a while) */
  readonly passes: LRUCache<string, true>;
}

export interface CacheRuntimeOptions {
  /** injected clock (tests); Date.now by default */
  now?: Clock;
}

/** How long a key stays hit-for-pass, and how many such keys are remembered. */
const HIT_FOR_PASS_MS = 30_000;
const HIT_FOR_PASS_KEYS = 10_000;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache, no-store, must-revalidate' };

export class CacheRuntime {
  readonly storage: CacheStorageSettings;
  readonly metrics: CacheMetrics;
  readonly Policy: typeof CachePolicy;
  readonly now: Clock;
  private readonly lease: Lease<SharedCache>;
  private readonly purgers: TrustedMatcher;

  constructor(
    readonly config: CompiledConfig,
    readonly services: GenerationServices,
    opts: CacheRuntimeOptions = {},
  ) {
    this.storage = config.cache;
    this.now = opts.now ?? Date.now;
    this.Policy = policyClass(this.now);
    this.metrics = cacheMetrics(services.metrics);
    this.purgers = compileTrusted(this.storage.purgeAllow);
    const s = this.storage;
    const fingerprint = `cache:${gatewayOf(services)}:${JSON.stringify([s.backend, s.memoryBudget, s.diskPath, s.diskShards, s.diskMaxSize])}`;
    const metrics = this.metrics;
    this.lease = acquire<SharedCache>(
      fingerprint,
      () => {
        const totals = newTotals();
        const events = {
          onEvict: (n: number) => {
            totals.evictions += n;
            metrics.evictions.inc(n);
          },
          onSize: (tier: 'memory' | 'disk', st: { entries: number; bytes: number }) => {
            metrics.bytes.set({ tier }, st.bytes);
            metrics.entries.set({ tier }, st.entries);
          },
        };
        return { backend: openBackend(s, events), locks: new Locks(), refreshing: new Set(), totals, passes: new LRUCache<string, true>({ max: HIT_FOR_PASS_KEYS, ttl: HIT_FOR_PASS_MS }) };
      },
      async (shared) => {
        await shared.backend.close();
      },
    );
  }

  get shared(): SharedCache {
    return this.lease.value;
  }

  /** The filter that caches one route (undefined when the route has no enabled cache block or the cache is off). */
  filterFor(route: CompiledRoute): RequestFilter | undefined {
    if (!this.storage.enabled || !route.cache) return undefined;
    return new CacheFilter(route, route.cache, this);
  }

  /** PURGE and cache-purge are admin operations: an allowed address or the configured token. */
  mayPurge(clientIp: string, headers: HeaderMap): boolean {
    if (isTrusted(this.purgers, clientIp)) return true;
    const token = this.storage.purgeToken;
    const auth = headers.authorization;
    if (token === undefined || typeof auth !== 'string' || !auth.startsWith('Bearer ')) return false;
    const given = Buffer.from(auth.slice(7).trim());
    const want = Buffer.from(token);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  /**
   * Removes what `pattern` names: exact (normalised path and query) or, with `wildcard`, a glob
   * over the path and query (`*` within a segment, `**` across). Any host unless `host` is given.
   */
  async purge(pattern: string, wildcard: boolean, host: string | undefined): Promise<number> {
    let match: (target: string, h: string) => boolean;
    if (wildcard) {
      const re = globToRegExp(pattern);
      match = (t, h) => (host === undefined || h === host) && re.test(t);
    } else {
      const q = pattern.indexOf('?');
      const path = normalisePath(q >= 0 ? pattern.slice(0, q) : pattern);
      const query = q >= 0 ? normaliseQuery(pattern.slice(q + 1), []) : '';
      const want = query ? `${path}?${query}` : path;
      match = (t, h) => (host === undefined || h === host) && t === want;
    }
    const n = await this.shared.backend.purge(match);
    this.shared.totals.purges += n;
    this.metrics.purges.inc(n);
    return n;
  }

  /** Answer for a refused purge. */
  forbidden(traceId: string): LocalResponse {
    return { status: 403, headers: { ...JSON_HEADERS, 'x-request-id': traceId }, body: JSON.stringify({ error: 'Forbidden', status: 403, message: 'purging the cache needs an allowed address (cache { purge-allow }) or the purge token', request_id: traceId }), blockReason: 'cache_purge_denied' };
  }

  /** Purges and answers with what was purged; `purged` is for the audit event. */
  async purgeResponse(pattern: string, wildcard: boolean, host: string | undefined, traceId: string): Promise<{ response: LocalResponse; purged: number }> {
    const purged = await this.purge(pattern, wildcard, host);
    const response: LocalResponse = {
      status: 200,
      headers: { ...JSON_HEADERS, 'x-request-id': traceId },
      body: JSON.stringify({ status: 'ok', message: `purged ${purged} entr${purged === 1 ? 'y' : 'ies'}`, pattern, wildcard, purged_entries: purged, active_purges: 0, request_id: traceId, timestamp: new Date().toISOString() }),
    };
    return { response, purged };
  }

  stats(): CacheStats {
    const t = this.shared.totals;
    const st = this.shared.backend.stats();
    const lookups = t.hits + t.misses;
    return {
      hits: t.hits,
      misses: t.misses,
      stores: t.stores,
      evictions: t.evictions,
      hit_ratio: lookups === 0 ? 0 : t.hits / lookups,
      stale_served: t.staleServed,
      purges: t.purges,
      coalesced_waits: t.coalescedWaits,
      entries: st.entries,
      size_bytes: st.bytes,
      backend: this.shared.backend.kind,
      tiers: this.shared.backend.tiers(),
    };
  }

  statsResponse(traceId: string): LocalResponse {
    return {
      status: 200,
      headers: { ...JSON_HEADERS, 'x-request-id': traceId },
      body: JSON.stringify({ ...this.stats(), request_id: traceId, timestamp: new Date().toISOString() }),
    };
  }

  async close(): Promise<void> {
    await this.lease.release();
  }
}

export { MemoryBackend };
