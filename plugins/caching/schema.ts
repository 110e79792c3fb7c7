// The cache's KDL blocks (sentinel-reference.md §1.5 route `cache { }`, §1.14 top-level
// `cache { }`) and their normalised forms. Defaults follow Sentinel; the top-level names have
// no -bytes/-secs suffix, as in Sentinel's parser.
import { Type, type Static } from 'typebox';
import { Block, Enum, Size, parseSize } from '../../src/config/types-helpers.ts';
import type { Diagnostic } from '../../src/config/diagnostics.ts';
import { isWrittenPerRequest } from '../../src/server/headers.ts';

export const CacheStorageSchema = Block({
  enabled: Type.Optional(Type.Boolean({ default: true })),
  backend: Type.Optional(Enum(['memory', 'disk', 'hybrid'] as const, { default: 'memory' })),
  /** total bytes kept in memory (bodies + headers) */
  'max-size': Type.Optional(Size),
  /** bytes at which eviction starts (default: max-size) */
  'eviction-limit': Type.Optional(Size),
  /** seconds a coalesced miss waits for the request that fetches the same key */
  'lock-timeout': Type.Optional(Type.Number({ minimum: 0, default: 10 })),
  'disk-path': Type.Optional(Type.String()),
  'disk-shards': Type.Optional(Type.Integer({ minimum: 1, maximum: 4096, default: 16 })),
  /** bytes on disk (default: 10 x max-size) */
  'disk-max-size': Type.Optional(Size),
  'status-header': Type.Optional(Type.Boolean({ default: false })),
  'status-header-name': Type.Optional(Type.String({ default: 'sentinel' })),
  /** (ours) who may send PURGE requests: CIDRs / addresses (default loopback only) */
  'purge-allow': Type.Optional(Type.Array(Type.String())),
  /** (ours) a bearer token that also allows PURGE (`Authorization: Bearer <token>`) */
  'purge-token': Type.Optional(Type.String()),
});
export type RawCacheStorage = Static<typeof CacheStorageSchema>;

const DEFAULT_STATUSES = [200, 203, 204, 206, 300, 301, 308, 404, 410];

export const RouteCacheSchema = Block({
  enabled: Type.Optional(Type.Boolean({ default: false })),
  'default-ttl-secs': Type.Optional(Type.Number({ minimum: 0, default: 3600 })),
  'max-size-bytes': Type.Optional(Size),
  'cache-private': Type.Optional(Type.Boolean({ default: false })),
  'stale-while-revalidate-secs': Type.Optional(Type.Number({ minimum: 0, default: 60 })),
  'stale-if-error-secs': Type.Optional(Type.Number({ minimum: 0, default: 300 })),
  'cacheable-methods': Type.Optional(Type.Array(Type.String())),
  'cacheable-status-codes': Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }))),
  'vary-headers': Type.Optional(Type.Array(Type.String())),
  'ignore-query-params': Type.Optional(Type.Array(Type.String())),
  'exclude-extensions': Type.Optional(Type.Array(Type.String())),
  'exclude-paths': Type.Optional(Type.Array(Type.String())),
});
export type RawRouteCache = Static<typeof RouteCacheSchema>;

/** The top-level block, normalised (sizes in bytes, durations in ms). */
export interface CacheStorageSettings {
  readonly enabled: boolean;
  readonly backend: 'memory' | 'disk' | 'hybrid';
  readonly maxSize: number;
  /** memory budget: eviction-limit when given, else max-size */
  readonly memoryBudget: number;
  readonly lockTimeoutMs: number;
  readonly diskPath: string | undefined;
  readonly diskShards: number;
  readonly diskMaxSize: number;
  readonly statusHeader: boolean;
  readonly statusHeaderName: string;
  readonly purgeAllow: readonly string[];
  readonly purgeToken: string | undefined;
}

/** A route's `cache { }`, normalised. */
export interface RouteCacheSettings {
  readonly enabled: boolean;
  readonly defaultTtlSecs: number;
  readonly maxEntryBytes: number;
  readonly cachePrivate: boolean;
  readonly staleWhileRevalidateSecs: number;
  readonly staleIfErrorSecs: number;
  readonly methods: readonly string[];
  readonly statuses: readonly number[];
  /** lower-cased */
  readonly varyHeaders: readonly string[];
  readonly ignoreQueryParams: readonly string[];
  /** lower-cased, without the dot */
  readonly excludeExtensions: readonly string[];
  readonly excludePaths: readonly string[];
}

const DEFAULT_MAX_SIZE = 104_857_600;
const DEFAULT_ENTRY_MAX = 10 * 1024 * 1024;
/** Methods a cache can answer from a stored response (RFC 9110 §9.2.3); others are an error. */
const CACHEABLE_METHODS = ['GET', 'HEAD'];

