// Decoded rate-limit config -> normalised settings (built once per generation), with config
// errors that name the KDL path. The decoder has already checked types and applied defaults.
import type { Diagnostic } from '../../src/config/diagnostics.ts';
import { ConfigError } from '../../src/config/diagnostics.ts';
import { type ClientPrefixes, type KeySpec, identityKeyWarning, parseKeySpec } from './keys.ts';
import type { RateLimitFilterConfig, RateLimitsConfig } from './schema.ts';
import { redisClientPlan, type RedisSettings } from './store-redis.ts';
import { memcachedServers, type MemcachedSettings } from './store-memcached.ts';

export type OnLimit = 'reject' | 'delay' | 'log-only';

export type BackendSettings =
  | { kind: 'local' }
  | ({ kind: 'redis'; prefix: string; fallback: boolean } & RedisSettings)
  | ({ kind: 'memcached'; prefix: string; fallback: boolean } & MemcachedSettings);

export interface RateLimitSettings {
  id: string;
  maxRps: number;
  burst: number;
  key: KeySpec;
  /** how client-ip keys group addresses */
  prefixes: ClientPrefixes;
  onLimit: OnLimit;
  maxDelayMs: number;
  statusCode: number;
  message: string;
  maxKeys: number;
  backend: BackendSettings;
}

/** `client-ipv4-prefix` / `client-ipv6-prefix` (range-checked by the schema), defaults /32 and /64. */
function prefixesOf(c: { 'client-ipv4-prefix'?: number | undefined; 'client-ipv6-prefix'?: number | undefined }): ClientPrefixes {
  return { v4: c['client-ipv4-prefix'] ?? 32, v6: c['client-ipv6-prefix'] ?? 64 };
}

function filterPath(id: string): string {
  return `filters > filter "${id}"`;
}

/** Normalises a `type "rate-limit"` filter; errors are collected into `diagnostics`. */
export function compileRateLimitFilter(id: string, raw: Record<string, unknown>, diagnostics: Diagnostic[] = []): RateLimitSettings | undefined {
  const c = raw as RateLimitFilterConfig;
  const path = filterPath(id);
  const errors = diagnostics.length;
  const err = (key: string, message: string) => diagnostics.push({ severity: 'error', path: `${path} > ${key}`, message });

  const key = parseKeySpec(c.key ?? 'client-ip');
  if ('error' in key) err('key', key.error);
  else {
    const w = identityKeyWarning(key);
    if (w) diagnostics.push({ severity: 'warning', path: `${path} > key`, message: w });
  }

  const kind = c.backend ?? 'local';
  let backend: BackendSettings = { kind: 'local' };
  if (kind === 'redis') {
    const s: RedisSettings = {
      url: c['redis-url'] ?? 'redis://127.0.0.1:6379',
      mode: (c['redis-mode'] ?? 'standalone') as RedisSettings['mode'],
      sentinelMaster: c['redis-sentinel-master'] ?? 'mymaster',
      poolSize: c['redis-pool-size'] ?? 10,
      timeoutMs: c['redis-timeout-ms'] ?? 50,
    };
    try {
      redisClientPlan(s);
    } catch (e) {
      err('redis-url', (e as Error).message);
    }
    backend = { kind: 'redis', prefix: c['redis-prefix'] ?? 'sentinel:ratelimit:', fallback: c['redis-fallback'] ?? true, ...s };
  } else if (kind === 'memcached') {
    const s: MemcachedSettings = {
      url: c['memcached-url'] ?? 'memcache://127.0.0.1:11211',
      poolSize: c['memcached-pool-size'] ?? 10,
      timeoutMs: c['memcached-timeout-ms'] ?? 50,
      ttlSecs: c['memcached-ttl-secs'] ?? 2,
    };
    try {
      memcachedServers(s.url);
    } catch (e) {
      err('memcached-url', (e as Error).message);
    }
    backend = { kind: 'memcached', prefix: c['memcached-prefix'] ?? 'sentinel:ratelimit:', fallback: c['memcached-fallback-local'] ?? true, ...s };
  }
  if (diagnostics.length > errors && diagnostics.slice(errors).some((d) => d.severity === 'error')) return undefined;
  return {
    id,
    maxRps: c['max-rps'] ?? 100,
    burst: c.burst ?? 10,
    key: key as KeySpec,
    prefixes: prefixesOf(c),
    onLimit: (c['on-limit'] ?? 'reject') as OnLimit, // the schema's Enum types as string
    maxDelayMs: c['max-delay-ms'] ?? 5000,
    statusCode: c['status-code'] ?? 429,
    message: c.message ?? 'Rate limit exceeded',
    maxKeys: c['max-keys'] ?? 100000,
    backend,
  };
}

