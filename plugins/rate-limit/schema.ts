// `filter "x" { type "rate-limit" ... }` and the global `rate-limits { }` block (§1.8-1.9).
// Defaults follow Sentinel's parser. Keys Sentinel never had are marked "(ours)".
import { Type, type Static } from 'typebox';
import { Block, Enum } from '../../src/config/types-helpers.ts';

export const RateLimitFilterProperties = {
  'max-rps': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 100 })),
  burst: Type.Optional(Type.Integer({ minimum: 0, default: 10 })),
  // Checked by validateKeySpec (keys.ts): client-ip | path | route | client-ip-and-path | header:<Name>
  key: Type.Optional(Type.String({ default: 'client-ip' })),
  /** (ours) client-ip keys aggregate IPv6 clients to this prefix (docs/rate-limit.md, "Client addresses"); default 64, 128 = per address */
  'client-ipv6-prefix': Type.Optional(Type.Integer({ minimum: 0, maximum: 128 })),
  /** (ours) ... and IPv4 clients; default 32 = per address */
  'client-ipv4-prefix': Type.Optional(Type.Integer({ minimum: 0, maximum: 32 })),
  'on-limit': Type.Optional(Enum(['reject', 'delay', 'log-only'] as const, { default: 'reject' })),
  'max-delay-ms': Type.Optional(Type.Integer({ minimum: 0, default: 5000 })),
  'status-code': Type.Optional(Type.Integer({ minimum: 100, maximum: 599, default: 429 })),
  message: Type.Optional(Type.String({ default: 'Rate limit exceeded' })),
  'max-keys': Type.Optional(Type.Integer({ minimum: 1, default: 100000 })),
  backend: Type.Optional(Enum(['local', 'redis', 'memcached'] as const, { default: 'local' })),
  // Redis: one URL, or a comma-separated node list for cluster / sentinel mode.
  'redis-url': Type.Optional(Type.String({ default: 'redis://127.0.0.1:6379' })),
  'redis-prefix': Type.Optional(Type.String({ default: 'sentinel:ratelimit:' })),
  'redis-pool-size': Type.Optional(Type.Integer({ minimum: 1, default: 10 })),
  'redis-timeout-ms': Type.Optional(Type.Integer({ minimum: 1, default: 50 })),
  'redis-fallback': Type.Optional(Type.Boolean({ default: true, aliases: ['redis-fallback-local'] })),
  /** (ours) how redis-url is read: one server, Redis Cluster seed nodes, or Redis Sentinel nodes */
  'redis-mode': Type.Optional(Enum(['standalone', 'cluster', 'sentinel'] as const, { default: 'standalone' })),
  /** (ours) the master group name monitored by Redis Sentinel (redis-mode "sentinel") */
  'redis-sentinel-master': Type.Optional(Type.String({ default: 'mymaster' })),
  'memcached-url': Type.Optional(Type.String({ default: 'memcache://127.0.0.1:11211' })),
  'memcached-prefix': Type.Optional(Type.String({ default: 'sentinel:ratelimit:' })),
  'memcached-pool-size': Type.Optional(Type.Integer({ minimum: 1, default: 10 })),
  'memcached-timeout-ms': Type.Optional(Type.Integer({ minimum: 1, default: 50 })),
  'memcached-ttl-secs': Type.Optional(Type.Integer({ minimum: 1, default: 2 })),
  'memcached-fallback-local': Type.Optional(Type.Boolean({ default: true, aliases: ['memcached-fallback'] })),
};

export const RateLimitFilterSchema = Block({ type: Type.Optional(Type.String()), ...RateLimitFilterProperties });
/** The decoded filter block (kebab-case keys as in KDL, defaults applied by the decoder). */
export type RateLimitFilterConfig = Static<typeof RateLimitFilterSchema>;

export const GlobalRateLimitSchema = Block({
  'max-rps': Type.Number({ exclusiveMinimum: 0 }),
  burst: Type.Optional(Type.Integer({ minimum: 0, default: 10 })),
  /** without a key the global limit is one bucket shared by all traffic */
  key: Type.Optional(Type.String()),
});

export const RateLimitsSchema = Block({
  'default-rps': Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  'default-burst': Type.Optional(Type.Integer({ minimum: 0 })),
  key: Type.Optional(Type.String({ default: 'client-ip' })),
  /** (ours) as in a rate-limit filter, for default-rps and a keyed global limit */
  'client-ipv6-prefix': Type.Optional(Type.Integer({ minimum: 0, maximum: 128 })),
  'client-ipv4-prefix': Type.Optional(Type.Integer({ minimum: 0, maximum: 32 })),
  global: Type.Optional(GlobalRateLimitSchema),
});
export type RateLimitsConfig = Static<typeof RateLimitsSchema>;

/** The keys the rate-limit feature adds to the config (its manifest's `schema`). */
export const RateLimitConfigKeys = { top: { 'rate-limits': Type.Optional(RateLimitsSchema) } };
declare module '../../src/config/schema.ts' {
  interface TopLevelKeys {
    'rate-limits': (typeof RateLimitConfigKeys)['top']['rate-limits'];
  }
}