function size(v: number | string | undefined, path: string, diags: Diagnostic[]): number | undefined {
  try {
    return parseSize(v);
  } catch (err) {
    diags.push({ severity: 'error', path, message: (err as Error).message });
    return undefined;
  }
}

/** Top-level `cache { }` -> settings; problems are pushed to `diags` with their node path. */
export function normaliseStorage(raw: RawCacheStorage | undefined, baseDir: string, diags: Diagnostic[]): CacheStorageSettings {
  const r = raw ?? {};
  const maxSize = size(r['max-size'], 'cache > max-size', diags) ?? DEFAULT_MAX_SIZE;
  const evictionLimit = size(r['eviction-limit'], 'cache > eviction-limit', diags);
  if (evictionLimit !== undefined && evictionLimit > maxSize) {
    diags.push({ severity: 'error', path: 'cache > eviction-limit', message: `must not exceed max-size (${maxSize}), got ${evictionLimit}` });
  }
  const backend = (r.backend ?? 'memory') as CacheStorageSettings['backend'];
  const diskPathRaw = r['disk-path'];
  if ((backend === 'disk' || backend === 'hybrid') && diskPathRaw === undefined && (r.enabled ?? true)) {
    diags.push({ severity: 'error', path: 'cache > disk-path', message: `backend "${backend}" needs disk-path "<directory>"` });
  }
  if (backend === 'memory' && diskPathRaw !== undefined) {
    diags.push({ severity: 'warning', path: 'cache > disk-path', message: 'ignored with backend "memory" (use "disk" or "hybrid")' });
  }
  const name = r['status-header-name'] ?? 'sentinel';
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    diags.push({ severity: 'error', path: 'cache > status-header-name', message: `"${name}" is not a valid Cache-Status cache name (an RFC 9110 token: letters, digits, -._~ ...)` });
  }
  const diskPath = diskPathRaw === undefined ? undefined : diskPathRaw.startsWith('/') ? diskPathRaw : `${baseDir.replace(/\/$/, '')}/${diskPathRaw}`;
  return {
    enabled: r.enabled ?? true,
    backend,
    maxSize,
    memoryBudget: Math.min(maxSize, evictionLimit ?? maxSize),
    lockTimeoutMs: (r['lock-timeout'] ?? 10) * 1000,
    diskPath,
    diskShards: r['disk-shards'] ?? 16,
    diskMaxSize: size(r['disk-max-size'], 'cache > disk-max-size', diags) ?? maxSize * 10,
    statusHeader: r['status-header'] ?? false,
    statusHeaderName: name,
    purgeAllow: r['purge-allow'] ?? ['127.0.0.1', '::1'],
    purgeToken: r['purge-token'],
  };
}

/** A route's `cache { }` -> settings (`path` is the block's node path for messages). */
export function normaliseRouteCache(raw: RawRouteCache, path: string, diags: Diagnostic[]): RouteCacheSettings {
  const methods = (raw['cacheable-methods'] ?? CACHEABLE_METHODS).map((m) => m.toUpperCase());
  for (const m of methods) {
    if (!CACHEABLE_METHODS.includes(m)) diags.push({ severity: 'error', path: `${path} > cacheable-methods`, message: `"${m}" cannot be answered from a cache; expected GET and/or HEAD` });
  }
  const statuses = raw['cacheable-status-codes'] ?? DEFAULT_STATUSES;
  for (const p of raw['exclude-paths'] ?? []) {
    if (!p.startsWith('/')) diags.push({ severity: 'error', path: `${path} > exclude-paths`, message: `"${p}" must start with "/" (a path glob: *, ** and ?)` });
  }
  for (const h of raw['vary-headers'] ?? []) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h)) diags.push({ severity: 'error', path: `${path} > vary-headers`, message: `"${h}" is not a header name` });
    else if (isWrittenPerRequest(h.toLowerCase())) diags.push({ severity: 'error', path: `${path} > vary-headers`, message: `"${h}" is written anew by the gateway for every request: nothing would ever be stored` });
  }
  const maxEntry = size(raw['max-size-bytes'], `${path} > max-size-bytes`, diags) ?? DEFAULT_ENTRY_MAX;
  return {
    enabled: raw.enabled ?? false,
    defaultTtlSecs: raw['default-ttl-secs'] ?? 3600,
    maxEntryBytes: maxEntry,
    cachePrivate: raw['cache-private'] ?? false,
    staleWhileRevalidateSecs: raw['stale-while-revalidate-secs'] ?? 60,
    staleIfErrorSecs: raw['stale-if-error-secs'] ?? 300,
    methods,
    statuses,
    varyHeaders: (raw['vary-headers'] ?? []).map((h) => h.toLowerCase()),
    ignoreQueryParams: raw['ignore-query-params'] ?? [],
    excludeExtensions: (raw['exclude-extensions'] ?? []).map((e) => e.replace(/^\./, '').toLowerCase()),
    excludePaths: raw['exclude-paths'] ?? [],
  };
}
