// The rate-limit filter (`filter "x" { type "rate-limit" }`) and the global `rate-limits { }`
// limit, as RequestFilters for the core's pipeline. Decisions live in limiter.ts / the stores;
// this file is glue: key -> limiter -> headers, 429, delay, metrics and audit.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FilterFactory, FilterStatus, GenerationServices, HeaderMap, LocalResponse, RequestContext, RequestFilter } from '../../src/pipeline/types.ts';
import type { Diagnostic } from '../../src/config/diagnostics.ts';
import { Breaker } from './backend-breaker.ts';
import { type BackendSettings, compileRateLimitFilter, compileRateLimits, limitsRates, validateRateLimitFilter, validateRateLimits, type OnLimit, type RateLimitSettings, throwIfErrors } from './compile.ts';
import { RemoteLimiter } from './fallback.ts';
import { type KeyFunction, type KeySpec, describeKeySpec, keyFunction } from './keys.ts';
import { bucketParams, type BucketParams, type Decision, fallbackParams, rateLimitHeaders, retryAfterSeconds, windowFor } from './limiter.ts';
import { acquire, gatewayOf, type Lease } from '../../src/pipeline/shared.ts';
import { LocalStore } from './store-local.ts';
import { MemcachedBackend } from './store-memcached.ts';
import { RedisBackend } from './store-redis.ts';
import type { RemoteBackend } from './backend.ts';
import { RateLimitConfigKeys, RateLimitFilterProperties, type RateLimitsConfig } from './schema.ts';
import { defineFeature, usesFilterType } from '../../src/pipeline/feature.ts';
import { requestAuditEvent } from '../../src/logging/audit.ts';

export { validateRateLimitFilter, validateRateLimits } from './compile.ts';
export type { RateLimitsConfig } from './schema.ts';

type Take = (ctx: RequestContext) => Decision | Promise<Decision>;

function metricsOf(services: GenerationServices) {
  const m = services.metrics;
  return {
    rateLimited: m.counter('sentinel_rate_limited_total', 'Requests rejected by a rate limit, by route', ['route']),
    exceeded: m.counter('sentinel_rate_limit_exceeded_total', 'Requests over a rate limit, by filter and action (reject, delay, log)', ['filter', 'action']),
    backendErrors: m.counter('sentinel_rate_limit_backend_errors_total', 'Failed calls to a shared rate-limit backend', ['backend', 'reason']),
    fallbacks: m.counter('sentinel_rate_limit_fallbacks_total', 'Rate-limit decisions made without the shared backend (local fallback or fail open)', ['backend', 'filter', 'mode']),
    keys: m.gauge('sentinel_rate_limit_keys', 'Keys tracked by a local rate limiter', ['scope']),
    evictions: m.counter('sentinel_rate_limit_key_evictions_total', 'Keys dropped from a local rate limiter (idle, or forced by max-keys)', ['scope', 'reason']),
  };
}
type RateLimitMetrics = ReturnType<typeof metricsOf>;


/** A local store shared across generations while its settings are unchanged (reloads keep the buckets). */
function leaseLocalStore(services: GenerationServices, scope: string, params: BucketParams, maxKeys: number, metrics: RateLimitMetrics): Lease<LocalStore> {
  const fingerprint = `local:${scope}:${gatewayOf(services)}:${JSON.stringify([params, maxKeys])}`;
  return acquire(
    fingerprint,
    () => {
      return new LocalStore({
        params,
        maxKeys,
        onKeysChanged: (size, idle, forced) => {
          if (idle > 0) metrics.evictions.inc({ scope, reason: 'idle' }, idle);
          if (forced > 0) metrics.evictions.inc({ scope, reason: 'forced' }, forced);
          metrics.keys.set({ scope }, size);
        },
      });
    },
    (store) => {
      store.clear();
      metrics.keys.set({ scope }, 0);
    },
  );
}

interface SharedBackend {
  backend: RemoteBackend;
  breaker: Breaker;
}

/** One connection set (and breaker) per distinct backend setting, shared by filters and generations. */
function leaseBackend(s: Exclude<BackendSettings, { kind: 'local' }>, services: GenerationServices): Lease<SharedBackend> {
  if (s.kind === 'redis') {
    const fingerprint = `backend:redis:${gatewayOf(services)}:${JSON.stringify([s.url, s.mode, s.sentinelMaster, s.poolSize, s.timeoutMs])}`;
    let lastLog = 0;
    return acquire(
      fingerprint,
      () => ({
        backend: new RedisBackend(s, {
          onConnectionError: (err) => {
            // ioredis reports every failed reconnect; one line per 10 s is enough.
            const now = Date.now();
            if (now - lastLog > 10_000) {
              lastLog = now;
              services.log.warn({ err: err.message }, 'rate-limit: redis connection error (using the local fallback while it lasts)');
            }
          },
        }),
        breaker: new Breaker(),
      }),
      (v) => v.backend.close(),
    );
  }
  const fingerprint = `backend:memcached:${gatewayOf(services)}:${JSON.stringify([s.url, s.poolSize, s.timeoutMs, s.ttlSecs])}`;
  return acquire(fingerprint, () => ({ backend: new MemcachedBackend(s), breaker: new Breaker() }), (v) => v.backend.close());
}