/**
 * Every error/warning of a rate-limit filter block, for the config compiler to report at load time
 * (so `sentinel test` fails on a bad key instead of the first request).
 */
export function validateRateLimitFilter(id: string, raw: Record<string, unknown>): Diagnostic[] {
  const d: Diagnostic[] = [];
  compileRateLimitFilter(id, raw, d);
  return d;
}

export interface GlobalLimitSettings {
  /** per-key default limit (default-rps/default-burst/key) */
  perKey?: { maxRps: number; burst: number; key: KeySpec };
  /** how client-ip keys of both limits group addresses */
  prefixes?: ClientPrefixes;
  /** the `global { }` limit: one bucket for all traffic unless it has a key */
  global?: { maxRps: number; burst: number; key: KeySpec };
}

export function compileRateLimits(config: RateLimitsConfig | undefined, diagnostics: Diagnostic[] = []): GlobalLimitSettings | undefined {
  if (!config) return undefined;
  const out: GlobalLimitSettings = {};
  const start = diagnostics.length;
  const keyOf = (raw: string | undefined, fallback: KeySpec, path: string): KeySpec => {
    if (raw === undefined) return fallback;
    const k = parseKeySpec(raw);
    if ('error' in k) {
      diagnostics.push({ severity: 'error', path, message: k.error });
      return fallback;
    }
    const w = identityKeyWarning(k);
    if (w) diagnostics.push({ severity: 'warning', path, message: w });
    return k;
  };
  const defaultKey = keyOf(config.key, { kind: 'client-ip' }, 'rate-limits > key');
  out.prefixes = prefixesOf(config);
  if (config['default-rps'] !== undefined) {
    out.perKey = { maxRps: config['default-rps'], burst: config['default-burst'] ?? 10, key: defaultKey };
  } else if (config['default-burst'] !== undefined) {
    diagnostics.push({ severity: 'warning', path: 'rate-limits > default-burst', message: 'ignored without default-rps' });
  }
  if (config.global) {
    const g = config.global;
    out.global = { maxRps: g['max-rps'], burst: g.burst ?? 10, key: keyOf(g.key, { kind: 'global' }, 'rate-limits > global > key') };
  }
  if (diagnostics.slice(start).some((d) => d.severity === 'error')) return undefined;
  return out;
}

/** One rate cap from the `limits { }` block (no burst: `N` a second is a bucket of N). */
export interface LimitsRate {
  name: 'per-client' | 'per-route' | 'global';
  maxRps: number;
  key: KeySpec;
}

/**
 * `limits { max-requests-per-second-per-client N; -per-route N; -global N }` (Sentinel's keys, never
 * enforced there) as limits keyed by client address, by route, and one for all traffic; per-key
 * caps first, so a client over its own cap does not use up the shared budget. The schema has
 * checked each is a number > 0.
 */
export function limitsRates(limits: Record<string, unknown> | undefined): LimitsRate[] {
  const out: LimitsRate[] = [];
  const rate = (k: string) => (typeof limits?.[k] === 'number' ? (limits[k] as number) : undefined);
  const perClient = rate('max-requests-per-second-per-client');
  const perRoute = rate('max-requests-per-second-per-route');
  const global = rate('max-requests-per-second-global');
  if (perClient !== undefined) out.push({ name: 'per-client', maxRps: perClient, key: { kind: 'client-ip' } });
  if (perRoute !== undefined) out.push({ name: 'per-route', maxRps: perRoute, key: { kind: 'route' } });
  if (global !== undefined) out.push({ name: 'global', maxRps: global, key: { kind: 'global' } });
  return out;
}

export function validateRateLimits(config: RateLimitsConfig | undefined): Diagnostic[] {
  const d: Diagnostic[] = [];
  compileRateLimits(config, d);
  return d;
}

/** Throws a ConfigError carrying the diagnostics when any is an error. */
export function throwIfErrors(diagnostics: Diagnostic[]): void {
  if (diagnostics.some((d) => d.severity === 'error')) throw new ConfigError(diagnostics);
}
