// `filter "x" { type "rate-limit" ... }` and the global `rate-limits { }` block (§1.8-1.9).
import { Type, type Static } from '@sinclair/typebox';
import { Block, Enum } from '../../src/config/types-helpers.ts';

export const RateLimitFilterProperties = {
  'max-rps': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 100 })),
  burst: Type.Optional(Type.Integer({ minimum: 0, default: 10 })),
  key: Type.Optional(Type.String({ default: 'client-ip' })),
  'on-limit': Type.Optional(Enum(['reject', 'delay', 'log-only'] as const, { default: 'reject' })),
  'max-delay-ms': Type.Optional(Type.Integer({ minimum: 0, default: 5000 })),
  'status-code': Type.Optional(Type.Integer({ minimum: 100, maximum: 599, default: 429 })),
  message: Type.Optional(Type.String({ default: 'Rate limit exceeded' })),
  'max-keys': Type.Optional(Type.Integer({ minimum: 1, default: 100000 })),
  backend: Type.Optional(Enum(['local', 'redis', 'memcached'] as const, { default: 'local' })),
  'redis-url': Type.Optional(Type.String({ default: 'redis://127.0.0.1:6379' })),
  'redis-prefix': Type.Optional(Type.String({ default: 'sentinel:ratelimit:' })),
  'redis-pool-size': Type.Optional(Type.Integer({ minimum: 1, default: 10 })),
  'redis-timeout-ms': Type.Optional(Type.Integer({ minimum: 1, default: 50 })),
  'redis-fallback': Type.Optional(Type.Boolean({ default: true, aliases: ['redis-fallback-local'] })),
  'memcached-url': Type.Optional(Type.String()),
  'memcached-prefix': Type.Optional(Type.String()),
  'memcached-pool-size': Type.Optional(Type.Integer({ minimum: 1 })),
  'memcached-timeout-ms': Type.Optional(Type.Integer({ minimum: 1 })),
  'memcached-ttl-secs': Type.Optional(Type.Integer({ minimum: 1 })),
  'memcached-fallback-local': Type.Optional(Type.Boolean()),
};

export const GlobalRateLimitSchema = Block({
  'max-rps': Type.Number({ exclusiveMinimum: 0 }),
  burst: Type.Optional(Type.Integer({ minimum: 0, default: 10 })),
  key: Type.Optional(Type.String()),
});

export const RateLimitsSchema = Block({
  'default-rps': Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  'default-burst': Type.Optional(Type.Integer({ minimum: 0 })),
  key: Type.Optional(Type.String({ default: 'client-ip' })),
  global: Type.Optional(GlobalRateLimitSchema),
});
export type RateLimitsConfig = Static<typeof RateLimitsSchema>;