function headersFor(d: Decision, now: number): HeaderMap {
  const h = rateLimitHeaders(d, now);
  return { 'x-ratelimit-limit': h.limit, 'x-ratelimit-remaining': h.remaining, 'x-ratelimit-reset': h.reset };
}

interface Enforcement {
  id: string;
  keySpec: KeySpec;
  onLimit: OnLimit;
  maxDelayMs: number;
  statusCode: number;
  message: string;
  take: Take;
  services: GenerationServices;
  metrics: RateLimitMetrics;
  /** what the status page shows (src/status): limit, backend, live counters */
  live: LiveCounts;
}

/** Decisions of one limit since its generation started, and where its state lives. */
interface LiveCounts {
  maxRps: number;
  burst: number;
  passed: number;
  exceeded: number;
  backend(): { kind: string; keys: number | null; breaker: string | null };
}

function limitStatus(e: Enforcement): FilterStatus {
  const b = e.live.backend();
  return {
    filter: e.id,
    kind: 'rate-limit',
    key: describeKeySpec(e.keySpec),
    max_rps: e.live.maxRps,
    burst: e.live.burst,
    on_limit: e.onLimit,
    backend: b.kind,
    keys: b.keys,
    backend_breaker: b.breaker,
    passed: e.live.passed,
    exceeded: e.live.exceeded,
  };
}

/** One `rate_limit_exceeded` audit event (reject, or log for on-limit "log-only"). */
function rateLimitEvent(e: Enforcement, ctx: RequestContext, d: Decision, now: number, action: 'reject' | 'log'): Record<string, unknown> {
  return requestAuditEvent(ctx, 'rate_limit_exceeded', {
    timestamp: new Date(now).toISOString(),
    reason: 'rate_limited',
    action,
    status_code: action === 'reject' ? e.statusCode : undefined,
    // The key's shape only: a header key's value may be a credential.
    metadata: { filter: e.id, key: describeKeySpec(e.keySpec), limit: d.limit },
  });
}

function rejectResponse(e: Enforcement, ctx: RequestContext, d: Decision, now: number): LocalResponse {
  e.metrics.rateLimited.inc({ route: ctx.routeId ?? '' });
  e.services.audit(rateLimitEvent(e, ctx, d, now, 'reject'));
  return {
    status: e.statusCode,
    headers: { ...headersFor(d, now), 'retry-after': String(retryAfterSeconds(d)), 'content-type': 'text/plain; charset=utf-8' },
    body: e.message,
    blockReason: 'rate_limited',
  };
}

/** What happens with one decision: headers on the way through, or 429 / delay / log. */
function enforce(e: Enforcement, ctx: RequestContext, d: Decision): LocalResponse | undefined | Promise<LocalResponse | undefined> {
  const now = Date.now();
  if (d.allowed) {
    e.live.passed++;
    Object.assign(ctx.responseHeaders, headersFor(d, now));
    return undefined;
  }
  e.live.exceeded++;
  ctx.audit.rateLimited = true;
  if (e.onLimit === 'log-only') {
    e.metrics.exceeded.inc({ filter: e.id, action: 'log' });
    e.services.audit(rateLimitEvent(e, ctx, d, now, 'log'));
    ctx.log.warn({ filter: e.id, key: describeKeySpec(e.keySpec), limit: d.limit }, 'rate limit exceeded (log-only)');
    Object.assign(ctx.responseHeaders, headersFor(d, now));
    return undefined;
  }
  if (e.onLimit === 'delay' && d.retryAfterMs <= e.maxDelayMs) return delayed(e, ctx, d);
  e.metrics.exceeded.inc({ filter: e.id, action: 'reject' });
  return rejectResponse(e, ctx, d, now);
}

/**
 * on-limit "delay": wait until the limiter says a request would pass, then try again; the waits
 * add up to at most max-delay-ms, after which the request is rejected like "reject" (a limit
 * that only slows a flood down would not limit it).
 */
