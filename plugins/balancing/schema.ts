// Upstream pool policy blocks: load balancing, health checks, circuit breaker, retries,
// upstream TLS and HTTP version (sentinel-reference.md §1.7).
import { Type, type Static } from 'typebox';
import { Block, Duration, Enum } from '../../src/config/types-helpers.ts';

/**
 * `load-balancing "<alg>" { ... }` options: cookie-* and fallback for sticky, hash-key
 * ("client-ip" | "path" | "header:Name" | "cookie:name") and virtual-nodes for the hash algorithms.
 */
export const LoadBalancingBlockSchema = Block(
  {
    algorithm: Type.String(),
    'cookie-name': Type.Optional(Type.String({ default: 'SERVERID' })),
    'cookie-ttl': Type.Optional(Duration),
    'cookie-path': Type.Optional(Type.String({ default: '/' })),
    'cookie-secure': Type.Optional(Type.Boolean()),
    'cookie-same-site': Type.Optional(Enum(['lax', 'strict', 'none'] as const)),
    fallback: Type.Optional(Type.String()),
    'hash-key': Type.Optional(Type.String()),
    'virtual-nodes': Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { argKey: 'algorithm' },
);

export type LoadBalancingOptions = Static<typeof LoadBalancingBlockSchema>;

/** `load-balancing "round_robin"` or `load-balancing "sticky" { cookie-name ... }` */
export const LoadBalancingSchema = Type.Union([Type.String(), LoadBalancingBlockSchema], { default: 'round_robin' });

export const HealthCheckTypeSchema = Block(
  {
    kind: Type.String(),
    path: Type.Optional(Type.String({ default: '/health' })),
    'expected-status': Type.Optional(Type.Union([Type.Integer(), Type.String()])),
    host: Type.Optional(Type.String()),
    service: Type.Optional(Type.String()),
    endpoint: Type.Optional(Type.String()),
  },
  { argKey: 'kind' },
);

export const HealthCheckSchema = Block({
  type: Type.Optional(HealthCheckTypeSchema),
  'interval-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 10 })),
  'timeout-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 5 })),
  'healthy-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 2 })),
  'unhealthy-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 3 })),
});

export const CircuitBreakerSchema = Block({
  'failure-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 5 })),
  'success-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 2 })),
  'timeout-seconds': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 30 })),
  'half-open-max-requests': Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
});

export const RetryPolicySchema = Block({
  'max-attempts': Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  'retryable-status-codes': Type.Optional(Type.Array(Type.Integer())),
  'backoff-base-ms': Type.Optional(Type.Integer({ minimum: 0, aliases: ['backoff-ms'] })),
  'backoff-max-ms': Type.Optional(Type.Integer({ minimum: 0 })),
  'retry-non-idempotent': Type.Optional(Type.Boolean({ default: false })),
  'retry-budget-percent': Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  // legacy key still found in shipped examples (backoff-ms is an alias of backoff-base-ms above)
  'timeout-ms': Type.Optional(Type.Integer({ ignored: 'a retry has no timeout of its own: each attempt gets the upstream timeouts { request-secs }' })),
});

export const UpstreamTlsSchema = Block({
  sni: Type.Optional(Type.String()),
  'insecure-skip-verify': Type.Optional(Type.Boolean({ default: false })),
  'client-cert': Type.Optional(Type.String()),
  'client-key': Type.Optional(Type.String()),
  'ca-cert': Type.Optional(Type.String()),
});

/**
 * `http-version { }`: max-version 2 = h2 when TLS ALPN offers it (cleartext stays HTTP/1.1);
 * min-version 2 = h2 only (ALPN offers only h2; cleartext is h2c with prior knowledge). No default
 * for max-version: it is at least min-version (so `min-version 2` alone is valid), else 1.
 */
export const HttpVersionSchema = Block({
  'min-version': Type.Optional(Type.Integer({ minimum: 1, maximum: 2, default: 1 })),
  'max-version': Type.Optional(Type.Integer({ minimum: 1, maximum: 2 })),
  // seconds between keep-alive PINGs on idle HTTP/2 sessions; 0 = off
  'h2-ping-interval': Type.Optional(Type.Integer({ minimum: 0 })),
  // concurrent streams per HTTP/2 session (the peer's lower limit wins)
  'max-h2-streams': Type.Optional(Type.Integer({ minimum: 1 })),
});

/** Properties merged into the `upstream "id" { }` schema by the core. */
export const UpstreamPolicyProperties = {
  'load-balancing': Type.Optional(LoadBalancingSchema),
  'health-check': Type.Optional(HealthCheckSchema),
  'circuit-breaker': Type.Optional(CircuitBreakerSchema),
  'retry-policy': Type.Optional(RetryPolicySchema),
  tls: Type.Optional(UpstreamTlsSchema),
  'http-version': Type.Optional(HttpVersionSchema),
};
export type HealthCheckConfig = Static<typeof HealthCheckSchema>;
export type CircuitBreakerConfig = Static<typeof CircuitBreakerSchema>;
export type RetryPolicyConfig = Static<typeof RetryPolicySchema>;