async function delayed(e: Enforcement, ctx: RequestContext, first: Decision): Promise<LocalResponse | undefined> {
  e.metrics.exceeded.inc({ filter: e.id, action: 'delay' });
  let d = first;
  let waited = 0;
  while (!d.allowed) {
    const wait = Math.max(1, d.retryAfterMs);
    if (waited + wait > e.maxDelayMs) return rejectResponse(e, ctx, d, Date.now());
    try {
      await sleep(wait, undefined, { signal: ctx.signal });
    } catch {
      return rejectResponse(e, ctx, d, Date.now()); // the client went away while waiting
    }
    waited += wait;
    d = await e.take(ctx);
  }
  ctx.audit.tags.push('rate_limit_delayed');
  Object.assign(ctx.responseHeaders, headersFor(d, Date.now()));
  return undefined;
}

function runFilter(e: Enforcement, ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
  const d = e.take(ctx);
  // Local limits decide synchronously: no promise per request on the hot path.
  if (d instanceof Promise) return d.then((x) => enforce(e, ctx, x));
  return enforce(e, ctx, d);
}

/** Builds the limiter for compiled settings; returns it with the leases to release on close. */
function buildTake(s: RateLimitSettings, services: GenerationServices, metrics: RateLimitMetrics): { take: Take; leases: Lease<unknown>[]; backend: LiveCounts['backend'] } {
  const keyOf: KeyFunction = keyFunction(s.key, s.prefixes);
  if (s.backend.kind === 'local') {
    const store = leaseLocalStore(services, `filter:${s.id}`, bucketParams(s.maxRps, s.burst), s.maxKeys, metrics);
    return { take: (ctx) => store.value.take(keyOf(ctx)), leases: [store], backend: () => ({ kind: 'local', keys: store.value.size, breaker: null }) };
  }
  const b = s.backend;
  const shared = leaseBackend(b, services);
  const window = windowFor(s.maxRps);
  const fallback = b.fallback ? leaseLocalStore(services, `fallback:${s.id}`, fallbackParams(window), s.maxKeys, metrics) : undefined;
  const limiter = new RemoteLimiter(shared.value.backend, shared.value.breaker, window, fallback?.value, {
    onBackendError: (reason) => metrics.backendErrors.inc({ backend: b.kind, reason }),
    onDegraded: (mode) => metrics.fallbacks.inc({ backend: b.kind, filter: s.id, mode }),
  });
  const prefix = `${b.prefix}${s.id}:`;
  return {
    take: (ctx) => {
      const key = keyOf(ctx);
      return limiter.take(prefix + key, key);
    },
    leases: fallback ? [shared, fallback] : [shared],
    // keys: the local fallback's (the shared backend's key count is not asked for per page view)
    backend: () => ({ kind: b.kind, keys: fallback ? fallback.value.size : null, breaker: shared.value.breaker.state }),
  };
}

/**
 * `filter "id" { type "rate-limit" ... }`. Throws ConfigError for an invalid block (bad key,
 * bad redis-url ...); the config compiler can report the same earlier with validateRateLimitFilter.
 */
export const createRateLimitFilter: FilterFactory = (id, config, services) => {
  const diagnostics: Diagnostic[] = [];
  const s = compileRateLimitFilter(id, config, diagnostics);
  throwIfErrors(diagnostics);
  const metrics = metricsOf(services);
  const { take, leases, backend } = buildTake(s!, services, metrics);
  const live: LiveCounts = { maxRps: s!.maxRps, burst: s!.burst, passed: 0, exceeded: 0, backend };
  const e: Enforcement = { id, keySpec: s!.key, onLimit: s!.onLimit, maxDelayMs: s!.maxDelayMs, statusCode: s!.statusCode, message: s!.message, take, services, metrics, live };
  return {
    id,
    type: 'rate-limit',
    onRequest: (ctx) => runFilter(e, ctx),
    status: () => limitStatus(e),
    async close() {
      await Promise.all(leases.map((l) => l.release()));
    },
  };
};

/**
 * The top-level `rate-limits { }` block and the `limits { max-requests-per-second-* }` caps as one
 * filter to run before the route's filters, or undefined when they set no limit. `default-rps`
 * limits every request per key (`key`, default client-ip); `global { max-rps }` limits all traffic
 * together (or per its own key); the `limits` caps per client, per route and for all traffic. All
 * answer 429 "Rate limit exceeded". Throws ConfigError on an invalid key.
 */
export function createGlobalRateLimit(config: RateLimitsConfig | undefined, services: GenerationServices, limits?: Record<string, unknown>): RequestFilter | undefined {
  const diagnostics: Diagnostic[] = [];
  const g = compileRateLimits(config, diagnostics);
  throwIfErrors(diagnostics);
  // Per-key first: a client over its own limit must not use up a shared budget.
  const planned: { id: string; limit: { maxRps: number; burst: number; key: KeySpec } }[] = [];
  if (g?.perKey) planned.push({ id: 'rate-limits:default', limit: g.perKey });
  for (const r of limitsRates(limits)) if (r.name !== 'global') planned.push({ id: `limits:${r.name}`, limit: { ...r, burst: 0 } });
  if (g?.global) planned.push({ id: 'rate-limits:global', limit: g.global });
  for (const r of limitsRates(limits)) if (r.name === 'global') planned.push({ id: `limits:${r.name}`, limit: { ...r, burst: 0 } });
  if (planned.length === 0) return undefined;
  const metrics = metricsOf(services);
  const leases: Lease<LocalStore>[] = [];
  const stages: Enforcement[] = [];
  for (const { id, limit } of planned) {
    const store = leaseLocalStore(services, id, bucketParams(limit.maxRps, limit.burst), 100000, metrics);
    leases.push(store);
    const keyOf = keyFunction(limit.key, g?.prefixes ?? { v4: 32, v6: 64 });
    stages.push({
      id,
      keySpec: limit.key,
      onLimit: 'reject',
      maxDelayMs: 0,
      statusCode: 429,
      message: 'Rate limit exceeded',
      take: (ctx) => store.value.take(keyOf(ctx)),
      services,
      metrics,
      live: { maxRps: limit.maxRps, burst: limit.burst, passed: 0, exceeded: 0, backend: () => ({ kind: 'local', keys: store.value.size, breaker: null }) },
    });
  }
  return {
    id: 'rate-limits',
    type: 'rate-limit',
    onRequest(ctx) {
      for (const stage of stages) {
        // Local stores answer synchronously, so each stage's result is final here.
        const r = runFilter(stage, ctx) as LocalResponse | undefined;
        if (r) return r;
      }
      return undefined;
    },
    // the status page lists each stage (rate-limits:default, limits:per-client, ...) on its own
    status: () => stages.map(limitStatus),
    async close() {
      await Promise.all(leases.map((l) => l.release()));
    },
  };
}

/**
 * The rate-limit feature: `filter "id" { type "rate-limit" }`, the global `rate-limits { }` block
 * and the `limits { max-requests-per-second-* }` caps (a filter that runs first on every proxied
 * route). Registered when the config has any.
 */
export const rateLimitFeature = defineFeature({
  name: 'rate-limit',
  dependencies: [],
  uses: (config) => config.raw['rate-limits'] !== undefined || limitsRates(config.raw.limits as Record<string, unknown> | undefined).length > 0 || usesFilterType(config, 'rate-limit'),
  schema: RateLimitConfigKeys,
  filterTypes: { 'rate-limit': RateLimitFilterProperties },
  explainFilter(_config, filter) {
    if (filter.type !== 'rate-limit') return undefined;
    const s = compileRateLimitFilter(filter.id, filter.config, []);
    if (!s) return undefined;
    return { 'max-rps': s.maxRps, burst: s.burst, key: describeKeySpec(s.key), 'on-limit': s.onLimit, 'status-code': s.statusCode, backend: s.backend.kind, ...(s.backend.kind !== 'local' ? { 'local-fallback': s.backend.fallback } : {}) };
  },
  explainRoute(config, route) {
    // the global limits run before the route's own filters, on proxied routes only
    if (route.builtin) return [];
    const g = compileRateLimits(config.raw['rate-limits'], []);
    const out = [];
    if (g?.perKey) out.push({ title: 'rate limit (rate-limits default-rps, before the route filters)', settings: { 'max-rps': g.perKey.maxRps, burst: g.perKey.burst, key: describeKeySpec(g.perKey.key) } });
    if (g?.global) out.push({ title: 'rate limit (rate-limits global, before the route filters)', settings: { 'max-rps': g.global.maxRps, burst: g.global.burst, key: describeKeySpec(g.global.key) } });
    for (const r of limitsRates(config.raw.limits as Record<string, unknown> | undefined)) {
      out.push({ title: `rate limit (limits max-requests-per-second-${r.name}, before the route filters)`, settings: { 'max-rps': r.maxRps, burst: 0, key: describeKeySpec(r.key) } });
    }
    return out;
  },
  validators: {
    filter: (f) => (f.type === 'rate-limit' ? validateRateLimitFilter(f.id, f.config) : []),
    top: (raw) => validateRateLimits(raw['rate-limits']),
  },
  register(app, host) {
    host.filterType('rate-limit', createRateLimitFilter);
    const global = createGlobalRateLimit(host.config.raw['rate-limits'], host.services, host.config.raw.limits as Record<string, unknown> | undefined);
    if (global) host.globalFilter(global);
    app.decorate('rateLimit', { global });
  },
});

export default rateLimitFeature;
